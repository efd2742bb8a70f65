//! A loaded function app: its configuration, its functions (and the ones in error), its routes.

mod load;

use std::path::PathBuf;
use std::sync::Arc;

use stratus_model::route::RouteTable;
use stratus_model::{AppSettings, FunctionConfig, HostConfig, LocalSettings, LogLevel};

pub use load::{LoadError, LoadOptions, SUPPORTED_BINDINGS, indexed_function, load};

/// A function that loaded without errors.
#[derive(Debug)]
pub struct Function {
    pub name: String,
    /// `Functions.<name>`, the name the host uses in invocation logs.
    pub short_name: String,
    pub config: FunctionConfig,
    pub dir: PathBuf,
    /// Disabled by an `AzureWebJobs.<name>.Disabled` setting.
    pub disabled: bool,
    /// The primary script file, when one could be determined.
    pub script_file: Option<PathBuf>,
    /// Minimum level of the invocation logs (`Function.<name>`).
    pub invocation_log_level: LogLevel,
    /// Minimum level of the function's own logs (`Function.<name>.User`).
    pub user_log_level: LogLevel,
    /// Name of the `http` output binding (`res`, `$return`, ...), for HTTP functions.
    pub http_output: Option<String>,
    /// Output bindings the host writes (`queue`).
    pub outputs: Vec<crate::bindings::OutputBinding>,
    /// The retry policy: function.json's `retry`, else host.json's.
    pub retry: Option<stratus_model::RetryPolicy>,
}

impl Function {
    pub fn is_http(&self) -> bool {
        self.config.http().is_some()
    }
}

/// Errors of one function that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionErrors {
    pub name: String,
    pub errors: Vec<String>,
}

/// A function app, validated and ready to serve.
#[derive(Debug)]
pub struct App {
    pub root: PathBuf,
    pub host_id: String,
    pub config: HostConfig,
    pub settings: AppSettings,
    pub local: Option<LocalSettings>,
    /// Loaded functions, in the host's order (name, case-insensitive).
    pub functions: Vec<Arc<Function>>,
    /// Functions in error, in name order.
    pub errors: Vec<FunctionErrors>,
    pub routes: RouteTable<Arc<Function>>,
}

impl App {
    /// The loaded function named `name` (case-insensitive).
    pub fn function(&self, name: &str) -> Option<&Arc<Function>> {
        self.functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Replaces the functions with the ones a language worker indexed (and the ones it could
    /// not describe), applying the `functions` allow-list and rebuilding the routes.
    pub fn adopt_indexed(&mut self, functions: Vec<Arc<Function>>, errors: Vec<FunctionErrors>) {
        let allowed = |name: &str| {
            self.config
                .functions
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|a| a.eq_ignore_ascii_case(name)))
        };
        let mut functions: Vec<Arc<Function>> =
            functions.into_iter().filter(|f| allowed(&f.name)).collect();
        functions.sort_by(|a, b| stratus_model::route::cmp_ignore_case(&a.name, &b.name));
        let errors = errors.into_iter().filter(|e| allowed(&e.name)).collect();
        let (functions, errors, routes) =
            load::routed(&self.config.http.route_prefix, functions, errors);
        self.functions = functions;
        self.errors = errors;
        self.routes = routes;
    }

    /// Moves function `name` to the functions in error (a problem found after loading, such
    /// as a schedule that does not parse), rebuilding the routes.
    pub fn fail_function(&mut self, name: &str, message: String) {
        let functions: Vec<Arc<Function>> = self
            .functions
            .iter()
            .filter(|f| !f.name.eq_ignore_ascii_case(name))
            .cloned()
            .collect();
        let mut errors = std::mem::take(&mut self.errors);
        errors.push(FunctionErrors {
            name: name.to_string(),
            errors: vec![message],
        });
        let (functions, errors, routes) =
            load::routed(&self.config.http.route_prefix, functions, errors);
        self.functions = functions;
        self.errors = errors;
        self.routes = routes;
    }

    /// The errors of function `name`, if it failed to load.
    pub fn function_errors(&self, name: &str) -> Option<&FunctionErrors> {
        self.errors
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
    }
}
