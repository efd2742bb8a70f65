//! Retry policies (`retry` in host.json and function.json).

use std::time::Duration;

use crate::error::Result;
use crate::json::Obj;
use crate::timespan;

/// How long to wait between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryStrategy {
    FixedDelay {
        delay: Duration,
    },
    ExponentialBackoff {
        minimum: Duration,
        maximum: Duration,
    },
}

/// A retry policy: the strategy and how many retries (None = retry forever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub strategy: RetryStrategy,
    /// Number of retries after the first attempt; `None` means unbounded (`-1`).
    pub max_retry_count: Option<u32>,
}

impl RetryPolicy {
    /// Parses a `retry` object.
    pub fn parse(o: Obj<'_>) -> Result<RetryPolicy> {
        let strategy = o.str("strategy")?.ok_or_else(|| {
            o.error(
                "strategy",
                "expected \"fixedDelay\" or \"exponentialBackoff\", found nothing",
            )
        })?;
        let (max_key, _) = o
            .get("maxRetryCount")
            .unwrap_or(("maxRetryCount", &serde_json::Value::Null));
        let max = o.int("maxRetryCount")?.ok_or_else(|| {
            o.error(
                "maxRetryCount",
                "expected an integer (-1 for unbounded), found nothing",
            )
        })?;
        let max_retry_count = match max {
            -1 => None,
            n if (0..=i64::from(u32::MAX)).contains(&n) => Some(n as u32),
            n => {
                return Err(o.error(
                    max_key,
                    format!("expected -1 or a non-negative integer, found {n}"),
                ));
            }
        };
        let span = |key: &str| -> Result<Option<Duration>> {
            let Some(text) = o.str(key)? else {
                return Ok(None);
            };
            let ts = timespan::parse(text).map_err(|e| o.error(key, e))?;
            if ts.negative {
                return Err(o.error(
                    key,
                    format!("expected a non-negative TimeSpan, found \"{text}\""),
                ));
            }
            Ok(Some(ts.duration))
        };
        let strategy = match strategy.to_ascii_lowercase().as_str() {
            "fixeddelay" => RetryStrategy::FixedDelay {
                delay: span("delayInterval")?.ok_or_else(|| {
                    o.error(
                        "delayInterval",
                        "expected a TimeSpan for the fixedDelay strategy, found nothing",
                    )
                })?,
            },
            "exponentialbackoff" => {
                let minimum = span("minimumInterval")?.ok_or_else(|| {
                    o.error(
                        "minimumInterval",
                        "expected a TimeSpan for the exponentialBackoff strategy, found nothing",
                    )
                })?;
                let maximum = span("maximumInterval")?.ok_or_else(|| {
                    o.error(
                        "maximumInterval",
                        "expected a TimeSpan for the exponentialBackoff strategy, found nothing",
                    )
                })?;
                if minimum > maximum {
                    return Err(o.error(
                        "maximumInterval",
                        "expected maximumInterval >= minimumInterval",
                    ));
                }
                RetryStrategy::ExponentialBackoff { minimum, maximum }
            }
            _ => {
                return Err(o.error(
                    "strategy",
                    format!(
                        "expected \"fixedDelay\" or \"exponentialBackoff\", found \"{strategy}\""
                    ),
                ));
            }
        };
        Ok(RetryPolicy {
            strategy,
            max_retry_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<RetryPolicy> {
        RetryPolicy::parse(Obj::root("host.json", &v).unwrap())
    }

    #[test]
    fn fixed_and_exponential() {
        let p =
            parse(json!({"strategy":"fixedDelay","maxRetryCount":2,"delayInterval":"00:00:03"}))
                .unwrap();
        assert_eq!(p.max_retry_count, Some(2));
        assert_eq!(
            p.strategy,
            RetryStrategy::FixedDelay {
                delay: Duration::from_secs(3)
            }
        );
        let p = parse(json!({"strategy":"ExponentialBackoff","maxRetryCount":-1,
            "minimumInterval":"00:00:01","maximumInterval":"00:01:00"}))
        .unwrap();
        assert_eq!(p.max_retry_count, None);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(json!({"strategy":"fixedDelay","maxRetryCount":2})).unwrap_err();
        assert_eq!(e.path, "$.delayInterval");
        let e = parse(json!({"strategy":"linear","maxRetryCount":2})).unwrap_err();
        assert_eq!(e.path, "$.strategy");
        let e =
            parse(json!({"strategy":"fixedDelay","maxRetryCount":-3,"delayInterval":"00:00:01"}))
                .unwrap_err();
        assert_eq!(e.path, "$.maxRetryCount");
    }
}
