//! The host's gRPC server: workers connect to it and open `EventStream`; each stream is
//! handed to whoever is waiting for the worker id its `StartStream` names.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use crate::convert;
use crate::msg::{FromWorker, ToWorker};
use crate::pb;
use crate::pb::function_rpc_server::{FunctionRpc, FunctionRpcServer};

/// Largest message accepted or sent (the host's `--grpcMaxMessageLength`).
pub const MAX_MESSAGE_LENGTH: usize = i32::MAX as usize;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen for language workers on loopback: {0}")]
    Bind(std::io::Error),
}

/// One worker's open stream: what it sends, and a way to send to it.
#[derive(Debug)]
pub struct WorkerStream {
    pub worker_id: String,
    /// The `request_id` of its `StartStream` (the `--requestId` it was given).
    pub request_id: String,
    /// Messages from the worker; ends when the stream does.
    pub inbound: Inbound,
    /// Messages to the worker; dropping it ends the stream.
    pub outbound: mpsc::UnboundedSender<ToWorker>,
}

/// The worker's half of a stream, decoded as it is read (on the reader's own task).
pub struct Inbound {
    stream: Streaming<pb::StreamingMessage>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbound")
    }
}

impl Inbound {
    /// The next message from the worker; None once the stream has ended or failed.
    pub async fn recv(&mut self) -> Option<FromWorker> {
        loop {
            match self.stream.message().await {
                Ok(Some(m)) => {
                    if let Some(m) = convert::decode(m) {
                        return Some(m);
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::debug!("a language worker stream failed: {e}");
                    return None;
                }
            }
        }
    }
}

type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<WorkerStream>>>>;

/// The gRPC server of one host, listening on a loopback port.
#[derive(Debug)]
pub struct RpcServer {
    addr: SocketAddr,
    waiting: Waiting,
    stop: Option<oneshot::Sender<()>>,
}

/// A worker that has not connected yet.
#[derive(Debug)]
pub struct Expected {
    worker_id: String,
    rx: oneshot::Receiver<WorkerStream>,
    waiting: Waiting,
}

impl Expected {
    /// Waits for the worker's stream (cancel-safe: dropping this forgets the worker id).
    pub async fn connected(&mut self) -> Option<WorkerStream> {
        (&mut self.rx).await.ok()
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        self.waiting.lock().remove(&self.worker_id);
    }
}

impl RpcServer {
    /// Starts serving on `127.0.0.1` at a free port.
    pub async fn start() -> Result<RpcServer, ServerError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(ServerError::Bind)?;
        let addr = listener.local_addr().map_err(ServerError::Bind)?;
        let waiting: Waiting = Arc::default();
        let service = FunctionRpcServer::new(Service {
            waiting: waiting.clone(),
        })
        .max_decoding_message_size(MAX_MESSAGE_LENGTH)
        .max_encoding_message_size(MAX_MESSAGE_LENGTH);
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming = TcpListenerStream::new(listener).map(|s| {
            if let Ok(s) = &s {
                let _ = s.set_nodelay(true);
            }
            s
        });
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!("the language worker gRPC server stopped: {e}");
            }
        });
        Ok(RpcServer {
            addr,
            waiting,
            stop: Some(stop),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Registers a worker id before its process starts, to receive its stream.
    pub fn expect(&self, worker_id: &str) -> Expected {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(worker_id.to_string(), tx);
        Expected {
            worker_id: worker_id.to_string(),
            rx,
            waiting: self.waiting.clone(),
        }
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Service {
    waiting: Waiting,
}

type Outbound = Pin<Box<dyn Stream<Item = Result<pb::StreamingMessage, Status>> + Send>>;

#[tonic::async_trait]
impl FunctionRpc for Service {
    type EventStreamStream = Outbound;

    async fn event_stream(
        &self,
        request: Request<Streaming<pb::StreamingMessage>>,
    ) -> Result<Response<Outbound>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the stream ended before StartStream"))?;
        let request_id = first.request_id.clone();
        let Some(FromWorker::StartStream { worker_id }) = convert::decode(first) else {
            return Err(Status::invalid_argument(
                "the first message must be StartStream",
            ));
        };
        let Some(waiter) = self.waiting.lock().remove(&worker_id) else {
            tracing::warn!(%worker_id, "a language worker that was not started by this host connected");
            return Err(Status::permission_denied("unknown worker id"));
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel::<ToWorker>();
        let stream = WorkerStream {
            worker_id,
            request_id,
            inbound: Inbound { stream: inbound },
            outbound: out_tx,
        };
        if waiter.send(stream).is_err() {
            return Err(Status::unavailable(
                "the host stopped waiting for this worker",
            ));
        }
        let out = UnboundedReceiverStream::new(out_rx).map(|m| Ok(convert::encode(m)));
        Ok(Response::new(Box::pin(out)))
    }
}
