//! Connecting to a service's own database and migrating it at start.
//!
//! Services talk to a [`Database`] (sqlx `AnyPool`s for reading and for writing), so one set of
//! queries and one set of migrations serve SQLite and PostgreSQL alike. The SQL therefore sticks
//! to what both understand: `$n` placeholders, `TEXT` and `BIGINT` columns, `RETURNING`, and
//! `ON CONFLICT`.

use std::time::Duration;

use sqlx::{
    AnyPool, Executor, FromRow,
    any::{AnyPoolOptions, AnyRow},
    migrate::Migrator,
};

use crate::{config::DatabaseUrl, startup::StartupError};

/// How long a writer waits for SQLite's lock before giving up. This process's own writers take
/// turns before they reach SQLite (see [`Database`]), so only another process (the `sqlite3`
/// shell, a backup) can make one wait here.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Connections to a SQLite file, the writer's included. SQLite runs one writer at a time and
/// each connection has a thread and a page cache of its own, so connections beyond what the
/// cores can keep busy only hold memory: with 4 instead of 8, order- and product-service held
/// 4 MiB less after the bench's runs (24 vs 28 MiB), and `mixed`, `userOrders` and
/// `createOrder` did as well or better (measured in the same session).
const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Each SQLite connection's page cache, in KiB (SQLite's default is 2,000). The file's pages
/// stay in the operating system's cache, so a page missed here costs a `pread` rather than a
/// disk read; the B-tree's upper pages, which every lookup reads, fit many times over.
const SQLITE_CACHE_KIB: u32 = 512;

/// PostgreSQL connections per process.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;

/// How long a query waits for a free connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A service's database: where its queries read and where they write.
///
/// On SQLite every write of this process goes through one connection of its own, and the
/// reads through the others (which refuse to write: `PRAGMA query_only`). SQLite lets one
/// connection write at a time; with several connections writing, the others wait in its busy
/// handler, which sleeps 1 to 100 ms between tries while newer writers may take the lock first.
/// At 500 orders/s order-service's connections slept there ~110 times a second, and past
/// capacity an accepted `createOrder` took 0.1–0.5 s. Through one connection, writers queue for
/// it in the order they came (sqlx's pool is fair) and none of them sleeps.
///
/// On PostgreSQL, which runs writers side by side, both are the same pool.
#[derive(Debug, Clone)]
pub struct Database {
    reads: AnyPool,
    /// The writer's pool, when it is not `reads` (SQLite).
    writer: Option<AnyPool>,
}

impl Database {
    /// For queries that only read.
    pub fn reads(&self) -> &AnyPool {
        &self.reads
    }

    /// For every statement or transaction that writes (a transaction that reads first and then
    /// writes included: begun here on SQLite, no other writer of this process can come between
    /// its read and its write).
    pub fn writes(&self) -> &AnyPool {
        self.writer.as_ref().unwrap_or(&self.reads)
    }

    /// Connections open and idle now, over both pools.
    pub fn connections(&self) -> PoolConnections {
        let pools = std::iter::once(&self.reads).chain(&self.writer);
        pools.fold(PoolConnections::default(), |counts, pool| {
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            PoolConnections { idle: counts.idle + idle, in_use: counts.in_use + pool.size().saturating_sub(idle) }
        })
    }
}

/// How many of a [`Database`]'s connections are busy and how many wait for work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolConnections {
    pub in_use: u32,
    pub idle: u32,
}

/// Opens (creating it if it is a missing SQLite file) and migrates the database at `url`, with
/// each migrator in turn (a service's own, then the shared outbox tables). Each must ignore the
/// others' versions: see [`migrator`].
pub async fn connect(url: &DatabaseUrl, migrators: &[Migrator]) -> Result<Database, StartupError> {
    sqlx::any::install_default_drivers();
    let open = |options: AnyPoolOptions| async {
        options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&url.connection_string())
            .await
            .map_err(|source| StartupError::Database { url: url.to_string(), source })
    };
    let database = match url {
        DatabaseUrl::Sqlite { path } => {
            if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|error| {
                    StartupError::config("DATA_DIR", format!("cannot create {}: {error}", parent.display()))
                })?;
            }
            // The writer first: it creates the file and turns WAL on, which the readers need.
            let writes = open(sqlite_options(1, SqliteRole::Writer)).await?;
            let reads = open(sqlite_options(SQLITE_MAX_CONNECTIONS - 1, SqliteRole::Reader)).await?;
            Database { reads, writer: Some(writes) }
        }
        DatabaseUrl::Postgres { .. } => {
            let pool = open(AnyPoolOptions::new().max_connections(POSTGRES_MAX_CONNECTIONS)).await?;
            Database { reads: pool, writer: None }
        }
    };
    for migrator in migrators {
        migrator
            .run(database.writes())
            .await
            .map_err(|source| StartupError::Migration { url: url.to_string(), source })?;
    }
    tracing::info!(database = %url, "database ready");
    Ok(database)
}

/// What a SQLite pool's connections are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqliteRole {
    Writer,
    Reader,
}

