//! .NET `TimeSpan` strings (`hh:mm:ss`, `d.hh:mm:ss.fffffff`, `d`) as used throughout host.json.

use std::time::Duration;

/// A parsed `TimeSpan`: a duration and a sign (negative spans mean "infinite" for timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSpan {
    pub negative: bool,
    pub duration: Duration,
}

impl TimeSpan {
    pub const fn from_duration(duration: Duration) -> Self {
        TimeSpan {
            negative: false,
            duration,
        }
    }
}

/// Parses the invariant-culture `TimeSpan` forms: `[-]d`, `[-][d.]hh:mm[:ss[.fffffff]]`.
///
/// Returns a description of what was expected on failure.
pub fn parse(text: &str) -> Result<TimeSpan, String> {
    let expected =
        || format!("expected a TimeSpan such as \"00:05:00\" or \"1.02:00:00\", found \"{text}\"");
    let s = text.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if s.is_empty() {
        return Err(expected());
    }
    let digits = |p: &str| -> Option<u64> {
        if p.is_empty() || p.len() > 10 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    if !s.contains(':') {
        let days = digits(s).ok_or_else(expected)?;
        if days > 10_675_199 {
            return Err(expected());
        }
        return Ok(TimeSpan {
            negative,
            duration: Duration::from_secs(days * 86_400),
        });
    }
    let (days, clock) = match s.split_once('.') {
        Some((d, rest)) if !d.contains(':') => (digits(d).ok_or_else(expected)?, rest),
        _ => (0, s),
    };
    let mut parts = clock.split(':');
    let hours = parts.next().and_then(digits).ok_or_else(expected)?;
    let minutes = parts.next().and_then(digits).ok_or_else(expected)?;
    let (seconds, nanos) = match parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = match sec.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (sec, None),
            };
            let whole = digits(whole).ok_or_else(expected)?;
            let nanos = match frac {
                None => 0,
                Some(f)
                    if !f.is_empty() && f.len() <= 7 && f.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    let mut padded = f.to_string();
                    while padded.len() < 9 {
                        padded.push('0');
                    }
                    padded.parse::<u32>().map_err(|_| expected())?
                }
                Some(_) => return Err(expected()),
            };
            (whole, nanos)
        }
    };
    if parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 59 || days > 10_675_199 {
        return Err(expected());
    }
    let secs = days * 86_400 + hours * 3_600 + minutes * 60 + seconds;
    Ok(TimeSpan {
        negative,
        duration: Duration::new(secs, nanos),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> (bool, f64) {
        let t = parse(s).unwrap();
        (t.negative, t.duration.as_secs_f64())
    }

    #[test]
    fn forms() {
        assert_eq!(secs("00:05:00"), (false, 300.0));
        assert_eq!(secs("1.02:03:04"), (false, 93_784.0));
        assert_eq!(secs("00:00:01.5"), (false, 1.5));
        assert_eq!(secs("02:30"), (false, 9_000.0));
        assert_eq!(secs("1"), (false, 86_400.0));
        assert_eq!(secs("-1"), (true, 86_400.0));
        assert_eq!(secs("-1.00:00:00"), (true, 86_400.0));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "abc",
            "24:00:00",
            "00:60:00",
            "00:00:60",
            "1:2:3:4",
            "00:00:00.12345678",
            "-",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
