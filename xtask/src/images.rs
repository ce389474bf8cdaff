//! `cargo xtask images`: the images `docker compose build` and `compose.embedded-broker.yml`
//! need, on a machine that cannot pull them (no registry, offline): the Dockerfile's base
//! images, pulled when a registry answers and made here when none does, and the embedded
//! broker's image, made from the broker `cargo xtask` builds.

use std::process::ExitCode;

use deploy::{
    dockerfile::Dockerfile,
    engine::{self, Origin},
};
use launcher::broker::TANSU_VERSION;

use crate::{setup, workspace_root};

pub fn run() -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    anyhow::ensure!(
        engine::answers(),
        "Docker's engine does not answer: start it (`sudo systemctl start docker`, or `sudo dockerd &`)"
    );
    let dockerfile = Dockerfile::load(&root.join("Dockerfile"))?;
    let release = dockerfile.global_arg("DEBIAN_RELEASE").unwrap_or("bookworm").to_owned();
    let rust = dockerfile.global_arg("RUST_VERSION").unwrap_or("1.95").to_owned();
    let broker = setup::broker(&root)?;
    let work = tempfile::tempdir()?;
    let said = |image: String, origin: Origin| {
        let how = match origin {
            Origin::Present => "present",
            Origin::Pulled => "pulled",
            Origin::MadeHere => "made on this machine",
        };
        eprintln!("{image}: {how}");
    };
    eprintln!("debian:{release}-slim: pulling, or making it with debootstrap (about a minute)");
    said(format!("debian:{release}-slim"), engine::debian_slim(&release, work.path())?);
    eprintln!("rust:{rust}-{release}: pulling, or making it from this machine's toolchain (a few minutes)");
    said(format!("rust:{rust}-{release}"), engine::rust_image(&rust, &release, work.path())?);
    let image = engine::broker_image(&broker, TANSU_VERSION, &release, work.path())?;
    said(image, Origin::MadeHere);
    Ok(ExitCode::SUCCESS)
}
