//! Function logs: the host's invocation messages and the function's own output, on the
//! `stratus::function` target, filtered by host.json `logging.logLevel`.

use std::time::Duration;

use stratus_model::LogLevel;
use uuid::Uuid;

use crate::app::Function;

/// Target of every function log line (so they can be filtered and routed apart).
pub const FUNCTION_TARGET: &str = "stratus::function";

/// Reason the host gives for HTTP-triggered invocations.
pub const HTTP_REASON: &str = "This function was programmatically called via the host APIs.";

fn enabled(min: LogLevel, level: LogLevel) -> bool {
    min != LogLevel::None && level >= min
}

thread_local! {
    /// Where the invocation lines are put together: they are written for every invocation,
    /// so from plain pieces into a reused buffer rather than through the formatting machinery.
    static LINE: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(160));
}

/// Builds a line in the thread's buffer and hands it to `emit`.
fn with_line(build: impl FnOnce(&mut String), emit: impl FnOnce(&str)) {
    LINE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut line) => {
            line.clear();
            build(&mut line);
            emit(&line);
        }
        // Only if a subscriber logged an invocation line while writing one.
        Err(_) => {
            let mut line = String::new();
            build(&mut line);
            emit(&line);
        }
    });
}

fn push_id(line: &mut String, id: Uuid) {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    line.push_str(id.hyphenated().encode_lower(&mut text));
}

/// `Executing 'Functions.X' (Reason='...', Id=...)`.
pub fn executing(f: &Function, id: Uuid, reason: &str) {
    if enabled(f.invocation_log_level, LogLevel::Information) {
        with_line(
            |line| {
                line.push_str("Executing '");
                line.push_str(&f.short_name);
                line.push_str("' (Reason='");
                line.push_str(reason);
                line.push_str("', Id=");
                push_id(line, id);
                line.push(')');
            },
            |line| tracing::info!(target: FUNCTION_TARGET, "{line}"),
        );
    }
}

/// `Executed 'Functions.X' (Succeeded|Failed, Id=..., Duration=Nms)`.
/// The invocation's observer (`observe`) is told as well, whatever the log level.
pub fn executed(f: &Function, id: Uuid, elapsed: Duration, error: Option<&str>) {
    crate::observe::ended(f, id, elapsed, error);
    let ms = elapsed.as_millis();
    match error {
        None => {
            if enabled(f.invocation_log_level, LogLevel::Information) {
                with_line(
                    |line| {
                        use std::fmt::Write as _;
                        line.push_str("Executed '");
                        line.push_str(&f.short_name);
                        line.push_str("' (Succeeded, Id=");
                        push_id(line, id);
                        let _ = write!(line, ", Duration={ms}ms)");
                    },
                    |line| tracing::info!(target: FUNCTION_TARGET, "{line}"),
                );
            }
        }
        Some(e) => {
            if enabled(f.invocation_log_level, LogLevel::Error) {
                tracing::error!(target: FUNCTION_TARGET, function = %f.name, invocation_id = %id, error = %e,
                    "Executed '{}' (Failed, Id={id}, Duration={ms}ms)", f.short_name);
            }
        }
    }
}

/// A line the function logged itself (custom-handler `Logs`).
pub fn user_log(f: &Function, id: Uuid, line: &str) {
    if enabled(f.user_log_level, LogLevel::Information) {
        tracing::info!(target: FUNCTION_TARGET, function = %f.name, invocation_id = %id, "{line}");
    }
}

/// A line logged by function code in a language worker, at its own level.
pub fn worker_log(f: &Function, id: Uuid, level: LogLevel, line: &str) {
    if !enabled(f.user_log_level, level) {
        return;
    }
    let name = &f.name;
    match level {
        LogLevel::Trace => {
            tracing::trace!(target: FUNCTION_TARGET, function = %name, invocation_id = %id, "{line}")
        }
        LogLevel::Debug => {
            tracing::debug!(target: FUNCTION_TARGET, function = %name, invocation_id = %id, "{line}")
        }
        LogLevel::Information => {
            tracing::info!(target: FUNCTION_TARGET, function = %name, invocation_id = %id, "{line}")
        }
        LogLevel::Warning => {
            tracing::warn!(target: FUNCTION_TARGET, function = %name, invocation_id = %id, "{line}")
        }
        LogLevel::Error | LogLevel::Critical => {
            tracing::error!(target: FUNCTION_TARGET, function = %name, invocation_id = %id, "{line}")
        }
        LogLevel::None => {}
    }
}

/// The invocation ran past `functionTimeout`.
pub fn timed_out(f: &Function, id: Uuid, timeout: Duration) {
    tracing::error!(target: FUNCTION_TARGET, function = %f.name, invocation_id = %id,
        "Timeout value of {} exceeded by function '{}' (Id: '{id}'). Initiating cancellation.",
        timespan(timeout), f.short_name);
}

/// A duration as a .NET `TimeSpan` string (`00:05:00`).
pub fn timespan(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86_400, (s / 3_600) % 24, (s / 60) % 60, s % 60);
    let frac = d.subsec_nanos();
    let mut out = if days > 0 {
        format!("{days}.{h:02}:{m:02}:{sec:02}")
    } else {
        format!("{h:02}:{m:02}:{sec:02}")
    };
    if frac > 0 {
        out.push_str(&format!(".{:07}", frac / 100));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_lines_read_as_the_host_writes_them() {
        let mut got = Vec::new();
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        for _ in 0..2 {
            with_line(
                |line| {
                    line.push_str("Executed 'Functions.hello' (Succeeded, Id=");
                    push_id(line, id);
                },
                |line| got.push(line.to_string()),
            );
        }
        assert_eq!(
            got,
            vec![
                "Executed 'Functions.hello' (Succeeded, Id=01234567-89ab-cdef-0123-456789abcdef";
                2
            ]
        );
    }

    #[test]
    fn timespans() {
        assert_eq!(timespan(Duration::from_secs(300)), "00:05:00");
        assert_eq!(timespan(Duration::from_secs(90_061)), "1.01:01:01");
        assert_eq!(timespan(Duration::from_millis(1500)), "00:00:01.5000000");
    }
}
