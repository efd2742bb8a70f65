//! Non-HTTP triggers: the invocation pipeline they share (logs, `functionTimeout`, retry
//! policies, output bindings, the executor), timers, queues, and the state they keep.

pub mod queue;
pub mod retry;
pub mod state;
pub mod timer;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::app::Function;
use crate::bindings::OutputSink;
use crate::clock::Clock;
use crate::executor::{Executor, InvokeError, RetryContext, TriggerCall, TriggerOutcome};
use crate::logging;

/// Runs non-HTTP invocations of an app's functions.
#[derive(Debug, Clone)]
pub struct Invoker {
    pub executor: Arc<dyn Executor>,
    /// `functionTimeout`, per attempt.
    pub timeout: Option<Duration>,
    /// Where output bindings are written; None when the app has no store.
    pub outputs: Option<Arc<OutputSink>>,
    /// Paces retries.
    pub clock: Arc<dyn Clock>,
}

impl Invoker {
    /// Runs `function` with the trigger's `value` and `metadata`, retrying as its retry
    /// policy says (each attempt is an invocation of its own, with a `RetryContext`).
    pub async fn invoke(
        &self,
        function: Arc<Function>,
        value: Value,
        metadata: Map<String, Value>,
        reason: &str,
    ) -> Result<TriggerOutcome, InvokeError> {
        self.invoke_as(uuid::Uuid::new_v4(), function, value, metadata, reason)
            .await
    }

    /// `invoke`, the first attempt with invocation id `first` (later attempts get ids of
    /// their own).
    pub async fn invoke_as(
        &self,
        first: uuid::Uuid,
        function: Arc<Function>,
        value: Value,
        metadata: Map<String, Value>,
        reason: &str,
    ) -> Result<TriggerOutcome, InvokeError> {
        let Some(policy) = function.retry.clone() else {
            return self
                .attempt(first, function, value, metadata, reason, None)
                .await;
        };
        let max = policy.max_retry_count.map_or(-1, i64::from);
        let mut retry = RetryContext {
            retry_count: 0,
            max_retry_count: max,
            exception: None,
        };
        loop {
            let id = if retry.retry_count == 0 {
                first
            } else {
                uuid::Uuid::new_v4()
            };
            let outcome = self
                .attempt(
                    id,
                    function.clone(),
                    value.clone(),
                    metadata.clone(),
                    reason,
                    Some(retry.clone()),
                )
                .await;
            let error = match outcome {
                Ok(o) => return Ok(o),
                Err(e) => e,
            };
            let count = retry.retry_count;
            if policy.max_retry_count.is_some_and(|m| count >= m) {
                if count > 0 {
                    tracing::error!(
                        target: "Host.Executor",
                        function = %function.name,
                        "Function execution failed after '{count}' retries."
                    );
                }
                return Err(error);
            }
            let delay = retry::delay(&policy.strategy, count + 1);
            tracing::debug!(
                target: "Host.Executor",
                function = %function.name,
                "Waiting for `{}` before retrying function execution. Next attempt: '{}'. Max retry count: '{}'",
                logging::timespan(delay),
                count + 1,
                max
            );
            // (Delays are capped at a year.)
            let step = chrono::Duration::from_std(delay)
                .unwrap_or(chrono::Duration::days(365))
                .min(chrono::Duration::days(365));
            let until = self.clock.now() + step;
            self.clock.sleep_until(until).await;
            retry.retry_count = count + 1;
            retry.exception = Some(error.to_string());
        }
    }

