//! Drives the built test worker over a real FunctionRpc stream, the way the host does:
//! handshake, indexing, loads, each behaviour, cancellation, the HttpUri server, termination.

use std::collections::HashMap;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::Value;
use stratus_proto::msg::*;
use stratus_proto::{FromWorker, RpcServer, ToWorker, WorkerStream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Child;

const WAIT: Duration = Duration::from_secs(20);

struct Host {
    _server: RpcServer,
    stream: WorkerStream,
    child: Child,
}

impl Host {
    /// Starts the worker with `args` (after the program name) and `env`, and waits for it.
    async fn start(args: impl Fn(u16) -> Vec<String>, env: &[(&str, &str)]) -> Host {
        let server = RpcServer::start().await.expect("server");
        let mut expected = server.expect("w1");
        #[allow(
            clippy::disallowed_methods,
            reason = "the test starts the worker under test"
        )]
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stratus-test-worker"));
        command
            .args(args(server.port()))
            .env_clear()
            .envs(env.iter().copied())
            .kill_on_drop(true);
        let child = command.spawn().expect("spawn the worker");
        let stream = tokio::time::timeout(WAIT, expected.connected())
            .await
            .expect("the worker connects in time")
            .expect("a stream");
        assert_eq!(stream.worker_id, "w1");
        assert_eq!(stream.request_id, "r1");
        Host {
            _server: server,
            stream,
            child,
        }
    }

    fn send(&self, m: ToWorker) {
        self.stream.outbound.send(m).expect("send");
    }

    async fn next(&mut self) -> FromWorker {
        tokio::time::timeout(WAIT, self.stream.inbound.recv())
            .await
            .expect("an answer in time")
            .expect("the stream is open")
    }

    /// The next invocation response; logs sent before it are skipped.
    async fn response(&mut self) -> InvocationResponse {
        loop {
            match self.next().await {
                FromWorker::InvocationResponse(r) => return *r,
                FromWorker::Log(_) => {}
                other => panic!("expected an invocation response, got {other:?}"),
            }
        }
    }

    async fn exit(mut self) -> ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the worker exits in time")
            .expect("wait")
    }
}

