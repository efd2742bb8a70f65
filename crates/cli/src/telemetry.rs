//! The log subscriber: stderr (plain or JSON) through a batching background writer, level from
//! `RUST_LOG`, else from host.json `logging.logLevel.default` once the app is loaded.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Keeps the writer alive and lets the filter change after start-up.
pub struct Telemetry {
    _guard: crate::log_writer::FlushGuard,
    filter: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    from_env: bool,
}

/// Dependencies whose chatter is muted unless RUST_LOG says otherwise.
const QUIET: &str = "sqlx=warn,hyper=warn,hyper_util=warn,h2=warn";

fn directives(level: &str) -> String {
    format!("{level},{QUIET},stratus::function=trace")
}

pub fn init(format: LogFormat) -> Telemetry {
    let from_env = std::env::var("RUST_LOG").is_ok_and(|v| !v.is_empty());
    let filter = if from_env {
        EnvFilter::from_default_env()
    } else {
        EnvFilter::new(directives("info"))
    };
    let (filter, handle) = reload::Layer::new(filter);
    let (writer, guard) = crate::log_writer::batch_writer(std::io::stderr());
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(crate::reporting::layer());
    match format {
        LogFormat::Plain => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .event_format(crate::log_format::PlainFormat),
            )
            .init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
            .init(),
    }
    Telemetry {
        _guard: guard,
        filter: handle,
        from_env,
    }
}

impl Telemetry {
    /// Applies host.json's default level when RUST_LOG is not set.
    pub fn apply_host_levels(&self, levels: &stratus_model::LogLevels) {
        if self.from_env {
            return;
        }
        use stratus_model::LogLevel as L;
        let level = match levels.default_level() {
            Option::None | Some(L::Information) => "info",
            Some(L::Trace) => "trace",
            Some(L::Debug) => "debug",
            Some(L::Warning) => "warn",
            Some(L::Error | L::Critical) => "error",
            Some(L::None) => "off",
        };
        let _ = self.filter.reload(EnvFilter::new(directives(level)));
    }
}
