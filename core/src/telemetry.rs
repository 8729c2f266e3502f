//! Structured logs to stderr, filtered by `RUST_LOG` (default `info`).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// What the logs show: `RUST_LOG`, else information and up, the database driver's warnings (slow statements).
pub fn filter() -> EnvFilter {
    // lapin logs, at error level, failures it also returns to us (and a normal close as an error): off.
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin=off"))
}

/// Installs the global stderr logger, filtered by `RUST_LOG`; a second call keeps the first logger.
pub fn init() {
    // A second initialisation (tests in one process) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
