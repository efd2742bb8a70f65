//! The portal's static assets, built from `portal/` when this crate is built and embedded in
//! the binary; the management role serves them under `/portal/`.

#![forbid(unsafe_code)]

include!(concat!(env!("OUT_DIR"), "/files.rs"));

/// The content and media type of the portal file at `path` (relative to `/portal/`; the
/// index for an empty path).
pub fn file(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = if path.is_empty() { "index.html" } else { path };
    FILES
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(name, content)| (*content, media_type(name)))
}

fn media_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_there_and_typed() {
        let (content, kind) = file("").unwrap();
        assert!(!content.is_empty());
        assert_eq!(kind, "text/html; charset=utf-8");
        assert!(file("nope.js").is_none());
    }
}
