//! Starting, watching and stopping function processes (custom handlers, language workers).
//!
//! This is the only crate that creates processes. Each process is started in its own
//! process group with a cleared environment (only what the caller passes), dies with the
//! thread that started it (`PR_SET_PDEATHSIG`), and is stopped with its whole group. When the
//! process's environment asks for it (`isolation`), function processes also start in
//! namespaces of their own, inside the app's control group (`cgroup`), as the app's user.

pub mod cgroup;
pub mod isolation;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Everything needed to start one process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// The complete environment of the process; nothing is inherited.
    pub env: Vec<(OsString, OsString)>,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives the process's output, one line at a time (without the line ending).
pub type LineSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot wait for process {pid}: {source}")]
    Wait { pid: u32, source: std::io::Error },
}

/// A running process. Dropping it kills its whole process group.
#[derive(Debug)]
pub struct Process {
    child: tokio::process::Child,
    pid: u32,
    exited: Option<ExitStatus>,
    /// The app's control group and its OOM kill count when the process started.
    group: Option<MemoryWatch>,
}

/// Tells whether the kernel killed an app's process for its memory limit since the process
/// started: the app's control group and the group's OOM kill count at that moment.
#[derive(Debug, Clone, Copy)]
pub struct MemoryWatch {
    group: &'static cgroup::Group,
    before: u64,
}

impl PartialEq for MemoryWatch {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.group, other.group) && self.before == other.before
    }
}

impl Eq for MemoryWatch {}

impl MemoryWatch {
    /// Why the kernel killed a process of the group, when it did so for the app's memory
    /// limit since the watch began (the group's OOM kill count went up). The count is raised
    /// as the kill is decided, so it can be read as soon as the process's connections drop.
    pub fn killed_for_memory(&self) -> Option<String> {
        (self.group.oom_kills() > self.before).then(|| match self.group.memory_limit() {
            Some(limit) => format!(
                "killed by the kernel: the app's processes used more than their memory limit of {} MiB",
                limit >> 20
            ),
            None => "killed by the kernel: out of memory".to_string(),
        })
    }
}

/// Longest line forwarded to the sink; longer output is split.
const MAX_LINE: usize = 16 * 1024;

impl Process {
    /// Starts the process described by `spec`, sending its output lines to `sink`.
    pub fn spawn(spec: &ProcessSpec, sink: LineSink) -> Result<Process, Error> {
        #[allow(
            clippy::disallowed_methods,
            reason = "this crate is where processes are started"
        )]
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        sys::die_with_parent(&mut cmd);
        let spawn_error = |source| Error::Spawn {
            program: spec.program.display().to_string(),
            source,
        };
        let active = isolation::active();
        if let Some(a) = active {
            let prepared = isolation::Prepared::new(a, &spec.cwd).map_err(spawn_error)?;
            sys::isolate(&mut cmd, prepared);
        }
        let group = active
            .and_then(|a| a.group.as_ref())
            .map(|group| MemoryWatch {
                group,
                before: group.oom_kills(),
            });
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let pid = child.id().unwrap_or(0);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, Stream::Stdout, sink.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, Stream::Stderr, sink));
        }
        Ok(Process {
            child,
            pid,
            exited: None,
            group,
        })
    }

    /// Why the kernel killed the process, when it was for the app's memory limit (the
    /// group's OOM kill count went up since it started).
    pub fn killed_for_memory(&self) -> Option<String> {
        self.group?.killed_for_memory()
    }

    /// What tells, later and elsewhere, whether the process was killed for memory (none when
    /// the process has no control group).
    pub fn memory_watch(&self) -> Option<MemoryWatch> {
        self.group
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its exit status, if it has exited (without waiting).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = Some(status);
            sys::kill_group(self.pid, sys::SIGKILL);
        }
        self.exited
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> Result<ExitStatus, Error> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let status = self.child.wait().await.map_err(|source| Error::Wait {
            pid: self.pid,
            source,
        })?;
        self.exited = Some(status);
        // Children the process left behind in its group go with it.
        sys::kill_group(self.pid, sys::SIGKILL);
        Ok(status)
    }

    /// Asks the process group to stop (SIGTERM), then kills it after `grace`.
    pub async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        sys::kill_group(self.pid, sys::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.exited = Some(status);
                sys::kill_group(self.pid, sys::SIGKILL);
            }
            _ => {
                sys::kill_group(self.pid, sys::SIGKILL);
                self.exited = self.child.wait().await.ok();
            }
        }
        self.exited
    }

    /// Kills the process group at once.
    pub fn kill(&mut self) {
        sys::kill_group(self.pid, sys::SIGKILL);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exited.is_none() {
            sys::kill_group(self.pid, sys::SIGKILL);
        }
    }
}

