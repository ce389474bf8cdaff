//! The images for real: built from the project's own Dockerfile and compose file in a real
//! Docker engine, the stack brought up healthy, the README's examples run against the published
//! gateway until the order is confirmed, the data kept over a restart, a scaled service
//! answering from both replicas, and everything removed. With no image registry reachable the
//! base images are made on this machine and the embedded broker stands in for Kafka's image
//! (an override that replaces only that service); with one, the real images are used.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use deploy::{
    compose::{ComposeFile, env_file},
    dockerfile::Dockerfile,
    engine::{self, DockerEngine, Origin, docker},
    workspace_root,
};
use launcher::broker::TANSU_VERSION;
use serde_json::{Value, json};
use test_support::{readme_examples, tansu_binary};

/// How long the stack may take to report every service healthy.
const HEALTHY_WITHIN_SECONDS: &str = "180";

/// How long the scaled replicas may take to both be called (the gateway resolves the service's
/// name again every 10 s).
const BOTH_REPLICAS_WITHIN: Duration = Duration::from_secs(60);

/// A Compose project of its own (its own name, volumes and gateway port), taken down with its
/// volumes when dropped, whatever happened.
struct Project {
    name: String,
    files: Vec<PathBuf>,
    gateway_port: u16,
    logs: PathBuf,
}

impl Project {
    fn compose(&self, args: &[&str]) -> Command {
        let mut command = docker();
        command.current_dir(workspace_root()).args(["compose", "--project-name", &self.name]);
        command.args(["--env-file", "compose.dev.env"]);
        for file in &self.files {
            command.arg("--file").arg(file);
        }
        command.args(args).env("GATEWAY_PORT", self.gateway_port.to_string());
        command
    }

    /// Runs `docker compose <args>` as the step called `step`, failing the test with the step's
    /// name and what Compose printed (and the services' logs) when it fails.
    fn step(&self, step: &str, args: &[&str]) -> String {
        let started = Instant::now();
        let printed = engine::run(step, &mut self.compose(args)).unwrap_or_else(|error| {
            panic!("step `{step}`: {error:#}\n--- the services' logs ---\n{}", self.service_logs())
        });
        eprintln!("step `{step}` took {:.1} s", started.elapsed().as_secs_f64());
        printed
    }

    fn service_logs(&self) -> String {
        let output = self.compose(&["logs", "--no-color", "--tail", "40"]).output();
        let text = output.map(|out| String::from_utf8_lossy(&out.stdout).into_owned()).unwrap_or_default();
        let _ = std::fs::write(&self.logs, &text);
        engine::tail(&text, 120)
    }

    fn gateway(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    /// The ids of the containers of `service`.
    fn containers(&self, service: &str) -> Vec<String> {
        let printed = engine::run("listing containers", &mut self.compose(&["ps", "--quiet", service]))
            .unwrap_or_else(|error| panic!("{error:#}"));
        printed.lines().map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned).collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "10"]).output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

/// With Kafka's own image, an override that leaves its host port unpublished: the test's
/// project must not collide with a stack the user runs. (`compose.embedded-broker.yml`, used
/// when that image cannot be had, publishes nothing either.)
fn unpublished_kafka(dir: &Path) -> PathBuf {
    let path = dir.join("compose.unpublished-kafka.yml");
    std::fs::write(&path, "services:\n  kafka:\n    ports: !reset []\n").expect("the override file");
    path
}

