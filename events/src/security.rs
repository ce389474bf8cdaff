//! How Kafka clients authenticate and encrypt: the broker's security protocol, a SASL mechanism
//! with its credentials, and the CA (and, for brokers that ask, a client certificate) for TLS.
//!
//! Plaintext by default, as the embedded broker speaks. The settings map one to one onto
//! librdkafka's (`security.protocol`, `sasl.mechanisms`, `ssl.ca.location`, ...), and a
//! combination that cannot work (SASL without credentials, a CA file with plaintext) stops the
//! service at start, naming the setting.

use std::path::{Path, PathBuf};

use rdkafka::ClientConfig;
use service_runtime::{config::Secret, startup::StartupError};

/// `KAFKA_SECURITY_PROTOCOL`, as Kafka names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityProtocol {
    #[default]
    #[value(name = "plaintext")]
    Plaintext,
    #[value(name = "ssl")]
    Ssl,
    #[value(name = "sasl_plaintext")]
    SaslPlaintext,
    #[value(name = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// `KAFKA_SASL_MECHANISM`, as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN")]
    Plain,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The security settings of every Kafka client of a process.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaSecurityArgs {
    /// `plaintext` (the embedded broker), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[arg(long, env = "KAFKA_SECURITY_PROTOCOL", value_enum, ignore_case = true, default_value_t = SecurityProtocol::Plaintext)]
    pub kafka_security_protocol: SecurityProtocol,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; needed with the `sasl_*` protocols.
    #[arg(long, env = "KAFKA_SASL_MECHANISM", value_enum, ignore_case = true)]
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    /// The SASL user name.
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// The SASL password.
    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<Secret>,
    /// The PEM CA certificate(s) the broker's certificate is checked against (`ssl`,
    /// `sasl_ssl`). Unset: the system's CA store.
    #[arg(long, env = "KAFKA_SSL_CA_LOCATION")]
    pub kafka_ssl_ca_location: Option<PathBuf>,
    /// A PEM client certificate, for brokers that authenticate clients by certificate.
    #[arg(long, env = "KAFKA_SSL_CERTIFICATE_LOCATION")]
    pub kafka_ssl_certificate_location: Option<PathBuf>,
    /// The PEM private key of KAFKA_SSL_CERTIFICATE_LOCATION.
    #[arg(long, env = "KAFKA_SSL_KEY_LOCATION")]
    pub kafka_ssl_key_location: Option<PathBuf>,
}

