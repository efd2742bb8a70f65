//! The custom handler's process: start it, wait until it answers HTTP, restart it with
//! back-off when it exits, stop it with the host.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stratus_sandbox::{LineSink, MemoryWatch, Process, ProcessSpec, Stream};
use tokio::sync::{mpsc, watch};

pub use super::super::supervision::Control;
use super::super::supervision::backoff;
use tokio::time::Instant;

/// What callers can see of the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not started yet, or starting after a restart.
    Starting,
    /// Answering HTTP on `port`; `generation` changes with every start. `memory` tells
    /// whether the kernel killed it for the app's memory limit.
    Ready {
        generation: u64,
        port: u16,
        memory: Option<MemoryWatch>,
    },
    /// Exited; waiting before the next start.
    Down(String),
    /// Stopped for good.
    Stopped,
}

/// The supervisor's side of the state: the watch, and besides it the ready handler's
/// generation and port in one word, which every request reads without the watch's lock (a
/// lock word shared by all threads).
#[derive(Debug)]
pub struct StateTx {
    tx: watch::Sender<State>,
    ready: Arc<AtomicU64>,
}

/// Marks a word that holds a ready handler.
const READY_BIT: u64 = 1 << 63;

impl StateTx {
    pub fn new(tx: watch::Sender<State>) -> (StateTx, Arc<AtomicU64>) {
        let ready = Arc::new(AtomicU64::new(0));
        (
            StateTx {
                tx,
                ready: ready.clone(),
            },
            ready,
        )
    }

    pub fn send(&self, state: State) -> Result<(), watch::error::SendError<State>> {
        let word = match &state {
            State::Ready {
                generation, port, ..
            } => READY_BIT | (generation & ((1 << 47) - 1)) << 16 | u64::from(*port),
            _ => 0,
        };
        self.ready.store(word, Ordering::Release);
        self.tx.send(state)
    }
}

/// The generation and port a word from `StateTx` holds, if the handler was ready.
pub fn ready_from_word(word: u64) -> Option<(u64, u16)> {
    (word & READY_BIT != 0).then_some(((word & !READY_BIT) >> 16, (word & 0xffff) as u16))
}

/// Everything needed to start the handler, except the port (chosen at each start).
#[derive(Debug, Clone)]
pub struct Launch {
    pub spec: ProcessSpec,
    /// The `%...%`-expanded arguments are fixed; the port goes in the environment.
    pub initialization_timeout: Duration,
    pub app_root: String,
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Polls `port` until something answers HTTP there: a refused connection means "not yet";
/// any response (or a non-connection error) means ready, as the Azure host decides.
async fn wait_ready(port: u16, deadline: Instant, process: &mut Process) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if Instant::now() >= deadline {
            return Err(
                "the handler did not answer HTTP on its port within the initialization timeout"
                    .into(),
            );
        }
        tokio::select! {
            status = process.wait() => {
                return Err(match status {
                    Ok(s) => format!("the handler exited during start-up ({s})"),
                    Err(e) => e.to_string(),
                });
            }
            connected = tokio::net::TcpStream::connect(addr) => {
                if let Ok(stream) = connected {
                    let _ = stream.set_nodelay(true);
                    if probe(stream).await {
                        return Ok(());
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sends `GET /` on an open connection; true unless the connection itself failed.
async fn probe(stream: tokio::net::TcpStream) -> bool {
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    let Ok((mut send, conn)) =
        hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(stream)).await
    else {
        return false;
    };
    let driver = tokio::spawn(conn);
    let req = hyper::Request::get("/")
        .header("host", "127.0.0.1")
        .header("connection", "close")
        .body(Empty::new());
    let Ok(req) = req else { return true };
    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
        let resp = send.send_request(req).await?;
        // Read the answer to its end so the connection closes cleanly on both sides.
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
        Ok::<(), hyper::Error>(())
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_millis(100), driver).await;
    match outcome {
        Ok(Ok(())) | Err(_) => true,
        Ok(Err(e)) => !(e.is_closed() || e.is_incomplete_message() || e.is_canceled()),
    }
}

/// Runs the handler until told to stop.
pub async fn supervise(
    launch: Launch,
    state: StateTx,
    mut control: mpsc::UnboundedReceiver<Control>,
    sink: LineSink,
) {
    let mut generation = 0u64;
    let mut failures = 0u32;
    loop {
        generation += 1;
        let port = match free_port() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot find a free port for the custom handler");
                let _ = state.send(State::Down(e.to_string()));
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
                continue;
            }
        };
        let worker_id = uuid::Uuid::new_v4().to_string();
        let mut spec = launch.spec.clone();
        for (k, v) in [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            ("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", worker_id.clone()),
            ("FUNCTIONS_HTTPWORKER_PORT", port.to_string()),
            ("FUNCTIONS_HTTPWORKER_ID", worker_id.clone()),
            ("FUNCTIONS_APP_ROOT_PATH", launch.app_root.clone()),
        ] {
            spec.env.retain(|(name, _)| name != k);
            spec.env.push((k.into(), v.into()));
        }
        let _ = state.send(State::Starting);
        let started = Instant::now();
        let mut process = match Process::spawn(&spec, sink.clone()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the custom handler");
                let _ = state.send(State::Down(e.to_string()));
                if wait_or_stop(&mut control, &state, backoff(failures)).await {
                    return;
                }
                failures += 1;
                continue;
            }
        };
        tracing::info!(
            pid = process.pid(),
            port,
            "starting the custom handler: {}",
            spec.program.display()
        );
        let deadline = started + launch.initialization_timeout;
        let ready = loop {
            tokio::select! {
                r = wait_ready(port, deadline, &mut process) => break r,
                c = control.recv() => match c {
                    // A timeout of a request for an earlier process: this one is new.
                    Some(Control::Restart { .. }) => {}
                    other => {
                        stop_requested(other, &mut process, &state).await;
                        return;
                    }
                },
            }
        };
        match ready {
            Ok(()) => {
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Worker process started and initialized."
                );
                let _ = state.send(State::Ready {
                    generation,
                    port,
                    memory: process.memory_watch(),
                });
            }
            Err(reason) => {
                tracing::error!(reason = %reason, "Failed to start http worker process. workerId:{worker_id}");
                process.terminate(Duration::from_secs(2)).await;
                let _ = state.send(State::Down(reason));
                if wait_or_stop(&mut control, &state, backoff(failures)).await {
                    return;
                }
                failures += 1;
                continue;
            }
        }

