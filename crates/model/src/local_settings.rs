//! `local.settings.json`: settings and host options for running an app locally.

use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::json::{self, Obj};

pub const LOCAL_SETTINGS_JSON: &str = "local.settings.json";

/// The content of local.settings.json.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalSettings {
    /// `Values`, in document order.
    pub values: Vec<(String, String)>,
    /// `ConnectionStrings`, in document order.
    pub connection_strings: Vec<(String, String)>,
    /// `Host.LocalHttpPort`.
    pub local_http_port: Option<u16>,
    /// `Host.CORS`, split on commas.
    pub cors: Vec<String>,
    /// `Host.CORSCredentials`.
    pub cors_credentials: bool,
    /// Whether `IsEncrypted` was absent (Core Tools then assumes encrypted values).
    pub is_encrypted_missing: bool,
}

fn string_map(o: Obj<'_>, key: &str) -> Result<Vec<(String, String)>> {
    let Some(section) = o.obj(key)? else {
        return Ok(Vec::new());
    };
    let view = section.view();
    let mut out = Vec::with_capacity(view.map.len());
    for (k, v) in view.map {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            other => {
                return Err(view.error(
                    k,
                    format!("expected a string value, found {}", json::kind(other)),
                ));
            }
        };
        out.push((k.clone(), text));
    }
    Ok(out)
}

impl LocalSettings {
    /// Parses local.settings.json; encrypted files are refused with an explanation.
    pub fn parse(doc: &Value) -> Result<LocalSettings> {
        let f = LOCAL_SETTINGS_JSON;
        let o = Obj::root(f, doc)?;
        let encrypted = o.bool("IsEncrypted")?;
        if encrypted == Some(true) {
            return Err(ModelError::new(
                f,
                "$.IsEncrypted",
                "expected false: encrypted local settings (Windows DPAPI) are not supported; \
                 run `func settings decrypt` where they were encrypted, or write the values in clear",
            ));
        }
        let values = string_map(o, "Values")?;
        let connection_strings = string_map(o, "ConnectionStrings")?;
        let mut s = LocalSettings {
            values,
            connection_strings,
            is_encrypted_missing: encrypted.is_none(),
            ..LocalSettings::default()
        };
        if let Some(host) = o.obj("Host")? {
            let h = host.view();
            if let Some(port) = h.int("LocalHttpPort")? {
                s.local_http_port =
                    Some(u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
                        h.error(
                            "LocalHttpPort",
                            format!("expected a TCP port between 1 and 65535, found {port}"),
                        )
                    })?);
            }
            if let Some(cors) = h.scalar("CORS")? {
                s.cors = cors
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            s.cors_credentials = h.bool("CORSCredentials")?.unwrap_or(false);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_values_and_host() {
        let s = LocalSettings::parse(&json!({
            "IsEncrypted": false,
            "Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "N": 3, "B": true},
            "ConnectionStrings": {"Db": "x"},
            "Host": {"LocalHttpPort": 7072, "CORS": "http://a, http://b", "CORSCredentials": true}
        }))
        .unwrap();
        assert_eq!(s.values[1], ("N".to_string(), "3".to_string()));
        assert_eq!(s.local_http_port, Some(7072));
        assert_eq!(s.cors, vec!["http://a", "http://b"]);
        assert!(s.cors_credentials);
        assert!(!s.is_encrypted_missing);
    }

    #[test]
    fn encrypted_is_refused() {
        let e = LocalSettings::parse(&json!({"IsEncrypted": true, "Values": {}})).unwrap_err();
        assert_eq!(e.path, "$.IsEncrypted");
    }

    #[test]
    fn nested_values_are_refused() {
        let e = LocalSettings::parse(&json!({"IsEncrypted": false, "Values": {"A": {"b": 1}}}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "local.settings.json: $.Values.A: expected a string value, found an object"
        );
    }

    #[test]
    fn bad_port() {
        let e = LocalSettings::parse(&json!({"Host": {"LocalHttpPort": 70000}})).unwrap_err();
        assert_eq!(e.path, "$.Host.LocalHttpPort");
    }
}
