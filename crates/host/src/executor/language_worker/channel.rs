//! One language-worker process and its stream: start it, run the handshake (StartStream,
//! WorkerInit, metadata, function loads), route its answers to the invocations waiting for
//! them, and restart it with back-off when it exits.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use stratus_proto::msg::{
    FunctionLoad, FunctionLoadResponse, InvocationResponse, Log, LogLevel, Outcome, WorkerInit,
};
use stratus_proto::{FromWorker, RpcServer, ToWorker, WorkerStream};
use stratus_sandbox::{LineSink, Process, ProcessSpec, Stream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::capabilities::Capabilities;
use super::catalog::{self, IndexContext, Indexed, Loads};
use super::discover::{ArgumentStyle, WorkerLaunch};
use crate::app::Function;

/// Target of the workers' own output (console lines and system logs).
pub const WORKER_TARGET: &str = "stratus::worker";

/// How the worker answered one invocation, or why it could not.
pub type Answer = Result<InvocationResponse, String>;

/// An invocation waiting for its response.
pub(super) struct Pending {
    pub function: Arc<Function>,
    pub invocation_id: uuid::Uuid,
    pub answer: oneshot::Sender<Answer>,
}

/// A worker that completed its handshake and serves invocations.
pub struct Live {
    pub generation: u64,
    pub capabilities: Capabilities,
    pub outbound: mpsc::UnboundedSender<ToWorker>,
    pending: Mutex<PendingMap>,
    /// Function name (lower case) → the id this worker knows it by.
    pub ids: HashMap<String, String>,
    /// Functions the worker could not load, with its reason.
    pub load_errors: HashMap<String, String>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// The invocations waiting for this worker's answers; closed once the worker is gone, so
/// that nothing waits on a worker that will never answer.
#[derive(Default)]
struct PendingMap {
    closed: bool,
    map: HashMap<String, Pending>,
}

impl Live {
    /// Registers an invocation; gives it back when the worker is already gone.
    pub(super) fn register(&self, invocation_id: String, p: Pending) -> Result<(), Pending> {
        let mut pending = self.pending.lock();
        if pending.closed {
            return Err(p);
        }
        pending.map.insert(invocation_id, p);
        Ok(())
    }

    /// Forgets an invocation nobody waits for any more.
    pub(super) fn forget(&self, invocation_id: &str) {
        self.pending.lock().map.remove(invocation_id);
    }

    fn take(&self, invocation_id: &str) -> Option<Pending> {
        self.pending.lock().map.remove(invocation_id)
    }

    fn function_of(&self, invocation_id: &str) -> Option<(Arc<Function>, uuid::Uuid)> {
        self.pending
            .lock()
            .map
            .get(invocation_id)
            .map(|p| (p.function.clone(), p.invocation_id))
    }

    /// Fails every invocation still waiting, with `reason`, and refuses new ones.
    fn fail_all(&self, reason: &str) {
        let pending: Vec<Pending> = {
            let mut pending = self.pending.lock();
            pending.closed = true;
            pending.map.drain().map(|(_, p)| p).collect()
        };
        for p in pending {
            let _ = p.answer.send(Err(reason.to_string()));
        }
    }
}

/// What callers can see of one worker.
#[derive(Debug, Clone)]
pub enum State {
    Starting,
    Ready(Arc<Live>),
    Down(String),
    Stopped,
}

pub use super::super::supervision::Control;
use super::super::supervision::backoff;

/// What every start of a worker needs.
#[derive(Debug)]
pub struct Setup {
    pub launch: WorkerLaunch,
    pub env: Vec<(OsString, OsString)>,
    pub app_root: String,
    /// The function.json functions, for host indexing (and as the fallback of worker indexing).
    pub host_loads: Loads,
    pub index: IndexContext,
    /// The outcome of worker indexing, decided by the first worker that answers: the
    /// functions it reported, or None when it asked for function.json indexing.
    pub indexed: OnceLock<Option<Indexed>>,
    /// Process generations, shared by all slots (so a generation names one process).
    pub generations: std::sync::atomic::AtomicU64,
    pub load_timeout: Duration,
    pub log_levels: HashMap<String, LogLevel>,
}

/// Keeps the last lines a process wrote, to explain an early exit.
#[derive(Default)]
struct Tail(Mutex<VecDeque<String>>);

impl Tail {
    fn push(&self, line: &str) {
        let mut q = self.0.lock();
        if q.len() == 8 {
            q.pop_front();
        }
        q.push_back(line.to_string());
    }

    fn text(&self) -> String {
        let q = self.0.lock();
        if q.is_empty() {
            String::new()
        } else {
            format!(
                "; its last output: {}",
                q.iter().cloned().collect::<Vec<_>>().join(" | ")
            )
        }
    }
}

fn console_sink(language: String, tail: Arc<Tail>) -> LineSink {
    Arc::new(move |stream, line| {
        let line = line
            .strip_prefix("LanguageWorkerConsoleLog")
            .unwrap_or(line);
        if line.trim().is_empty() {
            return;
        }
        tail.push(line);
        match stream {
            Stream::Stdout => tracing::info!(target: WORKER_TARGET, worker = %language, "{line}"),
            Stream::Stderr => tracing::warn!(target: WORKER_TARGET, worker = %language, "{line}"),
        }
    })
}

/// The worker's command line: its own arguments, then the protocol's.
fn command_args(
    launch: &WorkerLaunch,
    port: u16,
    worker_id: &str,
    request_id: &str,
) -> Vec<OsString> {
    let max = stratus_proto::server::MAX_MESSAGE_LENGTH.to_string();
    let mut args = launch.args.clone();
    for a in [
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--workerId",
        worker_id,
        "--requestId",
        request_id,
        "--grpcMaxMessageLength",
        &max,
    ] {
        args.push(a.into());
    }
    if launch.style == ArgumentStyle::Both {
        for a in [
            "--functions-uri",
            &format!("http://127.0.0.1:{port}/"),
            "--functions-worker-id",
            worker_id,
            "--functions-request-id",
            request_id,
            "--functions-grpc-max-message-length",
            &max,
        ] {
            args.push(a.into());
        }
    }
    args
}

fn model_level(l: LogLevel) -> stratus_model::LogLevel {
    use stratus_model::LogLevel as M;
    match l {
        LogLevel::Trace => M::Trace,
        LogLevel::Debug => M::Debug,
        LogLevel::Information => M::Information,
        LogLevel::Warning => M::Warning,
        LogLevel::Error => M::Error,
        LogLevel::Critical => M::Critical,
        LogLevel::None => M::None,
    }
}

/// Routes a worker's log line to the function's log stream or the worker's.
pub(super) fn log(language: &str, log: &Log, function: Option<(&Function, uuid::Uuid)>) {
    let level = log.level;
    if level == LogLevel::None {
        return;
    }
    match function {
        Some((f, id)) if !log.system => {
            crate::logging::worker_log(f, id, model_level(level), &log.message)
        }
        // Function code's own line whose invocation is over: keep its level.
        None if !log.system && level >= LogLevel::Information => {
            let (msg, id) = (&log.message, &log.invocation_id);
            match level {
                LogLevel::Information => {
                    tracing::info!(target: WORKER_TARGET, worker = %language, invocation_id = %id, "{msg}")
                }
                LogLevel::Warning => {
                    tracing::warn!(target: WORKER_TARGET, worker = %language, invocation_id = %id, "{msg}")
                }
                _ => {
                    tracing::error!(target: WORKER_TARGET, worker = %language, invocation_id = %id, "{msg}")
                }
            }
        }
        _ => {
            let msg = &log.message;
            match level {
                LogLevel::Error | LogLevel::Critical => {
                    tracing::error!(target: WORKER_TARGET, worker = %language, "{msg}")
                }
                LogLevel::Warning => {
                    tracing::warn!(target: WORKER_TARGET, worker = %language, "{msg}")
                }
                LogLevel::Information => {
                    tracing::debug!(target: WORKER_TARGET, worker = %language, "{msg}")
                }
                _ => tracing::trace!(target: WORKER_TARGET, worker = %language, "{msg}"),
            }
        }
    }
}

/// Reads messages until `pick` accepts one, logging the worker's logs on the way.
async fn until<T>(
    stream: &mut WorkerStream,
    deadline: Instant,
    language: &str,
    phase: &str,
    mut pick: impl FnMut(FromWorker) -> Option<T>,
) -> Result<T, String> {
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.inbound.recv())
            .await
            .map_err(|_| format!("the worker did not answer the {phase} in time"))?
            .ok_or_else(|| format!("the worker closed its stream during the {phase}"))?;
        match msg {
            FromWorker::Log(l) => log(language, &l, None),
            other => {
                if let Some(v) = pick(other) {
                    return Ok(v);
                }
            }
        }
    }
}

