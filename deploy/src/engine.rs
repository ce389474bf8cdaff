//! A Docker engine to run the images in, and the base images they build from: pulled when an
//! image registry answers, made on this machine when none does (`debootstrap` for Debian, the
//! host's own Rust toolchain for the build image, the embedded broker for Kafka).
//!
//! `cargo xtask test` installs the engine, Compose and debootstrap from Debian's packages;
//! this module starts the engine when it is not running and stops it again (by pid) when it
//! started it.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use launcher::stop::{StopSignal, stop_pid};

/// How long a started engine may take to answer.
const ENGINE_START: Duration = Duration::from_secs(60);

/// How long a stopped engine may take to stop its containers and exit.
const ENGINE_STOP: Duration = Duration::from_secs(30);

/// The packages a Rust build image needs besides the toolchain: a C toolchain for the crates
/// that build C code (librdkafka, SQLite), OpenSSL's static libraries and pkg-config (librdkafka's
/// TLS links them), curl and git for cargo and the build's own downloads. The official `rust`
/// images have all of them.
const BUILD_PACKAGES: &str = "build-essential pkg-config libssl-dev curl ca-certificates git";

/// The label a Rust build image made here carries: the packages it was made with, so that one
/// made with other packages (by an older checkout) is made again.
const BUILD_PACKAGES_LABEL: &str = "org.nest-microservices.build-packages";

/// A `docker` command.
pub fn docker() -> Command {
    Command::new("docker")
}

/// Runs `command`, and returns its output, or an error naming `what` with the tail of what it
/// printed.
pub fn run(what: &str, command: &mut Command) -> anyhow::Result<String> {
    let output = command.output().with_context(|| format!("{what}: could not run {command:?}"))?;
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("{what} failed ({}):\n{}", output.status, tail(&printed, 60));
    }
    Ok(printed)
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The engine: one that was running already, or one started here, which is stopped (by pid)
/// when this is dropped.
#[derive(Debug)]
pub struct DockerEngine {
    started: Option<Child>,
}

