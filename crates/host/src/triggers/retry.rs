//! How long a retry policy waits before the next attempt.

use std::time::Duration;

use stratus_model::RetryStrategy;

/// The wait before retry number `attempt` (1 for the first retry): the fixed delay, or for
/// exponential back-off `minimum` first, then `minimum + 2^(attempt-2) * minimum`, capped at
/// `maximum` (the SDK's formula without its ±20% jitter).
pub fn delay(strategy: &RetryStrategy, attempt: u32) -> Duration {
    match strategy {
        RetryStrategy::FixedDelay { delay } => *delay,
        RetryStrategy::ExponentialBackoff { minimum, maximum } => {
            if attempt <= 1 {
                return (*minimum).min(*maximum);
            }
            let growth = 2f64.powi((attempt - 2).min(62) as i32);
            let delay = minimum.as_secs_f64() * (1.0 + growth);
            Duration::try_from_secs_f64(delay.min(maximum.as_secs_f64()).max(0.0))
                .unwrap_or(*maximum)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays() {
        let fixed = RetryStrategy::FixedDelay {
            delay: Duration::from_secs(3),
        };
        assert_eq!(delay(&fixed, 1), Duration::from_secs(3));
        assert_eq!(delay(&fixed, 9), Duration::from_secs(3));
        let exp = RetryStrategy::ExponentialBackoff {
            minimum: Duration::from_secs(2),
            maximum: Duration::from_secs(20),
        };
        assert_eq!(delay(&exp, 1), Duration::from_secs(2));
        assert_eq!(delay(&exp, 2), Duration::from_secs(4));
        assert_eq!(delay(&exp, 3), Duration::from_secs(6));
        assert_eq!(delay(&exp, 4), Duration::from_secs(10));
        assert_eq!(delay(&exp, 10), Duration::from_secs(20));
        assert_eq!(delay(&exp, 1000), Duration::from_secs(20));
    }
}
