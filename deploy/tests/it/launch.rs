//! `launch`: the real binaries started with the environment a deployment file gives them,
//! on this machine. Host names become 127.0.0.1 and ports free ones: each service listens on
//! port 0 and the addresses others were given for it are rewritten to where it listens; the
//! broker is a tansu process; each PostgreSQL database a fresh one on the test server.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use deploy::contract::{Address, addresses, database_name, replace_address};
use service_runtime::process::{ServingStatus, grpc_health_status};
use test_support::{BrokerProcess, BrokerStorage, ServiceProcess, TestDatabase, postgres_database, workspace_binary};

/// How the deployment decides that a service is healthy.
#[derive(Debug, Clone)]
pub enum Check {
    /// A command in the container (Compose), `/usr/local/bin/service` standing for the binary.
    Command(Vec<String>),
    /// The gRPC health protocol for `service` (a Kubernetes `grpc` probe).
    Grpc(String),
    /// An HTTP GET answering 200 (a Kubernetes `httpGet` probe).
    Http(String),
}

/// A service as a deployment file declares it.
#[derive(Debug)]
pub struct Declared {
    /// The name other services reach it by, and the port they use.
    pub address: Address,
    pub binary: String,
    pub env: BTreeMap<String, String>,
    pub check: Check,
}

/// The backing services a deployment file points at.
#[derive(Debug)]
pub struct Backing {
    pub broker: Address,
    /// The PostgreSQL server and the databases it is initialised with.
    pub postgres: Option<(Address, Vec<String>)>,
}

/// Everything started; stopped when dropped.
#[derive(Debug)]
pub struct Launched {
    /// The environment each service was actually started with, by binary.
    pub started: Vec<(String, BTreeMap<String, String>)>,
    _processes: Vec<ServiceProcess>,
    _broker: (BrokerStorage, BrokerProcess),
    _databases: Vec<TestDatabase>,
    _data: Vec<tempfile::TempDir>,
}

/// The settings that name this process's own resources rather than another service.
const OWN: [&str; 3] = ["LISTEN_ADDR", "METRICS_ADDR", "DATABASE_URL"];

/// Starts every declared service, each once the services it names are up, and checks each
/// the way the deployment does. Fails on an address that names nothing that was started.
pub async fn launch(mut declared: Vec<Declared>, backing: &Backing) -> anyhow::Result<Launched> {
    let storage = BrokerStorage::new()?;
    let broker = storage.start()?;
    let mut endpoints: HashMap<Address, String> = HashMap::from([(backing.broker.clone(), broker.bootstrap())]);
    let mut launched = Launched {
        started: Vec::new(),
        _processes: Vec::new(),
        _broker: (storage, broker),
        _databases: Vec::new(),
        _data: Vec::new(),
    };
    while !declared.is_empty() {
        let unresolved = |service: &Declared| -> Vec<Address> {
            peer_addresses(&service.env).into_iter().filter(|address| !endpoints.contains_key(address)).collect()
        };
        let Some(next) = declared.iter().position(|service| unresolved(service).is_empty()) else {
            let missing: Vec<String> =
                declared.iter().map(|service| format!("{} needs {:?}", service.binary, unresolved(service))).collect();
            bail!("addresses that name no started service: {}", missing.join("; "));
        };
        let service = declared.remove(next);
        let mut env = service.env.clone();
        for value in env.iter_mut().filter(|(name, _)| !OWN.contains(&name.as_str())).map(|(_, value)| value) {
            for (from, to) in &endpoints {
                *value = replace_address(value, from, to);
            }
        }
        if let Some(url) = env.get_mut("DATABASE_URL").filter(|url| !url.is_empty()) {
            *url = launched.database_for(url, backing).await.with_context(|| service.binary.clone())?;
        }
        if env.contains_key("DATA_DIR") {
            let dir = tempfile::tempdir()?;
            env.insert("DATA_DIR".into(), dir.path().display().to_string());
            launched._data.push(dir);
        }
        env.insert("LISTEN_ADDR".into(), "127.0.0.1:0".into());
        // Every process here shares one host: each gets a metrics port of its own.
        if env.contains_key("METRICS_ADDR") {
            env.insert("METRICS_ADDR".into(), "127.0.0.1:0".into());
        }
        let envs: Vec<(&str, String)> = env.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
        let process = ServiceProcess::start(&workspace_binary(&service.binary), &envs)
            .with_context(|| format!("starting {} with its declared environment", service.binary))?;
        let listening = process.url().trim_start_matches("http://").to_owned();
        env.insert("LISTEN_ADDR".into(), listening.clone());
        healthy(&service, &env, &listening).await?;
        endpoints.insert(service.address.clone(), listening);
        launched.started.push((service.binary.clone(), env));
        launched._processes.push(process);
    }
    Ok(launched)
}

impl Launched {
    /// A fresh database standing in for the one `url` names, after checking the URL names the
    /// PostgreSQL server and one of the databases it is initialised with.
    async fn database_for(&mut self, url: &str, backing: &Backing) -> anyhow::Result<String> {
        let (server, databases) = backing.postgres.as_ref().context("DATABASE_URL set but no PostgreSQL declared")?;
        ensure!(addresses(url).first() == Some(server), "DATABASE_URL does not point at {server}");
        let name = database_name(url).context("DATABASE_URL names no database")?;
        ensure!(databases.iter().any(|known| known == name), "database {name} is not created by postgres-init.sql");
        let database = postgres_database().await?;
        let fresh = database.url.clone();
        self._databases.push(database);
        Ok(fresh)
    }
}

/// The addresses of other services a service's settings name.
pub fn peer_addresses(env: &BTreeMap<String, String>) -> Vec<Address> {
    env.iter().filter(|(name, _)| !OWN.contains(&name.as_str())).flat_map(|(_, value)| addresses(value)).collect()
}

/// Waits (as the deployment's health checks retry) until `service` passes its check.
async fn healthy(service: &Declared, env: &BTreeMap<String, String>, listening: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let outcome = check_once(service, env, listening).await;
        match outcome {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() > deadline => {
                return Err(error.context(format!("{} never became healthy", service.binary)));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn check_once(service: &Declared, env: &BTreeMap<String, String>, listening: &str) -> anyhow::Result<()> {
    match &service.check {
        Check::Command(command) => {
            let [kind, program, args @ ..] = command.as_slice() else { bail!("empty health check") };
            ensure!(kind == "CMD", "health check {command:?} should run the binary directly (CMD)");
            ensure!(program == "/usr/local/bin/service", "health check runs {program}, not the image's binary");
            let output = std::process::Command::new(workspace_binary(&service.binary))
                .args(args)
                .env_clear()
                .envs(env)
                .output()?;
            ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        }
        Check::Grpc(name) => {
            let status = grpc_health_status(&format!("http://{listening}"), name, &Default::default())
                .await
                .map_err(anyhow::Error::msg)?;
            ensure!(status == ServingStatus::Serving, "{name} is {status:?}");
        }
        Check::Http(path) => {
            let response = reqwest::get(format!("http://{listening}{path}")).await?;
            ensure!(response.status().is_success(), "GET {path}: {}", response.status());
        }
    }
    Ok(())
}
