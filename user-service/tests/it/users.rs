//! Every user RPC, its errors, concurrency and persistence, on SQLite and PostgreSQL.

use futures::future::join_all;
use proto::user::{
    AuthenticateUserRequest, CreateUserRequest, DeleteUserRequest, GetUserRequest, GetUsersByIdsRequest,
    GetUsersRequest, UpdateUserRequest,
};
use test_support::{DatabaseKind, backend_tests, grpc::assert_status};
use tonic::Code;

use crate::helpers::{PASSWORD, spawn_user_service};

backend_tests!(
    create_get_update_delete,
    invalid_input_names_the_field,
    duplicate_email_is_already_exists,
    concurrent_sign_ups_with_one_email_yield_one_user,
    users_are_paged_in_creation_order,
    batch_get_returns_the_users_that_exist,
    authenticate_checks_the_password,
    data_survives_a_restart,
    health_and_reflection,
);

async fn create_get_update_delete(backend: DatabaseKind) {
    let mut service = spawn_user_service(backend).await;
    let created = service.create("Ada Lovelace", "Ada@Example.com").await;
    assert_eq!(created.name, "Ada Lovelace");
    assert_eq!(created.email, "ada@example.com", "emails are stored lower-cased");
    assert_eq!(created.role, "USER");
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert!(created.created_at.ends_with('Z') && created.created_at == created.updated_at);

    let fetched = service.client.get_user(GetUserRequest { id: created.id.clone() }).await.expect("get").into_inner();
    assert_eq!(fetched, created);

    let renamed = service
        .client
        .update_user(UpdateUserRequest { id: created.id.clone(), name: Some("Ada King".into()), email: None })
        .await
        .expect("update")
        .into_inner();
    assert_eq!((renamed.name.as_str(), renamed.email.as_str()), ("Ada King", "ada@example.com"));
    assert_eq!(renamed.created_at, created.created_at);
    assert!(renamed.updated_at >= created.updated_at);

    let moved = service
        .client
        .update_user(UpdateUserRequest { id: created.id.clone(), name: None, email: Some("ada@king.org".into()) })
        .await
        .expect("update email")
        .into_inner();
    assert_eq!((moved.name.as_str(), moved.email.as_str()), ("Ada King", "ada@king.org"));

    let deleted = service.client.delete_user(DeleteUserRequest { id: created.id.clone() }).await.expect("delete");
    assert!(deleted.get_ref().success, "{deleted:?}");
    assert_status(service.client.get_user(GetUserRequest { id: created.id.clone() }).await, Code::NotFound, "user ");
    assert_status(
        service.client.delete_user(DeleteUserRequest { id: created.id.clone() }).await,
        Code::NotFound,
        "user ",
    );
    let update = UpdateUserRequest { id: created.id, name: Some("Ghost".into()), email: None };
    assert_status(service.client.update_user(update).await, Code::NotFound, "user ");
}

async fn invalid_input_names_the_field(backend: DatabaseKind) {
    let mut service = spawn_user_service(backend).await;
    let create = |name: &str, email: &str, password: &str| CreateUserRequest {
        name: name.into(),
        email: email.into(),
        password: password.into(),
    };
    for (request, field) in [
        (create("  ", "a@example.com", PASSWORD), "name: "),
        (create(&"n".repeat(101), "a@example.com", PASSWORD), "name: "),
        (create("Ada", "not-an-email", PASSWORD), "email: "),
        (create("Ada", "", PASSWORD), "email: "),
        (create("Ada", "a@example.com", "short"), "password: "),
    ] {
        assert_status(service.client.create_user(request).await, Code::InvalidArgument, field);
    }
    assert_status(service.client.get_user(GetUserRequest { id: "42".into() }).await, Code::InvalidArgument, "id: ");
    let user = service.create("Ada", "ada@example.com").await;
    let update = UpdateUserRequest { id: user.id, name: None, email: Some("nope".into()) };
    assert_status(service.client.update_user(update).await, Code::InvalidArgument, "email: ");
    let missing = uuid::Uuid::now_v7().to_string();
    assert_status(service.client.get_user(GetUserRequest { id: missing }).await, Code::NotFound, "user ");
    let (users, total) = list(&mut service, 1, 10).await;
    assert_eq!((users.len(), total), (1, 1), "nothing invalid was stored");
}

async fn duplicate_email_is_already_exists(backend: DatabaseKind) {
    let mut service = spawn_user_service(backend).await;
    service.create("Ada", "ada@example.com").await;
    let again = CreateUserRequest { name: "Other".into(), email: "ADA@example.com".into(), password: PASSWORD.into() };
    assert_status(service.client.create_user(again).await, Code::AlreadyExists, "email: ");

    let grace = service.create("Grace", "grace@example.com").await;
    let steal = UpdateUserRequest { id: grace.id, name: None, email: Some("ada@example.com".into()) };
    assert_status(service.client.update_user(steal).await, Code::AlreadyExists, "email: ");
}

async fn concurrent_sign_ups_with_one_email_yield_one_user(backend: DatabaseKind) {
    let service = spawn_user_service(backend).await;
    let attempts = (0..20).map(|n| {
        let mut client = service.client.clone();
        async move {
            client
                .create_user(CreateUserRequest {
                    name: format!("Racer {n}"),
                    email: "race@example.com".into(),
                    password: PASSWORD.into(),
                })
                .await
        }
    });
    let results = join_all(attempts).await;
    let created = results.iter().filter(|result| result.is_ok()).count();
    let duplicates = results
        .iter()
        .filter(|result| result.as_ref().is_err_and(|status| status.code() == Code::AlreadyExists))
        .count();
    assert_eq!((created, duplicates), (1, 19), "{results:?}");
    let mut service = service;
    let (_, total) = list(&mut service, 1, 100).await;
    assert_eq!(total, 1);
}

