//! The deployment recipes hold together: every Kubernetes manifest under `deploy/kubernetes`
//! deserialises into the Kubernetes API type its `kind` names with no field left unread,
//! selectors match their pods' labels, Services reach ports the pods open, and every `stratus`
//! flag the manifests and the Dockerfile pass is one the binary accepts. The Dockerfile is
//! checked statically (no container engine is needed): its stages, what it copies from where,
//! the package it builds, the user and the ports of the image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, PodTemplateSpec, Secret, Service};
use serde::Deserialize as _;
use serde::de::DeserializeOwned;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `doc` as a `T`, failing on any field the type does not have (a typo would otherwise be
/// dropped without a word).
fn typed<T: DeserializeOwned>(file: &str, doc: serde_yaml::Value) -> T {
    let mut unread = Vec::new();
    let value: T = serde_ignored::deserialize(doc, |path| unread.push(path.to_string()))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(
        unread.is_empty(),
        "{file}: fields the API does not have: {unread:?}"
    );
    value
}

/// What the workloads' pods run: (file, labels, template).
type Pods = Vec<(String, BTreeMap<String, String>, PodTemplateSpec)>;

/// The help text of `stratus <command>`.
fn help(command: &str) -> String {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test asks the binary its flags"
    )]
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args([command, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Checks that every `--flag` in `args` (after the command) is one `stratus <command>` takes.
fn check_flags(file: &str, args: &[String]) {
    let Some(command) = args.first() else {
        return;
    };
    let text = help(command);
    for a in &args[1..] {
        if let Some(flag) = a.strip_prefix("--") {
            let name = flag.split('=').next().unwrap();
            assert!(
                text.contains(&format!("--{name}")),
                "{file}: `stratus {command}` has no flag --{name}"
            );
        }
    }
}

#[test]
fn the_kubernetes_manifests_are_valid_api_objects_that_fit_together() {
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let mut kinds = Vec::new();
    let mut pods: Pods = Vec::new();
    let mut services = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let doc = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
            if doc.is_null() {
                continue;
            }
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: no kind"))
                .to_string();
            match kind.as_str() {
                "Namespace" => drop(typed::<Namespace>(&file, doc)),
                "Secret" => drop(typed::<Secret>(&file, doc)),
                "Service" => services.push((file.clone(), typed::<Service>(&file, doc))),
                "Deployment" => {
                    let d: Deployment = typed(&file, doc);
                    let spec = d.spec.unwrap();
                    pods.push((
                        file.clone(),
                        spec.selector.match_labels.unwrap_or_default(),
                        spec.template,
                    ));
                }
                "DaemonSet" => {
                    let d: DaemonSet = typed(&file, doc);
                    let spec = d.spec.unwrap();
                    pods.push((
                        file.clone(),
                        spec.selector.match_labels.unwrap_or_default(),
                        spec.template,
                    ));
                }
                "StatefulSet" => {
                    let d: StatefulSet = typed(&file, doc);
                    let spec = d.spec.unwrap();
                    pods.push((
                        file.clone(),
                        spec.selector.match_labels.unwrap_or_default(),
                        spec.template,
                    ));
                }
                other => panic!("{file}: a {other} is not checked here"),
            }
            kinds.push(kind);
        }
    }
    for want in ["Namespace", "Deployment", "DaemonSet", "Service"] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }
    // Each workload selects its own pods; each stratus container's flags exist.
    for (file, selector, template) in &pods {
        let labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        assert!(!selector.is_empty(), "{file}: an empty selector");
        for (k, v) in selector {
            assert_eq!(
                labels.get(k),
                Some(v),
                "{file}: the selector's {k} is not on the pods"
            );
        }
        let spec = template.spec.as_ref().unwrap();
        for c in &spec.containers {
            if c.image.as_deref().is_some_and(|i| i.contains("stratus")) {
                check_flags(file, c.args.as_deref().unwrap_or_default());
            }
        }
    }
    // Each Service selects pods of a workload, on ports they open.
    for (file, svc) in &services {
        let spec = svc.spec.as_ref().unwrap();
        let selector = spec.selector.clone().unwrap_or_default();
        let (_, _, template) = pods
            .iter()
            .find(|(_, _, t)| {
                let labels = t
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{file}: service {:?} selects no workload's pods",
                    svc.metadata.name
                )
            });
        let open: Vec<(i32, Option<String>)> = template
            .spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .flat_map(|c| c.ports.clone().unwrap_or_default())
            .map(|p| (p.container_port, p.name))
            .collect();
        for port in spec.ports.as_deref().unwrap_or_default() {
            use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
            let reached = match &port.target_port {
                None => open.iter().any(|(p, _)| *p == port.port),
                Some(IntOrString::Int(n)) => open.iter().any(|(p, _)| p == n),
                Some(IntOrString::String(name)) => {
                    open.iter().any(|(_, n)| n.as_deref() == Some(name))
                }
            };
            assert!(
                reached,
                "{file}: service port {} reaches no container port",
                port.port
            );
        }
    }
}

#[test]
fn the_dockerfile_builds_the_binary_and_runs_it_unprivileged_by_default() {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    // Instructions, continuation lines joined, comments dropped.
    let mut lines: Vec<String> = Vec::new();
    let mut open = String::new();
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with('#') || (t.is_empty() && open.is_empty()) {
            continue;
        }
        if let Some(part) = t.strip_suffix('\\') {
            open.push_str(part);
            open.push(' ');
            continue;
        }
        open.push_str(t);
        lines.push(std::mem::take(&mut open));
    }
    let mut stages: Vec<String> = Vec::new();
    let mut last_stage_lines: Vec<&String> = Vec::new();
    for l in &lines {
        let (op, rest) = l.split_once(' ').unwrap_or((l.as_str(), ""));
        match op.to_ascii_uppercase().as_str() {
            "FROM" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let Some(at) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
                    stages.push(words[at + 1].to_string());
                }
                last_stage_lines.clear();
            }
            "COPY" => {
                if let Some(from) = rest
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("--from="))
                {
                    assert!(
                        stages.iter().any(|s| s == from)
                            || from.contains(':')
                            || from.contains('/'),
                        "COPY --from={from}: no such stage before it"
                    );
                }
            }
            "RUN" | "ENV" | "WORKDIR" | "USER" | "EXPOSE" | "ENTRYPOINT" | "CMD" | "ARG"
            | "LABEL" => {}
            other => panic!("unexpected instruction {other}"),
        }
        last_stage_lines.push(l);
    }
    assert!(stages.len() >= 2, "a multi-stage build: {stages:?}");
    // It builds the binary's package.
    let cli = std::fs::read_to_string(repo().join("crates/cli/Cargo.toml")).unwrap();
    let package = cli
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    assert!(
        text.contains(&format!("-p {package}")),
        "the build does not build {package}"
    );
    // The image runs as a user other than root, opens the management role's ports, and its
    // default command takes only flags the binary has.
    let user = last_stage_lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the image sets a user");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "runs as {user}"
    );
    let expose = last_stage_lines
        .iter()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    for port in ["7080", "8080", "7443"] {
        assert!(
            expose.split_whitespace().any(|p| p == port),
            "{port} not exposed"
        );
    }
    let cmd = last_stage_lines
        .iter()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("CMD");
    let args: Vec<String> = serde_json::from_str(cmd).expect("CMD in exec form");
    check_flags("deploy/Dockerfile", &args);
    let entry = last_stage_lines
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(entry).expect("ENTRYPOINT in exec form");
    assert!(
        entry.last().is_some_and(|e| e.ends_with("/stratus")),
        "{entry:?}"
    );
}
