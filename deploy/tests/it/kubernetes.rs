//! k8s/: renders with kustomize, validates against the Kubernetes schemas, agrees with the
//! binaries, and the binaries come up healthy with the rendered environment on PostgreSQL.

use std::collections::BTreeMap;

use deploy::{
    build::SERVICES,
    contract::{Address, addresses, database_name, env_names},
    kubernetes::{Manifests, containers, name},
    workspace_root,
};
use serde_json::Value;
use test_support::workspace_binary;

use crate::{
    launch::{Backing, Check, Declared, launch, peer_addresses},
    tools,
};

/// The Kubernetes version the manifests are validated against.
const KUBERNETES_VERSION: &str = "1.32.0";

fn render() -> (String, Manifests) {
    Manifests::render(&workspace_root().join("k8s")).expect("kubectl kustomize k8s/")
}

#[test]
fn every_rendered_object_validates_against_the_kubernetes_schemas() {
    let (yaml, manifests) = render();
    assert_valid(yaml, &manifests);
}

/// Validates every object of `yaml` against the Kubernetes schemas.
fn assert_valid(yaml: String, manifests: &Manifests) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml).expect("write");
    let path = file.display().to_string();
    let args = ["--strict", "--kubernetes-version", KUBERNETES_VERSION, path.as_str()];
    let (ok, printed) = tools::run(&tools::kubernetes_validate(), &args, dir.path());
    assert!(ok, "the manifests do not validate:\n{printed}");
    let passed = printed.lines().filter(|line| line.contains(" passed ")).count();
    assert_eq!(passed, manifests.objects.len(), "every object was validated:\n{printed}");

    // The same validator on a broken copy, so that a silently passing validator shows.
    let broken = std::fs::read_to_string(&file).expect("read").replacen("replicas: 2", "replicas: two", 1);
    std::fs::write(&file, broken).expect("write");
    let (ok, printed) = tools::run(&tools::kubernetes_validate(), &args, dir.path());
    assert!(!ok, "a broken manifest passed:\n{printed}");
}

/// k8s-kafka-sasl/: every process on an external Kafka over SASL_SSL, the password from a
/// Secret made by hand.
#[test]
fn the_kafka_sasl_overlay_validates_and_gives_every_process_the_settings() {
    let (yaml, manifests) =
        Manifests::render(&workspace_root().join("k8s-kafka-sasl")).expect("kubectl kustomize k8s-kafka-sasl/");
    assert_valid(yaml, &manifests);
    let config = manifests.of_kind("ConfigMap").find(|map| name(map).starts_with("microservices-config")).expect("map");
    assert_eq!(config["data"]["KAFKA_SECURITY_PROTOCOL"], "sasl_ssl");
    assert_eq!(config["data"]["KAFKA_SASL_MECHANISM"], "SCRAM-SHA-512");
    for binary in SERVICES {
        let (_, container) = service_container(&manifests, binary);
        let reads = env_names(workspace_binary(binary).as_ref()).expect("--help");
        let env = container["env"].as_array().expect("env");
        for variable in env {
            let setting = variable["name"].as_str().expect("name");
            assert!(reads.contains(setting), "{binary} is given {setting}, which it does not read");
        }
        let from_map = |setting: &str| {
            env.iter().any(|v| v["name"] == setting && v["valueFrom"]["configMapKeyRef"]["key"] == setting)
        };
        for setting in ["KAFKA_BROKERS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME"] {
            assert!(from_map(setting), "{binary}: {setting} does not come from the ConfigMap");
        }
        let password = env.iter().find(|v| v["name"] == "KAFKA_SASL_PASSWORD").expect("the password");
        assert_eq!(password["valueFrom"]["secretKeyRef"]["name"], "kafka-sasl", "{binary}");
    }
}

