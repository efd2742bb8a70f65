//! Isolation of one app's function processes on Linux, set for the whole process by its
//! environment (a worker sets it for each app's host): each process starts in new mount,
//! PID, IPC and UTS namespaces, inside the app's control group, with the worker's data
//! directory covered by an empty file system except the app's own directory (bound back
//! read-only), a private `/tmp`, its own `/proc`, and, when asked, as the app's own user.
//!
//! The chain is: the started process (outside, in the caller's PID namespace; it waits and
//! passes the exit status on) → PID 1 of the new namespace (sets the mounts up, then reaps
//! whatever is orphaned until the function process exits, taking everything left in the
//! namespace with it) → the function process (PID 2). All of it runs between fork and exec,
//! so it only makes system calls (nothing allocates there).

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::cgroup::{Group, Limits};

/// Environment variables that describe the isolation (read once, at the first start).
pub const ENV_ON: &str = "STRATUS_SANDBOX";
pub const ENV_APP: &str = "STRATUS_SANDBOX_APP";
pub const ENV_ROOT: &str = "STRATUS_SANDBOX_ROOT";
pub const ENV_HIDE: &str = "STRATUS_SANDBOX_HIDE";
pub const ENV_UID: &str = "STRATUS_SANDBOX_UID";
pub const ENV_MEMORY_MB: &str = "STRATUS_SANDBOX_MEMORY_MB";
pub const ENV_CPU_MILLIS: &str = "STRATUS_SANDBOX_CPU_MILLIS";
pub const ENV_PIDS: &str = "STRATUS_SANDBOX_PIDS";
pub const ENV_TMP_MB: &str = "STRATUS_SANDBOX_TMP_MB";
pub const ENV_USERNS: &str = "STRATUS_SANDBOX_USERNS";

/// How an app's processes are isolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    pub app: String,
    /// The app's directory: the one part of `hide` it sees, read-only.
    pub root: Option<PathBuf>,
    /// Directories covered by an empty file system.
    pub hide: Vec<PathBuf>,
    /// The user (and group) the function processes run as.
    pub uid: Option<u32>,
    /// Make the namespaces inside a user namespace of their own (for a worker that is not
    /// root): the processes are its root, mapped to the worker's user, with no capabilities.
    pub user_namespace: bool,
    pub limits: Limits,
    /// Size of the private `/tmp`.
    pub tmp_mb: u64,
}

impl Isolation {
    /// The isolation the environment describes, if it asks for one.
    pub fn from_env() -> Option<Isolation> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if var(ENV_ON).as_deref() != Some("on") {
            return None;
        }
        let num = |k: &str| var(k).and_then(|v| v.parse::<u64>().ok());
        Some(Isolation {
            app: var(ENV_APP).unwrap_or_else(|| "app".into()),
            root: var(ENV_ROOT).map(PathBuf::from),
            hide: var(ENV_HIDE)
                .map(|v| std::env::split_paths(&v).collect())
                .unwrap_or_default(),
            uid: num(ENV_UID).and_then(|u| u32::try_from(u).ok()),
            limits: Limits {
                memory_bytes: num(ENV_MEMORY_MB).map(|m| m << 20),
                cpu_millis: num(ENV_CPU_MILLIS),
                pids: num(ENV_PIDS),
            },
            tmp_mb: num(ENV_TMP_MB).unwrap_or(256),
            user_namespace: var(ENV_USERNS).as_deref() == Some("1"),
        })
    }

    /// The environment that asks for this isolation.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (ENV_ON.to_string(), "on".to_string()),
            (ENV_APP.to_string(), self.app.clone()),
            (ENV_TMP_MB.to_string(), self.tmp_mb.to_string()),
        ];
        if let Some(r) = &self.root {
            env.push((ENV_ROOT.into(), r.display().to_string()));
        }
        if !self.hide.is_empty()
            && let Ok(joined) = std::env::join_paths(&self.hide)
        {
            env.push((ENV_HIDE.into(), joined.to_string_lossy().into_owned()));
        }
        if let Some(u) = self.uid {
            env.push((ENV_UID.into(), u.to_string()));
        }
        if self.user_namespace {
            env.push((ENV_USERNS.into(), "1".into()));
        }
        let l = self.limits;
        for (k, v) in [
            (ENV_MEMORY_MB, l.memory_bytes.map(|b| b >> 20)),
            (ENV_CPU_MILLIS, l.cpu_millis),
            (ENV_PIDS, l.pids),
        ] {
            if let Some(v) = v {
                env.push((k.into(), v.to_string()));
            }
        }
        env
    }
}

