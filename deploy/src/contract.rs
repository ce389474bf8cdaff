//! What a binary reads, and the addresses inside a setting's value.
//!
//! Every setting is a clap flag with an env fallback, and clap lists each one in `--help` as
//! `[env: NAME]`, so the binary itself says which names it reads. The exceptions are read by
//! the telemetry set-up directly: `RUST_LOG` and OpenTelemetry's standard names.

use std::{collections::BTreeSet, path::Path, process::Command};

use anyhow::{Context as _, bail};

/// Read by every binary's logging set-up rather than by its flags.
pub const LOG_FILTER_ENV: &str = "RUST_LOG";

/// Read by every binary's trace export set-up (the OpenTelemetry standard names).
pub const OPENTELEMETRY_ENVS: [&str; 5] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

/// The env names `binary` reads.
pub fn env_names(binary: &Path) -> anyhow::Result<BTreeSet<String>> {
    let output = Command::new(binary)
        .arg("--help")
        .env_clear()
        .output()
        .with_context(|| format!("running {} --help", binary.display()))?;
    if !output.status.success() {
        bail!("{} --help failed: {}", binary.display(), String::from_utf8_lossy(&output.stderr));
    }
    let help = String::from_utf8_lossy(&output.stdout);
    let mut names: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect())
        .collect();
    names.insert(LOG_FILTER_ENV.to_owned());
    names.extend(OPENTELEMETRY_ENVS.iter().map(|name| (*name).to_owned()));
    Ok(names)
}

/// A `host:port` inside a setting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The addresses a setting names: `scheme://[user:password@]host:port[/path]` URLs and
/// comma-separated `host:port` lists (`KAFKA_BROKERS`). Anything else names none.
pub fn addresses(value: &str) -> Vec<Address> {
    value.split(',').filter_map(|part| address(part.trim())).collect()
}

fn address(part: &str) -> Option<Address> {
    let authority = match part.split_once("://") {
        Some((_, rest)) => rest.split('/').next()?,
        None => part,
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
    let (host, port) = host_port.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty() && !host.contains(['/', ' '])).then(|| Address { host: host.to_owned(), port })
}

/// `value` with the address `from` replaced by `to` (`host:port`).
pub fn replace_address(value: &str, from: &Address, to: &str) -> String {
    if !addresses(value).contains(from) {
        return value.to_owned();
    }
    value
        .split(',')
        .map(|part| {
            let trimmed = part.trim();
            match address(trimmed) {
                Some(found) if &found == from => trimmed.replacen(&from.to_string(), to, 1),
                _ => trimmed.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The database a `postgres://…/<database>` URL names.
pub fn database_name(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    Some(path.split('?').next().unwrap_or(path)).filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, port: u16) -> Address {
        Address { host: host.to_owned(), port }
    }

    #[test]
    fn urls_and_broker_lists_name_their_addresses() {
        assert_eq!(addresses("http://user-service:50051"), vec![at("user-service", 50051)]);
        assert_eq!(addresses("postgres://app:secret@postgres:5432/users"), vec![at("postgres", 5432)]);
        assert_eq!(addresses("kafka-0:9092, kafka-1:9092"), vec![at("kafka-0", 9092), at("kafka-1", 9092)]);
        assert_eq!(addresses("0.0.0.0:3000"), vec![at("0.0.0.0", 3000)]);
        assert!(addresses("json").is_empty());
        assert!(addresses("admin@example.com").is_empty());
    }

    #[test]
    fn an_address_is_replaced_where_it_appears() {
        let replaced = replace_address("http://user-service:50051", &at("user-service", 50051), "127.0.0.1:4000");
        assert_eq!(replaced, "http://127.0.0.1:4000");
        assert_eq!(replace_address("kafka:9092", &at("kafka", 9092), "127.0.0.1:1"), "127.0.0.1:1");
        assert_eq!(replace_address("other:1", &at("kafka", 9092), "127.0.0.1:1"), "other:1");
    }

    #[test]
    fn database_names_come_from_the_path() {
        assert_eq!(database_name("postgres://app:pw@postgres:5432/users"), Some("users"));
        assert_eq!(database_name("postgres://postgres:5432/orders?sslmode=disable"), Some("orders"));
        assert_eq!(database_name("postgres://postgres:5432"), None);
    }
}
