//! Inline route constraints (`int`, `guid`, `regex(...)`, ...) with ASP.NET Core's semantics.

use regex::Regex;

/// A resolved inline constraint.
#[derive(Debug, Clone)]
pub enum Constraint {
    Int,
    Long,
    Bool,
    Guid,
    Alpha,
    DateTime,
    Decimal,
    Double,
    Float,
    Min(i64),
    Max(i64),
    Range(i64, i64),
    Length(usize, usize),
    MinLength(usize),
    MaxLength(usize),
    Regex(Regex),
    Required,
    File,
    NonFile,
}

fn count_args(name: &str, expected: &str, found: usize) -> String {
    format!(
        "could not find a constructor for constraint '{name}' with {found} parameter(s); expected {expected}"
    )
}

fn parse_i64(name: &str, arg: &str) -> Result<i64, String> {
    arg.trim()
        .parse::<i64>()
        .map_err(|_| format!("the argument '{arg}' of constraint '{name}' is not an integer"))
}

fn parse_len(name: &str, arg: &str) -> Result<usize, String> {
    let n = parse_i64(name, arg)?;
    usize::try_from(n).map_err(|_| {
        format!("the length argument of constraint '{name}' must be non-negative, found {n}")
    })
}

impl Constraint {
    /// Resolves `name` or `name(args)` as ASP.NET's default inline constraint resolver does.
    pub fn resolve(text: &str) -> Result<Constraint, String> {
        let (name, args) = match text.find('(') {
            Some(i) if text.ends_with(')') => (&text[..i], Some(&text[i + 1..text.len() - 1])),
            _ => (text, None),
        };
        let lower = name.to_ascii_lowercase();
        // Constraints whose single constructor takes one argument get the whole argument text.
        let single = |a: Option<&str>| -> Result<String, String> {
            a.map(str::to_string)
                .ok_or_else(|| count_args(name, "1", 0))
        };
        let split = |a: Option<&str>| -> Vec<String> {
            a.map(|a| a.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default()
        };
        let no_args = |c: Constraint, a: Option<&str>| -> Result<Constraint, String> {
            match a {
                None => Ok(c),
                Some(_) => Err(count_args(name, "0", split(args).len())),
            }
        };
        match lower.as_str() {
            "int" => no_args(Constraint::Int, args),
            "long" => no_args(Constraint::Long, args),
            "bool" => no_args(Constraint::Bool, args),
            "guid" => no_args(Constraint::Guid, args),
            "alpha" => no_args(Constraint::Alpha, args),
            "datetime" => no_args(Constraint::DateTime, args),
            "decimal" => no_args(Constraint::Decimal, args),
            "double" => no_args(Constraint::Double, args),
            "float" => no_args(Constraint::Float, args),
            "required" => no_args(Constraint::Required, args),
            "file" => no_args(Constraint::File, args),
            "nonfile" => no_args(Constraint::NonFile, args),
            "min" => Ok(Constraint::Min(parse_i64(name, &single(args)?)?)),
            "max" => Ok(Constraint::Max(parse_i64(name, &single(args)?)?)),
            "minlength" => Ok(Constraint::MinLength(parse_len(name, &single(args)?)?)),
            "maxlength" => Ok(Constraint::MaxLength(parse_len(name, &single(args)?)?)),
            "range" => match split(args).as_slice() {
                [a, b] => {
                    let (a, b) = (parse_i64(name, a)?, parse_i64(name, b)?);
                    if a > b {
                        return Err(format!("the minimum of range({a},{b}) must not exceed its maximum"));
                    }
                    Ok(Constraint::Range(a, b))
                }
                other => Err(count_args(name, "2", other.len())),
            },
            "length" => match split(args).as_slice() {
                [n] => {
                    let n = parse_len(name, n)?;
                    Ok(Constraint::Length(n, n))
                }
                [a, b] => {
                    let (a, b) = (parse_len(name, a)?, parse_len(name, b)?);
                    if a > b {
                        return Err(format!("the minimum of length({a},{b}) must not exceed its maximum"));
                    }
                    Ok(Constraint::Length(a, b))
                }
                other => Err(count_args(name, "1 or 2", other.len())),
            },
            "regex" => {
                let pattern = single(args)?;
                Regex::new(&format!("(?i){pattern}"))
                    .map(Constraint::Regex)
                    .map_err(|e| format!("the regular expression '{pattern}' is not supported: {e}"))
            }
            _ => Err("could not be resolved by the constraint resolver: expected one of int, long, bool, guid, alpha, \
                 datetime, decimal, double, float, min, max, range, length, minlength, maxlength, regex, \
                 required, file, nonfile"
                .into()),
        }
    }

    /// Whether `value` (None when the parameter has no value) satisfies the constraint.
    pub fn check(&self, value: Option<&str>) -> bool {
        let Some(v) = value else {
            return matches!(self, Constraint::NonFile);
        };
        match self {
            Constraint::Int => parse_integer(v).is_some_and(|n| i32::try_from(n).is_ok()),
            Constraint::Long => parse_integer(v).is_some(),
            Constraint::Bool => {
                let t = trim_ws(v);
                t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false")
            }
            Constraint::Guid => is_guid(trim_ws(v)),
            Constraint::Alpha => v.bytes().all(|b| b.is_ascii_alphabetic()),
            Constraint::DateTime => is_datetime(trim_ws(v)),
            Constraint::Decimal => is_decimal(v),
            Constraint::Double | Constraint::Float => is_float(v),
            Constraint::Min(m) => parse_integer(v).is_some_and(|n| n >= *m),
            Constraint::Max(m) => parse_integer(v).is_some_and(|n| n <= *m),
            Constraint::Range(a, b) => parse_integer(v).is_some_and(|n| n >= *a && n <= *b),
            Constraint::Length(a, b) => {
                let n = v.encode_utf16().count();
                n >= *a && n <= *b
            }
            Constraint::MinLength(a) => v.encode_utf16().count() >= *a,
            Constraint::MaxLength(b) => v.encode_utf16().count() <= *b,
            Constraint::Regex(r) => r.is_match(v),
            Constraint::Required => !v.is_empty(),
            Constraint::File => is_file(v),
            Constraint::NonFile => !is_file(v),
        }
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, '\u{9}'..='\u{d}' | ' ')
}

fn trim_ws(v: &str) -> &str {
    v.trim_matches(|c| is_ws(c) || c == '\0')
}

/// `NumberStyles.Integer`: surrounding white space, a leading sign, decimal digits.
fn parse_integer(v: &str) -> Option<i64> {
    let t = trim_ws(v);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

fn hex(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_guid(s: &str) -> bool {
    let dashed = |s: &str| {
        let p: Vec<&str> = s.split('-').collect();
        p.len() == 5
            && hex(p[0], 8)
            && hex(p[1], 4)
            && hex(p[2], 4)
            && hex(p[3], 4)
            && hex(p[4], 12)
    };
    if hex(s, 32) {
        return true;
    }
    if s.len() == 36 {
        return dashed(s);
    }
    if s.len() == 38 && s.is_ascii() {
        let inner = &s[1..37];
        return ((s.starts_with('{') && s.ends_with('}'))
            || (s.starts_with('(') && s.ends_with(')')))
            && dashed(inner);
    }
    false
}

/// `NumberStyles.Float | AllowThousands` (also `NaN`, `Infinity`).
fn is_float(v: &str) -> bool {
    let t = trim_ws(v);
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    if ["nan", "infinity", "∞"]
        .iter()
        .any(|w| body.eq_ignore_ascii_case(w))
    {
        return true;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    number_body(mantissa)
}

/// Digits with `,` group separators (after the first digit), then an optional `.` and digits.
fn number_body(m: &str) -> bool {
    let (int, frac) = match m.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (m, None),
    };
    if int.starts_with(',') || !int.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return false;
    }
    if let Some(f) = frac
        && !f.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    int.bytes().any(|b| b.is_ascii_digit()) || frac.is_some_and(|f| !f.is_empty())
}

/// `NumberStyles.Number` for `decimal`: signs leading or trailing, thousands, no exponent.
fn is_decimal(v: &str) -> bool {
    let t = trim_ws(v);
    let t = t.strip_prefix(['+', '-']).map_or(t, |r| r);
    let t = if v.trim_start().starts_with(['+', '-']) {
        t
    } else {
        t.strip_suffix(['+', '-']).unwrap_or(t)
    };
    if !number_body(t) {
        return false;
    }
    let int_digits = t
        .split('.')
        .next()
        .unwrap_or("")
        .bytes()
        .filter(|b| b.is_ascii_digit())
        .count();
    let int_part: String = t
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let significant = int_part.trim_start_matches('0');
    int_digits == 0
        || significant.len() < 29
        || (significant.len() == 29 && significant <= "79228162514264337593543950335")
}

/// An approximation of `DateTime.TryParse` with the invariant culture.
fn is_datetime(s: &str) -> bool {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    if DateTime::parse_from_rfc3339(s).is_ok() || DateTime::parse_from_rfc2822(s).is_ok() {
        return true;
    }
    const DATE_TIMES: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%M:%SZ",
        "%a, %d %b %Y %H:%M:%S GMT",
    ];
    const DATES: &[&str] = &[
        "%Y-%m-%d",
        "%m/%d/%Y",
        "%Y/%m/%d",
        "%d %b %Y",
        "%d %B %Y",
        "%b %d, %Y",
        "%B %d, %Y",
        "%Y-%m-%d%z",
    ];
    const TIMES: &[&str] = &[
        "%H:%M",
        "%H:%M:%S",
        "%H:%M:%S%.f",
        "%I:%M %p",
        "%I:%M:%S %p",
    ];
    if DATE_TIMES
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(s, f).is_ok())
    {
        return true;
    }
    if DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%:z").is_ok()
        || DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%:z").is_ok()
    {
        return true;
    }
    if DATES
        .iter()
        .any(|f| NaiveDate::parse_from_str(s, f).is_ok())
    {
        return true;
    }
    if NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").is_ok() && s.len() == 7 {
        return true;
    }
    TIMES
        .iter()
        .any(|f| NaiveTime::parse_from_str(s, f).is_ok())
}

