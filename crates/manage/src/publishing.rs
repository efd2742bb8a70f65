//! The management API's publishing routes: an app's publishing credential (read, rotate),
//! its publish profile, its deployments and their logs, rollback, and the certificate of the
//! authority that issued the publishing endpoint's certificate.

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use serde_json::{Value, json};
use stratus_store::{DeployOrigin, DeployStatus, Deployment};

use crate::api::{Api, ApiError, ApiRequest, json_response};

/// The store's name of the publishing authority's certificate.
const CA: &str = "scm-ca";

fn deployment_json(d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "status": d.status as i64,
        "statusText": d.status_text,
        "complete": d.complete,
        "version": d.version,
        "author": d.origin.author,
        "deployer": d.origin.deployer,
        "message": d.origin.message,
        "received": d.received_ms,
        "end": d.end_ms,
    })
}

impl Api {
    fn scm(&self) -> Result<&crate::scm::ScmConfig, ApiError> {
        self.scm.as_ref().ok_or_else(|| {
            ApiError::NotFound("the publishing endpoint is off (--scm-listen off)".into())
        })
    }

    /// `/api/apps/{name}/{publishing|publishprofile|deployments|rollback}...` of app `app`.
    pub(crate) async fn publishing_route(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
        rest: &[&str],
    ) -> Result<Response<Bytes>, ApiError> {
        let m = req.method;
        match rest {
            ["publishing"] if m == Method::GET => {
                let config = self.scm()?;
                let (user, password) =
                    crate::scm::profile::credential(&self.publishing, app, false, req.now_ms)
                        .await?;
                Ok(json_response(
                    StatusCode::OK,
                    &self.credential_json(config, app, &user, &password),
                ))
            }
            ["publishing", "rotate"] if m == Method::POST => {
                let config = self.scm()?;
                let (user, password) =
                    crate::scm::profile::credential(&self.publishing, app, true, req.now_ms)
                        .await?;
                Ok(json_response(
                    StatusCode::OK,
                    &self.credential_json(config, app, &user, &password),
                ))
            }
            ["publishprofile"] if m == Method::GET => {
                let config = self.scm()?;
                let (user, password) =
                    crate::scm::profile::credential(&self.publishing, app, false, req.now_ms)
                        .await?;
                let xml = crate::scm::profile::publish_settings(config, app, &user, &password);
                let mut r = Response::new(Bytes::from(xml));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/xml"),
                );
                if let Ok(v) = http::HeaderValue::from_str(&format!(
                    "attachment; filename=\"{app}.PublishSettings\""
                )) {
                    r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
                }
                Ok(r)
            }
            ["deployments"] if m == Method::GET => {
                let list: Vec<Value> = self
                    .deployments
                    .list(app)
                    .await?
                    .iter()
                    .map(deployment_json)
                    .collect();
                Ok(json_response(StatusCode::OK, &Value::Array(list)))
            }
            ["deployments", id] if m == Method::GET => {
                let d =
                    self.deployments.get(app, id).await?.ok_or_else(|| {
                        ApiError::NotFound(format!("no deployment {id} of {app}"))
                    })?;
                let mut v = deployment_json(&d);
                v["log"] = self
                    .deployments
                    .log_entries(id)
                    .await?
                    .into_iter()
                    .map(|e| json!({"time": e.at_ms, "type": e.kind as i64, "message": e.message}))
                    .collect();
                Ok(json_response(StatusCode::OK, &v))
            }
            ["rollback"] if m == Method::POST => self.rollback(req, app).await,
            [
                "publishing" | "publishprofile" | "deployments" | "rollback",
                ..,
            ] => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound(format!(
                "no such resource: {}",
                req.path
            ))),
        }
    }

    fn credential_json(
        &self,
        config: &crate::scm::ScmConfig,
        app: &str,
        user: &str,
        password: &str,
    ) -> Value {
        let scheme = if config.https { "https" } else { "http" };
        json!({
            "userName": user,
            "password": password,
            "scmUrl": format!("{scheme}://{}", config.publish_host(app)),
            "appUrl": config.app_url(app),
        })
    }

    /// Deploys again the version before the live one (or `{"version": n}`): the same
    /// atomic switch as any deployment.
    async fn rollback(&self, req: &ApiRequest<'_>, app: &str) -> Result<Response<Bytes>, ApiError> {
        let asked: Value = if req.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(req.body)
                .map_err(|e| ApiError::BadRequest(format!("expected {{\"version\": N}}: {e}")))?
        };
        let record = self
            .apps
            .get(app)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no app named {app}")))?;
        let live = record.active_version.ok_or_else(|| {
            ApiError::Conflict(format!("{app} has no live version to roll back from"))
        })?;
        let target = match asked["version"].as_i64() {
            Some(n) => n,
            None => {
                // The version live before this one: the newest successful deployment of
                // another version.
                self.deployments
                    .list(app)
                    .await?
                    .into_iter()
                    .filter(|d| d.status == DeployStatus::Success)
                    .filter_map(|d| d.version)
                    .find(|v| *v != live)
                    .or_else(|| (live > 1).then_some(live - 1))
                    .ok_or_else(|| ApiError::Conflict(format!("{app} has no earlier version")))?
            }
        };
        if !self
            .apps
            .versions(app)
            .await?
            .iter()
            .any(|v| v.number == target)
        {
            return Err(ApiError::NotFound(format!(
                "app {app} has no version {target}"
            )));
        }
        let origin = DeployOrigin {
            author: "api".into(),
            author_email: String::new(),
            deployer: "Rollback".into(),
            message: format!("Roll back from version {live} to version {target}"),
        };
        let deployer = self.deployer();
        let d = deployer.begin(app, &origin, req.now_ms).await?;
        deployer.stage(&d, target, req.now_ms).await?;
        let d = self.deployments.get(app, &d.id).await?.unwrap_or(d);
        Ok(json_response(StatusCode::ACCEPTED, &deployment_json(&d)))
    }

    /// `GET /api/scm/ca.pem`: the authority clients trust the publishing endpoint by.
    pub(crate) async fn ca_certificate(&self) -> Result<Response<Bytes>, ApiError> {
        let ca = self.publishing.certificate(CA).await?.ok_or_else(|| {
            ApiError::NotFound(
                "no certificate authority: the publishing endpoint serves the operator's certificate or plain HTTP".into(),
            )
        })?;
        let mut r = Response::new(Bytes::from(ca.cert_pem));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-pem-file"),
        );
        Ok(r)
    }
}
