//! Watching managed apps: the reports workers' hosts send (invocation records, function log
//! lines, per-minute latency histograms) written to the store, and read back as invocation
//! history, one invocation with its logs, per-minute rates and latency percentiles, and a
//! live log stream (Server-Sent Events, read from the store so any management process can
//! serve any viewer).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::{Value, json};
use stratus_model::latency::Histogram;
use stratus_store::{InvocationFilter, InvocationRecord, LogLine, Retention, StatRow};

use crate::api::{Api, ApiError, ApiRequest, empty, json_response, query_value};

/// What is kept per app: a week, at most this many invocations and log lines.
pub const RETENTION: Retention = Retention {
    max_age_ms: 7 * 24 * 3600 * 1000,
    max_invocations: 100_000,
    max_logs: 200_000,
};

/// Largest report a host may send.
pub(crate) const REPORT_LIMIT: usize = 4 << 20;

fn query(req: &ApiRequest<'_>, key: &str) -> Option<String> {
    query_value(req.query, key)
        .map(stratus_model::text::url_decode)
        .filter(|v| !v.is_empty())
}

fn invocation_json(i: &InvocationRecord) -> Value {
    json!({
        "id": i.id,
        "function": i.function,
        "trigger": i.trigger,
        "start": i.started_ms,
        "durationMs": i.duration_us as f64 / 1000.0,
        "status": if i.error.is_some() { "failed" } else { "ok" },
        "error": i.error,
        "worker": i.worker,
        "version": i.version,
    })
}

fn log_json(l: &LogLine) -> Value {
    json!({
        "seq": l.seq,
        "time": l.time_ms,
        "level": l.level,
        "function": l.function,
        "invocationId": l.invocation_id,
        "message": l.message,
        "worker": l.worker,
    })
}

fn text(v: &Value, field: &str, limit: usize) -> Result<String, ApiError> {
    match &v[field] {
        Value::String(s) if s.len() <= limit => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        _ => Err(ApiError::BadRequest(format!(
            "\"{field}\": expected a string of at most {limit} bytes"
        ))),
    }
}

fn number(v: &Value, field: &str) -> Result<i64, ApiError> {
    v[field]
        .as_i64()
        .ok_or_else(|| ApiError::BadRequest(format!("\"{field}\": expected an integer")))
}

/// Reads a host's report into rows for the store.
/// A report's rows: invocations, log lines, statistics.
type Rows = (Vec<InvocationRecord>, Vec<LogLine>, Vec<StatRow>);

fn parse_report(body: &[u8], worker: &str) -> Result<Rows, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the report is not JSON: {e}")))?;
    let version = v["version"].as_i64().unwrap_or(0);
    let host = text(&v, "host", 64)?;
    let list = |field: &str| v[field].as_array().cloned().unwrap_or_default();
    let mut invocations = Vec::new();
    for i in list("invocations") {
        let error = match &i["error"] {
            Value::Null => None,
            Value::String(s) => Some(s.chars().take(4096).collect()),
            other => Some(other.to_string()),
        };
        invocations.push(InvocationRecord {
            id: text(&i, "id", 64)?,
            function: text(&i, "function", 256)?,
            trigger: text(&i, "trigger", 64)?,
            started_ms: number(&i, "start")?,
            duration_us: number(&i, "durationUs")?,
            error,
            worker: worker.to_string(),
            version,
        });
    }
    let mut logs = Vec::new();
    for l in list("logs") {
        logs.push(LogLine {
            seq: 0,
            function: text(&l, "function", 256)?,
            invocation_id: text(&l, "invocationId", 64)?,
            time_ms: number(&l, "time")?,
            level: text(&l, "level", 16)?,
            message: text(&l, "message", 16 << 10)?,
            worker: worker.to_string(),
        });
    }
    let mut stats = Vec::new();
    for s in list("stats") {
        let counts: Vec<String> = s["histogram"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c.as_u64().unwrap_or(0).to_string())
                    .collect()
            })
            .unwrap_or_default();
        stats.push(StatRow {
            function: text(&s, "function", 256)?,
            minute_ms: number(&s, "minute")?,
            worker: worker.to_string(),
            host: host.clone(),
            count: number(&s, "count")?,
            errors: number(&s, "errors")?,
            histogram: counts.join(","),
        });
    }
    Ok((invocations, logs, stats))
}

