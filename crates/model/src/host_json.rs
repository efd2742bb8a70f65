//! `host.json`: the app-wide configuration of an Azure Functions app.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
use crate::json::{self, Obj};
use crate::log_level::{LogLevel, LogLevels};
use crate::retry::RetryPolicy;
use crate::timespan;

pub const HOST_JSON: &str = "host.json";

/// Default `functionTimeout` outside Consumption plans (the host's v4 default).
pub const DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The validated content of host.json.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// `functionTimeout`; `None` means no limit (`-1`).
    pub function_timeout: Option<Duration>,
    /// `functions`: the allow-list of functions to load, if any.
    pub functions: Option<Vec<String>>,
    pub http: HttpOptions,
    pub custom_handler: Option<CustomHandlerConfig>,
    pub log_levels: LogLevels,
    pub retry: Option<RetryPolicy>,
    /// The whole document after overrides, for extension sections read elsewhere.
    pub raw: Value,
}

/// `extensions.http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Route prefix without surrounding slashes; empty means none.
    pub route_prefix: String,
    pub max_concurrent_requests: Option<u32>,
    pub max_outstanding_requests: Option<u32>,
    /// Headers added to every HTTP response, in document order.
    pub custom_headers: Vec<(String, String)>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            route_prefix: "api".into(),
            max_concurrent_requests: None,
            max_outstanding_requests: None,
            custom_headers: Vec::new(),
        }
    }
}

/// `customHandler` (or the legacy `httpWorker`) section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomHandlerConfig {
    pub default_executable_path: String,
    pub default_worker_path: Option<String>,
    pub arguments: Vec<String>,
    pub worker_arguments: Vec<String>,
    pub working_directory: Option<String>,
    pub worker_directory: Option<String>,
    pub enable_forwarding_http_request: bool,
    /// True when read from the legacy `httpWorker` section.
    pub legacy_http_worker: bool,
}

/// The document used when an app has no host.json.
pub fn default_document() -> Value {
    serde_json::json!({ "version": "2.0" })
}

/// Applies `AzureFunctionsJobHost__a__b=value` style overrides (already split into segments)
/// onto a host.json document; keys match case-insensitively and values are strings, as in
/// .NET configuration.
pub fn apply_overrides<'a>(
    doc: &mut Value,
    overrides: impl IntoIterator<Item = (Vec<&'a str>, &'a str)>,
) {
    for (segments, value) in overrides {
        if segments.is_empty() || segments.iter().any(|s| s.is_empty()) {
            continue;
        }
        let mut cur = &mut *doc;
        for (i, seg) in segments.iter().enumerate() {
            if !cur.is_object() {
                *cur = Value::Object(Map::new());
            }
            let Value::Object(map) = cur else {
                unreachable!("made an object above")
            };
            let key = map
                .keys()
                .find(|k| k.eq_ignore_ascii_case(seg))
                .cloned()
                .unwrap_or_else(|| (*seg).to_string());
            if i + 1 == segments.len() {
                map.insert(key, Value::String(value.to_string()));
                break;
            }
            cur = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
        }
    }
}

