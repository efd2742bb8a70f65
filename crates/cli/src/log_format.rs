//! The plain log line format: `2026-01-02T03:04:05.123456Z  INFO message key=value`.
//!
//! Written for the request path: the message is formatted once into a per-thread buffer, and
//! control characters (which could forge or hide terminal output) are escaped only when the
//! line has any, instead of character by character.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter for `log_format = plain`.
#[derive(Debug, Default)]
pub struct PlainFormat;

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
    static MINUTE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ` for `now`.
fn timestamp(out: &mut String, now: SystemTime) {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let minute = secs / 60;
    MINUTE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != minute {
            let (y, m, day) = civil((secs / 86_400) as i64);
            let (h, min) = ((secs / 3600) % 24, (secs / 60) % 60);
            cell.1 = format!("{y:04}-{m:02}-{day:02}T{h:02}:{min:02}:");
            cell.0 = minute;
        }
        out.push_str(&cell.1);
    });
    // `SS.ffffffZ` by hand: this runs for every line.
    let mut tail = *b"00.000000Z";
    let (sec, mut micros) = ((secs % 60) as u8, d.subsec_micros());
    tail[0] = b'0' + sec / 10;
    tail[1] = b'0' + sec % 10;
    for digit in tail[3..9].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    out.push_str(std::str::from_utf8(&tail).unwrap_or("00.000000Z"));
}

/// Whether `text` has control characters other than tab (C0, DEL, or C1, which UTF-8 spells
/// 0xC2 0x80..=0x9F).
fn needs_escaping(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        (b < 0x20 && b != b'\t')
            || b == 0x7f
            || (b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
    })
}

/// Appends `text`, escaping control characters other than tab.
fn push_clean(out: &mut String, text: &str) {
    if !needs_escaping(text) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if (c.is_control() && c != '\t') || c == '\u{7f}' {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
}

struct Fields<'a> {
    out: &'a mut String,
    scratch: String,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() != "message" {
            self.out.push(' ');
            self.out.push_str(field.name());
            self.out.push('=');
        }
        push_clean(self.out, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() != "message" {
            self.out.push(' ');
            self.out.push_str(field.name());
            self.out.push('=');
        }
        // Formatted in place; escaped (through the scratch buffer) only when it needs to be.
        let start = self.out.len();
        let _ = write!(self.out, "{value:?}");
        if needs_escaping(&self.out[start..]) {
            self.scratch.clear();
            self.scratch.push_str(&self.out[start..]);
            self.out.truncate(start);
            let scratch = std::mem::take(&mut self.scratch);
            push_clean(self.out, &scratch);
            self.scratch = scratch;
        }
    }
}

impl<S, N> FormatEvent<S, N> for PlainFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            timestamp(&mut line, SystemTime::now());
            line.push_str(match *event.metadata().level() {
                Level::ERROR => " ERROR ",
                Level::WARN => "  WARN ",
                Level::INFO => "  INFO ",
                Level::DEBUG => " DEBUG ",
                Level::TRACE => " TRACE ",
            });
            let mut fields = Fields {
                out: &mut line,
                scratch: String::new(),
            };
            event.record(&mut fields);
            line.push('\n');
            writer.write_str(&line)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(civil(-1), (1969, 12, 31));
        let mut s = String::new();
        timestamp(
            &mut s,
            UNIX_EPOCH + std::time::Duration::from_micros(1_709_164_800_123_456),
        );
        assert_eq!(s, "2024-02-29T00:00:00.123456Z");
        s.clear();
        timestamp(
            &mut s,
            UNIX_EPOCH + std::time::Duration::from_micros(1_709_164_859_000_007),
        );
        assert_eq!(s, "2024-02-29T00:00:59.000007Z");
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut s = String::new();
        push_clean(&mut s, "a\u{1b}[31mb\tc\n");
        assert_eq!(s, "a\\u{1b}[31mb\tc\\n");
        s.clear();
        push_clean(&mut s, "x\u{9b}2Jy é\u{a0}");
        assert_eq!(s, "x\\u{9b}2Jy é\u{a0}");
    }

    #[test]
    fn lines_escape_formatted_messages_and_fields() {
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(PlainFormat)
            .with_writer(move || SinkWriter(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let evil = "x\u{1b}[2Jy";
            tracing::info!(user = ?evil, "plain {}", 1);
            tracing::info!("from code: {evil}\nforged line");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with("  INFO plain 1 user=\"x\\u{1b}[2Jy\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with("  INFO from code: x\\u{1b}[2Jy\\nforged line"),
            "{}",
            lines[1]
        );
    }

    struct SinkWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SinkWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