fn histogram(text: &str) -> Histogram {
    let counts: Vec<u64> = text
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    Histogram::from_counts(&counts)
}

/// One minute of an app's (or function's) invocations.
#[derive(Default)]
struct Minute {
    count: i64,
    errors: i64,
    histogram: Histogram,
}

fn ms(us: Option<f64>) -> Value {
    us.map_or(Value::Null, |u| json!((u / 10.0).round() / 100.0))
}

impl Api {
    /// `POST /api/workers/{id}/apps/{app}/telemetry`: a host's report.
    pub(crate) async fn report(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
        worker: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        if *req.method != Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        if req.body.len() > REPORT_LIMIT {
            return Err(ApiError::TooLarge(REPORT_LIMIT));
        }
        let (invocations, logs, stats) = parse_report(req.body, worker)?;
        self.telemetry
            .record(app, &invocations, &logs, &stats)
            .await?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// `GET /api/apps/{app}/invocations[/{id}]`.
    pub(crate) async fn invocations_route(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
        rest: &[&str],
    ) -> Result<Response<Bytes>, ApiError> {
        if *req.method != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        match rest {
            [] => {
                let failed = match query(req, "status").as_deref() {
                    None => None,
                    Some("ok") => Some(false),
                    Some("failed") => Some(true),
                    Some(other) => {
                        return Err(ApiError::BadRequest(format!(
                            "status: expected ok or failed, found \"{other}\""
                        )));
                    }
                };
                let int = |key: &str| -> Result<Option<i64>, ApiError> {
                    query(req, key)
                        .map(|v| {
                            v.parse().map_err(|_| {
                                ApiError::BadRequest(format!("{key}: expected an integer"))
                            })
                        })
                        .transpose()
                };
                let filter = InvocationFilter {
                    function: query(req, "function"),
                    failed,
                    trigger: query(req, "trigger"),
                    before_ms: int("before")?,
                    before_id: query(req, "beforeId"),
                    limit: int("limit")?.unwrap_or(100).clamp(1, 1000),
                };
                let list = self.telemetry.invocations(app, &filter).await?;
                // Whether some invocations of the listed span were only counted (a high
                // rate): the statistics' count against the records kept, whole minutes.
                let from = list.last().map_or(req.now_ms - 3_600_000, |i| i.started_ms);
                let from = from - from.rem_euclid(60_000);
                let function = filter.function.as_deref();
                let counted: i64 = self
                    .telemetry
                    .stats(app, function, from)
                    .await?
                    .iter()
                    .map(|s| s.count)
                    .sum();
                let recorded = self.telemetry.recorded_since(app, function, from).await?;
                Ok(json_response(
                    StatusCode::OK,
                    &json!({
                        "invocations": list.iter().map(invocation_json).collect::<Vec<_>>(),
                        "sampled": counted > recorded,
                    }),
                ))
            }
            [id] => {
                // `wait` (seconds, at most 10): the record is on its way from the host.
                let wait = query(req, "wait")
                    .and_then(|w| w.parse::<u64>().ok())
                    .unwrap_or(0)
                    .min(10);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
                let record = loop {
                    if let Some(r) = self.telemetry.invocation(app, id).await? {
                        break r;
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ApiError::NotFound(format!("no invocation {id} of {app}")));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                let logs = self.telemetry.logs_of(app, id).await?;
                let mut v = invocation_json(&record);
                v["logs"] = logs.iter().map(log_json).collect();
                Ok(json_response(StatusCode::OK, &v))
            }
            _ => Err(ApiError::NotFound("no such route".into())),
        }
    }

    /// Per-minute counts of `app` (of one function, when given) from `from_ms` on.
    async fn minutes(
        &self,
        app: &str,
        function: Option<&str>,
        from_ms: i64,
    ) -> Result<std::collections::BTreeMap<i64, Minute>, ApiError> {
        let mut minutes: std::collections::BTreeMap<i64, Minute> = Default::default();
        for row in self.telemetry.stats(app, function, from_ms).await? {
            let m = minutes.entry(row.minute_ms).or_default();
            m.count += row.count;
            m.errors += row.errors;
            m.histogram.merge(&histogram(&row.histogram));
        }
        Ok(minutes)
    }

    /// `GET /api/apps/{app}/stats?minutes=60&function=`: one entry per minute, oldest first.
    pub(crate) async fn stats_route(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        if *req.method != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        let span: i64 = query(req, "minutes")
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::BadRequest("minutes: expected an integer".into()))
            })
            .transpose()?
            .unwrap_or(60)
            .clamp(1, 24 * 60);
        let now_minute = req.now_ms - req.now_ms.rem_euclid(60_000);
        let from = now_minute - (span - 1) * 60_000;
        let function = query(req, "function");
        let mut minutes = self.minutes(app, function.as_deref(), from).await?;
        let mut total = Minute::default();
        let list: Vec<Value> = (0..span)
            .map(|i| {
                let start = from + i * 60_000;
                let m = minutes.remove(&start).unwrap_or_default();
                total.count += m.count;
                total.errors += m.errors;
                total.histogram.merge(&m.histogram);
                json!({
                    "start": start,
                    "count": m.count,
                    "errors": m.errors,
                    "p50": ms(m.histogram.quantile_us(0.50)),
                    "p95": ms(m.histogram.quantile_us(0.95)),
                    "p99": ms(m.histogram.quantile_us(0.99)),
                })
            })
            .collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "minutes": list,
                "total": {
                    "count": total.count,
                    "errors": total.errors,
                    "p50": ms(total.histogram.quantile_us(0.50)),
                    "p95": ms(total.histogram.quantile_us(0.95)),
                    "p99": ms(total.histogram.quantile_us(0.99)),
                },
            }),
        ))
    }

    /// Invocations and errors of `app` in the last 60 s (whole minutes, weighted).
    pub(crate) async fn rates(&self, app: &str, now_ms: i64) -> Result<(f64, f64), ApiError> {
        let this = now_ms - now_ms.rem_euclid(60_000);
        let minutes = self.minutes(app, None, this - 60_000).await?;
        // The part of the previous minute that is still within the last 60 s.
        let weight = 1.0 - (now_ms - this) as f64 / 60_000.0;
        let mut rate = (0.0, 0.0);
        for (start, m) in minutes {
            let w = if start == this { 1.0 } else { weight };
            rate.0 += m.count as f64 * w;
            rate.1 += m.errors as f64 * w;
        }
        Ok((
            (rate.0 * 10.0).round() / 10.0,
            (rate.1 * 10.0).round() / 10.0,
        ))
    }
}

