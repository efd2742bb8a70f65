//! Output bindings other than `http`: what a function declares (parsed when it loads) and
//! how its output values reach their target once the invocation succeeded (`queue` writes
//! one message per value into the built-in queue service).

pub mod expr;

use std::sync::Arc;

use crate::queues::{QueueError, QueueStore};
use base64::Engine as _;
use serde_json::{Map, Value};
use stratus_model::function_json::Direction;
use stratus_model::{AppSettings, FunctionConfig};

use crate::clock::Clock;
use crate::triggers::queue::QueueSignals;
use expr::{BindContext, Template};

/// Output values of an HTTP-triggered invocation by binding name, carried to the front
/// (which writes them before answering) in the response's extensions.
#[derive(Debug, Clone, Default)]
pub struct OutputValues(pub Map<String, Value>);

/// A `queue` output binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOutput {
    /// The binding's name (`$return` for the return value).
    pub name: String,
    pub queue: Template,
}

/// An output binding the host writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputBinding {
    Queue(QueueOutput),
}

fn text<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.as_str())
}

/// The output bindings of a function the host writes (`%Setting%` resolved, expressions
/// parsed); errors name the file and the binding's path.
pub fn outputs_of(
    file: &str,
    fc: &FunctionConfig,
    settings: &AppSettings,
) -> Result<Vec<OutputBinding>, String> {
    let mut found = Vec::new();
    for (i, b) in fc.bindings.iter().enumerate() {
        if b.direction == Direction::In || !b.is_type("queue") {
            continue;
        }
        let at = format!("$.bindings[{i}]");
        let Some(name) = text(&b.raw, "queueName") else {
            return Err(format!(
                "{file}: {at}.queueName: expected the queue's name, found nothing"
            ));
        };
        let name = settings
            .resolve_names(name)
            .map_err(|e| format!("{file}: {at}.queueName: {e}"))?;
        let queue = Template::parse(&name).map_err(|e| format!("{file}: {at}.queueName: {e}"))?;
        if let Some(constant) = queue.constant() {
            valid_queue_name(&constant.to_ascii_lowercase())
                .map_err(|e| format!("{file}: {at}.queueName: {e}"))?;
        }
        found.push(OutputBinding::Queue(QueueOutput {
            name: b.name.clone(),
            queue,
        }));
    }
    Ok(found)
}

/// Azure's queue naming rules: 3 to 63 lower-case letters, digits and single hyphens, not
/// starting or ending with a hyphen.
pub fn valid_queue_name(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not a valid queue name: expected 3 to 63 lower-case letters, digits and single hyphens, \
             starting and ending with a letter or digit"
        ))
    }
}

/// The messages an output value stands for: one per array element (also of a string that
/// holds a JSON array, as the host splits it), strings as they are, other values as JSON;
/// `null` writes nothing.
pub fn messages_of(value: &Value) -> Vec<String> {
    fn one(v: &Value) -> Option<String> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
    match value {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        Value::String(s) if s.trim_start().starts_with('[') => {
            match serde_json::from_str::<Vec<Value>>(s) {
                Ok(items) => items.iter().filter_map(one).collect(),
                Err(_) => vec![s.clone()],
            }
        }
        v => one(v).into_iter().collect(),
    }
}

/// Writes output values to their targets.
#[derive(Debug, Clone)]
pub struct OutputSink {
    pub queues: Arc<dyn QueueStore>,
    pub account: String,
    /// Messages are base64-encoded (`messageEncoding`, as the queue trigger reads them).
    pub base64: bool,
    pub clock: Arc<dyn Clock>,
    /// Wakes this process's listeners of the queues written to.
    pub signals: QueueSignals,
}

