//! Which functions a worker loads: the app's function.json functions (host indexing), or the
//! ones the worker reports in its `FunctionMetadataResponse` (worker indexing).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use stratus_model::{AppSettings, DataType, Direction, HostConfig};
use stratus_proto::msg::{
    BindingDataType, BindingDirection, BindingInfo, FunctionLoad, FunctionMetadata,
};

use crate::app::{Function, FunctionErrors, indexed_function};

/// The retry policy a worker declared for a function (`retry_options`, e.g. Python v2's
/// `@app.retry`).
fn retry_policy(r: &stratus_proto::msg::RetryOptions) -> stratus_model::RetryPolicy {
    use stratus_model::RetryStrategy;
    let strategy = if r.exponential_backoff {
        RetryStrategy::ExponentialBackoff {
            minimum: r.minimum_interval.unwrap_or_default(),
            maximum: r
                .maximum_interval
                .or(r.minimum_interval)
                .unwrap_or_default(),
        }
    } else {
        RetryStrategy::FixedDelay {
            delay: r.delay_interval.unwrap_or_default(),
        }
    };
    stratus_model::RetryPolicy {
        strategy,
        max_retry_count: u32::try_from(r.max_retry_count).ok(),
    }
}

/// What worker indexing needs of the app.
#[derive(Debug, Clone)]
pub struct IndexContext {
    pub root: PathBuf,
    pub config: HostConfig,
    pub settings: AppSettings,
}

/// The functions one worker process loads, with the ids it knows them by.
#[derive(Debug, Clone, Default)]
pub struct Loads {
    pub loads: Vec<(Arc<Function>, FunctionLoad)>,
}

impl Loads {
    /// Function name (lower case) → function id.
    pub fn ids(&self) -> HashMap<String, String> {
        self.loads
            .iter()
            .map(|(f, l)| (f.name.to_ascii_lowercase(), l.function_id.clone()))
            .collect()
    }
}

/// The app's functions as a worker indexed them, decided by the first worker that answered.
#[derive(Debug, Clone)]
pub struct Indexed {
    pub functions: Vec<Arc<Function>>,
    pub errors: Vec<FunctionErrors>,
}

fn binding_info(b: &stratus_model::Binding) -> BindingInfo {
    BindingInfo {
        type_name: b.type_name.clone(),
        direction: match b.direction {
            Direction::In => BindingDirection::In,
            Direction::Out => BindingDirection::Out,
            Direction::InOut => BindingDirection::InOut,
        },
        data_type: match b.data_type {
            None => BindingDataType::Undefined,
            Some(DataType::String) => BindingDataType::String,
            Some(DataType::Binary) => BindingDataType::Binary,
            Some(DataType::Stream) => BindingDataType::Stream,
        },
        properties: HashMap::new(),
    }
}

fn bindings(f: &Function) -> HashMap<String, BindingInfo> {
    f.config
        .bindings
        .iter()
        .map(|b| (b.name.clone(), binding_info(b)))
        .collect()
}

/// The load requests of function.json functions, as the host builds them (a new id each,
/// enabled functions first: disabled ones stay invokable by an admin).
pub fn host_indexed(functions: &[Arc<Function>]) -> Loads {
    let mut ordered: Vec<&Arc<Function>> = functions.iter().filter(|f| !f.disabled).collect();
    ordered.extend(functions.iter().filter(|f| f.disabled));
    let loads = ordered
        .into_iter()
        .map(|f| {
            let id = uuid::Uuid::new_v4().to_string();
            let metadata = FunctionMetadata {
                name: f.name.clone(),
                directory: f.dir.display().to_string(),
                script_file: f
                    .script_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                entry_point: f.config.entry_point.clone().unwrap_or_default(),
                bindings: bindings(f),
                properties: [("FunctionId".to_string(), id.clone())]
                    .into_iter()
                    .collect(),
                ..FunctionMetadata::default()
            };
            let load = FunctionLoad {
                function_id: id,
                metadata,
                managed_dependency_enabled: false,
            };
            (f.clone(), load)
        })
        .collect();
    Loads { loads }
}

