//! What the supervisors of function processes (custom handlers, language workers) share:
//! the requests they take, and the back-off between restarts.

use std::time::Duration;

use tokio::sync::oneshot;

/// Requests to a process supervisor.
#[derive(Debug)]
pub enum Control {
    /// Kill and start again, if the process of `generation` still runs.
    Restart { reason: String, generation: u64 },
    /// Stop for good; answered once the process is gone.
    Stop(oneshot::Sender<()>),
}

impl Control {
    /// The restart after a function timeout, with the Azure host's message.
    pub fn timeout_restart(invocation_id: uuid::Uuid, generation: u64) -> Control {
        Control::Restart {
            reason: format!(
                "A function timeout has occurred. Restarting worker process executing invocationId '{invocation_id}'."
            ),
            generation,
        }
    }
}

/// Back-off between restarts: doubles from 100 ms up to 10 s.
pub fn backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.min(7));
    Duration::from_millis(ms.min(10_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(20), Duration::from_secs(10));
    }
}