/// k8s-tls/: the same system with mutual TLS, certificates from the `grpc-tls` Secret.
#[test]
fn the_tls_overlay_validates_and_turns_on_mutual_tls_for_every_process() {
    let (yaml, manifests) = Manifests::render(&workspace_root().join("k8s-tls")).expect("kubectl kustomize k8s-tls/");
    assert_valid(yaml, &manifests);
    for binary in SERVICES {
        let (deployment, container) = service_container(&manifests, binary);
        let env = manifests.container_env(container).expect("env");
        let reads = env_names(workspace_binary(binary).as_ref()).expect("--help");
        for setting in env.keys() {
            assert!(reads.contains(setting), "{binary} is given {setting}, which it does not read");
        }
        // The three files come from the Secret, mounted where the settings point.
        let mount = container["volumeMounts"].as_array().into_iter().flatten().find(|m| m["name"] == "grpc-tls");
        let mount = mount.unwrap_or_else(|| panic!("{binary}: the grpc-tls volume is not mounted"));
        let volume = deployment["spec"]["template"]["spec"]["volumes"].as_array().into_iter().flatten();
        let volume = volume.clone().find(|v| v["name"] == "grpc-tls").unwrap_or_else(|| panic!("{binary}: no volume"));
        assert_eq!(volume["secret"]["secretName"], "grpc-tls", "{binary}");
        let dir = mount["mountPath"].as_str().expect("mountPath");
        for (setting, file) in [("GRPC_TLS_CERT", "cert.pem"), ("GRPC_TLS_KEY", "key.pem"), ("GRPC_TLS_CA", "ca.pem")] {
            assert_eq!(env.get(setting), Some(&format!("{dir}/{file}")), "{binary}: {setting}");
        }
        for (setting, url) in env.iter().filter(|(setting, _)| setting.ends_with("_SERVICE_URL")) {
            assert!(url.starts_with("https://"), "{binary}: {setting} is {url}");
        }
        if binary != "api-gateway" {
            assert_eq!(env.get("GRPC_TLS_REQUIRE_CLIENT_CERT").map(String::as_str), Some("true"), "{binary}");
            // Kubernetes' gRPC probe speaks no TLS: the binary's own check does.
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                let command = &container[probe]["exec"]["command"];
                assert_eq!(
                    command,
                    &serde_json::json!(["/usr/local/bin/service", "--health-check"]),
                    "{binary} {probe}"
                );
            }
        }
    }
}

#[test]
fn the_namespace_comes_first_and_holds_everything() {
    let (_, manifests) = render();
    let first = &manifests.objects[0];
    assert_eq!(first["kind"], "Namespace");
    let namespace = name(first);
    for object in &manifests.objects[1..] {
        assert_eq!(object["metadata"]["namespace"], namespace, "{} {}", object["kind"], name(object));
    }
    for (kind, wanted) in [("StatefulSet", "kafka"), ("StatefulSet", "postgres")] {
        let set = manifests.get(kind, wanted).expect("present");
        assert!(set["spec"]["volumeClaimTemplates"].as_array().is_some_and(|v| !v.is_empty()), "{wanted} keeps data");
    }
    let kafka = manifests
        .container_env(containers(manifests.get("StatefulSet", "kafka").expect("kafka")).next().expect("container"))
        .expect("env");
    assert_eq!(kafka["KAFKA_PROCESS_ROLES"], "broker,controller", "KRaft, no ZooKeeper");
}

#[test]
fn every_image_is_pinned_and_every_pod_is_locked_down() {
    let (_, manifests) = render();
    for workload in manifests.of_kind("Deployment").chain(manifests.of_kind("StatefulSet")) {
        let pod = &workload["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{}", name(workload));
        for container in containers(workload) {
            let image = container["image"].as_str().unwrap_or_default();
            let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or_default();
            assert!(!tag.is_empty() && tag != "latest" && !tag.contains('/'), "{}: pin {image}", name(workload));
            assert!(container["resources"]["limits"]["memory"].is_string(), "{}: memory limit", name(workload));
            assert!(container["resources"]["requests"]["cpu"].is_string(), "{}: cpu request", name(workload));
            assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false, "{}", name(workload));
            assert!(container["readinessProbe"].is_object(), "{}: readiness probe", name(workload));
            assert!(container["livenessProbe"].is_object(), "{}: liveness probe", name(workload));
        }
    }
}