impl KafkaSecurityArgs {
    /// Refuses a combination that cannot work, naming the setting to fix.
    pub fn check(&self) -> Result<(), StartupError> {
        let protocol = self.kafka_security_protocol;
        let sasl = [
            ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism.is_some()),
            ("KAFKA_SASL_USERNAME", self.kafka_sasl_username.as_deref().is_some_and(|name| !name.is_empty())),
            ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password.as_ref().is_some_and(|word| !word.expose().is_empty())),
        ];
        for (setting, present) in sasl {
            if protocol.uses_sasl() && !present {
                return Err(StartupError::config(
                    setting,
                    format!("must be set when KAFKA_SECURITY_PROTOCOL is {}", protocol.as_str()),
                ));
            }
            if !protocol.uses_sasl() && present {
                return Err(StartupError::config(
                    setting,
                    format!("needs KAFKA_SECURITY_PROTOCOL sasl_plaintext or sasl_ssl, not {}", protocol.as_str()),
                ));
            }
        }
        let files = [
            ("KAFKA_SSL_CA_LOCATION", &self.kafka_ssl_ca_location),
            ("KAFKA_SSL_CERTIFICATE_LOCATION", &self.kafka_ssl_certificate_location),
            ("KAFKA_SSL_KEY_LOCATION", &self.kafka_ssl_key_location),
        ];
        for (setting, path) in files {
            let Some(path) = path else { continue };
            if !protocol.uses_tls() {
                return Err(StartupError::config(
                    setting,
                    format!("needs KAFKA_SECURITY_PROTOCOL ssl or sasl_ssl, not {}", protocol.as_str()),
                ));
            }
            StartupError::read_setting_file(setting, path)?;
        }
        match (&self.kafka_ssl_certificate_location, &self.kafka_ssl_key_location) {
            (Some(_), None) => Err(StartupError::config(
                "KAFKA_SSL_KEY_LOCATION",
                "must be set when KAFKA_SSL_CERTIFICATE_LOCATION is",
            )),
            (None, Some(_)) => Err(StartupError::config(
                "KAFKA_SSL_CERTIFICATE_LOCATION",
                "must be set when KAFKA_SSL_KEY_LOCATION is",
            )),
            _ => Ok(()),
        }
    }

    /// Writes the settings into a client's configuration.
    pub fn apply(&self, config: &mut ClientConfig) {
        let protocol = self.kafka_security_protocol;
        config.set("security.protocol", protocol.as_str());
        if let Some(mechanism) = self.kafka_sasl_mechanism {
            config.set("sasl.mechanisms", mechanism.as_str());
        }
        if let Some(username) = &self.kafka_sasl_username {
            config.set("sasl.username", username);
        }
        if let Some(password) = &self.kafka_sasl_password {
            config.set("sasl.password", password.expose());
        }
        if protocol.uses_tls() {
            // Without a CA file, librdkafka looks for the system's CA store itself ("probe"):
            // its OpenSSL is built into it and does not know where this system keeps them.
            let ca = self.kafka_ssl_ca_location.as_deref().map_or_else(|| "probe".to_owned(), path_text);
            config.set("ssl.ca.location", ca);
        }
        if let Some(certificate) = &self.kafka_ssl_certificate_location {
            config.set("ssl.certificate.location", path_text(certificate));
        }
        if let Some(key) = &self.kafka_ssl_key_location {
            config.set("ssl.key.location", path_text(key));
        }
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        security: KafkaSecurityArgs,
    }

    fn parse(args: &[&str]) -> KafkaSecurityArgs {
        Flags::try_parse_from(std::iter::once("test").chain(args.iter().copied())).expect("parses").security
    }

    fn problem(args: &[&str]) -> String {
        parse(args).check().expect_err("refused").to_string()
    }

    #[test]
    fn plaintext_by_default_and_names_as_kafka_writes_them() {
        assert_eq!(parse(&[]).kafka_security_protocol, SecurityProtocol::Plaintext);
        let args = parse(&[
            "--kafka-security-protocol",
            "SASL_SSL",
            "--kafka-sasl-mechanism",
            "scram-sha-512",
            "--kafka-sasl-username",
            "orders",
            "--kafka-sasl-password",
            "hunter2",
        ]);
        assert_eq!(args.kafka_security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(args.kafka_sasl_mechanism, Some(SaslMechanism::ScramSha512));
        assert!(args.check().is_ok());
        assert!(!format!("{args:?}").contains("hunter2"), "the password is never printed");
    }

    #[test]
    fn combinations_that_cannot_work_name_the_setting() {
        assert!(
            problem(&["--kafka-security-protocol", "sasl_plaintext"]).starts_with("KAFKA_SASL_MECHANISM: must be set")
        );
        assert!(
            problem(&["--kafka-security-protocol", "sasl_ssl", "--kafka-sasl-mechanism", "PLAIN"])
                .starts_with("KAFKA_SASL_USERNAME: must be set")
        );
        assert!(problem(&["--kafka-sasl-username", "orders"]).starts_with("KAFKA_SASL_USERNAME: needs"));
        assert!(problem(&["--kafka-ssl-ca-location", "/etc/hosts"]).starts_with("KAFKA_SSL_CA_LOCATION: needs"));
        assert!(
            problem(&["--kafka-security-protocol", "ssl", "--kafka-ssl-ca-location", "/nonexistent/ca.pem"])
                .starts_with("KAFKA_SSL_CA_LOCATION: cannot read")
        );
        assert!(
            problem(&["--kafka-security-protocol", "ssl", "--kafka-ssl-certificate-location", "/etc/hosts"])
                .starts_with("KAFKA_SSL_KEY_LOCATION: must be set")
        );
    }

    /// The settings reach librdkafka, and this build of it can use them: SCRAM and TLS need the
    /// OpenSSL it is built with, and it refuses `ssl` or `SCRAM-*` values without one.
    #[test]
    fn librdkafka_takes_every_setting() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "").expect("write");
        let ca_text = ca.display().to_string();
        let args = parse(&[
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-256",
            "--kafka-sasl-username",
            "orders",
            "--kafka-sasl-password",
            "hunter2",
            "--kafka-ssl-ca-location",
            &ca_text,
        ]);
        let mut config = ClientConfig::new();
        args.apply(&mut config);
        let native = config.create_native_config().expect("librdkafka accepts every value");
        for (key, value) in [
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "SCRAM-SHA-256"),
            ("sasl.username", "orders"),
            ("ssl.ca.location", ca_text.as_str()),
        ] {
            assert_eq!(native.get(key).expect(key), value, "{key}");
        }
    }
}