        // Serving: wait for the process to exit, a restart of this process, or the stop.
        loop {
            tokio::select! {
              status = process.wait() => {
                  let reason = match status {
                      Ok(s) => match process.killed_for_memory() {
                          Some(why) => format!("the custom handler exited ({s}): {why}"),
                          None => format!("the custom handler exited ({s})"),
                      },
                      Err(e) => e.to_string(),
                  };
                  tracing::error!(pid = process.pid(), "{reason}; restarting it");
                  let _ = state.send(State::Down(reason));
                  if started.elapsed() > Duration::from_secs(60) {
                      failures = 0;
                  }
                  if wait_or_stop(&mut control, &state, backoff(failures)).await {
                      return;
                  }
                  failures += 1;
                  break;
              }
              c = control.recv() => match c {
                  Some(Control::Restart { generation: g, .. }) if g != generation => {}
                  other => {
                      if stop_requested(other, &mut process, &state).await {
                          return;
                      }
                      failures = 0;
                      break;
                  }
              },
            }
        }
    }
}

/// Handles a control message while a process runs: true when the supervisor must end.
async fn stop_requested(c: Option<Control>, process: &mut Process, state: &StateTx) -> bool {
    match c {
        Some(Control::Restart { reason, .. }) => {
            tracing::warn!("{reason}");
            let _ = state.send(State::Down(reason));
            process.terminate(Duration::from_secs(2)).await;
            false
        }
        Some(Control::Stop(ack)) => {
            process.terminate(Duration::from_secs(5)).await;
            let _ = state.send(State::Stopped);
            let _ = ack.send(());
            true
        }
        None => {
            process.terminate(Duration::from_secs(5)).await;
            let _ = state.send(State::Stopped);
            true
        }
    }
}

/// Sleeps `delay` unless a stop arrives first (then returns true). Restart requests while
/// down are ignored: a start is already coming.
async fn wait_or_stop(
    control: &mut mpsc::UnboundedReceiver<Control>,
    state: &StateTx,
    delay: Duration,
) -> bool {
    let until = Instant::now() + delay;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => return false,
            c = control.recv() => match c {
                Some(Control::Restart { .. }) => {}
                Some(Control::Stop(ack)) => {
                    let _ = state.send(State::Stopped);
                    let _ = ack.send(());
                    return true;
                }
                None => {
                    let _ = state.send(State::Stopped);
                    return true;
                }
            },
        }
    }
}

/// Routes the handler's output to the logs: stdout at Information, stderr at Error (Warning
/// when the line mentions "warn"), category `Host.Function.Console`.
pub fn console_sink() -> LineSink {
    Arc::new(|stream, line| match stream {
        Stream::Stdout => {
            tracing::info!(target: "stratus::function", category = "Host.Function.Console", "{line}")
        }
        Stream::Stderr if line.to_ascii_lowercase().contains("warn") => {
            tracing::warn!(target: "stratus::function", category = "Host.Function.Console", "{line}")
        }
        Stream::Stderr => {
            tracing::error!(target: "stratus::function", category = "Host.Function.Console", "{line}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_word_follows_the_state() {
        let (tx, rx) = watch::channel(State::Starting);
        let (tx, word) = StateTx::new(tx);
        assert_eq!(ready_from_word(word.load(Ordering::Acquire)), None);
        for (generation, port) in [(1, 1), (7, 65535), ((1 << 47) - 1, 8080)] {
            tx.send(State::Ready {
                generation,
                port,
                memory: None,
            })
            .unwrap();
            assert_eq!(
                ready_from_word(word.load(Ordering::Acquire)),
                Some((generation, port))
            );
        }
        tx.send(State::Down("gone".into())).unwrap();
        assert_eq!(ready_from_word(word.load(Ordering::Acquire)), None);
        assert_eq!(*rx.borrow(), State::Down("gone".into()));
    }
}