/// After `StartStream`: WorkerInit, worker indexing, the function loads.
async fn handshake(
    stream: &mut WorkerStream,
    setup: &Setup,
) -> Result<(Capabilities, Loads, HashMap<String, String>), String> {
    let launch = &setup.launch;

    let send = |stream: &WorkerStream, m: ToWorker| {
        stream
            .outbound
            .send(m)
            .map_err(|_| "the worker's stream closed".to_string())
    };
    send(
        stream,
        ToWorker::WorkerInit(WorkerInit {
            host_version: crate::HOST_VERSION.to_string(),
            capabilities: HashMap::new(),
            log_categories: setup.log_levels.clone(),
            worker_directory: launch.worker_dir.display().to_string(),
            function_app_directory: setup.app_root.clone(),
        }),
    )?;
    let language = launch.language.as_str();
    let init = until(
        stream,
        Instant::now() + launch.process.initialization_timeout,
        language,
        "initialization",
        |m| match m {
            FromWorker::WorkerInitResponse(r) => Some(r),
            _ => None,
        },
    )
    .await?;
    if init.result.status != Outcome::Success {
        return Err(format!(
            "the worker failed to initialize: {}",
            init.result.reason()
        ));
    }
    let capabilities = Capabilities::from_map(&init.capabilities);

    // A worker installed as a package may be a current one that indexes apps itself (it says
    // who it is in `worker_metadata`; the old releases say nothing and ignore the request).
    let indexing = launch.worker_indexing
        || (launch.style == super::discover::ArgumentStyle::Legacy
            && init
                .worker_metadata
                .as_ref()
                .is_some_and(|m| !m.worker_version.is_empty()));
    let plan = if indexing {
        index(stream, setup, language).await?
    } else {
        setup.host_loads.clone()
    };
    let loads: Vec<FunctionLoad> = plan.loads.iter().map(|(_, l)| l.clone()).collect();
    let count = loads.len();
    if capabilities.accepts_load_list && count > 0 {
        send(stream, ToWorker::FunctionLoadCollection(loads))?;
    } else {
        for l in loads {
            send(stream, ToWorker::FunctionLoad(l))?;
        }
    }
    let deadline = Instant::now() + setup.load_timeout;
    let mut answers: Vec<FunctionLoadResponse> = Vec::with_capacity(count);
    while answers.len() < count {
        let mut batch = until(stream, deadline, language, "function loads", |m| match m {
            FromWorker::FunctionLoadResponse(r) => Some(vec![r]),
            FromWorker::FunctionLoadResponses(rs) => Some(rs),
            _ => None,
        })
        .await?;
        answers.append(&mut batch);
    }
    let mut load_errors = HashMap::new();
    for (function, load) in &plan.loads {
        let answer = answers.iter().find(|a| a.function_id == load.function_id);
        let failure = match answer {
            Some(a) if a.result.status == Outcome::Success => None,
            Some(a) => Some(a.result.reason()),
            None => Some("the worker did not answer its load request".to_string()),
        };
        if let Some(reason) = failure {
            tracing::error!(
                function = %function.name,
                "Worker failed to load function: '{}' with functionId: '{}'. {reason}",
                function.name,
                load.function_id
            );
            load_errors.insert(function.name.clone(), reason);
        }
    }
    Ok((capabilities, plan, load_errors))
}

