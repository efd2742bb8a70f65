//! Finding the language worker of an app, as the Azure host and Core Tools do: the worker
//! whose `language` is `FUNCTIONS_WORKER_RUNTIME`, described by `<workers>/<language>/worker.config.json`,
//! or, for Python, the worker installed as a package (`python -m azure_functions_worker`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use stratus_model::worker_config::{ProcessOptions, WORKER_CONFIG_JSON, expand_worker_path};
use stratus_model::{AppSettings, WorkerConfig, json};

/// Where workers are looked for, besides the app's settings.
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// The workers directory (`--workers-dir`); `languageWorkers__workersDirectory` wins over it.
    pub workers_dir: Option<PathBuf>,
}

/// Which command-line arguments the worker understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentStyle {
    /// Both the legacy (`--host --port ...`) and the `--functions-*` sets, as the Azure host passes.
    Both,
    /// Only the legacy set: the Python worker package reads its arguments with a strict parser
    /// that stops at unknown ones in its older releases.
    Legacy,
}

/// How to start the app's language worker.
#[derive(Debug, Clone)]
pub struct WorkerLaunch {
    pub language: String,
    pub program: PathBuf,
    /// Arguments before the protocol's own: `arguments`, then the worker path.
    pub args: Vec<OsString>,
    pub worker_dir: PathBuf,
    pub style: ArgumentStyle,
    pub worker_indexing: bool,
    pub process: ProcessOptions,
    pub process_count: u32,
    pub runtime_version: Option<String>,
    /// Where the description came from, for logs.
    pub source: String,
}

/// A language-worker setting: `languageWorkers__<path>` or `languageWorkers:<path>`.
fn worker_setting<'a>(settings: &'a AppSettings, path: &[&str]) -> Option<&'a str> {
    let under = format!("languageWorkers__{}", path.join("__"));
    let colon = format!("languageWorkers:{}", path.join(":"));
    settings
        .get(&under)
        .or_else(|| settings.get(&colon))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Resolves an executable: absolute, relative to `dir`, or on the app's PATH.
fn resolve_program(exe: &str, dir: &Path, settings: &AppSettings) -> Result<PathBuf, String> {
    let p = Path::new(exe);
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    if dir.join(p).is_file() {
        return Ok(dir.join(p));
    }
    if !exe.contains('/')
        && let Some(found) = super::super::find_on_path(exe, settings.get("PATH"))
    {
        return Ok(found);
    }
    Err(format!(
        "the worker's executable \"{exe}\" is neither in {} nor on PATH",
        dir.display()
    ))
}

fn os_name() -> &'static str {
    match std::env::consts::OS {
        "linux" => "LINUX",
        "macos" => "OSX",
        "windows" => "WINDOWS",
        other => other,
    }
}

fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "x86" => "X86",
        "aarch64" => "Arm64",
        "arm" => "Arm",
        other => other,
    }
}

fn process_count(settings: &AppSettings, options: &ProcessOptions) -> Result<u32, String> {
    let Some(text) = settings.get("FUNCTIONS_WORKER_PROCESS_COUNT") else {
        return Ok(options.process_count.unwrap_or(1));
    };
    let max = options.max_process_count;
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "FUNCTIONS_WORKER_PROCESS_COUNT: expected a number from 1 to {max}, found \"{text}\""
        )),
    }
}

