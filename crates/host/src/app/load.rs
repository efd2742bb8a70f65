//! Reading an app directory into an [`App`]: settings, host.json, every function.json.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stratus_model::host_json::{self, HOST_JSON};
use stratus_model::local_settings::LOCAL_SETTINGS_JSON;
use stratus_model::route::{RouteTable, cmp_ignore_case};
use stratus_model::{
    AppSettings, Direction, FunctionConfig, HostConfig, LocalSettings, ModelError, json,
};

use super::{App, Function, FunctionErrors};

/// Binding types the host can serve.
pub const SUPPORTED_BINDINGS: &[&str] = &[
    "httpTrigger",
    "http",
    "timerTrigger",
    "queueTrigger",
    "queue",
];

/// Why an app cannot start at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] ModelError),
}

/// What loading needs besides the directory.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Settings from the process environment; they win over local.settings.json.
    pub env: Vec<(String, String)>,
    /// Read local.settings.json (as `func start` does).
    pub use_local_settings: bool,
    /// Name of this machine, for the default host id.
    pub machine_name: String,
}

fn io(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, LoadError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Loads the app at `root`. Host-level problems are errors; function problems are recorded
/// in [`App::errors`] and the other functions still load.
pub fn load(root: &Path, opts: &LoadOptions) -> Result<App, LoadError> {
    let root = std::fs::canonicalize(root).map_err(|e| io(root, e))?;
    if !root.is_dir() {
        return Err(LoadError::NotADirectory(root));
    }

    let mut settings = AppSettings::new();
    for (k, v) in &opts.env {
        settings.set(k, v);
    }
    let local = if opts.use_local_settings {
        match read_optional(&root.join(LOCAL_SETTINGS_JSON))? {
            Some(text) => {
                let doc = json::parse_document(LOCAL_SETTINGS_JSON, &text)?;
                let local = LocalSettings::parse(&doc)?;
                for (k, v) in &local.values {
                    if !settings.insert_if_absent(k, v) {
                        tracing::info!(
                            setting = %k,
                            "skipping a value of local.settings.json: it is already defined in the environment"
                        );
                    }
                }
                for (k, v) in &local.connection_strings {
                    settings.insert_if_absent(&format!("ConnectionStrings:{k}"), v);
                }
                Some(local)
            }
            None => None,
        }
    } else {
        None
    };

    let mut doc = match read_optional(&root.join(HOST_JSON))? {
        Some(text) if !text.trim_start_matches('\u{feff}').trim().is_empty() => {
            json::parse_document(HOST_JSON, &text)?
        }
        _ => host_json::default_document(),
    };
    host_json::apply_overrides(&mut doc, settings.host_json_overrides());
    let config = HostConfig::parse(doc)?;

    let host_id = host_id(&settings, &opts.machine_name, &root);
    let (functions, errors) = load_functions(&root, &config, &settings)?;

    let (functions, errors, routes) = routed(&config.http.route_prefix, functions, errors);

    Ok(App {
        root,
        host_id,
        config,
        settings,
        local,
        functions,
        errors,
        routes,
    })
}

/// Builds the route table; functions whose route is invalid move to the errors.
pub(super) fn routed(
    prefix: &str,
    functions: Vec<Arc<Function>>,
    mut errors: Vec<FunctionErrors>,
) -> (
    Vec<Arc<Function>>,
    Vec<FunctionErrors>,
    RouteTable<Arc<Function>>,
) {
    let http: Vec<(&str, &stratus_model::HttpTrigger, Arc<Function>)> = functions
        .iter()
        .filter_map(|f| f.config.http().map(|h| (f.name.as_str(), h, f.clone())))
        .collect();
    let (routes, route_errors) = RouteTable::build(prefix, http);
    let mut functions = functions;
    for (name, message) in route_errors {
        functions.retain(|f| f.name != name);
        errors.push(FunctionErrors {
            name,
            errors: vec![message],
        });
    }
    errors.sort_by(|a, b| cmp_ignore_case(&a.name, &b.name));
    (functions, errors, routes)
}

fn load_functions(
    root: &Path,
    config: &HostConfig,
    settings: &AppSettings,
) -> Result<(Vec<Arc<Function>>, Vec<FunctionErrors>), LoadError> {
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| io(root, e))? {
        let entry = entry.map_err(|e| io(root, e))?;
        let path = entry.path();
        if !path.is_dir() || !path.join("function.json").is_file() {
            continue;
        }
        dirs.push((entry.file_name().to_string_lossy().into_owned(), path));
    }
    dirs.sort_by(|a, b| cmp_ignore_case(&a.0, &b.0));

    let mut functions = Vec::new();
    let mut errors = Vec::new();
    for (name, dir) in dirs {
        if let Some(allow) = &config.functions
            && !allow.iter().any(|a| a.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        match load_function(&name, &dir, config, settings) {
            Ok(f) => functions.push(Arc::new(f)),
            Err(message) => errors.push(FunctionErrors {
                name,
                errors: vec![message],
            }),
        }
    }
    Ok((functions, errors))
}

fn load_function(
    name: &str,
    dir: &Path,
    config: &HostConfig,
    settings: &AppSettings,
) -> Result<Function, String> {
    let file = format!("{name}/function.json");
    let path = dir.join("function.json");
    let text = std::fs::read(&path).map_err(|e| format!("{file}: cannot read the file: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    let doc = json::parse_document(&file, &text).map_err(|e| e.to_string())?;
    let fc = FunctionConfig::parse(name, &file, doc).map_err(|e| e.to_string())?;
    check_bindings(&file, &fc)?;
    let script_file = match &fc.script_file {
        Some(s) => {
            let p = dir.join(s);
            if !p.is_file() {
                return Err(format!(
                    "{file}: $.scriptFile: expected an existing file, found \"{s}\" (no such file in {name}/)"
                ));
            }
            Some(p)
        }
        None => primary_script(dir),
    };
    function(name, &file, dir, fc, script_file, config, settings)
}

fn check_bindings(file: &str, fc: &FunctionConfig) -> Result<(), String> {
    let unsupported: Vec<&str> = fc
        .bindings
        .iter()
        .map(|b| b.type_name.as_str())
        .filter(|t| !SUPPORTED_BINDINGS.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{file}: the binding type(s) '{}' are not supported by this host (supported: {})",
        unsupported.join("', '"),
        SUPPORTED_BINDINGS.join(", ")
    ))
}

fn function(
    name: &str,
    file: &str,
    dir: &Path,
    fc: FunctionConfig,
    script_file: Option<PathBuf>,
    config: &HostConfig,
    settings: &AppSettings,
) -> Result<Function, String> {
    let outputs = crate::bindings::outputs_of(file, &fc, settings)?;
    let retry = fc.retry.clone().or_else(|| config.retry.clone());
    let http_output = fc
        .bindings
        .iter()
        .find(|b| b.is_type("http") && b.direction == Direction::Out)
        .map(|b| b.name.clone());
    let invocation_log_level = config.log_levels.level_for(&format!("Function.{name}"));
    let user_log_level = config
        .log_levels
        .level_for(&format!("Function.{name}.User"));
    Ok(Function {
        name: name.to_string(),
        short_name: format!("Functions.{name}"),
        disabled: settings.is_function_disabled(name),
        config: fc,
        dir: dir.to_path_buf(),
        script_file,
        invocation_log_level,
        user_log_level,
        http_output,
        outputs,
        retry,
    })
}

/// A function a language worker found in the app (worker indexing), from its name and its
/// bindings as function.json objects (`raw_bindings`).
pub fn indexed_function(
    root: &Path,
    config: &HostConfig,
    settings: &AppSettings,
    name: &str,
    raw_bindings: &[String],
    script_file: Option<PathBuf>,
    entry_point: Option<String>,
) -> Result<Function, String> {
    let file = format!("{name} (indexed by the worker)");
    let mut bindings = Vec::with_capacity(raw_bindings.len());
    for (i, raw) in raw_bindings.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
            format!("{file}: $.bindings[{i}]: expected a JSON object, found {raw:?} ({e})")
        })?;
        bindings.push(v);
    }
    let mut doc = serde_json::Map::new();
    doc.insert("bindings".into(), serde_json::Value::Array(bindings));
    if let Some(e) = &entry_point {
        doc.insert("entryPoint".into(), serde_json::Value::String(e.clone()));
    }
    let fc = FunctionConfig::parse(name, &file, serde_json::Value::Object(doc))
        .map_err(|e| e.to_string())?;
    check_bindings(&file, &fc)?;
    function(name, &file, root, fc, script_file, config, settings)
}

