//! What a worker's host reports to the management role about its functions: each ended
//! invocation (one by one up to a rate, errors first; all of them counted in per-minute
//! latency histograms) and the function log lines, sent in batches every half second.
//! Nothing here waits on the invocation path: records go through a bounded channel and are
//! dropped (and counted) when it is full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::{Value, json};
use stratus_host::observe::{Ended, Observer};
use stratus_model::latency::Histogram;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

use crate::managed::Link;

/// Invocations and log lines waiting to be taken into a batch, at most.
const QUEUE: usize = 8_192;
/// How long a batch may take to be sent (the next waits meanwhile; the queue fills and
/// drops rather than the batch growing).
const SEND_WITHIN: Duration = Duration::from_secs(5);
/// Longest error text kept with an invocation.
const ERROR_LIMIT: usize = 2_048;
/// How often a batch goes.
const EVERY: Duration = Duration::from_millis(500);
/// Invocations recorded one by one per second (failed ones have as many again).
const RECORDS_PER_SECOND: u32 = 100;
/// Log lines sent per second.
const LINES_PER_SECOND: u32 = 500;
/// Longest log line kept.
const LINE_LIMIT: usize = 8 << 10;

/// One thing to report.
#[derive(Debug)]
enum Item {
    Ended {
        function: String,
        trigger: String,
        id: String,
        end_ms: i64,
        duration_us: u64,
        error: Option<String>,
    },
    Line {
        function: String,
        invocation_id: String,
        time_ms: i64,
        level: &'static str,
        message: String,
    },
}

struct Channel {
    tx: mpsc::Sender<Item>,
    rx: Mutex<Option<mpsc::Receiver<Item>>>,
    /// Asks the sender for a last batch, answered once it went (or could not).
    finish: mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    finish_rx: Mutex<Option<mpsc::Receiver<tokio::sync::oneshot::Sender<()>>>>,
    /// Items the full channel refused.
    dropped: AtomicU64,
}

