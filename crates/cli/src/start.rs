//! `stratus start`: serve one function app on this machine, as `func start` does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stratus_host::bindings::OutputSink;
use stratus_host::clock::SystemClock;
use stratus_host::executor::custom_handler::CustomHandler;
use stratus_host::executor::language_worker::{LanguageWorker, WorkerOptions};
use stratus_host::queues::QueueStore;
use stratus_host::triggers::state::{LeaseStore, TimerStatusStore};
use stratus_host::triggers::{queue, timer};
use stratus_host::{App, AuthMode, Cors, Executor, Host, HostOptions};

use crate::config::{Config, ConfigFlags};
use crate::{ExitError, telemetry::Telemetry};

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The app directory (containing host.json).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Port to listen on (default: local.settings.json Host.LocalHttpPort, else 7071).
    #[arg(short, long)]
    pub port: Option<u16>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: String,
    /// Allowed CORS origins, comma-separated (default: local.settings.json Host.CORS).
    #[arg(long)]
    pub cors: Option<String>,
    /// Allow credentials in CORS requests.
    #[arg(long)]
    pub cors_credentials: bool,
    /// Treat every caller as admin, ignoring keys (local development only; `func start` without `--enableAuth`).
    #[arg(long)]
    pub no_auth: bool,
    /// Accepted for compatibility with `func start`: keys are enforced by default.
    #[arg(long = "enableAuth", hide = true)]
    pub enable_auth: bool,
    /// Directory holding language workers (`<language>/worker.config.json`), as in Core Tools.
    /// Also STRATUS_WORKERS_DIR; `languageWorkers__workersDirectory` in the app settings wins.
    #[arg(long, value_name = "DIR")]
    pub workers_dir: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigFlags,
}

/// The workers directory: the flag or configuration, else `workers` beside the executable
/// when it exists.
fn workers_dir(configured: Option<PathBuf>) -> Option<PathBuf> {
    configured.or_else(|| {
        let beside = std::env::current_exe().ok()?.parent()?.join("workers");
        beside.is_dir().then_some(beside)
    })
}

/// Core Tools' function list: HTTP functions with methods and URL, then the others.
fn print_functions(app: &App, port: u16) {
    let mut out = String::from("\nFunctions:\n\n");
    let prefix = &app.config.http.route_prefix;
    let enabled: Vec<_> = app.functions.iter().filter(|f| !f.disabled).collect();
    for f in enabled.iter().filter(|f| f.is_http()) {
        let http = f.config.http().expect("filtered on HTTP functions");
        let methods = http
            .methods
            .as_ref()
            .map(|m| format!("[{}]", m.join(",")))
            .unwrap_or_default();
        let route = stratus_model::route::table::effective_route(&f.name, http);
        let path = if prefix.is_empty() {
            route.to_string()
        } else {
            format!("{prefix}/{route}")
        };
        out.push_str(&format!(
            "\t{}: {methods} http://localhost:{port}/{path}\n\n",
            f.name
        ));
    }
    for f in enabled.iter().filter(|f| !f.is_http()) {
        out.push_str(&format!(
            "\t{}: {}\n\n",
            f.name,
            f.config.trigger_binding().type_name
        ));
    }
    for f in app.functions.iter().filter(|f| f.disabled) {
        out.push_str(&format!("Function {} is disabled.\n", f.name));
    }
    if app.functions.is_empty() {
        out.push_str("\tNo functions loaded.\n\n");
    }
    print!("{out}");
}

pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
    }
}

