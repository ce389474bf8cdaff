//! Who may do what, and the error codes clients branch on.

use serde_json::json;

use crate::helpers::{GatewayClient as _, spawn_system};

const CREATE_PRODUCT: &str = r#"mutation { createProduct(name: "X", price: 1.0, stock: 1, category: "C") { id } }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_are_enforced() {
    let system = spawn_system().await;
    let admin = system.admin_token().await;
    let (alice, alice_token) = system.sign_up("alice@example.com").await;
    let (bob, bob_token) = system.sign_up("bob@example.com").await;
    let pen = system.product(&admin, "Pen", 2.0, 10).await;
    let order_for = |user: &str| json!({ "user": user, "p": pen });
    let create_order =
        "mutation($user: ID!, $p: ID!) { createOrder(userId: $user, items: [{ productId: $p, quantity: 1 }]) { id } }";
    let alice_order = system.ok(create_order, order_for(&alice), Some(&alice_token)).await["createOrder"]["id"].clone();

    // No token, or a bad one: UNAUTHENTICATED for everything but createUser, login and catalog reads.
    for token in [None, Some("not-a-token")] {
        for (query, variables) in [
            (CREATE_PRODUCT, json!({})),
            ("{ me { id } }", json!({})),
            (create_order, order_for(&alice)),
            ("mutation($id: ID!) { deleteUser(id: $id) { success } }", json!({ "id": alice })),
            ("{ orders { id } }", json!({})),
        ] {
            let (code, error) = system.error_code(query, variables, token).await;
            assert_eq!(code, "UNAUTHENTICATED", "{query} with {token:?}: {error}");
        }
    }
    assert!(system.graphql("{ products { id } }", json!({}), Some("not-a-token")).await.get("errors").is_none());

    // A customer: FORBIDDEN for admin work and for other people's things.
    for (query, variables) in [
        (CREATE_PRODUCT, json!({})),
        ("mutation($id: ID!) { deleteProduct(id: $id) { success } }", json!({ "id": pen })),
        ("{ users { id } }", json!({})),
        ("query($id: ID!) { user(id: $id) { id } }", json!({ "id": alice })),
        ("query($id: ID!) { order(id: $id) { id } }", json!({ "id": alice_order })),
        ("query($id: ID!) { userOrders(userId: $id) { id } }", json!({ "id": alice })),
        (create_order, order_for(&alice)),
        ("mutation($id: ID!) { updateUser(id: $id, name: \"Eve\") { id } }", json!({ "id": alice })),
        (
            r#"mutation($id: ID!) { updateOrderStatus(id: $id, status: "CANCELLED") { id } }"#,
            json!({ "id": alice_order }),
        ),
    ] {
        let (code, error) = system.error_code(query, variables, Some(&bob_token)).await;
        assert_eq!(code, "FORBIDDEN", "bob: {query}: {error}");
    }
    // Alice may not ship her own order either; only cancel it.
    let ship = r#"mutation($id: ID!) { updateOrderStatus(id: $id, status: "SHIPPED") { id } }"#;
    assert_eq!(system.error_code(ship, json!({ "id": alice_order }), Some(&alice_token)).await.0, "FORBIDDEN");

    // `orders` shows a customer their own orders and an admin everyone's.
    system.ok(create_order, order_for(&bob), Some(&bob_token)).await;
    let bobs = system.ok("{ orders { userId } }", json!({}), Some(&bob_token)).await;
    assert_eq!(bobs["orders"], json!([{ "userId": bob }]));
    let all = system.ok("{ ordersPage { total } }", json!({}), Some(&admin)).await;
    assert_eq!(all["ordersPage"]["total"], 2);

    let wrong = system.error_code(
        r#"mutation { login(email: "alice@example.com", password: "nope-nope") { token } }"#,
        json!({}),
        None,
    );
    assert_eq!(wrong.await.0, "UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_errors_become_stable_codes() {
    let system = spawn_system().await;
    let admin = system.admin_token().await;
    system.sign_up("taken@example.com").await;

    let (code, error) = system
        .error_code(
            r#"mutation { createUser(name: "A", email: "nope", password: "password123") { id } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!((code.as_str(), error["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("email")), "{error}");
    let (code, _) = system
        .error_code(
            r#"mutation { createUser(name: "A", email: "taken@example.com", password: "password123") { id } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(code, "ALREADY_EXISTS");
    let missing = uuid_like();
    let (code, _) = system
        .error_code(
            "mutation($id: ID!) { updateProduct(id: $id, stock: 1) { id } }",
            json!({ "id": missing }),
            Some(&admin),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, error) = system
        .error_code(
            r#"mutation { createProduct(name: "X", price: 1.005, stock: 1, category: "C") { id } }"#,
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!((code.as_str(), error["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("price")));

    let (user, token) = system.sign_up("buyer@example.com").await;
    let pen = system.product(&admin, "Pen", 2.0, 10).await;
    let (code, error) = system
        .error_code(
            "mutation($user: ID!, $p: ID!) { createOrder(userId: $user, items: [{ productId: $p, quantity: 1, price: 0.01 }]) { id } }",
            json!({ "user": user, "p": pen }),
            Some(&token),
        )
        .await;
    assert_eq!((code.as_str(), error["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("items[0].price")));
    let order = system
        .ok(
            "mutation($user: ID!, $p: ID!) { createOrder(userId: $user, items: [{ productId: $p, quantity: 1 }]) { id } }",
            json!({ "user": user, "p": pen }),
            Some(&token),
        )
        .await;
    let (code, error) = system
        .error_code(
            r#"mutation($id: ID!) { updateOrderStatus(id: $id, status: "DELIVERED") { id } }"#,
            json!({ "id": order["createOrder"]["id"] }),
            Some(&admin),
        )
        .await;
    assert_eq!(code, "FAILED_PRECONDITION", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.contains("SELECT") && !message.contains("sqlx"), "{message}");
}

fn uuid_like() -> String {
    "01900000-0000-7000-8000-000000000000".to_owned()
}

/// Text with a control character (NUL included) or a line break outside a description is
/// refused naming the field, and so is text past its length, alike on SQLite and PostgreSQL
/// (which cannot store NUL at all: the same request was an internal error there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_and_overlong_text_are_refused_naming_the_field_on_both_databases() {
    for backend in [test_support::DatabaseKind::Sqlite, test_support::DatabaseKind::Postgres] {
        let system = crate::helpers::spawn_system_on(backend).await;
        let admin = system.admin_token().await;
        let create_user = "mutation($name: String!) { createUser(name: $name, email: \"zoe@example.com\", password: \"password123\") { name } }";
        let create_product = "mutation($name: String!, $description: String!, $category: String!) { \
            createProduct(name: $name, description: $description, price: 1.0, stock: 1, category: $category) { description } }";
        let refused = [
            (create_user, json!({ "name": "Zo\u{eb} \u{1F680} \u{0}" }), None, "name"),
            (create_user, json!({ "name": "x".repeat(101) }), None, "name"),
            (create_product, json!({ "name": "Two\nlines", "description": "", "category": "c" }), Some(&admin), "name"),
            (
                create_product,
                json!({ "name": "Lamp", "description": "nul \u{0}", "category": "c" }),
                Some(&admin),
                "description",
            ),
            (
                create_product,
                json!({ "name": "Lamp", "description": "", "category": "\u{1b}[31mred" }),
                Some(&admin),
                "category",
            ),
        ];
        for (query, variables, token, field) in refused {
            let (code, error) = system.error_code(query, variables.clone(), token.map(String::as_str)).await;
            assert_eq!(
                (code.as_str(), error["extensions"]["field"].as_str()),
                ("BAD_USER_INPUT", Some(field)),
                "{backend:?} {variables}: {error}"
            );
        }
        // What is allowed is stored as sent: any script, and line breaks in a description.
        let user = system.ok(create_user, json!({ "name": "Zo\u{eb} \u{1F680}" }), None).await;
        assert_eq!(user["createUser"]["name"], "Zo\u{eb} \u{1F680}");
        let variables = json!({ "name": "Lamp", "description": "Warm.\nDimmable.", "category": "home" });
        let product = system.ok(create_product, variables, Some(&admin)).await;
        assert_eq!(product["createProduct"]["description"], "Warm.\nDimmable.");
    }
}

/// The gateway names each client in its login calls, so failed logins back off per client
/// address (here told apart by `X-Forwarded-For` from a trusted proxy), not per gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_back_off_per_client_not_per_gateway() {
    let system = crate::helpers::spawn_system_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let login = |client: &'static str, email: String, password: &'static str| {
        let query = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
        system
            .http
            .post(system.url("/graphql"))
            .header("x-forwarded-for", client)
            .json(&json!({ "query": query, "variables": { "e": email, "p": password } }))
            .send()
    };
    let code = |body: &serde_json::Value| body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned);
    // One wrong password on each of many accounts, from one client.
    for attempt in 1..=21 {
        let body: serde_json::Value = login("203.0.113.9", format!("user{attempt}@example.com"), "wrong-password")
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON");
        assert_eq!(code(&body).as_deref(), Some("UNAUTHENTICATED"), "attempt {attempt}: {body}");
    }
    let response = login("203.0.113.9", crate::helpers::ADMIN_EMAIL.to_owned(), crate::helpers::ADMIN_PASSWORD)
        .await
        .expect("POST");
    assert!(response.headers().get("retry-after").is_some(), "the wait is given as Retry-After");
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(code(&body).as_deref(), Some("UNAVAILABLE"), "{body}");
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("from this address")), "{body}");
    // Another client logs in through the same gateway.
    let body: serde_json::Value =
        login("198.51.100.4", crate::helpers::ADMIN_EMAIL.to_owned(), crate::helpers::ADMIN_PASSWORD)
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON");
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
}
