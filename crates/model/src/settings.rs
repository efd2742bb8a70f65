//! App settings: the environment a function app sees, and the host behaviour it selects.

use std::collections::BTreeMap;

/// Prefix of settings that override host.json keys (`AzureFunctionsJobHost__extensions__http__routePrefix`).
pub const HOST_JSON_OVERRIDE_PREFIX: &str = "AzureFunctionsJobHost";

/// App settings by name. Lookups are case-insensitive, like .NET configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSettings {
    values: BTreeMap<String, String>,
}

impl AppSettings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings from (name, value) pairs, later ones winning.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let mut s = Self::new();
        for (k, v) in pairs {
            s.set(k, v);
        }
        s
    }

    /// Adds a setting unless one with that name (any case) is already present; returns whether it was added.
    pub fn insert_if_absent(&mut self, name: &str, value: &str) -> bool {
        if self.get(name).is_some() {
            return false;
        }
        self.values.insert(name.to_string(), value.to_string());
        true
    }

    /// Sets a setting, replacing any with the same name in any case.
    pub fn set(&mut self, name: &str, value: &str) {
        if let Some(existing) = self.key_of(name) {
            self.values.remove(&existing);
        }
        self.values.insert(name.to_string(), value.to_string());
    }

    fn key_of(&self, name: &str) -> Option<String> {
        if self.values.contains_key(name) {
            return Some(name.to_string());
        }
        self.values
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.values.get(name) {
            return Some(v);
        }
        self.values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether `AzureWebJobs.<name>.Disabled` (or `AzureWebJobs_<name>_Disabled`) is true or 1.
    pub fn is_function_disabled(&self, function: &str) -> bool {
        [
            format!("AzureWebJobs.{function}.Disabled"),
            format!("AzureWebJobs_{function}_Disabled"),
        ]
        .iter()
        .filter_map(|k| self.get(k))
        .any(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// Overrides of host.json keys: settings named `AzureFunctionsJobHost__a__b` (or with `:`),
    /// as (path segments, value).
    pub fn host_json_overrides(&self) -> Vec<(Vec<&str>, &str)> {
        let mut out = Vec::new();
        for (k, v) in &self.values {
            let Some(head) = k.get(..HOST_JSON_OVERRIDE_PREFIX.len()) else {
                continue;
            };
            if !head.eq_ignore_ascii_case(HOST_JSON_OVERRIDE_PREFIX) {
                continue;
            }
            let rest = &k[HOST_JSON_OVERRIDE_PREFIX.len()..];
            let rest = match rest.strip_prefix("__").or_else(|| rest.strip_prefix(':')) {
                Some(r) => r,
                None => continue,
            };
            let segments: Vec<&str> = rest.split("__").flat_map(|s| s.split(':')).collect();
            out.push((segments, v.as_str()));
        }
        out
    }

    /// `%NAME%` expansion used in binding expressions and handler arguments: each `%X%` is
    /// replaced by setting `X`; unresolved tokens are removed (as the host does for arguments).
    pub fn expand_percent(&self, text: &str) -> String {
        self.expand(text, false)
    }

    /// `Environment.ExpandEnvironmentVariables`: like [`expand_percent`](Self::expand_percent),
    /// but unresolved `%X%` tokens are kept as written.
    pub fn expand_percent_keep(&self, text: &str) -> String {
        self.expand(text, true)
    }

    /// [`resolve_names`] with these settings: every `%X%` must name a setting.
    pub fn resolve_names(&self, text: &str) -> Result<String, String> {
        resolve_names(text, |name| self.get(name).map(str::to_string))
    }

    fn expand(&self, text: &str, keep_unresolved: bool) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            match after.find('%') {
                Some(end) if end > 0 && !after[..end].contains(char::is_whitespace) => {
                    match self.get(&after[..end]) {
                        Some(v) => out.push_str(v),
                        None if keep_unresolved => {
                            out.push('%');
                            rest = after;
                            continue;
                        }
                        None => {}
                    }
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push('%');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// `INameResolver.ResolveWholeString`, as the Azure host resolves binding values such as a
/// timer's `schedule`: every `%name%` is replaced by the setting `name` (looked up with
/// `lookup`); a name that is not set, or a `%` with no closing `%`, is an error.
pub fn resolve_names(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('%') else {
            let position = text[..text.len() - rest.len() + start].chars().count();
            return Err(format!(
                "expected a closing '%' for the '%' at position {position}, found none"
            ));
        };
        let name = &after[..end];
        if name.is_empty() {
            return Err(
                "expected an app setting name between '%' and '%', found \"%%\"".to_string(),
            );
        }
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(format!(
                    "expected the app setting \"{name}\" (named by %{name}%) to be set, found nothing"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> AppSettings {
        AppSettings::from_pairs(pairs)
    }

    #[test]
    fn disabled_forms() {
        let s = settings(&[
            ("AzureWebJobs.A.Disabled", "true"),
            ("AzureWebJobs_B_Disabled", "1"),
            ("AzureWebJobs.C.Disabled", "true "),
        ]);
        assert!(s.is_function_disabled("A"));
        assert!(s.is_function_disabled("a"));
        assert!(s.is_function_disabled("B"));
        assert!(!s.is_function_disabled("C"));
        assert!(!s.is_function_disabled("D"));
    }

    #[test]
    fn overrides() {
        let s = settings(&[
            ("AzureFunctionsJobHost__extensions__http__routePrefix", "x"),
            ("azurefunctionsjobhost:functionTimeout", "00:00:05"),
            ("Other", "1"),
        ]);
        let mut o = s.host_json_overrides();
        o.sort();
        assert_eq!(
            o,
            vec![
                (vec!["extensions", "http", "routePrefix"], "x"),
                (vec!["functionTimeout"], "00:00:05")
            ]
        );
    }

    #[test]
    fn insert_keeps_first() {
        let mut s = settings(&[("A", "env")]);
        assert!(!s.insert_if_absent("a", "file"));
        assert_eq!(s.get("A"), Some("env"));
    }

    #[test]
    fn percent_expansion() {
        let s = settings(&[("PORT", "81")]);
        assert_eq!(
            s.expand_percent("--port=%PORT% %MISSING%x 50%"),
            "--port=81 x 50%"
        );
    }

    #[test]
    fn names_resolve_like_the_webjobs_name_resolver() {
        let s = settings(&[("Schedule", "0 */5 * * * *"), ("Min", "5")]);
        assert_eq!(s.resolve_names("%schedule%").unwrap(), "0 */5 * * * *");
        assert_eq!(
            s.resolve_names("0 */%Min% * * * *").unwrap(),
            "0 */5 * * * *"
        );
        assert_eq!(s.resolve_names("no names").unwrap(), "no names");
        assert_eq!(s.resolve_names("%Min%%Min%").unwrap(), "55");
        let e = s.resolve_names("%Missing%").unwrap_err();
        assert!(e.contains("\"Missing\""), "{e}");
        let e = s.resolve_names("50% off").unwrap_err();
        assert!(e.contains("position 2"), "{e}");
        assert!(s.resolve_names("%%").is_err());
    }
}
