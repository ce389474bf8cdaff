//! A service's database for one test, on SQLite or PostgreSQL.

use service_runtime::config::DatabaseArgs;

use crate::{TestDatabase, postgres_database};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// One service's storage for one test. It outlives restarts of the service, so a test can
/// stop a service and start it again on the same data; dropping it removes everything.
#[derive(Debug)]
pub struct TestStorage {
    dir: tempfile::TempDir,
    postgres: Option<TestDatabase>,
}

impl TestStorage {
    /// A temporary directory, plus a fresh PostgreSQL database for [`DatabaseKind::Postgres`].
    pub async fn new(backend: DatabaseKind) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("service-test-").tempdir()?;
        let postgres = match backend {
            DatabaseKind::Sqlite => None,
            DatabaseKind::Postgres => Some(postgres_database().await?),
        };
        Ok(Self { dir, postgres })
    }

    /// The database settings a service should start with.
    pub fn database_args(&self) -> DatabaseArgs {
        match &self.postgres {
            Some(database) => DatabaseArgs { data_dir: self.dir.path().to_owned(), ..DatabaseArgs::url(&database.url) },
            None => DatabaseArgs::sqlite_in(self.dir.path()),
        }
    }

    /// The temporary directory (the SQLite files live here).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Generates, for each named `async fn name(backend: DatabaseKind)`, a module `name` with two tests,
/// `sqlite` and `postgres`, so every storage-touching test runs on both databases.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::DatabaseKind::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::DatabaseKind::Postgres).await
                }
            }
        )+
    };
}