/// Starts the worker and runs the handshake; on success the worker serves invocations.
async fn start_once(
    setup: &Setup,
    server: &RpcServer,
    generation: u64,
) -> Result<(Arc<Live>, Process, WorkerStream), String> {
    let launch = &setup.launch;
    let worker_id = uuid::Uuid::new_v4().to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut expected = server.expect(&worker_id);
    let spec = ProcessSpec {
        program: launch.program.clone(),
        args: command_args(launch, server.port(), &worker_id, &request_id),
        cwd: setup.app_root.clone().into(),
        env: setup.env.clone(),
    };
    let tail = Arc::new(Tail::default());
    let mut process = Process::spawn(&spec, console_sink(launch.language.clone(), tail.clone()))
        .map_err(|e| e.to_string())?;
    tracing::info!(target: WORKER_TARGET, worker = %launch.language, pid = process.pid(), %worker_id, "language worker started");

    let started = tokio::time::timeout(launch.process.startup_timeout, async {
        tokio::select! {
            s = expected.connected() => s.ok_or_else(|| "the host stopped".to_string()),
            status = process.wait() => {
                // Let the last output lines arrive before quoting them.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(match status {
                    Ok(s) => format!("the worker exited before connecting ({s}){}", tail.text()),
                    Err(e) => e.to_string(),
                })
            }
        }
    })
    .await
    .map_err(|_| {
        format!(
            "the worker did not connect within {} s{}",
            launch.process.startup_timeout.as_secs(),
            tail.text()
        )
    })?;
    let mut stream = started?;
    let shook = tokio::select! {
        r = handshake(&mut stream, setup) => r,
        status = process.wait() => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(match status {
                Ok(s) => format!("the worker exited during start-up ({s})"),
                Err(e) => e.to_string(),
            })
        }
    };
    let (capabilities, plan, load_errors) = shook.map_err(|e| format!("{e}{}", tail.text()))?;
    let live = Arc::new(Live {
        generation,
        capabilities,
        outbound: stream.outbound.clone(),
        pending: Mutex::new(PendingMap::default()),
        ids: plan.ids(),
        load_errors,
    });
    Ok((live, process, stream))
}