/// The one container of the Deployment running `binary`.
fn service_container<'a>(manifests: &'a Manifests, binary: &str) -> (&'a Value, &'a Value) {
    let deployment = manifests.get("Deployment", binary).expect("deployment");
    let container = containers(deployment).next().expect("container");
    (deployment, container)
}

/// The Service whose selector picks `workload`'s pods.
fn service_for<'a>(manifests: &'a Manifests, workload: &Value) -> &'a Value {
    let labels = &workload["spec"]["template"]["metadata"]["labels"];
    manifests
        .of_kind("Service")
        .find(|service| {
            service["spec"]["selector"].as_object().is_some_and(|selector| {
                !selector.is_empty() && selector.iter().all(|(key, value)| &labels[key] == value)
            })
        })
        .unwrap_or_else(|| panic!("no Service selects {}", name(workload)))
}

/// The container port a Service port forwards to (by name or number).
fn target_port(service: &Value, port: &Value, container: &Value) -> u64 {
    let target = &port["targetPort"];
    if let Some(named) = target.as_str() {
        let ports = container["ports"].as_array().into_iter().flatten();
        let found = ports.clone().find(|p| p["name"] == named);
        found.and_then(|p| p["containerPort"].as_u64()).unwrap_or_else(|| panic!("{}: no port {named}", name(service)))
    } else {
        target.as_u64().or_else(|| port["port"].as_u64()).unwrap_or_default()
    }
}

#[test]
fn every_setting_is_read_and_every_probe_and_address_reaches_the_listening_port() {
    let (_, manifests) = render();
    let databases = tools::initialised_databases();
    for binary in SERVICES {
        let (deployment, container) = service_container(&manifests, binary);
        assert_eq!(deployment["spec"]["replicas"], 2, "{binary}");
        assert!(container["image"].as_str().is_some_and(|i| i.starts_with(&format!("nest-microservices/{binary}:"))));
        let env = manifests.container_env(container).expect("env");
        let reads = env_names(workspace_binary(binary).as_ref()).expect("--help");
        for setting in env.keys() {
            assert!(reads.contains(setting), "{binary} is given {setting}, which it does not read");
        }
        let listen = addresses(&env["LISTEN_ADDR"])[0].clone();
        let metrics = env.get("METRICS_ADDR").map(|metrics| addresses(metrics)[0].clone());
        let declared_ports: Vec<u64> =
            container["ports"].as_array().into_iter().flatten().filter_map(|p| p["containerPort"].as_u64()).collect();
        let expected: Vec<u64> =
            std::iter::once(&listen).chain(&metrics).map(|address| u64::from(address.port)).collect();
        assert_eq!(declared_ports, expected, "{binary}: the container ports are LISTEN_ADDR's and METRICS_ADDR's");
        // Prometheus' annotation-based discovery scrapes where the metrics are: METRICS_ADDR for
        // the services (their main port speaks gRPC), the gateway's own port.
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true", "{binary}");
        let scraped = metrics.as_ref().unwrap_or(&listen).port.to_string();
        assert_eq!(annotations["prometheus.io/port"].as_str(), Some(scraped.as_str()), "{binary}: scraped elsewhere");
        // Traces are off unless the ConfigMap names a collector.
        assert_eq!(env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(String::as_str), Some(""), "{binary}");
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            let probe = &container[probe];
            if probe.is_null() {
                continue;
            }
            let port = if binary == "api-gateway" {
                assert_eq!(probe["httpGet"]["path"], "/health", "{binary}");
                &probe["httpGet"]["port"]
            } else {
                &probe["grpc"]["port"]
            };
            assert_eq!(port.as_u64(), Some(u64::from(listen.port)), "{binary}: a probe misses the listening port");
        }
        if binary != "api-gateway" {
            let url = env.get("DATABASE_URL").unwrap_or_else(|| panic!("{binary}: replicas need PostgreSQL"));
            assert_eq!(addresses(url)[0], Address { host: "postgres".into(), port: 5432 }, "{binary}");
            let database = database_name(url).expect("database");
            assert!(databases.iter().any(|known| known == database), "{binary}: {database} is not created");
        }
        for peer in peer_addresses(&env) {
            let service =
                manifests.get("Service", &peer.host).unwrap_or_else(|_| panic!("{binary}: no Service {peer}"));
            let port = service["spec"]["ports"].as_array().into_iter().flatten().find(|p| p["port"] == peer.port);
            let port = port.unwrap_or_else(|| panic!("{binary}: Service {} has no port {}", peer.host, peer.port));
            let target = manifests
                .of_kind("Deployment")
                .chain(manifests.of_kind("StatefulSet"))
                .find(|workload| name(service_for(&manifests, workload)) == peer.host)
                .unwrap_or_else(|| panic!("{binary}: Service {} selects nothing", peer.host));
            let container = containers(target).next().expect("container");
            let forwarded = target_port(service, port, container);
            let ports = container["ports"].as_array().into_iter().flatten();
            assert!(ports.clone().any(|p| p["containerPort"] == forwarded), "{binary}: {peer} reaches no port");
        }
    }
}