/// A SQLite pool of `connections`, each set up for `role` as it opens.
///
/// Not tested before each use (`test_before_acquire(false)`): sqlx's test is a ping, and a
/// SQLite connection's every command is a hand-off to its own thread and back, so the ping
/// doubled the hand-offs of every query. It guards against connections that go stale on the
/// far side of a network (kept on PostgreSQL); a SQLite connection is a file opened by this
/// process, and nothing outside it closes one.
fn sqlite_options(connections: u32, role: SqliteRole) -> AnyPoolOptions {
    let options = AnyPoolOptions::new().max_connections(connections).test_before_acquire(false);
    options.after_connect(move |connection, _| {
        Box::pin(async move {
            connection.execute(format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}").as_str()).await?;
            // WAL lets readers run beside the one writer; NORMAL sync is safe under WAL.
            if role == SqliteRole::Writer {
                connection.execute("PRAGMA journal_mode = WAL").await?;
            }
            connection.execute("PRAGMA synchronous = NORMAL").await?;
            connection.execute("PRAGMA foreign_keys = ON").await?;
            connection.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str()).await?;
            // A write sent to a reader by mistake fails at once instead of contending.
            if role == SqliteRole::Reader {
                connection.execute("PRAGMA query_only = ON").await?;
            }
            Ok(())
        })
    })
}

/// Prepares a migrator (from `sqlx::migrate!()`) to share a database with other migrators:
/// versions it does not know are someone else's, not an error.
pub fn migrator(mut migrator: Migrator) -> Migrator {
    migrator.set_ignore_missing(true);
    migrator
}

/// Runs `{select} ($1, ..., $n) {suffix}` with `ids` bound to the list: the one query behind
/// every batch lookup (`WHERE id IN`, items of several orders), so none of them is N+1.
/// `executor` is a pool, or a transaction's connection.
pub async fn fetch_all_in<'c, T, E>(
    executor: E,
    select: &str,
    ids: &[String],
    suffix: &str,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'row> FromRow<'row, AnyRow> + Send + Unpin,
    E: Executor<'c, Database = sqlx::Any>,
{
    let Some(padded) = padded_in_list(ids) else { return Ok(Vec::new()) };
    let query = format!("{select} ({}) {suffix}", placeholders(1, padded.len()));
    let mut fetch = sqlx::query_as(&query);
    for id in padded {
        fetch = fetch.bind(id);
    }
    fetch.fetch_all(executor).await
}

/// `ids` for an `IN (...)` list, padded with its last id to the next power of two (none when
/// there is no id).
///
/// Each connection keeps every statement it prepared (sqlx caches up to 100 per connection),
/// and an `IN` list of each length is a statement of its own: lookups of 1 to 60 ids kept
/// dozens per connection, most of the 3.4 MB SQLite held in order-service after a run (its
/// page caches held 0.6). Padded, lengths fall into a few sizes; a repeated id changes nothing
/// an `IN` matches.
pub fn padded_in_list<T>(ids: &[T]) -> Option<Vec<&T>> {
    let last = ids.last()?;
    let mut padded: Vec<&T> = ids.iter().collect();
    padded.resize(ids.len().next_power_of_two(), last);
    Some(padded)
}

/// `$first, $first+1, ...` for `count` values, for an `IN (...)` list. Positional `$n`
/// placeholders work on both SQLite and PostgreSQL.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_lists_are_padded_with_their_last_id_to_a_power_of_two() {
        let ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(super::padded_in_list(&ids).expect("ids"), ["a", "b", "c", "c"]);
        assert_eq!(super::padded_in_list(&ids[..2]).expect("two"), ["a", "b"]);
        assert_eq!(super::padded_in_list(&ids[..1]).expect("one"), ["a"]);
        assert!(super::padded_in_list::<String>(&[]).is_none());
    }

    #[test]
    fn placeholders_are_numbered_from_first() {
        assert_eq!(super::placeholders(2, 3), "$2, $3, $4");
        assert_eq!(super::placeholders(1, 0), "");
    }

    async fn sqlite_file(dir: &tempfile::TempDir) -> super::Database {
        let url = format!("sqlite://{}", dir.path().join("test.db").display()).parse().expect("URL");
        let database = super::connect(&url, &[]).await.expect("connect");
        sqlx::query("CREATE TABLE counts (n BIGINT NOT NULL)").execute(database.writes()).await.expect("table");
        database
    }

    #[tokio::test]
    async fn sqlite_reads_refuse_to_write_and_writes_see_each_other() {
        let dir = tempfile::tempdir().expect("dir");
        let database = sqlite_file(&dir).await;
        let refused = sqlx::query("INSERT INTO counts (n) VALUES (1)").execute(database.reads()).await;
        assert!(refused.is_err(), "a write through the read pool: {refused:?}");
        sqlx::query("INSERT INTO counts (n) VALUES (2)").execute(database.writes()).await.expect("write");
        let stored: Vec<i64> =
            sqlx::query_scalar("SELECT n FROM counts").fetch_all(database.reads()).await.expect("read");
        assert_eq!(stored, [2], "a committed write is visible to the next read");
    }

    #[tokio::test]
    async fn concurrent_sqlite_transactions_that_read_then_write_all_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let database = sqlite_file(&dir).await;
        sqlx::query("INSERT INTO counts (n) VALUES (0)").execute(database.writes()).await.expect("seed");
        // Each reads the count and writes it back plus one: with two writers side by side one of
        // them would fail (its snapshot is stale) or an increment would be lost.
        let increments = (0..50).map(|_| {
            let database = database.clone();
            tokio::spawn(async move {
                let mut transaction = database.writes().begin().await?;
                let n: i64 = sqlx::query_scalar("SELECT n FROM counts").fetch_one(&mut *transaction).await?;
                sqlx::query("UPDATE counts SET n = $1").bind(n + 1).execute(&mut *transaction).await?;
                transaction.commit().await
            })
        });
        for increment in futures::future::join_all(increments).await {
            increment.expect("task").expect("increment");
        }
        let n: i64 = sqlx::query_scalar("SELECT n FROM counts").fetch_one(database.reads()).await.expect("read");
        assert_eq!(n, 50);
        let connections = database.connections();
        assert!(connections.in_use + connections.idle <= super::SQLITE_MAX_CONNECTIONS, "{connections:?}");
    }
}
