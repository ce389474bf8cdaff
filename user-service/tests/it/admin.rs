//! The admin account from ADMIN_EMAIL / ADMIN_PASSWORD is ensured at every start.

use proto::user::{AuthenticateUserRequest, GetUsersRequest};
use test_support::{DatabaseKind, backend_tests, grpc::assert_status};
use tonic::Code;

use crate::helpers::spawn_user_service_with_admin;

backend_tests!(admin_account_is_ensured_at_start);

async fn admin_account_is_ensured_at_start(backend: DatabaseKind) {
    let login =
        |password: &str| AuthenticateUserRequest { email: "root@example.com".into(), password: password.into() };
    let mut service = spawn_user_service_with_admin(backend, "Root@Example.com", "first-password").await;
    let admin = service.client.authenticate_user(login("first-password")).await.expect("admin login").into_inner();
    assert_eq!(admin.role, "ADMIN");

    // A restart with the same settings changes nothing; with a new password, the new one works.
    let mut service = service.restart().await;
    assert!(service.client.authenticate_user(login("first-password")).await.is_ok());
    let mut service = service.restart_with_admin("root@example.com", "second-password").await;
    let again = service.client.authenticate_user(login("second-password")).await.expect("new password").into_inner();
    assert_eq!((again.id.as_str(), again.role.as_str()), (admin.id.as_str(), "ADMIN"));
    assert_status(service.client.authenticate_user(login("first-password")).await, Code::Unauthenticated, "invalid");

    let users = service.client.get_users(GetUsersRequest::default()).await.expect("list");
    assert_eq!(users.get_ref().total, Some(1), "exactly one admin account");
}
