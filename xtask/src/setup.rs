//! Installing what a fresh machine lacks. Each step checks first and does nothing when the
//! tool is already there, so running it every time costs a few milliseconds.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::run_checked;

/// rustfmt and clippy, through rustup.
pub fn rust_components() -> anyhow::Result<()> {
    for (component, probe) in [("rustfmt", ["fmt", "--version"]), ("clippy", ["clippy", "--version"])] {
        if !succeeds(Command::new("cargo").args(probe)) {
            run_checked(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

/// cargo-nextest, the test runner.
pub fn nextest() -> anyhow::Result<()> {
    if !succeeds(Command::new("cargo").args(["nextest", "--version"])) {
        run_checked(Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))?;
    }
    Ok(())
}

/// cargo-fuzz, which builds and runs the fuzz targets, pinned.
pub fn cargo_fuzz() -> anyhow::Result<()> {
    const VERSION: &str = "0.13.2";
    let installed = Command::new("cargo").args(["fuzz", "--version"]).output();
    if installed
        .is_ok_and(|output| output.status.success() && String::from_utf8_lossy(&output.stdout).contains(VERSION))
    {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz {VERSION} from crates.io, for the fuzz targets");
    run_checked(Command::new("cargo").args(["install", "cargo-fuzz", "--locked", "--version", VERSION]))
}

/// Debian packages the build needs besides Rust's toolchain and a C compiler: OpenSSL's headers
/// and static libraries, which librdkafka's TLS links, and pkg-config, which finds them.
pub fn build_packages() -> anyhow::Result<()> {
    if succeeds(Command::new("pkg-config").args(["--exists", "openssl"])) {
        return Ok(());
    }
    eprintln!("installing libssl-dev and pkg-config from Debian's packages, for the build");
    apt_install(&["libssl-dev", "pkg-config"])
}

/// Debian packages the tests use: the PostgreSQL server (storage tests run on it too),
/// Chromium (the GraphiQL browser test) and curl (the README examples).
pub fn test_packages() -> anyhow::Result<()> {
    let postgres = std::env::var_os("PG_BIN_DIR").is_some()
        || std::fs::read_dir("/usr/lib/postgresql")
            .map(|versions| versions.flatten().any(|version| version.path().join("bin/postgres").exists()))
            .unwrap_or(false);
    let missing: Vec<&str> =
        [("postgresql", postgres), ("chromium", has_command("chromium")), ("curl", has_command("curl"))]
            .into_iter()
            .filter_map(|(package, present)| (!present).then_some(package))
            .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {} from Debian's packages, for the tests", missing.join(", "));
    apt_install(&missing)
}

/// The npm packages whose published builds make up the offline GraphiQL page, and which file
/// of each the gateway embeds. Pinned: GraphiQL 3 is the last line with a browser bundle that
/// runs on React 18 without a build step.
const GRAPHIQL_FILES: [(&str, &str, &str); 4] = [
    ("react@18.3.1", "package/umd/react.production.min.js", "react.production.min.js"),
    ("react-dom@18.3.1", "package/umd/react-dom.production.min.js", "react-dom.production.min.js"),
    ("graphiql@3.8.3", "package/graphiql.min.js", "graphiql.min.js"),
    ("graphiql@3.8.3", "package/graphiql.min.css", "graphiql.min.css"),
];

/// The npm registry the GraphiQL files come from: npm's own setting when the user has one (a
/// mirror), else the public registry.
fn npm_registry() -> String {
    std::env::var("NPM_CONFIG_REGISTRY")
        .or_else(|_| std::env::var("npm_config_registry"))
        .ok()
        .filter(|registry| !registry.is_empty())
        .unwrap_or_else(|| "https://registry.npmjs.org".to_owned())
}

/// Fetches the GraphiQL files from the npm registry into `api-gateway/assets/graphiql/` (not
/// committed), so the gateway embeds them and GraphiQL works with no internet access. The
/// packages' tarballs are fetched with curl, not npm: a fresh machine (or the image's build
/// stage) need not install Node.js for four files.
pub fn graphiql_assets(root: &std::path::Path) -> anyhow::Result<()> {
    let dest = root.join("api-gateway").join("assets").join("graphiql");
    if GRAPHIQL_FILES.iter().all(|(_, _, name)| dest.join(name).is_file()) {
        return Ok(());
    }
    if !has_command("curl") {
        apt_install(&["curl"])?;
    }
    eprintln!("fetching GraphiQL's files from the npm registry, for the offline GraphiQL page");
    let download = tempfile::tempdir()?;
    let registry = npm_registry();
    std::fs::create_dir_all(&dest)?;
    for (spec, member, name) in GRAPHIQL_FILES {
        let (package, version) = spec.rsplit_once('@').context("package@version")?;
        let tarball = download.path().join(format!("{package}-{version}.tgz"));
        if !tarball.exists() {
            let url = format!("{}/{package}/-/{package}-{version}.tgz", registry.trim_end_matches('/'));
            run_checked(
                Command::new("curl")
                    .args(["--fail", "--silent", "--show-error", "--location", "--output"])
                    .arg(&tarball)
                    .arg(&url),
            )?;
        }
        let unpacked = download.path().join(package);
        std::fs::create_dir_all(&unpacked)?;
        run_checked(
            Command::new("tar").arg("xzf").arg(&tarball).arg("-C").arg(&unpacked).args([member, "package/LICENSE"]),
        )?;
        std::fs::copy(unpacked.join(member), dest.join(name))?;
        std::fs::copy(unpacked.join("package/LICENSE"), dest.join(format!("{package}.LICENSE")))?;
    }
    Ok(())
}

fn has_command(name: &str) -> bool {
    succeeds(Command::new("sh").args(["-c", &format!("command -v {name}")]))
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let apt = |args: &[&str]| {
        let mut command = privileged("apt-get")?;
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        Ok::<_, anyhow::Error>(command)
    };
    run_checked(&mut apt(&["update", "-qq"])?)
        .and_then(|()| run_checked(apt(&["install", "-y", "-qq", "--no-install-recommends"])?.args(packages)))
        .with_context(|| {
            format!("installing {packages:?} (as root, or with `sudo apt-get install -y {}`)", packages.join(" "))
        })
}

/// `program` run as root: directly when this is root, else through password-less sudo.
fn privileged(program: &str) -> anyhow::Result<Command> {
    let id = Command::new("id").arg("-u").output().context("running id -u")?;
    if String::from_utf8_lossy(&id.stdout).trim() == "0" {
        Ok(Command::new(program))
    } else if succeeds(Command::new("sudo").args(["-n", "true"])) {
        let mut command = Command::new("sudo");
        command.args(["-n", program]);
        Ok(command)
    } else {
        bail!("`{program}` needs root, and sudo asks for a password")
    }
}

fn succeeds(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|status| status.success())
}

/// The embedded broker, pinned: tansu with SQLite storage (`libsql`), the only engine the local
/// run and the tests use. Building its object-store engine too (`dynostore`) as before pulled a
/// cloud-storage stack for nothing.
const TANSU: (&str, &str, &str) = ("tansu", launcher::broker::TANSU_VERSION, "libsql");

/// Builds the broker from crates.io into `.dev/tools/bin/tansu` once (it takes minutes), and
/// returns its path. `TANSU_BIN` points at another build instead.
pub fn broker(root: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    if let Some(path) = std::env::var_os(launcher::broker::TANSU_BIN_ENV) {
        return Ok(path.into());
    }
    let tools = root.join(".dev").join("tools");
    let binary = launcher::broker::built_binary(root);
    if !binary.exists() {
        let (name, version, features) = TANSU;
        eprintln!("building the broker ({name} {version}) from crates.io; this takes several minutes, once");
        // Not `--quiet`: the longest step of a first run should show that it is moving.
        run_checked(
            Command::new("cargo")
                .args(["install", "--locked", name, "--version", version, "--features", features, "--root"])
                .arg(&tools),
        )?;
    }
    Ok(binary)
}

/// The Compose validator and linter (validates against the Compose specification's schema),
/// pinned, from the npm registry.
const DCLINT: (&str, &str) = ("dclint", "3.1.0");
/// The Kubernetes schema validator (carries the schemas, so it works offline), pinned, from PyPI.
const KUBERNETES_VALIDATE: (&str, &str) = ("kubernetes-validate", "1.37.0");

/// The validators the deployment tests run, installed under `.dev/tools/` once, and kubectl
/// (for `kubectl kustomize`). Returns the paths of dclint and kubernetes-validate.
pub fn deploy_validators(root: &std::path::Path) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let tools = root.join(".dev").join("tools");
    if !has_command("kubectl") {
        // Debian's kubectl is old, but its built-in kustomize renders k8s/ (which keeps to
        // the kustomization fields that version knows).
        apt_install(&["kubernetes-client"])?;
    }

    let node = tools.join("node");
    let dclint = node.join("node_modules").join(".bin").join(DCLINT.0);
    let installed = std::fs::read_to_string(node.join("node_modules").join(DCLINT.0).join("package.json"))
        .is_ok_and(|manifest| manifest.contains(&format!("\"version\": \"{}\"", DCLINT.1)));
    if !installed {
        if !has_command("npm") {
            apt_install(&["npm"])?;
        }
        std::fs::create_dir_all(&node)?;
        let mut npm = Command::new("npm");
        npm.args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&node)
            .arg(format!("{}@{}", DCLINT.0, DCLINT.1));
        run_checked(npm.stdout(Stdio::null()))?;
    }

    let venv = tools.join("venv");
    let validator = venv.join("bin").join(KUBERNETES_VALIDATE.0);
    let pip = venv.join("bin").join("pip");
    let wanted = format!("{}=={}", KUBERNETES_VALIDATE.0, KUBERNETES_VALIDATE.1);
    let installed = Command::new(&pip)
        .args(["show", KUBERNETES_VALIDATE.0])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(&format!("Version: {}", KUBERNETES_VALIDATE.1)));
    if !installed {
        if !succeeds(Command::new("python3").args(["-m", "venv", "--help"])) {
            apt_install(&["python3-venv"])?;
        }
        run_checked(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run_checked(Command::new(&pip).args(["install", "--quiet", "--disable-pip-version-check", &wanted]))?;
    }
    Ok((dclint, validator))
}

/// The oldest Compose the container test works with: the project's compose file needs 2.20
/// (`name:`, `depends_on.*.required`), and the test's broker override replaces the Kafka
/// service's settings with `!reset`, which came in 2.24.
const COMPOSE_MINIMUM: (u32, u32) = (2, 24);

/// The Debian release Compose v2 and buildx come from when this one's are too old: bookworm
/// has Compose 1.29 only, trixie has 2.26 and buildx 0.13, built against a libc bookworm has.
const COMPOSE_RELEASE: &str = "trixie";

/// What the container test needs: Docker's engine (`docker.io`), Compose v2 and buildx, and
/// debootstrap (it makes the base images locally when no image registry is reachable). From
/// Debian's packages; Compose and buildx from the next release when this one's are too old.
pub fn container_engine() -> anyhow::Result<()> {
    let missing: Vec<&str> = [("docker.io", has_command("dockerd")), ("debootstrap", has_command("debootstrap"))]
        .into_iter()
        .filter_map(|(package, present)| (!present).then_some(package))
        .collect();
    if !missing.is_empty() {
        eprintln!("installing {} from Debian's packages, for the container test", missing.join(", "));
        apt_install(&missing)?;
    }
    if compose_version().is_some_and(|version| version >= COMPOSE_MINIMUM) {
        return Ok(());
    }
    // This release's packages first. Debian bookworm has no `docker-buildx` at all, so apt
    // refuses the pair there: that is not fatal, the next release's packages are.
    if let Err(error) = apt_install(&["docker-compose", "docker-buildx"]) {
        eprintln!("{error:#}");
    } else if compose_version().is_some_and(|version| version >= COMPOSE_MINIMUM) {
        return Ok(());
    }
    eprintln!(
        "this release has no Compose {}.{} or newer with buildx: installing them from Debian {COMPOSE_RELEASE}",
        COMPOSE_MINIMUM.0, COMPOSE_MINIMUM.1
    );
    install_from_release(COMPOSE_RELEASE, &["docker-compose", "docker-buildx"])?;
    match compose_version() {
        Some(version) if version >= COMPOSE_MINIMUM => Ok(()),
        other => {
            bail!("Compose is {other:?} after installing it from {COMPOSE_RELEASE}, not {COMPOSE_MINIMUM:?} or newer")
        }
    }
}

/// `docker compose version`, as (major, minor), when the plugin is there.
fn compose_version() -> Option<(u32, u32)> {
    let output = Command::new("docker").args(["compose", "version", "--short"]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    parse_version(&String::from_utf8_lossy(&output.stdout))
}

/// (major, minor) of a version as tools print it: `2.26.1-4`, `v2.20.0`, `1.29.2`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().trim_start_matches('v').split(['.', '-', '+']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Downloads `packages` from another Debian release with apt's own index and signature checks,
/// in a private apt state (the system's sources are not touched), and installs them with dpkg.
/// Only for packages whose sole dependency is a libc this release has.
fn install_from_release(release: &str, packages: &[&str]) -> anyhow::Result<()> {
    let state = tempfile::tempdir()?;
    let dir = state.path();
    for sub in ["lists/partial", "archives/partial", "parts"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("sources.list"), format!("deb {} {release} main\n", deploy::engine::debian_mirror()))?;
    let apt = |args: &[&str]| {
        let mut command = privileged("apt-get")?;
        for (option, value) in [
            ("Dir::Etc::SourceList", dir.join("sources.list")),
            ("Dir::Etc::SourceParts", dir.join("parts")),
            ("Dir::Etc::PreferencesParts", dir.join("parts")),
            ("Dir::State::Lists", dir.join("lists")),
            ("Dir::Cache::Archives", dir.join("archives")),
        ] {
            command.arg("-o").arg(format!("{option}={}", value.display()));
        }
        command.args(["-o", "Dir::Etc::Preferences=/dev/null", "-o", "APT::Sandbox::User=root", "-qq"]);
        command.args(args).current_dir(dir);
        Ok::<_, anyhow::Error>(command)
    };
    run_checked(&mut apt(&["update"])?)?;
    run_checked(apt(&["download"])?.args(packages))?;
    let debs: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    run_checked(privileged("dpkg")?.arg("--install").args(&debs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_versions_are_read_as_printed() {
        assert_eq!(parse_version("2.26.1-4\n"), Some((2, 26)));
        assert_eq!(parse_version("v2.20.0"), Some((2, 20)));
        assert_eq!(parse_version("1.29.2"), Some((1, 29)));
        assert_eq!(parse_version("docker-compose"), None);
        assert!(Some((2, 20)) < Some(COMPOSE_MINIMUM) && Some((2, 26)) >= Some(COMPOSE_MINIMUM));
    }
}