/// A streamed response body.
pub type StreamBody = UnsyncBoxBody<Bytes, Infallible>;

/// How often the stream looks for new lines, and sends a comment to keep the connection.
const POLL: Duration = Duration::from_millis(500);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whether the viewer may still watch (its session may end while the stream is open).
pub type StillAllowed = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync,
>;

/// How often an open stream checks that its viewer may still watch.
const RECHECK: Duration = Duration::from_secs(30);

/// `GET /api/apps/{app}/logs/stream?function=`: the last 50 lines (or those after
/// `Last-Event-ID`), then new ones as they arrive, as Server-Sent Events, until the viewer
/// goes away, may no longer watch (`allowed`), or the store fails (the viewer's
/// `EventSource` comes back with the last id it saw).
pub fn log_stream(
    api: Api,
    app: String,
    function: Option<String>,
    after: Option<i64>,
    allowed: StillAllowed,
) -> Response<StreamBody> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, Infallible>>(16);
    tokio::spawn(async move {
        let f = function.as_deref();
        let t = &api.telemetry;
        // Where the stream starts: after the viewer's last line, or after the backlog.
        let start = match after {
            Some(seq) => t.logs_after(&app, None, seq, 1000).await.map(|l| (seq, l)),
            None => match (t.last_logs(&app, f, 50).await, t.last_seq(&app).await) {
                (Ok(l), Ok(last)) => Ok((last, l)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
        };
        let Ok((mut last, mut lines)) = start else {
            return;
        };
        let mut quiet = Duration::ZERO;
        let mut since_check = Duration::ZERO;
        if tx
            .send(Ok(http_body::Frame::data(Bytes::from_static(
                b"retry: 2000\n\n",
            ))))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let mut out = String::new();
            for l in &lines {
                // Every line moves the stream on; only the function's are sent.
                last = last.max(l.seq);
                if f.is_some_and(|f| f != l.function) {
                    continue;
                }
                out.push_str(&format!(
                    "id: {}\nevent: log\ndata: {}\n\n",
                    l.seq,
                    log_json(l)
                ));
            }
            if out.is_empty() && quiet >= KEEP_ALIVE {
                out.push_str(": keep-alive\n\n");
            }
            if !out.is_empty() {
                quiet = Duration::ZERO;
                if tx
                    .send(Ok(http_body::Frame::data(Bytes::from(out))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            tokio::time::sleep(POLL).await;
            quiet += POLL;
            since_check += POLL;
            if tx.is_closed() {
                return;
            }
            if since_check >= RECHECK {
                since_check = Duration::ZERO;
                if !allowed().await {
                    return;
                }
            }
            lines = match t.logs_after(&app, None, last, 1000).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(app = %app, "the log stream stops: {e}");
                    return;
                }
            };
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    let body = http_body_util::StreamBody::new(frames);
    let mut r = Response::new(body.boxed_unsync());
    for (k, v) in [
        (http::header::CONTENT_TYPE, "text/event-stream"),
        (http::header::CACHE_CONTROL, "no-cache"),
        (
            http::header::HeaderName::from_static("x-accel-buffering"),
            "no",
        ),
    ] {
        r.headers_mut().insert(k, http::HeaderValue::from_static(v));
    }
    r
}

/// Drops what is past the retention, every minute until `shutdown` (in every management
/// process; deletes of the same rows are harmless).
pub async fn prune(
    telemetry: stratus_store::SqlTelemetry,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match telemetry.prune(RETENTION, crate::now_ms()).await {
            Ok(n) if n > 0 => tracing::debug!("pruned {n} telemetry rows"),
            Ok(_) => {}
            Err(e) => tracing::warn!("pruning telemetry failed: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            () = &mut shutdown => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_into_rows_and_refuse_bad_fields() {
        let body = json!({
            "version": 3,
            "invocations": [{"id": "a", "function": "hello", "trigger": "httpTrigger", "start": 5, "durationUs": 1200, "error": null},
                            {"id": "b", "function": "hello", "trigger": "httpTrigger", "start": 6, "durationUs": 10, "error": "boom"}],
            "logs": [{"function": "hello", "invocationId": "a", "time": 7, "level": "Information", "message": "hi"}],
            "stats": [{"function": "hello", "minute": 0, "count": 2, "errors": 1, "histogram": [0, 1, 1]}],
        });
        let (i, l, s) = parse_report(body.to_string().as_bytes(), "w1").unwrap();
        assert_eq!((i.len(), l.len(), s.len()), (2, 1, 1));
        assert_eq!(i[1].error.as_deref(), Some("boom"));
        assert_eq!((i[0].version, i[0].worker.as_str()), (3, "w1"));
        assert_eq!(s[0].histogram, "0,1,1");
        assert_eq!(histogram(&s[0].histogram).total(), 2);
        let bad = json!({"invocations": [{"id": 5}]});
        assert!(parse_report(bad.to_string().as_bytes(), "w1").is_err());
        assert!(parse_report(b"nope", "w1").is_err());
    }
}
