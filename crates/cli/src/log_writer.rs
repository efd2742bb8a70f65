//! A log writer that batches lines in memory and writes them from a background thread every
//! few milliseconds, so that logging a line costs a copy, not a system call or a thread wake-up.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Flush at least this often.
const INTERVAL: Duration = Duration::from_millis(20);
/// Wake the writer early when this much is waiting.
const HIGH_WATER: usize = 256 * 1024;
/// Beyond this, writers wait for the flush (bounded memory under a log flood).
const LIMIT: usize = 8 * 1024 * 1024;

struct Shared {
    buf: Mutex<State>,
    wake: Condvar,
    drained: Condvar,
}

struct State {
    data: Vec<u8>,
    closed: bool,
}

/// The writer handed to the subscriber; cheap to clone.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Flushes everything and stops the thread when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the background thread writing to `out`.
pub fn batch_writer(mut out: impl Write + Send + 'static) -> (BatchWriter, FlushGuard) {
    let shared = Arc::new(Shared {
        buf: Mutex::new(State {
            data: Vec::with_capacity(64 * 1024),
            closed: false,
        }),
        wake: Condvar::new(),
        drained: Condvar::new(),
    });
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let mut spare = Vec::with_capacity(64 * 1024);
            loop {
                let closed = {
                    let mut st = s.buf.lock();
                    if st.data.is_empty() && !st.closed {
                        s.wake.wait_for(&mut st, INTERVAL);
                    }
                    std::mem::swap(&mut st.data, &mut spare);
                    s.drained.notify_all();
                    st.closed
                };
                if !spare.is_empty() {
                    let _ = out.write_all(&spare);
                    let _ = out.flush();
                    spare.clear();
                }
                if closed {
                    let st = s.buf.lock();
                    if st.data.is_empty() {
                        return;
                    }
                } else {
                    std::thread::sleep(INTERVAL);
                }
            }
        })
        .expect("cannot start the log writer thread");
    (
        BatchWriter {
            shared: shared.clone(),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    )
}

impl Write for BatchWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut st = self.shared.buf.lock();
        while st.data.len() > LIMIT && !st.closed {
            self.shared.wake.notify_one();
            self.shared.drained.wait_for(&mut st, INTERVAL);
        }
        st.data.extend_from_slice(bytes);
        if st.data.len() > HIGH_WATER {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.buf.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn everything_written_is_flushed_in_order() {
        let sink = Sink::default();
        let (w, guard) = batch_writer(sink.clone());
        let mut handles = Vec::new();
        for t in 0..4 {
            let mut w = w.clone();
            handles.push(std::thread::spawn(move || {
                for i in 0..10_000 {
                    w.write_all(format!("{t}:{i}\n").as_bytes()).unwrap();
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().clone()).unwrap();
        assert_eq!(text.lines().count(), 40_000);
        for t in 0..4 {
            let seq: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t}:")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert!(seq.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
