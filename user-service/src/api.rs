//! The `user.UserService` gRPC handlers: validate, call the repository, map to the contract.

use proto::user::{
    AuthenticateUserRequest, CreateUserRequest, DeleteUserRequest, DeleteUserResponse, GetUserRequest,
    GetUsersByIdsRequest, GetUsersByIdsResponse, GetUsersRequest, GetUsersResponse, Role, UpdateUserRequest, User,
    user_service_server::UserService,
};
use service_runtime::{
    ServiceError, ServiceResult,
    error::reply,
    paging::{PageRequest, total_to_i32},
    time, validate,
};
use tonic::{Request, Response, Status};

use crate::{
    config::AdminAccount,
    login_throttle::{FREE_FAILURES_PER_ACCOUNT, FREE_FAILURES_PER_ADDRESS, LoginThrottle},
    password::PasswordHasher,
    repository::{UserRecord, UserRepository},
    validation,
};

/// Implements `user.UserService`.
#[derive(Debug, Clone)]
pub struct UserApi {
    users: UserRepository,
    hasher: PasswordHasher,
    throttles: std::sync::Arc<Throttles>,
}

/// Failed logins, counted per account and per client address.
#[derive(Debug)]
struct Throttles {
    accounts: LoginThrottle,
    addresses: LoginThrottle,
}

impl UserApi {
    pub fn new(users: UserRepository, hasher: PasswordHasher) -> Self {
        let throttles = Throttles {
            accounts: LoginThrottle::new(FREE_FAILURES_PER_ACCOUNT),
            addresses: LoginThrottle::new(FREE_FAILURES_PER_ADDRESS),
        };
        Self { users, hasher, throttles: std::sync::Arc::new(throttles) }
    }

    async fn create(&self, request: CreateUserRequest) -> ServiceResult<User> {
        let name = validation::name("name", &request.name)?;
        let email = validation::email("email", &request.email)?;
        validation::password("password", &request.password)?;
        let hash = self.hasher.hash(&request.password).await?;
        let user = self.users.insert(&name, &email, &hash, Role::User).await?;
        tracing::info!(user_id = %user.id, "user created");
        Ok(to_proto(user))
    }

    async fn get(&self, request: GetUserRequest) -> ServiceResult<User> {
        let id = validate::id("id", &request.id)?;
        self.users.find(&id).await?.map(to_proto).ok_or_else(|| ServiceError::not_found("user", id))
    }

    async fn update(&self, request: UpdateUserRequest) -> ServiceResult<User> {
        let id = validate::id("id", &request.id)?;
        let name = request.name.as_deref().map(|name| validation::name("name", name)).transpose()?;
        let email = request.email.as_deref().map(|email| validation::email("email", email)).transpose()?;
        let user = self.users.update(&id, name.as_deref(), email.as_deref()).await?;
        user.map(to_proto).ok_or_else(|| ServiceError::not_found("user", id))
    }

    async fn delete(&self, request: DeleteUserRequest) -> ServiceResult<DeleteUserResponse> {
        let id = validate::id("id", &request.id)?;
        if !self.users.delete(&id).await? {
            return Err(ServiceError::not_found("user", id));
        }
        tracing::info!(user_id = %id, "user deleted");
        Ok(DeleteUserResponse { success: true, message: format!("user {id} deleted") })
    }

    async fn list(&self, request: GetUsersRequest) -> ServiceResult<GetUsersResponse> {
        let page = PageRequest::new(request.page, request.limit, request.count_total)?;
        let (users, total) = self.users.list(page).await?;
        Ok(GetUsersResponse {
            users: users.into_iter().map(to_proto).collect(),
            total: total_to_i32(total),
            page: page.page,
            limit: page.limit,
        })
    }

    /// Checks `request`'s credentials for a client at `client` (an address, or the caller).
    async fn authenticate(&self, request: AuthenticateUserRequest, client: &str) -> ServiceResult<User> {
        let too_many = |whose: &str, wait: std::time::Duration| ServiceError::Overloaded {
            message: format!("too many failed logins {whose}; try again later"),
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        };
        if let Err(wait) = self.throttles.addresses.check(client) {
            return Err(too_many("from this address", wait));
        }
        // A malformed email cannot belong to anyone; it gets the same answer as a wrong one.
        let email = validation::email("email", &request.email).ok();
        if let Some(email) = &email
            && let Err(wait) = self.throttles.accounts.check(email)
        {
            return Err(too_many("for this account", wait));
        }
        let user = match &email {
            Some(email) => self.users.find_by_email(email).await?,
            None => None,
        };
        let verified =
            self.hasher.verify(&request.password, user.as_ref().map(|user| user.password_hash.as_str())).await?;
        match (user, email) {
            (Some(user), Some(email)) if verified => {
                self.throttles.accounts.succeeded(&email);
                Ok(to_proto(user))
            }
            (_, email) => {
                if let Some(email) = email {
                    self.throttles.accounts.failed(&email);
                }
                self.throttles.addresses.failed(client);
                Err(ServiceError::Unauthenticated("invalid email or password".into()))
            }
        }
    }

