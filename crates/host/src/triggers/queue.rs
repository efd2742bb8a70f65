//! The queue trigger over the built-in queue service, with the Azure queue extension's
//! semantics: batches, polling back-off, a message deleted only after its function succeeded,
//! released for another try on failure, moved to `<queue>-poison` after `maxDequeueCount`.

use std::sync::Arc;
use std::time::Duration;

use crate::queues::{QueueError, QueueStore};
use base64::Engine as _;
use serde_json::{Map, Value};
use stratus_store::queues::Message;

use std::collections::HashMap;

use super::Invoker;
use crate::app::{App, Function};
use crate::clock::Clock;

/// How long a received message stays invisible while its function runs, by default (the
/// host's 10-minute lease on messages it processes); renewed at half of that.
pub const MESSAGE_LEASE: Duration = Duration::from_secs(600);
/// The shortest wait between polls of an empty queue.
const MIN_POLL: Duration = Duration::from_millis(100);

/// `extensions.queues` of host.json, with the extension's defaults.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    pub batch_size: usize,
    pub new_batch_threshold: usize,
    pub max_polling_interval: Duration,
    pub visibility_timeout: Duration,
    pub max_dequeue_count: i64,
    /// `messageEncoding`: base64 (the default) or none.
    pub base64: bool,
}

fn num(o: &Map<String, Value>, key: &str) -> Option<i64> {
    let (_, v) = o.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))?;
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.as_str())
}

fn span(o: &Map<String, Value>, key: &str) -> Option<Duration> {
    let t = text(o, key)?;
    stratus_model::timespan::parse(t)
        .ok()
        .filter(|t| !t.negative)
        .map(|t| t.duration)
}

impl QueueOptions {
    /// Reads `extensions.queues` from the host.json document.
    pub fn from_app(app: &App) -> QueueOptions {
        let empty = Map::new();
        let q = app
            .config
            .raw
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("extensions")))
            .and_then(|(_, e)| e.as_object())
            .and_then(|e| e.iter().find(|(k, _)| k.eq_ignore_ascii_case("queues")))
            .and_then(|(_, q)| q.as_object())
            .unwrap_or(&empty);
        let batch_size = num(q, "batchSize").unwrap_or(16).clamp(1, 32) as usize;
        QueueOptions {
            batch_size,
            new_batch_threshold: num(q, "newBatchThreshold")
                .map_or(batch_size / 2, |n| n.max(0) as usize),
            max_polling_interval: span(q, "maxPollingInterval").unwrap_or(Duration::from_secs(60)),
            visibility_timeout: span(q, "visibilityTimeout").unwrap_or(Duration::ZERO),
            max_dequeue_count: num(q, "maxDequeueCount").unwrap_or(5).max(1),
            base64: !text(q, "messageEncoding").is_some_and(|e| e.eq_ignore_ascii_case("none")),
        }
    }
}

/// A queue-triggered function, ready to listen.
#[derive(Debug, Clone)]
pub struct QueueFunction {
    pub function: Arc<Function>,
    pub queue: String,
}

/// The queue functions of `app`; the ones whose queue or connection cannot be served are
/// returned with their error (file, field, and what to do).
pub fn queue_functions(app: &App) -> (Vec<QueueFunction>, Vec<(String, String)>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for f in &app.functions {
        let trigger = f.config.trigger_binding();
        if !trigger.is_type("queueTrigger") {
            continue;
        }
        let file = format!("{}/function.json", f.name);
        let at = f.config.trigger_path();
        let Some(name) = text(&trigger.raw, "queueName") else {
            errors.push((
                f.name.clone(),
                format!("{file}: {at}.queueName: expected the queue's name, found nothing"),
            ));
            continue;
        };
        let name = match app.settings.resolve_names(name) {
            Ok(n) => n.to_ascii_lowercase(),
            Err(e) => {
                errors.push((f.name.clone(), format!("{file}: {at}.queueName: {e}")));
                continue;
            }
        };
        let connection = text(&trigger.raw, "connection").unwrap_or("AzureWebJobsStorage");
        let value = app
            .settings
            .get(connection)
            .or_else(|| app.settings.get(&format!("AzureWebJobs{connection}")));
        if let Some(v) = value
            && !v.trim().is_empty()
        {
            let local = stratus_storage_like_is_local(v);
            if !local {
                errors.push((
                    f.name.clone(),
                    format!(
                        "{file}: {at}.connection: the setting \"{connection}\" names an Azure Storage account; \
                         queue triggers on real Azure Storage are not supported yet: use UseDevelopmentStorage=true \
                         (Stratus's own queue service)"
                    ),
                ));
                continue;
            }
        }
        found.push(QueueFunction {
            function: f.clone(),
            queue: name,
        });
    }
    (found, errors)
}

