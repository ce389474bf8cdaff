//! `docker-compose.yml` as data: each service's image, environment, published ports, health
//! check and dependencies, with Compose's `${VAR:-default}` interpolation.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::Value;

/// The parts of a Compose file the checks read.
#[derive(Debug, Deserialize)]
pub struct ComposeFile {
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Value>,
}

/// One service.
#[derive(Debug, Deserialize)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    #[serde(default)]
    environment: BTreeMap<String, Value>,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    pub healthcheck: Option<HealthCheck>,
    #[serde(default)]
    pub depends_on: BTreeMap<String, Dependency>,
    #[serde(default)]
    pub profiles: Vec<String>,
}

/// How a service's image is built.
#[derive(Debug, Deserialize)]
pub struct Build {
    pub context: String,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
}

/// The health check command (`["CMD", program, args...]`).
#[derive(Debug, Deserialize)]
pub struct HealthCheck {
    pub test: Vec<String>,
}

/// One `depends_on` entry.
#[derive(Debug, Deserialize)]
pub struct Dependency {
    pub condition: String,
    #[serde(default = "required_by_default")]
    pub required: bool,
}

fn required_by_default() -> bool {
    true
}

impl ComposeFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    /// Parses a Compose file (YAML anchors and aliases included).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let value: Value = serde_norway::from_str(text).context("docker-compose.yml is not valid YAML")?;
        serde_json::from_value(value).context("docker-compose.yml does not have the expected shape")
    }

    /// The services that run one of our binaries (built with a `SERVICE` argument), by name.
    pub fn binaries(&self) -> impl Iterator<Item = (&str, &Service, &str)> {
        self.services.iter().filter_map(|(name, service)| {
            let binary = service.build.as_ref()?.args.get("SERVICE")?;
            Some((name.as_str(), service, binary.as_str()))
        })
    }
}

impl Service {
    /// The environment as the container sees it, `${...}` resolved from `variables`.
    pub fn environment(&self, variables: &HashMap<String, String>) -> anyhow::Result<BTreeMap<String, String>> {
        self.environment
            .iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                let resolved = interpolate(&text, variables).with_context(|| format!("environment {name}"))?;
                Ok((name.clone(), resolved))
            })
            .collect()
    }
}

/// Resolves `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}` and `$$` as
/// Compose does, with `variables` standing in for the shell and the env file.
pub fn interpolate(text: &str, variables: &HashMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').with_context(|| format!("unclosed ${{ in {text:?}"))?;
            out.push_str(&substitute(&body[..end], variables)?);
            rest = &body[end + 1..];
        } else {
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            out.push_str(variables.get(&after[..len]).map_or("", String::as_str));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute(expression: &str, variables: &HashMap<String, String>) -> anyhow::Result<String> {
    let set = |name: &str| variables.get(name).cloned();
    let non_empty = |name: &str| set(name).filter(|value| !value.is_empty());
    if let Some((name, default)) = expression.split_once(":-") {
        return Ok(non_empty(name).unwrap_or_else(|| default.to_owned()));
    }
    if let Some((name, message)) = expression.split_once(":?") {
        return non_empty(name).with_context(|| format!("{name} is required: {message}"));
    }
    if let Some((name, default)) = expression.split_once('-') {
        return Ok(set(name).unwrap_or_else(|| default.to_owned()));
    }
    if expression.contains(['?', '+', ':']) {
        bail!("unsupported interpolation ${{{expression}}}");
    }
    Ok(set(expression).unwrap_or_default())
}

/// Reads an env file (`--env-file`): `NAME=value` lines, `#` comments.
pub fn env_file(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once('=').with_context(|| format!("not NAME=value: {line}"))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_follows_compose() {
        let vars: HashMap<String, String> =
            [("SET", "value"), ("EMPTY", "")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let resolve = |text: &str| interpolate(text, &vars).expect("valid");
        assert_eq!(resolve("${SET:-default}"), "value");
        assert_eq!(resolve("${EMPTY:-default}"), "default");
        assert_eq!(resolve("${EMPTY-default}"), "");
        assert_eq!(resolve("${UNSET-default}"), "default");
        assert_eq!(resolve("a-${SET}-$SET-$$"), "a-value-value-$");
        assert!(interpolate("${UNSET:?needed}", &vars).is_err());
        assert!(interpolate("${UNSET", &vars).is_err());
    }

    #[test]
    fn services_with_a_build_argument_run_our_binaries() {
        let file = ComposeFile::parse(
            "services:\n  a:\n    image: x:1\n    build: { context: ., args: { SERVICE: user-service } }\n    \
             environment: { N: 1, E: null, S: \"${X:-d}\" }\n  b:\n    image: y:1\n",
        )
        .expect("parses");
        let binaries: Vec<_> = file.binaries().map(|(name, _, binary)| (name, binary)).collect();
        assert_eq!(binaries, vec![("a", "user-service")]);
        let env = file.services["a"].environment(&HashMap::new()).expect("resolves");
        assert_eq!(env["N"], "1");
        assert_eq!(env["E"], "");
        assert_eq!(env["S"], "d");
    }
}