    async fn get_many(&self, request: GetUsersByIdsRequest) -> ServiceResult<GetUsersByIdsResponse> {
        let ids = validate::id_batch("ids", &request.ids)?;
        let users = self.users.find_many(&ids).await?;
        Ok(GetUsersByIdsResponse { users: users.into_iter().map(to_proto).collect() })
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(&self, request: Request<CreateUserRequest>) -> Result<Response<User>, Status> {
        reply(self.create(request.into_inner()).await)
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        reply(self.get(request.into_inner()).await)
    }

    async fn update_user(&self, request: Request<UpdateUserRequest>) -> Result<Response<User>, Status> {
        reply(self.update(request.into_inner()).await)
    }

    async fn delete_user(&self, request: Request<DeleteUserRequest>) -> Result<Response<DeleteUserResponse>, Status> {
        reply(self.delete(request.into_inner()).await)
    }

    async fn get_users(&self, request: Request<GetUsersRequest>) -> Result<Response<GetUsersResponse>, Status> {
        reply(self.list(request.into_inner()).await)
    }

    async fn authenticate_user(&self, request: Request<AuthenticateUserRequest>) -> Result<Response<User>, Status> {
        let client = client_address(&request);
        reply(self.authenticate(request.into_inner(), &client).await)
    }

    async fn get_users_by_ids(
        &self,
        request: Request<GetUsersByIdsRequest>,
    ) -> Result<Response<GetUsersByIdsResponse>, Status> {
        reply(self.get_many(request.into_inner()).await)
    }
}

/// The client a login is for: the address a caller acting for it names (the gateway, in
/// `x-client-address`), else the caller's own address. Peers are trusted to name it: they are
/// the system's own processes (with mutual TLS, holders of its certificates).
fn client_address<T>(request: &Request<T>) -> String {
    let named = request.metadata().get(proto::user::CLIENT_ADDRESS_METADATA).and_then(|value| value.to_str().ok());
    match named.map(str::trim).filter(|named| !named.is_empty() && named.len() <= 64) {
        Some(named) => named.to_owned(),
        None => request.remote_addr().map(|addr| addr.ip().to_string()).unwrap_or_default(),
    }
}

/// Makes sure the configured admin account exists with the configured password and the
/// ADMIN role. Safe to run on every start, and from several replicas at once.
pub async fn ensure_admin(users: &UserRepository, hasher: &PasswordHasher, admin: AdminAccount) -> ServiceResult<()> {
    let password = admin.password.expose();
    let existing = match users.find_by_email(&admin.email).await? {
        Some(user) => user,
        None => {
            let hash = hasher.hash(password).await?;
            match users.insert("Administrator", &admin.email, &hash, Role::Admin).await {
                Ok(user) => {
                    tracing::info!(user_id = %user.id, "admin account created");
                    return Ok(());
                }
                // Another replica created it first; fall through to check it.
                Err(ServiceError::AlreadyExists(_)) => users
                    .find_by_email(&admin.email)
                    .await?
                    .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("admin account vanished")))?,
                Err(error) => return Err(error),
            }
        }
    };
    let password_matches = hasher.verify(password, Some(&existing.password_hash)).await?;
    if existing.role != Role::Admin || !password_matches {
        let hash = if password_matches { existing.password_hash.clone() } else { hasher.hash(password).await? };
        users.set_credentials(&existing.id, &hash, Role::Admin).await?;
        tracing::info!(user_id = %existing.id, "admin account updated");
    }
    Ok(())
}

fn to_proto(user: UserRecord) -> User {
    User {
        id: user.id,
        name: user.name,
        email: user.email,
        created_at: time::to_rfc3339(user.created_at),
        updated_at: time::to_rfc3339(user.updated_at),
        role: user.role.to_string(),
    }
}