static CHANNEL: OnceLock<Channel> = OnceLock::new();

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn offer(item: Item) {
    if let Some(c) = CHANNEL.get()
        && c.tx.try_send(item).is_err()
    {
        c.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

struct Watch;

impl Observer for Watch {
    fn ended(&self, e: &Ended<'_>) {
        offer(Item::Ended {
            function: e.function.to_string(),
            trigger: e.trigger.to_string(),
            id: e.invocation_id.to_string(),
            end_ms: now_ms(),
            duration_us: e.elapsed.as_micros().min(u128::from(u64::MAX)) as u64,
            error: e.error.map(|t| t.chars().take(ERROR_LIMIT).collect()),
        });
    }
}

/// The log layer that passes function log lines on (`None` unless this process is a
/// worker's host); it also starts watching invocations.
pub fn layer() -> Option<Capture> {
    std::env::var_os(crate::managed::ENV_URL)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let (finish, finish_rx) = mpsc::channel(1);
    let channel = Channel {
        tx,
        rx: Mutex::new(Some(rx)),
        finish,
        finish_rx: Mutex::new(Some(finish_rx)),
        dropped: AtomicU64::new(0),
    };
    if CHANNEL.set(channel).is_err() {
        return None;
    }
    stratus_host::observe::set_observer(Box::new(Watch));
    Some(Capture)
}

/// Captures events on the function log target.
pub struct Capture;

#[derive(Default)]
struct Fields {
    message: String,
    function: String,
    invocation_id: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "function" => self.function = value.to_string(),
            "invocation_id" => self.invocation_id = value.to_string(),
            "error" | "category" => {}
            other => {
                use std::fmt::Write as _;
                let _ = write!(self.message, " {other}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() != stratus_host::logging::FUNCTION_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The host's own `Executing`/`Executed` lines for successful invocations name no
        // function: the record of the invocation stands for them (failures name theirs).
        if fields.function.is_empty()
            && (fields.message.starts_with("Executing '")
                || fields.message.starts_with("Executed '"))
        {
            return;
        }
        let level = match *meta.level() {
            tracing::Level::ERROR => "Error",
            tracing::Level::WARN => "Warning",
            tracing::Level::INFO => "Information",
            tracing::Level::DEBUG => "Debug",
            tracing::Level::TRACE => "Trace",
        };
        let mut message = fields.message;
        if message.len() > LINE_LIMIT {
            let mut cut = LINE_LIMIT;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        offer(Item::Line {
            function: fields.function,
            invocation_id: fields.invocation_id,
            time_ms: now_ms(),
            level,
            message,
        });
    }
}

/// Counts of one function in one minute, since this process started.
#[derive(Default)]
struct Minute {
    count: u64,
    errors: u64,
    histogram: Histogram,
    /// Counted since the last batch took it.
    changed: bool,
}

/// What the next batch carries.
#[derive(Default)]
struct Batch {
    invocations: Vec<Value>,
    logs: Vec<Value>,
    stats: HashMap<(String, i64), Minute>,
    /// Invocations counted but not recorded one by one; lines not sent.
    unrecorded: u64,
    lines_dropped: u64,
}

/// Per-second allowances.
struct Budget {
    second: i64,
    records: u32,
    failures: u32,
    lines: u32,
}

impl Batch {
    fn add(&mut self, item: Item, budget: &mut Budget) {
        let second = now_ms() / 1000;
        if budget.second != second {
            *budget = Budget {
                second,
                records: RECORDS_PER_SECOND,
                failures: RECORDS_PER_SECOND,
                lines: LINES_PER_SECOND,
            };
        }
        match item {
            Item::Ended {
                function,
                trigger,
                id,
                end_ms,
                duration_us,
                error,
            } => {
                let start_ms = end_ms - (duration_us / 1000) as i64;
                let m = self
                    .stats
                    .entry((function.clone(), start_ms - start_ms.rem_euclid(60_000)))
                    .or_default();
                m.count += 1;
                m.errors += u64::from(error.is_some());
                m.histogram.record(duration_us);
                m.changed = true;
                let allowance = if error.is_some() {
                    &mut budget.failures
                } else {
                    &mut budget.records
                };
                if *allowance == 0 {
                    self.unrecorded += 1;
                    return;
                }
                *allowance -= 1;
                if error.is_none() && budget.lines > 0 {
                    budget.lines -= 1;
                    self.logs.push(json!({
                        "function": function,
                        "invocationId": id,
                        "time": end_ms,
                        "level": "Information",
                        "message": format!(
                            "Executed 'Functions.{function}' (Succeeded, Id={id}, Duration={}ms)",
                            duration_us / 1000
                        ),
                    }));
                }
                self.invocations.push(json!({
                    "id": id,
                    "function": function,
                    "trigger": trigger,
                    "start": start_ms,
                    "durationUs": duration_us,
                    "error": error,
                }));
            }
            Item::Line {
                function,
                invocation_id,
                time_ms,
                level,
                message,
            } => {
                if budget.lines == 0 {
                    self.lines_dropped += 1;
                    return;
                }
                budget.lines -= 1;
                self.logs.push(json!({
                    "function": function,
                    "invocationId": invocation_id,
                    "time": time_ms,
                    "level": level,
                    "message": message,
                }));
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.invocations.is_empty()
            && self.logs.is_empty()
            && !self.stats.values().any(|m| m.changed)
            && self.unrecorded == 0
            && self.lines_dropped == 0
    }

    fn body(&mut self, dropped: u64) -> Value {
        if self.lines_dropped + dropped > 0 {
            self.logs.push(json!({
                "function": "",
                "invocationId": "",
                "time": now_ms(),
                "level": "Warning",
                "message": format!(
                    "{} log lines were not reported (more than {LINES_PER_SECOND} a second), and {} lines or invocations (the host had more to report than it could send)",
                    self.lines_dropped, dropped
                ),
            }));
        }
        // Each changed minute's totals so far (they replace what was sent of it before);
        // minutes that can no longer change are forgotten once sent.
        let recent = now_ms() - 2 * 60_000;
        let mut stats = Vec::new();
        for ((function, minute), m) in &mut self.stats {
            if m.changed {
                m.changed = false;
                stats.push(json!({
                    "function": function,
                    "minute": minute,
                    "count": m.count,
                    "errors": m.errors,
                    "histogram": m.histogram.counts(),
                }));
            }
        }
        self.stats
            .retain(|(_, minute), m| m.changed || *minute >= recent);
        let body = json!({
            "host": host_id(),
            "version": std::env::var(crate::managed::ENV_VERSION).ok().and_then(|v| v.parse::<i64>().ok()),
            "invocations": std::mem::take(&mut self.invocations),
            "logs": std::mem::take(&mut self.logs),
            "stats": stats,
            "unrecorded": self.unrecorded,
        });
        self.unrecorded = 0;
        self.lines_dropped = 0;
        body
    }
}

/// Sends what is left, once, when the host stops (waiting at most `within`); nothing when
/// this process reports nothing.
pub async fn finish(within: Duration) {
    let Some(c) = CHANNEL.get() else {
        return;
    };
    let (done, wait) = tokio::sync::oneshot::channel();
    if c.finish.try_send(done).is_ok() {
        let _ = tokio::time::timeout(within, wait).await;
    }
}

/// This host process's id in what it reports (its statistics rows are its own).
fn host_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Sends what the layer and the observer gather to the management role, every half second,
/// until the process ends. A batch the management role does not take is dropped (the
/// next one carries on), so a lost link never holds memory.
pub fn spawn(link: Arc<Link>) {
    let Some(channel) = CHANNEL.get() else {
        return;
    };
    let Some(mut rx) = channel.rx.lock().take() else {
        return;
    };
    let Some(mut finish) = channel.finish_rx.lock().take() else {
        return;
    };
    tokio::spawn(async move {
        let mut budget = Budget {
            second: 0,
            records: 0,
            failures: 0,
            lines: 0,
        };
        let mut batch = Batch::default();
        let mut sending: Option<tokio::task::JoinHandle<()>> = None;
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                item = rx.recv() => match item {
                    Some(item) => batch.add(item, &mut budget),
                    None => break,
                },
                done = finish.recv() => {
                    // The host is stopping: what is queued, then one last batch.
                    while let Ok(item) = rx.try_recv() {
                        batch.add(item, &mut budget);
                    }
                    if let Some(s) = sending.take() {
                        let _ = s.await;
                    }
                    let dropped = channel.dropped.swap(0, Ordering::Relaxed);
                    if !batch.is_empty() || dropped > 0 {
                        let body = batch.body(dropped);
                        let _ = tokio::time::timeout(SEND_WITHIN, link.report(&body)).await;
                    }
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    break;
                }
                _ = tick.tick() => {
                    if sending.as_ref().is_some_and(|s| !s.is_finished()) {
                        continue;
                    }
                    let dropped = channel.dropped.swap(0, Ordering::Relaxed);
                    if batch.is_empty() && dropped == 0 {
                        continue;
                    }
                    let body = batch.body(dropped);
                    let link = link.clone();
                    sending = Some(tokio::spawn(async move {
                        match tokio::time::timeout(SEND_WITHIN, link.report(&body)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::warn!("invocations and logs not reported: {e}"),
                            Err(_) => tracing::warn!("invocations and logs not reported within {} s", SEND_WITHIN.as_secs()),
                        }
                    }));
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(error: Option<&str>) -> Item {
        Item::Ended {
            function: "hello".into(),
            trigger: "httpTrigger".into(),
            id: "id".into(),
            end_ms: now_ms(),
            duration_us: 1500,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn records_are_capped_per_second_but_all_are_counted() {
        let mut batch = Batch::default();
        let mut budget = Budget {
            second: 0,
            records: 0,
            failures: 0,
            lines: 0,
        };
        for _ in 0..(RECORDS_PER_SECOND + 10) {
            batch.add(ended(None), &mut budget);
        }
        batch.add(ended(Some("boom")), &mut budget);
        // (The second may turn over once during the loop: at most twice the cap.)
        assert!(batch.invocations.len() as u32 >= RECORDS_PER_SECOND);
        assert!(batch.invocations.iter().any(|i| i["error"] == "boom"));
        let body = batch.body(3);
        let stats = body["stats"].as_array().unwrap();
        let count: u64 = stats.iter().map(|s| s["count"].as_u64().unwrap()).sum();
        let errors: u64 = stats.iter().map(|s| s["errors"].as_u64().unwrap()).sum();
        assert_eq!((count, errors), (u64::from(RECORDS_PER_SECOND) + 11, 1));
        let last = body["logs"].as_array().unwrap().last().unwrap().clone();
        assert!(
            last["message"]
                .as_str()
                .unwrap()
                .contains("and 3 lines or invocations"),
            "{last}"
        );
        assert!(batch.is_empty());
        // The minute's totals go again, whole, when it changes.
        batch.add(ended(None), &mut budget);
        let again = batch.body(0);
        let count: u64 = again["stats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_u64().unwrap())
            .sum();
        assert_eq!(count, u64::from(RECORDS_PER_SECOND) + 12);
    }
}
