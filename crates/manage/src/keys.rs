//! Managed apps' function keys: one set per app, kept (encrypted) in the store, shared by all
//! its replicas. Admins read and change them at `/api/apps/{name}/keys`; a worker's hosts read
//! them, and write the defaults they need, at `/api/workers/{id}/apps/{app}/keys`.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stratus_model::keys::{KEY_RANDOM_BYTES, KeyKind, identifiable_key};
use stratus_store::{AppKeys, KeyScope, NamedKey, Upsert};

use crate::api::{Api, ApiError, ApiRequest, empty, json_response};

/// Whose keys these are in the store (apart from the hosts `stratus start` runs).
pub fn owner(app: &str) -> String {
    format!("app:{app}")
}

/// Reads a scope and key name from the path after `.../keys/`: `master`, `host/{name}`,
/// `system/{name}` or `functions/{function}/{name}`.
pub fn scope_of<'a>(rest: &[&'a str]) -> Result<(KeyScope<'a>, &'a str), ApiError> {
    match rest {
        ["master"] => Ok((KeyScope::Master, "master")),
        ["host", name] => Ok((KeyScope::HostFunction, name)),
        ["system", name] => Ok((KeyScope::System, name)),
        ["functions", function, name] => Ok((KeyScope::Function(function), name)),
        _ => Err(ApiError::NotFound(
            "expected keys/master, keys/host/{name}, keys/system/{name} or keys/functions/{function}/{name}".into(),
        )),
    }
}

/// The path after `.../keys/` for a scope and name.
pub fn scope_path(scope: KeyScope<'_>, name: &str) -> String {
    let enc = |s: &str| stratus_model::text::url_encode(s);
    match scope {
        KeyScope::Master => "master".into(),
        KeyScope::HostFunction => format!("host/{}", enc(name)),
        KeyScope::System => format!("system/{}", enc(name)),
        KeyScope::Function(f) => format!("functions/{}/{}", enc(f), enc(name)),
    }
}

fn named(list: &[NamedKey]) -> Value {
    list.iter()
        .map(|k| json!({"name": k.name, "value": k.value}))
        .collect()
}

/// `{"version", "master", "functionKeys", "systemKeys", "functions": {name: [...]}}`.
pub fn keys_json(keys: &AppKeys, version: i64) -> Value {
    json!({
        "version": version,
        "master": keys.master,
        "functionKeys": named(&keys.function_keys),
        "systemKeys": named(&keys.system_keys),
        "functions": keys.functions.iter().map(|(f, l)| (f.clone(), named(l))).collect::<serde_json::Map<_, _>>(),
    })
}

/// The keys and version in [`keys_json`]'s form.
pub fn keys_from_json(v: &Value) -> Option<(AppKeys, i64)> {
    let list = |v: &Value| -> Option<Vec<NamedKey>> {
        v.as_array()?
            .iter()
            .map(|k| {
                Some(NamedKey {
                    name: k["name"].as_str()?.to_string(),
                    value: k["value"].as_str()?.to_string(),
                })
            })
            .collect()
    };
    let mut keys = AppKeys {
        master: v["master"].as_str().map(str::to_string),
        function_keys: list(&v["functionKeys"])?,
        system_keys: list(&v["systemKeys"])?,
        ..AppKeys::default()
    };
    for (f, l) in v["functions"].as_object()? {
        keys.functions.insert(f.to_ascii_lowercase(), list(l)?);
    }
    Some((keys, v["version"].as_i64()?))
}

/// A new key of `kind` in Azure's format.
fn generate(kind: KeyKind) -> Result<String, ApiError> {
    let mut random = [0u8; KEY_RANDOM_BYTES];
    getrandom::fill(&mut random)
        .map_err(|e| ApiError::BadRequest(format!("no randomness available: {e}")))?;
    Ok(identifiable_key(kind, random))
}

fn kind_of(scope: KeyScope<'_>) -> KeyKind {
    match scope {
        KeyScope::Master => KeyKind::Master,
        KeyScope::System => KeyKind::System,
        _ => KeyKind::Function,
    }
}

