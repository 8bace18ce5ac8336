//! Log output: one line per event, text or JSON, filtered by `RUST_LOG` (default `info`).
//! Bearer tokens and bodies are never logged: no code path records them.
//!
//! A data-plane worker keeps the lines its requests log and writes them in one go when it runs
//! out of work, or when they reach [`BATCH`] bytes: one `write` per batch, not one per request
//! (at the default level every request logs a line, and its own `write` cost about 2 µs of a
//! request's 37 µs of CPU). Other threads write each line as it comes.

use std::cell::RefCell;
use std::io::{self, IsTerminal, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::settings::LogFormat;
use crate::proxy::workers::ThreadLogs;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .with_ansi(colour())
        // A log line that cannot be written (a pipe whose reader went away) is dropped: the
        // default reports it with eprintln!, which panics on that same broken stderr and
        // takes the request or the shutdown with it.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// Colour codes only for a person at a terminal: a file, a pipe or a log collector gets plain
/// text, and `NO_COLOR` (no-color.org) turns them off at a terminal too.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// How much a worker keeps before it writes, whether or not it has run out of work: about 60
/// request lines, so a worker that never waits still writes often and holds little.
const BATCH: usize = 16 * 1024;

thread_local! {
    /// The lines this thread has logged and not yet written; `None` on a thread that writes
    /// each line as it comes.
    static KEPT: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// How the data-plane workers write their log lines (see the module's comment).
pub const WORKER_LOGS: ThreadLogs = ThreadLogs {
    keep: keep_lines,
    write: write_kept,
};

/// From now on this thread keeps its lines until [`write_kept`].
fn keep_lines() {
    KEPT.set(Some(Vec::with_capacity(BATCH)));
}

/// Writes the lines this thread kept.
fn write_kept() {
    let _ = KEPT.try_with(|kept| {
        if let Some(lines) = kept.borrow_mut().as_mut().filter(|l| !l.is_empty()) {
            // As for a single line: one that cannot be written is dropped.
            let _ = io::stderr().write_all(lines);
            lines.clear();
        }
    });
}

/// Standard error, through the thread's kept lines where it keeps them.
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        Stderr
    }
}

impl Write for Stderr {
    /// The subscriber hands over each event's line whole, in one call.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        // `try_with`: a line logged while the thread's locals are being torn down is written
        // as it comes, where `with` would panic.
        let kept = KEPT
            .try_with(|kept| {
                let mut kept = kept.borrow_mut();
                let lines = kept.as_mut()?;
                lines.extend_from_slice(line);
                Some(lines.len())
            })
            .ok()
            .flatten();
        match kept {
            Some(held) if held >= BATCH => write_kept(),
            Some(_) => {}
            None => io::stderr().write_all(line)?,
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_keeps_its_lines_until_told_or_full() {
        std::thread::spawn(|| {
            keep_lines();
            Stderr.write_all(b"one\n").unwrap();
            Stderr.write_all(b"two\n").unwrap();
            let held = || KEPT.with_borrow(|k| k.as_ref().map_or(0, Vec::len));
            assert_eq!(held(), 8);
            write_kept();
            assert_eq!(held(), 0);
            let line = [b'x'; 1000];
            let fit = BATCH / line.len();
            for _ in 0..fit {
                Stderr.write_all(&line).unwrap();
            }
            assert_eq!(held(), fit * line.len(), "short of a batch, all is kept");
            Stderr.write_all(&line).unwrap();
            assert_eq!(held(), 0, "a full batch is written at once");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn other_threads_keep_nothing() {
        Stderr.write_all(b"a line written as it comes\n").unwrap();
        assert!(KEPT.with_borrow(Option::is_none));
    }
}
