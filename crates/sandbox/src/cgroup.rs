//! Control groups for one app's processes: memory, CPU and process-count limits, on cgroup v2
//! (one unified tree) or v1 (a tree per controller), made under the cgroup this process is in;
//! and what the kernel counted of them (OOM kills, memory in use, CPU time).

use std::path::{Path, PathBuf};

/// Limits of one app's processes (all of them together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// CPU time per wall-clock second, in thousandths of a core.
    pub cpu_millis: Option<u64>,
    pub pids: Option<u64>,
}

/// An app's group: a directory per hierarchy that holds it (one on v2).
#[derive(Debug, Clone)]
pub struct Group {
    /// v2: the one directory; v1: (controller, directory).
    dirs: Vec<(&'static str, PathBuf)>,
    v2: bool,
}

const ROOT: &str = "/sys/fs/cgroup";
const V1_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// The path of this process's cgroup in hierarchy `controller` (v1), or the unified one
/// (`""`), from /proc/self/cgroup.
fn own_path(controller: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}

/// Which cgroup version the machine offers for limits: 2 when the unified hierarchy is
/// mounted at the root with controllers, 1 when the v1 memory and pids hierarchies are.
pub fn version() -> Option<u8> {
    if Path::new(ROOT).join("cgroup.controllers").is_file() {
        return Some(2);
    }
    if V1_CONTROLLERS
        .iter()
        .take(2)
        .all(|c| Path::new(ROOT).join(c).join("cgroup.procs").is_file())
    {
        return Some(1);
    }
    None
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

fn name_of(app: &str) -> String {
    let safe: String = app
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("stratus-app-{safe}")
}

impl Group {
    /// Makes (or finds) the group of `app` under this process's cgroup and sets `limits`.
    pub fn make(app: &str, limits: Limits) -> Result<Group, String> {
        match version() {
            Some(2) => Group::make_v2(app, limits),
            Some(1) => Group::make_v1(app, limits),
            _ => Err("no cgroup hierarchy with memory and pids controllers is mounted".into()),
        }
    }

    fn make_v2(app: &str, limits: Limits) -> Result<Group, String> {
        let own = own_path("").ok_or("this process's cgroup is unknown")?;
        let parent = Path::new(ROOT).join(own.trim_start_matches('/'));
        // Controllers are handed down to children through the parent's subtree_control.
        let _ = write(&parent.join("cgroup.subtree_control"), "+memory +pids +cpu");
        let dir = parent.join(name_of(app));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let set = |file: &str, value: String| {
            write(&dir.join(file), &value).map_err(|e| format!("{}/{file}: {e}", dir.display()))
        };
        set(
            "memory.max",
            limits.memory_bytes.map_or("max".into(), |b| b.to_string()),
        )?;
        set(
            "pids.max",
            limits.pids.map_or("max".into(), |p| p.to_string()),
        )?;
        let cpu = limits.cpu_millis.map_or("max 100000".into(), |m| {
            format!("{} 100000", m.max(1) * 100)
        });
        set("cpu.max", cpu)?;
        Ok(Group {
            dirs: vec![("", dir)],
            v2: true,
        })
    }

    fn make_v1(app: &str, limits: Limits) -> Result<Group, String> {
        let mut dirs = Vec::new();
        for c in V1_CONTROLLERS {
            let base = Path::new(ROOT).join(c);
            if !base.join("cgroup.procs").is_file() {
                if c == "cpu" {
                    continue;
                }
                return Err(format!("the {c} controller is not mounted"));
            }
            let own = own_path(c).unwrap_or_else(|| "/".into());
            let dir = base.join(own.trim_start_matches('/')).join(name_of(app));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let set = |file: &str, value: String| {
                write(&dir.join(file), &value).map_err(|e| format!("{}/{file}: {e}", dir.display()))
            };
            match c {
                "memory" => {
                    set(
                        "memory.limit_in_bytes",
                        limits.memory_bytes.map_or("-1".into(), |b| b.to_string()),
                    )?;
                    // Without swap accounting the file is absent: the limit then holds RAM only.
                    if let Some(b) = limits.memory_bytes {
                        let _ = write(&dir.join("memory.memsw.limit_in_bytes"), &b.to_string());
                    }
                }
                "pids" => set(
                    "pids.max",
                    limits.pids.map_or("max".into(), |p| p.to_string()),
                )?,
                _ => {
                    set("cpu.cfs_period_us", "100000".into())?;
                    set(
                        "cpu.cfs_quota_us",
                        limits
                            .cpu_millis
                            .map_or("-1".into(), |m| (m.max(1) * 100).to_string()),
                    )?;
                }
            }
            dirs.push((c, dir));
        }
        Ok(Group { dirs, v2: false })
    }

    /// The group of `app` if a process of this machine's workers made it (for reading what
    /// it uses).
    pub fn existing(app: &str) -> Option<Group> {
        let name = name_of(app);
        match version()? {
            2 => {
                let own = own_path("")?;
                let dir = Path::new(ROOT)
                    .join(own.trim_start_matches('/'))
                    .join(&name);
                dir.is_dir().then(|| Group {
                    dirs: vec![("", dir)],
                    v2: true,
                })
            }
            _ => {
                let dirs: Vec<(&'static str, PathBuf)> = V1_CONTROLLERS
                    .iter()
                    .filter_map(|c| {
                        let own = own_path(c).unwrap_or_else(|| "/".into());
                        let dir = Path::new(ROOT)
                            .join(c)
                            .join(own.trim_start_matches('/'))
                            .join(&name);
                        dir.is_dir().then_some((*c, dir))
                    })
                    .collect();
                (!dirs.is_empty()).then_some(Group { dirs, v2: false })
            }
        }
    }

    /// Removes the group's directories (they must hold no process).
    pub fn remove(&self) {
        for (_, d) in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }

    /// The `cgroup.procs` files a process writes itself into to join the group.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|(_, d)| d.join("cgroup.procs"))
            .collect()
    }

    fn memory_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == "memory" || self.v2)
            .map(|(_, d)| d.as_path())
    }

