//! The attacker beside `product-failed-logins`: wrong passwords for one account from the load
//! generator's address, paced through the measured run, while `product(id)` is measured. A
//! failed login costs an argon2 hash, so without a back-off these would take CPU the reads need.
//! What the logins were answered is printed when the scenario ends. (That the account's correct
//! password works again after its back-off is a test of user-service's: `tests/it/login.rs`.)

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::json;

use crate::{RequestError, fixture::PASSWORD, graphql::GraphqlClient};

/// Failed logins sent in all.
pub const FAILED_LOGINS: u64 = 200;

/// The pause between two of them unless [`FailedLogins::spread_over`] sets it: 200 in ten
/// seconds.
const EVERY: Duration = Duration::from_millis(50);

const LOGIN: &str =
    "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }";

/// The account under attack and what its logins were answered.
#[derive(Debug)]
pub struct FailedLogins {
    client: GraphqlClient,
    victim: String,
    every: Duration,
    started: AtomicBool,
    answers: Arc<Answers>,
}

/// How the failed logins were answered.
#[derive(Debug, Default)]
struct Answers {
    /// `UNAUTHENTICATED`: the password was hashed and found wrong.
    hashed: AtomicU64,
    /// Refused at once by the back-off, without hashing.
    refused: AtomicU64,
    /// Anything else.
    other: AtomicU64,
}

impl FailedLogins {
    /// Creates the account under attack.
    pub async fn prepare(client: &GraphqlClient, run_id: &str) -> anyhow::Result<Self> {
        let victim = format!("loadgen-victim-{run_id}@example.com");
        let create = "mutation($email: String!, $password: String!) { createUser(name: \"Load Victim\", email: $email, password: $password) { id } }";
        client.request(create, json!({ "email": victim, "password": PASSWORD }), None).await?;
        Ok(Self {
            client: client.clone(),
            victim,
            every: EVERY,
            started: AtomicBool::new(false),
            answers: Arc::default(),
        })
    }

    /// Spreads the logins evenly over `run_time` (the warm-up and the measured run).
    pub fn spread_over(&mut self, run_time: Duration) {
        self.every = (run_time / u32::try_from(FAILED_LOGINS).unwrap_or(u32::MAX)).max(Duration::from_millis(1));
    }

    /// Starts the attack on the first call; later calls do nothing.
    pub fn start_once(&self) {
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        let (client, victim, answers) = (self.client.clone(), self.victim.clone(), Arc::clone(&self.answers));
        let pause = self.every;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(pause);
            for _ in 0..FAILED_LOGINS {
                every.tick().await;
                let answer =
                    client.request(LOGIN, json!({ "email": victim, "password": "wrong-password" }), None).await;
                let counter = match answer {
                    Err(RequestError::Graphql { code, .. }) if code == "UNAUTHENTICATED" => &answers.hashed,
                    Err(RequestError::Refused(_)) => &answers.refused,
                    _ => &answers.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

impl Drop for FailedLogins {
    fn drop(&mut self) {
        eprintln!(
            "failed logins for one account: {} answered UNAUTHENTICATED (hashed), {} refused by the back-off, {} other",
            self.answers.hashed.load(Ordering::Relaxed),
            self.answers.refused.load(Ordering::Relaxed),
            self.answers.other.load(Ordering::Relaxed),
        );
    }
}
