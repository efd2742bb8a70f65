//! Conversions between the generated protobuf types and the plain values of [`crate::msg`]:
//! the host's side ([`encode`], [`decode`]) and a worker's side ([`decode_to_worker`],
//! [`encode_from_worker`]).

use std::collections::HashMap;

use crate::msg::*;
use crate::pb;
use crate::pb::streaming_message::Content;

mod values;

use values::*;

/// Encodes a host message.
pub fn encode(msg: ToWorker) -> pb::StreamingMessage {
    let content = match msg {
        ToWorker::WorkerInit(i) => Content::WorkerInitRequest(pb::WorkerInitRequest {
            host_version: i.host_version,
            capabilities: i.capabilities,
            log_categories: i
                .log_categories
                .into_iter()
                .map(|(k, v)| (k, level(v) as i32))
                .collect(),
            worker_directory: i.worker_directory,
            function_app_directory: i.function_app_directory,
        }),
        ToWorker::FunctionsMetadata { app_directory } => {
            Content::FunctionsMetadataRequest(pb::FunctionsMetadataRequest {
                function_app_directory: app_directory,
            })
        }
        ToWorker::FunctionLoad(l) => Content::FunctionLoadRequest(load(l)),
        ToWorker::FunctionLoadCollection(ls) => {
            Content::FunctionLoadRequestCollection(pb::FunctionLoadRequestCollection {
                function_load_requests: ls.into_iter().map(load).collect(),
            })
        }
        ToWorker::Invocation(inv) => Content::InvocationRequest(invocation(*inv)),
        ToWorker::InvocationCancel { invocation_id } => {
            Content::InvocationCancel(pb::InvocationCancel {
                invocation_id,
                grace_period: None,
            })
        }
        ToWorker::WorkerStatus => Content::WorkerStatusRequest(pb::WorkerStatusRequest {}),
        ToWorker::WorkerTerminate { grace } => Content::WorkerTerminate(pb::WorkerTerminate {
            grace_period: Some(duration(grace)),
        }),
    };
    pb::StreamingMessage {
        request_id: String::new(),
        content: Some(content),
    }
}

/// Decodes a worker message; None when it carries no content.
pub fn decode(msg: pb::StreamingMessage) -> Option<FromWorker> {
    Some(match msg.content? {
        Content::StartStream(s) => FromWorker::StartStream {
            worker_id: s.worker_id,
        },
        Content::WorkerInitResponse(r) => FromWorker::WorkerInitResponse(WorkerInitResponse {
            capabilities: r.capabilities,
            result: status(r.result),
            worker_metadata: r.worker_metadata.map(|m| WorkerMetadata {
                runtime_name: m.runtime_name,
                runtime_version: m.runtime_version,
                worker_version: m.worker_version,
                worker_bitness: m.worker_bitness,
            }),
        }),
        Content::FunctionMetadataResponse(r) => {
            FromWorker::FunctionMetadataResponse(FunctionMetadataResponse {
                functions: r
                    .function_metadata_results
                    .into_iter()
                    .map(from_metadata)
                    .collect(),
                result: status(r.result),
                use_default_metadata_indexing: r.use_default_metadata_indexing,
            })
        }
        Content::FunctionLoadResponse(r) => FromWorker::FunctionLoadResponse(load_response(r)),
        Content::FunctionLoadResponseCollection(c) => FromWorker::FunctionLoadResponses(
            c.function_load_responses
                .into_iter()
                .map(load_response)
                .collect(),
        ),
        Content::InvocationResponse(r) => {
            FromWorker::InvocationResponse(Box::new(InvocationResponse {
                invocation_id: r.invocation_id,
                output_data: r.output_data.into_iter().filter_map(from_param).collect(),
                return_value: r.return_value.map(from_typed),
                result: status(r.result),
            }))
        }
        Content::RpcLog(l) => FromWorker::Log(from_log(l)),
        Content::WorkerStatusResponse(_) => FromWorker::WorkerStatusResponse,
        other => FromWorker::Other(content_name(&other)),
    })
}

