//! Backpressure for the order saga: while the saga is behind (too many orders `PENDING`, or the
//! oldest waiting too long), or this process is already checking and writing as many orders as
//! it may, `CreateOrder` is refused at once with `RESOURCE_EXHAUSTED` and a retry hint, instead
//! of accepting orders that cannot be settled in time. It only refuses new orders; it never
//! touches the ones already accepted.
//!
//! The backlog is read from the database (so it holds for every replica's orders) a few times
//! a second by [`Backlog::watch`]. Orders accepted since the last reading, and orders admitted
//! but still being written, are added to it, so that neither a burst between two readings nor a
//! slow database (thousands of requests between the check and the insert) can overshoot the
//! bound.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use service_runtime::{ServiceError, ServiceResult, time};
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;

use crate::status::OrderStatus;

/// How often the backlog is read.
const REFRESH: Duration = Duration::from_millis(200);

/// What a refused client is told to wait before trying again, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The bounds' defaults, for the flags and for [`BacklogArgs::default`] alike.
const DEFAULT_MAX_PENDING: u64 = 1000;
const DEFAULT_MAX_PENDING_AGE_MS: u64 = 1000;
const DEFAULT_MAX_ORDERS_IN_FLIGHT: u64 = 64;

/// The bounds, per the configuration contract (0 turns a bound off).
#[derive(Debug, Clone, clap::Args)]
pub struct BacklogArgs {
    /// Refuse new orders while more than this many are PENDING (0: no limit).
    #[arg(long, env = "SAGA_MAX_PENDING", default_value_t = DEFAULT_MAX_PENDING)]
    pub saga_max_pending: u64,
    /// Refuse new orders while the oldest PENDING order has waited longer than this, in
    /// milliseconds (0: no limit). An accepted order then settles within about this long.
    #[arg(long, env = "SAGA_MAX_PENDING_AGE_MS", default_value_t = DEFAULT_MAX_PENDING_AGE_MS)]
    pub saga_max_pending_age_ms: u64,
    /// Refuse new orders while this many are being checked and written by this process (0: no
    /// limit).
    ///
    /// The bounds above say how many orders may wait for the saga; this one how many may wait
    /// for this process itself (the peers' answers, the one writer connection). Past capacity,
    /// with only those, ~1,000 admitted orders queued here, an accepted `createOrder` took
    /// 0.1–1 s, and the gateway held every one of them (a connection, a request, a backend
    /// call): 67 MiB at 1,500 orders/s against 44 MiB with this bound, which also settled more
    /// (640/s against 574/s). Refused at once instead, a client learns within milliseconds to
    /// come back later.
    #[arg(long, env = "MAX_ORDERS_IN_FLIGHT", default_value_t = DEFAULT_MAX_ORDERS_IN_FLIGHT)]
    pub max_orders_in_flight: u64,
}

impl Default for BacklogArgs {
    fn default() -> Self {
        Self {
            saga_max_pending: DEFAULT_MAX_PENDING,
            saga_max_pending_age_ms: DEFAULT_MAX_PENDING_AGE_MS,
            max_orders_in_flight: DEFAULT_MAX_ORDERS_IN_FLIGHT,
        }
    }
}

/// The last reading of the backlog, shared by the handlers and the watcher.
#[derive(Debug, Clone)]
pub struct Backlog {
    limits: BacklogArgs,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Orders PENDING at the last reading.
    pending: AtomicU64,
    /// Orders this process accepted since the last reading.
    accepted_since: AtomicU64,
    /// Orders this process admitted and is still writing (each holds an [`Admission`]).
    admitting: AtomicU64,
    /// When the oldest PENDING order was created (ms since the epoch), 0 when none is.
    oldest_pending_at: AtomicI64,
}

impl Backlog {
    pub fn new(limits: BacklogArgs) -> Self {
        Self { limits, state: Arc::default() }
    }

