//! Decoding request paths the way Kestrel does before routing: percent-escapes are decoded
//! except `%2F` (which stays literal), invalid UTF-8 escapes stay raw, dot segments go.

/// Why a path cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// `%00` is refused (Kestrel answers 400).
    NullByte,
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes the raw (still percent-encoded) path of a request; borrows when there is
/// nothing to decode.
pub fn decode(raw: &str) -> Result<std::borrow::Cow<'_, str>, PathError> {
    if !raw.contains('%') && !raw.contains("/.") {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            let next = raw[i..].find('%').map_or(bytes.len(), |n| i + n);
            out.push_str(&raw[i..next]);
            i = next;
            continue;
        }
        // A run of consecutive escapes, decoded together so multi-byte characters survive.
        let run_start = i;
        let mut decoded = Vec::new();
        while i + 2 < bytes.len() && bytes[i] == b'%' {
            match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    let b = h * 16 + l;
                    if b == 0 {
                        return Err(PathError::NullByte);
                    }
                    if b == b'/' {
                        break;
                    }
                    decoded.push(b);
                    i += 3;
                }
                _ => break,
            }
        }
        if decoded.is_empty() {
            // `%2F`, a malformed escape, or a lone `%` at the end: keep the text.
            let take = if bytes.len() >= i + 3 && bytes[i..i + 3].eq_ignore_ascii_case(b"%2f") {
                3
            } else {
                1
            };
            out.push_str(&raw[i..i + take]);
            i += take;
            continue;
        }
        match String::from_utf8(decoded) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str(&raw[run_start..i]),
        }
    }
    Ok(std::borrow::Cow::Owned(remove_dot_segments(&out)))
}

/// RFC 3986 §5.2.4 dot-segment removal.
fn remove_dot_segments(path: &str) -> String {
    if !path.split('/').any(|s| s == "." || s == "..") {
        return path.to_string();
    }
    let mut stack: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    stack.push("");
                }
            }
            ".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                if i == last {
                    stack.push("");
                }
            }
            s => stack.push(s),
        }
    }
    let joined = stack.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(decode("/api/a%20b").unwrap(), "/api/a b");
        assert_eq!(decode("/api/a%2Fb").unwrap(), "/api/a%2Fb");
        assert_eq!(decode("/api/a%2fb%41").unwrap(), "/api/a%2fbA");
        assert_eq!(decode("/api/%C3%A9t%C3%A9").unwrap(), "/api/été");
        assert_eq!(decode("/api/%C3").unwrap(), "/api/%C3");
        assert_eq!(decode("/api/%zz%").unwrap(), "/api/%zz%");
        assert_eq!(decode("/api/%00"), Err(PathError::NullByte));
        assert_eq!(decode("/api/./a/../b").unwrap(), "/api/b");
        assert_eq!(decode("/../x").unwrap(), "/x");
        assert_eq!(decode("/a/..").unwrap(), "/");
    }
}
