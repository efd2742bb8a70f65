//! The ordered HTTP route table of an app, with the host's route validation.

use super::matcher::{RouteValues, tokenize};
use super::template::{self, RouteTemplate};
use super::{cmp_ignore_case, eq_ignore_case};
use crate::function_json::HttpTrigger;

/// One HTTP function's route.
#[derive(Debug, Clone)]
pub struct RouteEntry<T> {
    pub function: String,
    /// The route as configured (the function name when none is set).
    pub route: String,
    pub template: RouteTemplate,
    pub methods: Option<Vec<String>>,
    pub value: T,
}

/// Routes tried in function-name order (case-insensitive), first match wins — the Azure
/// host's behaviour, which is not ASP.NET Core's precedence.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    entries: Vec<RouteEntry<T>>,
}

/// The route of a function: its `route`, or its name when that is empty.
pub fn effective_route<'a>(function: &'a str, trigger: &'a HttpTrigger) -> &'a str {
    match trigger.route.as_deref() {
        Some(r) if !r.trim().is_empty() => r,
        _ => function,
    }
}

/// The full template text: `prefix/route` (the route alone when the prefix is empty).
pub fn full_template(prefix: &str, route: &str) -> String {
    if prefix.is_empty() {
        route.to_string()
    } else {
        format!("{prefix}/{route}")
    }
}

fn methods_overlap(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => a.iter().any(|m| b.contains(m)),
        _ => true,
    }
}

impl<T> RouteTable<T> {
    /// Builds the table. Functions whose route is invalid, reserved or conflicting are left
    /// out and returned as (function name, message).
    pub fn build<'a>(
        prefix: &str,
        functions: impl IntoIterator<Item = (&'a str, &'a HttpTrigger, T)>,
    ) -> (RouteTable<T>, Vec<(String, String)>) {
        let mut items: Vec<(&'a str, &'a HttpTrigger, T)> = functions.into_iter().collect();
        items.sort_by(|a, b| cmp_ignore_case(a.0, b.0));
        let mut entries: Vec<RouteEntry<T>> = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (name, trigger, value) in items {
            let route = effective_route(name, trigger);
            let lowered = route.trim_matches('/').to_lowercase();
            if lowered.starts_with("admin") || lowered.starts_with("runtime") {
                errors.push((
                    name.to_string(),
                    format!(
                        "The specified route conflicts with one or more built in routes (route \"{route}\": \
                         routes may not start with \"admin\" or \"runtime\")."
                    ),
                ));
                continue;
            }
            if let Some(other) = entries.iter().find(|e| {
                eq_ignore_case(e.route.trim_matches('/'), route.trim_matches('/'))
                    && methods_overlap(&e.methods, &trigger.methods)
            }) {
                errors.push((
                    name.to_string(),
                    format!(
                        "The route specified conflicts with the route defined by function '{}'.",
                        other.function
                    ),
                ));
                continue;
            }
            let text = full_template(prefix, route);
            match template::parse(&text) {
                Ok(template) => entries.push(RouteEntry {
                    function: name.to_string(),
                    route: route.to_string(),
                    template,
                    methods: trigger.methods.clone(),
                    value,
                }),
                Err(e) => errors.push((
                    name.to_string(),
                    format!("An error occurred while creating the route with name '{name}' and template '{text}': {e}"),
                )),
            }
        }
        (RouteTable { entries }, errors)
    }

    /// Finds the first route matching `method` and the decoded `path`.
    pub fn find(&self, method: &str, path: &str) -> Option<(&RouteEntry<T>, RouteValues)> {
        let segs = tokenize(path);
        self.entries.iter().find_map(|e| {
            if let Some(methods) = &e.methods
                && !methods.iter().any(|m| m.eq_ignore_ascii_case(method))
            {
                return None;
            }
            e.template.match_path(path, &segs).map(|values| (e, values))
        })
    }

    pub fn entries(&self) -> &[RouteEntry<T>] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AuthLevel;

    fn trig(route: Option<&str>, methods: Option<&[&str]>) -> HttpTrigger {
        HttpTrigger {
            auth_level: AuthLevel::Anonymous,
            route: route.map(str::to_string),
            methods: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn name_order_wins_over_precedence() {
        let details = trig(Some("Products/{id}"), None);
        let list = trig(Some("Products/List"), None);
        let (t, errors) = RouteTable::build("api", [("List", &list, 1), ("Details", &details, 2)]);
        assert!(errors.is_empty());
        let (e, values) = t.find("GET", "/api/products/list").unwrap();
        assert_eq!(e.function, "Details");
        assert_eq!(values, vec![("id".to_string(), Some("list".to_string()))]);
    }

    #[test]
    fn methods_filter_and_share_templates() {
        let get = trig(Some("items"), Some(&["GET"]));
        let post = trig(Some("items"), Some(&["POST"]));
        let (t, errors) = RouteTable::build("api", [("A", &get, ()), ("B", &post, ())]);
        assert!(errors.is_empty());
        assert_eq!(t.find("get", "/api/items").unwrap().0.function, "A");
        assert_eq!(t.find("POST", "/api/items").unwrap().0.function, "B");
        assert!(t.find("DELETE", "/api/items").is_none());
    }

    #[test]
    fn validation() {
        let admin = trig(Some("/Administrators/{id}"), None);
        let a = trig(Some("x"), Some(&["GET", "POST"]));
        let b = trig(Some("/X/"), Some(&["POST"]));
        let bad = trig(Some("y/{id:nope}"), None);
        let default = trig(None, None);
        let (t, errors) = RouteTable::build(
            "",
            [
                ("Adm", &admin, ()),
                ("A", &a, ()),
                ("B", &b, ()),
                ("Bad", &bad, ()),
                ("Plain", &default, ()),
            ],
        );
        let msgs: Vec<_> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        assert_eq!(errors.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].starts_with("Adm: The specified route conflicts"),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.starts_with(
            "B: The route specified conflicts with the route defined by function 'A'"
        )));
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("Bad: An error occurred while creating the route"))
        );
        assert_eq!(
            t.find("GET", "/plain").unwrap().0.function,
            "Plain",
            "no prefix, default route, any case"
        );
    }
}
