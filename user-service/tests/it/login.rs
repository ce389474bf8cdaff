//! Failed logins back off per account: after five in a row the account's logins are refused
//! without hashing, for a wait that doubles with each failure; the refusal says how long, and
//! the correct password works again once it is over.

use std::time::Duration;

use proto::user::AuthenticateUserRequest;
use test_support::Backend;
use tonic::Code;

use crate::helpers::spawn_user_service_with_admin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_back_off_per_account_and_the_correct_password_works_after_the_wait() {
    let login =
        |email: &str, password: &str| AuthenticateUserRequest { email: email.into(), password: password.into() };
    let mut service = spawn_user_service_with_admin(Backend::Sqlite, "root@example.com", "right-password").await;
    let client = &mut service.client;

    for attempt in 1..=6 {
        let status = client.authenticate_user(login("root@example.com", "wrong-password")).await.expect_err("wrong");
        assert_eq!(status.code(), Code::Unauthenticated, "attempt {attempt}: {status:?}");
    }
    let refused = client.authenticate_user(login("root@example.com", "right-password")).await.expect_err("waiting");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("too many failed logins"), "{refused:?}");
    let retry_after: u64 = refused
        .metadata()
        .get(service_runtime::error::RETRY_AFTER_METADATA)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .expect("retry-after");
    assert_eq!(retry_after, 1, "the first wait after the free failures");

    // Another address is not held up by this one's failures.
    let other = client.authenticate_user(login("someone@example.com", "whatever-password")).await.expect_err("unknown");
    assert_eq!(other.code(), Code::Unauthenticated);

    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(100)).await;
    let admin = client.authenticate_user(login("root@example.com", "right-password")).await.expect("after the wait");
    assert_eq!(admin.get_ref().role, "ADMIN");
    // The success forgot the failures: a wrong password is only wrong again.
    let status = client.authenticate_user(login("root@example.com", "wrong-password")).await.expect_err("wrong");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = client.authenticate_user(login("root@example.com", "right-password")).await;
    assert!(status.is_ok(), "{status:?}");
}
