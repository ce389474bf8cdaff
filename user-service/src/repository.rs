//! The users table. Portable SQL over a [`Database`] (SQLite or PostgreSQL).

use events::{
    outbox::{OutboxSignal, OutboxTransaction},
    payloads::{UserCreated, UserDeleted, UserSnapshot, UserUpdated},
};
use proto::user::Role;
use service_runtime::{
    ServiceError, ServiceResult,
    database::{self, Database},
    error::is_unique_violation,
    paging::PageRequest,
    time,
};

/// A stored user, password hash included; it never leaves this crate as such.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    /// Stored as its name; a name that is none of the roles fails the read.
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, email, password_hash, role, created_at, updated_at";

/// Reads and writes users.
#[derive(Debug, Clone)]
pub struct UserRepository {
    database: Database,
    outbox: OutboxSignal,
}

impl UserRecord {
    fn snapshot(&self) -> UserSnapshot {
        UserSnapshot { id: self.id.clone(), name: self.name.clone(), email: self.email.clone(), role: self.role }
    }
}

impl UserRepository {
    pub fn new(database: Database, outbox: OutboxSignal) -> Self {
        Self { database, outbox }
    }

    /// Inserts a user; a taken email is `ALREADY_EXISTS`. The unique index decides, so
    /// concurrent sign-ups with one email yield exactly one user.
    pub async fn insert(&self, name: &str, email: &str, password_hash: &str, role: Role) -> ServiceResult<UserRecord> {
        let now = time::now_millis();
        let query = format!("INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLUMNS}");
        let mut transaction = self.outbox.begin(&self.database).await?;
        let user: UserRecord = sqlx::query_as(&query)
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(name)
            .bind(email)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now)
            .fetch_one(&mut *transaction)
            .await
            .map_err(email_taken(email))?;
        transaction.enqueue(UserCreated { user_id: user.id.clone(), user: user.snapshot() }).await?;
        transaction.commit().await?;
        Ok(user)
    }

    pub async fn find(&self, id: &str) -> ServiceResult<Option<UserRecord>> {
        let query = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        Ok(sqlx::query_as(&query).bind(id).fetch_optional(self.database.reads()).await?)
    }

    pub async fn find_by_email(&self, email: &str) -> ServiceResult<Option<UserRecord>> {
        let query = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
        Ok(sqlx::query_as(&query).bind(email).fetch_optional(self.database.reads()).await?)
    }

    /// The users among `ids` that exist, in no particular order.
    pub async fn find_many(&self, ids: &[String]) -> ServiceResult<Vec<UserRecord>> {
        let select = format!("SELECT {COLUMNS} FROM users WHERE id IN");
        Ok(database::fetch_all_in(self.database.reads(), &select, ids, "").await?)
    }

    /// Changes the given fields; `None` when no user has `id`.
    pub async fn update(&self, id: &str, name: Option<&str>, email: Option<&str>) -> ServiceResult<Option<UserRecord>> {
        let query = format!(
            "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email), updated_at = $4 \
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let mut transaction = self.outbox.begin(&self.database).await?;
        let user: Option<UserRecord> = sqlx::query_as(&query)
            .bind(id)
            .bind(name)
            .bind(email)
            .bind(time::now_millis())
            .fetch_optional(&mut *transaction)
            .await
            .map_err(email_taken(email.unwrap_or_default()))?;
        self.finish_update(transaction, user).await
    }

    /// Sets the password hash and role of an existing account (used to ensure the admin).
    pub async fn set_credentials(&self, id: &str, password_hash: &str, role: Role) -> ServiceResult<()> {
        let query = format!(
            "UPDATE users SET password_hash = $2, role = $3, updated_at = $4 WHERE id = $1 RETURNING {COLUMNS}"
        );
        let mut transaction = self.outbox.begin(&self.database).await?;
        let user: Option<UserRecord> = sqlx::query_as(&query)
            .bind(id)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(time::now_millis())
            .fetch_optional(&mut *transaction)
            .await?;
        self.finish_update(transaction, user).await?;
        Ok(())
    }

    /// Records `user.updated` for a changed user and commits.
    async fn finish_update(
        &self,
        mut transaction: OutboxTransaction<'_>,
        user: Option<UserRecord>,
    ) -> ServiceResult<Option<UserRecord>> {
        if let Some(user) = &user {
            transaction.enqueue(UserUpdated { user_id: user.id.clone(), user: user.snapshot() }).await?;
        }
        transaction.commit().await?;
        Ok(user)
    }

    /// Deletes a user; false when there was none.
    pub async fn delete(&self, id: &str) -> ServiceResult<bool> {
        let mut transaction = self.outbox.begin(&self.database).await?;
        let result = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *transaction).await?;
        let deleted = result.rows_affected() > 0;
        if deleted {
            transaction.enqueue(UserDeleted { user_id: id.to_owned() }).await?;
        }
        transaction.commit().await?;
        Ok(deleted)
    }

    /// One page of users in creation order, and the total count when the page asks for it.
    pub async fn list(&self, page: PageRequest) -> ServiceResult<(Vec<UserRecord>, Option<i64>)> {
        let query = format!("SELECT {COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2");
        let users =
            sqlx::query_as(&query).bind(page.limit()).bind(page.offset()).fetch_all(self.database.reads()).await?;
        let total =
            page.total(|| sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(self.database.reads())).await?;
        Ok((users, total))
    }
}

/// Maps a unique violation on `email` to `ALREADY_EXISTS`; anything else stays internal.
fn email_taken(email: &str) -> impl FnOnce(sqlx::Error) -> ServiceError + '_ {
    move |error| {
        if is_unique_violation(&error) {
            ServiceError::AlreadyExists(format!("email: {email} is already registered"))
        } else {
            error.into()
        }
    }
}