/// Whether a storage connection string points at this machine (development storage).
fn stratus_storage_like_is_local(conn: &str) -> bool {
    let lower = conn.to_ascii_lowercase();
    if lower.contains("usedevelopmentstorage=true") {
        return true;
    }
    let endpoint = conn
        .split(';')
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("QueueEndpoint")
                .then(|| v.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    endpoint.contains("://127.0.0.1")
        || endpoint.contains("://localhost")
        || endpoint.contains("://[::1]")
}

/// Wakes the listeners of a queue in this process when something here writes to it (an
/// output binding), so they need not wait for their next poll.
#[derive(Debug, Clone, Default)]
pub struct QueueSignals(Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Notify>>>>);

impl QueueSignals {
    /// The signal of `queue` (lower-case name).
    pub fn of(&self, queue: &str) -> Arc<tokio::sync::Notify> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(queue.to_string()).or_default().clone()
    }

    /// Messages were written to `queue`.
    pub fn notify(&self, queue: &str) {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get(queue) {
            n.notify_waiters();
        }
    }
}

/// What every queue listener of an app shares.
#[derive(Debug, Clone)]
pub struct QueueContext {
    pub account: String,
    pub queues: Arc<dyn QueueStore>,
    pub invoker: Invoker,
    pub signals: QueueSignals,
    pub clock: Arc<dyn Clock>,
    pub options: QueueOptions,
    /// How long a message being processed stays invisible; renewed while its function runs,
    /// so a process that dies gives its messages back after at most this long.
    pub message_lease: Duration,
}

fn ms(clock: &dyn Clock) -> i64 {
    clock.now().timestamp_millis()
}

fn rfc3339(ms: i64) -> Value {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) if ms != stratus_store::queues::NEVER_EXPIRES => {
            Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string())
        }
        _ => Value::String("9999-12-31T23:59:59+00:00".into()),
    }
}

/// The message as the function sees it (decoded), or why it cannot be decoded.
fn decode(m: &Message, base64: bool) -> Result<String, String> {
    if !base64 {
        return Ok(m.text.clone());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(m.text.trim())
        .map_err(|_| {
            "the message is not valid base64, which the queue trigger expects by default; \
             send base64 (e.g. the Python SDK's TextBase64EncodePolicy) or set \
             extensions.queues.messageEncoding to \"none\" in host.json"
                .to_string()
        })?;
    String::from_utf8(bytes).map_err(|_| "the decoded message is not UTF-8 text".to_string())
}

/// Trigger metadata of a queue message, as the extension's binding data names it.
fn metadata(m: &Message, text: &str) -> Map<String, Value> {
    let mut md = Map::new();
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) {
        for (k, v) in o {
            md.insert(k, v);
        }
    }
    md.insert("QueueTrigger".into(), Value::String(text.to_string()));
    md.insert("DequeueCount".into(), Value::from(m.dequeue_count));
    md.insert("Id".into(), Value::String(m.id.clone()));
    md.insert("PopReceipt".into(), Value::String(m.pop_receipt.clone()));
    md.insert("InsertionTime".into(), rfc3339(m.insertion_ms));
    md.insert("ExpirationTime".into(), rfc3339(m.expiration_ms));
    md.insert("NextVisibleTime".into(), rfc3339(m.next_visible_ms));
    md
}

/// One queue function's listener.
#[derive(Debug)]
pub struct Listener {
    pub target: QueueFunction,
    pub ctx: QueueContext,
}

