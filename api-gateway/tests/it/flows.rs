//! Every query and mutation, with the original's names and arguments, through the gateway.

use serde_json::json;

use crate::helpers::{GatewayClient as _, spawn_system};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_works_end_to_end() {
    let system = spawn_system().await;
    let admin = system.admin_token().await;

    // Users: the original's createUser, then login and me.
    let created = system
        .ok(
            r#"mutation { createUser(name: "John Doe", email: "john@example.com", password: "password123") { id name email role createdAt } }"#,
            json!({}),
            None,
        )
        .await;
    let john = created["createUser"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created["createUser"]["role"], "USER");
    let token = system.login("john@example.com", "password123").await;
    let me = system.ok("{ me { id email } }", json!({}), Some(&token)).await;
    assert_eq!(me["me"]["id"], john.as_str());
    let user = system.ok("query($id: ID!) { user(id: $id) { name } }", json!({ "id": john }), Some(&token)).await;
    assert_eq!(user["user"]["name"], "John Doe");
    let updated = system
        .ok(
            r#"mutation($id: ID!) { updateUser(id: $id, name: "John Q. Doe") { name email } }"#,
            json!({ "id": john }),
            Some(&token),
        )
        .await;
    assert_eq!(updated["updateUser"], json!({ "name": "John Q. Doe", "email": "john@example.com" }));

    // Admin lists users with totals.
    let users = system
        .ok("{ users(page: 1, limit: 10) { id email } usersPage { total page limit } }", json!({}), Some(&admin))
        .await;
    assert_eq!(users["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(users["usersPage"], json!({ "total": 2, "page": 1, "limit": 10 }));

    // Products: the original's createProduct and products(page, limit, category), public reads.
    let laptop = system
        .ok(
            r#"mutation { createProduct(name: "Laptop", description: "High-performance laptop", price: 999.99, stock: 50, category: "Electronics") { id name price stock } }"#,
            json!({}),
            Some(&admin),
        )
        .await;
    let laptop_id = laptop["createProduct"]["id"].as_str().expect("id").to_owned();
    assert_eq!(laptop["createProduct"]["price"], 999.99);
    let mouse = system.product(&admin, "Mouse", 29.99, 100).await;
    let products = system
        .ok(
            r#"{ products(page: 1, limit: 10, category: "Electronics") { id name description price stock category } productsPage(category: "Test") { total } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(products["products"].as_array().map(Vec::len), Some(1));
    assert_eq!(products["productsPage"]["total"], 1);
    // The total is counted whenever it is selected, an alias or a fragment included.
    let pages = system
        .ok(
            "fragment Counted on ProductPage { total } \
             { all: productsPage { n: total } viaFragment: productsPage { ...Counted } inline: productsPage { ... on ProductPage { total } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(pages, json!({ "all": { "n": 2 }, "viaFragment": { "total": 2 }, "inline": { "total": 2 } }));
    let product = system.ok("query($id: ID!) { product(id: $id) { name } }", json!({ "id": mouse }), None).await;
    assert_eq!(product["product"]["name"], "Mouse");
    let restocked = system
        .ok(
            "mutation($id: ID!) { updateProduct(id: $id, stock: 75) { stock price } }",
            json!({ "id": laptop_id }),
            Some(&admin),
        )
        .await;
    assert_eq!(restocked["updateProduct"], json!({ "stock": 75, "price": 999.99 }));

    // Orders: the original's createOrder with client prices, then reads.
    let order = system
        .ok(
            r#"mutation($user: ID!, $mouse: ID!) {
                 createOrder(userId: $user, items: [{ productId: $mouse, quantity: 2, price: 29.99 }], totalAmount: 59.98) {
                   id status totalAmount createdAt items { productId quantity price product { name } } user { name }
                 }
               }"#,
            json!({ "user": john, "mouse": mouse }),
            Some(&token),
        )
        .await;
    let order = &order["createOrder"];
    let order_id = order["id"].as_str().expect("id").to_owned();
    assert_eq!((order["status"].as_str(), order["totalAmount"].as_f64()), (Some("PENDING"), Some(59.98)));
    assert_eq!(order["items"][0]["product"]["name"], "Mouse");
    assert_eq!(order["user"]["name"], "John Q. Doe");

    let reads = system
        .ok(
            "query($id: ID!, $user: ID!) {
               order(id: $id) { id }
               orders(page: 1, limit: 10) { id }
               userOrders(userId: $user, page: 1, limit: 10) { id totalAmount status items { productId quantity price } createdAt }
               userOrdersPage(userId: $user) { total }
               ordersPage { total }
             }",
            json!({ "id": order_id, "user": john }),
            Some(&token),
        )
        .await;
    assert_eq!(reads["order"]["id"], order_id.as_str());
    assert_eq!(reads["orders"][0]["id"], order_id.as_str());
    assert_eq!(reads["userOrders"][0]["items"][0]["quantity"], 2);
    assert_eq!((reads["userOrdersPage"]["total"].as_i64(), reads["ordersPage"]["total"].as_i64()), (Some(1), Some(1)));

    // Status: the admin confirms and ships; a customer may cancel their own pending order.
    for status in ["CONFIRMED", "SHIPPED"] {
        let changed = system
            .ok(
                "mutation($id: ID!, $status: String!) { updateOrderStatus(id: $id, status: $status) { status } }",
                json!({ "id": order_id, "status": status }),
                Some(&admin),
            )
            .await;
        assert_eq!(changed["updateOrderStatus"]["status"], status);
    }
    let second = system
        .ok(
            "mutation($user: ID!, $p: ID!) { createOrder(userId: $user, items: [{ productId: $p, quantity: 1 }]) { id } }",
            json!({ "user": john, "p": laptop_id }),
            Some(&token),
        )
        .await;
    let cancelled = system
        .ok(
            r#"mutation($id: ID!) { updateOrderStatus(id: $id, status: "CANCELLED") { status } }"#,
            json!({ "id": second["createOrder"]["id"] }),
            Some(&token),
        )
        .await;
    assert_eq!(cancelled["updateOrderStatus"]["status"], "CANCELLED");

    // Deletes, as in the original: { success, message }.
    let deleted = system
        .ok("mutation($id: ID!) { deleteProduct(id: $id) { success message } }", json!({ "id": mouse }), Some(&admin))
        .await;
    assert_eq!(deleted["deleteProduct"]["success"], true);
    let gone = system.ok("query($id: ID!) { product(id: $id) { id } }", json!({ "id": mouse }), None).await;
    assert!(gone["product"].is_null());
    let deleted =
        system.ok("mutation($id: ID!) { deleteUser(id: $id) { success } }", json!({ "id": john }), Some(&token)).await;
    assert_eq!(deleted["deleteUser"]["success"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_lists_make_a_constant_number_of_backend_calls() {
    let system = spawn_system().await;
    let admin = system.admin_token().await;
    let (user, token) = system.sign_up("buyer@example.com").await;
    let query = "query($user: ID!) { userOrders(userId: $user, page: 1, limit: 100) { items { product { name } } user { name } } }";

    let mut calls_per_query = Vec::new();
    for order_count in [1, 20] {
        while system.ok(query, json!({ "user": user }), Some(&token)).await["userOrders"].as_array().map_or(0, Vec::len)
            < order_count
        {
            // Each order has its own product, so 20 orders mean 20 distinct products to resolve.
            let product = system.product(&admin, "Widget", 1.0, 10).await;
            system
                .ok(
                    "mutation($user: ID!, $p: ID!) { createOrder(userId: $user, items: [{ productId: $p, quantity: 1 }]) { id } }",
                    json!({ "user": user, "p": product }),
                    Some(&token),
                )
                .await;
        }
        // The fewest over three runs: a loader's batch window is a millisecond, and on a busy
        // machine one run may split a batch in two; an N+1 would show in every run.
        let mut fewest = u64::MAX;
        for _ in 0..3 {
            let before = system.backend_calls().await;
            let data = system.ok(query, json!({ "user": user }), Some(&token)).await;
            let after = system.backend_calls().await;
            assert_eq!(data["userOrders"].as_array().map(Vec::len), Some(order_count));
            assert!(
                data["userOrders"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|order| order["items"][0]["product"]["name"] == "Widget")
            );
            fewest = fewest.min(after - before);
        }
        calls_per_query.push(fewest);
    }
    // One GetUserOrders, one GetUsersByIds and one GetProductsByIds, whatever the order count.
    assert_eq!(calls_per_query, vec![3, 3], "backend calls for 1 and for 20 orders");
}
