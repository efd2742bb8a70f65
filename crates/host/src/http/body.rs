//! Body types of the HTTP front: one response body enum (no boxing on the hot path) and a
//! request body that enforces the size limit while streaming.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

/// Errors while streaming a body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body: nothing, some bytes, a body streamed from a handler (optionally cut off at the
/// invocation's deadline), or a client's body streamed on under the size limit.
#[derive(Debug)]
pub enum Body {
    Empty,
    Full(Option<Bytes>),
    Stream(Incoming),
    Limited(LimitedBody),
    Timed {
        inner: Incoming,
        at: tokio::time::Instant,
        /// Made the first time the body has to wait: most bodies are there with the head and
        /// never need a timer.
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        invocation_id: uuid::Uuid,
    },
}

/// The function's response body was still streaming at the function timeout.
#[derive(Debug, thiserror::Error)]
#[error("the response body of invocation {0} did not end before the function timeout")]
pub struct BodyTimedOut(pub uuid::Uuid);

impl Body {
    pub fn full(b: impl Into<Bytes>) -> Body {
        let b = b.into();
        if b.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(b))
        }
    }

    /// A streamed body that fails (so the client sees it incomplete) if still going at `at`.
    pub fn timed(inner: Incoming, at: tokio::time::Instant, invocation_id: uuid::Uuid) -> Body {
        Body::Timed {
            inner,
            at,
            deadline: None,
            invocation_id,
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(s) => Pin::new(s).poll_frame(cx).map_err(Into::into),
            Body::Limited(l) => Pin::new(l).poll_frame(cx),
            Body::Timed {
                inner,
                at,
                deadline,
                invocation_id,
            } => {
                let late = match Pin::new(&mut *inner).poll_frame(cx) {
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Ready(Some(frame)) => {
                        // The last frame (often the only one) ends the body in time anyway.
                        if inner.is_end_stream() || tokio::time::Instant::now() < *at {
                            return Poll::Ready(Some(frame.map_err(Into::into)));
                        }
                        true
                    }
                    Poll::Pending => deadline
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(*at)))
                        .as_mut()
                        .poll(cx)
                        .is_ready(),
                };
                if !late {
                    return Poll::Pending;
                }
                tracing::error!(target: crate::logging::FUNCTION_TARGET, invocation_id = %invocation_id,
                    "the response body did not end before the function timeout; cutting it off");
                Poll::Ready(Some(Err(Box::new(BodyTimedOut(*invocation_id)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Stream(s) | Body::Timed { inner: s, .. } => s.is_end_stream(),
            Body::Limited(l) => l.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(s) | Body::Timed { inner: s, .. } => s.size_hint(),
            Body::Limited(l) => l.size_hint(),
        }
    }
}

/// The request body exceeded the configured limit.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than {limit} bytes")]
pub struct TooLarge {
    pub limit: u64,
}

/// A streamed request body that fails once more than `limit` bytes went through, and
/// records that it did (so a failed forward can be answered with 413).
#[derive(Debug)]
pub struct LimitedBody {
    inner: Incoming,
    remaining: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl LimitedBody {
    pub fn new(inner: Incoming, limit: u64) -> (LimitedBody, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        (
            LimitedBody {
                inner,
                remaining: limit,
                limit,
                exceeded: exceeded.clone(),
            },
            exceeded,
        )
    }
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            None => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.remaining {
                        this.exceeded.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(Box::new(TooLarge { limit: this.limit }))));
                    }
                    this.remaining -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Reads a whole request body, refusing more than `limit` bytes.
pub async fn collect_limited(body: Incoming, limit: u64) -> Result<Bytes, CollectError> {
    use http_body_util::BodyExt as _;
    let (limited, exceeded) = LimitedBody::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) if exceeded.load(Ordering::Acquire) => Err(CollectError::TooLarge),
        Err(e) => Err(CollectError::Read(e.to_string())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("request body too large")]
    TooLarge,
    #[error("cannot read the request body: {0}")]
    Read(String),
}
