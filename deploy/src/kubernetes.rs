//! The Kubernetes manifests as rendered by `kubectl kustomize k8s/`, as JSON values, with the
//! lookups the checks need: objects by kind and name, a container's resolved environment.

use std::{collections::BTreeMap, path::Path, process::Command};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::Value;

/// Every rendered object, in kustomize's order.
#[derive(Debug)]
pub struct Manifests {
    pub objects: Vec<Value>,
}

impl Manifests {
    /// Renders `dir` with `kubectl kustomize` and returns the YAML text and its objects.
    pub fn render(dir: &Path) -> anyhow::Result<(String, Self)> {
        let output = Command::new("kubectl")
            .arg("kustomize")
            .arg(dir)
            .output()
            .context("running kubectl kustomize (kubectl is installed by the test set-up)")?;
        if !output.status.success() {
            bail!("kubectl kustomize {} failed: {}", dir.display(), String::from_utf8_lossy(&output.stderr));
        }
        let yaml = String::from_utf8(output.stdout).context("kustomize output is not UTF-8")?;
        let manifests = Self::parse(&yaml)?;
        Ok((yaml, manifests))
    }

    /// Parses a multi-document YAML stream.
    pub fn parse(yaml: &str) -> anyhow::Result<Self> {
        let objects = serde_norway::Deserializer::from_str(yaml)
            .map(Value::deserialize)
            .filter(|object| !matches!(object, Ok(Value::Null)))
            .collect::<Result<Vec<_>, _>>()
            .context("the manifests are not valid YAML")?;
        Ok(Self { objects })
    }

    /// The objects of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |object| object["kind"] == kind)
    }

    /// The object of `kind` called `name`.
    pub fn get(&self, kind: &str, name: &str) -> anyhow::Result<&Value> {
        self.objects
            .iter()
            .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
            .with_context(|| format!("no {kind} {name}"))
    }

    /// The environment `container` runs with: literal values and values taken from the
    /// rendered ConfigMaps and Secrets (decoded).
    pub fn container_env(&self, container: &Value) -> anyhow::Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        for variable in container["env"].as_array().into_iter().flatten() {
            let name = text(&variable["name"])?;
            let value = if let Some(value) = variable["value"].as_str() {
                value.to_owned()
            } else if let Some(source) = variable["valueFrom"]["configMapKeyRef"].as_object() {
                let map = self.get("ConfigMap", text(&source["name"])?)?;
                let key = text(&source["key"])?;
                text(&map["data"][key]).with_context(|| format!("{name}: ConfigMap has no key {key}"))?.to_owned()
            } else if let Some(source) = variable["valueFrom"]["secretKeyRef"].as_object() {
                let secret = self.get("Secret", text(&source["name"])?)?;
                let key = text(&source["key"])?;
                let encoded = text(&secret["data"][key]).with_context(|| format!("{name}: Secret has no key {key}"))?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(encoded)?;
                String::from_utf8(bytes).with_context(|| format!("{name}: not UTF-8"))?
            } else {
                // Field references (the pod's name) are filled in by the kubelet.
                continue;
            };
            env.insert(name.to_owned(), value);
        }
        Ok(env)
    }
}

/// The containers of a Deployment's or StatefulSet's pod template.
pub fn containers(workload: &Value) -> impl Iterator<Item = &Value> {
    workload["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten()
}

/// A string field, or an error naming what is missing.
pub fn text(value: &Value) -> anyhow::Result<&str> {
    value.as_str().with_context(|| format!("expected a string, found {value}"))
}

/// The name in an object's metadata.
pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r"
kind: ConfigMap
metadata: {name: config-abc}
data: {A: from-map}
---
kind: Secret
metadata: {name: secret-abc}
data: {B: c2VjcmV0}
---
kind: Deployment
metadata: {name: app}
spec:
  template:
    spec:
      containers:
        - name: app
          env:
            - {name: L, value: literal}
            - {name: A, valueFrom: {configMapKeyRef: {name: config-abc, key: A}}}
            - {name: B, valueFrom: {secretKeyRef: {name: secret-abc, key: B}}}
";

    #[test]
    fn a_containers_environment_is_resolved_from_maps_and_secrets() {
        let manifests = Manifests::parse(RENDERED).expect("parses");
        assert_eq!(manifests.objects.len(), 3);
        let deployment = manifests.get("Deployment", "app").expect("deployment");
        let container = containers(deployment).next().expect("container");
        let env = manifests.container_env(container).expect("env");
        assert_eq!(env["L"], "literal");
        assert_eq!(env["A"], "from-map");
        assert_eq!(env["B"], "secret");
    }
}