/// The host's primary-script rule: the only file besides function.json, else `run.*`,
/// `index.js`, `index.mjs`, `index.cjs` or `__init__.py`.
fn primary_script(dir: &Path) -> Option<PathBuf> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| !n.eq_ignore_ascii_case("function.json"))
        })
        .collect();
    if files.len() == 1 {
        return files.into_iter().next();
    }
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
    };
    files
        .iter()
        .find(|p| name(p).starts_with("run."))
        .or_else(|| {
            ["index.js", "index.mjs", "index.cjs", "__init__.py"]
                .iter()
                .find_map(|w| files.iter().find(|p| name(p) == *w))
        })
        .cloned()
}

/// The host id: `AzureFunctionsWebHost__hostid`, else `<machine>-<hash of the app path>`
/// (lower case, at most 32 characters, no trailing `-`), as the Azure host computes it locally.
fn host_id(settings: &AppSettings, machine: &str, root: &Path) -> String {
    let explicit = settings
        .get("AzureFunctionsWebHost__hostid")
        .or_else(|| settings.get("AzureFunctionsWebHost:hostid"));
    let raw = match explicit {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => {
            // Unlike the Azure host, the machine part is shortened rather than the hash cut
            // off, so that two apps on a machine with a long name never share an id (and keys).
            let hash = stable_hash(&root.to_string_lossy())
                .unsigned_abs()
                .to_string();
            let machine: String = machine
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(31 - hash.len())
                .collect();
            format!("{machine}-{hash}")
        }
    };
    let mut id: String = raw.to_lowercase().chars().take(32).collect();
    while id.ends_with('-') {
        id.pop();
    }
    id
}

