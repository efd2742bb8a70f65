//! Checking an uploaded app package before it is kept: a zip whose entries all stay inside the
//! app's directory (no absolute paths, no `..`, no symbolic links), within size and entry-count
//! limits, not a decompression bomb, with a valid `host.json` at its root.

use std::io::Read as _;

/// Most entries a package may hold.
pub const MAX_ENTRIES: usize = 50_000;
/// Most bytes a package may unpack to.
pub const MAX_UNPACKED: u64 = 1 << 30;
/// Highest ratio of unpacked to packed size for any entry larger than 1 MiB.
pub const MAX_RATIO: u64 = 200;

/// Why a package was refused; the message says which entry and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PackageError(pub String);

/// What a valid package holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    pub entries: usize,
    pub unpacked: u64,
    /// The functions its `function.json` files define, by folder name: their trigger's
    /// type, or why the definition is invalid (the host will report and skip it).
    pub functions: Vec<(String, Result<String, String>)>,
}

/// What a stored package says of its functions: host.json's route prefix and each
/// `function.json` that parses as JSON (by folder name).
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub route_prefix: String,
    pub functions: Vec<(String, serde_json::Value)>,
}

/// Reads the index of a package already accepted by [`validate`] (anything unreadable is
/// left out).
pub fn index(bytes: &[u8]) -> Index {
    let mut out = Index {
        route_prefix: "api".into(),
        functions: Vec::new(),
    };
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return out;
    };
    let read = |archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
                name: &str|
     -> Option<serde_json::Value> {
        let mut f = archive.by_name(name).ok()?;
        if f.size() > 1 << 20 {
            return None;
        }
        let mut text = String::new();
        f.read_to_string(&mut text).ok()?;
        stratus_model::json::parse_document(name, &text).ok()
    };
    if let Some(doc) = read(&mut archive, "host.json")
        && let Ok(config) = stratus_model::HostConfig::parse(doc)
    {
        out.route_prefix = config.http.route_prefix;
    }
    let names: Vec<String> = archive
        .file_names()
        .filter_map(function_json_of)
        .map(str::to_string)
        .collect();
    for name in names {
        if let Some(doc) = read(&mut archive, &format!("{name}/function.json")) {
            out.functions.push((name, doc));
        }
    }
    out.functions.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A `<function>/function.json` entry's function name.
fn function_json_of(name: &str) -> Option<&str> {
    let (dir, file) = name.split_once('/')?;
    (file == "function.json" && !dir.is_empty()).then_some(dir)
}

fn index_function(name: &str, text: Vec<u8>) -> Result<String, String> {
    let file = format!("{name}/function.json");
    let text = String::from_utf8(text).map_err(|_| format!("{file} is not UTF-8 text"))?;
    let doc = stratus_model::json::parse_document(&file, &text).map_err(|e| e.to_string())?;
    let config =
        stratus_model::FunctionConfig::parse(name, &file, doc).map_err(|e| e.to_string())?;
    Ok(config.trigger_binding().type_name.clone())
}

fn refuse(text: impl Into<String>) -> PackageError {
    PackageError(text.into())
}

