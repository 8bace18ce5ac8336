//! The data plane's threads: one single-threaded tokio runtime per core, each serving whole
//! connections (the TLS handshake, every request, and the backend connections those requests
//! use, from its own pool). A request then never crosses threads: on a work-stealing runtime
//! the consumer's connection, the request and the pooled backend connection were woken on
//! different threads, and the wake-ups, locks and cache misses between them measured about a
//! third of ssp-sim's requests/s on two cores.
//!
//! The listener accepts on the main runtime and hands each admitted connection to the next
//! worker in turn.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// How a worker thread writes its log lines: `keep` as it starts (it keeps them), `write`
/// before it waits for work and as it ends. The logging setup (`cli::telemetry`) says what
/// they do; a worker only says when.
#[derive(Clone, Copy)]
pub struct ThreadLogs {
    /// Runs on the thread as it starts.
    pub keep: fn(),
    /// Runs on the thread before it waits for work, and as it ends.
    pub write: fn(),
}

/// Where connections are served: on worker threads, or (with none) on the caller's runtime.
pub struct Workers {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

struct Worker {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Workers {
    /// `count` worker threads, each with its own runtime.
    pub fn start(count: usize, logs: ThreadLogs) -> io::Result<Self> {
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = Builder::new_current_thread()
                .enable_all()
                .on_thread_park(logs.write)
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("ssp-sim-worker-{index}"))
                .spawn(move || {
                    (logs.keep)();
                    // The runtime runs its tasks while it waits to be told to stop.
                    let _ = runtime.block_on(stopped);
                    // Dropped first: the destructors of its last tasks may still log.
                    drop(runtime);
                    (logs.write)();
                })?;
            workers.push(Worker {
                handle,
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(Self {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// One worker per core the process may use.
    pub fn per_core(logs: ThreadLogs) -> io::Result<Self> {
        Self::start(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            logs,
        )
    }

    /// No worker threads: connections are served on the runtime that accepts them, a
    /// work-stealing one (the admin listener; `--workers 0`).
    pub fn none() -> Self {
        Self {
            workers: Vec::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// How many backend pools the gateway keeps: one per worker, at least one.
    pub fn pools(&self) -> usize {
        self.workers.len().max(1)
    }

    /// Runs the future `serve(index)` makes on the next worker in turn (index 0 and the
    /// caller's runtime without workers). `serve` is called on that worker, so what it
    /// registers (a socket, a timer) belongs to the worker's runtime.
    pub fn spawn<F, Fut>(&self, serve: F)
    where
        F: FnOnce(usize) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.workers.is_empty() {
            tokio::spawn(serve(0));
            return;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        self.workers[index]
            .handle
            .spawn(async move { serve(index).await });
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            if let Some(stop) = worker.stop.take() {
                let _ = stop.send(());
            }
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}