/// The host's `GetStableHash`: h = 23; h = h * 31 + c over UTF-16 code units, wrapping.
fn stable_hash(text: &str) -> i32 {
    text.encode_utf16()
        .fold(23i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    const HTTP: &str = r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","authLevel":"anonymous"},{"type":"http","direction":"out","name":"res"}]}"#;

    #[test]
    fn broken_functions_do_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "host.json", "\u{feff}{\"version\":\"2.0\"}");
        write(root, "Good/function.json", HTTP);
        write(root, "Bom/function.json", &format!("\u{feff}{HTTP}"));
        write(
            root,
            "Broken/function.json",
            r#"{"bindings":[{"type":"httpTrigger","name":"req","authLevel":"nobody"}]}"#,
        );
        write(
            root,
            "Queue/function.json",
            r#"{"bindings":[{"type":"blobTrigger","name":"m","path":"c/{name}"}]}"#,
        );
        write(
            root,
            "Admin/function.json",
            r#"{"bindings":[{"type":"httpTrigger","name":"req","route":"admin/x"}]}"#,
        );
        write(root, "NotAFunction/readme.txt", "x");
        let app = load(root, &LoadOptions::default()).unwrap();
        let names: Vec<&str> = app.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["Bom", "Good"]);
        let errs: Vec<String> = app
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.name, e.errors[0]))
            .collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("Admin: The specified route conflicts"),
            "{errs:?}"
        );
        assert!(
            errs[1].contains("Broken/function.json: $.bindings[0].authLevel"),
            "{errs:?}"
        );
        assert!(
            errs[2].contains("'blobTrigger' are not supported"),
            "{errs:?}"
        );
        assert!(app.routes.find("GET", "/api/good").is_some());
    }

    #[test]
    fn bad_host_json_is_fatal_and_settings_override() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "host.json", r#"{"version":"3.0"}"#);
        let e = load(root, &LoadOptions::default()).unwrap_err().to_string();
        assert_eq!(e, "host.json: $.version: expected \"2.0\", found \"3.0\"");
        write(root, "host.json", r#"{"version":"2.0"}"#);
        write(
            root,
            "local.settings.json",
            r#"{"IsEncrypted":false,"Values":{"AzureFunctionsJobHost__extensions__http__routePrefix":"v1","AzureWebJobs.Hello.Disabled":"true","A":"file"}}"#,
        );
        write(root, "Hello/function.json", HTTP);
        let opts = LoadOptions {
            env: vec![("A".into(), "env".into())],
            use_local_settings: true,
            machine_name: "Box-1".into(),
        };
        let app = load(root, &opts).unwrap();
        assert_eq!(app.config.http.route_prefix, "v1");
        assert_eq!(app.settings.get("A"), Some("env"));
        assert!(app.functions[0].disabled);
        assert!(app.host_id.starts_with("box1-"), "{}", app.host_id);
        assert!(app.host_id.len() <= 32);
    }

    #[test]
    fn allow_list_and_script_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "host.json",
            r#"{"version":"2.0","functions":["one"]}"#,
        );
        write(root, "One/function.json", HTTP);
        write(root, "One/run.py", "");
        write(root, "One/other.py", "");
        write(root, "Two/function.json", HTTP);
        let app = load(root, &LoadOptions::default()).unwrap();
        assert_eq!(app.functions.len(), 1);
        assert!(
            app.functions[0]
                .script_file
                .as_ref()
                .unwrap()
                .ends_with("run.py")
        );
    }

    #[test]
    fn long_machine_names_keep_ids_apart() {
        let s = AppSettings::new();
        let m = "buildagenteastus20001internalxyzlonger";
        let a = host_id(&s, m, Path::new("/apps/a"));
        let b = host_id(&s, m, Path::new("/apps/b"));
        assert_ne!(a, b);
        assert!(a.len() <= 32 && b.len() <= 32);
    }

    #[test]
    fn stable_hash_matches_dotnet() {
        assert_eq!(stable_hash(""), 23);
        assert_eq!(stable_hash("a"), 23 * 31 + 97);
    }
}