    /// Refuses a new order while the saga is behind. An admitted order counts as pending from
    /// here on: [`Admission::accepted`] once it is stored, or dropping the admission if it is not.
    pub fn admit(&self) -> ServiceResult<Admission> {
        let admission = Admission { state: Arc::clone(&self.state) };
        let admitting = self.state.admitting.fetch_add(1, Ordering::Relaxed) + 1;
        let in_flight_limit = self.limits.max_orders_in_flight;
        if in_flight_limit > 0 && admitting > in_flight_limit {
            return Err(ServiceError::Overloaded {
                message: format!(
                    "orders are not being accepted: {in_flight_limit} are being written now, the most at once"
                ),
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        let pending =
            self.state.pending.load(Ordering::Relaxed) + self.state.accepted_since.load(Ordering::Relaxed) + admitting;
        if self.limits.saga_max_pending > 0 && pending > self.limits.saga_max_pending {
            return Err(ServiceError::Overloaded {
                message: format!(
                    "orders are not being accepted: {pending} orders are waiting to be confirmed (the limit is {})",
                    self.limits.saga_max_pending
                ),
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        let oldest = self.state.oldest_pending_at.load(Ordering::Relaxed);
        let waited = u64::try_from(time::now_millis() - oldest).unwrap_or_default();
        if self.limits.saga_max_pending_age_ms > 0 && oldest > 0 && waited > self.limits.saga_max_pending_age_ms {
            return Err(ServiceError::Overloaded {
                message: format!(
                    "orders are not being accepted: the oldest order waiting to be confirmed has waited {waited} ms (the limit is {} ms)",
                    self.limits.saga_max_pending_age_ms
                ),
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        Ok(admission)
    }

    /// Reads the backlog every [`REFRESH`] until `cancel` fires.
    pub async fn watch(self, pool: AnyPool, cancel: CancellationToken) {
        if self.limits.saga_max_pending == 0 && self.limits.saga_max_pending_age_ms == 0 {
            return;
        }
        loop {
            // Orders accepted before the query started are in its answer.
            let accepted_before = self.state.accepted_since.load(Ordering::Relaxed);
            let reading: Result<(i64, Option<i64>), _> =
                sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM orders WHERE status = $1")
                    .bind(OrderStatus::Pending.as_str())
                    .fetch_one(&pool)
                    .await;
            match reading {
                Ok((pending, oldest)) => {
                    self.state.pending.store(u64::try_from(pending).unwrap_or_default(), Ordering::Relaxed);
                    self.state.oldest_pending_at.store(oldest.unwrap_or_default(), Ordering::Relaxed);
                    self.state.accepted_since.fetch_sub(accepted_before, Ordering::Relaxed);
                }
                Err(error) => tracing::warn!(%error, "reading the saga's backlog failed"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(REFRESH) => {}
            }
        }
    }
}

/// An order admitted by [`Backlog::admit`] and not yet stored. Dropping it (the order failed
/// validation or could not be written) takes it out of the backlog again.
#[derive(Debug)]
#[must_use = "an admission counts as pending until it is accepted or dropped"]
pub struct Admission {
    state: Arc<State>,
}

impl Admission {
    /// The order is stored: it is pending until the next reading of the backlog finds it.
    pub fn accepted(self) {
        self.state.accepted_since.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.state.admitting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(max_pending: u64, max_age_ms: u64) -> Backlog {
        Backlog::new(BacklogArgs {
            saga_max_pending: max_pending,
            saga_max_pending_age_ms: max_age_ms,
            max_orders_in_flight: 0,
        })
    }

    #[test]
    fn admits_below_the_bounds_and_refuses_past_them() {
        let backlog = backlog(2, 1000);
        backlog.admit().expect("0 pending").accepted();
        backlog.admit().expect("1 pending").accepted();
        let refused = backlog.admit().expect_err("3 pending with this one");
        assert!(matches!(refused, ServiceError::Overloaded { retry_after_secs: 1, .. }), "{refused:?}");
        assert!(refused.to_string().contains("3 orders are waiting"), "{refused}");
    }

    #[test]
    fn orders_still_being_written_count_and_a_dropped_admission_frees_its_place() {
        let backlog = backlog(2, 1000);
        let first = backlog.admit().expect("first");
        let second = backlog.admit().expect("second");
        assert!(backlog.admit().is_err(), "two admitted and not yet stored fill the bound");
        drop(first);
        let third = backlog.admit().expect("the first one's place is free again");
        second.accepted();
        drop(third);
        assert_eq!(backlog.state.admitting.load(Ordering::Relaxed), 0);
        assert_eq!(backlog.state.accepted_since.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn refuses_past_the_orders_being_written_at_once_whatever_the_backlog() {
        let backlog =
            Backlog::new(BacklogArgs { saga_max_pending: 0, saga_max_pending_age_ms: 0, max_orders_in_flight: 3 });
        let writing: Vec<Admission> = (0..3).map(|n| backlog.admit().unwrap_or_else(|_| panic!("order {n}"))).collect();
        let refused = backlog.admit().expect_err("one more than may be written at once");
        assert!(refused.to_string().contains("being written now"), "{refused}");
        for admission in writing {
            admission.accepted();
        }
        backlog.admit().expect("written, they make room").accepted();
    }

    #[test]
    fn refuses_while_the_oldest_pending_order_is_too_old() {
        let backlog = backlog(0, 500);
        backlog.state.oldest_pending_at.store(time::now_millis() - 100, Ordering::Relaxed);
        assert!(backlog.admit().is_ok());
        backlog.state.oldest_pending_at.store(time::now_millis() - 2_000, Ordering::Relaxed);
        let refused = backlog.admit().expect_err("2 s old");
        assert!(refused.to_string().contains("the limit is 500 ms"), "{refused}");
    }

    #[test]
    fn zero_turns_both_bounds_off() {
        let backlog = backlog(0, 0);
        backlog.state.pending.store(1_000_000, Ordering::Relaxed);
        backlog.state.oldest_pending_at.store(1, Ordering::Relaxed);
        assert!(backlog.admit().is_ok());
    }
}