async fn forward_lines(reader: impl AsyncRead + Unpin, stream: Stream, sink: LineSink) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let n = match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut line = &buf[..n];
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        sink(stream, &String::from_utf8_lossy(line));
    }
}

use tokio::io::AsyncReadExt as _;

#[allow(
    unsafe_code,
    reason = "process-group signals and the parent-death signal need libc"
)]
mod sys {
    pub use libc::{SIGKILL, SIGTERM};

    /// Sends `signal` to the process group led by `pid` (each process is its own group leader).
    pub fn kill_group(pid: u32, signal: i32) {
        let Ok(pid) = i32::try_from(pid) else { return };
        if pid <= 1 {
            return;
        }
        // SAFETY: kill(2) with a negative pid signals a process group; it has no memory effects.
        unsafe {
            libc::kill(-pid, signal);
        }
    }

    /// Starts the child isolated as `prepared` says (see `isolation`).
    pub fn isolate(cmd: &mut tokio::process::Command, prepared: crate::isolation::Prepared) {
        // SAFETY: `enter` runs between fork and exec and only makes system calls on data
        // prepared before the fork.
        unsafe {
            cmd.pre_exec(move || crate::isolation::enter(&prepared));
        }
    }

    /// Makes the child receive SIGKILL when the thread that started it exits.
    pub fn die_with_parent(cmd: &mut tokio::process::Command) {
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // async-signal-safe functions (prctl, getppid).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn spec(script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![("ONLY".into(), "this".into())],
        }
    }

    #[tokio::test]
    async fn lines_and_environment() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        let sink: LineSink =
            Arc::new(move |s, line| l2.lock().unwrap().push((s, line.to_string())));
        let mut p = Process::spawn(
            &spec("echo \"$ONLY ${HOME:-nohome}\"; echo oops >&2; exit 3"),
            sink,
        )
        .unwrap();
        let status = p.wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let lines = lines.lock().unwrap().clone();
        assert!(
            lines.contains(&(Stream::Stdout, "this nohome".to_string())),
            "{lines:?}"
        );
        assert!(
            lines.contains(&(Stream::Stderr, "oops".to_string())),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn terminate_kills_the_whole_group() {
        let sink: LineSink = Arc::new(|_, _| {});
        // The shell ignores TERM and leaves a grandchild behind.
        let mut p = Process::spawn(
            &spec("trap '' TERM; sleep 30 & echo $! > /dev/null; sleep 30"),
            sink,
        )
        .unwrap();
        let pgid = p.pid() as i32;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = p.terminate(Duration::from_millis(200)).await;
        assert!(status.is_some());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!group_alive(pgid), "process group {pgid} survived");
    }

    /// Whether any live (non-zombie) process is in group `pgid`.
    fn group_alive(pgid: i32) -> bool {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return false;
        };
        dir.flatten().any(|e| {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                return false;
            };
            // Fields after the command name: state, ppid, pgrp, ...
            let Some(after) = stat.rsplit_once(") ").map(|(_, a)| a) else {
                return false;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
    }
}
