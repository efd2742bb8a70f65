//! The `stratus` binary: parses the command line, sets up logging, runs a command, and maps
//! its outcome to an exit code.

mod api_client;
mod app;
mod apps;
mod cluster;
mod config;
mod keys;
mod log_format;
mod log_writer;
mod manage;
mod managed;
mod package;
mod publish;
mod queue;
mod reporting;
mod secrets;
mod start;
mod telemetry;
mod up;
mod worker;

use std::process::ExitCode;

/// Many small short-lived allocations per request (headers, buffers, log lines): mimalloc's
/// per-thread free lists serve them without the locks and consolidation of the C library's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Stratus runs Azure Functions apps on your own machines.
#[derive(Debug, Parser)]
#[command(name = "stratus", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the function app in a directory, as `func start` does.
    Start(start::StartArgs),
    /// Read and change the app's function keys.
    Keys(keys::KeysArgs),
    /// Put, peek, list and clear queue messages on a running queue service.
    Queue(queue::QueueArgs),
    /// Run the whole platform on this machine: management role, a worker, the samples.
    Up(up::UpArgs),
    /// Run the management role: the management API, the scheduler and the front door.
    Manage(manage::ManageArgs),
    /// Create, deploy and configure managed apps through the management API.
    Apps(apps::AppsArgs),
    /// Publish an app directory to its publishing endpoint (Kudu zip deploy) and follow the
    /// deployment until it is live.
    Publish(publish::PublishArgs),
    /// Create, list and revoke the tokens workers join with.
    Tokens(cluster::TokensArgs),
    /// List, drain and remove workers.
    Workers(cluster::WorkersArgs),
    /// Run the worker role: join a management role and keep in touch with it.
    Worker(worker::WorkerArgs),
}

/// How a command failed, and the exit code that says so.
#[derive(Debug)]
pub enum ExitError {
    /// Wrong use of the command line (64, EX_USAGE).
    Usage(anyhow::Error),
    /// Something named does not exist (66, EX_NOINPUT).
    NotFound(anyhow::Error),
    /// A service or port is not available (69, EX_UNAVAILABLE).
    Unavailable(anyhow::Error),
    /// Invalid configuration or app files (78, EX_CONFIG).
    Config(anyhow::Error),
    /// What was asked for is gone for good, e.g. a removed worker (75, EX_TEMPFAIL: try again,
    /// e.g. by joining anew).
    Gone(anyhow::Error),
    /// Anything else (1).
    Other(anyhow::Error),
}

impl ExitError {
    fn code(&self) -> u8 {
        match self {
            ExitError::Usage(_) => 64,
            ExitError::NotFound(_) => 66,
            ExitError::Unavailable(_) => 69,
            ExitError::Config(_) => 78,
            ExitError::Gone(_) => 75,
            ExitError::Other(_) => 1,
        }
    }

    fn error(&self) -> &anyhow::Error {
        match self {
            ExitError::Usage(e)
            | ExitError::NotFound(e)
            | ExitError::Unavailable(e)
            | ExitError::Config(e)
            | ExitError::Gone(e)
            | ExitError::Other(e) => e,
        }
    }
}

fn log_format(cli: &Cli) -> config::LogFormat {
    let flags = match &cli.command {
        Command::Start(a) => &a.config,
        Command::Keys(a) => &a.config,
        Command::Queue(a) => &a.config,
        Command::Manage(a) => &a.config,
        Command::Up(a) => &a.config,
        Command::Apps(a) => &a.api.config,
        Command::Publish(a) => &a.config,
        Command::Tokens(a) => &a.api.config,
        Command::Workers(a) => &a.api.config,
        Command::Worker(a) => &a.config,
    };
    config::Config::resolve(flags, &config::ProcessEnv)
        .map(|c| c.log_format)
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = telemetry::init(log_format(&cli));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Start(args) => start::run(args, &telemetry).await,
            Command::Keys(args) => keys::run(args).await,
            Command::Queue(args) => queue::run(args).await,
            Command::Manage(args) => manage::run(args).await,
            Command::Up(args) => up::run(args).await,
            Command::Apps(args) => apps::run(args).await,
            Command::Publish(args) => publish::run(args).await,
            Command::Tokens(args) => cluster::tokens(args).await,
            Command::Workers(args) => cluster::workers(args).await,
            Command::Worker(args) => worker::run(args).await,
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    drop(telemetry);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {:#}", e.error());
            ExitCode::from(e.code())
        }
    }
}
