//! Zipping an app directory into a package: entries in name order with a fixed timestamp, so
//! the same files always make the same package (and the same SHA-256).

use std::io::Write as _;
use std::path::Path;

/// Directories never packaged: caches and version control.
const SKIPPED: &[&str] = &[".git", "__pycache__", ".venv", ".pytest_cache"];

/// The files under `dir` as a zip (paths relative to `dir`, `/`-separated, Unix modes kept).
pub fn zip_dir(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    add(&mut zip, dir, dir)?;
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

fn add(
    zip: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    root: &Path,
    dir: &Path,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let kind = e.file_type()?;
        let name = e.file_name();
        if kind.is_dir() {
            if !SKIPPED.iter().any(|s| name == *s) {
                add(zip, root, &path)?;
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .map_err(std::io::Error::other)?
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let mode = {
            use std::os::unix::fs::PermissionsExt as _;
            e.metadata()?.permissions().mode() & 0o777
        };
        let options = zip::write::SimpleFileOptions::default()
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode);
        zip.start_file(rel, options)
            .map_err(std::io::Error::other)?;
        zip.write_all(&std::fs::read(&path)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_make_the_same_package() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("hello/__pycache__")).unwrap();
        std::fs::write(dir.path().join("host.json"), b"{\"version\": \"2.0\"}").unwrap();
        std::fs::write(dir.path().join("hello/function.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("hello/__pycache__/x.pyc"), b"junk").unwrap();
        let a = zip_dir(dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("host.json"), b"{\"version\": \"2.0\"}").unwrap();
        assert_eq!(a, zip_dir(dir.path()).unwrap());
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().to_string())
            .collect();
        assert_eq!(names, ["hello/function.json", "host.json"]);
    }
}
