//! `stratus manage`: the management role: serves the management API over the store (SQLite
//! on one machine, PostgreSQL for several), guarded by the admin token.

use crate::ExitError;
use crate::config::{Config, ConfigFlags};

#[derive(Debug, clap::Args)]
pub struct ManageArgs {
    /// Address of the management API.
    #[arg(long, env = "STRATUS_MANAGE_LISTEN", default_value = "127.0.0.1:7080")]
    pub listen: String,
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
    stratus_manage::serve(
        listener,
        api,
        stratus_manage::AdminToken::new(&token),
        crate::start::shutdown_signal(),
    )
    .await;
    store.close().await;
    Ok(())
}