/// How long a worker may take to index the app.
const METADATA_TIMEOUT: Duration = Duration::from_secs(60);

/// Worker indexing: asks the worker for the app's functions and decides what to load.
async fn index(stream: &mut WorkerStream, setup: &Setup, language: &str) -> Result<Loads, String> {
    stream
        .outbound
        .send(ToWorker::FunctionsMetadata {
            app_directory: setup.app_root.clone(),
        })
        .map_err(|_| "the worker's stream closed".to_string())?;
    let answer = until(
        stream,
        Instant::now() + METADATA_TIMEOUT,
        language,
        "function metadata request",
        |m| match m {
            FromWorker::FunctionMetadataResponse(r) => Some(r),
            _ => None,
        },
    )
    .await?;
    if answer.use_default_metadata_indexing {
        setup.indexed.get_or_init(|| None);
        return Ok(setup.host_loads.clone());
    }
    if answer.result.status != Outcome::Success {
        // As the Azure host: the app runs with no functions, and the worker stays up.
        tracing::error!(target: WORKER_TARGET, worker = %language,
            "Worker failed to index functions: {}", answer.result.reason());
        setup.indexed.get_or_init(|| {
            Some(Indexed {
                functions: Vec::new(),
                errors: Vec::new(),
            })
        });
        return Ok(Loads::default());
    }
    let decided = setup
        .indexed
        .get_or_init(|| Some(catalog::from_metadata(&setup.index, &answer.functions)));
    Ok(match decided {
        Some(indexed) => catalog::worker_loads(indexed, &answer.functions),
        None => setup.host_loads.clone(),
    })
}

/// Delivers the worker's messages until its stream ends.
async fn pump(stream: &mut WorkerStream, live: &Live, language: &str) {
    while let Some(msg) = stream.inbound.recv().await {
        match msg {
            FromWorker::InvocationResponse(r) => {
                if let Some(p) = live.take(&r.invocation_id) {
                    let _ = p.answer.send(Ok(*r));
                }
            }
            FromWorker::Log(l) => {
                let function = if l.invocation_id.is_empty() {
                    None
                } else {
                    live.function_of(&l.invocation_id)
                };
                match function {
                    Some((f, id)) => log(language, &l, Some((&f, id))),
                    None => log(language, &l, None),
                }
            }
            FromWorker::WorkerStatusResponse => {}
            other => {
                tracing::debug!(target: WORKER_TARGET, worker = %language, "ignored a message from the worker: {other:?}")
            }
        }
    }
}