/// Finds the worker for the app's `FUNCTIONS_WORKER_RUNTIME`.
pub fn discover(settings: &AppSettings, opts: &WorkerOptions) -> Result<WorkerLaunch, String> {
    let language = settings
        .get("FUNCTIONS_WORKER_RUNTIME")
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            "FUNCTIONS_WORKER_RUNTIME is not set: set it (e.g. \"python\" or \"node\") in local.settings.json \
             Values or the environment, or describe a custom handler in host.json"
                .to_string()
        })?;
    let workers_dir = worker_setting(settings, &["workersDirectory"])
        .map(PathBuf::from)
        .or_else(|| opts.workers_dir.clone());
    let worker_dir = worker_setting(settings, &[&language, "workerDirectory"])
        .map(PathBuf::from)
        .or_else(|| workers_dir.as_ref().map(|d| d.join(&language)));

    if let Some(dir) = &worker_dir
        && dir.join(WORKER_CONFIG_JSON).is_file()
    {
        return from_config(settings, &language, dir);
    }
    if language == "python" {
        return python_package(settings);
    }
    let looked = match &worker_dir {
        Some(d) => format!("{}", d.join(WORKER_CONFIG_JSON).display()),
        None => "no workers directory is configured".to_string(),
    };
    Err(format!(
        "no language worker found for FUNCTIONS_WORKER_RUNTIME={language}: looked for {looked}. \
         Point --workers-dir (or languageWorkers__workersDirectory) at a directory holding {language}/{WORKER_CONFIG_JSON}, \
         or languageWorkers__{language}__workerDirectory at the worker itself"
    ))
}

fn from_config(settings: &AppSettings, language: &str, dir: &Path) -> Result<WorkerLaunch, String> {
    let path = dir.join(WORKER_CONFIG_JSON);
    let file = path.display().to_string();
    let text = std::fs::read(&path).map_err(|e| format!("cannot read {file}: {e}"))?;
    let doc =
        json::parse_document(&file, &String::from_utf8_lossy(&text)).map_err(|e| e.to_string())?;
    let config = WorkerConfig::parse(&file, &doc).map_err(|e| e.to_string())?;
    if !config.language.eq_ignore_ascii_case(language) {
        return Err(format!(
            "{file}: $.description.language: expected \"{language}\" (FUNCTIONS_WORKER_RUNTIME), found \"{}\"",
            config.language
        ));
    }
    if config.is_disabled {
        return Err(format!(
            "{file}: the {language} worker is disabled (isDisabled)"
        ));
    }
    let version = settings
        .get("FUNCTIONS_WORKER_RUNTIME_VERSION")
        .or_else(|| worker_setting(settings, &[language, "defaultRuntimeVersion"]))
        .map(str::to_string)
        .or_else(|| config.default_runtime_version.clone());
    let exe = worker_setting(settings, &[language, "defaultExecutablePath"])
        .unwrap_or(&config.default_executable_path);
    let program = resolve_program(exe, dir, settings)?;
    let dir_text = dir.display().to_string();
    let arguments: Vec<String> = match worker_setting(settings, &[language, "arguments"]) {
        Some(a) => a.split_whitespace().map(str::to_string).collect(),
        None => config
            .arguments
            .iter()
            .flat_map(|a| a.split_whitespace())
            .map(str::to_string)
            .collect(),
    };
    let mut args: Vec<OsString> = arguments
        .iter()
        .map(|a| OsString::from(a.replace("{workerDirectoryPath}", &dir_text)))
        .collect();
    if let Some(w) = &config.default_worker_path {
        let expanded = expand_worker_path(
            w,
            os_name(),
            architecture(),
            version.as_deref().unwrap_or(""),
        );
        let p = Path::new(&expanded);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        if !full.is_file() {
            return Err(format!(
                "{file}: $.description.defaultWorkerPath: expected an existing file, found \"{}\"",
                full.display()
            ));
        }
        args.push(full.into_os_string());
    }
    // `workerArguments` belong to HTTP workers; the host passes none to RPC workers.
    Ok(WorkerLaunch {
        language: language.to_string(),
        program,
        args,
        worker_dir: dir.to_path_buf(),
        style: ArgumentStyle::Both,
        worker_indexing: config.worker_indexing,
        process_count: process_count(settings, &config.process)?,
        process: config.process,
        runtime_version: version,
        source: file,
    })
}

