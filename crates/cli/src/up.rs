//! `stratus up`: the whole platform on one machine: the management role over the store
//! (SQLite in the data directory unless configured otherwise), one worker in the same process
//! joined to it, and the sample apps deployed (a new version only when their files changed).

use std::path::{Path, PathBuf};

use stratus_store::{Scale, SqlApps, Store};

use crate::ExitError;
use crate::config::{Config, ConfigFlags};
use crate::manage::{Role, RoleFlags};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// A directory of apps (a folder each, with its host.json) to deploy on start.
    #[arg(long, default_value = "samples")]
    pub samples: PathBuf,
    /// Deploy nothing.
    #[arg(long)]
    pub no_samples: bool,
    /// How the local worker isolates the apps' function processes (see `stratus worker`); off
    /// by default, as on a developer's machine the runtimes may be the user's own.
    #[arg(long, env = "STRATUS_ISOLATION", value_enum, default_value_t = crate::worker::IsolationMode::Off)]
    pub isolation: crate::worker::IsolationMode,
    #[command(flatten)]
    pub role: RoleFlags,
    #[command(flatten)]
    pub config: ConfigFlags,
}

/// The name the local worker joins with, and its token's.
const LOCAL: &str = "local";
const TOKEN_NAME: &str = "stratus up (local worker)";

/// Deploys each app folder under `dir` whose files differ from its active version; the
/// apps' names.
pub async fn deploy_dir(apps: &SqlApps, dir: &Path) -> Result<Vec<String>, ExitError> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ExitError::NotFound(anyhow::anyhow!("{}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("host.json").is_file())
        .collect();
    folders.sort();
    let mut names = Vec::new();
    let now = now_ms();
    for folder in folders {
        let raw = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match stratus_model::app_name::normalize(&raw) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("{}: not deployed: {e}", folder.display());
                continue;
            }
        };
        let zip = crate::package::zip_dir(&folder)
            .map_err(|e| ExitError::Other(anyhow::anyhow!("{}: {e}", folder.display())))?;
        let sha = stratus_store::apps::sha256_hex(&zip);
        let store_err = |e: stratus_store::Error| ExitError::Other(e.into());
        apps.create(&name, &Scale::default(), now)
            .await
            .map_err(store_err)?;
        let app = apps.get(&name).await.map_err(store_err)?;
        let active = app.and_then(|a| a.active_version);
        let versions = apps.versions(&name).await.map_err(store_err)?;
        let current = versions
            .iter()
            .find(|v| Some(v.number) == active)
            .is_some_and(|v| v.sha256 == sha);
        if !current {
            apps.put_package(&zip, now).await.map_err(store_err)?;
            let n = apps
                .add_version(
                    &name,
                    &sha,
                    "stratus up",
                    &folder.display().to_string(),
                    true,
                    now,
                )
                .await
                .map_err(store_err)?;
            println!(
                "deployed {} as {name} version {}",
                folder.display(),
                n.unwrap_or_default()
            );
        }
        names.push(name);
    }
    Ok(names)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A join token for the local worker (earlier ones revoked).
async fn local_token(store: &Store) -> Result<String, ExitError> {
    let workers = store.workers();
    let now = now_ms();
    let store_err = |e: stratus_store::Error| ExitError::Other(e.into());
    for t in workers.tokens().await.map_err(store_err)? {
        if t.name == TOKEN_NAME && t.revoked_ms.is_none() {
            workers.revoke_token(&t.id, now).await.map_err(store_err)?;
        }
    }
    let (_, token) = workers
        .create_token(TOKEN_NAME, now)
        .await
        .map_err(store_err)?;
    Ok(token)
}

pub async fn run(args: UpArgs) -> Result<(), ExitError> {
    let config = Config::resolve(&args.config, &crate::config::ProcessEnv)
        .map_err(|e| ExitError::Config(e.into()))?;
    let store = crate::app::open_store(&config)
        .await
        .map_err(ExitError::Other)?;
    let deployed = if args.no_samples {
        Vec::new()
    } else {
        deploy_dir(&store.apps(), &args.samples).await?
    };
    let token = local_token(&store).await?;
    let role = Role::start(&store, &args.role, &config).await?;
    if args.role.front_listen != "off" {
        for app in &deployed {
            println!("  {app}: http://{}/apps/{app}/", args.role.front_listen);
        }
    }
    let worker = crate::worker::WorkerArgs {
        join: format!("http://{}", args.role.listen),
        token,
        name: Some(LOCAL.into()),
        labels: Vec::new(),
        window: None,
        cpu_millis: None,
        memory_mib: None,
        max_apps: 64,
        heartbeat_seconds: 1,
        isolation: args.isolation,
        // Nowhere else to go.
        drain_seconds: 0,
        host_address: "127.0.0.1".into(),
        advertise: None,
        config: args.config.clone(),
    };
    // The worker stops on the same signal; then the management role stops.
    let result = crate::worker::run(worker).await;
    role.stop().await;
    store.close().await;
    result
}
