//! One Azure Functions app served the way the Azure Functions host serves it: app loading,
//! the HTTP front (routing, keys, limits, CORS), the admin API, and the executors that run
//! function code.
//!
//! The host does not know whether it runs under `stratus start` or elsewhere: it is given an
//! [`App`], a [`KeyService`] and an [`Executor`], and serves a listener.

#![deny(unsafe_code)]

pub mod admin;
pub mod app;
pub mod bindings;
pub mod clock;
pub mod executor;
pub mod http;
pub mod http_data;
pub mod keys;
pub mod logging;
pub mod observe;
pub mod queues;
#[cfg(test)]
pub(crate) mod test_support;
pub mod triggers;

use std::sync::Arc;

use ::http::{HeaderName, HeaderValue};

pub use app::{App, Function, FunctionErrors, LoadError, LoadOptions};
pub use executor::{Executor, ExecutorStatus};
pub use http::cors::Cors;
pub use keys::{KeyBackend, KeyService, Principal};

/// The Azure Functions host version whose behaviour Stratus reproduces; reported to handlers
/// (`X-Azure-Functions-HostVersion`) and in the host status.
pub const HOST_VERSION: &str = "4.1037.0.0";

/// Default request body limit (the host's `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` default).
pub const DEFAULT_BODY_LIMIT: u64 = 104_857_600;

/// How keys are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Keys are required as each function's `authLevel` says (the default).
    Enforce,
    /// Every caller is treated as admin, as `func start` does without `--enableAuth`.
    /// For local development only.
    Relaxed,
}

/// Host settings that do not come from the app.
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub auth: AuthMode,
    /// Request body limit; None uses `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` or 100 MB.
    pub body_limit: Option<u64>,
    pub cors: Cors,
    /// Where output bindings are written (None when no store is open).
    pub outputs: Option<Arc<bindings::OutputSink>>,
}

/// An app being served.
#[derive(Debug)]
pub struct Host {
    pub app: App,
    pub keys: Arc<KeyService>,
    pub executor: Arc<dyn Executor>,
    pub auth: AuthMode,
    pub body_limit: u64,
    pub cors: Cors,
    pub(crate) throttle: Option<http::throttle::Throttle>,
    pub(crate) custom_headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) homepage_disabled: bool,
    pub(crate) started: std::time::Instant,
    /// Timer functions by lower-cased name (for admin invoke's `TimerInfo`).
    pub(crate) timers: std::collections::HashMap<String, triggers::timer::TimerFunction>,
    pub(crate) time_zone: chrono_tz::Tz,
    /// Runs admin invocations; writes the output bindings of HTTP ones too.
    pub invoker: triggers::Invoker,
}

impl Host {
    pub fn new(
        app: App,
        keys: Arc<KeyService>,
        executor: Arc<dyn Executor>,
        options: HostOptions,
    ) -> Arc<Host> {
        let body_limit = options
            .body_limit
            .or_else(|| {
                app.settings
                    .get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(DEFAULT_BODY_LIMIT);
        let throttle = http::throttle::Throttle::new(
            app.config.http.max_concurrent_requests,
            app.config.http.max_outstanding_requests,
        );
        let custom_headers = app
            .config
            .http
            .custom_headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::from_bytes(k.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        let homepage_disabled = app
            .settings
            .get("AzureWebJobsDisableHomepage")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let (timer_list, _) = triggers::timer::timer_functions(&app);
        let timers = timer_list
            .into_iter()
            .map(|t| (t.function.name.to_ascii_lowercase(), t))
            .collect();
        let time_zone = triggers::timer::time_zone(&app).unwrap_or(chrono_tz::Tz::UTC);
        let invoker = triggers::Invoker {
            executor: executor.clone(),
            timeout: app.config.function_timeout,
            outputs: options.outputs,
            clock: Arc::new(clock::SystemClock),
        };
        Arc::new(Host {
            invoker,
            timers,
            time_zone,
            app,
            keys,
            executor,
            auth: options.auth,
            body_limit,
            cors: options.cors,
            throttle,
            custom_headers,
            homepage_disabled,
            started: std::time::Instant::now(),
        })
    }
}