async fn users_are_paged_in_creation_order(backend: DatabaseKind) {
    let mut service = spawn_user_service(backend).await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(service.create(&format!("User {n}"), &format!("user{n}@example.com")).await.id);
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (users, total) = list(&mut service, page, 2).await;
        assert_eq!(total, 5);
        assert_eq!(users.len(), if page == 3 { 1 } else { 2 });
        seen.extend(users.into_iter().map(|user| user.id));
    }
    assert_eq!(seen, created, "pages are disjoint and in creation order");
    let (beyond, total) = list(&mut service, 4, 2).await;
    assert_eq!((beyond.len(), total), (0, 5));

    let defaults = service.client.get_users(GetUsersRequest::default()).await.expect("list");
    assert_eq!((defaults.get_ref().page, defaults.get_ref().limit, defaults.get_ref().total), (1, 10, Some(5)));
    let uncounted = GetUsersRequest { count_total: Some(false), ..GetUsersRequest::default() };
    let uncounted = service.client.get_users(uncounted).await.expect("list").into_inner();
    assert_eq!((uncounted.users.len(), uncounted.total), (5, None), "the total only when asked for");
    for (page, limit, field) in [(0, 10, "page: "), (-3, 10, "page: "), (1, 0, "limit: "), (1, 101, "limit: ")] {
        let request = GetUsersRequest { page: Some(page), limit: Some(limit), count_total: None };
        assert_status(service.client.get_users(request).await, Code::InvalidArgument, field);
    }
}

async fn batch_get_returns_the_users_that_exist(backend: DatabaseKind) {
    let mut service = spawn_user_service(backend).await;
    let ada = service.create("Ada", "ada@example.com").await;
    let grace = service.create("Grace", "grace@example.com").await;
    let missing = uuid::Uuid::now_v7().to_string();
    let ids = vec![ada.id.clone(), missing, grace.id.clone(), ada.id.clone()];
    let found = service.client.get_users_by_ids(GetUsersByIdsRequest { ids }).await.expect("batch").into_inner();
    let mut found_ids: Vec<_> = found.users.into_iter().map(|user| user.id).collect();
    found_ids.sort();
    let mut expected = vec![ada.id, grace.id];
    expected.sort();
    assert_eq!(found_ids, expected);

    let empty = service.client.get_users_by_ids(GetUsersByIdsRequest { ids: vec![] }).await.expect("empty batch");
    assert!(empty.get_ref().users.is_empty());
    let bad = GetUsersByIdsRequest { ids: vec!["nope".into()] };
    assert_status(service.client.get_users_by_ids(bad).await, Code::InvalidArgument, "ids[0]: ");
    let too_many = GetUsersByIdsRequest { ids: (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect() };
    assert_status(service.client.get_users_by_ids(too_many).await, Code::InvalidArgument, "ids: ");
}

async fn authenticate_checks_the_password(backend: DatabaseKind) {
    let mut service = spawn_user_service(backend).await;
    let ada = service.create("Ada", "ada@example.com").await;
    let login =
        |email: &str, password: &str| AuthenticateUserRequest { email: email.into(), password: password.into() };

    let user = service.client.authenticate_user(login("ADA@example.com", PASSWORD)).await.expect("login").into_inner();
    assert_eq!((user.id.as_str(), user.role.as_str()), (ada.id.as_str(), "USER"));
    for (email, password) in
        [("ada@example.com", "wrong password"), ("nobody@example.com", PASSWORD), ("junk", PASSWORD)]
    {
        let result = service.client.authenticate_user(login(email, password)).await;
        assert_status(result, Code::Unauthenticated, "invalid email or password");
    }
}

async fn data_survives_a_restart(backend: DatabaseKind) {
    let mut service = spawn_user_service(backend).await;
    let ada = service.create("Ada", "ada@example.com").await;
    let mut service = service.restart().await;
    let fetched = service.client.get_user(GetUserRequest { id: ada.id.clone() }).await.expect("get").into_inner();
    assert_eq!(fetched, ada);
    let login = AuthenticateUserRequest { email: "ada@example.com".into(), password: PASSWORD.into() };
    assert!(service.client.authenticate_user(login).await.is_ok(), "the password hash survives too");
    let again = CreateUserRequest { name: "Ada".into(), email: "ada@example.com".into(), password: PASSWORD.into() };
    assert_status(service.client.create_user(again).await, Code::AlreadyExists, "email: ");
}

async fn health_and_reflection(backend: DatabaseKind) {
    let service = spawn_user_service(backend).await;
    assert_eq!(user_service::SERVICE_NAME, "user.UserService");
    test_support::grpc::assert_health_and_reflection(&service.server.url(), user_service::SERVICE_NAME).await;
}

async fn list(service: &mut crate::helpers::TestUserService, page: i32, limit: i32) -> (Vec<proto::user::User>, i32) {
    let response = service
        .client
        .get_users(GetUsersRequest { page: Some(page), limit: Some(limit), count_total: None })
        .await
        .expect("list")
        .into_inner();
    assert_eq!((response.page, response.limit), (page, limit));
    (response.users, response.total.expect("counted when not asked otherwise"))
}