/// The process-wide isolation and the app's group (made once).
pub(crate) struct Active {
    pub isolation: Isolation,
    pub group: Option<Group>,
}

/// This process's isolation, if its environment asks for one. A control group that cannot
/// be made is said once and the processes start without it.
pub(crate) fn active() -> Option<&'static Active> {
    static ACTIVE: OnceLock<Option<Active>> = OnceLock::new();
    ACTIVE
        .get_or_init(|| {
            let isolation = Isolation::from_env()?;
            let group = match Group::make(&isolation.app, isolation.limits) {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::warn!(
                        "function processes run without a control group (no limits): {e}"
                    );
                    None
                }
            };
            Some(Active { isolation, group })
        })
        .as_ref()
}

fn c(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other(format!("{} holds a NUL byte", path.display())))
}

/// Everything the child needs, made before the fork.
pub(crate) struct Prepared {
    cgroup_files: Vec<OwnedFd>,
    hide: Vec<CString>,
    /// Directories to make inside the covering file systems, outermost first.
    mkdirs: Vec<CString>,
    /// The app's directory (copied as a detached mount before anything covers it, attached
    /// again last).
    root: Option<CString>,
    tmp_options: CString,
    hostname: Vec<u8>,
    cwd: CString,
    uid: Option<u32>,
    /// The user and group maps (`0 <outer id> 1`) of a user namespace, when one is made.
    id_maps: Option<(Vec<u8>, Vec<u8>)>,
}

// Literal strings the child uses.
const TMPFS: &[u8] = b"tmpfs\0";
const PROC: &[u8] = b"proc\0";
const SLASH: &[u8] = b"/\0";
const TMP: &[u8] = b"/tmp\0";
const DEV_SHM: &[u8] = b"/dev/shm\0";
const PROC_DIR: &[u8] = b"/proc\0";
const HIDE_OPTIONS: &[u8] = b"mode=0755,size=1m\0";
const EMPTY: &[u8] = b"\0";
const SETGROUPS: &[u8] = b"/proc/self/setgroups\0";
const UID_MAP: &[u8] = b"/proc/self/uid_map\0";
const GID_MAP: &[u8] = b"/proc/self/gid_map\0";
// open_tree(2) and move_mount(2) flags (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

impl Prepared {
    pub(crate) fn new(active: &Active, cwd: &Path) -> std::io::Result<Prepared> {
        let iso = &active.isolation;
        let mut cgroup_files = Vec::new();
        if let Some(g) = &active.group {
            for f in g.procs_files() {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&f)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", f.display())))?;
                cgroup_files.push(OwnedFd::from(file));
            }
        }
        let mut mkdirs = Vec::new();
        let root = match &iso.root {
            None => None,
            Some(root) => {
                if !root.is_dir() {
                    return Err(std::io::Error::other(format!(
                        "{} is not a directory",
                        root.display()
                    )));
                }
                // Under a covered directory (or the private /tmp), the path to it is made
                // again: every ancestor, outermost first (existing ones are left alone).
                for a in root
                    .ancestors()
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .skip(1)
                {
                    mkdirs.push(c(a)?);
                }
                Some(c(root)?)
            }
        };
        Ok(Prepared {
            cgroup_files,
            hide: iso.hide.iter().map(|h| c(h)).collect::<Result<_, _>>()?,
            mkdirs,
            root,
            tmp_options: CString::new(format!("mode=1777,size={}m", iso.tmp_mb.max(1)))
                .expect("no NUL"),
            hostname: iso.app.as_bytes().iter().copied().take(64).collect(),
            cwd: c(cwd)?,
            uid: iso.uid,
            id_maps: iso.user_namespace.then(|| {
                #[allow(unsafe_code, reason = "getuid and getgid have no preconditions")]
                // SAFETY: they only read this process's credentials.
                let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
                (
                    format!("0 {uid} 1").into_bytes(),
                    format!("0 {gid} 1").into_bytes(),
                )
            }),
        })
    }
}

