//! Which files of an app directory are published: all of them but what `.funcignore`
//! (gitignore syntax, as Core Tools reads it) excludes, version control, and
//! `local.settings.json` (local settings are never published).

use std::path::{Path, PathBuf};

/// A file to publish: its path and its name in the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFile {
    pub path: PathBuf,
    pub name: String,
    pub mode: u32,
}

/// The files under `root` to publish, in name order.
pub fn app_files(root: &Path) -> Result<Vec<AppFile>, String> {
    let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
    let funcignore = root.join(".funcignore");
    if funcignore.is_file()
        && let Some(e) = builder.add(&funcignore)
    {
        return Err(format!("{}: {e}", funcignore.display()));
    }
    for always in [".git/", "local.settings.json"] {
        builder.add_line(None, always).map_err(|e| e.to_string())?;
    }
    let ignore = builder
        .build()
        .map_err(|e| format!("{}: {e}", funcignore.display()))?;
    let mut out = Vec::new();
    walk(root, root, &ignore, &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &ignore::gitignore::Gitignore,
    out: &mut Vec<AppFile>,
) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries {
        let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = e.path();
        let kind = e
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // A link is followed only to a file inside the app; the package holds plain files.
        let (is_dir, is_file) = if kind.is_symlink() {
            let target = std::fs::canonicalize(&path).ok();
            let inside = target
                .as_ref()
                .is_some_and(|t| std::fs::canonicalize(root).is_ok_and(|r| t.starts_with(r)));
            (false, inside && target.is_some_and(|t| t.is_file()))
        } else {
            (kind.is_dir(), kind.is_file())
        };
        if ignore.matched(&path, is_dir).is_ignore() {
            continue;
        }
        if is_dir {
            walk(root, &path, ignore, out)?;
        } else if is_file {
            let name = path
                .strip_prefix(root)
                .map_err(|e| e.to_string())?
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let mode = {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::metadata(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .permissions()
                    .mode()
                    & 0o777
            };
            out.push(AppFile { path, name, mode });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funcignore_and_local_settings_are_left_out() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for f in [
            "host.json",
            "local.settings.json",
            "hello/function.json",
            "hello/test_hello.py",
            "venv/lib/x.py",
            ".git/config",
            ".vscode/settings.json",
            "keep/.vscode.txt",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        std::fs::write(
            root.join(".funcignore"),
            ".vscode/\nvenv\ntest_*\n# comment\n",
        )
        .unwrap();
        let names: Vec<String> = app_files(root)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            vec![
                ".funcignore",
                "hello/function.json",
                "host.json",
                "keep/.vscode.txt"
            ]
        );
    }
}
