//! TLS for gRPC, by configuration: a process serves TLS when it has a certificate and key, asks
//! its clients for a certificate when told to (mutual TLS), and reaches a peer over TLS when the
//! peer's URL is `https://`, checking the peer's certificate against the configured CA.
//!
//! Off by default, as a local run needs it. The settings follow the usual trio (a certificate,
//! its key, the CA that signs the peers) so one set of files per process serves both sides.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::startup::StartupError;

/// The TLS settings of a process's gRPC server and clients.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GrpcTlsArgs {
    /// The PEM certificate (chain) this process presents: its gRPC server serves TLS with it, and
    /// its clients show it to peers that ask for one. Needs GRPC_TLS_KEY.
    #[arg(long = "grpc-tls-cert", env = "GRPC_TLS_CERT")]
    pub cert: Option<PathBuf>,
    /// The PEM private key of GRPC_TLS_CERT.
    #[arg(long = "grpc-tls-key", env = "GRPC_TLS_KEY")]
    pub key: Option<PathBuf>,
    /// The PEM CA certificate(s) peers are checked against: the servers behind `https://` peer
    /// URLs, and the clients when GRPC_TLS_REQUIRE_CLIENT_CERT is on.
    #[arg(long = "grpc-tls-ca", env = "GRPC_TLS_CA")]
    pub ca: Option<PathBuf>,
    /// Mutual TLS: the server refuses clients without a certificate signed by GRPC_TLS_CA.
    #[arg(long = "grpc-tls-require-client-cert", env = "GRPC_TLS_REQUIRE_CLIENT_CERT", default_value_t = false)]
    pub require_client_cert: bool,
}

impl GrpcTlsArgs {
    /// Reads and checks the files. Every problem names the setting to fix.
    pub fn load(&self) -> Result<GrpcTls, StartupError> {
        let identity = match (&self.cert, &self.key) {
            (None, None) => None,
            (Some(_), None) => return Err(StartupError::config("GRPC_TLS_KEY", "must be set when GRPC_TLS_CERT is")),
            (None, Some(_)) => return Err(StartupError::config("GRPC_TLS_CERT", "must be set when GRPC_TLS_KEY is")),
            (Some(cert), Some(key)) => {
                let cert = read_pem("GRPC_TLS_CERT", cert, "CERTIFICATE")?;
                let key = read_pem("GRPC_TLS_KEY", key, "PRIVATE KEY")?;
                Some(Identity::from_pem(cert, key))
            }
        };
        let ca = self.ca.as_deref().map(read_ca).transpose()?;
        if self.require_client_cert {
            if identity.is_none() {
                return Err(StartupError::config(
                    "GRPC_TLS_REQUIRE_CLIENT_CERT",
                    "needs GRPC_TLS_CERT and GRPC_TLS_KEY: only a TLS server can ask for client certificates",
                ));
            }
            if ca.is_none() {
                return Err(StartupError::config(
                    "GRPC_TLS_REQUIRE_CLIENT_CERT",
                    "needs GRPC_TLS_CA, the CA that signs the clients' certificates",
                ));
            }
        }
        Ok(GrpcTls { identity, ca: ca.map(Certificate::from_pem), require_client_cert: self.require_client_cert })
    }
}

/// Reads a PEM file and checks that it holds at least one block of the expected kind, so a
/// swapped or empty file is named at start rather than failing every handshake later.
fn read_pem(setting: &'static str, path: &Path, kind: &str) -> Result<Vec<u8>, StartupError> {
    let pem = StartupError::read_setting_file(setting, path)?;
    let text = String::from_utf8_lossy(&pem);
    // Keys come as `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`.
    let found = text.lines().any(|line| line.starts_with("-----BEGIN ") && line.ends_with(&format!("{kind}-----")));
    if !found {
        return Err(StartupError::config(setting, format!("{} holds no PEM {kind}", path.display())));
    }
    Ok(pem)
}

/// Reads the CA file and checks it holds a certificate that parses: TLS clients skip the ones
/// that do not, and would then trust nothing and fail every call.
fn read_ca(path: &Path) -> Result<Vec<u8>, StartupError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};

    let pem = read_pem("GRPC_TLS_CA", path, "CERTIFICATE")?;
    let unreadable = |problem: String| StartupError::config("GRPC_TLS_CA", format!("{}: {problem}", path.display()));
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(format!("not PEM: {error}")))?;
    let (parsed, _) = rustls::RootCertStore::empty().add_parsable_certificates(certificates);
    if parsed == 0 {
        return Err(unreadable("holds no certificate that parses".to_owned()));
    }
    Ok(pem)
}

/// Loaded TLS settings; the default is plaintext everywhere.
#[derive(Debug, Clone, Default)]
pub struct GrpcTls {
    identity: Option<Identity>,
    ca: Option<Certificate>,
    require_client_cert: bool,
}

impl GrpcTls {
    /// Whether this process's server speaks TLS.
    pub fn serves_tls(&self) -> bool {
        self.identity.is_some()
    }