#[allow(
    unsafe_code,
    reason = "namespaces, mounts and credentials are system calls"
)]
mod child {
    use super::*;

    fn check(r: libc::c_int) -> std::io::Result<()> {
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn code_of(status: libc::c_int) -> libc::c_int {
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            127
        }
    }

    /// Closes every descriptor from 3 up (the spawner's error pipe among them, so that it
    /// sees the function process's exec, not these processes' lives).
    unsafe fn close_others() {
        // SAFETY: close_range only closes descriptors.
        unsafe {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        }
    }

    /// Waits for `pid` and leaves with its exit status (as a shell reports it).
    unsafe fn follow(pid: libc::pid_t) -> ! {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into our local.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r == pid {
                // SAFETY: _exit ends the process without running anything else.
                unsafe { libc::_exit(code_of(status)) }
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                // SAFETY: as above.
                unsafe { libc::_exit(127) }
            }
        }
    }

    /// PID 1's life: reap every child until the function process exits, then leave (the
    /// kernel kills what is left in the namespace).
    unsafe fn init(main: libc::pid_t) -> ! {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into our local.
            let r = unsafe { libc::waitpid(-1, &mut status, 0) };
            if r == main {
                // SAFETY: _exit ends the process.
                unsafe { libc::_exit(code_of(status)) }
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                // SAFETY: as above.
                unsafe { libc::_exit(127) }
            }
        }
    }

    /// Writes `data` to the file at `path` (NUL-terminated).
    unsafe fn write_file(path: &[u8], data: &[u8]) -> std::io::Result<()> {
        // SAFETY: open, write and close on a path and buffer made before the fork.
        unsafe {
            let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let r = libc::write(fd, data.as_ptr().cast(), data.len());
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if r < 0 {
                return Err(err);
            }
        }
        Ok(())
    }

    unsafe fn mount(
        source: *const libc::c_char,
        target: *const libc::c_char,
        fstype: *const libc::c_char,
        flags: libc::c_ulong,
        data: *const libc::c_char,
    ) -> std::io::Result<()> {
        // SAFETY: every pointer is a NUL-terminated string or null.
        check(unsafe { libc::mount(source, target, fstype, flags, data.cast()) })
    }

    /// Runs in the started process between fork and exec; returns (to exec) only in the
    /// function process.
    pub(crate) unsafe fn enter(p: &Prepared) -> std::io::Result<()> {
        let null = std::ptr::null::<libc::c_char>();
        for f in &p.cgroup_files {
            // SAFETY: writes two bytes from a static buffer.
            let r = unsafe { libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        let mut flags =
            libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
        if p.id_maps.is_some() {
            flags |= libc::CLONE_NEWUSER;
        }
        // SAFETY: unshare changes only this process's namespaces.
        check(unsafe { libc::unshare(flags) })?;
        if let Some((uid_map, gid_map)) = &p.id_maps {
            // Root of the new user namespace is the worker's user outside it.
            // SAFETY: writes of buffers made before the fork to this process's own maps.
            unsafe {
                write_file(SETGROUPS, b"deny")?;
                write_file(UID_MAP, uid_map)?;
                write_file(GID_MAP, gid_map)?;
            }
        }
        // SAFETY: fork in a single-threaded child; both sides only make system calls.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid > 0 {
            // Outside: the caller's TERM is for the function process (which gets it through
            // the process group), not for this one, which leaves when PID 1 does.
            // SAFETY: signal dispositions and descriptors of this process only.
            unsafe {
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                close_others();
                follow(pid)
            }
        }
        // PID 1 of the new namespace: gone when the process outside goes.
        // SAFETY: prctl on this process.
        check(unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            )
        })?;
        // SAFETY: the mounts below change only this new mount namespace.
        unsafe {
            mount(
                null,
                SLASH.as_ptr().cast(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                null,
            )?;
            // The app's directory, copied before anything covers it (a path opened in the
            // old namespace cannot be bound here; a detached copy made here can be attached).
            let tree = match &p.root {
                None => -1,
                Some(root) => {
                    let fd = libc::syscall(
                        libc::SYS_open_tree,
                        libc::AT_FDCWD,
                        root.as_ptr(),
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
                    );
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    fd as libc::c_int
                }
            };
            // A private /tmp first: what was under it (the app's directory too, maybe) is
            // covered; the app's directory is bound back last.
            for dir in [TMP, DEV_SHM] {
                let r = mount(
                    TMPFS.as_ptr().cast(),
                    dir.as_ptr().cast(),
                    TMPFS.as_ptr().cast(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    p.tmp_options.as_ptr(),
                );
                // (/dev/shm may not exist; /tmp must.)
                if r.is_err() && dir == TMP {
                    return r;
                }
            }
            let make_path = || -> std::io::Result<()> {
                for d in &p.mkdirs {
                    let r = libc::mkdir(d.as_ptr(), 0o755);
                    if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            };
            make_path()?;
            for h in &p.hide {
                let r = mount(
                    TMPFS.as_ptr().cast(),
                    h.as_ptr(),
                    TMPFS.as_ptr().cast(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    HIDE_OPTIONS.as_ptr().cast(),
                );
                // A directory under the private /tmp is gone already.
                if let Err(e) = r
                    && e.raw_os_error() != Some(libc::ENOENT)
                {
                    return Err(e);
                }
            }
            make_path()?;
            if let Some(target) = &p.root {
                check(libc::syscall(
                    libc::SYS_move_mount,
                    tree,
                    EMPTY.as_ptr(),
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                ) as libc::c_int)?;
                mount(
                    null,
                    target.as_ptr(),
                    null,
                    libc::MS_BIND
                        | libc::MS_REMOUNT
                        | libc::MS_RDONLY
                        | libc::MS_NOSUID
                        | libc::MS_NODEV,
                    null,
                )?;
            }
            mount(
                PROC.as_ptr().cast(),
                PROC_DIR.as_ptr().cast(),
                PROC.as_ptr().cast(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                null,
            )?;
            check(libc::sethostname(
                p.hostname.as_ptr().cast(),
                p.hostname.len(),
            ))?;
        }
        // SAFETY: as for the first fork.
        let main = unsafe { libc::fork() };
        if main < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if main > 0 {
            // SAFETY: descriptors of this process; then its reaping loop.
            unsafe {
                close_others();
                init(main)
            }
        }
        // The function process.
        if p.id_maps.is_some() {
            // Root of its user namespace, but with no capability left, none to gain at exec
            // (an empty bounding set) and no set-user-ID program honoured: it cannot undo the
            // mounts, and outside it is the worker's user.
            // SAFETY: capability and privilege controls of this process.
            unsafe {
                for cap in 0..64 {
                    libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
                }
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL,
                    0,
                    0,
                    0,
                );
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            }
        }
        // SAFETY: credential and directory changes of this process.
        unsafe {
            if let Some(uid) = p.uid {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(uid))?;
                check(libc::setuid(uid))?;
            }
            check(libc::chdir(p.cwd.as_ptr()))?;
        }
        Ok(())
    }
}

pub(crate) use child::enter;

/// What this machine lets a worker isolate, layer by layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// Mount, PID, IPC and UTS namespaces (and with them: hidden directories, a private
    /// `/tmp` and `/proc`, the whole process tree killed together).
    pub namespaces: Result<(), String>,
    /// Function processes as the app's own unprivileged user.
    pub app_users: Result<(), String>,
    /// Memory, CPU and process-count limits: the cgroup version used.
    pub cgroups: Result<u8, String>,
    /// The namespaces are made inside a user namespace (the worker is not root).
    pub user_namespace: bool,
}