/// Checks `bytes` as an app package.
pub fn validate(bytes: &[u8]) -> Result<PackageInfo, PackageError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| refuse(format!("the package is not a zip archive: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(refuse(format!(
            "the package holds {} entries; at most {MAX_ENTRIES} are accepted",
            archive.len()
        )));
    }
    let mut unpacked: u64 = 0;
    let mut host_json: Option<Vec<u8>> = None;
    let mut functions = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| refuse(format!("entry {i} of the package cannot be read: {e}")))?;
        let name = entry.name().to_string();
        if name.starts_with('/') || name.starts_with('\\') || name.contains(':') {
            return Err(refuse(format!("entry \"{name}\" has an absolute path")));
        }
        if name.split(['/', '\\']).any(|part| part == "..") || entry.enclosed_name().is_none() {
            return Err(refuse(format!(
                "entry \"{name}\" would land outside the app's directory"
            )));
        }
        if entry.is_symlink() {
            return Err(refuse(format!(
                "entry \"{name}\" is a symbolic link; packages hold plain files and directories"
            )));
        }
        let size = entry.size();
        unpacked = unpacked.saturating_add(size);
        if unpacked > MAX_UNPACKED {
            return Err(refuse(format!(
                "the package unpacks to more than {MAX_UNPACKED} bytes"
            )));
        }
        let packed = entry.compressed_size().max(1);
        if size > 1 << 20 && size / packed > MAX_RATIO {
            return Err(refuse(format!(
                "entry \"{name}\" unpacks {size} bytes from {packed}: refused as a decompression bomb"
            )));
        }
        if name == "host.json" && size > 1 << 20 {
            return Err(refuse("host.json is larger than 1 MiB"));
        }
        // Unpacked here, counting what comes out rather than trusting the declared size
        // (a forged header would otherwise pass the limits and blow up on the workers).
        let mut sink = std::io::sink();
        let mut text = Vec::new();
        let function = function_json_of(&name).filter(|_| size <= 1 << 20);
        let out: &mut dyn std::io::Write = if name == "host.json" || function.is_some() {
            &mut text
        } else {
            &mut sink
        };
        let got = std::io::copy(&mut (&mut entry).take(size.saturating_add(1)), out)
            .map_err(|e| refuse(format!("entry \"{name}\" cannot be unpacked: {e}")))?;
        if got != size {
            return Err(refuse(format!(
                "entry \"{name}\" unpacks to {got} bytes, not the {size} it declares"
            )));
        }
        if name == "host.json" {
            host_json = Some(text);
        } else if let Some(f) = function {
            functions.push((f.to_string(), index_function(f, text)));
        }
    }
    functions.sort();
    let text = host_json.ok_or_else(|| {
        refuse("the package has no host.json at its root (zip the app's folder contents, not the folder)")
    })?;
    let text = String::from_utf8(text).map_err(|_| refuse("host.json is not UTF-8 text"))?;
    let doc = stratus_model::json::parse_document("host.json", &text)
        .map_err(|e| refuse(e.to_string()))?;
    stratus_model::HostConfig::parse(doc).map_err(|e| refuse(e.to_string()))?;
    Ok(PackageInfo {
        entries: archive.len(),
        unpacked,
        functions,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A zip of `(name, content)` files; `link` entries become symbolic links.
    fn zip_of(files: &[(&str, &[u8])], link: Option<(&str, &str)>) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, content) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(content).unwrap();
        }
        if let Some((name, target)) = link {
            z.add_symlink(name, target, opts).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    const HOST: &[u8] = br#"{"version": "2.0"}"#;

    #[test]
    fn a_plain_app_is_accepted() {
        let good: &[u8] =
            br#"{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req"}]}"#;
        let z = zip_of(
            &[
                ("host.json", HOST),
                ("hello/function.json", good),
                ("broken/function.json", b"{}"),
                ("lib/deep/function.json", b"ignored"),
            ],
            None,
        );
        let info = validate(&z).unwrap();
        assert_eq!(info.entries, 4);
        assert_eq!(info.functions.len(), 2, "{:?}", info.functions);
        assert_eq!(
            info.functions[1],
            ("hello".to_string(), Ok("httpTrigger".to_string()))
        );
        let (name, broken) = &info.functions[0];
        assert_eq!(name, "broken");
        let why = broken.as_ref().unwrap_err();
        assert!(
            why.contains("broken/function.json") && why.contains("bindings"),
            "{why}"
        );
    }

    #[test]
    fn hostile_and_broken_packages_are_refused_with_the_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not a zip".to_vec(), "not a zip archive"),
            (
                zip_of(&[("host.json", HOST), ("../evil", b"x")], None),
                "outside the app's directory",
            ),
            (
                zip_of(&[("host.json", HOST), ("a/../../evil", b"x")], None),
                "outside the app's directory",
            ),
            (
                zip_of(&[("host.json", HOST), ("/etc/passwd", b"x")], None),
                "absolute path",
            ),
            (
                zip_of(&[("host.json", HOST)], Some(("link", "/etc"))),
                "symbolic link",
            ),
            (
                zip_of(&[("app/host.json", HOST)], None),
                "no host.json at its root",
            ),
            (
                zip_of(&[("host.json", b"{\"version\": \"1.0\"}")], None),
                "host.json",
            ),
            (
                zip_of(&[("host.json", b"{nope")], None),
                "expected a JSON document",
            ),
        ];
        for (bytes, why) in cases {
            let e = validate(&bytes).unwrap_err();
            assert!(e.0.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let zeros = vec![0u8; 8 << 20];
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file("host.json", opts).unwrap();
        z.write_all(HOST).unwrap();
        z.start_file("zeros", opts).unwrap();
        z.write_all(&zeros).unwrap();
        let bytes = z.finish().unwrap().into_inner();
        let e = validate(&bytes).unwrap_err();
        assert!(e.0.contains("decompression bomb"), "{e}");
    }
}