    fn counter(file: &str, text: &str, key: &str) -> Option<u64> {
        let _ = file;
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// How many times the kernel killed a process of the group for its memory limit.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = self.memory_dir() else {
            return 0;
        };
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| Group::counter(file, &t, "oom_kill"))
            .unwrap_or(0)
    }

    /// Memory in use by the group, in bytes.
    pub fn memory_used(&self) -> Option<u64> {
        let dir = self.memory_dir()?;
        let file = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The memory limit in force, in bytes (none when unlimited).
    pub fn memory_limit(&self) -> Option<u64> {
        let dir = self.memory_dir()?;
        let file = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        let v: u64 = std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (v < (1 << 60)).then_some(v)
    }

    /// CPU time the group used, in microseconds.
    pub fn cpu_used_us(&self) -> Option<u64> {
        if self.v2 {
            let text = std::fs::read_to_string(self.dirs[0].1.join("cpu.stat")).ok()?;
            return Group::counter("cpu.stat", &text, "usage_usec");
        }
        let base = Path::new(ROOT).join("cpuacct");
        let own = own_path("cpuacct")?;
        let name = self.dirs.first()?.1.file_name()?.to_owned();
        let dir = base.join(own.trim_start_matches('/')).join(name);
        let ns: u64 = std::fs::read_to_string(dir.join("cpuacct.usage"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(ns / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_key() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(
            Group::counter("memory.oom_control", text, "oom_kill"),
            Some(3)
        );
        assert_eq!(
            Group::counter("x", "usage_usec 12\n", "usage_usec"),
            Some(12)
        );
        assert_eq!(Group::counter("x", "", "oom_kill"), None);
    }

    #[test]
    fn group_names_are_safe_directory_names() {
        assert_eq!(name_of("shop-1"), "stratus-app-shop-1");
        assert_eq!(name_of("../x"), "stratus-app-___x");
    }
}