impl Layers {
    /// Whether every layer is on.
    pub fn complete(&self) -> bool {
        self.namespaces.is_ok() && self.app_users.is_ok() && self.cgroups.is_ok()
    }

    /// One line per layer that is off, saying why.
    pub fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = &self.namespaces {
            out.push(format!("namespaces off: {e}"));
        }
        if let Err(e) = &self.app_users {
            out.push(format!("per-app users off: {e}"));
        }
        if let Err(e) = &self.cgroups {
            out.push(format!("resource limits off: {e}"));
        }
        out
    }
}

/// Finds out which layers this process can apply.
pub fn probe() -> Layers {
    #[allow(unsafe_code, reason = "geteuid has no preconditions")]
    // SAFETY: geteuid only reads the process's credentials.
    let root = unsafe { libc::geteuid() } == 0;
    let namespaces = if !Path::new("/proc/self/ns/pid").exists() {
        Err("the kernel has no PID namespaces".into())
    } else if root || user_namespaces_work() {
        Ok(())
    } else {
        Err("the worker is not root and the kernel does not let it make user namespaces".into())
    };
    let app_users = if root {
        Ok(())
    } else {
        Err("the worker is not root: function code runs as the worker's user (root of a user namespace of its own, without capabilities)".into())
    };
    let cgroups = match crate::cgroup::version() {
        None => Err("no cgroup hierarchy with memory and pids controllers".into()),
        Some(v) => match Group::make("probe", Limits::default()) {
            Ok(g) => {
                g.remove();
                Ok(v)
            }
            Err(e) => Err(format!("cgroup v{v} is not writable here ({e})")),
        },
    };
    Layers {
        user_namespace: !root && namespaces.is_ok(),
        namespaces,
        app_users,
        cgroups,
    }
}