impl HostConfig {
    /// Parses and validates host.json (after overrides have been applied).
    pub fn parse(doc: Value) -> Result<HostConfig> {
        let f = HOST_JSON;
        let o = Obj::root(f, &doc)?;
        match o.scalar("version")? {
            None => {
                return Err(ModelError::new(
                    f,
                    "$.version",
                    "expected the required \"version\" property with the value \"2.0\", found nothing",
                ));
            }
            Some(v) if v.trim() == "2.0" => {}
            Some(v) => {
                return Err(ModelError::new(
                    f,
                    "$.version",
                    format!("expected \"2.0\", found \"{v}\""),
                ));
            }
        }

        let function_timeout = match o.scalar("functionTimeout")? {
            None => Some(DEFAULT_FUNCTION_TIMEOUT),
            Some(text) => {
                let ts = timespan::parse(&text).map_err(|e| o.error("functionTimeout", e))?;
                if ts.negative {
                    None
                } else if ts.duration < Duration::from_secs(1) {
                    return Err(o.error(
                        "functionTimeout",
                        format!(
                            "expected at least 00:00:01 (or -1 for no limit), found \"{text}\""
                        ),
                    ));
                } else {
                    Some(ts.duration)
                }
            }
        };

        let functions = o.strings("functions")?;

        let http = match o.obj("extensions")? {
            None => HttpOptions::default(),
            Some(ext) => match ext.view().obj("http")? {
                None => HttpOptions::default(),
                Some(http) => parse_http(http.view())?,
            },
        };

        let custom_handler = match (o.obj("customHandler")?, o.obj("httpWorker")?) {
            (Some(ch), _) => Some(parse_custom_handler(ch.view(), false)?),
            (None, Some(hw)) => Some(parse_custom_handler(hw.view(), true)?),
            (None, None) => None,
        };

        let log_levels = match o.obj("logging")? {
            None => LogLevels::default(),
            Some(logging) => match logging.view().obj("logLevel")? {
                None => LogLevels::default(),
                Some(levels) => {
                    let view = levels.view();
                    let mut entries = Vec::new();
                    for (k, v) in view.map {
                        let text = match v {
                            Value::String(s) => s.as_str(),
                            other => {
                                return Err(view.error(
                                    k,
                                    format!(
                                        "expected a log level name, found {}",
                                        json::kind(other)
                                    ),
                                ));
                            }
                        };
                        let level: LogLevel = text.parse().map_err(|e: String| view.error(k, e))?;
                        entries.push((k.clone(), level));
                    }
                    LogLevels::new(entries)
                }
            },
        };

        let retry = match o.obj("retry")? {
            None => None,
            Some(r) => Some(RetryPolicy::parse(r.view())?),
        };

        Ok(HostConfig {
            function_timeout,
            functions,
            http,
            custom_handler,
            log_levels,
            retry,
            raw: doc,
        })
    }
}

fn limit(o: Obj<'_>, key: &str) -> Result<Option<u32>> {
    match o.int(key)? {
        None | Some(-1) => Ok(None),
        Some(n) if n >= 1 && n <= i64::from(u32::MAX) => Ok(Some(n as u32)),
        Some(n) => Err(o.error(
            key,
            format!("expected -1 (unbounded) or a positive integer, found {n}"),
        )),
    }
}

fn parse_http(o: Obj<'_>) -> Result<HttpOptions> {
    let route_prefix = match o.scalar("routePrefix")? {
        None => "api".to_string(),
        Some(p) => p.trim().trim_matches('/').to_string(),
    };
    let mut custom_headers = Vec::new();
    if let Some(h) = o.obj("customHeaders")? {
        let view = h.view();
        for (k, v) in view.map {
            match v {
                Value::String(s) => custom_headers.push((k.clone(), s.clone())),
                other => {
                    return Err(view.error(
                        k,
                        format!(
                            "expected a string header value, found {}",
                            json::kind(other)
                        ),
                    ));
                }
            }
            if http_header_name_invalid(k) {
                return Err(view.error(
                    k,
                    format!("expected a valid HTTP header name, found \"{k}\""),
                ));
            }
        }
    }
    Ok(HttpOptions {
        route_prefix,
        max_concurrent_requests: limit(o, "maxConcurrentRequests")?,
        max_outstanding_requests: limit(o, "maxOutstandingRequests")?,
        custom_headers,
    })
}