fn find(keys: &AppKeys, scope: KeyScope<'_>, name: &str) -> Option<String> {
    let in_list = |l: &[NamedKey]| {
        l.iter()
            .find(|k| k.name.eq_ignore_ascii_case(name))
            .map(|k| k.value.clone())
    };
    match scope {
        KeyScope::Master => keys.master.clone(),
        KeyScope::HostFunction => in_list(&keys.function_keys),
        KeyScope::System => in_list(&keys.system_keys),
        KeyScope::Function(f) => keys
            .functions
            .get(&f.to_ascii_lowercase())
            .and_then(|l| in_list(l)),
    }
}

/// A key value from a body `{"value": "..."}` (none or empty: generate one).
fn value_of(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    match &v["value"] {
        Value::Null => Ok(None),
        Value::String(s) if s.len() >= 16 && s.len() <= 512 && !s.contains(char::is_whitespace) => {
            Ok(Some(s.clone()))
        }
        _ => Err(ApiError::BadRequest(
            "a key \"value\" is 16 to 512 characters without spaces".into(),
        )),
    }
}

impl Api {
    /// `/keys/...` of app `app` (known to exist): list, create or replace, delete. With
    /// `replace` false (`?replace=false`), a key that exists is kept and returned.
    pub(crate) async fn keys_route(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
        rest: &[&str],
    ) -> Result<Response<Bytes>, ApiError> {
        let owner = owner(app);
        let m = req.method;
        if rest.is_empty() {
            if m != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            let version = self.keys.version(&owner).await?;
            let keys = self.keys.load(&owner).await?;
            return Ok(json_response(StatusCode::OK, &keys_json(&keys, version)));
        }
        let (scope, name) = scope_of(rest)?;
        if m == Method::PUT {
            let replace = !req.query.is_some_and(|q| {
                q.split('&')
                    .any(|p| p.eq_ignore_ascii_case("replace=false"))
            });
            if !replace && let Some(value) = find(&self.keys.load(&owner).await?, scope, name) {
                return Ok(json_response(
                    StatusCode::OK,
                    &json!({"name": name, "value": value, "created": false}),
                ));
            }
            let value = match value_of(req.body)? {
                Some(v) => v,
                None => generate(kind_of(scope))?,
            };
            let outcome = self.keys.put(&owner, scope, name, &value).await?;
            let created = outcome == Upsert::Created;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            return Ok(json_response(
                status,
                &json!({"name": name, "value": value, "created": created}),
            ));
        }
        if m == Method::DELETE {
            if matches!(scope, KeyScope::Master) {
                return Err(ApiError::BadRequest(
                    "the master key cannot be deleted; renew it with PUT".into(),
                ));
            }
            if !self.keys.delete(&owner, scope, name).await? {
                return Err(ApiError::NotFound(format!("no key {name} there")));
            }
            return Ok(empty(StatusCode::NO_CONTENT));
        }
        Err(ApiError::MethodNotAllowed)
    }

    /// Forgets every key of `app` (it was deleted).
    pub(crate) async fn drop_keys(&self, app: &str) -> Result<(), ApiError> {
        let owner = owner(app);
        let keys = self.keys.load(&owner).await?;
        if keys.master.is_some() {
            self.keys.delete(&owner, KeyScope::Master, "master").await?;
        }
        for k in &keys.function_keys {
            self.keys
                .delete(&owner, KeyScope::HostFunction, &k.name)
                .await?;
        }
        for k in &keys.system_keys {
            self.keys.delete(&owner, KeyScope::System, &k.name).await?;
        }
        for (f, l) in &keys.functions {
            for k in l {
                self.keys
                    .delete(&owner, KeyScope::Function(f), &k.name)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_json() {
        let mut keys = AppKeys {
            master: Some("m".into()),
            function_keys: vec![NamedKey {
                name: "default".into(),
                value: "h".into(),
            }],
            ..AppKeys::default()
        };
        keys.functions.insert(
            "hello".into(),
            vec![NamedKey {
                name: "k".into(),
                value: "f".into(),
            }],
        );
        let v = keys_json(&keys, 7);
        assert_eq!(keys_from_json(&v), Some((keys, 7)));
    }

    #[test]
    fn scopes_from_paths() {
        assert_eq!(scope_of(&["master"]).unwrap(), (KeyScope::Master, "master"));
        assert_eq!(
            scope_of(&["functions", "Hello", "default"]).unwrap(),
            (KeyScope::Function("Hello"), "default")
        );
        assert!(scope_of(&["host"]).is_err());
        assert_eq!(
            scope_path(KeyScope::Function("Hello"), "a b"),
            "functions/Hello/a%20b"
        );
    }
}
