//! Password hashing with argon2id, off the async runtime and bounded in parallelism.

use std::sync::{Arc, LazyLock};

use argon2::{
    Argon2, PasswordHash, PasswordVerifier,
    password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng},
};
use service_runtime::{ServiceError, ServiceResult};
use tokio::sync::Semaphore;

/// A hash of a random password, verified against when an email is unknown, so that a login for
/// a missing account takes as long as one with a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&uuid::Uuid::now_v7().to_string()).unwrap_or_default());

/// Hashes and verifies passwords. Cloning shares the concurrency limit.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    /// Each hash takes ~19 MiB and a core for tens of milliseconds; at most one per core runs
    /// at once so a burst of sign-ups cannot exhaust memory or starve other requests.
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self { permits: Arc::new(Semaphore::new(cores)) }
    }

    /// An argon2id PHC string for `password`, with a fresh random salt.
    pub async fn hash(&self, password: &str) -> ServiceResult<String> {
        let password = password.to_owned();
        self.run(move || hash_blocking(&password)).await
    }

    /// True when `password` matches `hash`. With no hash (unknown account) it still does the
    /// work, then answers false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> ServiceResult<bool> {
        let password = password.to_owned();
        let known = hash.is_some();
        let hash = hash.map_or_else(|| DUMMY_HASH.clone(), str::to_owned);
        let matches = self.run(move || Ok(verify_blocking(&password, &hash))).await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> ServiceResult<T> + Send + 'static,
    ) -> ServiceResult<T> {
        let _permit = self.permits.acquire().await.map_err(ServiceError::internal)?;
        tokio::task::spawn_blocking(work).await.map_err(ServiceError::internal)?
    }
}

fn hash_blocking(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| ServiceError::internal(anyhow::anyhow!("argon2: {error}")))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hasher = PasswordHasher::new();
        let hash = hasher.hash("correct horse").await.expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(hasher.verify("correct horse", Some(&hash)).await.expect("verify"));
        assert!(!hasher.verify("wrong horse", Some(&hash)).await.expect("verify"));
        assert!(!hasher.verify("correct horse", None).await.expect("verify"));
    }
}