fn http_header_name_invalid(name: &str) -> bool {
    name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_custom_handler(o: Obj<'_>, legacy: bool) -> Result<CustomHandlerConfig> {
    let desc = o.obj("description")?.ok_or_else(|| {
        o.error(
            "description",
            "expected an object with \"defaultExecutablePath\", found nothing",
        )
    })?;
    let d = desc.view();
    let default_executable_path = d
        .str("defaultExecutablePath")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            d.error(
                "defaultExecutablePath",
                "expected the path of the handler executable, found nothing",
            )
        })?
        .to_string();
    Ok(CustomHandlerConfig {
        default_executable_path,
        default_worker_path: d.non_empty("defaultWorkerPath")?,
        arguments: d.strings("arguments")?.unwrap_or_default(),
        worker_arguments: d.strings("workerArguments")?.unwrap_or_default(),
        working_directory: d.non_empty("workingDirectory")?,
        worker_directory: d.non_empty("workerDirectory")?,
        enable_forwarding_http_request: legacy
            || o.bool("enableForwardingHttpRequest")?.unwrap_or(false),
        legacy_http_worker: legacy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<HostConfig> {
        HostConfig::parse(v)
    }

    #[test]
    fn minimal() {
        let h = parse(json!({"version":"2.0"})).unwrap();
        assert_eq!(h.http.route_prefix, "api");
        assert_eq!(h.function_timeout, Some(DEFAULT_FUNCTION_TIMEOUT));
        assert!(h.custom_handler.is_none());
    }

    #[test]
    fn version_is_required_and_exact() {
        assert_eq!(parse(json!({})).unwrap_err().path, "$.version");
        let e = parse(json!({"version":"3.0"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "host.json: $.version: expected \"2.0\", found \"3.0\""
        );
    }

    #[test]
    fn full_document() {
        let h = parse(json!({
            "version": "2.0",
            "functionTimeout": "00:00:10",
            "functions": ["A", "B"],
            "extensions": {"http": {"routePrefix": "/v1/", "maxConcurrentRequests": 4,
                "maxOutstandingRequests": "8", "customHeaders": {"X-A": "1"}}},
            "customHandler": {"description": {"defaultExecutablePath": "python3",
                "arguments": ["-u"], "defaultWorkerPath": "handler.py"}, "enableForwardingHttpRequest": true},
            "logging": {"logLevel": {"default": "Warning", "Function.A": "Trace"}}
        }))
        .unwrap();
        assert_eq!(h.function_timeout, Some(Duration::from_secs(10)));
        assert_eq!(
            h.functions.as_deref(),
            Some(&["A".to_string(), "B".to_string()][..])
        );
        assert_eq!(h.http.route_prefix, "v1");
        assert_eq!(h.http.max_concurrent_requests, Some(4));
        assert_eq!(h.http.max_outstanding_requests, Some(8));
        let ch = h.custom_handler.unwrap();
        assert!(ch.enable_forwarding_http_request);
        assert_eq!(ch.default_worker_path.as_deref(), Some("handler.py"));
        assert_eq!(h.log_levels.level_for("Function.A.User"), LogLevel::Trace);
    }

    #[test]
    fn infinite_timeout_and_limits() {
        assert_eq!(
            parse(json!({"version":"2.0","functionTimeout":"-1"}))
                .unwrap()
                .function_timeout,
            None
        );
        let e = parse(json!({"version":"2.0","functionTimeout":"00:00:00.5"})).unwrap_err();
        assert_eq!(e.path, "$.functionTimeout");
        let e = parse(json!({"version":"2.0","extensions":{"http":{"maxConcurrentRequests":0}}}))
            .unwrap_err();
        assert_eq!(e.path, "$.extensions.http.maxConcurrentRequests");
    }

    #[test]
    fn legacy_http_worker_always_forwards() {
        let h = parse(
            json!({"version":"2.0","httpWorker":{"description":{"defaultExecutablePath":"x"}}}),
        )
        .unwrap();
        assert!(h.custom_handler.unwrap().enable_forwarding_http_request);
    }

    #[test]
    fn custom_handler_needs_an_executable() {
        let e = parse(json!({"version":"2.0","customHandler":{"description":{}}})).unwrap_err();
        assert_eq!(e.path, "$.customHandler.description.defaultExecutablePath");
    }

    #[test]
    fn overrides_apply_case_insensitively() {
        let mut doc = json!({"version":"2.0","extensions":{"http":{"routePrefix":"api"}}});
        apply_overrides(
            &mut doc,
            [
                (vec!["Extensions", "HTTP", "routePrefix"], "x"),
                (vec!["functionTimeout"], "00:01:00"),
            ],
        );
        let h = parse(doc).unwrap();
        assert_eq!(h.http.route_prefix, "x");
        assert_eq!(h.function_timeout, Some(Duration::from_secs(60)));
    }
}
