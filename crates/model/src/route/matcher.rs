//! Matching a decoded request path against a parsed template (ASP.NET Core's `RoutePatternMatcher`).

use super::template::{ParamKind, Part, RouteTemplate};
use super::{eq_ignore_case, fold};

/// Route values: every template parameter with its value (`None` for an unmatched optional
/// parameter or an empty catch-all), in template order.
pub type RouteValues = Vec<(String, Option<String>)>;

/// Splits a decoded path (`/a/b/`) into segment byte ranges; one trailing `/` is ignored.
pub fn tokenize(path: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let start = usize::from(path.starts_with('/'));
    let body = &path[start..];
    if body.is_empty() {
        return out;
    }
    let end = start + body.len() - usize::from(body.ends_with('/'));
    let mut seg_start = start;
    for (i, b) in path.as_bytes()[start..end].iter().enumerate() {
        if *b == b'/' {
            out.push((seg_start, start + i));
            seg_start = start + i + 1;
        }
    }
    out.push((seg_start, end));
    out
}

#[derive(Clone)]
enum Slot {
    Absent,
    Value(Option<String>),
}

impl RouteTemplate {
    /// Matches `path` (already split by [`tokenize`]); returns the route values when the
    /// template and all inline constraints match.
    pub fn match_path(&self, path: &str, segs: &[(usize, usize)]) -> Option<RouteValues> {
        let tsegs = &self.segments;
        // Pass 1: reject quickly.
        for (i, &(a, b)) in segs.iter().enumerate() {
            let seg = &path[a..b];
            if seg.is_empty() {
                return None;
            }
            let parts = tsegs.get(i)?;
            if let [Part::Param(p)] = parts.as_slice() {
                if p.kind == ParamKind::CatchAll {
                    break;
                }
            } else if let [Part::Literal(l)] = parts.as_slice()
                && !eq_ignore_case(l, seg)
            {
                return None;
            }
        }
        for parts in tsegs.iter().skip(segs.len()) {
            match parts.as_slice() {
                [Part::Param(p)] if p.kind == ParamKind::CatchAll => break,
                [Part::Param(p)] if p.kind == ParamKind::Optional || p.default.is_some() => {}
                _ => return None,
            }
        }

        // Pass 2: capture.
        let params: Vec<&super::template::Param> = self.params().collect();
        let mut slots: Vec<Slot> = vec![Slot::Absent; params.len()];
        let index_of = |name: &str| params.iter().position(|p| p.name == name);
        for (i, parts) in tsegs.iter().enumerate() {
            match (parts.as_slice(), segs.get(i)) {
                ([Part::Literal(_)], _) => {}
                ([Part::Param(p)], seg) if p.kind == ParamKind::CatchAll => {
                    let rest = seg.map(|&(a, _)| &path[a..]).filter(|r| !r.is_empty());
                    let rest = rest.map(str::to_string).or_else(|| p.default.clone());
                    slots[index_of(&p.name)?] = Slot::Value(rest);
                    break;
                }
                ([Part::Param(p)], Some(&(a, b))) => {
                    slots[index_of(&p.name)?] = Slot::Value(Some(path[a..b].to_string()))
                }
                ([Part::Param(_)], None) => {}
                (complex, Some(&(a, b))) => {
                    for (name, value) in match_complex(complex, &path[a..b])? {
                        slots[index_of(&name)?] = Slot::Value(Some(value));
                    }
                }
                (_, None) => return None,
            }
        }
        for (i, p) in params.iter().enumerate() {
            if matches!(slots[i], Slot::Absent)
                && let Some(d) = &p.default
            {
                slots[i] = Slot::Value(Some(d.clone()));
            }
        }
        for (i, p) in params.iter().enumerate() {
            let value = match &slots[i] {
                Slot::Absent if p.kind == ParamKind::Optional => continue,
                Slot::Absent => None,
                Slot::Value(v) => v.as_deref(),
            };
            if !p.constraints.iter().all(|c| c.check(value)) {
                return None;
            }
        }
        Some(
            params
                .iter()
                .zip(slots)
                .map(|(p, s)| {
                    (
                        p.name.clone(),
                        if let Slot::Value(v) = s { v } else { None },
                    )
                })
                .collect(),
        )
    }
}

/// Matches a segment made of several parts, right to left (left parameters are greedy).
fn match_complex(parts: &[Part], segment: &str) -> Option<Vec<(String, String)>> {
    let full = match_complex_core(parts, segment);
    if full.is_some() {
        return full;
    }
    // `{name}.{ext?}`: retry without the optional tail.
    if let [head @ .., Part::Separator(_), Part::Param(last)] = parts
        && last.kind == ParamKind::Optional
        && !segment.ends_with('.')
    {
        return match_complex_core(head, segment);
    }
    None
}

