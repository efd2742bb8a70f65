//! Azure's file-based secrets (`AzureWebJobsSecretStorageType=files`): `host.json` and
//! `<function>.json` in a secrets directory, in the host's format, so that tools and test
//! harnesses that pre-seed keys work unchanged.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::keys::{AppKeys, KeyScope, NamedKey, Upsert};

/// Keys kept as Azure secrets files in one directory.
#[derive(Debug, Clone)]
pub struct FileKeys {
    dir: PathBuf,
    instance_id: String,
    host_name: Option<String>,
}

const HOST_FILE: &str = "host.json";

fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::SecretsFile {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::SecretsIo {
        path: path.display().to_string(),
        source,
    }
}

/// Reads `[{name, value, encrypted}]`.
fn read_keys(path: &Path, v: Option<&Value>) -> Result<Vec<NamedKey>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let Value::Array(items) = v else {
        return Err(bad(path, "expected an array of keys"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let name = item.get("name").and_then(Value::as_str);
        let value = item.get("value").and_then(Value::as_str);
        let (Some(name), Some(value)) = (name, value) else {
            return Err(bad(
                path,
                "expected keys with \"name\" and \"value\" strings",
            ));
        };
        if item.get("encrypted").and_then(Value::as_bool) == Some(true) {
            return Err(bad(
                path,
                format!(
                    "key \"{name}\" is encrypted with ASP.NET data protection, which Stratus cannot read; store it in clear"
                ),
            ));
        }
        out.push(NamedKey {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    Ok(out)
}

fn key_json(k: &NamedKey) -> Value {
    json!({ "name": k.name, "value": k.value, "encrypted": false })
}

impl FileKeys {
    pub fn new(
        dir: impl Into<PathBuf>,
        instance_id: impl Into<String>,
        host_name: Option<String>,
    ) -> FileKeys {
        FileKeys {
            dir: dir.into(),
            instance_id: instance_id.into(),
            host_name,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn read_doc(&self, path: &Path) -> Result<Option<Map<String, Value>>> {
        let text = match tokio::fs::read_to_string(path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path, e)),
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if text.trim().is_empty() {
            return Ok(None);
        }
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err(bad(path, "expected a JSON object")),
            Err(e) => Err(bad(path, format!("invalid JSON: {e}"))),
        }
    }

    async fn write_doc(&self, path: &Path, doc: Value) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let mut text = String::from('\u{feff}');
        text.push_str(&serde_json::to_string_pretty(&doc).map_err(|e| bad(path, e.to_string()))?);
        let dir = self.dir.clone();
        let path = path.to_path_buf();
        // Keys are secrets: the directory and files are readable by their owner only.
        tokio::task::spawn_blocking(move || {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| io(&dir, e))?;
            }
            let tmp = path.with_extension("json.tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| io(&tmp, e))?;
            f.write_all(text.as_bytes()).map_err(|e| io(&tmp, e))?;
            f.sync_all().map_err(|e| io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
        })
        .await
        .map_err(|e| bad(&self.dir, format!("writing was interrupted: {e}")))?
    }

    fn function_path(&self, function: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", function.to_ascii_lowercase()))
    }

    /// Reads every key in the directory.
    pub async fn load(&self) -> Result<AppKeys> {
        let mut keys = AppKeys::default();
        let host_path = self.dir.join(HOST_FILE);
        if let Some(doc) = self.read_doc(&host_path).await? {
            match doc.get("masterKey") {
                Some(Value::String(v)) => {
                    keys.master = Some(v.clone());
                    if let Some(Value::String(f)) = doc.get("functionKey") {
                        keys.function_keys.push(NamedKey {
                            name: "default".into(),
                            value: f.clone(),
                        });
                    }
                }
                Some(Value::Object(m)) => {
                    keys.master = m.get("value").and_then(Value::as_str).map(str::to_string);
                    if m.get("encrypted").and_then(Value::as_bool) == Some(true) {
                        return Err(bad(
                            &host_path,
                            "the master key is encrypted with ASP.NET data protection; store it in clear",
                        ));
                    }
                    keys.function_keys = read_keys(&host_path, doc.get("functionKeys"))?;
                    keys.system_keys = read_keys(&host_path, doc.get("systemKeys"))?;
                }
                _ => {
                    return Err(bad(
                        &host_path,
                        "invalid secrets file format: expected \"masterKey\"",
                    ));
                }
            }
        }
        let mut dir = match tokio::fs::read_dir(&self.dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(io(&self.dir, e)),
        };
        while let Some(entry) = dir.next_entry().await.map_err(|e| io(&self.dir, e))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            if name.eq_ignore_ascii_case(HOST_FILE)
                || stem.contains(".snapshot.")
                || stem.is_empty()
            {
                continue;
            }
            let path = entry.path();
            // One unreadable function file must not take every key down: skip it, loudly.
            let list = match self.read_function_file(&path).await {
                Ok(Some(list)) => list,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a secrets file");
                    continue;
                }
            };
            keys.functions
                .entry(stem.to_ascii_lowercase())
                .or_default()
                .extend(list);
        }
        Ok(keys)
    }

    async fn read_function_file(&self, path: &Path) -> Result<Option<Vec<NamedKey>>> {
        let Some(doc) = self.read_doc(path).await? else {
            return Ok(None);
        };
        Ok(Some(match (doc.get("keys"), doc.get("key")) {
            (Some(v @ Value::Array(_)), _) => read_keys(path, Some(v))?,
            (_, Some(Value::String(v))) => vec![NamedKey {
                name: "default".into(),
                value: v.clone(),
            }],
            _ => return Err(bad(path, "invalid secrets file format: expected \"keys\"")),
        }))
    }

    /// Creates or replaces a key; a replaced key moves to the end of its list, as in the host.
    pub async fn put(&self, scope: KeyScope<'_>, name: &str, value: &str) -> Result<Upsert> {
        let current = self.load().await?;
        match scope {
            KeyScope::Function(f) => {
                let mut list = current
                    .functions
                    .get(&f.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_default();
                let outcome = upsert(&mut list, name, value);
                self.write_function(f, &list).await?;
                Ok(outcome)
            }
            host_scope => {
                let mut keys = current;
                let outcome = match host_scope {
                    KeyScope::Master => {
                        let existed = keys.master.is_some();
                        keys.master = Some(value.to_string());
                        if existed {
                            Upsert::Replaced
                        } else {
                            Upsert::Created
                        }
                    }
                    KeyScope::HostFunction => upsert(&mut keys.function_keys, name, value),
                    KeyScope::System => upsert(&mut keys.system_keys, name, value),
                    KeyScope::Function(_) => unreachable!("handled above"),
                };
                self.write_host(&keys).await?;
                Ok(outcome)
            }
        }
    }

    /// Writes `<function>.json` (the name lower-cased, where the host reads it).
    async fn write_function(&self, function: &str, keys: &[NamedKey]) -> Result<()> {
        let doc = json!({
            "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
            "hostName": self.host_name,
            "instanceId": self.instance_id,
            "source": "runtime",
            "decryptionKeyId": "",
        });
        self.write_doc(&self.function_path(function), doc).await
    }

    async fn write_host(&self, keys: &AppKeys) -> Result<()> {
        let doc = json!({
            "masterKey": { "name": "master", "value": keys.master, "encrypted": false },
            "functionKeys": keys.function_keys.iter().map(key_json).collect::<Vec<_>>(),
            "systemKeys": keys.system_keys.iter().map(key_json).collect::<Vec<_>>(),
            "hostName": self.host_name,
            "instanceId": self.instance_id,
            "source": "runtime",
            "decryptionKeyId": "",
        });
        self.write_doc(&self.dir.join(HOST_FILE), doc).await
    }

    /// Deletes a key; returns whether it existed. The master key cannot be deleted this way.
    pub async fn delete(&self, scope: KeyScope<'_>, name: &str) -> Result<bool> {
        let mut keys = self.load().await?;
        match scope {
            KeyScope::Master => Ok(false),
            KeyScope::HostFunction | KeyScope::System => {
                let list = if scope == KeyScope::System {
                    &mut keys.system_keys
                } else {
                    &mut keys.function_keys
                };
                let before = list.len();
                list.retain(|k| !k.name.eq_ignore_ascii_case(name));
                if list.len() == before {
                    return Ok(false);
                }
                self.write_host(&keys).await?;
                Ok(true)
            }
            KeyScope::Function(f) => {
                let mut list = keys
                    .functions
                    .remove(&f.to_ascii_lowercase())
                    .unwrap_or_default();
                let before = list.len();
                list.retain(|k| !k.name.eq_ignore_ascii_case(name));
                if list.len() == before {
                    return Ok(false);
                }
                self.write_function(f, &list).await?;
                Ok(true)
            }
        }
    }

    /// A fingerprint of the directory (names, sizes, modification times) that changes when
    /// any secrets file changes, including edits made by other programs.
    pub async fn version(&self) -> Result<i64> {
        let mut dir = match tokio::fs::read_dir(&self.dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(&self.dir, e)),
        };
        let mut acc: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |x: u64| {
            acc ^= x;
            acc = acc.wrapping_mul(0x0100_0000_01b3);
        };
        let mut entries = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(|e| io(&self.dir, e))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            let meta = entry.metadata().await.map_err(|e| io(&entry.path(), e))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            entries.push((name, meta.len(), mtime));
        }
        entries.sort();
        for (name, len, mtime) in entries {
            for b in name.bytes() {
                mix(u64::from(b));
            }
            mix(len);
            mix(mtime);
        }
        Ok(acc as i64)
    }
}

