//! `stratus manage`: the management role: serves the management API over the store (SQLite
//! on one machine, PostgreSQL for several), guarded by the admin token.

use crate::ExitError;
use crate::config::{Config, ConfigFlags};

#[derive(Debug, clap::Args)]
pub struct ManageArgs {
    /// Address of the management API.
    #[arg(long, env = "STRATUS_MANAGE_LISTEN", default_value = "127.0.0.1:7080")]
    pub listen: String,
    /// A worker without a heartbeat for this many seconds is lost: its replicas are placed
    /// elsewhere.
    #[arg(long, env = "STRATUS_WORKER_TIMEOUT_SECONDS", default_value_t = 6)]
    pub worker_timeout_seconds: u64,
    /// How long the scheduler leader's lease lasts without renewal (another process takes
    /// over after that).
    #[arg(long, env = "STRATUS_SCHEDULER_LEASE_SECONDS", default_value_t = 5)]
    pub scheduler_lease_seconds: u64,
    #[command(flatten)]
    pub config: ConfigFlags,
}

pub async fn run(args: ManageArgs) -> Result<(), ExitError> {
    let config = Config::resolve(&args.config, &crate::config::ProcessEnv)
        .map_err(|e| ExitError::Config(e.into()))?;
    let store = crate::app::open_store(&config)
        .await
        .map_err(ExitError::Other)?;
    let (token, place) =
        crate::secrets::admin_token(&config.data_dir).map_err(ExitError::Config)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
            ExitError::Unavailable(anyhow::anyhow!(
                "the management API cannot listen on {} ({e}); set --listen or STRATUS_MANAGE_LISTEN",
                args.listen
            ))
        })?;
    println!(
        "Stratus {} management API on http://{}/api (OpenAPI: /api/openapi.json); store: {}; admin token: {place}",
        env!("CARGO_PKG_VERSION"),
        args.listen,
        store.engine()
    );
    let api = stratus_manage::Api {
        apps: store.apps(),
        workers: store.workers(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let scheduler = tokio::spawn(stratus_manage::leader::run(
        store.apps(),
        store.workers(),
        store.leases(),
        stratus_manage::leader::SchedulerOptions {
            instance: format!("{}-{}", crate::app::machine_name(), std::process::id()),
            interval: std::time::Duration::from_secs(1),
            worker_timeout: std::time::Duration::from_secs(args.worker_timeout_seconds.max(1)),
            lease_ttl: std::time::Duration::from_secs(args.scheduler_lease_seconds.max(2)),
        },
        stopped(stop_rx.clone()),
    ));
    let server = tokio::spawn(stratus_manage::serve(
        listener,
        api,
        stratus_manage::AdminToken::new(&token),
        stopped(stop_rx),
    ));
    crate::start::shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = scheduler.await;
    let _ = server.await;
    store.close().await;
    Ok(())
}
