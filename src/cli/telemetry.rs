//! Log output: one line per event, text or JSON, filtered by `RUST_LOG` (default `info`).
//! Bearer tokens and bodies are never logged: no code path records them.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::settings::LogFormat;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