pub async fn run(args: StartArgs, telemetry: &Telemetry) -> Result<(), ExitError> {
    let config = Config::resolve(&args.config, &crate::config::ProcessEnv)
        .map_err(|e| ExitError::Config(e.into()))?;
    let mut app = crate::app::load(&args.dir)
        .map_err(|e| ExitError::Config(anyhow::anyhow!("the app cannot start: {e}")))?;
    telemetry.apply_host_levels(&app.config.log_levels);
    for e in &app.errors {
        tracing::error!(
            "The '{}' function is in error: {}",
            e.name,
            e.errors.join("\n")
        );
    }

    let local = app.local.clone().unwrap_or_default();
    let port = args.port.or(local.local_http_port).unwrap_or(7071);
    let origins: Vec<String> = match &args.cors {
        Some(c) => c
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => local.cors.clone(),
    };
    let cors = Cors {
        origins,
        credentials: args.cors_credentials || local.cors_credentials,
    };
    if cors.credentials && cors.origins.iter().any(|o| o == "*") {
        return Err(ExitError::Config(anyhow::anyhow!(
            "CORS: allowing credentials from any origin (\"*\") would let every website act as the signed-in user; \
             list the allowed origins instead"
        )));
    }
    // What `func start` sets for the app.
    app.settings
        .insert_if_absent("AZURE_FUNCTIONS_ENVIRONMENT", "Development");
    app.settings
        .insert_if_absent("WEBSITE_HOSTNAME", &format!("localhost:{port}"));
    let auth = if args.no_auth {
        AuthMode::Relaxed
    } else {
        AuthMode::Enforce
    };

    let listener = tokio::net::TcpListener::bind((args.address.as_str(), port)).await.map_err(|e| {
        ExitError::Unavailable(anyhow::anyhow!(
            "Port {port} is unavailable ({e}). Close the process using that port, or specify another port using --port [-p]."
        ))
    })?;

    let cannot = |e: String| ExitError::Config(anyhow::anyhow!("the app cannot start: {e}"));
    let mut worker = None;
    let executor: Arc<dyn Executor> = match app.config.custom_handler.clone() {
        Some(handler_config) => {
            let executor = Arc::new(CustomHandler::new(&app, &handler_config).map_err(cannot)?);
            tracing::info!(command = %executor.command_line(), "custom handler");
            executor
        }
        None => {
            let options = WorkerOptions {
                workers_dir: workers_dir(args.workers_dir.clone().or(config.workers_dir.clone())),
            };
            let executor = Arc::new(LanguageWorker::new(&app, &options).map_err(cannot)?);
            tracing::info!("{}", executor.describe());
            worker = Some(executor.clone());
            executor
        }
    };
    executor.clone().start().await;
    if let Some(worker) = &worker {
        match worker.indexed() {
            Some((functions, errors)) => {
                app.adopt_indexed(functions, errors);
                for e in &app.errors {
                    tracing::error!(
                        "The '{}' function is in error: {}",
                        e.name,
                        e.errors.join("\n")
                    );
                }
            }
            None if app.functions.is_empty() => {
                let entry = app
                    .settings
                    .get("PYTHON_SCRIPT_FILE_NAME")
                    .unwrap_or("function_app.py");
                if worker.worker_indexing() || app.root.join(entry).is_file() {
                    tracing::warn!(
                        "no functions: the language worker has not described the app's functions \
                         (worker indexing), and no function.json was found"
                    );
                }
            }
            None => {}
        }
    }
    // Timer functions: a schedule that does not parse fails its function alone.
    let time_zone = timer::time_zone(&app).map_err(cannot)?;
    let (timers, mut timer_errors) = timer::timer_functions(&app);
    let (queue_functions, queue_errors) = queue::queue_functions(&app);
    timer_errors.extend(queue_errors);
    for (name, message) in timer_errors {
        tracing::error!("The '{name}' function is in error: {message}");
        app.fail_function(&name, message);
    }

    // After worker indexing: every function, however it was found, gets its keys.
    let (keys, mut store, place) = crate::app::open_keys(&app, &config)
        .await
        .map_err(ExitError::Other)?;
    let has_outputs = app.functions.iter().any(|f| !f.outputs.is_empty());
    // A worker's host keeps nothing in a store: the management role keeps it all.
    let managed = crate::managed::Link::from_env().is_some();
    // A worker's host reports its invocations and function logs to the management role.
    if let Some(Ok(link)) = crate::managed::Link::from_env() {
        crate::reporting::spawn(link);
    }
    if (!timers.is_empty()
        || !queue_functions.is_empty()
        || has_outputs
        || config.queue_listen.is_some())
        && store.is_none()
        && !managed
    {
        // Timer status, leases and queues live in the store, whatever keeps the keys.
        store = Some(
            crate::app::open_store(&config)
                .await
                .map_err(ExitError::Other)?,
        );
    }
    let (stop_queues, queues_stopped) = tokio::sync::oneshot::channel::<()>();
    let queue_task = match (&config.queue_listen, &store) {
        (Some(addr), Some(store)) => match tokio::net::TcpListener::bind(addr.as_str()).await {
            Ok(listener) => {
                let service = stratus_storage::queue_api::QueueService {
                    queues: store.queues(),
                    accounts: vec![(
                        stratus_storage::DEV_ACCOUNT.to_string(),
                        stratus_storage::DEV_ACCOUNT_KEY.to_string(),
                    )],
                    bearer: None,
                };
                println!(
                    "Queue service (Azure Storage Queue API, development storage account) on http://{addr}/{}",
                    stratus_storage::DEV_ACCOUNT
                );
                Some(tokio::spawn(stratus_storage::serve::serve(
                    listener,
                    service,
                    async {
                        let _ = queues_stopped.await;
                    },
                )))
            }
            Err(e) => {
                tracing::warn!(
                    "the queue service cannot listen on {addr} ({e}): it is off; set STRATUS_QUEUE_LISTEN to another address"
                );
                None
            }
        },
        _ => None,
    };
    println!(
        "Stratus {} (Azure Functions host {} compatible)",
        env!("CARGO_PKG_VERSION"),
        stratus_host::HOST_VERSION
    );
    print_functions(&app, port);
    match auth {
        AuthMode::Enforce => println!(
            "Function keys are kept in {place}; `stratus keys list` shows them. Use --no-auth to ignore keys while developing.\n"
        ),
        AuthMode::Relaxed => {
            println!("Keys are NOT checked (--no-auth): every caller is treated as admin.\n")
        }
    }

    let queue_options = queue::QueueOptions::from_app(&app);
    let signals = queue::QueueSignals::default();
    // A worker's host uses the app's queues at the management role (shared by its replicas);
    // otherwise they are in the store.
    let queue_store: Option<Arc<dyn QueueStore>> = match crate::managed::Link::from_env() {
        Some(link) => Some(
            crate::managed::ManagedQueues::open(
                &*link.map_err(|e| ExitError::Config(anyhow::anyhow!(e)))?,
            )
            .map_err(|e| ExitError::Config(anyhow::anyhow!(e)))?,
        ),
        None => store
            .as_ref()
            .map(|s| -> Arc<dyn QueueStore> { Arc::new(s.queues()) }),
    };
    let outputs = queue_store.as_ref().map(|queues| {
        Arc::new(OutputSink {
            queues: queues.clone(),
            account: stratus_storage::DEV_ACCOUNT.to_string(),
            base64: queue_options.base64,
            clock: Arc::new(SystemClock),
            signals: signals.clone(),
        })
    });
    let drain = app
        .config
        .function_timeout
        .unwrap_or(Duration::from_secs(3600));
    let host = Host::new(
        app,
        keys.clone(),
        executor.clone(),
        HostOptions {
            auth,
            body_limit: config.max_request_body_size,
            cors,
            outputs,
        },
    );
    let (stop_timers, timers_stopped) = tokio::sync::watch::channel(false);
    // A worker's host shares timer leases and status with the app's other replicas through
    // the management role; otherwise they are in the store.
    let timer_state: Option<(Arc<dyn TimerStatusStore>, Arc<dyn LeaseStore>)> =
        match crate::managed::Link::from_env() {
            Some(link) => {
                let state = crate::managed::ManagedState::new(
                    link.map_err(|e| ExitError::Config(anyhow::anyhow!(e)))?,
                );
                Some((state.clone(), state))
            }
            None => store
                .as_ref()
                .map(|s| -> (Arc<dyn TimerStatusStore>, Arc<dyn LeaseStore>) {
                    (Arc::new(s.timers()), Arc::new(s.leases()))
                }),
        };
    let queue_stop = stop_timers.subscribe();
    let mut gate_stop = stop_timers.subscribe();
    let gate = crate::managed::trigger_gate();
    let queues_for_triggers = queue_store.clone();
    let invoker = host.invoker.clone();
    let host_id = host.app.host_id.clone();
    let timer_lease = config.timer_lease;
    let message_lease = config.queue_message_lease;
    // A version being deployed serves HTTP (unseen) but takes no timer or queue work until
    // it is live: its worker removes the gate then.
    let triggers = tokio::spawn(async move {
        if let Some(gate) = gate {
            if gate.exists() {
                tracing::info!("this version is not live yet: timers and queue triggers wait");
            }
            while gate.exists() {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = gate_stop.changed() => return,
                }
            }
        }
        let mut tasks = start_triggers(
            timers,
            timer_state,
            queue_functions,
            queues_for_triggers,
            TriggerContext {
                host_id,
                time_zone,
                invoker,
                signals,
                queue_options,
                timer_lease,
                message_lease,
            },
            timers_stopped,
            queue_stop,
        );
        for t in tasks.drain(..) {
            let _ = t.await;
        }
    });
    let timer_tasks = vec![triggers];
    let (stop_keys, keys_stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(keys.clone().watch(Duration::from_secs(2), async move {
        let _ = keys_stopped.await;
    }));

    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let stopper = executor.clone();
    let signals = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = first_tx.send(());
        shutdown_signal().await;
        tracing::warn!("second interrupt: stopping at once");
        let _ = tokio::time::timeout(Duration::from_secs(3), stopper.shutdown()).await;
        std::process::exit(130);
    });
    host.serve(
        listener,
        async move {
            let _ = first_rx.await;
            tracing::info!("stopping: no new requests; waiting for the ones in flight");
        },
        drain,
    )
    .await;
    let _ = stop_timers.send(true);
    let _ = stop_queues.send(());
    if let Some(t) = queue_task {
        let _ = t.await;
    }
    for t in timer_tasks {
        let _ = t.await;
    }
    executor.shutdown().await;
    // What the last half second saw still reaches the management role.
    crate::reporting::finish(Duration::from_secs(2)).await;
    let _ = stop_keys.send(());
    let _ = watcher.await;
    signals.abort();
    if let Some(store) = store {
        store.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// What the timer and queue triggers of a host share.
struct TriggerContext {
    host_id: String,
    time_zone: chrono_tz::Tz,
    invoker: stratus_host::triggers::Invoker,
    signals: queue::QueueSignals,
    queue_options: queue::QueueOptions,
    timer_lease: Duration,
    message_lease: Duration,
}

/// Starts the app's timers and queue listeners; their tasks.
#[allow(
    clippy::too_many_arguments,
    reason = "the triggers and what they run on"
)]
fn start_triggers(
    timers: Vec<timer::TimerFunction>,
    timer_state: Option<(Arc<dyn TimerStatusStore>, Arc<dyn LeaseStore>)>,
    queue_functions: Vec<queue::QueueFunction>,
    queue_store: Option<Arc<dyn QueueStore>>,
    c: TriggerContext,
    timers_stopped: tokio::sync::watch::Receiver<bool>,
    queues_stopped: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = match timer_state {
        Some((status, leases)) if !timers.is_empty() => {
            let ctx = timer::TimerContext {
                host_id: c.host_id.clone(),
                tz: c.time_zone,
                invoker: c.invoker.clone(),
                status,
                leases,
                clock: Arc::new(SystemClock),
                instance: format!("{}-{}", crate::app::machine_name(), std::process::id()),
                lease_ttl: c.timer_lease,
                lease_retry: (c.timer_lease / 4).min(Duration::from_secs(15)),
            };
            timer::start(timers, &ctx, timers_stopped)
        }
        _ => Vec::new(),
    };
    if let Some(queues) = &queue_store
        && !queue_functions.is_empty()
    {
        let ctx = queue::QueueContext {
            account: stratus_storage::DEV_ACCOUNT.to_string(),
            queues: queues.clone(),
            invoker: c.invoker.clone(),
            signals: c.signals.clone(),
            clock: Arc::new(SystemClock),
            options: c.queue_options.clone(),
            message_lease: c.message_lease,
        };
        tasks.extend(queue::start(queue_functions, &ctx, queues_stopped));
    }
    tasks
}
