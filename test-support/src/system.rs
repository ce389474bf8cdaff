//! The whole system for one test: the three services and the gateway as real processes on
//! free ports, optionally on a broker and on PostgreSQL. Every process stops when it drops.

use std::time::Duration;

use launcher::wiring::{
    ADMIN_EMAIL as ADMIN_EMAIL_ENV, ADMIN_PASSWORD as ADMIN_PASSWORD_ENV, DATA_DIR, JWT_SECRET as JWT_SECRET_ENV,
    KAFKA_TOPIC_PARTITIONS, LISTEN_ADDR, METRICS_ADDR, Peers,
};

use crate::{BrokerProcess, BrokerStorage, ServiceProcess, TestDatabase, workspace_binary};

/// The admin account every test system has.
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password";
const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

/// A backend service's process with the storage it keeps across restarts (not to be confused
/// with [`crate::DatabaseKind`], the database a test runs on).
#[derive(Debug)]
pub struct BackendProcess {
    pub name: &'static str,
    pub process: Option<ServiceProcess>,
    pub data: tempfile::TempDir,
    pub url: String,
    /// Settings it was started with besides DATA_DIR, reused on restart.
    envs: Vec<(&'static str, String)>,
}

impl BackendProcess {
    fn start(name: &'static str, extra: &[(&'static str, String)]) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut envs = vec![(DATA_DIR, data.path().display().to_string())];
        envs.extend(extra.iter().cloned());
        let process = ServiceProcess::start(&workspace_binary(name), &envs)?;
        let url = process.url();
        Ok(Self { name, process: Some(process), data, url, envs: extra.to_vec() })
    }

    /// Stops the process (SIGTERM), keeping its data.
    pub fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.terminate(Duration::from_secs(10)).expect("terminate");
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill().expect("kill");
        }
    }

    /// Starts it again on the same port, data and settings.
    pub fn restart(&mut self) {
        let addr = self.url.trim_start_matches("http://").to_owned();
        let mut envs = vec![(DATA_DIR, self.data.path().display().to_string()), (LISTEN_ADDR, addr)];
        envs.extend(self.envs.iter().cloned());
        self.process = Some(ServiceProcess::start(&workspace_binary(self.name), &envs).expect("restart backend"));
    }
}

/// The four processes (and the broker, when there is one).
#[derive(Debug)]
pub struct SystemProcesses {
    pub gateway: ServiceProcess,
    pub users: BackendProcess,
    pub products: BackendProcess,
    pub orders: BackendProcess,
    /// The broker, when the system was started with one; `None` inside while it is stopped.
    pub broker: Option<(BrokerStorage, Option<BrokerProcess>)>,
    /// PostgreSQL databases the services use, when they use PostgreSQL.
    pub databases: Vec<TestDatabase>,
}

/// A service's database on `backend`: a fresh PostgreSQL database (kept alive by the returned
/// guard), or an empty `DATABASE_URL`, which means SQLite in the service's `DATA_DIR`.
async fn database_for(backend: crate::DatabaseKind) -> anyhow::Result<(Option<TestDatabase>, String)> {
    Ok(match backend {
        crate::DatabaseKind::Sqlite => (None, String::new()),
        crate::DatabaseKind::Postgres => {
            let database = crate::postgres_database().await?;
            let url = database.url.clone();
            (Some(database), url)
        }
    })
}

impl SystemProcesses {
    /// Starts the services on `backend`'s databases, then the gateway with `gateway_envs`
    /// added; with `with_broker`, a fresh broker first, so events flow and the saga runs.
    pub async fn start(
        backend: crate::DatabaseKind,
        gateway_envs: &[(&str, &str)],
        with_broker: bool,
    ) -> anyhow::Result<Self> {
        Self::start_with(backend, gateway_envs, &[], with_broker).await
    }