fn is_file(v: &str) -> bool {
    if v.is_empty() {
        return false;
    }
    let last = v.rsplit('/').next().unwrap_or(v);
    match last.rfind('.') {
        Some(i) => i + 1 < last.len() && !last[i + 1..].contains('.'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(t: &str) -> Constraint {
        Constraint::resolve(t).unwrap()
    }

    #[test]
    fn numbers() {
        assert!(c("int").check(Some("42")));
        assert!(c("int").check(Some("-7")));
        assert!(c("int").check(Some(" 007 ")));
        assert!(!c("int").check(Some("2147483648")));
        assert!(c("long").check(Some("2147483648")));
        assert!(!c("int").check(Some("1.0")));
        assert!(!c("int").check(Some("0x1")));
        assert!(!c("int").check(Some("")));
        assert!(c("double").check(Some("1,000.5e3")));
        assert!(c("double").check(Some(".5")));
        assert!(c("float").check(Some("NaN")));
        assert!(!c("double").check(Some("1e")));
        assert!(!c("double").check(Some("abc")));
        assert!(c("decimal").check(Some("5-")));
        assert!(!c("decimal").check(Some("1e5")));
        assert!(c("decimal").check(Some("1,234.50")));
    }

    #[test]
    fn bounds() {
        assert!(c("min(1)").check(Some("1")));
        assert!(!c("min(1)").check(Some("0")));
        assert!(c("max(10)").check(Some("10")));
        assert!(!c("max(10)").check(Some("x")));
        assert!(c("range(1, 3)").check(Some("2")));
        assert!(!c("range(1,3)").check(Some("4")));
        assert!(c("length(3)").check(Some("abc")));
        assert!(c("length(2,4)").check(Some("abcd")));
        assert!(!c("length(2,4)").check(Some("abcde")));
        assert!(c("minlength(2)").check(Some("ab")));
        assert!(!c("maxlength(2)").check(Some("abc")));
        assert!(c("length(2)").check(Some("😀")), "UTF-16 code units");
    }

    #[test]
    fn words() {
        assert!(c("bool").check(Some("TRUE")));
        assert!(!c("bool").check(Some("1")));
        assert!(c("alpha").check(Some("abcXYZ")));
        assert!(!c("alpha").check(Some("abc1")));
        assert!(!c("alpha").check(Some("é")));
        assert!(c("guid").check(Some("0f8fad5b-d9cb-469f-a165-70867728950e")));
        assert!(c("guid").check(Some("{0f8fad5b-d9cb-469f-a165-70867728950e}")));
        assert!(c("guid").check(Some("0f8fad5bd9cb469fa16570867728950e")));
        assert!(!c("guid").check(Some("0f8fad5b-d9cb-469f-a165")));
        assert!(
            !c("guid").check(Some("é0f8fad5b-d9cb-469f-a165-70867728950e")),
            "no panic on non-ASCII"
        );
        assert!(c("datetime").check(Some("2024-02-29")));
        assert!(c("datetime").check(Some("2024-02-29T10:00:00Z")));
        assert!(c("datetime").check(Some("2024-02-29 10:00")));
        assert!(!c("datetime").check(Some("2023-02-29")));
        assert!(!c("datetime").check(Some("2024")));
        assert!(c("regex(\\d+)").check(Some("ab1")), "not anchored");
        assert!(c("regex(^ABC$)").check(Some("abc")), "ignore case");
        assert!(c("regex(^a{2,3}$)").check(Some("aaa")), "commas kept");
        assert!(c("file").check(Some("a/b.txt")));
        assert!(!c("file").check(Some("a/b.d/c")));
        assert!(c("nonfile").check(None));
        assert!(!c("int").check(None));
        assert!(c("required").check(Some("x")));
    }

    #[test]
    fn names_are_case_insensitive_and_errors_explain() {
        assert!(matches!(c("INT"), Constraint::Int));
        assert!(Constraint::resolve("int()").is_err());
        assert!(Constraint::resolve("min(1,2)").is_err());
        assert!(Constraint::resolve("length(-1)").is_err());
        assert!(Constraint::resolve("regex((?<=a)b)").is_err());
    }
}
