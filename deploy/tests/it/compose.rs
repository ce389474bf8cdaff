//! docker-compose.yml: valid against the Compose specification, consistent with the binaries
//! and the Dockerfile, and the binaries come up healthy with its environments.

use std::collections::HashMap;

use deploy::{
    compose::{ComposeFile, env_file, interpolate},
    contract::{Address, addresses, env_names},
    dockerfile::Dockerfile,
    workspace_root,
};
use test_support::workspace_binary;

use crate::{
    launch::{Backing, Check, Declared, launch, peer_addresses},
    tools,
};

fn compose() -> ComposeFile {
    ComposeFile::load(&workspace_root().join("docker-compose.yml")).expect("docker-compose.yml")
}

/// The variables `docker compose --env-file compose.dev.env` sees: the development secrets.
fn dev_variables() -> HashMap<String, String> {
    env_file(&workspace_root().join("compose.dev.env")).expect("compose.dev.env")
}

/// The variables `docker compose --env-file compose.dev.env --env-file <file>` sees.
fn dev_variables_and(file: &str) -> HashMap<String, String> {
    let mut variables = dev_variables();
    variables.extend(env_file(&workspace_root().join(file)).unwrap_or_else(|error| panic!("{file}: {error:#}")));
    variables
}

/// The variables `docker compose --env-file compose.dev.env --env-file compose.postgres.env` sees.
fn postgres_variables() -> HashMap<String, String> {
    dev_variables_and("compose.postgres.env")
}

/// The variables `docker compose --env-file compose.dev.env --env-file compose.observability.env`
/// sees.
fn observability_variables() -> HashMap<String, String> {
    dev_variables_and("compose.observability.env")
}

#[test]
fn the_secrets_have_no_default_and_the_gateway_is_published_on_loopback() {
    let file = compose();
    for (service, secret) in [("api-gateway", "JWT_SECRET"), ("user-service", "ADMIN_PASSWORD")] {
        let error = file.services[service].environment(&HashMap::new()).expect_err("a required secret");
        assert!(format!("{error:#}").contains(secret), "{service}: {error:#}");
        let env = file.services[service].environment(&dev_variables()).expect("the development values");
        assert!(env.get(secret).is_some_and(|value| !value.is_empty()), "{service}: {secret}");
    }
    let published = interpolate(&file.services["api-gateway"].ports[0], &HashMap::new()).expect("ports");
    assert_eq!(published, "127.0.0.1:3000:3000", "the gateway is published on loopback by default");
    let everywhere: HashMap<String, String> = [("GATEWAY_BIND".to_owned(), "0.0.0.0".to_owned())].into();
    let published = interpolate(&file.services["api-gateway"].ports[0], &everywhere).expect("ports");
    assert_eq!(published, "0.0.0.0:3000:3000", "GATEWAY_BIND opts in to every interface");
}