    /// Like [`SystemProcesses::start`], with extra settings for order-service too (the saga's
    /// backpressure bounds, say).
    pub async fn start_with(
        backend: crate::DatabaseKind,
        gateway_envs: &[(&str, &str)],
        order_envs: &[(&'static str, &str)],
        with_broker: bool,
    ) -> anyhow::Result<Self> {
        Self::start_everywhere(backend, gateway_envs, order_envs, &[], with_broker).await
    }

    /// Like [`SystemProcesses::start_with`], with `common_envs` given to every process (where
    /// to export traces, say).
    pub async fn start_everywhere(
        backend: crate::DatabaseKind,
        gateway_envs: &[(&str, &str)],
        order_envs: &[(&'static str, &str)],
        common_envs: &[(&'static str, String)],
        with_broker: bool,
    ) -> anyhow::Result<Self> {
        let layout = Layout { backend, replicas: 1, gateways: 1, with_broker, common: common_envs.to_vec() };
        let ScaledSystem { mut gateways, mut users, mut products, mut orders, broker, databases } =
            layout.start(gateway_envs, order_envs).await?;
        let only = |replicas: &mut Vec<BackendProcess>| replicas.pop().expect("one replica");
        Ok(Self {
            gateway: gateways.pop().expect("one gateway"),
            users: only(&mut users),
            products: only(&mut products),
            orders: only(&mut orders),
            broker: broker.map(|(storage, process)| (storage, Some(process))),
            databases,
        })
    }
}

/// Every service at several replicas, each replica with its own port and `DATA_DIR` but the
/// replicas of a service sharing one PostgreSQL database, behind several gateways, on one
/// broker; every client (gateway or service) is pointed at every replica of its peers.
#[derive(Debug)]
pub struct ScaledSystem {
    pub gateways: Vec<ServiceProcess>,
    pub users: Vec<BackendProcess>,
    pub products: Vec<BackendProcess>,
    pub orders: Vec<BackendProcess>,
    pub broker: Option<(BrokerStorage, BrokerProcess)>,
    /// The services' databases: users, products, orders.
    pub databases: Vec<TestDatabase>,
}

impl ScaledSystem {
    /// `replicas` instances of each service on PostgreSQL and `gateways` gateways (with
    /// `gateway_envs`; order-service's replicas with `order_envs`), on a fresh broker.
    pub async fn start(
        replicas: usize,
        gateways: usize,
        gateway_envs: &[(&str, &str)],
        order_envs: &[(&'static str, &str)],
    ) -> anyhow::Result<Self> {
        let layout = Layout {
            backend: crate::DatabaseKind::Postgres,
            replicas,
            gateways,
            with_broker: true,
            common: Vec::new(),
        };
        layout.start(gateway_envs, order_envs).await
    }

    /// `KAFKA_BROKERS` for this system's broker.
    pub fn bootstrap(&self) -> String {
        self.broker.as_ref().expect("a system with a broker").0.bootstrap()
    }
}

/// How many of each process to start, and on what.
struct Layout {
    backend: crate::DatabaseKind,
    replicas: usize,
    gateways: usize,
    with_broker: bool,
    /// Settings every process gets.
    common: Vec<(&'static str, String)>,
}

impl Layout {
    async fn start(
        &self,
        gateway_envs: &[(&str, &str)],
        order_envs: &[(&'static str, &str)],
    ) -> anyhow::Result<ScaledSystem> {
        let broker = if self.with_broker {
            let storage = BrokerStorage::new()?;
            let process = storage.start()?;
            Some((storage, process))
        } else {
            None
        };
        // Without a broker (an empty address), events stay in each service's outbox.
        let mut peers = Peers {
            kafka: broker.as_ref().map(|(storage, _)| storage.bootstrap()).unwrap_or_default(),
            ..Peers::default()
        };
        // A partition per replica, so that each replica of a consumer group has work of its own
        // (and a replica's loss strands some until the group hands them to the survivors).
        let partitions = (KAFKA_TOPIC_PARTITIONS, self.replicas.to_string());
        let mut databases = Vec::new();
        let mut database_urls = Vec::new();
        for _ in 0..3 {
            let (database, url) = database_for(self.backend).await?;
            databases.extend(database);
            database_urls.push(("DATABASE_URL", url));
        }
        let [users_db, products_db, orders_db]: [(&'static str, String); 3] =
            database_urls.try_into().expect("three databases");
        // With certificates in the common settings every process serves TLS, so peers are
        // reached at https:// URLs.
        let tls = self.common.iter().any(|(name, _)| *name == "GRPC_TLS_CERT");
        // Each service is started after the peers it calls and pointed at them.
        let with_peers = |peers: &Peers, own: Vec<(&'static str, String)>| {
            let mut envs = peers.env();
            envs.push(partitions.clone());
            envs.extend(own);
            envs
        };
        let admin = vec![(ADMIN_EMAIL_ENV, ADMIN_EMAIL.to_owned()), (ADMIN_PASSWORD_ENV, ADMIN_PASSWORD.to_owned())];
        let users = self.replicas("user-service", &with_peers(&peers, [admin, vec![users_db]].concat()))?;
        peers.users = urls(&users, tls);
        let products = self.replicas("product-service", &with_peers(&peers, vec![products_db]))?;
        peers.products = urls(&products, tls);
        // Tests check what is decided, not how fast: no order is refused for waiting long (a
        // burst placed while the consumers are still joining their groups, on a slow machine).
        // The count bound stays; a test may set either (the last setting of a name wins).
        let mut order_settings = vec![orders_db, ("SAGA_MAX_PENDING_AGE_MS", "0".to_owned())];
        order_settings.extend(order_envs.iter().map(|(key, value)| (*key, (*value).to_owned())));
        let orders = self.replicas("order-service", &with_peers(&peers, order_settings))?;
        peers.orders = urls(&orders, tls);
        let mut envs = peers.env();
        envs.extend([(JWT_SECRET_ENV, JWT_SECRET.to_owned()), ("BACKEND_TIMEOUT_MS", "2000".to_owned())]);
        envs.extend(self.common.iter().cloned());
        envs.extend(gateway_envs.iter().map(|(key, value)| (*key, (*value).to_owned())));
        let gateways = (0..self.gateways)
            .map(|_| ServiceProcess::start(&workspace_binary("api-gateway"), &envs))
            .collect::<anyhow::Result<_>>()?;
        Ok(ScaledSystem { gateways, users, products, orders, broker, databases })
    }

    /// Starts this layout's number of replicas of service `name`, one after the other (the
    /// first creates the schema and any seed data; the others find them). Each serves its
    /// Prometheus metrics on a port of its own ([`ServiceProcess::metrics_url`]).
    fn replicas(&self, name: &'static str, envs: &[(&'static str, String)]) -> anyhow::Result<Vec<BackendProcess>> {
        let mut envs = envs.to_vec();
        envs.push((METRICS_ADDR, "127.0.0.1:0".to_owned()));
        envs.extend(self.common.iter().cloned());
        (0..self.replicas).map(|_| BackendProcess::start(name, &envs)).collect()
    }
}

/// Every replica's URL, comma-separated, as a client's `*_SERVICE_URL` takes them: `https://`
/// when the processes serve TLS.
fn urls(replicas: &[BackendProcess], tls: bool) -> String {
    let url = |replica: &BackendProcess| {
        if tls { replica.url.replacen("http://", "https://", 1) } else { replica.url.clone() }
    };
    replicas.iter().map(url).collect::<Vec<_>>().join(",")
}
