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

/// The PostgreSQL server binaries, from Debian's packages.
pub fn postgres() -> anyhow::Result<()> {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| versions.flatten().any(|version| version.path().join("bin/postgres").exists()))
        .unwrap_or(false);
    if installed || std::env::var_os("PG_BIN_DIR").is_some() {
        return Ok(());
    }
    eprintln!("PostgreSQL is not installed; installing it from Debian's packages (tests run on it too)");
    apt_install(&["postgresql"])
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let root = Command::new("id").arg("-u").output().context("running id -u")?;
    let apt_get: &[&str] = if String::from_utf8_lossy(&root.stdout).trim() == "0" {
        &["apt-get"]
    } else if succeeds(Command::new("sudo").args(["-n", "true"])) {
        &["sudo", "-n", "apt-get"]
    } else {
        bail!("installing {packages:?} needs root: run `sudo apt-get install -y {}`", packages.join(" "));
    };
    let apt = |args: &[&str]| {
        let mut command = Command::new(apt_get[0]);
        command.args(&apt_get[1..]).args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    run_checked(&mut apt(&["update", "-qq"]))?;
    run_checked(apt(&["install", "-y", "-qq", "--no-install-recommends"]).args(packages))
}

fn succeeds(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|status| status.success())
}
