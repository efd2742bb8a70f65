//! Builds the portal (`portal/`, TypeScript with Vite) into this crate's output directory and
//! writes the table of its files for `src/lib.rs` to embed. `STRATUS_SKIP_PORTAL=1` (or a
//! machine without npm) embeds a page that says the portal was not built.

#![allow(
    clippy::disallowed_methods,
    reason = "the build script runs npm, outside any app's sandbox"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let portal = manifest.join("../../portal");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let dist = out.join("portal");
    for watched in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", portal.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=STRATUS_SKIP_PORTAL");
    let _ = std::fs::remove_dir_all(&dist);
    let skip = std::env::var("STRATUS_SKIP_PORTAL").is_ok_and(|v| v == "1" || v == "true");
    let built = !skip && build(&portal, &dist);
    if !built {
        std::fs::create_dir_all(&dist).expect("OUT_DIR is writable");
        let why = if skip {
            "STRATUS_SKIP_PORTAL was set"
        } else {
            "npm could not build it (see the build's warnings)"
        };
        std::fs::write(
            dist.join("index.html"),
            format!(
                "<!doctype html><title>Stratus</title><p>The portal was not built into this binary: {why}. \
                 Build again with Node.js and npm on the machine.</p>"
            ),
        )
        .expect("OUT_DIR is writable");
    }
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    let mut table = String::from(
        "/// The portal's files: path under `/portal/`, content.\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        table.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    table.push_str(&format!("/// Whether the portal itself was built (not the placeholder).\npub const BUILT: bool = {built};\n"));
    std::fs::write(out.join("files.rs"), table).expect("OUT_DIR is writable");
}

/// Runs `npm ci` (when its modules are missing or stale) and the build into `dist`.
fn build(portal: &Path, dist: &Path) -> bool {
    let npm = |args: &[&str]| {
        let status = Command::new("npm").args(args).current_dir(portal).status();
        match status {
            Ok(s) if s.success() => true,
            Ok(s) => {
                println!("cargo:warning=npm {} failed ({s})", args.join(" "));
                false
            }
            Err(e) => {
                println!("cargo:warning=the portal is not built: cannot run npm ({e})");
                false
            }
        }
    };
    let lock = portal.join("package-lock.json");
    let installed = portal.join("node_modules/.package-lock.json");
    let stale = match (std::fs::metadata(&lock), std::fs::metadata(&installed)) {
        (Ok(l), Ok(i)) => l.modified().ok() > i.modified().ok(),
        _ => true,
    };
    if stale && !npm(&["ci", "--no-audit", "--no-fund", "--loglevel=error"]) {
        return false;
    }
    let out = dist.display().to_string();
    npm(&["run", "build", "--", "--outDir", &out, "--emptyOutDir"])
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
}
