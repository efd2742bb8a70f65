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
    /// Address of the publishing endpoint (Kudu's SCM API: zip deploy, deployments,
    /// settings), reached as `{app}.scm.{domain}` or `/scm/{app}/`; `off` for none.
    #[arg(long, env = "STRATUS_SCM_LISTEN", default_value = "127.0.0.1:7443")]
    pub scm_listen: String,
    /// The port clients reach the publishing endpoint on, when it is not the one it listens
    /// on (behind a port mapping, say).
    #[arg(long, env = "STRATUS_SCM_PUBLIC_PORT")]
    pub scm_public_port: Option<u16>,
    /// The publishing endpoint's certificate chain (PEM); without it, a certificate issued by
    /// the cluster's own authority (`GET /api/scm/ca.pem`) is made on first start.
    #[arg(long, env = "STRATUS_SCM_TLS_CERT", requires = "scm_tls_key")]
    pub scm_tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--scm-tls-cert` (PEM).
    #[arg(long, env = "STRATUS_SCM_TLS_KEY", requires = "scm_tls_cert")]
    pub scm_tls_key: Option<std::path::PathBuf>,
    /// Serve the publishing endpoint over plain HTTP (credentials then cross the network in
    /// the clear: for a trusted network or a TLS proxy in front only).
    #[arg(long, env = "STRATUS_SCM_PLAIN_HTTP")]
    pub scm_plain_http: bool,
    /// A deployment whose new version does not serve on every replica within this many
    /// seconds fails (the live version stays).
    #[arg(long, env = "STRATUS_DEPLOY_TIMEOUT_SECONDS", default_value_t = 120)]
    pub deploy_timeout_seconds: u64,
    /// A deployment whose package stops arriving (its receiving process gone) fails after
    /// this many seconds without a sign of life.
    #[arg(
        long,
        env = "STRATUS_DEPLOY_RECEIVE_TIMEOUT_SECONDS",
        default_value_t = 30
    )]
    pub deploy_receive_timeout_seconds: u64,
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
            "Stratus {} management API on http://{}/api (OpenAPI: /api/openapi.json), portal on http://{}/portal/; store: {}; admin token: {place}",
            env!("CARGO_PKG_VERSION"),
            args.listen,
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
        let scm = scm_endpoint(store, args).await?;
        let api = stratus_manage::Api {
            apps: store.apps(),
            workers: store.workers(),
            keys: store.keys(),
            leases: store.leases(),
            timers: store.timers(),
            queues: store.queues(),
            deployments: store.deployments(),
            publishing: store.publishing(),
            scm: scm.as_ref().map(|(_, _, c)| c.clone()),
            portal: store.portal(),
            telemetry: store.telemetry(),
            front_url: front_url(args),
        };
        // No portal user yet: a one-time token makes the first.
        match stratus_manage::portal::bootstrap_token(&store.portal(), now_ms()).await {
            Ok(Some(t)) => println!(
                "portal: no user yet; make the first at http://{}/portal/#/bootstrap?token={t} (one-time, 24 h), or POST /api/portal/bootstrap {{\"token\": \"{t}\", \"user\": ..., \"password\": ...}}",
                args.listen
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot make a portal bootstrap token: {e}"),
        }
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
        let deploy_api = api.clone();
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
            stratus_manage::deploy::Limits {
                timeout_ms: seconds_ms(args.deploy_timeout_seconds),
                abandoned_ms: seconds_ms(args.deploy_receive_timeout_seconds),
                worker_timeout_ms: seconds_ms(args.worker_timeout_seconds),
            },
            stopped(stop_rx.clone()),
        ));
        let pruning = tokio::spawn(stratus_manage::monitor::prune(
            store.telemetry(),
            stopped(stop_rx.clone()),
        ));
        let mut tasks = vec![scheduler, server, deployments, pruning];
        if let Some((listener, tls, config)) = scm {
            let endpoint = stratus_manage::scm::Scm {
                api: deploy_api.clone(),
                publishing: store.publishing(),
                token: stratus_manage::AdminToken::new(&token),
                config,
            };
            tasks.push(tokio::spawn(stratus_manage::scm::serve(
                listener,
                tls,
                endpoint,
                stopped(stop_rx.clone()),
            )));
        }
        tasks.extend(front.into_iter().flatten());
        Ok(Role {
            stop: stop_tx,
            tasks,
        })
    }
}

/// The publishing endpoint's listener, HTTPS set-up and public addresses, unless it is off.
async fn scm_endpoint(
    store: &stratus_store::Store,
    args: &RoleFlags,
) -> Result<
    Option<(
        tokio::net::TcpListener,
        Option<stratus_manage::tls::ServerTls>,
        stratus_manage::scm::ScmConfig,
    )>,
    ExitError,
> {
    if args.scm_listen == "off" {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(&args.scm_listen)
        .await
        .map_err(|e| {
            ExitError::Unavailable(anyhow::anyhow!(
                "the publishing endpoint cannot listen on {} ({e}); set --scm-listen or STRATUS_SCM_LISTEN",
                args.scm_listen
            ))
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| ExitError::Unavailable(e.into()))?;
    let domain = args.domain.clone().unwrap_or_else(|| "localhost".into());
    let tls = if args.scm_plain_http {
        None
    } else if let (Some(cert), Some(key)) = (&args.scm_tls_cert, &args.scm_tls_key) {
        Some(
            stratus_manage::tls::supplied(cert, key)
                .map_err(|e| ExitError::Config(anyhow::anyhow!("the publishing endpoint: {e}")))?,
        )
    } else {
        let mut names = vec![
            format!("*.scm.{domain}"),
            format!("scm.{domain}"),
            "localhost".to_string(),
            "*.scm.localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
            crate::app::machine_name(),
        ];
        if !local.ip().is_unspecified() {
            names.push(local.ip().to_string());
        }
        Some(
            stratus_manage::tls::generated(&store.publishing(), &names, now_ms())
                .await
                .map_err(|e| ExitError::Other(anyhow::anyhow!("the publishing endpoint: {e}")))?,
        )
    };
    let app_url = front_url(args).unwrap_or_default();
    let config = stratus_manage::scm::ScmConfig {
        domain: domain.clone(),
        port: args.scm_public_port.unwrap_or(local.port()),
        https: tls.is_some(),
        app_url,
        api_url: format!("http://{}", args.listen),
        deploy_timeout_ms: i64::try_from(args.deploy_timeout_seconds.max(1) * 1000)
            .unwrap_or(i64::MAX),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "publishing endpoint (Kudu zip deploy) on {scheme}://{{app}}.scm.{domain}:{} and {scheme}://{}/scm/{{app}}/{}",
        config.port,
        args.scm_listen,
        if tls.as_ref().is_some_and(|t| t.ca_pem.is_some()) {
            "; trust the authority at /api/scm/ca.pem"
        } else {
            ""
        }
    );
    Ok(Some((listener, tls, config)))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn seconds_ms(s: u64) -> i64 {
    i64::try_from(s.max(1).saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// An app's URL through the front door, `{app}` in place of its name.
fn front_url(args: &RoleFlags) -> Option<String> {
    let port = args
        .front_listen
        .rsplit_once(':')
        .map_or("8080", |(_, p)| p);
    match (&args.domain, args.front_listen.as_str()) {
        (_, "off") => None,
        (Some(d), _) => Some(format!("http://{{app}}.{d}:{port}")),
        (None, listen) => Some(format!("http://{listen}/apps/{{app}}")),
    }
}
