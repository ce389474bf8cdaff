//! Failed logins back off per account and per client address: after five in a row an account's
//! logins are refused without hashing, for a wait that doubles with each failure; the refusal
//! says how long, and the correct password works again once it is over. A client address that
//! fails on many accounts waits the same way, whichever account it tries.

use std::time::Duration;

use proto::user::AuthenticateUserRequest;
use test_support::DatabaseKind;
use tonic::Code;

use crate::helpers::spawn_user_service_with_admin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_back_off_per_account_and_the_correct_password_works_after_the_wait() {
    let login =
        |email: &str, password: &str| AuthenticateUserRequest { email: email.into(), password: password.into() };
    let mut service = spawn_user_service_with_admin(DatabaseKind::Sqlite, "root@example.com", "right-password").await;
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

/// A login for a client at `address`, as the gateway sends it.
fn for_client(address: &str, email: &str, password: &str) -> tonic::Request<AuthenticateUserRequest> {
    let mut request = tonic::Request::new(AuthenticateUserRequest { email: email.into(), password: password.into() });
    request.metadata_mut().insert(proto::user::CLIENT_ADDRESS_METADATA, address.parse().expect("metadata value"));
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_on_many_accounts_back_off_per_client_address() {
    use user_service::login_throttle::FREE_FAILURES_PER_ADDRESS;

    let mut service = spawn_user_service_with_admin(DatabaseKind::Sqlite, "root@example.com", "right-password").await;
    let client = &mut service.client;
    let sprayer = "203.0.113.9";
    // One wrong password on each of many accounts: no account reaches its own limit.
    for attempt in 1..=FREE_FAILURES_PER_ADDRESS + 1 {
        let request = for_client(sprayer, &format!("user{attempt}@example.com"), "wrong-password");
        let status = client.authenticate_user(request).await.expect_err("wrong");
        assert_eq!(status.code(), Code::Unauthenticated, "attempt {attempt}: {status:?}");
    }
    // Now the address waits, whatever account it tries, even with the right password.
    let refused = client.authenticate_user(for_client(sprayer, "root@example.com", "right-password")).await;
    let refused = refused.expect_err("the address waits");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("from this address"), "{refused:?}");
    // Another client of the same caller is not held up, and neither is the account.
    let admin = client.authenticate_user(for_client("198.51.100.4", "root@example.com", "right-password")).await;
    assert_eq!(admin.expect("another address").get_ref().role, "ADMIN");
}
