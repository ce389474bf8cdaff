//! Fresh PostgreSQL databases for tests, on the run's shared server (`TEST_POSTGRES_URL`) or a
//! private [`PostgresServer`].

use anyhow::Context as _;
pub use launcher::postgres::{POSTGRES_URL_ENV, PostgresServer};
use sqlx::{Connection as _, Executor as _, PgConnection};

/// A fresh database for one test. Holds the private server, if one had to be started.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    _server: Option<PostgresServer>,
}

/// What a service's outbox holds for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCount {
    /// Every event written (sent or not, until pruned).
    pub events: i64,
    /// Those the relay has not published yet.
    pub unsent: i64,
}

impl TestDatabase {
    /// The service's outbox, per topic.
    pub async fn outbox(&self) -> anyhow::Result<std::collections::BTreeMap<String, OutboxCount>> {
        let mut connection = PgConnection::connect(&self.url).await?;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT topic, COUNT(*), COUNT(*) FILTER (WHERE sent_at IS NULL) FROM outbox GROUP BY topic",
        )
        .fetch_all(&mut connection)
        .await?;
        connection.close().await?;
        Ok(rows.into_iter().map(|(topic, events, unsent)| (topic, OutboxCount { events, unsent })).collect())
    }
}

/// Creates a new, empty database on the shared server (or a private one) and returns its URL.
pub async fn postgres_database() -> anyhow::Result<TestDatabase> {
    let (admin_url, server) = match std::env::var(POSTGRES_URL_ENV) {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let server = tokio::task::spawn_blocking(PostgresServer::start).await??;
            (server.admin_url(), Some(server))
        }
    };
    let name = format!("test_{}", uuid::Uuid::now_v7().simple());
    let mut connection = PgConnection::connect(&admin_url)
        .await
        .with_context(|| format!("connecting to the test PostgreSQL server ({POSTGRES_URL_ENV})"))?;
    connection.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    connection.close().await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
    Ok(TestDatabase { url: format!("{base}/{name}"), _server: server })
}
