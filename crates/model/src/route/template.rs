//! Parsing ASP.NET Core route templates (`api/products/{id:int}/{*rest}`), following the
//! grammar and error messages of ASP.NET Core's `RoutePatternParser`.

use super::constraint::Constraint;

/// How a parameter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Standard,
    Optional,
    /// `{*rest}` or `{**rest}`: the rest of the path, slashes included.
    CatchAll,
}

/// A `{name:constraint=default}` part.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub constraints: Vec<Constraint>,
    pub default: Option<String>,
}

/// One part of a path segment.
#[derive(Debug, Clone)]
pub enum Part {
    Literal(String),
    /// The `.` before a trailing optional parameter (`{file}.{ext?}`).
    Separator(String),
    Param(Param),
}

/// A parsed route template.
#[derive(Debug, Clone)]
pub struct RouteTemplate {
    pub text: String,
    pub segments: Vec<Vec<Part>>,
}

impl RouteTemplate {
    /// Every parameter, in template order.
    pub fn params(&self) -> impl Iterator<Item = &Param> {
        self.segments.iter().flatten().filter_map(|p| match p {
            Part::Param(p) => Some(p),
            _ => None,
        })
    }
}

const INCOMPLETE: &str = "There is an incomplete parameter in the route template. Check that each '{' character has a matching '}' character.";

/// Parses a route template; errors carry ASP.NET Core's wording.
pub fn parse(template: &str) -> Result<RouteTemplate, String> {
    let mut t: &str = template;
    if let Some(rest) = t.strip_prefix("~/") {
        t = rest;
    } else if let Some(rest) = t.strip_prefix('/') {
        t = rest;
    } else if t.starts_with('~') {
        return Err(
            "The route template cannot start with a '~' character unless followed by a '/'.".into(),
        );
    }
    let chars: Vec<char> = t.chars().collect();
    let mut pos = 0;
    let mut segments = Vec::new();
    while pos < chars.len() {
        if chars[pos] == '/' {
            return Err("The route template separator character '/' cannot appear consecutively. It must be \
                 separated by either a parameter or a literal value."
                .into());
        }
        let mut parts = Vec::new();
        while pos < chars.len() {
            match chars[pos] {
                '/' => {
                    pos += 1;
                    break;
                }
                '{' if chars.get(pos + 1) != Some(&'{') => {
                    let (param, next) = parse_parameter(&chars, pos + 1)?;
                    parts.push(Part::Param(param));
                    pos = next;
                }
                _ => {
                    let (lit, next) = parse_literal(&chars, pos)?;
                    parts.push(Part::Literal(lit));
                    pos = next;
                }
            }
        }
        let raw: String = segment_text(&parts);
        validate_segment(&mut parts, &raw)?;
        segments.push(parts);
    }
    let tmpl = RouteTemplate {
        text: template.to_string(),
        segments,
    };
    validate_all(&tmpl)?;
    Ok(tmpl)
}

fn segment_text(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Literal(l) | Part::Separator(l) => l.clone(),
            Part::Param(p) => format!("{{{}}}", p.name),
        })
        .collect()
}

fn parse_literal(chars: &[char], mut pos: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    while pos < chars.len() {
        match chars[pos] {
            '/' => break,
            '{' if chars.get(pos + 1) == Some(&'{') => {
                out.push('{');
                pos += 2;
            }
            '{' => break,
            '}' if chars.get(pos + 1) == Some(&'}') => {
                out.push('}');
                pos += 2;
            }
            '}' => return Err(INCOMPLETE.into()),
            c => {
                out.push(c);
                pos += 1;
            }
        }
    }
    if out.contains('?') {
        return Err(format!(
            "The literal section '{out}' is invalid. Literal sections cannot contain the '?' character."
        ));
    }
    Ok((out, pos))
}

/// Parses the parameter starting after its `{`; returns it and the position after its `}`.
fn parse_parameter(chars: &[char], start: usize) -> Result<(Param, usize), String> {
    let mut pos = start;
    loop {
        match chars.get(pos) {
            None => return Err(INCOMPLETE.into()),
            Some('{') if chars.get(pos + 1) == Some(&'{') => pos += 2,
            Some('{') => {
                return Err(
                    "In a route parameter, '{' and '}' must be escaped with '{{' and '}}'.".into(),
                );
            }
            Some('}') if chars.get(pos + 1) == Some(&'}') => pos += 2,
            Some('}') => break,
            Some(_) => pos += 1,
        }
    }
    let inside: String = chars[start..pos].iter().collect();
    let decoded = inside.replace("}}", "}").replace("{{", "{");
    Ok((parse_parameter_text(&decoded)?, pos + 1))
}

