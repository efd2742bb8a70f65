//! The worker's side of the protocol: dials a host's gRPC server, opens `EventStream`, sends
//! `StartStream` and exchanges plain [`crate::msg`] values, so tests and tools can act as a
//! language worker without seeing protobuf types.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Endpoint;

use crate::convert;
use crate::msg::{FromWorker, ToWorker};
use crate::pb::function_rpc_client::FunctionRpcClient;
use crate::server::MAX_MESSAGE_LENGTH;

/// How long to wait for the host's TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{uri}` is not a valid host address: {source}")]
    InvalidUri {
        uri: String,
        #[source]
        source: Source,
    },
    #[error("cannot connect to the host at {uri}: {source}")]
    Connect {
        uri: String,
        #[source]
        source: Source,
    },
    #[error("the host refused the event stream: {0}")]
    Refused(String),
}

/// One open stream, seen from the worker.
#[derive(Debug)]
pub struct WorkerSide {
    /// Messages from the host; ends when the stream does.
    pub inbound: mpsc::UnboundedReceiver<ToWorker>,
    /// Messages to the host; dropping every sender ends the worker's half of the stream.
    pub outbound: mpsc::UnboundedSender<FromWorker>,
}

/// Connects to the host at `uri` (`http://127.0.0.1:<port>/`), opens `EventStream` and sends
/// `StartStream{worker_id}` first. Every message sent carries `request_id` (the worker's
/// `--requestId`). Returns once the host has accepted the stream.
pub async fn connect(
    uri: &str,
    worker_id: &str,
    request_id: &str,
) -> Result<WorkerSide, ClientError> {
    let endpoint = Endpoint::from_shared(uri.to_string())
        .map_err(|e| ClientError::InvalidUri {
            uri: uri.to_string(),
            source: Box::new(e),
        })?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| ClientError::Connect {
        uri: uri.to_string(),
        source: Box::new(e),
    })?;
    let mut client = FunctionRpcClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_LENGTH)
        .max_encoding_message_size(MAX_MESSAGE_LENGTH);

    let (out_tx, out_rx) = mpsc::unbounded_channel::<FromWorker>();
    // Queued before the call: the host answers the call only after reading StartStream.
    let _ = out_tx.send(FromWorker::StartStream {
        worker_id: worker_id.to_string(),
    });
    let request_id = request_id.to_string();
    let outgoing = UnboundedReceiverStream::new(out_rx)
        .map(move |m| convert::encode_from_worker(m, &request_id));
    let mut inbound = client
        .event_stream(outgoing)
        .await
        .map_err(|s| ClientError::Refused(s.message().to_string()))?
        .into_inner();

    let (in_tx, in_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // The client (and its connection) lives as long as the stream is read.
        let _client = client;
        loop {
            match inbound.message().await {
                Ok(Some(m)) => {
                    if let Some(m) = convert::decode_to_worker(m)
                        && in_tx.send(m).is_err()
                    {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("the host's stream failed: {e}");
                    break;
                }
            }
        }
    });
    Ok(WorkerSide {
        inbound: in_rx,
        outbound: out_tx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RpcServer;
    use crate::msg::*;

    #[tokio::test]
    async fn a_worker_and_the_host_talk_over_a_real_stream() {
        let server = RpcServer::start().await.expect("server");
        let mut expected = server.expect("w1");
        let port = server.port();
        let worker =
            tokio::spawn(
                async move { connect(&format!("http://127.0.0.1:{port}"), "w1", "r1").await },
            );
        let mut host = expected.connected().await.expect("the worker connected");
        let mut worker = worker.await.expect("join").expect("connect");
        assert_eq!(host.worker_id, "w1");
        assert_eq!(host.request_id, "r1");

        let mut capabilities = std::collections::HashMap::new();
        capabilities.insert("MultiStream".to_string(), "10".to_string());
        host.outbound
            .send(ToWorker::WorkerInit(WorkerInit {
                host_version: "4.0".into(),
                capabilities: capabilities.clone(),
                function_app_directory: "/app".into(),
                ..WorkerInit::default()
            }))
            .expect("send init");
        let Some(ToWorker::WorkerInit(init)) = worker.inbound.recv().await else {
            panic!("no init");
        };
        assert_eq!(init.capabilities, capabilities);
        assert_eq!(init.function_app_directory, "/app");

        let answer = WorkerInitResponse {
            capabilities: [("RpcHttpBodyOnly".to_string(), "true".to_string())].into(),
            result: StatusResult::success(),
            worker_metadata: Some(WorkerMetadata {
                runtime_name: "test".into(),
                ..WorkerMetadata::default()
            }),
        };
        worker
            .outbound
            .send(FromWorker::WorkerInitResponse(answer.clone()))
            .expect("send init response");
        assert_eq!(
            host.inbound.recv().await,
            Some(FromWorker::WorkerInitResponse(answer))
        );

        let invocation = Invocation {
            invocation_id: "i1".into(),
            function_id: "f1".into(),
            input_data: vec![ParameterBinding {
                name: "req".into(),
                data: TypedData::Http(Box::new(RpcHttp {
                    method: "GET".into(),
                    url: "http://localhost/api/x".into(),
                    headers: vec![("accept".into(), "*/*".into())],
                    ..RpcHttp::default()
                })),
            }],
            ..Invocation::default()
        };
        host.outbound
            .send(ToWorker::Invocation(Box::new(invocation.clone())))
            .expect("send invocation");
        assert_eq!(
            worker.inbound.recv().await,
            Some(ToWorker::Invocation(Box::new(invocation)))
        );

        let response = InvocationResponse {
            invocation_id: "i1".into(),
            return_value: Some(TypedData::Http(Box::new(RpcHttp {
                status_code: "201".into(),
                body: Some(TypedData::String("made".into())),
                ..RpcHttp::default()
            }))),
            result: StatusResult::success(),
            ..InvocationResponse::default()
        };
        worker
            .outbound
            .send(FromWorker::InvocationResponse(Box::new(response.clone())))
            .expect("send response");
        assert_eq!(
            host.inbound.recv().await,
            Some(FromWorker::InvocationResponse(Box::new(response)))
        );

        // The host ending the stream ends the worker's inbound side.
        drop(host.outbound);
        assert_eq!(worker.inbound.recv().await, None);
    }

    #[tokio::test]
    async fn an_unknown_worker_id_is_refused() {
        let server = RpcServer::start().await.expect("server");
        let port = server.port();
        let err = connect(&format!("http://127.0.0.1:{port}/"), "stranger", "r")
            .await
            .expect_err("refused");
        assert!(matches!(err, ClientError::Refused(_)), "{err}");
    }
}