impl Listener {
    /// Polls until `stop` turns true. A new batch is taken whenever the messages in flight
    /// drop to `newBatchThreshold`, as the extension does; an empty queue is polled with a
    /// back-off up to `maxPollingInterval`.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        use futures_util::StreamExt as _;
        let this = &self;
        let mut running = futures_util::stream::FuturesUnordered::new();
        let mut wait = MIN_POLL;
        // Set when whoever stops the listener is gone (as good as being told to stop).
        let mut stop_now = false;
        let signal = this.ctx.signals.of(&this.target.queue);
        loop {
            if *stop.borrow() {
                // Let the invocations in flight finish (their messages are settled).
                while running.next().await.is_some() {}
                return;
            }
            if running.len() > this.ctx.options.new_batch_threshold {
                tokio::select! {
                    _ = running.next() => {}
                    r = stop.changed() => if r.is_err() { stop_now = true },
                }
                if stop_now {
                    while running.next().await.is_some() {}
                    return;
                }
                continue;
            }
            // Listen before reading, so that a write in between is not missed.
            let written = signal.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            // The invocations in flight keep running while the next batch is read.
            let fetch = this.fetch();
            tokio::pin!(fetch);
            let batch = loop {
                tokio::select! {
                    b = &mut fetch => break b,
                    Some(()) = running.next(), if !running.is_empty() => {}
                }
            };
            if batch.is_empty() {
                let until =
                    this.ctx.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
                tokio::select! {
                    () = this.ctx.clock.sleep_until(until) => {
                        wait = (wait * 2).min(this.ctx.options.max_polling_interval.max(MIN_POLL));
                    }
                    () = &mut written => wait = MIN_POLL,
                    Some(()) = running.next(), if !running.is_empty() => {}
                    r = stop.changed() => if r.is_err() { stop_now = true },
                }
                if stop_now {
                    while running.next().await.is_some() {}
                    return;
                }
                continue;
            }
            wait = MIN_POLL;
            for m in batch {
                running.push(this.process(m));
            }
        }
    }

    /// The next batch of visible messages (none when the queue does not exist yet).
    async fn fetch(&self) -> Vec<Message> {
        let got = self
            .ctx
            .queues
            .get(
                &self.ctx.account,
                &self.target.queue,
                self.ctx.options.batch_size,
                self.ctx.message_lease.as_millis() as i64,
                ms(self.ctx.clock.as_ref()),
            )
            .await;
        match got {
            Ok(b) => b,
            Err(QueueError::QueueNotFound) => Vec::new(),
            Err(e) => {
                tracing::warn!(function = %self.target.function.name, "cannot read queue {}: {e}", self.target.queue);
                Vec::new()
            }
        }
    }

    async fn process(&self, m: Message) {
        let function = self.target.function.clone();
        let mut receipt = m.pop_receipt.clone();
        let opts = &self.ctx.options;
        let outcome = match decode(&m, opts.base64) {
            Ok(text) => {
                let md = metadata(&m, &text);
                let reason = format!("New queue message detected on '{}'.", self.target.queue);
                let invocation =
                    self.ctx
                        .invoker
                        .invoke(function.clone(), Value::String(text), md, &reason);
                tokio::pin!(invocation);
                // Keep the message invisible while the function runs.
                let half =
                    chrono::Duration::from_std(self.ctx.message_lease / 2).unwrap_or_default();
                loop {
                    let renew_at = self.ctx.clock.now() + half;
                    tokio::select! {
                        r = &mut invocation => break r.map(|_| ()).map_err(|e| e.to_string()),
                        () = self.ctx.clock.sleep_until(renew_at) => {
                            let now = ms(self.ctx.clock.as_ref());
                            match self.ctx.queues.update(
                                &self.ctx.account,
                                &self.target.queue,
                                &m.id,
                                &receipt,
                                self.ctx.message_lease.as_millis() as i64,
                                now,
                            ).await {
                                Ok(r) => receipt = r,
                                Err(e) => tracing::warn!(function = %function.name, message_id = %m.id,
                                    "cannot renew the message's visibility: {e}"),
                            }
                        }
                    }
                }
            }
            Err(why) => {
                tracing::error!(function = %function.name, message_id = %m.id, "{why}");
                Err(why)
            }
        };
        let queues = &self.ctx.queues;
        let account = &self.ctx.account;
        let queue = &self.target.queue;
        // Settled with the latest receipt (the lease renewals changed it).
        let result = match outcome {
            Ok(()) => queues.delete(account, queue, &m.id, &receipt).await,
            Err(_) if m.dequeue_count >= opts.max_dequeue_count => {
                let poison = format!("{queue}-poison");
                tracing::warn!(function = %function.name, message_id = %m.id,
                    "Message has reached MaxDequeueCount of {}. Moving message to queue '{poison}'.", opts.max_dequeue_count);
                let now = ms(self.ctx.clock.as_ref());
                let _ = queues.create_queue(account, &poison).await;
                match queues
                    .put_many(account, &poison, &[m.text.as_str()], now)
                    .await
                {
                    Ok(()) => queues.delete(account, queue, &m.id, &receipt).await,
                    Err(e) => Err(e),
                }
            }
            Err(_) => {
                let now = ms(self.ctx.clock.as_ref());
                queues
                    .update(
                        account,
                        queue,
                        &m.id,
                        &receipt,
                        opts.visibility_timeout.as_millis() as i64,
                        now,
                    )
                    .await
                    .map(|_| ())
            }
        };
        if let Err(e) = result {
            tracing::warn!(function = %function.name, message_id = %m.id, "cannot settle the queue message: {e}");
        }
    }
}

/// Starts a listener per queue function; they stop when `stop` turns true.
pub fn start(
    targets: Vec<QueueFunction>,
    ctx: &QueueContext,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    targets
        .into_iter()
        .map(|target| {
            let listener = Listener {
                target,
                ctx: ctx.clone(),
            };
            tokio::spawn(listener.run(stop.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_decode_as_configured() {
        let m = Message {
            id: "i".into(),
            pop_receipt: "p".into(),
            text: "aGVsbG8=".into(),
            insertion_ms: 0,
            expiration_ms: stratus_store::queues::NEVER_EXPIRES,
            next_visible_ms: 0,
            dequeue_count: 1,
        };
        assert_eq!(decode(&m, true).unwrap(), "hello");
        assert_eq!(decode(&m, false).unwrap(), "aGVsbG8=");
        let plain = Message {
            text: "not base64!".into(),
            ..m.clone()
        };
        assert!(
            decode(&plain, true)
                .unwrap_err()
                .contains("messageEncoding")
        );
        let md = metadata(&m, "{\"job\":7}");
        assert_eq!(md["job"], 7);
        assert_eq!(md["DequeueCount"], 1);
        assert_eq!(md["ExpirationTime"], "9999-12-31T23:59:59+00:00");
        assert!(stratus_storage_like_is_local("UseDevelopmentStorage=true"));
        assert!(!stratus_storage_like_is_local(
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k;EndpointSuffix=core.windows.net"
        ));
    }
}
