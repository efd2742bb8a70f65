//! Operator configuration: a TOML file, then `STRATUS_*` environment variables, then
//! command-line flags, each overriding the one before. Unknown file keys are rejected;
//! secrets come from a value, an environment variable, or a `*_FILE`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The configuration file's content (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub encryption_key: Option<String>,
    pub encryption_key_file: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub max_request_body_size: Option<u64>,
    pub workers_dir: Option<PathBuf>,
    pub timer_lease_seconds: Option<u64>,
    pub queue_listen: Option<String>,
    pub queue_message_lease_seconds: Option<u64>,
}

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

/// Flags shared by every command that opens the store.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConfigFlags {
    /// Configuration file (TOML). Also STRATUS_CONFIG.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where Stratus keeps its state. Also STRATUS_DATA_DIR.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite:PATH` or `postgres://...`. Also STRATUS_DATABASE_URL.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the base64 key that encrypts secrets at rest. Also STRATUS_ENCRYPTION_KEY(_FILE).
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// Log format on stderr. Also STRATUS_LOG_FORMAT.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// Where the encryption key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Value(String),
    File(PathBuf),
    /// Generated on first use and kept in the data directory.
    Default(PathBuf),
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub encryption_key: KeySource,
    pub log_format: LogFormat,
    pub max_request_body_size: Option<u64>,
    /// Directory of language workers (`<language>/worker.config.json`).
    pub workers_dir: Option<PathBuf>,
    /// How long a timer listener's lease lasts without renewal (default 60 s).
    pub timer_lease: std::time::Duration,
    /// Where the built-in queue service listens (`127.0.0.1:10001`, development storage's
    /// address), or None when it is off.
    pub queue_listen: Option<String>,
    /// How long a queue message being processed stays invisible (renewed meanwhile).
    pub queue_message_lease: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{name}={value} is not valid: {problem}")]
    Env {
        name: &'static str,
        value: String,
        problem: String,
    },
    #[error("no data directory: set STRATUS_DATA_DIR or HOME")]
    NoDataDir,
}

/// Reads environment variables; a trait so tests never touch the real environment.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

pub const ENV_CONFIG: &str = "STRATUS_CONFIG";
pub const ENV_DATA_DIR: &str = "STRATUS_DATA_DIR";
pub const ENV_DATABASE_URL: &str = "STRATUS_DATABASE_URL";
pub const ENV_ENCRYPTION_KEY: &str = "STRATUS_ENCRYPTION_KEY";
pub const ENV_ENCRYPTION_KEY_FILE: &str = "STRATUS_ENCRYPTION_KEY_FILE";
pub const ENV_LOG_FORMAT: &str = "STRATUS_LOG_FORMAT";
pub const ENV_MAX_REQUEST_BODY_SIZE: &str = "STRATUS_MAX_REQUEST_BODY_SIZE";
pub const ENV_WORKERS_DIR: &str = "STRATUS_WORKERS_DIR";
pub const ENV_TIMER_LEASE_SECONDS: &str = "STRATUS_TIMER_LEASE_SECONDS";
pub const ENV_QUEUE_LISTEN: &str = "STRATUS_QUEUE_LISTEN";
pub const ENV_QUEUE_MESSAGE_LEASE_SECONDS: &str = "STRATUS_QUEUE_MESSAGE_LEASE_SECONDS";

/// A number of seconds (at least 1) from the environment variable `name`, if set.
fn env_seconds(env: &dyn Env, name: &'static str) -> Result<Option<u64>, ConfigError> {
    match env.get(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or(ConfigError::Env {
                name,
                value: v,
                problem: "expected a number of seconds, at least 1".into(),
            }),
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        message: e.to_string(),
    })
}