    /// The server's TLS configuration, when it has a certificate.
    pub fn server_config(&self) -> Option<ServerTlsConfig> {
        let identity = self.identity.clone()?;
        let mut config = ServerTlsConfig::new().identity(identity);
        if self.require_client_cert
            && let Some(ca) = &self.ca
        {
            config = config.client_ca_root(ca.clone());
        }
        Some(config)
    }

    /// The client's TLS configuration for a peer reached as `domain` (the host name its
    /// certificate must name, also when the connection goes to one of its resolved addresses).
    /// `None` without a CA: `https://` peers then cannot be reached, which
    /// [`GrpcTls::check_peer_url`] reports at start.
    pub fn client_config(&self, domain: &str) -> Option<ClientTlsConfig> {
        let ca = self.ca.clone()?;
        let mut config = ClientTlsConfig::new().ca_certificate(ca).domain_name(domain);
        if let Some(identity) = &self.identity {
            config = config.identity(identity.clone());
        }
        Some(config)
    }

    /// Refuses an `https://` peer URL when no CA is configured to check its certificate, or when
    /// the CA or this process's certificate cannot make a TLS client (a PEM that does not
    /// parse): found at start, not at the first call.
    pub fn check_peer_url(&self, setting: &'static str, url: &str, host: &str) -> Result<(), StartupError> {
        if !url.starts_with("https://") {
            return Ok(());
        }
        let Some(config) = self.client_config(host) else {
            return Err(StartupError::config(setting, format!("`{url}` is https:// but GRPC_TLS_CA is not set")));
        };
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|error| StartupError::config(setting, format!("`{url}` is not a valid URL: {error}")))?;
        endpoint
            .tls_config(config)
            .map(drop)
            .map_err(|error| StartupError::config("GRPC_TLS_CA", crate::error::with_causes(&error)))
    }

    /// How this process reaches its own server, for `--health-check`: the scheme and the TLS
    /// settings (the certificate must name `localhost`).
    pub fn own_url(&self, addr: std::net::SocketAddr) -> String {
        let scheme = if self.serves_tls() { "https" } else { "http" };
        format!("{scheme}://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

    fn problem(args: &GrpcTlsArgs) -> String {
        args.load().expect_err("refused").to_string()
    }

    #[test]
    fn nothing_set_is_plaintext() {
        let tls = GrpcTlsArgs::default().load().expect("plaintext");
        assert!(!tls.serves_tls());
        assert!(tls.server_config().is_none());
        assert!(tls.client_config("user-service").is_none());
        assert_eq!(tls.own_url("127.0.0.1:1".parse().expect("addr")), "http://127.0.0.1:1");
    }

    #[test]
    fn half_pairs_and_missing_files_name_the_setting() {
        let dir = tempfile::tempdir().expect("dir");
        let cert = write(dir.path(), "cert.pem", CERT);
        let key = write(dir.path(), "key.pem", KEY);
        assert!(problem(&GrpcTlsArgs { cert: Some(cert.clone()), ..Default::default() }).starts_with("GRPC_TLS_KEY:"));
        assert!(problem(&GrpcTlsArgs { key: Some(key.clone()), ..Default::default() }).starts_with("GRPC_TLS_CERT:"));
        let missing =
            GrpcTlsArgs { cert: Some(cert.clone()), key: Some(dir.path().join("nope.pem")), ..Default::default() };
        assert!(problem(&missing).starts_with("GRPC_TLS_KEY: cannot read"));
        let swapped = GrpcTlsArgs { cert: Some(key.clone()), key: Some(cert.clone()), ..Default::default() };
        assert!(problem(&swapped).contains("GRPC_TLS_CERT:") && problem(&swapped).contains("no PEM CERTIFICATE"));
        let mutual_without_ca =
            GrpcTlsArgs { cert: Some(cert), key: Some(key), require_client_cert: true, ..Default::default() };
        assert!(problem(&mutual_without_ca).contains("needs GRPC_TLS_CA"));
        let mutual_without_cert = GrpcTlsArgs { require_client_cert: true, ..Default::default() };
        assert!(problem(&mutual_without_cert).contains("needs GRPC_TLS_CERT"));
    }

    #[test]
    fn an_https_peer_needs_a_ca() {
        let tls = GrpcTls::default();
        assert!(tls.check_peer_url("USER_SERVICE_URL", "http://users:50051", "users").is_ok());
        let error = tls.check_peer_url("USER_SERVICE_URL", "https://users:50051", "users").expect_err("refused");
        assert!(error.to_string().starts_with("USER_SERVICE_URL:"));
    }

    #[test]
    fn a_ca_file_without_a_certificate_that_parses_is_refused_at_start() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = write(dir.path(), "ca.pem", CERT);
        let error = GrpcTlsArgs { ca: Some(ca), ..Default::default() }.load().expect_err("not a certificate");
        assert!(error.to_string().starts_with("GRPC_TLS_CA:"), "{error}");
        assert!(error.to_string().contains("no certificate that parses"), "{error}");
    }
}
