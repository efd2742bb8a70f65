//! `function.json`: one function's bindings, and the validation the host applies to them.

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
use crate::json::{self, Obj};
use crate::keys::AuthLevel;
use crate::retry::RetryPolicy;
use crate::schedule::TimerTrigger;

/// Direction of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    InOut,
}

/// `dataType` of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    String,
    Binary,
    Stream,
}

/// One entry of `bindings`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// `type` as written (e.g. `httpTrigger`).
    pub type_name: String,
    pub direction: Direction,
    pub name: String,
    pub data_type: Option<DataType>,
    /// The binding object as written, handed to executors unchanged.
    pub raw: Map<String, Value>,
}

impl Binding {
    pub fn is_trigger(&self) -> bool {
        self.type_name.to_ascii_lowercase().ends_with("trigger")
    }

    pub fn is_type(&self, name: &str) -> bool {
        self.type_name.eq_ignore_ascii_case(name)
    }

    pub fn is_return(&self) -> bool {
        self.name == "$return"
    }
}

/// The HTTP trigger's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    pub auth_level: AuthLevel,
    /// Allowed methods, upper-case; `None` allows every method.
    pub methods: Option<Vec<String>>,
    /// `route` as written; `None` means the function name.
    pub route: Option<String>,
}

/// What starts the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Http(HttpTrigger),
    /// A `timerTrigger`; its schedule is resolved with the app settings by
    /// [`TimerTrigger::resolve`].
    Timer(TimerTrigger),
    /// A trigger Stratus reads elsewhere (queue, ...), by its `type`.
    Other(String),
}

/// A validated function definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub name: String,
    pub bindings: Vec<Binding>,
    /// Index of the trigger in `bindings`.
    pub trigger_index: usize,
    pub trigger: Trigger,
    pub script_file: Option<String>,
    pub entry_point: Option<String>,
    pub retry: Option<RetryPolicy>,
    /// The definition as written (function.json's object, or a synthesized one).
    pub raw: Value,
}

impl FunctionConfig {
    pub fn trigger_binding(&self) -> &Binding {
        &self.bindings[self.trigger_index]
    }

    pub fn http(&self) -> Option<&HttpTrigger> {
        match &self.trigger {
            Trigger::Http(h) => Some(h),
            Trigger::Timer(_) | Trigger::Other(_) => None,
        }
    }

    pub fn timer(&self) -> Option<&TimerTrigger> {
        match &self.trigger {
            Trigger::Timer(t) => Some(t),
            Trigger::Http(_) | Trigger::Other(_) => None,
        }
    }

    /// JSON path of the trigger binding (`$.bindings[0]`), for errors found after parsing.
    pub fn trigger_path(&self) -> String {
        format!("$.bindings[{}]", self.trigger_index)
    }

    /// True when the function has exactly an HTTP trigger and one `http` output, the shape
    /// a custom handler can serve by plain request forwarding.
    pub fn is_pure_http(&self) -> bool {
        self.http().is_some()
            && self.bindings.len() == 2
            && self
                .bindings
                .iter()
                .any(|b| b.is_type("http") && b.direction == Direction::Out)
    }
}

/// The host's function name rule: a letter, then up to 127 letters, digits, `_` or `-`; not `host`.
pub fn validate_function_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.eq_ignore_ascii_case("host");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not a valid function name: expected a letter followed by up to 127 letters, \
             digits, '_' or '-' (and not \"host\")"
        ))
    }
}

fn valid_binding_name(name: &str) -> bool {
    if name == "$return" {
        return true;
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_method(m: &str) -> bool {
    !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic())
}

impl FunctionConfig {
    /// Parses a function.json document for the function `name`; `file` names it in errors.
    pub fn parse(name: &str, file: &str, doc: Value) -> Result<FunctionConfig> {
        validate_function_name(name).map_err(|e| ModelError::new(file, "$", e))?;
        let o = Obj::root(file, &doc)?;
        let (bindings_path, items) = o
            .array("bindings")?
            .ok_or_else(|| o.error("bindings", "expected an array of bindings, found nothing"))?;
        let mut bindings = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let nested = json::element(file, format!("{bindings_path}[{i}]"), item)?;
            bindings.push(parse_binding(nested.view())?);
        }
        let script_file = o.str("scriptFile")?.map(str::to_string);
        let entry_point = o.str("entryPoint")?.map(str::to_string);
        let retry = match o.obj("retry")? {
            Some(r) => Some(RetryPolicy::parse(r.view())?),
            None => None,
        };
        let (trigger_index, trigger) = validate_bindings(file, &bindings_path, &bindings)?;
        Ok(FunctionConfig {
            name: name.to_string(),
            bindings,
            trigger_index,
            trigger,
            script_file,
            entry_point,
            retry,
            raw: doc,
        })
    }
}