#[test]
fn the_observability_profile_traces_every_process_and_scrapes_every_metrics_port() {
    let file = compose();
    let variables = observability_variables();
    assert_eq!(variables.get("COMPOSE_PROFILES").map(String::as_str), Some("observability"));
    for name in ["jaeger", "prometheus", "grafana"] {
        assert_eq!(file.services[name].profiles, ["observability"], "{name}");
    }
    let prometheus: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(workspace_root().join("observability/prometheus.yml")).expect("prometheus.yml"),
    )
    .expect("YAML");
    // Every (name, port) Prometheus finds by DNS.
    let mut scraped = Vec::new();
    for job in prometheus["scrape_configs"].as_sequence().expect("scrape_configs") {
        for discovery in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            let port = discovery["port"].as_u64().expect("port");
            for name in discovery["names"].as_sequence().expect("names") {
                scraped.push((name.as_str().expect("name").to_owned(), port));
            }
        }
    }
    for (name, service, _) in file.binaries() {
        let off = service.environment(&dev_variables()).expect("env");
        assert_eq!(
            off.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(String::as_str),
            Some(""),
            "{name}: traces off by default"
        );
        let env = service.environment(&variables).expect("env");
        let endpoint = addresses(&env["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        assert_eq!(endpoint, [Address { host: "jaeger".into(), port: 4317 }], "{name} sends its traces to Jaeger");
        // The gateway serves its metrics on its own port; the services on METRICS_ADDR.
        let metrics = env.get("METRICS_ADDR").unwrap_or(&env["LISTEN_ADDR"]);
        let port = u64::from(addresses(metrics)[0].port);
        assert!(scraped.contains(&(name.to_owned(), port)), "Prometheus does not scrape {name}:{port}: {scraped:?}");
    }
    for volume in &file.services["grafana"].volumes {
        let source = volume.split(':').next().unwrap_or_default();
        assert!(workspace_root().join(source).exists(), "grafana mounts {source}, which is not in the repository");
    }
}

#[test]
fn the_file_validates_against_the_compose_specification() {
    // dclint validates against the Compose specification's JSON schema first, then lints with
    // the rules in .dclintrc.yaml; a schema violation is an error either way.
    let (ok, printed) = tools::run(&tools::dclint(), &["docker-compose.yml"], &workspace_root());
    assert!(ok, "docker-compose.yml does not validate:\n{printed}");
}

#[test]
fn the_validator_rejects_what_the_specification_forbids() {
    // The same validator on a broken copy, so that a silently passing validator shows.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(workspace_root().join("docker-compose.yml")).expect("read");
    let broken = text.replacen("condition: service_healthy", "condition: when_it_feels_like_it", 1);
    std::fs::write(dir.path().join("docker-compose.yml"), broken).expect("write");
    std::fs::copy(workspace_root().join(".dclintrc.yaml"), dir.path().join(".dclintrc.yaml")).expect("copy");
    let (ok, printed) = tools::run(&tools::dclint(), &["docker-compose.yml"], dir.path());
    assert!(!ok && printed.contains("depends_on"), "the broken file passed:\n{printed}");
}

#[test]
fn kafka_runs_in_kraft_mode_and_advertises_its_network_name() {
    let file = compose();
    let kafka = &file.services["kafka"];
    assert!(kafka.image.as_deref().is_some_and(|image| image.starts_with("apache/kafka:4.")), "{:?}", kafka.image);
    let env = kafka.environment(&dev_variables()).expect("env");
    assert!(env.keys().all(|name| !name.contains("ZOOKEEPER")), "no ZooKeeper in Kafka 4");
    assert_eq!(env["KAFKA_PROCESS_ROLES"], "broker,controller");
    let advertised = addresses(&env["KAFKA_ADVERTISED_LISTENERS"]);
    for (_, service, _) in file.binaries() {
        let brokers = service.environment(&dev_variables()).expect("env")["KAFKA_BROKERS"].clone();
        for broker in addresses(&brokers) {
            assert!(advertised.contains(&broker), "KAFKA_BROKERS {broker} is not an advertised listener");
        }
    }
    assert!(kafka.healthcheck.is_some(), "services wait for Kafka to be healthy");
}

#[test]
fn every_setting_is_read_and_every_address_names_a_service_it_waits_for() {
    let file = compose();
    let image_check = Dockerfile::load(&workspace_root().join("Dockerfile"))
        .expect("Dockerfile")
        .stage("runtime")
        .expect("runtime stage")
        .health_check()
        .expect("HEALTHCHECK");
    let listen_ports: HashMap<&str, u16> = file
        .binaries()
        .map(|(name, service, _)| {
            let env = service.environment(&dev_variables()).expect("env");
            (name, addresses(&env["LISTEN_ADDR"])[0].port)
        })
        .collect();
    for variables in [dev_variables(), postgres_variables()] {
        for (name, service, binary) in file.binaries() {
            let env = service.environment(&variables).expect("env");
            let reads = env_names(workspace_binary(binary).as_ref()).expect("--help");
            for setting in env.keys() {
                assert!(reads.contains(setting), "{name} is given {setting}, which {binary} does not read");
            }
            let listen = &addresses(&env["LISTEN_ADDR"])[0];
            assert_eq!(listen.host, "0.0.0.0", "{name} must listen on every interface in its container");

            let mut test = vec!["CMD".to_owned()];
            test.extend(image_check.iter().cloned());
            assert_eq!(service.healthcheck.as_ref().map(|check| &check.test), Some(&test), "{name}'s health check");

            for peer in peer_addresses(&env) {
                let target = file.services.get(&peer.host).unwrap_or_else(|| panic!("{name}: {peer} is no service"));
                if let Some(port) = listen_ports.get(peer.host.as_str()) {
                    assert_eq!(peer.port, *port, "{name}: {peer} is not where {} listens", peer.host);
                }
                assert!(target.healthcheck.is_some(), "{name} waits for {}, which has no health check", peer.host);
                let dependency = service.depends_on.get(&peer.host);
                assert!(
                    dependency.is_some_and(|d| d.condition == "service_healthy"),
                    "{name} uses {peer} but does not wait for it to be healthy"
                );
            }
            for (dependency, how) in &service.depends_on {
                assert!(file.services.contains_key(dependency), "{name} depends on undefined {dependency}");
                assert_eq!(how.condition, "service_healthy", "{name} on {dependency}");
                let profiles = &file.services[dependency].profiles;
                assert_eq!(how.required, profiles.is_empty(), "{name} on {dependency}: required only if always on");
            }
            match env.get("DATA_DIR") {
                Some(dir) => assert!(
                    service.volumes.iter().any(|volume| volume.split(':').nth(1) == Some(dir)
                        && file.volumes.contains_key(volume.split(':').next().unwrap_or_default())),
                    "{name}: DATA_DIR {dir} is not a named volume"
                ),
                None => assert!(!env.contains_key("DATABASE_URL"), "{name} has a database but no DATA_DIR"),
            }
        }
    }
}

#[test]
fn only_the_gateway_is_published_so_the_grpc_services_scale() {
    let file = compose();
    for (name, service, _) in file.binaries() {
        let listen = addresses(&service.environment(&dev_variables()).expect("env")["LISTEN_ADDR"])[0].clone();
        if name == "api-gateway" {
            assert_eq!(service.ports.len(), 1, "the gateway is published once");
            let published = interpolate(&service.ports[0], &HashMap::new()).expect("ports");
            let container_port = published.rsplit(':').next().unwrap_or_default();
            assert_eq!(container_port, listen.port.to_string(), "the published port is the one it listens on");
            assert!(published.ends_with(":3000:3000"), "published on 3000 by default: {published}");
        } else {
            assert!(service.ports.is_empty(), "{name} has a fixed host port, so it cannot scale");
        }
        let image = service.image.as_deref().unwrap_or_default();
        assert!(image.starts_with(&format!("nest-microservices/{name}:")), "{name}'s image is {image}");
        assert!(!image.ends_with(":latest"), "{name}: pin the tag");
    }
}

#[test]
fn the_postgres_profile_points_every_service_at_its_own_database() {
    let file = compose();
    let variables = postgres_variables();
    assert_eq!(variables.get("COMPOSE_PROFILES").map(String::as_str), Some("postgres"));
    assert_eq!(file.services["postgres"].profiles, ["postgres"]);
    let databases = tools::initialised_databases();
    let mut used = Vec::new();
    for (name, service, _) in file.binaries().filter(|(name, _, _)| *name != "api-gateway") {
        let url = &service.environment(&variables).expect("env")["DATABASE_URL"];
        assert!(url.starts_with("postgres://"), "{name}: {url}");
        assert_eq!(addresses(url)[0], Address { host: "postgres".into(), port: 5432 }, "{name}");
        let database = deploy::contract::database_name(url).expect("database").to_owned();
        assert!(databases.contains(&database), "{name}: {database} is not created by postgres-init.sql");
        used.push(database);
    }
    used.sort();
    used.dedup();
    assert_eq!(used.len(), 3, "one database per service");
}

fn declared(file: &ComposeFile, variables: &HashMap<String, String>) -> Vec<Declared> {
    file.binaries()
        .map(|(name, service, binary)| {
            let env = service.environment(variables).expect("env");
            let port = addresses(&env["LISTEN_ADDR"])[0].port;
            let check = Check::Command(service.healthcheck.as_ref().expect("health check").test.clone());
            Declared { address: Address { host: name.to_owned(), port }, binary: binary.to_owned(), env, check }
        })
        .collect()
}

fn backing(file: &ComposeFile) -> Backing {
    let kafka = file.services["kafka"].environment(&dev_variables()).expect("env");
    let broker = addresses(&kafka["KAFKA_ADVERTISED_LISTENERS"])[0].clone();
    let postgres = Address { host: "postgres".into(), port: 5432 };
    Backing { broker, postgres: Some((postgres, tools::initialised_databases())) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_become_healthy_with_the_compose_environment() {
    let file = compose();
    let launched = launch(declared(&file, &dev_variables()), &backing(&file)).await.expect("launch");
    assert_eq!(launched.started.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_become_healthy_on_postgres_with_the_postgres_profile() {
    let file = compose();
    let launched = launch(declared(&file, &postgres_variables()), &backing(&file)).await.expect("launch");
    let on_postgres = launched
        .started
        .iter()
        .filter(|(_, env)| env.get("DATABASE_URL").is_some_and(|url| url.starts_with("postgres://")));
    assert_eq!(on_postgres.count(), 3);
}

/// compose.tls.yml: mutual TLS for every process, certificates mounted from the host.
#[test]
fn the_tls_override_gives_every_process_its_certificates_and_https_peers() {
    let file = compose();
    let tls = ComposeFile::load(&workspace_root().join("compose.tls.yml")).expect("compose.tls.yml");
    for (name, _, binary) in file.binaries() {
        let service = tls.services.get(name).unwrap_or_else(|| panic!("compose.tls.yml leaves {name} out"));
        let env = service.environment(&dev_variables()).expect("env");
        let reads = env_names(workspace_binary(binary).as_ref()).expect("--help");
        for setting in env.keys() {
            assert!(reads.contains(setting), "{name} is given {setting}, which {binary} does not read");
        }
        let mounted: Vec<String> =
            service.volumes.iter().map(|volume| interpolate(volume, &HashMap::new()).expect("interpolate")).collect();
        assert_eq!(mounted, ["./certs:/etc/grpc-tls:ro"], "{name}");
        for (setting, file) in [("GRPC_TLS_CERT", "cert.pem"), ("GRPC_TLS_KEY", "key.pem"), ("GRPC_TLS_CA", "ca.pem")] {
            assert_eq!(env.get(setting), Some(&format!("/etc/grpc-tls/{file}")), "{name}: {setting}");
        }
        let base = file.services[name].environment(&dev_variables()).expect("env");
        for setting in base.keys().filter(|setting| setting.ends_with("_SERVICE_URL")) {
            let url = env.get(setting).unwrap_or_else(|| panic!("{name}: {setting} stays plaintext"));
            assert!(url.starts_with("https://"), "{name}: {setting} is {url}");
        }
        if name != "api-gateway" {
            assert_eq!(env.get("GRPC_TLS_REQUIRE_CLIENT_CERT").map(String::as_str), Some("true"), "{name}");
        }
    }
    let (ok, printed) = tools::run(&tools::dclint(), &["compose.tls.yml"], &workspace_root());
    assert!(ok, "compose.tls.yml does not validate:\n{printed}");
}

/// compose.kafka-sasl.yml: every process on an external Kafka over SASL_SSL, its address and
/// credentials required from the environment.
#[test]
fn the_kafka_sasl_override_gives_every_process_the_brokers_security_settings() {
    let file = compose();
    let sasl = ComposeFile::load(&workspace_root().join("compose.kafka-sasl.yml")).expect("compose.kafka-sasl.yml");
    let variables: HashMap<String, String> = [
        ("KAFKA_BROKERS", "broker.example.com:9093"),
        ("KAFKA_SASL_USERNAME", "orders"),
        ("KAFKA_SASL_PASSWORD", "hunter2"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    for (name, _, binary) in file.binaries() {
        let service = sasl.services.get(name).unwrap_or_else(|| panic!("compose.kafka-sasl.yml leaves {name} out"));
        let env = service.environment(&variables).expect("env");
        let reads = env_names(workspace_binary(binary).as_ref()).expect("--help");
        for setting in env.keys() {
            assert!(reads.contains(setting), "{name} is given {setting}, which {binary} does not read");
        }
        for (setting, value) in [
            ("KAFKA_BROKERS", "broker.example.com:9093"),
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SASL_USERNAME", "orders"),
            ("KAFKA_SASL_PASSWORD", "hunter2"),
        ] {
            assert_eq!(env.get(setting).map(String::as_str), Some(value), "{name}: {setting}");
        }
        // Without the broker's address there is no default to fall back on.
        assert!(service.environment(&dev_variables()).is_err(), "{name}: KAFKA_BROKERS is required");
    }
    let (ok, printed) = tools::run(&tools::dclint(), &["compose.kafka-sasl.yml"], &workspace_root());
    assert!(ok, "compose.kafka-sasl.yml does not validate:\n{printed}");
}

/// compose.embedded-broker.yml: the embedded broker in place of Kafka's image (for a machine
/// that cannot pull it), reachable where the services look for Kafka, storing its data in the
/// volume Kafka's would use, and tagged with the broker's pinned version (`cargo xtask images`
/// makes that image). The container test runs it.
#[test]
fn the_embedded_broker_override_serves_where_the_services_look_for_kafka() {
    let text = std::fs::read_to_string(workspace_root().join("compose.embedded-broker.yml")).expect("the override");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
    let kafka = &yaml["services"]["kafka"];
    let expected_image = format!("local/tansu-broker:{}", launcher::broker::TANSU_VERSION);
    assert_eq!(kafka["image"].as_str(), Some(expected_image.as_str()));
    let command: Vec<&str> =
        kafka["command"].as_sequence().expect("command").iter().filter_map(|v| v.as_str()).collect();
    let after = |flag: &str| command.iter().position(|word| *word == flag).and_then(|at| command.get(at + 1)).copied();
    let advertised = after("--kafka-advertised-listener-url").expect("an advertised listener");
    let file = compose();
    for (name, service, _) in file.binaries() {
        let env = service.environment(&dev_variables()).expect("env");
        assert_eq!(
            Some(advertised),
            env.get("KAFKA_BROKERS").map(|brokers| format!("tcp://{brokers}")).as_deref(),
            "{name}"
        );
    }
    let storage = after("--storage-engine").expect("a storage engine");
    let volume = file.services["kafka"].volumes.first().expect("kafka's volume");
    let mounted_at = volume.split(':').nth(1).expect("a mount point");
    assert!(storage.starts_with(&format!("sqlite:///{mounted_at}/")), "{storage} is not in {mounted_at}");
    let (ok, printed) = tools::run(&tools::dclint(), &["compose.embedded-broker.yml"], &workspace_root());
    assert!(ok, "compose.embedded-broker.yml does not validate:\n{printed}");
}
