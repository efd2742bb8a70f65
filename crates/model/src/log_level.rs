//! .NET log levels and the `logging.logLevel` category map of host.json.

use std::str::FromStr;

/// A `Microsoft.Extensions.Logging` level, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace,
    Debug,
    Information,
    Warning,
    Error,
    Critical,
    /// Nothing is logged.
    None,
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "information" | "info" => LogLevel::Information,
            "warning" | "warn" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            "none" => LogLevel::None,
            _ => {
                return Err(format!(
                    "expected one of Trace, Debug, Information, Warning, Error, Critical, None, found \"{s}\""
                ));
            }
        })
    }
}

/// `logging.logLevel`: minimum levels by category prefix (`default`, `Function`, `Function.Hello`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogLevels {
    entries: Vec<(String, LogLevel)>,
}

impl LogLevels {
    pub fn new(entries: Vec<(String, LogLevel)>) -> Self {
        LogLevels { entries }
    }

    /// The minimum level for `category`: the longest configured prefix (on `.` boundaries,
    /// case-insensitive) wins, then `default`, then `Information`.
    pub fn level_for(&self, category: &str) -> LogLevel {
        let mut best: Option<(usize, LogLevel)> = None;
        for (prefix, level) in &self.entries {
            if prefix.eq_ignore_ascii_case("default") {
                continue;
            }
            let matches = category.len() >= prefix.len()
                && category[..prefix.len()].eq_ignore_ascii_case(prefix)
                && (category.len() == prefix.len() || category.as_bytes()[prefix.len()] == b'.');
            if matches && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), *level));
            }
        }
        best.map(|(_, l)| l)
            .or_else(|| self.default_level())
            .unwrap_or(LogLevel::Information)
    }

    /// The `default` entry, if configured.
    pub fn default_level(&self) -> Option<LogLevel> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("default"))
            .map(|(_, l)| *l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let l = LogLevels::new(vec![
            ("default".into(), LogLevel::Warning),
            ("Function".into(), LogLevel::Information),
            ("Function.Hello.User".into(), LogLevel::Error),
        ]);
        assert_eq!(l.level_for("Function.Hello"), LogLevel::Information);
        assert_eq!(l.level_for("function.hello.user"), LogLevel::Error);
        assert_eq!(l.level_for("Functions"), LogLevel::Warning);
        assert_eq!(l.level_for("Host.Results"), LogLevel::Warning);
        assert_eq!(LogLevels::default().level_for("x"), LogLevel::Information);
    }
}
