//! The Dockerfile builds with the command `cargo xtask` builds with, and its run step (the
//! runtime stage's environment, entry point and health check) serves on this machine.

use std::time::Duration;

use deploy::{
    build::{SERVICES, cargo_build_args},
    dockerfile::Dockerfile,
    workspace_root,
};
use test_support::{ServiceProcess, workspace_binary};

fn dockerfile() -> Dockerfile {
    Dockerfile::load(&workspace_root().join("Dockerfile")).expect("Dockerfile")
}

/// The image's binary (entry point and health check), which stands for the real one here.
const IMAGE_BINARY: &str = "/usr/local/bin/service";

#[test]
fn the_build_step_is_the_build_xtask_runs_in_release_mode_with_cached_dependencies() {
    let file = dockerfile();
    let build = file.stage("build").expect("build stage");
    let command = format!("cargo {}", cargo_build_args(true, &SERVICES).join(" "));
    let step = build.runs().find(|run| run.program().starts_with(&command));
    let step = step.unwrap_or_else(|| panic!("no `{command}` in {:#?}", build.runs().collect::<Vec<_>>()));
    // The registry and the target directory outlive the step, so an edit recompiles only the
    // workspace's crates; the target directory is the one under the stage's WORKDIR.
    let workdir = build.last("WORKDIR").expect("the build's WORKDIR");
    let mounts = step.cache_mounts();
    for cached in ["/usr/local/cargo/registry".to_owned(), format!("{workdir}/target")] {
        assert!(mounts.contains(&cached.as_str()), "{cached} is not a cache mount of the build: {mounts:?}");
    }
    // The binaries leave the mount in the same step: a cache mount is not part of the image.
    for service in SERVICES {
        assert!(step.command.contains(&format!("target/release/{service}")), "{service} is not copied out");
    }
}

#[test]
fn the_four_images_share_one_build() {
    let file = dockerfile();
    for stage in file.stages.iter().filter(|stage| stage.name.as_deref() != Some("runtime")) {
        for instruction in &stage.instructions {
            assert!(
                !instruction.args.contains("SERVICE"),
                "stage {:?} depends on SERVICE, so each image would build it again: {} {}",
                stage.name,
                instruction.keyword,
                instruction.args
            );
        }
    }
}

#[test]
fn the_image_builds_offline_from_a_registry_s_point_of_view_and_embeds_graphiql() {
    let text = std::fs::read_to_string(workspace_root().join("Dockerfile")).expect("Dockerfile");
    // A `# syntax=` parser directive makes BuildKit pull a frontend image before the first step.
    let directives = text.lines().take_while(|line| line.starts_with('#'));
    for line in directives {
        assert!(!line.replace(' ', "").to_lowercase().starts_with("#syntax="), "a parser directive: {line}");
    }
    let file = dockerfile();
    let runs: Vec<&str> = file.stage("build").expect("build stage").runs().map(|run| run.program()).collect();
    let assets =
        runs.iter().position(|run| run.contains("xtask -- graphiql-assets")).expect("GraphiQL's files fetched");
    let build = runs.iter().position(|run| run.starts_with("cargo build")).expect("the build");
    assert!(assets < build, "the files are there before the gateway is built (its build script embeds them)");
}

#[test]
fn the_runtime_user_is_made_without_warnings() {
    let file = dockerfile();
    let runtime = file.stages.last().expect("stages");
    let useradd = runtime.all("RUN").find(|run| run.contains("useradd")).expect("useradd");
    // `--system` accounts are numbered below SYS_UID_MAX (999); asking for 10001 warns.
    assert!(!useradd.contains("--system"), "{useradd}");
}

