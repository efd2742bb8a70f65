//! Deployments: a package received, checked, stored as a version, started beside the live
//! one on every replica, and made live in one write once every replica serves it; or
//! failed with the reason in its log, the live version untouched. The receiving side
//! (Kudu's zip deploy, the API) stores; the scheduler leader finishes.

use serde_json::Value;
use stratus_store::{
    Begin, DeployOrigin, DeployStatus, Deployment, Finish, LogKind, SqlApps, SqlDeployments,
    SqlWorkers,
};

/// How long a deployment may wait for its replicas before it fails.
pub const DEFAULT_TIMEOUT_MS: i64 = 120_000;
/// How long deployments may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From being handed to the replicas to serving on all of them.
    pub timeout_ms: i64,
    /// Without a sign of life from the process receiving the package.
    pub abandoned_ms: i64,
    /// A worker not heard from for this long is lost.
    pub worker_timeout_ms: i64,
}
/// Why a deployment did not go through.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Another deployment of the app is unfinished (its id).
    #[error("another deployment of this app is in progress ({0})")]
    Busy(String),
    #[error("no app named {0}")]
    NoApp(String),
    /// The package was refused (the deployment failed with this reason).
    #[error("{0}")]
    Refused(String),
    #[error("the store failed: {0}")]
    Store(#[from] stratus_store::Error),
}

/// The parts of the store deployments touch.
#[derive(Debug, Clone)]
pub struct Deployer {
    pub apps: SqlApps,
    pub deployments: SqlDeployments,
    pub workers: SqlWorkers,
}

