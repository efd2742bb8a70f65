//! `stratus keys`: read and change an app's function keys from the command line.

use std::path::PathBuf;

use stratus_host::KeyService;
use stratus_store::{KeyScope, Upsert};

use crate::ExitError;
use crate::config::{Config, ConfigFlags};

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
    /// The app directory.
    #[arg(long, global = true, default_value = ".")]
    pub app: PathBuf,
    #[command(flatten)]
    pub config: ConfigFlags,
}

/// Which keys a command is about.
#[derive(Debug, Clone, clap::Args)]
pub struct Scope {
    /// A key of this function.
    #[arg(long, conflicts_with = "system")]
    pub function: Option<String>,
    /// A system key (extension webhooks).
    #[arg(long)]
    pub system: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// List every key of the app.
    List,
    /// Print one key's value (`_master` is the master key).
    Get {
        name: String,
        #[command(flatten)]
        scope: Scope,
    },
    /// Set a key to a given value (creates it if needed).
    Set {
        name: String,
        value: String,
        #[command(flatten)]
        scope: Scope,
    },
    /// Give a key a new generated value (creates it if needed).
    Renew {
        name: String,
        #[command(flatten)]
        scope: Scope,
    },
    /// Delete a key.
    Delete {
        name: String,
        #[command(flatten)]
        scope: Scope,
    },
}

fn key_scope<'a>(name: &str, scope: &'a Scope) -> KeyScope<'a> {
    if name.eq_ignore_ascii_case(stratus_host::keys::MASTER_KEY_NAME) {
        KeyScope::Master
    } else if let Some(f) = &scope.function {
        KeyScope::Function(f)
    } else if scope.system {
        KeyScope::System
    } else {
        KeyScope::HostFunction
    }
}

fn lookup(keys: &KeyService, name: &str, scope: &Scope) -> Option<String> {
    let all = keys.keys();
    match key_scope(name, scope) {
        KeyScope::Master => all.master,
        KeyScope::Function(f) => keys
            .function_keys(f)
            .into_iter()
            .find(|k| k.name.eq_ignore_ascii_case(name))
            .map(|k| k.value),
        KeyScope::System => all
            .system_keys
            .into_iter()
            .find(|k| k.name.eq_ignore_ascii_case(name))
            .map(|k| k.value),
        KeyScope::HostFunction => all
            .function_keys
            .into_iter()
            .find(|k| k.name.eq_ignore_ascii_case(name))
            .map(|k| k.value),
    }
}

fn check_function(app: &stratus_host::App, scope: &Scope) -> Result<(), ExitError> {
    if let Some(f) = &scope.function
        && app.function(f).is_none()
        && app.function_errors(f).is_none()
    {
        return Err(ExitError::Usage(anyhow::anyhow!(
            "the app has no function named \"{f}\""
        )));
    }
    Ok(())
}

pub async fn run(args: KeysArgs) -> Result<(), ExitError> {
    let config = Config::resolve(&args.config, &crate::config::ProcessEnv)
        .map_err(|e| ExitError::Config(e.into()))?;
    let app = crate::app::load(&args.app)
        .map_err(|e| ExitError::Config(anyhow::anyhow!("cannot read the app: {e}")))?;
    let (keys, store, _) = crate::app::open_keys(&app, &config)
        .await
        .map_err(ExitError::Other)?;
    let result = match args.command {
        KeysCommand::List => {
            let all = keys.keys();
            println!("{:<10} {:<24} {:<24} VALUE", "SCOPE", "FUNCTION", "NAME");
            if let Some(m) = &all.master {
                println!("{:<10} {:<24} {:<24} {m}", "master", "", "_master");
            }
            for k in &all.function_keys {
                println!("{:<10} {:<24} {:<24} {}", "host", "", k.name, k.value);
            }
            for k in &all.system_keys {
                println!("{:<10} {:<24} {:<24} {}", "system", "", k.name, k.value);
            }
            for f in &app.functions {
                for k in keys.function_keys(&f.name) {
                    println!(
                        "{:<10} {:<24} {:<24} {}",
                        "function", f.name, k.name, k.value
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Get { name, scope } => {
            check_function(&app, &scope)?;
            match lookup(&keys, &name, &scope) {
                Some(v) => {
                    println!("{v}");
                    Ok(())
                }
                None => Err(ExitError::NotFound(anyhow::anyhow!(
                    "no key named \"{name}\""
                ))),
            }
        }
        KeysCommand::Set { name, value, scope } => {
            check_function(&app, &scope)?;
            let (outcome, _) = keys
                .put(key_scope(&name, &scope), &name, Some(&value))
                .await
                .map_err(|e| ExitError::Other(e.into()))?;
            eprintln!(
                "{} key \"{name}\"",
                if outcome == Upsert::Created {
                    "created"
                } else {
                    "updated"
                }
            );
            Ok(())
        }
        KeysCommand::Renew { name, scope } => {
            check_function(&app, &scope)?;
            let (_, value) = keys
                .put(key_scope(&name, &scope), &name, None)
                .await
                .map_err(|e| ExitError::Other(e.into()))?;
            println!("{value}");
            Ok(())
        }
        KeysCommand::Delete { name, scope } => {
            check_function(&app, &scope)?;
            if matches!(key_scope(&name, &scope), KeyScope::Master) {
                return Err(ExitError::Usage(anyhow::anyhow!(
                    "the master key cannot be deleted; renew it instead"
                )));
            }
            if keys
                .delete(key_scope(&name, &scope), &name)
                .await
                .map_err(|e| ExitError::Other(e.into()))?
            {
                eprintln!("deleted key \"{name}\"");
                Ok(())
            } else {
                Err(ExitError::NotFound(anyhow::anyhow!(
                    "no key named \"{name}\""
                )))
            }
        }
    };
    if let Some(store) = store {
        store.close().await;
    }
    result
}