impl DockerEngine {
    /// Connects to the running engine, or starts `dockerd` (its log in `log`) and waits until
    /// it answers.
    pub fn ensure(log: &Path) -> anyhow::Result<Self> {
        if answers() {
            return Ok(Self { started: None });
        }
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new("dockerd")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting dockerd (`cargo xtask test` installs Debian's docker.io)")?;
        let engine = Self { started: Some(child) };
        let deadline = Instant::now() + ENGINE_START;
        while !answers() {
            if Instant::now() > deadline {
                let printed = std::fs::read_to_string(log).unwrap_or_default();
                bail!("dockerd did not answer within {ENGINE_START:?}:\n{}", tail(&printed, 30));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(engine)
    }

    /// Whether this engine was started here (and will be stopped when dropped).
    pub fn started_here(&self) -> bool {
        self.started.is_some()
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        if let Some(mut child) = self.started.take() {
            stop_pid(child.id(), StopSignal::Term, ENGINE_STOP, || matches!(child.try_wait(), Ok(Some(_))));
            let _ = child.wait();
        }
    }
}

/// Whether an engine answers (`docker info`).
pub fn answers() -> bool {
    docker().arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|status| status.success())
}

/// Whether the engine has `image`.
pub fn has_image(image: &str) -> bool {
    docker()
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The value of `label` on `image`; `None` when the engine lacks the image or it has no such
/// label.
fn image_label(image: &str, label: &str) -> Option<String> {
    let output = docker()
        .args(["image", "inspect", "--format", &format!("{{{{ index .Config.Labels \"{label}\" }}}}"), image])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let value = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !value.is_empty() && value != "<no value>").then_some(value)
}

/// Where an image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The engine had it already.
    Present,
    /// Pulled from the registry.
    Pulled,
    /// Made on this machine: no registry answered.
    MadeHere,
}

/// `image`, pulled when the engine lacks it; `None` when the pull fails (no registry reachable,
/// or no such image there).
pub fn present_or_pulled(image: &str) -> Option<Origin> {
    if has_image(image) {
        return Some(Origin::Present);
    }
    let pulled = docker().args(["pull", "--quiet", image]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    pulled.is_ok_and(|status| status.success()).then_some(Origin::Pulled)
}

/// `debian:<release>-slim`, pulled, or made with `debootstrap` (minbase, from this machine's
/// Debian mirror) and imported, in `work`.
pub fn debian_slim(release: &str, work: &Path) -> anyhow::Result<Origin> {
    let image = format!("debian:{release}-slim");
    if let Some(origin) = present_or_pulled(&image) {
        return Ok(origin);
    }
    let root = work.join(format!("debian-{release}"));
    run(
        &format!("debootstrap of Debian {release} for {image}"),
        Command::new("debootstrap").args(["--variant=minbase", release]).arg(&root).arg(debian_mirror()),
    )?;
    let mut tar = Command::new("tar").arg("-C").arg(&root).args(["-c", "."]).stdout(Stdio::piped()).spawn()?;
    let imported = docker()
        .args(["import", "--change", "CMD [\"bash\"]", "-", &image])
        .stdin(tar.stdout.take().context("tar's output")?)
        .output()?;
    let _ = tar.wait();
    let _ = std::fs::remove_dir_all(&root);
    if !imported.status.success() {
        bail!("importing {image}: {}", String::from_utf8_lossy(&imported.stderr));
    }
    Ok(Origin::MadeHere)
}

/// `rust:<version>-<release>`, pulled, or made from `debian:<release>-slim` with Debian's C
/// toolchain, this machine's Rust toolchain (which must be `version` or newer) and its
/// certificate authorities (so the build inside reaches crates.io through the same proxies).
pub fn rust_image(version: &str, release: &str, work: &Path) -> anyhow::Result<Origin> {
    let image = format!("rust:{version}-{release}");
    if image_label(&image, BUILD_PACKAGES_LABEL).is_some_and(|packages| packages != BUILD_PACKAGES) {
        run(&format!("removing {image}, made here with other packages"), docker().args(["image", "rm", &image]))?;
    }
    if let Some(origin) = present_or_pulled(&image) {
        return Ok(origin);
    }
    debian_slim(release, work)?;
    let sysroot = run("rustc --print sysroot", Command::new("rustc").args(["--print", "sysroot"]))?;
    let sysroot = PathBuf::from(sysroot.trim());
    let host = run("rustc --version", Command::new("rustc").arg("--version"))?;
    let host_version = host.split_whitespace().nth(1).unwrap_or_default();
    if !at_least(host_version, version) {
        bail!("no registry answers for {image}, and this machine's Rust ({host_version}) is older than {version}");
    }

    let context = work.join("rust-image");
    let toolchain = context.join("toolchain");
    std::fs::create_dir_all(&toolchain)?;
    // The compiler and the standard library; not the docs or the library's source.
    for part in ["bin", "lib", "libexec"] {
        if sysroot.join(part).exists() {
            run("copying the Rust toolchain", Command::new("cp").arg("-a").arg(sysroot.join(part)).arg(&toolchain))?;
        }
    }
    let _ = std::fs::remove_dir_all(toolchain.join("lib/rustlib/src"));
    let authorities = context.join("ca");
    std::fs::create_dir_all(&authorities)?;
    if let Ok(entries) = std::fs::read_dir("/usr/local/share/ca-certificates") {
        for entry in entries.flatten().filter(|entry| entry.path().extension().is_some_and(|ext| ext == "crt")) {
            std::fs::copy(entry.path(), authorities.join(entry.file_name()))?;
        }
    }
    let dockerfile = format!(
        "FROM debian:{release}-slim\n\
         RUN apt-get update && apt-get install -y --no-install-recommends {BUILD_PACKAGES} \
         && rm -rf /var/lib/apt/lists/*\n\
         COPY ca/ /usr/local/share/ca-certificates/\n\
         RUN update-ca-certificates\n\
         LABEL {BUILD_PACKAGES_LABEL}=\"{BUILD_PACKAGES}\"\n\
         COPY toolchain/ /usr/local/rust/\n\
         RUN mkdir -p /usr/local/cargo/bin && for tool in cargo rustc rustdoc; do \
         ln -s /usr/local/rust/bin/$tool /usr/local/cargo/bin/$tool; done\n\
         ENV CARGO_HOME=/usr/local/cargo \
         PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    build_in(&context, &dockerfile, &image, "from this machine's toolchain")?;
    Ok(Origin::MadeHere)
}

/// An image that runs the embedded broker (tansu, `binary`) in place of Kafka's, tagged
/// `local/tansu-broker:<version>`, on `debian:<release>-slim`.
pub fn broker_image(binary: &Path, version: &str, release: &str, work: &Path) -> anyhow::Result<String> {
    debian_slim(release, work)?;
    let image = format!("local/tansu-broker:{version}");
    let context = work.join("broker-image");
    std::fs::create_dir_all(&context)?;
    std::fs::copy(binary, context.join("tansu")).with_context(|| format!("copying {}", binary.display()))?;
    let dockerfile = format!(
        "FROM debian:{release}-slim\n\
         COPY tansu /usr/local/bin/tansu\n\
         ENTRYPOINT [\"/usr/local/bin/tansu\"]\n"
    );
    build_in(&context, &dockerfile, &image, "with the embedded broker")?;
    Ok(image)
}

/// Builds `image` from `dockerfile` in `context` (a directory holding the files it copies),
/// then removes the directory: what it holds is in the image now. `what` ends the step's name.
fn build_in(context: &Path, dockerfile: &str, image: &str, what: &str) -> anyhow::Result<()> {
    std::fs::write(context.join("Dockerfile"), dockerfile)
        .with_context(|| format!("writing the Dockerfile of {image} in {}", context.display()))?;
    run(&format!("building {image} {what}"), docker().args(["build", "-t", image]).arg(context))?;
    let _ = std::fs::remove_dir_all(context);
    Ok(())
}

/// Whether version `have` (`1.95.0`) is at least `want` (`1.95`), comparing numbers.
fn at_least(have: &str, want: &str) -> bool {
    let numbers = |text: &str| text.split('.').map(|part| part.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    numbers(have) >= numbers(want)
}

/// The Debian mirror this machine's apt uses (the first `URIs:` or `deb` line of its sources
/// whose path is Debian's archive, `…/debian`: not the security archive, not a third party's
/// repository), so that a machine behind a mirror keeps using it.
pub fn debian_mirror() -> String {
    let mut texts = vec![std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(parts) = std::fs::read_dir("/etc/apt/sources.list.d") {
        // apt reads only these two kinds; others (`*.disabled`, backups) are not in use.
        let in_use = |path: &Path| path.extension().is_some_and(|ext| ext == "list" || ext == "sources");
        let mut paths: Vec<PathBuf> = parts.flatten().map(|entry| entry.path()).filter(|path| in_use(path)).collect();
        paths.sort();
        texts.extend(paths.iter().filter_map(|path| std::fs::read_to_string(path).ok()));
    }
    let mut uris = texts.iter().flat_map(|text| text.lines()).filter_map(|line| {
        let line = line.trim();
        let rest = line.strip_prefix("URIs:").or_else(|| line.strip_prefix("deb "))?;
        rest.split_whitespace().find(|word| word.starts_with("http"))
    });
    uris.find(|uri| uri.trim_end_matches('/').ends_with("/debian"))
        .unwrap_or("http://deb.debian.org/debian")
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(at_least("1.95.0", "1.95"));
        assert!(at_least("1.100.0", "1.95"));
        assert!(!at_least("1.94.1", "1.95"));
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
