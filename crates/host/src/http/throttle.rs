//! `maxConcurrentRequests` / `maxOutstandingRequests`: at most N function requests run at
//! once; beyond M outstanding (running or queued) requests the host answers 429.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub struct Throttle {
    concurrent: Option<Arc<Semaphore>>,
    max_outstanding: Option<usize>,
    outstanding: Arc<AtomicUsize>,
}

/// Held while a request counts as outstanding.
#[derive(Debug)]
pub struct Ticket {
    _permit: Option<OwnedSemaphorePermit>,
    outstanding: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Throttle {
    /// None when neither limit is set (the default).
    pub fn new(max_concurrent: Option<u32>, max_outstanding: Option<u32>) -> Option<Throttle> {
        if max_concurrent.is_none() && max_outstanding.is_none() {
            return None;
        }
        Some(Throttle {
            concurrent: max_concurrent.map(|n| Arc::new(Semaphore::new(n as usize))),
            max_outstanding: max_outstanding.map(|n| n as usize),
            outstanding: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Admits a request (waiting for a concurrency slot), or None when the queue is full.
    pub async fn admit(&self) -> Option<Ticket> {
        let now = self.outstanding.fetch_add(1, Ordering::AcqRel) + 1;
        let mut ticket = Ticket {
            _permit: None,
            outstanding: self.outstanding.clone(),
        };
        if self.max_outstanding.is_some_and(|max| now > max) {
            tracing::info!(
                "Http request queue limit of {} has been exceeded.",
                self.max_outstanding.unwrap_or(0)
            );
            return None;
        }
        match &self.concurrent {
            None => Some(ticket),
            Some(sem) => {
                ticket._permit = Some(sem.clone().acquire_owned().await.ok()?);
                Some(ticket)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outstanding_limit_rejects() {
        let t = Throttle::new(Some(1), Some(2)).unwrap();
        let a = t.admit().await.unwrap();
        let t = Arc::new(t);
        let t2 = t.clone();
        let waiting = tokio::spawn(async move { t2.admit().await.is_some() });
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            t.admit().await.is_none(),
            "third outstanding request is refused"
        );
        drop(a);
        assert!(waiting.await.unwrap());
    }
}
