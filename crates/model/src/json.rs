//! Case-insensitive, path-tracking reading of JSON documents (the way the Azure host reads them).

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

/// Parses a JSON document, accepting a leading UTF-8 byte-order mark.
pub fn parse_document(file: &str, text: &str) -> Result<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| {
        ModelError::new(
            file,
            "$",
            format!(
                "expected a JSON document; line {} column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e)
            ),
        )
    })
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Short description of a JSON value's kind, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object being read, with the file and path it came from.
///
/// Key lookup is case-insensitive, like .NET configuration and Newtonsoft's `JObject`
/// lookups the Azure host uses.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub file: &'a str,
    path: &'a str,
}

impl<'a> Obj<'a> {
    pub fn root(file: &'a str, value: &'a Value) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                file,
                path: "$",
            }),
            other => Err(ModelError::new(
                file,
                "$",
                format!("expected an object, found {}", kind(other)),
            )),
        }
    }

    /// Path of a member of this object.
    pub fn child_path(&self, key: &str) -> String {
        format!("{}.{}", self.path, key)
    }

    pub fn path(&self) -> &str {
        self.path
    }

    pub fn error(&self, key: &str, problem: impl Into<String>) -> ModelError {
        ModelError::new(self.file, self.child_path(key), problem)
    }

    /// The member named `key` (any case), with its exact spelling in the document.
    pub fn get(&self, key: &str) -> Option<(&'a str, &'a Value)> {
        if let Some((k, v)) = self.map.get_key_value(key) {
            return Some((k.as_str(), v));
        }
        self.map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// A member that must be a string when present (`null` counts as absent).
    pub fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.as_str())),
            Some((k, other)) => {
                Err(self.error(k, format!("expected a string, found {}", kind(other))))
            }
        }
    }

    /// A string member that counts only when it is not empty.
    pub fn non_empty(&self, key: &str) -> Result<Option<String>> {
        Ok(self.str(key)?.filter(|s| !s.is_empty()).map(str::to_string))
    }

    /// A member read as text the way .NET configuration does: strings, numbers and booleans.
    pub fn scalar(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.clone())),
            Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
            Some((_, Value::Bool(b))) => Ok(Some(b.to_string())),
            Some((k, other)) => {
                Err(self.error(k, format!("expected a string, found {}", kind(other))))
            }
        }
    }

    /// A boolean member; `"true"`/`"false"` strings are accepted (configuration values are text).
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some((k, Value::String(s))) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(self.error(k, format!("expected true or false, found \"{s}\""))),
            },
            Some((k, other)) => {
                Err(self.error(k, format!("expected true or false, found {}", kind(other))))
            }
        }
    }

    /// An integer member; numeric strings are accepted.
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((k, Value::Number(n))) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.error(k, format!("expected an integer, found {n}"))),
            Some((k, Value::String(s))) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.error(k, format!("expected an integer, found \"{s}\""))),
            Some((k, other)) => {
                Err(self.error(k, format!("expected an integer, found {}", kind(other))))
            }
        }
    }

    /// An object member, as an owned path so that nested errors can name it.
    pub fn obj(&self, key: &str) -> Result<Option<Nested<'a>>> {
        match self.get(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((k, Value::Object(map))) => Ok(Some(Nested {
                map,
                file: self.file,
                path: self.child_path(k),
            })),
            Some((k, other)) => {
                Err(self.error(k, format!("expected an object, found {}", kind(other))))
            }
        }
    }

    /// An array member.
    pub fn array(&self, key: &str) -> Result<Option<(String, &'a Vec<Value>)>> {
        match self.get(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((k, Value::Array(items))) => Ok(Some((self.child_path(k), items))),
            Some((k, other)) => {
                Err(self.error(k, format!("expected an array, found {}", kind(other))))
            }
        }
    }

    /// An array of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        let Some((path, items)) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(ModelError::new(
                    self.file,
                    format!("{path}[{i}]"),
                    format!("expected a string, found {}", kind(other)),
                )),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

/// An object found below the root, owning its path.
pub struct Nested<'a> {
    pub map: &'a Map<String, Value>,
    pub file: &'a str,
    pub path: String,
}

impl<'a> Nested<'a> {
    pub fn view(&self) -> Obj<'_> {
        Obj {
            map: self.map,
            file: self.file,
            path: &self.path,
        }
    }
}

/// Views an array element as an object.
pub fn element<'a>(file: &'a str, path: String, value: &'a Value) -> Result<Nested<'a>> {
    match value {
        Value::Object(map) => Ok(Nested { map, file, path }),
        other => Err(ModelError::new(
            file,
            path,
            format!("expected an object, found {}", kind(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_is_accepted() {
        let v = parse_document("host.json", "\u{feff}{\"version\":\"2.0\"}").unwrap();
        assert_eq!(v["version"], "2.0");
    }

    #[test]
    fn syntax_errors_name_file_and_position() {
        let e = parse_document("host.json", "{\n \"version\": }").unwrap_err();
        assert_eq!(e.file, "host.json");
        assert_eq!(e.path, "$");
        assert!(e.problem.contains("line 2"), "{}", e.problem);
    }

    #[test]
    fn lookup_is_case_insensitive_and_typed() {
        let v: Value = serde_json::json!({"RoutePrefix": "x", "n": "12", "b": "True", "o": 3});
        let o = Obj::root("f", &v).unwrap();
        assert_eq!(o.str("routePrefix").unwrap(), Some("x"));
        assert_eq!(o.int("N").unwrap(), Some(12));
        assert_eq!(o.bool("b").unwrap(), Some(true));
        let e = o.str("o").unwrap_err();
        assert_eq!(e.to_string(), "f: $.o: expected a string, found a number");
    }
}