fn parse_parameter_text(text: &str) -> Result<Param, String> {
    let mut body = text;
    let mut kind = ParamKind::Standard;
    if let Some(rest) = body.strip_prefix("**") {
        body = rest;
        kind = ParamKind::CatchAll;
    } else if let Some(rest) = body.strip_prefix('*') {
        body = rest;
        kind = ParamKind::CatchAll;
    }
    if let Some(rest) = body.strip_suffix('?') {
        if kind == ParamKind::CatchAll {
            return Err("A catch-all parameter cannot be marked optional.".into());
        }
        body = rest;
        kind = ParamKind::Optional;
    }
    let chars: Vec<char> = body.chars().collect();
    let name_end = chars
        .iter()
        .enumerate()
        .position(|(i, c)| i > 0 && (*c == ':' || *c == '='))
        .unwrap_or(chars.len());
    let name: String = chars[..name_end].iter().collect();
    let (constraint_texts, default) = parse_constraints(&chars, name_end);
    if kind == ParamKind::Optional && default.is_some() {
        return Err("An optional parameter cannot have default value.".into());
    }
    if name.is_empty() || name.contains(['/', '{', '}', '?', '*']) {
        return Err(format!(
            "The route parameter name '{name}' is invalid. Route parameter names must be non-empty and cannot \
             contain these characters: '{{', '}}', '/'. The '?' character marks a parameter as optional, and can \
             occur only at the end of the parameter. The '*' character marks a parameter as catch-all, and can \
             occur only at the start of the parameter."
        ));
    }
    let mut constraints = Vec::with_capacity(constraint_texts.len());
    for c in constraint_texts {
        constraints.push(
            Constraint::resolve(&c)
                .map_err(|e| format!("The constraint entry '{name}' - '{c}': {e}"))?,
        );
    }
    Ok(Param {
        name,
        kind,
        constraints,
        default,
    })
}

