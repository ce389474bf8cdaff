//! Which replica's relay publishes a database's outbox.
//!
//! Replicas of a service share one database, and each runs a relay. If they all published, each
//! event would go out once per replica, and two relays could interleave one entity's events out
//! of order. So one relay publishes at a time, chosen by a PostgreSQL advisory lock held on a
//! connection of its own: the lock lasts as long as that session, so a replica that dies (or
//! loses its connection) frees it, and another takes over at its next round, starting from the
//! oldest unsent event. A leader rather than `FOR UPDATE SKIP LOCKED` claims: claims let
//! several relays publish at once, but then one entity's events, claimed by two relays, could
//! reach the broker out of order; publishing is not the bottleneck (the relay sends a batch per
//! round), order per entity is the contract.
//!
//! SQLite has one writer and one process per file: its relay always publishes.

use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AnyPool, Connection as _};

/// The advisory lock's key: any constant, as each service has its own database (advisory locks
/// are per database). "outbox" in ASCII.
const LOCK_KEY: i64 = 0x6f75_7462_6f78;

/// How often the holder checks that its lock connection is still alive.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// This process's right to publish the outbox.
#[derive(Debug)]
pub enum RelayLease {
    /// The only possible publisher (SQLite).
    Sole,
    /// Shared with replicas (PostgreSQL): publishing while `held` is some.
    Shared { held: Option<Held> },
}

/// The connection whose session holds the lock.
#[derive(Debug)]
pub struct Held {
    connection: AnyConnection,
    checked: Instant,
}

impl RelayLease {
    /// The lease for `pool`'s database: shared on PostgreSQL, sole otherwise.
    pub async fn for_pool(pool: &AnyPool) -> sqlx::Result<Self> {
        let connection = pool.acquire().await?;
        Ok(if connection.backend_name().eq_ignore_ascii_case("PostgreSQL") {
            Self::Shared { held: None }
        } else {
            Self::Sole
        })
    }

    /// True while this process may publish. Tries to take the lock when it does not hold it;
    /// drops it (and lets another replica take over) when its connection has failed.
    pub async fn holds(&mut self, pool: &AnyPool) -> bool {
        let Self::Shared { held } = self else { return true };
        if let Some(lock) = held {
            if lock.checked.elapsed() < CHECK_EVERY {
                return true;
            }
            if lock.connection.ping().await.is_ok() {
                lock.checked = Instant::now();
                return true;
            }
            tracing::warn!("the outbox relay lost its lock connection; another replica may take over");
            *held = None;
        }
        match try_lock(pool).await {
            Ok(Some(connection)) => {
                tracing::info!("this replica now publishes the outbox");
                *held = Some(Held { connection, checked: Instant::now() });
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "could not ask for the outbox relay's lock");
                false
            }
        }
    }
}

/// The lock, on a connection taken out of the pool (so that it is not handed to anyone else and
/// closing it releases the lock), or `None` when another session holds it.
async fn try_lock(pool: &AnyPool) -> sqlx::Result<Option<AnyConnection>> {
    let mut connection = pool.acquire().await?;
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut *connection).await?;
    Ok(locked.then(|| connection.detach()))
}
