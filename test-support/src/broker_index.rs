//! The index tansu 0.6's SQLite storage lacks, added to a broker's storage file at start.
//!
//! tansu reads a fetched record's headers with one query per record that joins `header` on
//! `(topition, offset_id)`, and its schema has no index on those columns: SQLite scans the
//! whole `header` table for every record it hands out. Every event this system publishes carries
//! two headers, so the cost of a fetched record grows with everything the broker ever stored;
//! after a benchmark's worth of orders it was most of the broker's CPU. Deleting records (topic
//! retention) cascades into `header` the same way. The index is ours, not tansu's: it changes no
//! row and no answer, only the plan, and it stays in the file across restarts.

use std::{
    path::{Path, PathBuf},
    str::FromStr as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, sqlite::SqliteConnectOptions};

/// The name of the index, so that it can be found (and dropped) by hand.
pub const HEADER_INDEX: &str = "header_by_record";

/// Adds [`HEADER_INDEX`] to the broker storage at `db` (the file after `sqlite:///`), waiting up
/// to `timeout` for its `header` table. Call it once the broker listens (tansu creates its
/// tables before that, and a write while it still creates them makes it fail: it sets no busy
/// timeout) and before any client connects, for the same reason. On a new file it takes a millisecond; on a file that
/// already has the index, nothing is written.
///
/// It runs on a thread of its own, so it may be called from synchronous code and from inside
/// an async runtime alike.
pub fn index_broker_storage(db: &Path, timeout: Duration) -> anyhow::Result<()> {
    block_on_own_thread(add_index(db.to_owned(), timeout))
}

/// Runs `work` to completion on a thread and runtime of its own.
fn block_on_own_thread<T: Send>(work: impl Future<Output = anyhow::Result<T>> + Send) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(work))
            .join()
            .map_err(|_| anyhow::anyhow!("a broker storage task panicked"))?
    })
}

async fn add_index(db: PathBuf, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if db.exists() {
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?
                .busy_timeout(Duration::from_secs(5))
                .create_if_missing(false);
            let mut connection = sqlx::SqliteConnection::connect_with(&options)
                .await
                .with_context(|| format!("opening {}", db.display()))?;
            let tables: i64 =
                sqlx::query_scalar("select count(*) from sqlite_master where type = 'table' and name = 'header'")
                    .fetch_one(&mut connection)
                    .await?;
            if tables == 1 {
                sqlx::query(&format!("create index if not exists {HEADER_INDEX} on header (topition, offset_id)"))
                    .execute(&mut connection)
                    .await
                    .with_context(|| format!("adding {HEADER_INDEX} to {}", db.display()))?;
                connection.close().await?;
                return Ok(());
            }
            connection.close().await?;
        }
        if Instant::now() > deadline {
            bail!("the broker did not create its tables in {} within {timeout:?}", db.display());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the broker storage at `db` has [`HEADER_INDEX`].
pub fn has_header_index(db: &Path) -> anyhow::Result<bool> {
    block_on_own_thread(async {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?.create_if_missing(false);
        let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
        let found: i64 = sqlx::query_scalar("select count(*) from sqlite_master where type = 'index' and name = $1")
            .bind(HEADER_INDEX)
            .fetch_one(&mut connection)
            .await?;
        connection.close().await?;
        Ok(found == 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_added_once_the_header_table_exists() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("broker.db");
        let create = db.clone();
        // The table appears a little after the call starts, as it does when tansu starts.
        let creator = std::thread::spawn(move || -> anyhow::Result<()> {
            std::thread::sleep(Duration::from_millis(100));
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let options =
                    SqliteConnectOptions::from_str(&format!("sqlite://{}", create.display()))?.create_if_missing(true);
                let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
                sqlx::query("create table header (topition integer, offset_id integer, k blob, v blob)")
                    .execute(&mut connection)
                    .await?;
                anyhow::Ok(())
            })
        });
        index_broker_storage(&db, Duration::from_secs(5))?;
        creator.join().map_err(|_| anyhow::anyhow!("the creator panicked"))??;

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let plan: Vec<String> = runtime.block_on(async {
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?;
            let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as("explain query plan select k, v from header where topition = 1 and offset_id = 2")
                    .fetch_all(&mut connection)
                    .await?;
            anyhow::Ok(rows.into_iter().map(|row| row.3).collect())
        })?;
        assert!(plan.iter().any(|step| step.contains(HEADER_INDEX)), "{plan:?}");
        // A second call finds the index there and succeeds.
        index_broker_storage(&db, Duration::from_secs(1))
    }

    #[test]
    fn a_broker_that_never_creates_its_tables_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let error = index_broker_storage(&dir.path().join("broker.db"), Duration::from_millis(50)).unwrap_err();
        assert!(error.to_string().contains("did not create its tables"), "{error:#}");
    }
}