impl Config {
    /// Layers file < environment < flags.
    pub fn resolve(flags: &ConfigFlags, env: &dyn Env) -> Result<Config, ConfigError> {
        let file_path = flags
            .config
            .clone()
            .or_else(|| env.get(ENV_CONFIG).map(PathBuf::from));
        let file = match &file_path {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let data_dir = flags
            .data_dir
            .clone()
            .or_else(|| env.get(ENV_DATA_DIR).map(PathBuf::from))
            .or(file.data_dir)
            .or_else(|| {
                env.get("XDG_DATA_HOME")
                    .map(|d| Path::new(&d).join("stratus"))
            })
            .or_else(|| {
                env.get("HOME")
                    .map(|h| Path::new(&h).join(".local/share/stratus"))
            })
            .ok_or(ConfigError::NoDataDir)?;
        let database_url = flags
            .database_url
            .clone()
            .or_else(|| env.get(ENV_DATABASE_URL))
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("stratus.db").display()));
        let encryption_key = if let Some(f) = &flags.encryption_key_file {
            KeySource::File(f.clone())
        } else if let Some(v) = env.get(ENV_ENCRYPTION_KEY) {
            KeySource::Value(v)
        } else if let Some(f) = env.get(ENV_ENCRYPTION_KEY_FILE) {
            KeySource::File(f.into())
        } else if let Some(v) = file.encryption_key {
            KeySource::Value(v)
        } else if let Some(f) = file.encryption_key_file {
            KeySource::File(f)
        } else {
            KeySource::Default(data_dir.join("encryption.key"))
        };
        let log_format = match (flags.log_format, env.get(ENV_LOG_FORMAT)) {
            (Some(f), _) => f,
            (None, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "plain" => LogFormat::Plain,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: ENV_LOG_FORMAT,
                        value: v,
                        problem: "expected plain or json".into(),
                    });
                }
            },
            (None, None) => file.log_format.unwrap_or_default(),
        };
        let max_request_body_size = match env.get(ENV_MAX_REQUEST_BODY_SIZE) {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| ConfigError::Env {
                name: ENV_MAX_REQUEST_BODY_SIZE,
                value: v.clone(),
                problem: "expected a number of bytes".into(),
            })?),
            None => file.max_request_body_size,
        };
        let workers_dir = env
            .get(ENV_WORKERS_DIR)
            .map(PathBuf::from)
            .or(file.workers_dir);
        let timer_lease_seconds =
            env_seconds(env, ENV_TIMER_LEASE_SECONDS)?.or(file.timer_lease_seconds);
        let queue_listen = env
            .get(ENV_QUEUE_LISTEN)
            .or(file.queue_listen)
            .unwrap_or_else(|| "127.0.0.1:10001".to_string());
        let queue_listen = (!queue_listen.eq_ignore_ascii_case("off")).then_some(queue_listen);
        let queue_message_lease_seconds =
            env_seconds(env, ENV_QUEUE_MESSAGE_LEASE_SECONDS)?.or(file.queue_message_lease_seconds);
        Ok(Config {
            queue_message_lease: std::time::Duration::from_secs(
                queue_message_lease_seconds.unwrap_or(600).max(1),
            ),
            queue_listen,
            timer_lease: std::time::Duration::from_secs(timer_lease_seconds.unwrap_or(60).max(1)),
            data_dir,
            database_url,
            encryption_key,
            log_format,
            max_request_body_size,
            workers_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layering() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stratus.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nlog_format = \"json\"\nmax_request_body_size = 10\n",
        )
        .unwrap();
        let flags = ConfigFlags {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::resolve(&flags, &env(&[])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.database_url, "sqlite:/from/file/stratus.db");
        assert_eq!(
            c.encryption_key,
            KeySource::Default("/from/file/encryption.key".into())
        );
        let c = Config::resolve(
            &flags,
            &env(&[(ENV_DATA_DIR, "/from/env"), (ENV_ENCRYPTION_KEY, "k")]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/env"));
        assert_eq!(c.encryption_key, KeySource::Value("k".into()));
        let flags = ConfigFlags {
            data_dir: Some("/from/flag".into()),
            ..flags
        };
        let c = Config::resolve(&flags, &env(&[(ENV_DATA_DIR, "/from/env")])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stratus.toml");
        std::fs::write(&file, "data_dri = \"/x\"\n").unwrap();
        let flags = ConfigFlags {
            config: Some(file),
            ..Default::default()
        };
        let e = Config::resolve(&flags, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("unknown field `data_dri`"), "{e}");
        let e = Config::resolve(
            &ConfigFlags::default(),
            &env(&[("HOME", "/h"), (ENV_LOG_FORMAT, "xml")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "STRATUS_LOG_FORMAT=xml is not valid: expected plain or json"
        );
    }
}