/// Stops a worker: `WorkerTerminate` when it handles it, then its whole process group.
async fn stop(live: &Live, process: &mut Process) {
    let grace = Duration::from_secs(5);
    if live.capabilities.handles_worker_terminate
        && live
            .outbound
            .send(ToWorker::WorkerTerminate { grace })
            .is_ok()
    {
        let _ = tokio::time::timeout(grace, process.wait()).await;
    }
    process.terminate(Duration::from_secs(2)).await;
}

/// What a control message means while the worker starts or waits to restart.
enum Interrupt {
    Stop(Option<oneshot::Sender<()>>),
    Ignore,
}

fn interrupt(c: Option<Control>) -> Interrupt {
    match c {
        Some(Control::Stop(ack)) => Interrupt::Stop(Some(ack)),
        // The executor is gone: stop as if told to.
        None => Interrupt::Stop(None),
        // A restart of a process that no longer runs.
        Some(Control::Restart { .. }) => Interrupt::Ignore,
    }
}

/// Runs `work` while answering control messages (restarts of a process that no longer runs
/// are ignored); None when told to stop, which is acknowledged.
async fn unless_stopped<T>(
    work: impl std::future::Future<Output = T>,
    control: &mut mpsc::UnboundedReceiver<Control>,
    state: &watch::Sender<State>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            r = &mut work => return Some(r),
            c = control.recv() => match interrupt(c) {
                Interrupt::Ignore => {}
                Interrupt::Stop(ack) => {
                    state.send_replace(State::Stopped);
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                    return None;
                }
            },
        }
    }
}

/// Runs one worker slot until told to stop: start, serve, restart with back-off.
/// `generations` is shared by the slots, so a process is named by its generation alone.
pub async fn supervise(
    setup: Arc<Setup>,
    server: Arc<RpcServer>,
    state: watch::Sender<State>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let language = setup.launch.language.clone();
    let mut failures = 0u32;
    loop {
        let generation = setup
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        state.send_replace(State::Starting);
        let starting = start_once(&setup, &server, generation);
        let Some(started) = unless_stopped(starting, &mut control, &state).await else {
            return;
        };
        let reason = match started {
            Ok((live, mut process, mut stream)) => {
                let since = Instant::now();
                state.send_replace(State::Ready(live.clone()));
                let outcome = tokio::select! {
                    status = process.wait() => Ok(match status {
                        Ok(s) => match process.killed_for_memory() {
                            Some(why) => format!("the language worker exited ({s}): {why}"),
                            None => format!("the language worker exited ({s})"),
                        },
                        Err(e) => e.to_string(),
                    }),
                    () = pump(&mut stream, &live, &language) => {
                        // A stream that ends usually means the process is ending: say how.
                        Ok(match tokio::time::timeout(Duration::from_secs(1), process.wait()).await {
                            Ok(Ok(s)) => format!("the language worker exited ({s})"),
                            _ => "the language worker closed its stream".to_string(),
                        })
                    }
                    c = async {
                        loop {
                            match control.recv().await {
                                Some(Control::Restart { reason, generation: g }) if g == generation => return Ok(reason),
                                Some(Control::Restart { .. }) => {}
                                Some(Control::Stop(ack)) => return Err(Some(ack)),
                                None => return Err(None),
                            }
                        }
                    } => c,
                };
                match outcome {
                    Ok(reason) => {
                        state.send_replace(State::Down(reason.clone()));
                        live.fail_all(&reason);
                        process.terminate(Duration::from_secs(2)).await;
                        if since.elapsed() > Duration::from_secs(60) {
                            failures = 0;
                        }
                        reason
                    }
                    Err(ack) => {
                        state.send_replace(State::Stopped);
                        live.fail_all("the host is stopping");
                        stop(&live, &mut process).await;
                        // Acknowledge only once the worker is gone.
                        if let Some(ack) = ack {
                            let _ = ack.send(());
                        }
                        return;
                    }
                }
            }
            Err(reason) => {
                state.send_replace(State::Down(reason.clone()));
                reason
            }
        };
        let wait = backoff(failures);
        failures = failures.saturating_add(1);
        tracing::error!(target: WORKER_TARGET, worker = %language,
            "{reason}; starting it again in {} ms", wait.as_millis());
        if unless_stopped(tokio::time::sleep(wait), &mut control, &state)
            .await
            .is_none()
        {
            return;
        }
    }
}
