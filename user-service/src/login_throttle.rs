//! Back-off for failed logins, per account and per client address.
//!
//! A wrong password costs an argon2 hash (~15–20 ms of a core), so a client guessing one
//! account's password both tries passwords and burns CPU every other request needs. After a few
//! failures in a row an account's logins are refused without hashing for a while that doubles
//! with each further failure, up to [`MAX_BACKOFF`]; the refusal says when to try again. A
//! correct login ends it. The wait is short on purpose: someone who knows an email address can
//! keep that account waiting, and at a minute at most that costs its owner little.
//!
//! The same back-off counts failures per client address, for a client trying many accounts
//! (password spraying). It allows more failures, since many people may share an address behind
//! a NAT, and a correct login does not end it: one valid account must not wash away the
//! failures on all the others.
//!
//! Unknown email addresses are counted like known ones, so that the answers do not tell which
//! exist.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Failures in a row on one account that cost nothing but the failure itself.
pub const FREE_FAILURES_PER_ACCOUNT: u32 = 5;

/// Failures in a row from one client address that cost nothing but the failure itself.
pub const FREE_FAILURES_PER_ADDRESS: u32 = 20;

/// The longest an account waits after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// The most keys (accounts or addresses) remembered at once; past it the oldest-looking half is
/// dropped, so that a flood of made-up keys cannot grow the map without bound.
const MAX_KEYS: usize = 100_000;

/// The failures of each key (an account, or a client address) with recent ones.
#[derive(Debug)]
pub struct LoginThrottle {
    free_failures: u32,
    keys: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    in_a_row: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl LoginThrottle {
    /// A back-off that starts after `free_failures` failures in a row.
    pub fn new(free_failures: u32) -> Self {
        Self { free_failures, keys: Mutex::default() }
    }

    /// `Err(wait)` while `key`'s logins are refused: how long until the next try is heard.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        match self.lock().get(key).and_then(|failures| failures.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// A login for `key` failed.
    pub fn failed(&self, key: &str) {
        let now = Instant::now();
        let mut keys = self.lock();
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            keys.retain(|_, failures| now.duration_since(failures.last) < FORGET_AFTER);
            if keys.len() >= MAX_KEYS {
                let cutoff = now.checked_sub(FORGET_AFTER / 2).unwrap_or(now);
                keys.retain(|_, failures| failures.last > cutoff);
            }
        }
        let failures = keys.entry(key.to_owned()).or_insert(Failures { in_a_row: 0, last: now, blocked_until: None });
        if now.duration_since(failures.last) >= FORGET_AFTER {
            failures.in_a_row = 0;
        }
        failures.in_a_row = failures.in_a_row.saturating_add(1);
        failures.last = now;
        failures.blocked_until = backoff(self.free_failures, failures.in_a_row).map(|wait| now + wait);
    }

    /// A login for `key` succeeded: its failures are forgotten.
    pub fn succeeded(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The wait after `in_a_row` failures: none up to `free_failures`, then 1 s, 2 s, 4 s, … up to
/// [`MAX_BACKOFF`].
fn backoff(free_failures: u32, in_a_row: u32) -> Option<Duration> {
    let beyond = in_a_row.checked_sub(free_failures)?.checked_sub(1)?;
    let seconds = 1_u64.checked_shl(beyond.min(16)).unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds).min(MAX_BACKOFF))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_starts_after_the_free_failures_and_doubles_up_to_the_cap() {
        let waits: Vec<Option<u64>> = (1..=14).map(|n| backoff(5, n).map(|wait| wait.as_secs())).collect();
        assert_eq!(waits[..5], [None; 5]);
        assert_eq!(waits[5..], [Some(1), Some(2), Some(4), Some(8), Some(16), Some(32), Some(60), Some(60), Some(60)]);
        assert_eq!(backoff(5, u32::MAX), Some(MAX_BACKOFF));
        assert_eq!(backoff(20, 20), None);
        assert_eq!(backoff(20, 21), Some(Duration::from_secs(1)));
    }

    #[test]
    fn an_account_is_refused_after_its_failures_and_a_success_ends_it() {
        let throttle = LoginThrottle::new(FREE_FAILURES_PER_ACCOUNT);
        for _ in 0..FREE_FAILURES_PER_ACCOUNT {
            assert_eq!(throttle.check("a@example.com"), Ok(()));
            throttle.failed("a@example.com");
        }
        assert_eq!(throttle.check("a@example.com"), Ok(()), "the free failures cost no wait");
        throttle.failed("a@example.com");
        let wait = throttle.check("a@example.com").expect_err("waiting");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO, "{wait:?}");
        assert_eq!(throttle.check("b@example.com"), Ok(()), "other accounts are not affected");
        throttle.succeeded("a@example.com");
        assert_eq!(throttle.check("a@example.com"), Ok(()));
    }
}
