//! An app's files as its live version holds them, and new packages made from them with some
//! files written or deleted (run from package: a version's files never change, a change is a
//! new version). Kudu's `vfs` routes and the portal's editor both go through here.

use std::io::{Read as _, Write as _};

use stratus_store::SqlApps;

/// Why the files could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("'{0}' is not a path inside the app")]
    BadPath(String),
    #[error("the live package cannot be read: {0}")]
    Unreadable(String),
    #[error("cannot build the new package: {0}")]
    Build(String),
    #[error(transparent)]
    Store(#[from] stratus_store::Error),
}

/// The live version's package.
pub struct Live {
    pub version: i64,
    pub zip: Vec<u8>,
    pub created_ms: i64,
}

/// One file written (`Some`) or deleted (`None`).
pub type Change = (String, Option<Vec<u8>>);

/// The live version of `app` and its package; `None` when it has none.
pub async fn live(apps: &SqlApps, app: &str) -> Result<Option<Live>, FilesError> {
    let Some(record) = apps.get(app).await? else {
        return Ok(None);
    };
    let Some(active) = record.active_version else {
        return Ok(None);
    };
    let versions = apps.versions(app).await?;
    let Some(v) = versions.into_iter().find(|v| v.number == active) else {
        return Ok(None);
    };
    Ok(apps.package(&v.sha256).await?.map(|zip| Live {
        version: active,
        zip,
        created_ms: v.created_ms,
    }))
}

type Archive<'a> = zip::ZipArchive<std::io::Cursor<&'a [u8]>>;

fn archive(zip: &[u8]) -> Result<Archive<'_>, FilesError> {
    zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| FilesError::Unreadable(e.to_string()))
}

impl Live {
    /// The package's files (not its directories) and their sizes, in name order.
    pub fn files(&self) -> Result<Vec<(String, u64)>, FilesError> {
        let mut a = archive(&self.zip)?;
        let mut out = Vec::new();
        for i in 0..a.len() {
            let f = a
                .by_index_raw(i)
                .map_err(|e| FilesError::Unreadable(e.to_string()))?;
            if !f.is_dir() {
                out.push((f.name().to_string(), f.size()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// File `path`'s content; `None` when there is no such file.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FilesError> {
        let mut a = archive(&self.zip)?;
        let Ok(mut f) = a.by_name(path) else {
            return Ok(None);
        };
        if f.is_dir() {
            return Ok(None);
        }
        let mut content = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0));
        f.read_to_end(&mut content)
            .map_err(|e| FilesError::Unreadable(format!("{path}: {e}")))?;
        Ok(Some(content))
    }
}

/// Checks that `path` names a file inside the app (relative, no `.` or `..` parts).
pub fn check_path(path: &str) -> Result<(), FilesError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.ends_with('/')
        || path.contains(['\\', '\0', ':'])
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..");
    if bad {
        return Err(FilesError::BadPath(path.to_string()));
    }
    Ok(())
}

/// A new package: `base`'s entries (none when `None`) with `changes` applied, entries kept
/// byte for byte and new content compressed.
pub fn rebuild(base: Option<&[u8]>, changes: &[Change]) -> Result<Vec<u8>, FilesError> {
    for (path, _) in changes {
        check_path(path)?;
    }
    let build = |e: zip::result::ZipError| FilesError::Build(e.to_string());
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    if let Some(base) = base {
        let mut a = archive(base)?;
        for i in 0..a.len() {
            let f = a.by_index_raw(i).map_err(build)?;
            if changes.iter().any(|(p, _)| p == f.name()) {
                continue;
            }
            out.raw_copy_file(f).map_err(build)?;
        }
    }
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (path, content) in changes {
        if let Some(c) = content {
            out.start_file(path.as_str(), opts).map_err(build)?;
            out.write_all(c)
                .map_err(|e| FilesError::Build(e.to_string()))?;
        }
    }
    Ok(out.finish().map_err(build)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(zip: Vec<u8>) -> Live {
        Live {
            version: 1,
            zip,
            created_ms: 0,
        }
    }

    #[test]
    fn changes_write_replace_and_delete_files() {
        let first = rebuild(
            None,
            &[
                ("host.json".into(), Some(b"{\"version\": \"2.0\"}".to_vec())),
                ("a/function.json".into(), Some(b"{}".to_vec())),
                ("a/run.py".into(), Some(b"print(1)".to_vec())),
            ],
        )
        .unwrap();
        let second = rebuild(
            Some(&first),
            &[
                ("a/run.py".into(), Some(b"print(2)".to_vec())),
                ("a/function.json".into(), None),
                ("b/new.txt".into(), Some(b"new".to_vec())),
            ],
        )
        .unwrap();
        let l = live(second);
        let names: Vec<String> = l.files().unwrap().into_iter().map(|f| f.0).collect();
        assert_eq!(names, ["a/run.py", "b/new.txt", "host.json"]);
        assert_eq!(l.read("a/run.py").unwrap().unwrap(), b"print(2)");
        assert!(l.read("a/function.json").unwrap().is_none());
    }

    #[test]
    fn paths_stay_inside_the_app() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../../x",
            "./a",
            "a//b",
            "a/",
            "c:\\x",
            "a\\b",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
            assert!(rebuild(None, &[(bad.into(), Some(vec![]))]).is_err());
        }
        check_path("hello/__init__.py").unwrap();
    }
}