/// Whether this process may make a user namespace with the others in it (tried in a child).
#[allow(unsafe_code, reason = "a fork whose child only unshares and exits")]
fn user_namespaces_work() -> bool {
    // SAFETY: the child makes one system call and leaves; the parent waits for it.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID;
            libc::_exit(if libc::unshare(flags) == 0 { 0 } else { 1 });
        }
        if pid < 0 {
            return false;
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0) == pid
            && libc::WIFEXITED(status)
            && libc::WEXITSTATUS(status) == 0
    }
}

/// A user id for `app`'s processes: stable, in a range that ordinary accounts do not use.
pub fn app_uid(app: &str) -> u32 {
    // FNV-1a: the same app gets the same id on every worker.
    let mut h: u32 = 0x811c_9dc5;
    for b in app.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    200_000 + h % 100_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_round_trips_through_the_environment() {
        let iso = Isolation {
            app: "shop".into(),
            root: Some("/data/apps/shop/abc".into()),
            hide: vec!["/data".into(), "/etc/stratus".into()],
            uid: Some(app_uid("shop")),
            limits: Limits {
                memory_bytes: Some(256 << 20),
                cpu_millis: Some(500),
                pids: Some(64),
            },
            tmp_mb: 64,
            user_namespace: false,
        };
        let env = iso.to_env();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get(ENV_MEMORY_MB).as_deref(), Some("256"));
        assert_eq!(get(ENV_HIDE).as_deref(), Some("/data:/etc/stratus"));
        assert!(app_uid("shop") >= 200_000 && app_uid("shop") < 300_000);
        assert_ne!(app_uid("shop"), app_uid("shoq"));
    }
}
