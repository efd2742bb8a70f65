//! The Azure Functions app model: host.json, function.json, local.settings.json, app settings,
//! HTTP route templates and keys, timer schedules, parsed and validated without any I/O.
//!
//! Every problem is a [`ModelError`] naming the file, the JSON path and what was expected.

#![forbid(unsafe_code)]

pub mod app_name;
pub mod error;
pub mod function_json;
pub mod host_json;
pub mod json;
pub mod keys;
pub mod latency;
pub mod local_settings;
pub mod log_level;
pub mod retry;
pub mod route;
pub mod schedule;
pub mod settings;
pub mod text;
pub mod timespan;
pub mod worker_config;

pub use error::ModelError;
pub use function_json::{Binding, DataType, Direction, FunctionConfig, HttpTrigger, Trigger};
pub use host_json::{CustomHandlerConfig, HostConfig, HttpOptions};
pub use keys::{AuthLevel, KeyKind};
pub use local_settings::LocalSettings;
pub use log_level::{LogLevel, LogLevels};
pub use retry::{RetryPolicy, RetryStrategy};
pub use schedule::{Cron, ResolvedTimer, Schedule, TimerTrigger};
pub use settings::AppSettings;
pub use worker_config::WorkerConfig;
