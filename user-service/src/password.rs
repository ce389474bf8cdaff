//! Password hashing with argon2id, off the async runtime and bounded in parallelism.

use std::sync::{Arc, LazyLock};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version,
    password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng},
};
use service_runtime::{ServiceError, ServiceResult};
use tokio::sync::Semaphore;

/// A hash of a random password, verified against when an email is unknown, so that a login for
/// a missing account takes as long as one with a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&uuid::Uuid::now_v7().to_string()).unwrap_or_default());

/// Memory per hash, in KiB, and passes over it: 7 MiB × 5, one of the argon2id settings OWASP's
/// password storage cheat sheet lists as equal in strength to its first one (19 MiB × 2, the
/// crate's default). The time per hash is about the same; the memory is a third, and memory is
/// what a burst of sign-ups piles up: with 19 MiB blocks, user-service peaked at 66 MiB while
/// hashing on both cores. Existing hashes carry their own settings and still verify.
const MEMORY_KIB: u32 = 7 * 1024;
const PASSES: u32 = 5;

/// Hashes and verifies passwords. Cloning shares the threads and the concurrency limit.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    /// Each hash takes 7 MiB and a core for tens of milliseconds; at most one per core runs
    /// at once so a burst of sign-ups cannot exhaust memory or starve other requests. A request
    /// that gives up while waiting for a permit costs nothing more.
    permits: Arc<Semaphore>,
    /// One thread per permit, kept for the life of the service, each handing its hash block
    /// back to the system as soon as the hash is done. (On tokio's blocking pool, new threads
    /// started while old ones wound down, each taking a fresh block: 15 MiB more at the peak.)
    threads: Arc<rayon::ThreadPool>,
}

impl PasswordHasher {
    pub fn new() -> Result<Self, rayon::ThreadPoolBuildError> {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .thread_name(|index| format!("argon2-{index}"))
            // A hash that panicked fails its request (its answer is dropped); the default would
            // abort the process.
            .panic_handler(|_| tracing::error!("a password hash panicked"))
            .build()?;
        Ok(Self { permits: Arc::new(Semaphore::new(cores)), threads: Arc::new(threads) })
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
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.threads.spawn(move || {
            let outcome = work();
            service_runtime::allocator::return_freed_memory_now();
            // The receiver is gone only if the request was dropped meanwhile.
            let _ = answer.send(outcome);
        });
        answered.await.map_err(ServiceError::internal)?
    }
}

fn hash_blocking(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| ServiceError::internal(anyhow::anyhow!("argon2: {error}")))
}

fn hasher() -> ServiceResult<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None)
        .map_err(|error| ServiceError::internal(anyhow::anyhow!("argon2 settings: {error}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hasher = PasswordHasher::new().expect("threads");
        let hash = hasher.hash("correct horse").await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse", Some(&hash)).await.expect("verify"));
        assert!(!hasher.verify("wrong horse", Some(&hash)).await.expect("verify"));
        assert!(!hasher.verify("correct horse", None).await.expect("verify"));
    }

    #[tokio::test]
    async fn hashes_made_with_the_former_settings_still_verify() {
        let salt = SaltString::generate(&mut OsRng);
        let former = Argon2::default().hash_password(b"correct horse", &salt).expect("hash").to_string();
        assert!(former.contains("m=19456,t=2"), "{former}");
        let hasher = PasswordHasher::new().expect("threads");
        assert!(hasher.verify("correct horse", Some(&former)).await.expect("verify"));
        assert!(!hasher.verify("wrong horse", Some(&former)).await.expect("verify"));
    }
}