/// A new deployment id: 32 hex digits, as Kudu's.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Deployer {
    /// Starts a deployment of `app` (pending): refused while another one is unfinished.
    pub async fn begin(
        &self,
        app: &str,
        origin: &DeployOrigin,
        now_ms: i64,
    ) -> Result<Deployment, DeployError> {
        match self
            .deployments
            .begin(app, &new_id(), origin, now_ms)
            .await?
        {
            Begin::Started(d) => Ok(d),
            Begin::Busy(id) => Err(DeployError::Busy(id)),
            Begin::NoApp => Err(DeployError::NoApp(app.to_string())),
        }
    }

    /// Fails deployment `d` with `reason` in its log (unless it finished already).
    pub async fn fail(&self, d: &Deployment, reason: &str, now_ms: i64) -> Result<(), DeployError> {
        if self
            .deployments
            .finish(&d.id, false, "Deployment failed", now_ms)
            .await?
            == Finish::Done
        {
            self.deployments
                .log(&d.id, LogKind::Error, reason, now_ms)
                .await?;
            tracing::warn!(app = %d.app, deployment = %d.id, "deployment failed: {reason}");
        }
        Ok(())
    }

    /// Moves `d` on, unless it was finished meanwhile (failed as abandoned, say).
    async fn advance(
        &self,
        d: &Deployment,
        status: DeployStatus,
        text: &str,
        version: Option<i64>,
    ) -> Result<(), DeployError> {
        if self
            .deployments
            .advance(&d.id, status, text, version, crate::now_ms())
            .await?
        {
            Ok(())
        } else {
            Err(DeployError::Refused(format!(
                "deployment {} was finished meanwhile (see its log)",
                d.id
            )))
        }
    }

    /// Checks and stores `package` as a new version of `d`'s app and hands the deployment to
    /// the scheduler (or makes it live at once when nothing serves the app yet). A refused
    /// package fails the deployment with the reason.
    pub async fn store(
        &self,
        d: &Deployment,
        package: &[u8],
        now_ms: i64,
    ) -> Result<i64, DeployError> {
        let log = |kind, text: String| {
            let deployments = self.deployments.clone();
            let id = d.id.clone();
            async move { deployments.log(&id, kind, &text, crate::now_ms()).await }
        };
        self.advance(d, DeployStatus::Building, "Checking the package", None)
            .await?;
        log(
            LogKind::Message,
            format!("Received {} bytes", package.len()),
        )
        .await?;
        let info = match crate::package::validate(package) {
            Ok(info) => info,
            Err(e) => {
                let reason = format!("The package was refused: {e}");
                self.fail(d, &reason, now_ms).await?;
                return Err(DeployError::Refused(reason));
            }
        };
        log(
            LogKind::Message,
            format!(
                "The package holds {} entries ({} bytes unpacked) and a valid host.json",
                info.entries, info.unpacked
            ),
        )
        .await?;
        if info.functions.is_empty() {
            log(
                LogKind::Message,
                "No function.json files: the language worker indexes the functions when the host starts".into(),
            )
            .await?;
        }
        for (name, outcome) in &info.functions {
            match outcome {
                Ok(trigger) => {
                    log(LogKind::Message, format!("Function {name} ({trigger})")).await?
                }
                Err(e) => {
                    log(
                        LogKind::Warning,
                        format!("Function {name} is invalid and will not run: {e}"),
                    )
                    .await?;
                }
            }
        }
        let sha = self.apps.put_package(package, crate::now_ms()).await?;
        // Still ours (a slow store could have let it be failed as abandoned)?
        self.advance(d, DeployStatus::Building, "Storing the version", None)
            .await?;
        let origin = &d.origin;
        let author = if origin.author.is_empty() {
            origin.deployer.as_str()
        } else {
            origin.author.as_str()
        };
        let number = self
            .apps
            .add_version(
                &d.app,
                &sha,
                author,
                &origin.message,
                false,
                crate::now_ms(),
            )
            .await?
            .ok_or_else(|| DeployError::NoApp(d.app.clone()))?;
        log(
            LogKind::Message,
            format!("Stored as version {number} (package {sha})"),
        )
        .await?;
        self.stage(d, number, crate::now_ms().max(now_ms)).await?;
        Ok(number)
    }

    /// Hands deployment `d` of version `number` to the scheduler: the replicas start it
    /// beside the live version; it goes live when all of them serve it.
    pub async fn stage(&self, d: &Deployment, number: i64, now_ms: i64) -> Result<(), DeployError> {
        self.advance(
            d,
            DeployStatus::Deploying,
            "Starting the new version on the replicas",
            Some(number),
        )
        .await?;
        if let Some(d) = self.deployments.get(&d.app, &d.id).await? {
            self.settle(&d, now_ms, DEFAULT_TIMEOUT_MS, i64::MAX)
                .await?;
        }
        Ok(())
    }

    /// Takes deployment `d` (deploying) as far as the replicas allow: live when every
    /// replica on a worker heard from within `worker_timeout_ms` serves its version (or none
    /// serves the app), failed when one of them cannot start it or `timeout_ms` passed.
    /// Whether it finished.
    pub async fn settle(
        &self,
        d: &Deployment,
        now_ms: i64,
        timeout_ms: i64,
        worker_timeout_ms: i64,
    ) -> Result<bool, DeployError> {
        let Some(version) = d.version else {
            return Ok(false);
        };
        if d.status != DeployStatus::Deploying || d.complete {
            return Ok(false);
        }
        let Some(app) = self.apps.get(&d.app).await? else {
            return Ok(false);
        };
        let live = |text: String| async move {
            match self
                .deployments
                .finish(&d.id, true, "Deployment successful", now_ms)
                .await?
            {
                Finish::Done => {
                    self.deployments
                        .log(&d.id, LogKind::Message, &text, now_ms)
                        .await?;
                    tracing::info!(app = %d.app, deployment = %d.id, version, "deployment live");
                }
                Finish::Superseded(why) => {
                    self.deployments
                        .log(&d.id, LogKind::Error, &why, now_ms)
                        .await?;
                    tracing::warn!(app = %d.app, deployment = %d.id, "deployment failed: {why}");
                }
                Finish::AlreadyFinished => {}
            }
            Ok::<bool, DeployError>(true)
        };
        if app.active_version.is_none() || app.active_version == Some(version) {
            return live(format!("Version {version} is live")).await;
        }
        let workers = self.workers.list().await?;
        let mut waiting = Vec::new();
        let mut ready = 0;
        for (placed, worker_id, _) in self.workers.placements().await? {
            if placed != d.app {
                continue;
            }
            let Some(w) = workers.iter().find(|w| w.id == worker_id) else {
                continue;
            };
            let name = &w.spec.name;
            // A replica on a worker not heard from lately is waited for: it moves elsewhere
            // (and starts the version there), or the deployment times out.
            if now_ms - w.heartbeat_ms > worker_timeout_ms {
                waiting.push(format!("{name} (not heard from)"));
                continue;
            }
            let status: Value = serde_json::from_str(&w.status).unwrap_or_default();
            let host = status["hosts"].as_array().and_then(|hosts| {
                hosts.iter().find(|h| {
                    h["app"] == d.app.as_str() && h["version"] == version && h["retiring"] != true
                })
            });
            match host {
                Some(h) if h["ready"] == true => ready += 1,
                Some(h) if h["error"].is_string() => {
                    let reason = format!(
                        "Version {version} cannot run on worker {name}: {}; version {} stays live",
                        h["error"].as_str().unwrap_or_default(),
                        app.active_version.unwrap_or_default()
                    );
                    self.fail(d, &reason, now_ms).await?;
                    return Ok(true);
                }
                _ => waiting.push(name.clone()),
            }
        }
        if waiting.is_empty() {
            return live(if ready == 0 {
                format!("Version {version} is live (no replica runs the app now)")
            } else {
                format!("Version {version} is live on {ready} replicas")
            })
            .await;
        }
        if now_ms - d.touched_ms > timeout_ms {
            let reason = format!(
                "Version {version} did not start within {} s on worker(s) {}; version {} stays live",
                timeout_ms / 1000,
                waiting.join(", "),
                app.active_version.unwrap_or_default()
            );
            self.fail(d, &reason, now_ms).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// One pass over the unfinished deployments (run by the scheduler leader): those whose
    /// receiver went away fail, those deploying settle.
    pub async fn drive(&self, now_ms: i64, limits: Limits) -> Result<(), DeployError> {
        let Limits {
            timeout_ms,
            abandoned_ms,
            worker_timeout_ms,
        } = limits;
        for id in self
            .deployments
            .fail_abandoned(now_ms - abandoned_ms, now_ms)
            .await?
        {
            tracing::warn!(deployment = %id, "deployment abandoned by its receiver: failed");
        }
        // One deployment failing to settle holds up no other.
        for d in self.deployments.all_unfinished().await? {
            if let Err(e) = self.settle(&d, now_ms, timeout_ms, worker_timeout_ms).await {
                tracing::warn!(app = %d.app, deployment = %d.id, "cannot settle the deployment: {e}");
            }
        }
        Ok(())
    }
}

/// Settles deployments every `every` until `stop` completes. Every management process runs
/// this: finishing a deployment is one conditional write, so two never both finish one.
pub async fn run(
    deployer: Deployer,
    every: std::time::Duration,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        if let Err(e) = deployer.drive(crate::now_ms(), limits).await {
            tracing::warn!("settling deployments failed: {e}");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut stop => break,
        }
    }
}