/// The constraint state machine of `RouteParameterParser`: returns the constraint texts and the default.
fn parse_constraints(chars: &[char], mut i: usize) -> (Vec<String>, Option<String>) {
    let mut constraints = Vec::new();
    let text = |a: usize, b: usize| -> String { chars[a..b].iter().collect() };
    while i < chars.len() {
        match chars[i] {
            '=' => return (constraints, Some(text(i + 1, chars.len()))),
            ':' => {
                let start = i + 1;
                let mut j = start;
                let mut end = chars.len();
                let mut next = chars.len();
                while j < chars.len() {
                    match chars[j] {
                        '(' => {
                            let mut k = j + 1;
                            let mut closed = None;
                            while k < chars.len() {
                                match chars[k] {
                                    ')' if k + 1 == chars.len()
                                        || chars[k + 1] == ':'
                                        || chars[k + 1] == '=' =>
                                    {
                                        closed = Some(k);
                                        break;
                                    }
                                    ':' | '=' => {
                                        match chars[k + 1..].iter().position(|c| *c == ')') {
                                            Some(off) => k = k + 1 + off,
                                            None => {
                                                closed = Some(k - 1);
                                                break;
                                            }
                                        }
                                    }
                                    _ => k += 1,
                                }
                            }
                            match closed {
                                Some(k) => {
                                    end = k + 1;
                                    next = k + 1;
                                }
                                None => {
                                    end = chars.len();
                                    next = chars.len();
                                }
                            }
                            break;
                        }
                        ':' | '=' => {
                            end = j;
                            next = j;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                let c = text(start, end.max(start));
                if !c.is_empty() {
                    constraints.push(c);
                }
                i = next;
            }
            _ => i += 1,
        }
    }
    (constraints, None)
}

fn validate_segment(parts: &mut [Part], raw: &str) -> Result<(), String> {
    let n = parts.len();
    for (i, part) in parts.iter().enumerate() {
        if let Part::Param(p) = part {
            if p.kind == ParamKind::CatchAll && n > 1 {
                return Err("A path segment that contains more than one section, such as a literal section or a \
                     parameter, cannot contain a catch-all parameter."
                    .into());
            }
            if i > 0 && matches!(parts[i - 1], Part::Param(_)) {
                return Err("A path segment cannot contain two consecutive parameters. They must be separated by a \
                     '/' or by a literal string."
                    .into());
            }
            if p.kind == ParamKind::Optional && n > 1 && i + 1 < n {
                let follower = segment_text(&parts[i + 1..i + 2]);
                return Err(format!(
                    "An optional parameter must be at the end of the segment. In the segment '{raw}', optional \
                     parameter '{}' is followed by '{follower}'.",
                    p.name
                ));
            }
        }
    }
    if n > 1
        && let Some(Part::Param(last)) = parts.last()
        && last.kind == ParamKind::Optional
    {
        let name = last.name.clone();
        match &parts[n - 2] {
            Part::Literal(l) if l == "." => {
                let l = l.clone();
                parts[n - 2] = Part::Separator(l);
            }
            Part::Literal(l) => {
                return Err(format!(
                    "In the segment '{raw}', the optional parameter '{name}' is preceded by an invalid segment \
                     '{l}'. Only a period (.) can precede an optional parameter."
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn validate_all(t: &RouteTemplate) -> Result<(), String> {
    let count = t.segments.len();
    for (i, seg) in t.segments.iter().enumerate() {
        for part in seg {
            if let Part::Param(p) = part
                && p.kind == ParamKind::CatchAll
                && i + 1 < count
            {
                return Err("A catch-all parameter can only appear as the last segment of the route template.".into());
            }
        }
    }
    let names: Vec<&str> = t.params().map(|p| p.name.as_str()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].iter().any(|m| super::eq_ignore_case(m, n)) {
            return Err(format!(
                "The route parameter name '{n}' appears more than one time in the route template."
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(t: &str) -> Param {
        let tmpl = parse(t).unwrap();
        tmpl.params().next().unwrap().clone()
    }

    #[test]
    fn parameters() {
        let p = param("{id:int:min(1)}");
        assert_eq!(p.name, "id");
        assert_eq!(p.constraints.len(), 2);
        let p = param("{x:int=5}");
        assert_eq!(p.default.as_deref(), Some("5"));
        let p = param("{x=a:b}");
        assert_eq!(p.default.as_deref(), Some("a:b"));
        assert!(p.constraints.is_empty());
        assert_eq!(param("{*rest}").kind, ParamKind::CatchAll);
        assert_eq!(param("{**rest}").kind, ParamKind::CatchAll);
        assert_eq!(param("{id?}").kind, ParamKind::Optional);
    }

    #[test]
    fn regex_argument_keeps_colons_and_escaped_braces() {
        let p = param("{d:regex(^a:b$)}");
        assert_eq!(p.constraints.len(), 1);
        assert!(!p.constraints[0].check(Some("xa:by")));
        assert!(p.constraints[0].check(Some("a:b")));
        let p = param(r"{v:regex(^\d{{3}}$)}");
        assert!(p.constraints[0].check(Some("123")));
        assert!(!p.constraints[0].check(Some("1234")));
    }

    #[test]
    fn errors() {
        for (t, needle) in [
            ("a//b", "consecutively"),
            ("{x", "incomplete parameter"),
            ("a}", "incomplete parameter"),
            ("{*x?}", "catch-all parameter cannot be marked optional"),
            ("{x=5?}", "optional parameter cannot have default"),
            ("{}", "parameter name '' is invalid"),
            ("{a}{b}", "two consecutive parameters"),
            ("{*x}/a", "only appear as the last segment"),
            ("a{*x}", "cannot contain a catch-all"),
            ("{a?}.{b}", "must be at the end of the segment"),
            ("{a}-{b?}", "Only a period (.)"),
            ("{id}/{ID}", "appears more than one time"),
            ("a?b", "cannot contain the '?'"),
            ("~x", "cannot start with a '~'"),
            ("{x:nope}", "could not be resolved"),
            ("{x:int()}", "constructor"),
            ("{x:range(5,1)}", "range"),
        ] {
            let e = parse(t).unwrap_err();
            assert!(e.contains(needle), "{t}: {e}");
        }
    }

    #[test]
    fn valid_shapes() {
        for t in [
            "",
            "/",
            "a/",
            "{a}.{b?}",
            ".{ext?}",
            "{a}-{b}",
            "{file}.{ext}",
            "a/{b?}/c",
            "{*x=d}",
            "{{lit}}",
        ] {
            parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        }
        let t = parse("{a}.{b?}").unwrap();
        assert!(matches!(t.segments[0][1], Part::Separator(_)));
    }
}
