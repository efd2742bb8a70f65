//! Non-HTTP triggers: the invocation pipeline they share (logs, `functionTimeout`, the
//! executor), timers, and the state they keep (`state`).

pub mod queue;
pub mod state;
pub mod timer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::app::Function;
use crate::executor::{Executor, InvokeError, TriggerCall, TriggerOutcome};
use crate::logging;

/// Runs one non-HTTP invocation: `Executing`/`Executed` logs with `reason`, `functionTimeout`
/// (the process that ran it is restarted, as for HTTP), then the executor.
pub async fn invoke(
    executor: &Arc<dyn Executor>,
    timeout: Option<Duration>,
    function: Arc<Function>,
    value: serde_json::Value,
    metadata: serde_json::Map<String, serde_json::Value>,
    reason: &str,
) -> Result<TriggerOutcome, InvokeError> {
    let invocation_id = uuid::Uuid::new_v4();
    logging::executing(&function, invocation_id, reason);
    let started = Instant::now();
    let dispatched = Arc::new(AtomicU64::new(0));
    let call = TriggerCall {
        function: function.clone(),
        invocation_id,
        value,
        metadata,
        dispatched: dispatched.clone(),
    };
    let work = executor.call(call);
    let outcome = match timeout {
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(r) => r,
            Err(_) => {
                logging::timed_out(&function, invocation_id, limit);
                executor.timed_out(&function, invocation_id, dispatched.load(Ordering::Acquire));
                Err(InvokeError::Failed(format!(
                    "Timeout value of {} was exceeded by function: {}",
                    logging::timespan(limit),
                    function.short_name
                )))
            }
        },
        None => work.await,
    };
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
