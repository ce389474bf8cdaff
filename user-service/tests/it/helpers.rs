//! `spawn_user_service` and friends.

use proto::user::{CreateUserRequest, User, user_service_client::UserServiceClient};
use service_runtime::grpc::RunningServer;
use test_support::{DatabaseKind, TestStorage};
use tonic::transport::Channel;
use user_service::Config;

/// A user-service running on port 0, with a client connected to it.
#[derive(Debug)]
pub struct TestUserService {
    pub server: RunningServer,
    pub client: UserServiceClient<Channel>,
    pub storage: TestStorage,
    admin: Option<(String, String)>,
}

/// Starts user-service on fresh storage of `backend`.
pub async fn spawn_user_service(backend: DatabaseKind) -> TestUserService {
    let storage = TestStorage::new(backend).await.expect("test storage");
    start(storage, None).await
}

/// Starts user-service with an admin account configured.
pub async fn spawn_user_service_with_admin(backend: DatabaseKind, email: &str, password: &str) -> TestUserService {
    let storage = TestStorage::new(backend).await.expect("test storage");
    start(storage, Some((email.to_owned(), password.to_owned()))).await
}

async fn start(storage: TestStorage, admin: Option<(String, String)>) -> TestUserService {
    let mut config = Config::sqlite("127.0.0.1:0".parse().expect("addr"), storage.dir());
    config.database = storage.database_args();
    config.admin_email = admin.as_ref().map(|(email, _)| email.clone());
    config.admin_password = admin.as_ref().map(|(_, password)| password.clone().into());
    let server = user_service::build(config).await.expect("user-service starts").spawn();
    let client = UserServiceClient::connect(server.url()).await.expect("connect");
    TestUserService { server, client, storage, admin }
}

impl TestUserService {
    /// Stops the service and starts it again on the same storage.
    pub async fn restart(self) -> Self {
        self.server.stop().await.expect("clean stop");
        start(self.storage, self.admin).await
    }

    /// Restarts with a different admin account configured.
    pub async fn restart_with_admin(mut self, email: &str, password: &str) -> Self {
        self.admin = Some((email.to_owned(), password.to_owned()));
        self.restart().await
    }

    /// Creates a user that is expected to be valid.
    pub async fn create(&mut self, name: &str, email: &str) -> User {
        self.client
            .create_user(CreateUserRequest { name: name.into(), email: email.into(), password: PASSWORD.into() })
            .await
            .expect("create user")
            .into_inner()
    }
}

/// The password `create` uses.
pub const PASSWORD: &str = "correct horse battery";
