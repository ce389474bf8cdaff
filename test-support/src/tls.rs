//! Certificates made for one test: a CA, a certificate it signs for the processes (named
//! `localhost` and `127.0.0.1`, where tests run them), and a certificate of another CA, which
//! the processes must refuse.

use std::path::PathBuf;

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// PEM files in a temporary directory, removed when this drops.
#[derive(Debug)]
pub struct TestCertificates {
    dir: tempfile::TempDir,
}

impl TestCertificates {
    /// Makes `ca.pem`, `cert.pem` + `key.pem` (signed by the CA), and `stranger-cert.pem` +
    /// `stranger-key.pem` (signed by a CA nobody trusts).
    pub fn generate() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let ca = certificate_authority("test CA")?;
        let (cert, key) = leaf(&ca)?;
        let stranger_ca = certificate_authority("stranger CA")?;
        let (stranger_cert, stranger_key) = leaf(&stranger_ca)?;
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("cert.pem", cert),
            ("key.pem", key),
            ("stranger-cert.pem", stranger_cert),
            ("stranger-key.pem", stranger_key),
        ] {
            std::fs::write(dir.path().join(name), pem).with_context(|| format!("writing {name}"))?;
        }
        Ok(Self { dir })
    }

    /// The path of one of the files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The settings that make a process serve and call over TLS with these files; with
    /// `mutual`, its server also refuses clients without a certificate of the CA.
    pub fn grpc_envs(&self, mutual: bool) -> Vec<(&'static str, String)> {
        let text = |name: &str| self.path(name).display().to_string();
        vec![
            ("GRPC_TLS_CERT", text("cert.pem")),
            ("GRPC_TLS_KEY", text("key.pem")),
            ("GRPC_TLS_CA", text("ca.pem")),
            ("GRPC_TLS_REQUIRE_CLIENT_CERT", mutual.to_string()),
        ]
    }
}

fn certificate_authority(name: &str) -> anyhow::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

/// A certificate for `localhost` and `127.0.0.1` signed by `ca`, and its key, as PEM.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}