/// Decodes a host message on the worker's side; None when it carries no content or one a
/// worker is not sent by this host (environment reload, warmup, shared memory, ...).
pub fn decode_to_worker(msg: pb::StreamingMessage) -> Option<ToWorker> {
    Some(match msg.content? {
        Content::WorkerInitRequest(i) => ToWorker::WorkerInit(WorkerInit {
            host_version: i.host_version,
            capabilities: i.capabilities,
            log_categories: i
                .log_categories
                .into_iter()
                .map(|(k, v)| (k, from_level(v)))
                .collect(),
            worker_directory: i.worker_directory,
            function_app_directory: i.function_app_directory,
        }),
        Content::FunctionsMetadataRequest(r) => ToWorker::FunctionsMetadata {
            app_directory: r.function_app_directory,
        },
        Content::FunctionLoadRequest(l) => ToWorker::FunctionLoad(from_load(l)),
        Content::FunctionLoadRequestCollection(c) => ToWorker::FunctionLoadCollection(
            c.function_load_requests
                .into_iter()
                .map(from_load)
                .collect(),
        ),
        Content::InvocationRequest(i) => ToWorker::Invocation(Box::new(from_invocation(i))),
        Content::InvocationCancel(c) => ToWorker::InvocationCancel {
            invocation_id: c.invocation_id,
        },
        Content::WorkerStatusRequest(_) => ToWorker::WorkerStatus,
        Content::WorkerTerminate(t) => ToWorker::WorkerTerminate {
            grace: from_duration(t.grace_period).unwrap_or_default(),
        },
        _ => return None,
    })
}

/// Encodes a worker message, with the `request_id` the worker was started with.
/// [`FromWorker::Other`] becomes a message without content.
pub fn encode_from_worker(msg: FromWorker, request_id: &str) -> pb::StreamingMessage {
    let content = match msg {
        FromWorker::StartStream { worker_id } => {
            Some(Content::StartStream(pb::StartStream { worker_id }))
        }
        FromWorker::WorkerInitResponse(r) => {
            Some(Content::WorkerInitResponse(pb::WorkerInitResponse {
                worker_version: r
                    .worker_metadata
                    .as_ref()
                    .map(|m| m.worker_version.clone())
                    .unwrap_or_default(),
                capabilities: r.capabilities,
                result: Some(to_status(r.result)),
                worker_metadata: r.worker_metadata.map(|m| pb::WorkerMetadata {
                    runtime_name: m.runtime_name,
                    runtime_version: m.runtime_version,
                    worker_version: m.worker_version,
                    worker_bitness: m.worker_bitness,
                    custom_properties: HashMap::new(),
                }),
            }))
        }
        FromWorker::FunctionMetadataResponse(r) => Some(Content::FunctionMetadataResponse(
            pb::FunctionMetadataResponse {
                function_metadata_results: r.functions.into_iter().map(metadata).collect(),
                result: Some(to_status(r.result)),
                use_default_metadata_indexing: r.use_default_metadata_indexing,
            },
        )),
        FromWorker::FunctionLoadResponse(r) => {
            Some(Content::FunctionLoadResponse(to_load_response(r)))
        }
        FromWorker::FunctionLoadResponses(rs) => Some(Content::FunctionLoadResponseCollection(
            pb::FunctionLoadResponseCollection {
                function_load_responses: rs.into_iter().map(to_load_response).collect(),
            },
        )),
        FromWorker::InvocationResponse(r) => {
            let r = *r;
            Some(Content::InvocationResponse(pb::InvocationResponse {
                invocation_id: r.invocation_id,
                output_data: r.output_data.into_iter().map(param).collect(),
                result: Some(to_status(r.result)),
                return_value: r.return_value.map(typed),
            }))
        }
        FromWorker::Log(l) => Some(Content::RpcLog(log(l))),
        FromWorker::WorkerStatusResponse => {
            Some(Content::WorkerStatusResponse(pb::WorkerStatusResponse {}))
        }
        FromWorker::Other(_) => None,
    };
    pb::StreamingMessage {
        request_id: request_id.to_string(),
        content,
    }
}