async fn graphql(client: &reqwest::Client, gateway: &str, token: Option<&str>, body: Value) -> Value {
    let mut request = client.post(format!("{gateway}/graphql")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer: Value = request.send().await.expect("the gateway answers").json().await.expect("JSON");
    assert!(answer.get("errors").is_none(), "{body} -> {answer}");
    answer
}

/// The value of the series `grpc_server_handled_total{…grpc_method="<method>"…}` (summed over
/// codes) on the metrics page at `url`, 0 when it is absent or the page does not answer.
async fn handled(client: &reqwest::Client, url: &str, method: &str) -> f64 {
    let Ok(response) = client.get(url).send().await else { return 0.0 };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|line| {
            line.starts_with("grpc_server_handled_total{") && line.contains(&format!("grpc_method=\"{method}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_build_and_the_stack_serves_restarts_and_scales() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let root = workspace_root();

    // Step: the engine (started here, and stopped by pid at the end, when it was not running).
    let engine = DockerEngine::ensure(&work.path().join("dockerd.log"))
        .unwrap_or_else(|error| panic!("step `engine`: {error:#}"));
    eprintln!("Docker engine: {}", if engine.started_here() { "started by the test" } else { "already running" });

    // Step: the base images the Dockerfile names, pulled or made here.
    let dockerfile = Dockerfile::load(&root.join("Dockerfile")).expect("Dockerfile");
    let release = dockerfile.global_arg("DEBIAN_RELEASE").expect("DEBIAN_RELEASE").to_owned();
    let rust = dockerfile.global_arg("RUST_VERSION").expect("RUST_VERSION").to_owned();
    let slim =
        engine::debian_slim(&release, work.path()).unwrap_or_else(|error| panic!("step `base images`: {error:#}"));
    let builder = engine::rust_image(&rust, &release, work.path())
        .unwrap_or_else(|error| panic!("step `base images`: {error:#}"));
    eprintln!("debian:{release}-slim {slim:?}, rust:{rust}-{release} {builder:?}");

    // Step: Kafka's image, or the embedded broker in its place.
    let compose_file = ComposeFile::load(&root.join("docker-compose.yml")).expect("docker-compose.yml");
    let dev_values = env_file(&root.join("compose.dev.env")).expect("compose.dev.env");
    let kafka_image = compose_file.services["kafka"].image.clone().expect("kafka's image");
    let kafka_override = match engine::present_or_pulled(&kafka_image) {
        Some(origin) => {
            eprintln!("{kafka_image} {origin:?}");
            unpublished_kafka(work.path())
        }
        None => {
            // As the README tells a user without a registry: `cargo xtask images` makes this
            // image, and the override replaces only the `kafka` service.
            let binary = tansu_binary().expect("the embedded broker's binary");
            let image = engine::broker_image(&binary, TANSU_VERSION, &release, work.path())
                .unwrap_or_else(|error| panic!("step `broker image`: {error:#}"));
            eprintln!("{kafka_image} {:?}: the embedded broker ({image}) runs in its place", Origin::MadeHere);
            root.join("compose.embedded-broker.yml")
        }
    };

    let project = Project {
        name: format!("nest-microservices-it-{}", std::process::id()),
        files: vec![root.join("docker-compose.yml"), kafka_override],
        gateway_port: free_port(),
        logs: work.path().join("services.log"),
    };

    // Step: the four images, with the project's own files.
    let started = Instant::now();
    project.step("build", &["build", "--progress", "plain"]);
    eprintln!("docker compose build: {:.0} s", started.elapsed().as_secs_f64());

    project.step("up", &["up", "--detach", "--wait", "--wait-timeout", HEALTHY_WITHIN_SECONDS]);

    // Step: the README's examples against the published gateway: they place an order and wait
    // for the saga to settle it.
    let script = readme_examples(&project.gateway()).expect("the README's examples");
    let output =
        tokio::process::Command::new("bash").args(["-euo", "pipefail", "-c", &script]).output().await.expect("bash");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "step `order`: the README's examples failed ({}): {stdout}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        project.service_logs()
    );
    let last: Value = serde_json::from_str(stdout.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("{}"))
        .expect("the last answer is JSON");
    let order = &last["data"]["userOrders"][0];
    assert_eq!(order["status"], "CONFIRMED", "step `order`: {stdout}\n{}", project.service_logs());
    let order_id = order["id"].as_str().expect("the order's id").to_owned();
    let product_id = order["items"][0]["productId"].as_str().expect("the product's id").to_owned();

    // Step: a restart keeps the data (named volumes): the order, the reservation, the users.
    project.step("restart", &["restart"]);
    project.step("healthy after restart", &["up", "--detach", "--wait", "--wait-timeout", HEALTHY_WITHIN_SECONDS]);
    let client = reqwest::Client::new();
    let gateway = project.gateway();
    let login = |email: &str, password: &str| {
        json!({"query": "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }",
               "variables": {"email": email, "password": password}})
    };
    let answer = graphql(&client, &gateway, None, login("john@example.com", "password123")).await;
    let token = answer["data"]["login"]["token"].as_str().expect("a token").to_owned();
    let answer = graphql(
        &client,
        &gateway,
        Some(&token),
        json!({"query": "query($order: ID!, $product: ID!) { order(id: $order) { status } product(id: $product) { stock } }",
               "variables": {"order": order_id, "product": product_id}}),
    )
    .await;
    assert_eq!(answer["data"]["order"]["status"], "CONFIRMED", "step `restart`: the order after a restart: {answer}");
    assert_eq!(answer["data"]["product"]["stock"], 48, "step `restart`: the reservation after a restart: {answer}");
    let user_env = compose_file.services["user-service"].environment(&dev_values).expect("user-service's environment");
    let admin = graphql(&client, &gateway, None, login(&user_env["ADMIN_EMAIL"], &user_env["ADMIN_PASSWORD"])).await;
    assert!(admin["data"]["login"]["token"].is_string(), "step `restart`: the admin account: {admin}");

    // Step: two replicas of user-service, both called by the gateway.
    project.step(
        "scale",
        &["up", "--detach", "--wait", "--wait-timeout", HEALTHY_WITHIN_SECONDS, "--scale", "user-service=2"],
    );
    let metrics_port = user_env
        .get("METRICS_ADDR")
        .and_then(|addr| addr.rsplit(':').next())
        .expect("user-service's METRICS_ADDR in docker-compose.yml");
    let replicas: Vec<String> = project
        .containers("user-service")
        .iter()
        .map(|id| {
            let address = engine::run(
                "a replica's address",
                docker().args(["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id]),
            )
            .unwrap_or_else(|error| panic!("{error:#}"));
            format!("http://{}:{metrics_port}/metrics", address.trim())
        })
        .collect();
    assert_eq!(replicas.len(), 2, "step `scale`: {replicas:?}");
    let user = json!({"query": "{ me { id } }"});
    let deadline = Instant::now() + BOTH_REPLICAS_WITHIN;
    let mut calls = Vec::new();
    loop {
        for _ in 0..10 {
            graphql(&client, &gateway, Some(&token), user.clone()).await;
        }
        calls.clear();
        for replica in &replicas {
            calls.push(handled(&client, replica, "GetUser").await);
        }
        if calls.iter().all(|count| *count > 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "step `scale`: GetUser calls per replica {calls:?} after {BOTH_REPLICAS_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("GetUser calls per replica: {calls:?}");

    // Step: down, with the volumes.
    project.step("down", &["down", "--volumes", "--remove-orphans", "--timeout", "10"]);
    let left = engine::run(
        "listing the project's volumes",
        docker().args([
            "volume",
            "ls",
            "--quiet",
            "--filter",
            &format!("label=com.docker.compose.project={}", project.name),
        ]),
    )
    .unwrap_or_else(|error| panic!("{error:#}"));
    assert!(left.trim().is_empty(), "step `down`: volumes left: {left}");
    drop(project);
    drop(engine);
}
