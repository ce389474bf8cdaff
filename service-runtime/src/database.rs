//! Connecting to a service's own database and migrating it at start.
//!
//! Services talk to an [`AnyPool`], so one set of queries and one set of migrations serve
//! SQLite and PostgreSQL alike. The SQL therefore sticks to what both understand: `$n`
//! placeholders, `TEXT` and `BIGINT` columns, `RETURNING`, and `ON CONFLICT`.

use std::time::Duration;

use sqlx::{
    AnyPool, Executor, FromRow,
    any::{AnyPoolOptions, AnyRow},
    migrate::Migrator,
};

use crate::{config::DatabaseUrl, grpc::StartupError};

/// How long a writer waits for SQLite's lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Connections to a SQLite file. SQLite runs one writer at a time and each connection has a
/// thread and a page cache of its own, so connections beyond what the cores can keep busy only
/// hold memory: with 4 instead of 8, order- and product-service held 4 MiB less after the
/// bench's runs (24 vs 28 MiB), and `mixed`, `userOrders` and `createOrder` did as well or
/// better (measured in the same session).
const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Each SQLite connection's page cache, in KiB (SQLite's default is 2,000). The file's pages
/// stay in the operating system's cache, so a page missed here costs a `pread` rather than a
/// disk read; the B-tree's upper pages, which every lookup reads, fit many times over.
const SQLITE_CACHE_KIB: u32 = 512;

/// Opens (creating it if it is a missing SQLite file) and migrates the database at `url`, with
/// each migrator in turn (a service's own, then the shared outbox tables). Each must ignore the
/// others' versions: see [`migrator`].
pub async fn connect(url: &DatabaseUrl, migrators: &[Migrator]) -> Result<AnyPool, StartupError> {
    sqlx::any::install_default_drivers();
    let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
    let options = match url {
        DatabaseUrl::Sqlite { path } => {
            if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|error| {
                    StartupError::config("DATA_DIR", format!("cannot create {}: {error}", parent.display()))
                })?;
            }
            // WAL lets readers run beside the one writer; NORMAL sync is safe under WAL.
            options.max_connections(SQLITE_MAX_CONNECTIONS).after_connect(|connection, _| {
                Box::pin(async move {
                    connection.execute(format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}").as_str()).await?;
                    connection.execute("PRAGMA journal_mode = WAL").await?;
                    connection.execute("PRAGMA synchronous = NORMAL").await?;
                    connection.execute("PRAGMA foreign_keys = ON").await?;
                    connection.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str()).await?;
                    Ok(())
                })
            })
        }
        DatabaseUrl::Postgres { .. } => options.max_connections(10),
    };
    let pool = options
        .connect(&url.connection_string())
        .await
        .map_err(|source| StartupError::Database { url: url.to_string(), source })?;
    for migrator in migrators {
        migrator.run(&pool).await.map_err(|source| StartupError::Migration { url: url.to_string(), source })?;
    }
    tracing::info!(database = %url, "database ready");
    Ok(pool)
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
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = format!("{select} ({}) {suffix}", placeholders(1, ids.len()));
    let mut fetch = sqlx::query_as(&query);
    for id in ids {
        fetch = fetch.bind(id);
    }
    fetch.fetch_all(executor).await
}

/// `$first, $first+1, ...` for `count` values, for an `IN (...)` list. Positional `$n`
/// placeholders work on both SQLite and PostgreSQL.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_from_first() {
        assert_eq!(super::placeholders(2, 3), "$2, $3, $4");
        assert_eq!(super::placeholders(1, 0), "");
    }
}