/// Reads the worker's description of the app's functions.
pub fn from_metadata(ctx: &IndexContext, reported: &[FunctionMetadata]) -> Indexed {
    let mut functions = Vec::new();
    let mut errors = Vec::new();
    let allowed = |name: &str| {
        ctx.config
            .functions
            .as_ref()
            .is_none_or(|allow| allow.iter().any(|a| a.eq_ignore_ascii_case(name)))
    };
    // host.json's `functions` allow-list applies before anything loads.
    for m in reported.iter().filter(|m| allowed(&m.name)) {
        // Workers may name the script relative to the function's directory (Python: `function_app.py`).
        let script = (!m.script_file.is_empty()).then(|| {
            let p = PathBuf::from(&m.script_file);
            if p.is_absolute() {
                p
            } else if m.directory.is_empty() {
                ctx.root.join(p)
            } else {
                PathBuf::from(&m.directory).join(p)
            }
        });
        let entry = (!m.entry_point.is_empty()).then(|| m.entry_point.clone());
        if functions
            .iter()
            .any(|f: &Arc<Function>| f.name.eq_ignore_ascii_case(&m.name))
        {
            errors.push(FunctionErrors {
                name: m.name.clone(),
                errors: vec![format!(
                    "the worker reported the function '{}' twice",
                    m.name
                )],
            });
            continue;
        }
        match indexed_function(
            &ctx.root,
            &ctx.config,
            &ctx.settings,
            &m.name,
            &m.raw_bindings,
            script,
            entry,
        ) {
            Ok(mut f) => {
                if let Some(r) = &m.retry_options {
                    f.retry = Some(retry_policy(r));
                }
                functions.push(Arc::new(f))
            }
            Err(e) => errors.push(FunctionErrors {
                name: m.name.clone(),
                errors: vec![e],
            }),
        }
    }
    Indexed { functions, errors }
}

/// The load requests for the functions a worker reported: its own ids and properties are
/// echoed; the bindings are the host's reading of `raw_bindings`.
pub fn worker_loads(indexed: &Indexed, reported: &[FunctionMetadata]) -> Loads {
    let mut loads = Vec::new();
    for f in &indexed.functions {
        let Some(m) = reported
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(&f.name))
        else {
            continue;
        };
        let id = if m.function_id.is_empty() {
            m.name.clone()
        } else {
            m.function_id.clone()
        };
        let mut metadata = m.clone();
        metadata.function_id = id.clone();
        metadata.bindings = bindings(f);
        metadata.raw_bindings = Vec::new();
        loads.push((
            f.clone(),
            FunctionLoad {
                function_id: id,
                metadata,
                managed_dependency_enabled: false,
            },
        ));
    }
    let (enabled, disabled): (Vec<_>, Vec<_>) = loads.into_iter().partition(|(f, _)| !f.disabled);
    Loads {
        loads: enabled.into_iter().chain(disabled).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> IndexContext {
        let doc = serde_json::json!({"version": "2.0"});
        IndexContext {
            root: PathBuf::from("/app"),
            config: HostConfig::parse(doc).unwrap(),
            settings: AppSettings::new(),
        }
    }

    fn meta(name: &str, bindings: &[&str]) -> FunctionMetadata {
        FunctionMetadata {
            name: name.into(),
            function_id: format!("id-{name}"),
            raw_bindings: bindings.iter().map(|b| b.to_string()).collect(),
            properties: [("worker_indexed".to_string(), "True".to_string())]
                .into_iter()
                .collect(),
            ..FunctionMetadata::default()
        }
    }

    #[test]
    fn worker_metadata_becomes_functions_and_loads() {
        let reported = vec![
            meta(
                "hello",
                &[
                    r#"{"type":"httpTrigger","direction":"in","name":"req","authLevel":"anonymous","methods":["GET"],"route":"hi/{name}"}"#,
                    r#"{"type":"http","direction":"out","name":"$return"}"#,
                ],
            ),
            meta(
                "broken",
                &[r#"{"type":"http","direction":"out","name":"$return"}"#],
            ),
            meta("bad-json", &["{"]),
        ];
        let indexed = from_metadata(&ctx(), &reported);
        assert_eq!(indexed.functions.len(), 1);
        let f = &indexed.functions[0];
        assert_eq!(f.config.http().unwrap().route.as_deref(), Some("hi/{name}"));
        assert_eq!(f.http_output.as_deref(), Some("$return"));
        assert_eq!(indexed.errors.len(), 2, "{:?}", indexed.errors);
        assert!(
            indexed.errors[1].errors[0].contains("bad-json (indexed by the worker): $.bindings[0]")
        );

        let loads = worker_loads(&indexed, &reported);
        let (_, load) = &loads.loads[0];
        assert_eq!(load.function_id, "id-hello");
        assert_eq!(load.metadata.properties["worker_indexed"], "True");
        assert!(load.metadata.raw_bindings.is_empty());
        assert_eq!(load.metadata.bindings["req"].type_name, "httpTrigger");
        assert_eq!(loads.ids()["hello"], "id-hello");
    }
}