fn content_name(c: &Content) -> &'static str {
    match c {
        Content::RpcLog(_) => "RpcLog",
        Content::InvocationRequest(_) => "InvocationRequest",
        Content::InvocationResponse(_) => "InvocationResponse",
        Content::FileChangeEventRequest(_) => "FileChangeEventRequest",
        Content::WorkerActionResponse(_) => "WorkerActionResponse",
        Content::FunctionLoadRequest(_) => "FunctionLoadRequest",
        Content::FunctionLoadResponse(_) => "FunctionLoadResponse",
        Content::WorkerStatusRequest(_) => "WorkerStatusRequest",
        Content::WorkerStatusResponse(_) => "WorkerStatusResponse",
        Content::WorkerTerminate(_) => "WorkerTerminate",
        Content::WorkerHeartbeat(_) => "WorkerHeartbeat",
        Content::WorkerInitResponse(_) => "WorkerInitResponse",
        Content::WorkerInitRequest(_) => "WorkerInitRequest",
        Content::StartStream(_) => "StartStream",
        Content::InvocationCancel(_) => "InvocationCancel",
        Content::FunctionEnvironmentReloadRequest(_) => "FunctionEnvironmentReloadRequest",
        Content::FunctionEnvironmentReloadResponse(_) => "FunctionEnvironmentReloadResponse",
        Content::CloseSharedMemoryResourcesRequest(_) => "CloseSharedMemoryResourcesRequest",
        Content::CloseSharedMemoryResourcesResponse(_) => "CloseSharedMemoryResourcesResponse",
        Content::FunctionsMetadataRequest(_) => "FunctionsMetadataRequest",
        Content::FunctionMetadataResponse(_) => "FunctionMetadataResponse",
        Content::FunctionLoadRequestCollection(_) => "FunctionLoadRequestCollection",
        Content::FunctionLoadResponseCollection(_) => "FunctionLoadResponseCollection",
        Content::WorkerWarmupRequest(_) => "WorkerWarmupRequest",
        Content::WorkerWarmupResponse(_) => "WorkerWarmupResponse",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use std::time::Duration;

    #[test]
    fn http_invocation_round_trips_through_the_wire_format() {
        let inv = Invocation {
            invocation_id: "i-1".into(),
            function_id: "f-1".into(),
            input_data: vec![ParameterBinding {
                name: "req".into(),
                data: TypedData::Http(Box::new(RpcHttp {
                    method: "POST".into(),
                    url: "http://localhost/api/x?a=1".into(),
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: Some(TypedData::Bytes(bytes::Bytes::from_static(b"\x00\xff"))),
                    query: vec![("a".into(), "1".into())],
                    nullable_maps: true,
                    ..RpcHttp::default()
                })),
            }],
            ..Invocation::default()
        };
        let wire = encode(ToWorker::Invocation(Box::new(inv))).encode_to_vec();
        let back = pb::StreamingMessage::decode(wire.as_slice()).unwrap();
        let Some(Content::InvocationRequest(req)) = back.content else {
            panic!("not an invocation");
        };
        let Some(pb::parameter_binding::RpcData::Data(d)) = req.input_data[0].rpc_data.clone()
        else {
            panic!("no data");
        };
        let TypedData::Http(h) = from_typed(d) else {
            panic!("not http");
        };
        assert_eq!(h.query, vec![("a".to_string(), "1".to_string())]);
        assert!(h.nullable_maps);
        assert_eq!(
            h.body,
            Some(TypedData::Bytes(bytes::Bytes::from_static(b"\x00\xff")))
        );
    }

    /// Host → wire bytes → worker.
    fn to_worker_round_trip(m: ToWorker) -> Option<ToWorker> {
        let wire = encode(m).encode_to_vec();
        decode_to_worker(pb::StreamingMessage::decode(wire.as_slice()).unwrap())
    }

    /// Worker → wire bytes → host, checking the request id on the way.
    fn from_worker_round_trip(m: FromWorker) -> Option<FromWorker> {
        let wire = encode_from_worker(m, "req-7").encode_to_vec();
        let back = pb::StreamingMessage::decode(wire.as_slice()).unwrap();
        assert_eq!(back.request_id, "req-7");
        decode(back)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn http_invocation(nullable_maps: bool) -> ToWorker {
        ToWorker::Invocation(Box::new(Invocation {
            invocation_id: "i-2".into(),
            function_id: "f-2".into(),
            input_data: vec![ParameterBinding {
                name: "req".into(),
                data: TypedData::Http(Box::new(RpcHttp {
                    method: "POST".into(),
                    url: "http://localhost/api/items/7?a=1&b=".into(),
                    headers: pairs(&[("content-type", "application/json"), ("x-a", "1, 2")]),
                    body: Some(TypedData::String("{\"k\":1}".into())),
                    raw_body: Some(TypedData::Bytes(bytes::Bytes::from_static(b"{\"k\":1}"))),
                    params: pairs(&[("id", "7")]),
                    query: pairs(&[("a", "1"), ("b", "")]),
                    identities: vec![ClaimsIdentity {
                        authentication_type: Some("WebJobsAuthLevel".into()),
                        name_claim_type: None,
                        role_claim_type: Some("role".into()),
                        claims: pairs(&[("http://schemas/authlevel", "Function")]),
                    }],
                    nullable_maps,
                    ..RpcHttp::default()
                })),
            }],
            trigger_metadata: [
                ("Query".to_string(), TypedData::Json("{\"a\":\"1\"}".into())),
                ("id".to_string(), TypedData::String("7".into())),
                ("n".to_string(), TypedData::CollectionSint64(vec![1, -2])),
            ]
            .into(),
            trace_context: TraceContext {
                trace_parent: "00-abc-def-01".into(),
                trace_state: String::new(),
                attributes: [("k".to_string(), "v".to_string())].into(),
            },
            retry_context: Some(RetryContext {
                retry_count: 1,
                max_retry_count: 3,
                exception: None,
            }),
        }))
    }

    #[test]
    fn an_http_invocation_reaches_the_worker_unchanged() {
        for nullable_maps in [true, false] {
            let m = http_invocation(nullable_maps);
            assert_eq!(
                to_worker_round_trip(m.clone()),
                Some(m),
                "nullable {nullable_maps}"
            );
        }
    }

    #[test]
    fn host_messages_reach_the_worker_unchanged() {
        let binding = BindingInfo {
            type_name: "httpTrigger".into(),
            direction: BindingDirection::In,
            data_type: BindingDataType::String,
            properties: HashMap::new(),
        };
        let load = |id: &str| FunctionLoad {
            function_id: id.into(),
            metadata: FunctionMetadata {
                name: format!("fn{id}"),
                directory: "/app".into(),
                script_file: "/app/index.js".into(),
                entry_point: "echo".into(),
                bindings: [("req".to_string(), binding.clone())].into(),
                raw_bindings: vec!["{\"type\":\"httpTrigger\"}".into()],
                function_id: id.into(),
                retry_options: Some(RetryOptions {
                    max_retry_count: 2,
                    delay_interval: Some(Duration::from_millis(1500)),
                    exponential_backoff: false,
                    ..RetryOptions::default()
                }),
                properties: [("worker_indexed".to_string(), "True".to_string())].into(),
                ..FunctionMetadata::default()
            },
            managed_dependency_enabled: false,
        };
        let messages = [
            ToWorker::WorkerInit(WorkerInit {
                host_version: "4.1".into(),
                capabilities: [("MultiStream".to_string(), "10".to_string())].into(),
                log_categories: [("Function".to_string(), LogLevel::Warning)].into(),
                worker_directory: "/w".into(),
                function_app_directory: "/app".into(),
            }),
            ToWorker::FunctionsMetadata {
                app_directory: "/app".into(),
            },
            ToWorker::FunctionLoad(load("1")),
            ToWorker::FunctionLoadCollection(vec![load("1"), load("2")]),
            ToWorker::InvocationCancel {
                invocation_id: "i".into(),
            },
            ToWorker::WorkerStatus,
            ToWorker::WorkerTerminate {
                grace: Duration::from_secs(5),
            },
        ];
        for m in messages {
            assert_eq!(to_worker_round_trip(m.clone()), Some(m));
        }
    }

    #[test]
    fn an_http_answer_with_a_cookie_and_logs_reaches_the_host_unchanged() {
        let log = Log {
            invocation_id: "i-2".into(),
            category: "Function.f.User".into(),
            level: LogLevel::Warning,
            message: "careful".into(),
            exception: None,
            system: false,
        };
        let answer = FromWorker::InvocationResponse(Box::new(InvocationResponse {
            invocation_id: "i-2".into(),
            output_data: vec![ParameterBinding {
                name: "res".into(),
                data: TypedData::Http(Box::new(RpcHttp {
                    status_code: "201".into(),
                    headers: pairs(&[("content-type", "text/plain"), ("x-b", "2")]),
                    body: Some(TypedData::Bytes(bytes::Bytes::from_static(b"\x00\x01"))),
                    cookies: vec![
                        Cookie {
                            name: "session".into(),
                            value: "a b".into(),
                            path: Some("/api".into()),
                            http_only: Some(true),
                            same_site: SameSite::Lax,
                            max_age: Some(60.0),
                            ..Cookie::default()
                        },
                        Cookie {
                            name: "other".into(),
                            value: String::new(),
                            domain: Some("example.com".into()),
                            expires: Some(1_700_000_000),
                            secure: Some(false),
                            same_site: SameSite::None,
                            ..Cookie::default()
                        },
                    ],
                    enable_content_negotiation: true,
                    ..RpcHttp::default()
                })),
            }],
            return_value: Some(TypedData::Double(1.5)),
            result: StatusResult {
                status: Outcome::Success,
                result: "ok".into(),
                exception: None,
                logs: vec![log.clone()],
            },
        }));
        assert_eq!(from_worker_round_trip(answer.clone()), Some(answer));

        let system_log = FromWorker::Log(Log {
            system: true,
            level: LogLevel::Error,
            exception: Some(RpcException {
                source: "worker".into(),
                stack_trace: "at x".into(),
                message: "bad".into(),
                is_user_exception: true,
                type_name: "Error".into(),
            }),
            ..log.clone()
        });
        assert_eq!(from_worker_round_trip(system_log.clone()), Some(system_log));
        let user_log = FromWorker::Log(log);
        assert_eq!(from_worker_round_trip(user_log.clone()), Some(user_log));
    }

    #[test]
    fn worker_messages_reach_the_host_unchanged() {
        let failed = StatusResult {
            status: Outcome::Failure,
            exception: Some(RpcException {
                message: "cannot load b".into(),
                ..RpcException::default()
            }),
            ..StatusResult::default()
        };
        let messages = [
            FromWorker::StartStream {
                worker_id: "w".into(),
            },
            FromWorker::WorkerInitResponse(WorkerInitResponse {
                capabilities: [("HttpUri".to_string(), "http://127.0.0.1:1/".to_string())].into(),
                result: StatusResult::success(),
                worker_metadata: Some(WorkerMetadata {
                    runtime_name: "test".into(),
                    runtime_version: "1".into(),
                    worker_version: "1.0.0".into(),
                    worker_bitness: "64".into(),
                }),
            }),
            FromWorker::FunctionMetadataResponse(FunctionMetadataResponse {
                functions: vec![FunctionMetadata {
                    name: "a".into(),
                    function_id: "fn-a".into(),
                    raw_bindings: vec!["{}".into()],
                    ..FunctionMetadata::default()
                }],
                result: StatusResult::success(),
                use_default_metadata_indexing: false,
            }),
            FromWorker::FunctionLoadResponse(FunctionLoadResponse {
                function_id: "a".into(),
                result: StatusResult::success(),
            }),
            FromWorker::FunctionLoadResponses(vec![
                FunctionLoadResponse {
                    function_id: "a".into(),
                    result: StatusResult::success(),
                },
                FunctionLoadResponse {
                    function_id: "b".into(),
                    result: failed,
                },
            ]),
            FromWorker::InvocationResponse(Box::new(InvocationResponse {
                invocation_id: "i".into(),
                result: StatusResult {
                    status: Outcome::Cancelled,
                    ..StatusResult::default()
                },
                ..InvocationResponse::default()
            })),
            FromWorker::WorkerStatusResponse,
        ];
        for m in messages {
            assert_eq!(from_worker_round_trip(m.clone()), Some(m));
        }
        assert_eq!(
            from_worker_round_trip(FromWorker::Other("WorkerHeartbeat")),
            None
        );
    }

    #[test]
    fn a_failure_is_the_default_status() {
        let msg = pb::StreamingMessage {
            request_id: String::new(),
            content: Some(Content::FunctionLoadResponse(pb::FunctionLoadResponse {
                function_id: "f".into(),
                result: None,
                is_dependency_downloaded: false,
            })),
        };
        let Some(FromWorker::FunctionLoadResponse(r)) = decode(msg) else {
            panic!("not a load response");
        };
        assert_eq!(r.result.status, Outcome::Failure);
    }
}