fn both_argument_sets(port: u16) -> Vec<String> {
    format!(
        "worker.js --host 127.0.0.1 --port {port} --workerId old --requestId old \
         --grpcMaxMessageLength 2147483647 --functions-uri http://127.0.0.1:{port}/ \
         --functions-worker-id w1 --functions-request-id r1 \
         --functions-grpc-max-message-length 2147483647"
    )
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

fn legacy_arguments(port: u16) -> Vec<String> {
    format!("--host 127.0.0.1 --port {port} --workerId w1 --requestId r1")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn http_request(id: &str, invocation_id: &str) -> ToWorker {
    ToWorker::Invocation(Box::new(Invocation {
        invocation_id: invocation_id.into(),
        function_id: id.into(),
        input_data: vec![ParameterBinding {
            name: "req".into(),
            data: TypedData::Http(Box::new(RpcHttp {
                method: "POST".into(),
                url: "http://localhost/api/x?a=1".into(),
                headers: vec![("content-type".into(), "text/plain".into())],
                body: Some(TypedData::String("hi".into())),
                query: vec![("a".into(), "1".into())],
                nullable_maps: true,
                ..RpcHttp::default()
            })),
        }],
        trigger_metadata: [("Query".to_string(), TypedData::Json("{}".into()))].into(),
        ..Invocation::default()
    }))
}

fn http_of(r: &InvocationResponse, output: Option<&str>) -> RpcHttp {
    let data = match output {
        Some(name) => r
            .output_data
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.data.clone()),
        None => r.return_value.clone(),
    };
    match data {
        Some(TypedData::Http(h)) => *h,
        other => panic!("expected an http answer, got {other:?}"),
    }
}

/// The host's load of an indexed function: its id, name, entry point and bindings.
fn load_of(m: &FunctionMetadata) -> FunctionLoad {
    FunctionLoad {
        function_id: m.function_id.clone(),
        metadata: FunctionMetadata {
            raw_bindings: Vec::new(),
            ..m.clone()
        },
        managed_dependency_enabled: false,
    }
}

async fn get(addr: &str, invocation_id: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST /api/s?x=1 HTTP/1.1\r\nhost: {addr}\r\nx-ms-invocation-id: {invocation_id}\r\n\
         x-forwarded-host: example.com\r\nx-forwarded-proto: https\r\ncontent-length: 5\r\n\
         connection: close\r\n\r\nhello"
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn a_worker_indexed_app_runs_every_behaviour() {
    let app = tempfile::tempdir().expect("tempdir");
    let function = |name: &str, entry: &str| {
        serde_json::json!({"name": name, "entryPoint": entry, "bindings": [
            {"type": "httpTrigger", "direction": "in", "name": "req", "route": name},
            {"type": "http", "direction": "out", "name": "$return"}]})
    };
    let mut functions = vec![
        serde_json::json!({"name": "hello", "entryPoint": "echo", "bindings": [
            {"type": "httpTrigger", "direction": "in", "name": "req"},
            {"type": "http", "direction": "out", "name": "res"}]}),
    ];
    for (name, entry) in [
        ("logger", "log"),
        ("failer", "fail"),
        ("cookies", "cookie"),
        ("teapot", "status"),
        ("slowpoke", "slow"),
        ("streamer", "stream"),
        ("broken", "unloadable"),
    ] {
        functions.push(function(name, entry));
    }
    std::fs::write(
        app.path().join("functions.test.json"),
        serde_json::to_string(&functions).expect("json"),
    )
    .expect("write functions.test.json");
    let app_dir = app.path().to_string_lossy().into_owned();

    let mut host = Host::start(
        both_argument_sets,
        &[
            (
                "TEST_WORKER_CAPABILITIES",
                "SupportsLoadResponseCollection, WorkerStatus",
            ),
            ("TEST_WORKER_HTTP_URI", "true"),
        ],
    )
    .await;

    host.send(ToWorker::WorkerInit(WorkerInit {
        host_version: "4.0".into(),
        function_app_directory: app_dir.clone(),
        ..WorkerInit::default()
    }));
    let FromWorker::WorkerInitResponse(init) = host.next().await else {
        panic!("no init response");
    };
    assert_eq!(init.result.status, Outcome::Success);
    assert_eq!(init.capabilities["SupportsLoadResponseCollection"], "true");
    assert_eq!(init.capabilities["WorkerStatus"], "true");
    assert_eq!(init.capabilities["RequiresRouteParameters"], "true");
    let http_uri = init.capabilities["HttpUri"].clone();
    let addr = http_uri
        .strip_prefix("http://")
        .and_then(|a| a.strip_suffix('/'))
        .expect("an http://host:port/ uri")
        .to_string();
    let meta = init.worker_metadata.expect("worker metadata");
    assert_eq!(meta.runtime_name, "stratus-test-worker");
    assert_eq!(meta.worker_version, "1.0.0");
    assert_eq!(meta.worker_bitness, "64");

    host.send(ToWorker::FunctionsMetadata {
        app_directory: app_dir.clone(),
    });
    let FromWorker::FunctionMetadataResponse(index) = host.next().await else {
        panic!("no metadata response");
    };
    assert!(!index.use_default_metadata_indexing);
    assert_eq!(index.functions.len(), 8);
    let hello = &index.functions[0];
    assert_eq!(hello.function_id, "fn-hello");
    assert_eq!(hello.language, "test");
    assert_eq!(hello.directory, app_dir);
    assert_eq!(hello.properties["worker_indexed"], "True");
    assert_eq!(hello.bindings["res"].direction, BindingDirection::Out);
    let raw: Value = serde_json::from_str(&hello.raw_bindings[0]).expect("a JSON binding");
    assert_eq!(raw["type"], "httpTrigger");

    host.send(ToWorker::FunctionLoadCollection(
        index.functions.iter().map(load_of).collect(),
    ));
    let FromWorker::FunctionLoadResponses(loads) = host.next().await else {
        panic!("no load collection");
    };
    let outcomes: HashMap<_, _> = loads
        .iter()
        .map(|l| (l.function_id.as_str(), l.result.clone()))
        .collect();
    assert_eq!(outcomes.len(), 8);
    assert_eq!(outcomes["fn-hello"].status, Outcome::Success);
    assert_eq!(outcomes["fn-broken"].status, Outcome::Failure);
    assert_eq!(outcomes["fn-broken"].reason(), "cannot load broken");

    // A slow invocation does not hold up the others.
    host.send(http_request("fn-slowpoke", "slow-1"));

    host.send(http_request("fn-hello", "i-1"));
    let r = host.response().await;
    assert_eq!(r.invocation_id, "i-1");
    assert_eq!(r.result.status, Outcome::Success);
    assert!(r.return_value.is_none());
    let h = http_of(&r, Some("res"));
    assert_eq!(h.status_code, "200");
    let Some(TypedData::String(body)) = h.body else {
        panic!("not a string body");
    };
    let echo: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(echo["function"], "hello");
    assert_eq!(echo["functionId"], "fn-hello");
    assert_eq!(echo["invocationId"], "i-1");
    assert_eq!(echo["inputs"], serde_json::json!(["req"]));
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["query"], serde_json::json!({"a": "1"}));
    assert_eq!(echo["nullableMaps"], true);
    assert_eq!(
        echo["body"],
        serde_json::json!({"kind": "string", "value": "hi"})
    );
    assert_eq!(echo["rawBody"], serde_json::json!({"kind": "none"}));
    assert_eq!(echo["triggerMetadata"], serde_json::json!(["Query"]));
    assert_eq!(
        echo["triggerMetadataKinds"],
        serde_json::json!({"Query": "json"})
    );

    host.send(http_request("fn-logger", "i-2"));
    let FromWorker::Log(first) = host.next().await else {
        panic!("no log");
    };
    assert_eq!(first.invocation_id, "i-2");
    assert_eq!(first.category, "Function.logger.User");
    assert_eq!(first.level, LogLevel::Information);
    assert_eq!(first.message, "hello from the test worker");
    assert!(!first.system);
    let FromWorker::Log(second) = host.next().await else {
        panic!("no second log");
    };
    assert_eq!(second.level, LogLevel::Warning);
    assert_eq!(second.message, "careful");
    let r = host.response().await;
    assert_eq!(r.return_value, Some(TypedData::String("logged".into())));

    host.send(http_request("fn-failer", "i-3"));
    let r = host.response().await;
    assert_eq!(r.result.status, Outcome::Failure);
    let e = r.result.exception.expect("an exception");
    assert_eq!(e.message, "boom from the test worker");
    assert_eq!(e.stack_trace, "at test");

    host.send(http_request("fn-cookies", "i-4"));
    let h = http_of(&host.response().await, None);
    assert_eq!(h.status_code, "");
    assert_eq!(h.body, Some(TypedData::String("cookie set".into())));
    assert_eq!(
        h.cookies,
        vec![Cookie {
            name: "session".into(),
            value: "a b".into(),
            path: Some("/api".into()),
            http_only: Some(true),
            same_site: SameSite::Lax,
            max_age: Some(60.0),
            ..Cookie::default()
        }]
    );

    host.send(http_request("fn-teapot", "i-5"));
    let h = http_of(&host.response().await, None);
    assert_eq!(h.status_code, "418");
    assert_eq!(h.headers, vec![("x-test".to_string(), "1".to_string())]);
    assert_eq!(
        h.body,
        Some(TypedData::Bytes(bytes::Bytes::from_static(b"\x00\x01")))
    );

    host.send(ToWorker::WorkerStatus);
    assert_eq!(host.next().await, FromWorker::WorkerStatusResponse);

    host.send(ToWorker::InvocationCancel {
        invocation_id: "slow-1".into(),
    });
    let r = host.response().await;
    assert_eq!(r.invocation_id, "slow-1");
    assert_eq!(r.result.status, Outcome::Cancelled);

    // Streaming: the proxied request answered before the invocation arrives...
    let answer = get(&addr, "s-0").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("text/plain"), "{answer}");
    assert!(
        answer.ends_with("streamed s-0 host=example.com proto=https POST /api/s?x=1 hello"),
        "{answer}"
    );
    host.send(http_request("fn-streamer", "s-0"));
    let r = host.response().await;
    assert_eq!(r.result.status, Outcome::Success);
    assert_eq!(r.return_value, None);
    // ... and after it.
    host.send(http_request("fn-streamer", "s-1"));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), host.stream.inbound.recv())
            .await
            .is_err(),
        "answered before the request"
    );
    get(&addr, "s-1").await;
    let r = host.response().await;
    assert_eq!(r.invocation_id, "s-1");
    assert_eq!(r.result.status, Outcome::Success);

    host.send(ToWorker::WorkerTerminate {
        grace: Duration::from_secs(5),
    });
    assert_eq!(host.exit().await.code(), Some(0));
}