fn parse_binding(o: Obj<'_>) -> Result<Binding> {
    let type_name = o
        .str("type")?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            o.error(
                "type",
                "expected the binding type (e.g. \"httpTrigger\"), found nothing",
            )
        })?
        .to_string();
    let name = o
        .str("name")?
        .ok_or_else(|| o.error("name", "expected the binding name, found nothing"))?
        .to_string();
    if !valid_binding_name(&name) {
        return Err(o.error(
            "name",
            format!("expected a binding name made of letters, digits and '_' (or \"$return\"), found \"{name}\""),
        ));
    }
    let direction = match o.str("direction")? {
        None => Direction::In,
        Some(d) => match d.to_ascii_lowercase().as_str() {
            "in" => Direction::In,
            "out" => Direction::Out,
            "inout" => Direction::InOut,
            _ => {
                return Err(o.error(
                    "direction",
                    format!("expected \"in\", \"out\" or \"inout\", found \"{d}\""),
                ));
            }
        },
    };
    let data_type = match o.str("dataType")? {
        None => None,
        Some(d) => Some(match d.to_ascii_lowercase().as_str() {
            "string" => DataType::String,
            "binary" => DataType::Binary,
            "stream" => DataType::Stream,
            _ => {
                return Err(o.error(
                    "dataType",
                    format!("expected \"string\", \"binary\" or \"stream\", found \"{d}\""),
                ));
            }
        }),
    };
    Ok(Binding {
        type_name,
        direction,
        name,
        data_type,
        raw: o.map.clone(),
    })
}

fn validate_bindings(file: &str, path: &str, bindings: &[Binding]) -> Result<(usize, Trigger)> {
    if bindings.is_empty() {
        return Err(ModelError::new(
            file,
            path,
            "expected at least one binding (the trigger), found none",
        ));
    }
    for (i, b) in bindings.iter().enumerate() {
        if let Some(j) = bindings[..i]
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(&b.name))
        {
            return Err(ModelError::new(
                file,
                format!("{path}[{i}].name"),
                format!(
                    "expected a unique binding name; \"{}\" is also used by {path}[{j}]",
                    b.name
                ),
            ));
        }
        if b.is_return() && b.direction != Direction::Out {
            return Err(ModelError::new(
                file,
                format!("{path}[{i}].direction"),
                "expected \"out\": only output bindings can be named \"$return\"",
            ));
        }
    }
    let triggers: Vec<usize> = (0..bindings.len())
        .filter(|&i| bindings[i].is_trigger())
        .collect();
    let index = match triggers.as_slice() {
        [] => {
            return Err(ModelError::new(
                file,
                path,
                "expected exactly one trigger binding (a type ending in \"Trigger\"), found none",
            ));
        }
        [one] => *one,
        [_, second, ..] => {
            return Err(ModelError::new(
                file,
                format!("{path}[{second}].type"),
                format!(
                    "expected exactly one trigger binding, found {}",
                    triggers.len()
                ),
            ));
        }
    };
    let b = &bindings[index];
    let bpath = format!("{path}[{index}]");
    if b.direction != Direction::In {
        return Err(ModelError::new(
            file,
            format!("{bpath}.direction"),
            "expected \"in\" for a trigger binding",
        ));
    }
    let trigger = if b.is_type("httpTrigger") {
        Trigger::Http(parse_http_trigger(file, &bpath, b)?)
    } else if b.is_type("timerTrigger") {
        Trigger::Timer(TimerTrigger::parse(file, &bpath, b)?)
    } else {
        Trigger::Other(b.type_name.clone())
    };
    Ok((index, trigger))
}