    /// One invocation: `Executing`/`Executed` logs with `reason`, `functionTimeout` (the
    /// process that ran it is restarted, as for HTTP), the executor, then the output
    /// bindings (an output that cannot be written fails the invocation).
    async fn attempt(
        &self,
        invocation_id: uuid::Uuid,
        function: Arc<Function>,
        value: Value,
        metadata: Map<String, Value>,
        reason: &str,
        retry: Option<RetryContext>,
    ) -> Result<TriggerOutcome, InvokeError> {
        logging::executing(&function, invocation_id, reason);
        let started = Instant::now();
        let dispatched = Arc::new(AtomicU64::new(0));
        // Expressions in output bindings may name trigger metadata.
        let data = (!function.outputs.is_empty()).then(|| metadata.clone());
        let call = TriggerCall {
            function: function.clone(),
            invocation_id,
            value,
            metadata,
            retry,
            dispatched: dispatched.clone(),
        };
        let executor = &self.executor;
        let work = async {
            let outcome = executor.call(call).await?;
            if let Some(data) = data {
                self.flush(&function, &outcome.outputs, &data).await?;
            }
            Ok(outcome)
        };
        let outcome = crate::executor::within_timeout(
            executor.as_ref(),
            &function,
            invocation_id,
            &dispatched,
            self.timeout.map(|t| (t, tokio::time::Instant::now() + t)),
            work,
        )
        .await;
        let error = match &outcome {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        logging::executed(
            &function,
            invocation_id,
            started.elapsed(),
            error.as_deref(),
        );
        outcome
    }

    /// Writes the output bindings of a successful invocation.
    pub async fn flush(
        &self,
        function: &Function,
        outputs: &Map<String, Value>,
        data: &Map<String, Value>,
    ) -> Result<(), InvokeError> {
        flush(self.outputs.as_deref(), function, outputs, data).await
    }
}

/// Writes the output bindings of a successful invocation of `function` through `sink`.
pub async fn flush(
    sink: Option<&OutputSink>,
    function: &Function,
    outputs: &Map<String, Value>,
    data: &Map<String, Value>,
) -> Result<(), InvokeError> {
    if function.outputs.is_empty() {
        return Ok(());
    }
    let Some(sink) = sink else {
        return Err(InvokeError::Failed(
            "the function has queue output bindings, but no queue store is open".into(),
        ));
    };
    sink.flush(&function.name, &function.outputs, outputs, data)
        .await
        .map_err(InvokeError::Failed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use parking_lot::Mutex;
    use stratus_model::{RetryPolicy, RetryStrategy};

    use super::*;
    use crate::clock::ManualClock;

    /// The retry context of each call so far.
    type Seen = Arc<Mutex<Vec<Option<RetryContext>>>>;

    fn function(retry: Option<RetryPolicy>) -> Arc<Function> {
        let mut f = crate::test_support::function(
            "work",
            serde_json::json!([{"type":"queueTrigger","name":"msg","direction":"in","queueName":"q"}]),
        );
        f.retry = retry;
        Arc::new(f)
    }

    /// An invoker whose executor fails the first `failures` calls, recording each call's
    /// retry context.
    fn rig(failures: usize) -> (Seen, ManualClock, Invoker) {
        let seen = Seen::default();
        let record = seen.clone();
        let executor = crate::test_support::FnExecutor(move |call: TriggerCall| {
            let mut seen = record.lock();
            seen.push(call.retry);
            if seen.len() <= failures {
                Err(InvokeError::Failed(format!("failure {}", seen.len())))
            } else {
                Ok(TriggerOutcome::default())
            }
        });
        let clock = ManualClock::new(chrono::Utc::now());
        let invoker = Invoker {
            executor: Arc::new(executor),
            timeout: None,
            outputs: None,
            clock: Arc::new(clock.clone()),
        };
        (seen, clock, invoker)
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn retries_wait_on_the_clock_and_carry_their_context() {
        let (seen, clock, invoker) = rig(2);
        let policy = RetryPolicy {
            strategy: RetryStrategy::ExponentialBackoff {
                minimum: Duration::from_secs(10),
                maximum: Duration::from_secs(60),
            },
            max_retry_count: Some(3),
        };
        let run = tokio::spawn(async move {
            invoker
                .invoke(function(Some(policy)), Value::Null, Map::new(), "test")
                .await
        });
        settle().await;
        assert_eq!(seen.lock().len(), 1);
        clock.advance(chrono::Duration::seconds(9));
        settle().await;
        assert_eq!(seen.lock().len(), 1, "the first retry waits 10 s");
        clock.advance(chrono::Duration::seconds(1));
        settle().await;
        assert_eq!(seen.lock().len(), 2);
        clock.advance(chrono::Duration::seconds(20));
        assert!(run.await.unwrap().is_ok());
        let seen = seen.lock();
        assert_eq!(seen.len(), 3);
        let contexts: Vec<_> = seen.iter().map(|c| c.clone().unwrap()).collect();
        assert_eq!(
            (contexts[0].retry_count, contexts[0].max_retry_count),
            (0, 3)
        );
        assert_eq!(contexts[0].exception, None);
        assert_eq!(contexts[2].retry_count, 2);
        assert_eq!(contexts[2].exception.as_deref(), Some("failure 2"));
    }

    #[tokio::test]
    async fn without_a_policy_one_attempt_and_no_context() {
        let (seen, _clock, invoker) = rig(5);
        let r = invoker
            .invoke(function(None), Value::Null, Map::new(), "test")
            .await;
        assert!(r.is_err());
        assert_eq!(*seen.lock(), vec![None]);
        let (seen, _clock, invoker) = rig(5);
        let policy = RetryPolicy {
            strategy: RetryStrategy::FixedDelay {
                delay: Duration::ZERO,
            },
            max_retry_count: Some(2),
        };
        let r = invoker
            .invoke(function(Some(policy)), Value::Null, Map::new(), "test")
            .await;
        assert_eq!(r.unwrap_err().to_string(), "failure 3");
        assert_eq!(seen.lock().len(), 3, "1 + maxRetryCount attempts");
    }
}