impl OutputSink {
    /// Writes the outputs of a successful invocation of `function` whose declared output
    /// bindings are `bindings`; `data` is the binding data for expressions.
    pub async fn flush(
        &self,
        function: &str,
        bindings: &[OutputBinding],
        outputs: &Map<String, Value>,
        data: &Map<String, Value>,
    ) -> Result<(), String> {
        for binding in bindings {
            let OutputBinding::Queue(q) = binding;
            let Some(value) = outputs.get(&q.name).or_else(|| {
                outputs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&q.name))
                    .map(|(_, v)| v)
            }) else {
                continue;
            };
            let messages = messages_of(value);
            if messages.is_empty() {
                continue;
            }
            let cx = BindContext {
                now: self.clock.now(),
                method: function,
            };
            let queue = q
                .queue
                .bind(data, cx)
                .map_err(|e| format!("output binding '{}': queueName: {e}", q.name))?
                .to_ascii_lowercase();
            valid_queue_name(&queue).map_err(|e| format!("output binding '{}': {e}", q.name))?;
            self.put(&queue, &messages)
                .await
                .map_err(|e| format!("output binding '{}': queue '{queue}': {e}", q.name))?;
        }
        Ok(())
    }

    /// Puts messages into `queue`, creating it when it does not exist.
    pub async fn put(&self, queue: &str, messages: &[String]) -> Result<(), QueueError> {
        let encoded: Vec<String>;
        let texts: Vec<&str> = if self.base64 {
            encoded = messages
                .iter()
                .map(|m| base64::engine::general_purpose::STANDARD.encode(m))
                .collect();
            encoded.iter().map(String::as_str).collect()
        } else {
            messages.iter().map(String::as_str).collect()
        };
        let now = self.clock.now().timestamp_millis();
        let put = self
            .queues
            .put_many(&self.account, queue, &texts, now)
            .await;
        match put {
            Err(QueueError::QueueNotFound) => {
                self.queues.create_queue(&self.account, queue).await?;
                self.queues
                    .put_many(&self.account, queue, &texts, now)
                    .await?;
            }
            other => {
                other?;
            }
        }
        self.signals.notify(queue);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_become_messages() {
        assert_eq!(messages_of(&json!("a")), vec!["a"]);
        assert_eq!(
            messages_of(&json!(["a", {"b": 1}, null, 2])),
            vec!["a", "{\"b\":1}", "2"]
        );
        assert_eq!(messages_of(&json!({"k": [1]})), vec!["{\"k\":[1]}"]);
        assert!(messages_of(&Value::Null).is_empty());
        assert_eq!(messages_of(&json!("[1, \"a\"]")), vec!["1", "a"]);
        assert_eq!(messages_of(&json!("[not json")), vec!["[not json"]);
    }

    #[test]
    fn queue_names() {
        assert!(valid_queue_name("jobs").is_ok());
        assert!(valid_queue_name("jobs-poison-2").is_ok());
        for bad in [
            "ab",
            "-jobs",
            "jobs-",
            "a--b",
            "Jobs",
            "jo_bs",
            &"a".repeat(64),
        ] {
            assert!(valid_queue_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn declared_outputs() {
        let doc = json!({"bindings": [
            {"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "in"},
            {"type": "queue", "direction": "out", "name": "out", "queueName": "%Target%-{region}"},
            {"type": "queue", "direction": "out", "name": "$return", "queueName": "done"}
        ]});
        let fc = FunctionConfig::parse("f", "f/function.json", doc).unwrap();
        let settings = AppSettings::from_pairs(&[("Target", "orders")]);
        let outs = outputs_of("f/function.json", &fc, &settings).unwrap();
        assert_eq!(outs.len(), 2);
        let OutputBinding::Queue(q) = &outs[0];
        assert_eq!(q.queue.source, "orders-{region}");
        let doc = json!({"bindings": [
            {"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "in"},
            {"type": "queue", "direction": "out", "name": "out", "queueName": "Bad_Name"}
        ]});
        let fc = FunctionConfig::parse("f", "f/function.json", doc).unwrap();
        let e = outputs_of("f/function.json", &fc, &settings).unwrap_err();
        assert!(
            e.starts_with(
                "f/function.json: $.bindings[1].queueName: \"bad_name\" is not a valid queue name"
            ),
            "{e}"
        );
    }
}
