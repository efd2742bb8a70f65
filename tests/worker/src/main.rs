//! `stratus-test-worker`: a conformance test language worker. It speaks FunctionRpc to the
//! host the way Python's and Node's workers do (StartStream → WorkerInit → indexing → loads →
//! concurrent invocations), so host tests need no real language runtime.
//!
//! Command line: what a host passes to any worker, either `--host H --port P --workerId W
//! --requestId R --grpcMaxMessageLength N` or `--functions-uri http://H:P/
//! --functions-worker-id W --functions-request-id R --functions-grpc-max-message-length N`
//! (preferred when both are given), in any order; other arguments are ignored.
//!
//! Environment (the host passes the app's settings):
//! - `TEST_WORKER_CAPABILITIES`: comma-separated capability names to advertise (each with
//!   value `true`), e.g. `RpcHttpBodyOnly,UseNullableValueDictionaryForHttp,WorkerStatus`.
//! - `TEST_WORKER_HTTP_URI=true`: start an HTTP server on a loopback port and advertise
//!   `HttpUri` (its address) and `RequiresRouteParameters`; it answers every proxied request
//!   with `streamed <invocation id> host=<x-forwarded-host> proto=<x-forwarded-proto> <METHOD>
//!   <path?query> <body>`.
//!
//! Functions: `<app>/functions.test.json` (a JSON array of `{name, entryPoint, bindings}`)
//! makes the worker index the app itself; without it the host reads `function.json`. A
//! function's entry point picks its behaviour (see [`behaviour`]): `echo` (default), `fail`,
//! `log`, `cookie`, `status`, `slow`, `stream`; `unloadable` fails to load.
//!
//! Exit: 0 on `WorkerTerminate`, 1 when the host ends the stream or cannot be reached,
//! 64 on a bad command line.

mod args;
mod behaviour;
mod echo;
mod http;
mod index;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use stratus_proto::msg::{
    FunctionLoad, FunctionLoadResponse, Invocation, InvocationResponse, StatusResult,
    WorkerInitResponse, WorkerMetadata,
};
use stratus_proto::{FromWorker, ToWorker, WorkerSide};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::{Context, Function};
use crate::http::Answered;

/// Invocations in flight that the host may cancel.
type Cancels = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

struct Worker {
    outbound: mpsc::UnboundedSender<FromWorker>,
    /// What this worker advertised.
    capabilities: HashMap<String, String>,
    functions: HashMap<String, Arc<Function>>,
    cancels: Cancels,
    answered: Arc<Answered>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("stratus-test-worker: {e}");
            return ExitCode::from(64);
        }
    };
    let WorkerSide {
        mut inbound,
        outbound,
    } = match stratus_proto::client::connect(&args.uri, &args.worker_id, &args.request_id).await {
        Ok(side) => side,
        Err(e) => {
            eprintln!("stratus-test-worker: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("test worker connected");
    let mut worker = Worker {
        outbound,
        capabilities: HashMap::new(),
        functions: HashMap::new(),
        cancels: Arc::default(),
        answered: Arc::default(),
    };
    while let Some(msg) = inbound.recv().await {
        if let ToWorker::WorkerTerminate { .. } = msg {
            return ExitCode::SUCCESS;
        }
        worker.handle(msg).await;
    }
    eprintln!("stratus-test-worker: the host ended the stream");
    ExitCode::from(1)
}

impl Worker {
    fn send(&self, msg: FromWorker) {
        let _ = self.outbound.send(msg);
    }

    async fn handle(&mut self, msg: ToWorker) {
        match msg {
            ToWorker::WorkerInit(_) => {
                let answer = self.init().await;
                self.send(FromWorker::WorkerInitResponse(answer));
            }
            ToWorker::FunctionsMetadata { app_directory } => {
                self.send(FromWorker::FunctionMetadataResponse(index::index(
                    &app_directory,
                )));
            }
            ToWorker::FunctionLoad(l) => {
                let r = self.load(l);
                self.send(FromWorker::FunctionLoadResponse(r));
            }
            ToWorker::FunctionLoadCollection(ls) => {
                let rs: Vec<_> = ls.into_iter().map(|l| self.load(l)).collect();
                if self
                    .capabilities
                    .contains_key("SupportsLoadResponseCollection")
                {
                    self.send(FromWorker::FunctionLoadResponses(rs));
                } else {
                    for r in rs {
                        self.send(FromWorker::FunctionLoadResponse(r));
                    }
                }
            }
            ToWorker::Invocation(inv) => self.invoke(*inv),
            ToWorker::InvocationCancel { invocation_id } => {
                let waiting = self
                    .cancels
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&invocation_id);
                if let Some(cancel) = waiting {
                    let _ = cancel.send(());
                }
            }
            ToWorker::WorkerStatus => self.send(FromWorker::WorkerStatusResponse),
            ToWorker::WorkerTerminate { .. } => {}
        }
    }

    /// The capabilities from the environment, and the HTTP server when asked for.
    async fn init(&mut self) -> WorkerInitResponse {
        let mut capabilities: HashMap<String, String> = std::env::var("TEST_WORKER_CAPABILITIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| (c.to_string(), "true".to_string()))
            .collect();
        let mut result = StatusResult::success();
        if std::env::var("TEST_WORKER_HTTP_URI").is_ok_and(|v| v == "true") {
            match http::start(self.answered.clone()).await {
                Ok(addr) => {
                    capabilities.insert("HttpUri".into(), format!("http://{addr}/"));
                    capabilities.insert("RequiresRouteParameters".into(), "true".into());
                }
                Err(e) => {
                    result = behaviour::failure(format!("cannot start the HTTP server: {e}"), "")
                }
            }
        }
        self.capabilities = capabilities.clone();
        WorkerInitResponse {
            capabilities,
            result,
            worker_metadata: Some(WorkerMetadata {
                runtime_name: "stratus-test-worker".to_string(),
                runtime_version: env!("CARGO_PKG_VERSION").to_string(),
                worker_version: "1.0.0".to_string(),
                worker_bitness: "64".to_string(),
            }),
        }
    }

    fn load(&mut self, l: FunctionLoad) -> FunctionLoadResponse {
        let function = Function::from_load(&l);
        let result = if function.entry_point == "unloadable" {
            behaviour::failure(format!("cannot load {}", function.name), "")
        } else {
            self.functions
                .insert(l.function_id.clone(), Arc::new(function));
            StatusResult::success()
        };
        FunctionLoadResponse {
            function_id: l.function_id,
            result,
        }
    }

    fn invoke(&self, inv: Invocation) {
        let Some(function) = self.functions.get(&inv.function_id).cloned() else {
            self.send(FromWorker::InvocationResponse(Box::new(
                InvocationResponse {
                    result: behaviour::failure(
                        format!("function {} is not loaded", inv.function_id),
                        "",
                    ),
                    invocation_id: inv.invocation_id,
                    ..InvocationResponse::default()
                },
            )));
            return;
        };
        let (cancel, cancelled) = oneshot::channel();
        let id = inv.invocation_id.clone();
        // Registered before the task starts, so a cancel that follows at once is not lost.
        self.cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), cancel);
        let cx = Context {
            outbound: self.outbound.clone(),
            answered: self.answered.clone(),
            cancelled,
        };
        let cancels = self.cancels.clone();
        tokio::spawn(async move {
            behaviour::invoke(function, inv, cx).await;
            cancels
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
    }
}
