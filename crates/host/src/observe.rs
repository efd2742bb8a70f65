//! Who watches the host's invocations: an observer set once when the process starts (none by
//! default; then an invocation costs one atomic load here). It sees each invocation as it
//! ends, on the invocation's own task, so it must only hand the record on.

use std::sync::OnceLock;
use std::time::Duration;

use uuid::Uuid;

use crate::app::Function;

/// One invocation that has ended.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    pub function: &'a str,
    /// The trigger binding's `type` (`httpTrigger`, `timerTrigger`, ...).
    pub trigger: &'a str,
    pub invocation_id: Uuid,
    pub elapsed: Duration,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<&'a str>,
}

/// Receives ended invocations.
pub trait Observer: Send + Sync {
    fn ended(&self, invocation: &Ended<'_>);
}

static OBSERVER: OnceLock<Box<dyn Observer>> = OnceLock::new();

/// Sets the process's observer; false when one was already set.
pub fn set_observer(observer: Box<dyn Observer>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Tells the observer, if any, that an invocation of `f` ended.
pub(crate) fn ended(f: &Function, invocation_id: Uuid, elapsed: Duration, error: Option<&str>) {
    if let Some(o) = OBSERVER.get() {
        o.ended(&Ended {
            function: &f.name,
            trigger: &f.config.trigger_binding().type_name,
            invocation_id,
            elapsed,
            error,
        });
    }
}