fn parse_http_trigger(file: &str, path: &str, b: &Binding) -> Result<HttpTrigger> {
    let nested = json::Nested {
        map: &b.raw,
        file,
        path: path.to_string(),
    };
    let o = nested.view();
    let auth_level = match o.str("authLevel")? {
        None => AuthLevel::Function,
        Some(text) => text.parse().map_err(|e: String| o.error("authLevel", e))?,
    };
    let methods = match o.strings("methods")? {
        None => None,
        Some(list) if list.is_empty() => None,
        Some(list) => {
            let mut out: Vec<String> = Vec::with_capacity(list.len());
            for (i, m) in list.iter().enumerate() {
                let m = m.trim();
                if !valid_method(m) {
                    return Err(ModelError::new(
                        file,
                        format!("{}[{i}]", o.child_path("methods")),
                        format!("expected an HTTP method name such as \"get\", found \"{m}\""),
                    ));
                }
                let upper = m.to_ascii_uppercase();
                if !out.contains(&upper) {
                    out.push(upper);
                }
            }
            Some(out)
        }
    };
    let route = o.str("route")?.map(str::to_string);
    Ok(HttpTrigger {
        auth_level,
        methods,
        route,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<FunctionConfig> {
        FunctionConfig::parse("Hello", "Hello/function.json", v)
    }

    #[test]
    fn http_function() {
        let f = parse(json!({"bindings":[
            {"type":"httpTrigger","direction":"in","name":"req","methods":["get","Post"],"route":"x/{id:int}"},
            {"type":"http","direction":"out","name":"res"}]}))
        .unwrap();
        let h = f.http().unwrap();
        assert_eq!(h.auth_level, AuthLevel::Function);
        assert_eq!(
            h.methods.as_deref(),
            Some(&["GET".to_string(), "POST".to_string()][..])
        );
        assert!(f.is_pure_http());
    }

    #[test]
    fn trigger_rules() {
        let e = parse(json!({"bindings":[{"type":"http","direction":"out","name":"res"}]}))
            .unwrap_err();
        assert!(e.problem.contains("exactly one trigger"), "{e}");
        let e = parse(json!({"bindings":[{"type":"httpTrigger","name":"a"},{"type":"timerTrigger","name":"b"}]}))
            .unwrap_err();
        assert_eq!(e.path, "$.bindings[1].type");
        let e = parse(json!({"bindings":[]})).unwrap_err();
        assert_eq!(e.path, "$.bindings");
        let e = parse(json!({})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Hello/function.json: $.bindings: expected an array of bindings, found nothing"
        );
    }

    #[test]
    fn binding_names() {
        let e = parse(json!({"bindings":[{"type":"httpTrigger","name":"req"},{"type":"http","direction":"out","name":"REQ"}]}))
            .unwrap_err();
        assert_eq!(e.path, "$.bindings[1].name");
        let e = parse(json!({"bindings":[{"type":"httpTrigger","name":"$return"}]})).unwrap_err();
        assert_eq!(e.path, "$.bindings[0].direction");
    }

    #[test]
    fn auth_level_errors_name_the_path() {
        let e =
            parse(json!({"bindings":[{"type":"httpTrigger","name":"req","authLevel":"public"}]}))
                .unwrap_err();
        assert_eq!(e.path, "$.bindings[0].authLevel");
        assert!(e.problem.contains("anonymous"), "{e}");
    }

    #[test]
    fn timer_function() {
        let f = parse(json!({"bindings":[
            {"type":"TimerTrigger","direction":"in","name":"t","Schedule":"%Sched%","runOnStartup":"true"}]}))
        .unwrap();
        let t = f.timer().unwrap();
        assert_eq!(t.schedule, "%Sched%");
        assert!(t.run_on_startup && t.use_monitor);
        assert!(f.http().is_none());
        assert_eq!(f.trigger_path(), "$.bindings[0]");
        let r = t
            .resolve("Hello/function.json", &f.trigger_path(), |n| {
                (n == "Sched").then(|| "*/10 * * * * *".to_string())
            })
            .unwrap();
        assert!(
            !r.use_monitor,
            "more than once a minute turns useMonitor off"
        );
        let e = t
            .resolve("Hello/function.json", &f.trigger_path(), |_| None)
            .unwrap_err();
        assert_eq!(e.path, "$.bindings[0].schedule");
        assert!(e.problem.contains("\"Sched\""), "{e}");

        let e = parse(json!({"bindings":[{"type":"timerTrigger","name":"t"}]})).unwrap_err();
        assert_eq!(e.path, "$.bindings[0].schedule");
        assert!(e.problem.starts_with("expected a schedule"), "{e}");
        let e = parse(json!({"bindings":[{"type":"timerTrigger","name":"t","schedule":"0 * * * * *","useMonitor":"maybe"}]}))
            .unwrap_err();
        assert_eq!(e.path, "$.bindings[0].useMonitor");
    }

    #[test]
    fn names() {
        assert!(validate_function_name("Hello-World_1").is_ok());
        assert!(validate_function_name("1abc").is_err());
        assert!(validate_function_name("host").is_err());
        assert!(validate_function_name("a.b").is_err());
    }
}