/// The Python worker installed as a package in the interpreter's environment.
fn python_package(settings: &AppSettings) -> Result<WorkerLaunch, String> {
    let exe = worker_setting(settings, &["python", "defaultExecutablePath"]).unwrap_or("python3");
    let program = resolve_program(exe, Path::new("/"), settings).map_err(|_| {
        format!(
            "no language worker found for FUNCTIONS_WORKER_RUNTIME=python: no workers directory holds python/{WORKER_CONFIG_JSON}, \
             and \"{exe}\" (to run the azure_functions_worker package) is not on PATH; set languageWorkers__python__defaultExecutablePath \
             to the Python of an environment where azure-functions-worker is installed"
        )
    })?;
    let worker_dir = program
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let process = ProcessOptions::default();
    Ok(WorkerLaunch {
        language: "python".into(),
        args: vec!["-m".into(), "azure_functions_worker".into()],
        source: format!("{} -m azure_functions_worker", program.display()),
        program,
        worker_dir,
        style: ArgumentStyle::Legacy,
        worker_indexing: false,
        process_count: process_count(settings, &process)?,
        process,
        runtime_version: settings
            .get("FUNCTIONS_WORKER_RUNTIME_VERSION")
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> AppSettings {
        AppSettings::from_pairs(pairs)
    }

    #[test]
    fn a_worker_config_is_found_and_expanded() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node");
        std::fs::create_dir_all(node.join("dist/src")).unwrap();
        std::fs::write(node.join("dist/src/nodejsWorker.js"), "").unwrap();
        std::fs::write(node.join("node"), "").unwrap();
        std::fs::write(
            node.join(WORKER_CONFIG_JSON),
            r#"{"description":{"language":"node","extensions":[".js"],"defaultExecutablePath":"node",
                "defaultWorkerPath":"dist/src/nodejsWorker.js","workerIndexing":"true"},
                "processOptions":{"initializationTimeout":"00:02:00"}}"#,
        )
        .unwrap();
        let s = settings(&[
            ("FUNCTIONS_WORKER_RUNTIME", "node"),
            ("FUNCTIONS_WORKER_PROCESS_COUNT", "2"),
        ]);
        let opts = WorkerOptions {
            workers_dir: Some(dir.path().to_path_buf()),
        };
        let w = discover(&s, &opts).unwrap();
        assert_eq!(w.program, node.join("node"));
        assert_eq!(
            w.args,
            vec![OsString::from(node.join("dist/src/nodejsWorker.js"))]
        );
        assert!(w.worker_indexing);
        assert_eq!(w.style, ArgumentStyle::Both);
        assert_eq!(w.process_count, 2);
    }

    #[test]
    fn missing_workers_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&[("FUNCTIONS_WORKER_RUNTIME", "node")]);
        let opts = WorkerOptions {
            workers_dir: Some(dir.path().to_path_buf()),
        };
        let e = discover(&s, &opts).unwrap_err();
        assert!(e.contains("FUNCTIONS_WORKER_RUNTIME=node"), "{e}");
        assert!(e.contains("node/worker.config.json"), "{e}");
        let e = discover(&AppSettings::new(), &opts).unwrap_err();
        assert!(e.starts_with("FUNCTIONS_WORKER_RUNTIME is not set"), "{e}");
        let s = settings(&[
            ("FUNCTIONS_WORKER_RUNTIME", "node"),
            ("FUNCTIONS_WORKER_PROCESS_COUNT", "11"),
        ]);
        std::fs::create_dir_all(dir.path().join("node")).unwrap();
        std::fs::write(
            dir.path().join("node").join(WORKER_CONFIG_JSON),
            r#"{"description":{"language":"node","defaultExecutablePath":"/bin/sh"}}"#,
        )
        .unwrap();
        let e = discover(&s, &opts).unwrap_err();
        assert!(e.contains("from 1 to 10"), "{e}");
    }

    #[test]
    fn python_falls_back_to_the_installed_package() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("python3"), "").unwrap();
        let s = settings(&[
            ("FUNCTIONS_WORKER_RUNTIME", "python"),
            ("PATH", &dir.path().display().to_string()),
        ]);
        let w = discover(&s, &WorkerOptions::default()).unwrap();
        assert_eq!(w.program, dir.path().join("python3"));
        assert_eq!(w.style, ArgumentStyle::Legacy);
        assert_eq!(
            w.args,
            vec![
                OsString::from("-m"),
                OsString::from("azure_functions_worker")
            ]
        );
    }
}