#[test]
fn the_gateway_is_exposed_on_80_kept_available_and_autoscaled() {
    let (_, manifests) = render();
    let (deployment, container) = service_container(&manifests, "api-gateway");
    let service = service_for(&manifests, deployment);
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["port"], 80);
    assert_eq!(target_port(service, port, container), 3000);
    for binary in SERVICES.iter().filter(|binary| **binary != "api-gateway") {
        let (deployment, _) = service_container(&manifests, binary);
        let kind = &service_for(&manifests, deployment)["spec"]["type"];
        assert!(kind.is_null() || kind == "ClusterIP", "{binary} is internal");
    }
    let budget = manifests.get("PodDisruptionBudget", "api-gateway").expect("PDB");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selector = budget["spec"]["selector"]["matchLabels"].as_object().expect("selector");
    assert!(selector.iter().all(|(key, value)| &labels[key] == value), "the budget covers the gateway's pods");
    let autoscaler = manifests.get("HorizontalPodAutoscaler", "api-gateway").expect("HPA");
    assert_eq!(autoscaler["spec"]["scaleTargetRef"]["name"], "api-gateway");
    assert_eq!(autoscaler["spec"]["minReplicas"], deployment["spec"]["replicas"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_become_healthy_with_the_rendered_environment_on_postgres() {
    let (_, manifests) = render();
    let declared: Vec<Declared> = SERVICES
        .iter()
        .map(|binary| {
            let (deployment, container) = service_container(&manifests, binary);
            let env: BTreeMap<String, String> = manifests.container_env(container).expect("env");
            let service = service_for(&manifests, deployment);
            let port = service["spec"]["ports"][0]["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("port");
            let probe = &container["readinessProbe"];
            let check = if probe["grpc"].is_object() {
                Check::Grpc(probe["grpc"]["service"].as_str().unwrap_or_default().to_owned())
            } else {
                Check::Http(probe["httpGet"]["path"].as_str().expect("path").to_owned())
            };
            let address = Address { host: name(service).to_owned(), port };
            Declared { address, binary: (*binary).to_owned(), env, check }
        })
        .collect();
    let broker = Address { host: "kafka".into(), port: 9092 };
    let postgres = Address { host: "postgres".into(), port: 5432 };
    let backing = Backing { broker, postgres: Some((postgres, tools::initialised_databases())) };
    let launched = launch(declared, &backing).await.expect("launch");
    assert_eq!(launched.started.len(), 4);
}
