//! HTTP routing: templates, constraints, path decoding and the ordered route table of an app.

pub mod constraint;
pub mod matcher;
pub mod path;
pub mod table;
pub mod template;

pub use matcher::{RouteValues, tokenize};
pub use table::{RouteEntry, RouteTable};
pub use template::RouteTemplate;

/// `StringComparison.OrdinalIgnoreCase`-style fold: simple upper-case mapping per character.
pub(crate) fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Ordinal case-insensitive equality.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// Ordinal case-insensitive ordering (how the host orders functions).
pub fn cmp_ignore_case(a: &str, b: &str) -> std::cmp::Ordering {
    a.chars().map(fold).cmp(b.chars().map(fold))
}