fn upsert(list: &mut Vec<NamedKey>, name: &str, value: &str) -> Upsert {
    let before = list.len();
    list.retain(|k| !k.name.eq_ignore_ascii_case(name));
    let outcome = if list.len() < before {
        Upsert::Replaced
    } else {
        Upsert::Created
    };
    list.push(NamedKey {
        name: name.to_string(),
        value: value.to_string(),
    });
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_the_azure_format_and_writes_it_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("host.json"),
            "\u{feff}{\"masterKey\":{\"name\":\"master\",\"value\":\"testMasterKey\",\"encrypted\":false},\
             \"functionKeys\":[{\"name\":\"default\",\"value\":\"testFunctionKey\",\"encrypted\":false}],\
             \"systemKeys\":[{\"name\":\"eventgridextensionconfig_extension\",\"value\":\"testSystemKey\",\"encrypted\":false}]}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("hello.json"),
            "{\"keys\":[{\"name\":\"k\",\"value\":\"v\",\"encrypted\":false}]}",
        )
        .unwrap();
        let files = FileKeys::new(dir.path(), "0000", None);
        let keys = files.load().await.unwrap();
        assert_eq!(keys.master.as_deref(), Some("testMasterKey"));
        assert_eq!(keys.function_keys[0].value, "testFunctionKey");
        assert_eq!(
            keys.system_keys[0].name,
            "eventgridextensionconfig_extension"
        );
        assert_eq!(keys.functions["hello"][0].value, "v");

        let v1 = files.version().await.unwrap();
        assert_eq!(
            files
                .put(KeyScope::Function("Hello"), "k", "v2")
                .await
                .unwrap(),
            Upsert::Replaced
        );
        assert_eq!(
            files.put(KeyScope::System, "s2", "x").await.unwrap(),
            Upsert::Created
        );
        assert_ne!(files.version().await.unwrap(), v1);
        let text = std::fs::read_to_string(dir.path().join("host.json")).unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert!(text.contains("\"hostName\": null"), "{text}");
        let keys = files.load().await.unwrap();
        assert_eq!(keys.functions["hello"][0].value, "v2");
        assert_eq!(keys.master.as_deref(), Some("testMasterKey"));
        assert!(files.delete(KeyScope::System, "S2").await.unwrap());
        assert!(!files.delete(KeyScope::System, "S2").await.unwrap());
    }

    #[tokio::test]
    async fn version_zero_format_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("host.json"),
            "{\"masterKey\":\"m\",\"functionKey\":\"f\"}",
        )
        .unwrap();
        std::fs::write(dir.path().join("a.json"), "{\"key\":\"x\"}").unwrap();
        let files = FileKeys::new(dir.path(), "0000", None);
        let keys = files.load().await.unwrap();
        assert_eq!(keys.master.as_deref(), Some("m"));
        assert_eq!(keys.function_keys[0].name, "default");
        assert_eq!(keys.functions["a"][0].name, "default");
        std::fs::write(dir.path().join("b.json"), "{\"nope\":1}").unwrap();
        let keys = files.load().await.unwrap();
        assert!(
            !keys.functions.contains_key("b"),
            "a bad function file is skipped"
        );
        assert_eq!(keys.master.as_deref(), Some("m"));
        files.put(KeyScope::HostFunction, "x", "y").await.unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("host.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "secrets files are private");
    }
}
