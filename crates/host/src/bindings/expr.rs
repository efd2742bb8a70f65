//! Binding expressions in binding properties (`out/{queueTrigger}`, `{rand-guid}`,
//! `{DateTime}`, `{sys.utcnow}`): parsed once when the function loads, bound per invocation
//! against its binding data. `%Setting%` names are resolved before parsing.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{name}` or `{a.b.c}`, with an optional `:format`.
    Name {
        path: Vec<String>,
        format: Option<String>,
    },
}

/// A property value with `{...}` expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// The text as written (after `%Setting%` resolution), for messages.
    pub source: String,
}

/// What a bound template may use besides the binding data.
#[derive(Debug, Clone, Copy)]
pub struct BindContext<'a> {
    pub now: DateTime<Utc>,
    /// The function's name (`{sys.methodname}`).
    pub method: &'a str,
}

impl Template {
    /// Parses `text`; `{{` and `}}` stand for literal braces.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let end = rest.find('}').ok_or_else(|| {
                        format!("\"{text}\": expected a closing '}}' for the '{{' at position {i}")
                    })?;
                    let inner = &rest[..end];
                    for _ in 0..inner.chars().count() + 1 {
                        chars.next();
                    }
                    let (expr, format) = match inner.split_once(':') {
                        Some((e, f)) => (e.trim(), Some(f.to_string())),
                        None => (inner.trim(), None),
                    };
                    let path: Vec<String> = expr.split('.').map(str::to_string).collect();
                    let valid = path.iter().all(|p| {
                        !p.is_empty()
                            && p.chars()
                                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$')
                    });
                    if !valid {
                        return Err(format!(
                            "\"{text}\": expected a binding expression such as {{name}} or {{data.id}}, found {{{inner}}}"
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Name { path, format });
                }
                '}' => {
                    return Err(format!(
                        "\"{text}\": found a '}}' at position {i} without an opening '{{' (write '}}}}' for a literal brace)"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            parts,
            source: text.to_string(),
        })
    }

    /// The text when it has no expressions.
    pub fn constant(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// The template with every expression replaced from `data` (names match
    /// case-insensitively; dotted names walk into JSON objects).
    pub fn bind(&self, data: &Map<String, Value>, cx: BindContext<'_>) -> Result<String, String> {
        if let Some(c) = self.constant() {
            return Ok(c.to_string());
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Name { path, format } => {
                    out.push_str(&resolve(path, format.as_deref(), data, cx)?);
                }
            }
        }
        Ok(out)
    }
}

fn get_ci<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn resolve(
    path: &[String],
    format: Option<&str>,
    data: &Map<String, Value>,
    cx: BindContext<'_>,
) -> Result<String, String> {
    let first = path[0].as_str();
    if path.len() == 1 && data.keys().all(|k| !k.eq_ignore_ascii_case(first)) {
        if first.eq_ignore_ascii_case("rand-guid") {
            return guid(format);
        }
        if first.eq_ignore_ascii_case("DateTime") {
            return Ok(date_time(cx.now, format.unwrap_or("yyyy-MM-ddTHH-mm-ssZ")));
        }
    }
    if path.len() == 2 && first.eq_ignore_ascii_case("sys") {
        let field = path[1].to_ascii_lowercase();
        match field.as_str() {
            "randguid" => return guid(format),
            "utcnow" => {
                return Ok(date_time(cx.now, format.unwrap_or("yyyy-MM-ddTHH-mm-ssZ")));
            }
            "methodname" => return Ok(cx.method.to_string()),
            _ => {}
        }
    }
    let missing = || format!("No value for named parameter '{}'.", path.join("."));
    let mut value = get_ci(data, first).ok_or_else(missing)?;
    for segment in &path[1..] {
        value = match value {
            Value::Object(o) => get_ci(o, segment).ok_or_else(missing)?,
            _ => return Err(missing()),
        };
    }
    // Objects and arrays bind as nothing, as in the SDK.
    Ok(match value {
        Value::String(s) => s.clone(),
        Value::Null | Value::Object(_) | Value::Array(_) => String::new(),
        other => other.to_string(),
    })
}

