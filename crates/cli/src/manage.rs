//! `stratus manage`: the management role: serves the management API over the store (SQLite
//! on one machine, PostgreSQL for several), guarded by the admin token.

use crate::ExitError;
use crate::config::{Config, ConfigFlags};

#[derive(Debug, clap::Args)]
pub struct ManageArgs {
    #[command(flatten)]
    pub role: RoleFlags,
    #[command(flatten)]
    pub config: ConfigFlags,
}

/// The management role's own options (`stratus manage` and `stratus up`).
#[derive(Debug, Clone, clap::Args)]
pub struct RoleFlags {
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
    /// Address of the front door, which routes `/apps/{app}/...` (and `{app}.{domain}`) to
    /// the apps' replicas; `off` for none.
    #[arg(long, env = "STRATUS_FRONT_LISTEN", default_value = "127.0.0.1:8080")]
    pub front_listen: String,
    /// The domain apps are addressed under by host name: `{app}.{domain}`.
    #[arg(long, env = "STRATUS_DOMAIN")]
    pub domain: Option<String>,
    /// A deployment whose new version does not serve on every replica within this many
    /// seconds fails (the live version stays).
    #[arg(long, env = "STRATUS_DEPLOY_TIMEOUT_SECONDS", default_value_t = 120)]
    pub deploy_timeout_seconds: u64,
}

pub async fn run(args: ManageArgs) -> Result<(), ExitError> {
    let config = Config::resolve(&args.config, &crate::config::ProcessEnv)
        .map_err(|e| ExitError::Config(e.into()))?;
    let store = crate::app::open_store(&config)
        .await
        .map_err(ExitError::Other)?;
    let role = Role::start(&store, &args.role, &config).await?;
    crate::start::shutdown_signal().await;
    role.stop().await;
    store.close().await;
    Ok(())
}

/// The management role's running parts: the API, the scheduler, the front door.
pub struct Role {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Role {
    /// Stops every part and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Starts the API, the scheduler and the front door over `store`.
    pub async fn start(
        store: &stratus_store::Store,
        args: &RoleFlags,
        config: &Config,
    ) -> Result<Role, ExitError> {
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
        let front_listener = if args.front_listen == "off" {
            None
        } else {
            Some(
            tokio::net::TcpListener::bind(&args.front_listen)
                .await
                .map_err(|e| {
                    ExitError::Unavailable(anyhow::anyhow!(
                        "the front door cannot listen on {} ({e}); set --front-listen or STRATUS_FRONT_LISTEN",
                        args.front_listen
                    ))
                })?,
        )
        };
        if front_listener.is_some() {
            let by_host = args
                .domain
                .as_deref()
                .map(|d| format!(" and http://{{app}}.{d}/..."))
                .unwrap_or_default();
            println!(
                "front door on http://{}/apps/{{app}}/...{by_host}",
                args.front_listen
            );
        }
        let api = stratus_manage::Api {
            apps: store.apps(),
            workers: store.workers(),
            keys: store.keys(),
            leases: store.leases(),
            timers: store.timers(),
            queues: store.queues(),
            deployments: store.deployments(),
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let metrics = std::sync::Arc::new(stratus_manage::metrics::Metrics::default());
        let scheduler = tokio::spawn(stratus_manage::leader::run(
            store.apps(),
            store.workers(),
            store.leases(),
            stratus_manage::leader::SchedulerOptions {
                instance: format!("{}-{}", crate::app::machine_name(), std::process::id()),
                interval: std::time::Duration::from_secs(1),
                worker_timeout: std::time::Duration::from_secs(args.worker_timeout_seconds.max(1)),
                lease_ttl: std::time::Duration::from_secs(args.scheduler_lease_seconds.max(2)),
                metrics: metrics.clone(),
            },
            stopped(stop_rx.clone()),
        ));
        let deploy_loop = api.deployer();
        let server = tokio::spawn(stratus_manage::serve(
            listener,
            api,
            stratus_manage::AdminToken::new(&token),
            metrics.clone(),
            std::time::Duration::from_secs(args.worker_timeout_seconds.max(1)),
            stopped(stop_rx.clone()),
        ));
        let front = front_listener.map(|listener| {
            let front = stratus_manage::front::FrontDoor::new(
                store.apps(),
                store.workers(),
                args.domain.clone(),
                metrics.clone(),
            );
            [
                tokio::spawn(front.clone().follow(
                    std::time::Duration::from_millis(500),
                    stopped(stop_rx.clone()),
                )),
                tokio::spawn(front.serve(
                    listener,
                    stopped(stop_rx.clone()),
                    std::time::Duration::from_secs(10),
                )),
            ]
        });
        let deployments = tokio::spawn(stratus_manage::deploy::run(
            deploy_loop,
            std::time::Duration::from_millis(250),
            std::time::Duration::from_secs(args.deploy_timeout_seconds.max(1)),
            std::time::Duration::from_secs(args.worker_timeout_seconds.max(1)),
            stopped(stop_rx.clone()),
        ));
        let mut tasks = vec![scheduler, server, deployments];
        tasks.extend(front.into_iter().flatten());
        Ok(Role {
            stop: stop_tx,
            tasks,
        })
    }
}