fn match_complex_core(parts: &[Part], segment: &str) -> Option<Vec<(String, String)>> {
    let chars: Vec<char> = segment.chars().collect();
    let folded: Vec<char> = chars.iter().map(|c| fold(*c)).collect();
    let mut last_index = chars.len();
    let mut pending: Option<&str> = None;
    let mut values = Vec::new();
    let count = parts.len();
    for (idx, part) in parts.iter().enumerate().rev() {
        match part {
            Part::Param(p) => {
                pending = Some(&p.name);
                if idx == 0 {
                    if last_index == 0 {
                        return None;
                    }
                    values.push((p.name.clone(), chars[..last_index].iter().collect()));
                    pending = None;
                    last_index = 0;
                }
            }
            Part::Literal(lit) | Part::Separator(lit) => {
                let needle: Vec<char> = lit.chars().map(fold).collect();
                let window = if pending.is_some() {
                    last_index.checked_sub(1)?
                } else {
                    last_index
                };
                if window == 0 || needle.len() > window {
                    return None;
                }
                let found = (0..=window - needle.len())
                    .rev()
                    .find(|&s| folded[s..s + needle.len()] == needle[..])?;
                if idx + 1 == count && found + needle.len() != chars.len() {
                    return None;
                }
                if let Some(name) = pending.take() {
                    let start = found + needle.len();
                    if start >= last_index {
                        return None;
                    }
                    values.push((name.to_string(), chars[start..last_index].iter().collect()));
                }
                last_index = found;
            }
        }
    }
    if last_index == 0 || matches!(parts.first(), Some(Part::Param(_))) {
        Some(values)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::template::parse;
    use super::*;

    fn m(t: &str, path: &str) -> Option<Vec<(String, Option<String>)>> {
        let tmpl = parse(t).unwrap();
        tmpl.match_path(path, &tokenize(path))
    }

    fn v(pairs: &[(&str, Option<&str>)]) -> Option<RouteValues> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        )
    }

    #[test]
    fn tokenizing() {
        assert_eq!(tokenize("/"), vec![]);
        assert_eq!(tokenize(""), vec![]);
        assert_eq!(tokenize("/a/b/"), vec![(1, 2), (3, 4)]);
        assert_eq!(tokenize("/a//b"), vec![(1, 2), (3, 3), (4, 5)]);
        assert_eq!(tokenize("/a/b//"), vec![(1, 2), (3, 4), (5, 5)]);
        assert_eq!(tokenize("//"), vec![(1, 1)]);
    }

    #[test]
    fn research_table() {
        assert_eq!(m("api/products", "/API/Products/"), v(&[]));
        assert_eq!(m("api/products", "/api/products//"), None);
        assert_eq!(m("api/a/{b?}", "/api/a"), v(&[("b", None)]));
        assert_eq!(m("api/a/{b?}", "/api/a/"), v(&[("b", None)]));
        assert_eq!(m("api/a/{b?}", "/api/a/x/"), v(&[("b", Some("x"))]));
        assert_eq!(m("api/a/{b?}", "/api/a//"), None);
        assert_eq!(m("api/a/{b?}", "/api/a/x/y"), None);
        assert_eq!(m("api/a/{b=5}", "/api/a"), v(&[("b", Some("5"))]));
        assert_eq!(m("api/{id}", "/api"), None);
        assert_eq!(m("api/{id}", "/api/"), None);
        assert_eq!(m("api/{id}", "/api/a%2Fb"), v(&[("id", Some("a%2Fb"))]));
        assert_eq!(m("api/x/{b?}/c", "/api/x/c"), None);
        assert_eq!(m("api/f/{*p}", "/api/f"), v(&[("p", None)]));
        assert_eq!(m("api/f/{*p}", "/api/f/"), v(&[("p", None)]));
        assert_eq!(m("api/f/{*p}", "/api/f/a/b/"), v(&[("p", Some("a/b/"))]));
        assert_eq!(m("api/f/{*p}", "/api/f/a//b"), v(&[("p", Some("a//b"))]));
        assert_eq!(m("api/f/{*p}", "/api/f//a"), None);
        assert_eq!(
            m("api/{a}-{b}", "/api/x-y-z"),
            v(&[("a", Some("x-y")), ("b", Some("z"))])
        );
        assert_eq!(m("api/{a}-{b}", "/api/-z"), None);
        assert_eq!(m("api/{a}-{b}", "/api/xy"), None);
        assert_eq!(
            m("api/{f}.{e?}", "/api/r.tar.gz"),
            v(&[("f", Some("r.tar")), ("e", Some("gz"))])
        );
        assert_eq!(
            m("api/{f}.{e?}", "/api/r"),
            v(&[("f", Some("r")), ("e", None)])
        );
        assert_eq!(m("api/{f}.{e?}", "/api/r."), None);
        assert_eq!(
            m("api/{f}.{e?}", "/api/.gz"),
            v(&[("f", Some(".gz")), ("e", None)])
        );
        assert_eq!(m("api/pre-{id}", "/api/PRE-42"), v(&[("id", Some("42"))]));
        assert_eq!(m("api/pre-{id}", "/api/xpre-42"), None);
        assert_eq!(m("api/{id}-suf", "/api/42-suf"), v(&[("id", Some("42"))]));
        assert_eq!(m("", "/"), v(&[]));
    }

    #[test]
    fn constraints_apply() {
        assert_eq!(m("api/p/{id:int}", "/api/p/12"), v(&[("id", Some("12"))]));
        assert_eq!(m("api/p/{id:int}", "/api/p/x"), None);
        assert_eq!(m("api/p/{id:int?}", "/api/p"), v(&[("id", None)]));
        assert_eq!(
            m("api/p/{id:int=abc}", "/api/p"),
            None,
            "defaults are checked too"
        );
        assert_eq!(
            m("api/f/{*p:int}", "/api/f"),
            None,
            "empty catch-all is null"
        );
        assert_eq!(
            m(
                "node/products/{category:alpha?}/{id:guid?}",
                "/node/products/electronics"
            ),
            v(&[("category", Some("electronics")), ("id", None)])
        );
    }
}
