//! `worker.config.json`: how a language worker is started (the layout of the Azure host's and
//! Core Tools' `workers/<language>/` directories).

use std::time::Duration;

use serde_json::Value;

use crate::error::Result;
use crate::json::Obj;

/// The file describing a language worker, in its worker directory.
pub const WORKER_CONFIG_JSON: &str = "worker.config.json";

/// A parsed `worker.config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    pub language: String,
    pub extensions: Vec<String>,
    pub default_executable_path: String,
    pub default_worker_path: Option<String>,
    pub arguments: Vec<String>,
    pub worker_arguments: Vec<String>,
    pub default_runtime_version: Option<String>,
    /// The worker reads the app itself and answers `FunctionsMetadataRequest`.
    pub worker_indexing: bool,
    pub is_disabled: bool,
    pub process: ProcessOptions,
}

/// `processOptions`, with the Azure host's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessOptions {
    pub process_count: Option<u32>,
    pub max_process_count: u32,
    pub startup_timeout: Duration,
    pub initialization_timeout: Duration,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            process_count: None,
            max_process_count: 10,
            startup_timeout: Duration::from_secs(60),
            initialization_timeout: Duration::from_secs(10),
        }
    }
}

fn timespan(o: Obj<'_>, key: &str) -> Result<Option<Duration>> {
    match o.str(key)? {
        None => Ok(None),
        Some(text) => match crate::timespan::parse(text) {
            Ok(t) if !t.negative => Ok(Some(t.duration)),
            Ok(_) => Err(o.error(
                key,
                format!("expected a positive TimeSpan, found \"{text}\""),
            )),
            Err(e) => Err(o.error(key, e)),
        },
    }
}

impl WorkerConfig {
    /// Reads a `worker.config.json` document (`file` names it in errors).
    pub fn parse(file: &str, doc: &Value) -> Result<WorkerConfig> {
        let root = Obj::root(file, doc)?;
        let desc = root.obj("description")?.ok_or_else(|| {
            root.error(
                "description",
                "expected an object describing the worker, found nothing",
            )
        })?;
        let d = desc.view();
        let language = d
            .str("language")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| d.error("language", "expected the worker's language, found nothing"))?
            .to_string();
        let default_executable_path = d
            .str("defaultExecutablePath")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                d.error(
                    "defaultExecutablePath",
                    "expected the program that runs the worker, found nothing",
                )
            })?
            .to_string();
        let mut process = ProcessOptions::default();
        if let Some(p) = root.obj("processOptions")? {
            let p = p.view();
            if let Some(n) = p.int("processCount")? {
                process.process_count = Some(
                    u32::try_from(n)
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| p.error("processCount", "expected at least 1"))?,
                );
            }
            if let Some(n) = p.int("maxProcessCount")? {
                process.max_process_count = u32::try_from(n)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| p.error("maxProcessCount", "expected at least 1"))?;
            }
            if let Some(t) = timespan(p, "processStartupTimeout")? {
                process.startup_timeout = t;
            }
            if let Some(t) = timespan(p, "initializationTimeout")? {
                process.initialization_timeout = t;
            }
        }
        Ok(WorkerConfig {
            language,
            extensions: d.strings("extensions")?.unwrap_or_default(),
            default_executable_path,
            default_worker_path: d.non_empty("defaultWorkerPath")?,
            arguments: d.strings("arguments")?.unwrap_or_default(),
            worker_arguments: d.strings("workerArguments")?.unwrap_or_default(),
            default_runtime_version: d.non_empty("defaultRuntimeVersion")?,
            worker_indexing: d.bool("workerIndexing")?.unwrap_or(false),
            is_disabled: d.bool("isDisabled")?.unwrap_or(false),
            process,
        })
    }
}

/// Replaces the placeholders of a worker path: `{os}`, `{architecture}` and
/// `%FUNCTIONS_WORKER_RUNTIME_VERSION%`.
pub fn expand_worker_path(path: &str, os: &str, architecture: &str, version: &str) -> String {
    path.replace("{os}", os)
        .replace("{architecture}", architecture)
        .replace("%FUNCTIONS_WORKER_RUNTIME_VERSION%", version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_worker_config() {
        let doc = json!({
            "description": {
                "language": "python",
                "defaultRuntimeVersion": "3.11",
                "supportedOperatingSystems": ["LINUX", "OSX", "WINDOWS"],
                "extensions": [".py"],
                "defaultExecutablePath": "python",
                "defaultWorkerPath": "%FUNCTIONS_WORKER_RUNTIME_VERSION%/{os}/{architecture}/worker.py",
                "workerIndexing": "true",
                "arguments": ["-X no_debug_ranges"]
            },
            "processOptions": { "initializationTimeout": "00:02:00" }
        });
        let c = WorkerConfig::parse("python/worker.config.json", &doc).unwrap();
        assert_eq!(c.language, "python");
        assert!(c.worker_indexing);
        assert_eq!(c.process.initialization_timeout, Duration::from_secs(120));
        assert_eq!(c.process.startup_timeout, Duration::from_secs(60));
        assert_eq!(
            expand_worker_path(
                c.default_worker_path.as_deref().unwrap(),
                "LINUX",
                "X64",
                "3.11"
            ),
            "3.11/LINUX/X64/worker.py"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = WorkerConfig::parse(
            "node/worker.config.json",
            &json!({"description": {"language": "node"}}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "node/worker.config.json: $.description.defaultExecutablePath: expected the program that runs the worker, found nothing"
        );
        let e = WorkerConfig::parse("x", &json!({"description": {"language": "node", "defaultExecutablePath": "node"}, "processOptions": {"processCount": 0}}))
            .unwrap_err();
        assert_eq!(e.path, "$.processOptions.processCount");
    }
}