/// A new GUID in one of .NET's formats: `D` (default), `N`, `B`, `P`.
fn guid(format: Option<&str>) -> Result<String, String> {
    let id = uuid::Uuid::new_v4();
    Ok(match format.map(str::trim) {
        None | Some("") | Some("D") | Some("d") => id.hyphenated().to_string(),
        Some("N") | Some("n") => id.simple().to_string(),
        Some("B") | Some("b") => id.braced().to_string(),
        Some("P") | Some("p") => format!("({})", id.hyphenated()),
        Some(other) => {
            return Err(format!(
                "{{rand-guid:{other}}}: expected one of the GUID formats D, N, B or P"
            ));
        }
    })
}

/// Formats `t` with a .NET custom date format (the common specifiers; other letters are
/// copied as written).
fn date_time(t: DateTime<Utc>, format: &str) -> String {
    const SPECIFIERS: &[(&str, &str)] = &[
        ("yyyy", "%Y"),
        ("K", "Z"),
        ("fffffff", "%7f"),
        ("ffffff", "%6f"),
        ("fff", "%3f"),
        ("MM", "%m"),
        ("dd", "%d"),
        ("HH", "%H"),
        ("hh", "%I"),
        ("mm", "%M"),
        ("ss", "%S"),
        ("yy", "%y"),
        ("tt", "%p"),
    ];
    let mut pattern = String::new();
    let mut rest = format;
    'outer: while !rest.is_empty() {
        for (net, chrono) in SPECIFIERS {
            if let Some(after) = rest.strip_prefix(net) {
                pattern.push_str(chrono);
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("rest is not empty");
        if c == '%' {
            pattern.push_str("%%");
        } else {
            pattern.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    t.format(&pattern).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx() -> BindContext<'static> {
        BindContext {
            now: DateTime::parse_from_rfc3339("2026-03-04T05:06:07.25Z")
                .unwrap()
                .with_timezone(&Utc),
            method: "Work",
        }
    }

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_resolve_case_insensitively_and_walk_objects() {
        let d = data(json!({"QueueTrigger": "m-1", "order": {"Id": 7, "region": "eu"}}));
        let t = Template::parse("out-{queueTrigger}-{order.id}-{ORDER.Region}").unwrap();
        assert_eq!(t.bind(&d, cx()).unwrap(), "out-m-1-7-eu");
        assert_eq!(t.constant(), None);
        let missing = Template::parse("q-{nope}").unwrap().bind(&d, cx());
        assert_eq!(missing.unwrap_err(), "No value for named parameter 'nope'.");
    }

    #[test]
    fn built_ins() {
        let d = Map::new();
        let b = |s: &str| Template::parse(s).unwrap().bind(&d, cx()).unwrap();
        assert_eq!(b("{DateTime}"), "2026-03-04T05-06-07Z");
        assert_eq!(b("logs/{DateTime:yyyy/MM/dd}"), "logs/2026/03/04");
        assert_eq!(b("{sys.utcnow}"), "2026-03-04T05-06-07Z");
        assert_eq!(b("{sys.MethodName}"), "Work");
        let g = b("{rand-guid}");
        assert_eq!(g.len(), 36);
        assert_ne!(g, b("{rand-guid}"));
        assert_eq!(b("{rand-guid:N}").len(), 32);
        assert_eq!(b("{sys.randguid}").len(), 36);
        // Binding data wins over a built-in of the same name.
        let d = data(json!({"DateTime": "mine"}));
        assert_eq!(
            Template::parse("{DateTime}")
                .unwrap()
                .bind(&d, cx())
                .unwrap(),
            "mine"
        );
    }

    #[test]
    fn literals_and_errors() {
        let t = Template::parse("jobs").unwrap();
        assert_eq!(t.constant(), Some("jobs"));
        let t = Template::parse("a{{b}}c").unwrap();
        assert_eq!(t.constant(), Some("a{b}c"));
        assert!(Template::parse("a{b").unwrap_err().contains("closing"));
        assert!(Template::parse("a}b").unwrap_err().contains("opening"));
        assert!(Template::parse("{a b}").is_err());
        assert!(
            Template::parse("{rand-guid:X}")
                .unwrap()
                .bind(&Map::new(), cx())
                .is_err()
        );
    }
}