#[tokio::test]
async fn a_host_indexed_app_gets_single_loads_and_the_echo_default() {
    let app = tempfile::tempdir().expect("tempdir");
    let mut host = Host::start(legacy_arguments, &[]).await;
    host.send(ToWorker::WorkerInit(WorkerInit::default()));
    let FromWorker::WorkerInitResponse(init) = host.next().await else {
        panic!("no init response");
    };
    assert!(init.capabilities.is_empty(), "{:?}", init.capabilities);

    host.send(ToWorker::FunctionsMetadata {
        app_directory: app.path().to_string_lossy().into_owned(),
    });
    let FromWorker::FunctionMetadataResponse(index) = host.next().await else {
        panic!("no metadata response");
    };
    assert!(index.use_default_metadata_indexing);
    assert!(index.functions.is_empty());

    let load = |id: &str| FunctionLoad {
        function_id: id.into(),
        metadata: FunctionMetadata {
            name: format!("name-{id}"),
            ..FunctionMetadata::default()
        },
        managed_dependency_enabled: false,
    };
    host.send(ToWorker::FunctionLoadCollection(vec![load("a"), load("b")]));
    for id in ["a", "b"] {
        let FromWorker::FunctionLoadResponse(r) = host.next().await else {
            panic!("no single load response");
        };
        assert_eq!(r.function_id, id);
        assert_eq!(r.result.status, Outcome::Success);
    }

    host.send(http_request("b", "i-1"));
    let h = http_of(&host.response().await, None);
    assert_eq!(
        h.headers,
        vec![("content-type".into(), "application/json".into())]
    );
    let Some(TypedData::String(body)) = h.body else {
        panic!("not a string body");
    };
    let echo: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(echo["function"], "name-b");

    host.send(http_request("nope", "i-2"));
    assert_eq!(host.response().await.result.status, Outcome::Failure);

    drop(host.stream.outbound);
    let Host { child, .. } = host;
    let mut child = child;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the worker exits in time")
        .expect("wait");
    assert_eq!(status.code(), Some(1));
}