#[test]
fn the_toolchain_in_the_image_is_new_enough_for_the_workspace() {
    let file = dockerfile();
    let image: Vec<u32> =
        file.global_arg("RUST_VERSION").expect("RUST_VERSION").split('.').map(|n| n.parse().expect("number")).collect();
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("Cargo.toml");
    let minimum = manifest.lines().find_map(|line| line.strip_prefix("rust-version = ")).expect("rust-version");
    let minimum: Vec<u32> = minimum.trim_matches('"').split('.').map(|n| n.parse().expect("number")).collect();
    assert!(image >= minimum, "the image builds with Rust {image:?}, the workspace needs {minimum:?}");
    assert!(file.stages[0].base.starts_with("rust:${RUST_VERSION}"), "{}", file.stages[0].base);
}

#[test]
fn the_runtime_image_is_small_and_unprivileged() {
    let file = dockerfile();
    let runtime = file.stages.last().expect("stages");
    assert_eq!(runtime.name.as_deref(), Some("runtime"), "the runtime stage is the image");
    assert!(runtime.base.ends_with("-slim"), "a slim base: {}", runtime.base);
    let user = runtime.last("USER").expect("USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(uid.parse::<u32>().is_ok_and(|uid| uid > 0), "a numeric non-root user (Kubernetes checks it): {user}");
    assert_eq!(runtime.exec_form("ENTRYPOINT").expect("entry point"), [IMAGE_BINARY]);
    assert_eq!(runtime.health_check().expect("health check"), [IMAGE_BINARY, "--health-check"]);
    assert!(runtime.last("STOPSIGNAL").is_none(), "docker stop sends SIGTERM, which the binaries drain on");
}

#[test]
fn the_build_context_leaves_out_build_output_but_not_sources() {
    let ignore = std::fs::read_to_string(workspace_root().join(".dockerignore")).expect(".dockerignore");
    let patterns: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for excluded in ["target/", ".dev/", ".git/", "data/"] {
        assert!(patterns.contains(&excluded), ".dockerignore should leave out {excluded}");
    }
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("Cargo.toml");
    for needed in ["Cargo.lock", "proto/", "Cargo.toml"].into_iter().chain(members(&manifest)) {
        let needed = needed.trim_end_matches('/');
        assert!(
            patterns.iter().all(|pattern| pattern.trim_end_matches('/') != needed),
            ".dockerignore leaves out {needed}, which the build needs"
        );
    }
}

fn members(manifest: &str) -> impl Iterator<Item = &str> {
    let list = manifest.split("members = [").nth(1).and_then(|rest| rest.split(']').next()).unwrap_or_default();
    list.split(',').map(|member| member.trim().trim_matches('"')).filter(|member| !member.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_step_serves_and_passes_its_health_check() {
    let runtime = dockerfile().stages.pop().expect("runtime stage");
    let data = tempfile::tempdir().expect("tempdir");
    let mut env = runtime.env().expect("ENV");
    assert_eq!(env.get("DATA_DIR").map(String::as_str), Some("/data"), "the data volume");
    env.insert("DATA_DIR".into(), data.path().display().to_string());
    // No broker in this test: the image's defaults plus what Compose and Kubernetes always set.
    env.insert("KAFKA_BROKERS".into(), String::new());
    env.insert("LISTEN_ADDR".into(), "127.0.0.1:0".into());
    let binary = workspace_binary("product-service");
    let envs: Vec<(&str, String)> = env.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
    let process = ServiceProcess::start(&binary, &envs).expect("start as the image does");
    env.insert("LISTEN_ADDR".into(), process.url().trim_start_matches("http://").to_owned());

    let check = runtime.health_check().expect("health check");
    assert_eq!(check[0], IMAGE_BINARY);
    let output = std::process::Command::new(&binary).args(&check[1..]).env_clear().envs(&env).output().expect("run");
    assert!(output.status.success(), "health check failed: {}", String::from_utf8_lossy(&output.stderr));

    let (status, _) = process.terminate(Duration::from_secs(10)).expect("docker stop");
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    let after = std::process::Command::new(&binary).args(&check[1..]).env_clear().envs(&env).output().expect("run");
    assert!(!after.status.success(), "the health check fails once the service is gone");
}
