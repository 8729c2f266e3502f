//! `scenequeue`: the one command a user runs. Subcommands map onto the architecture: `submit` and `scheduler`
//! drive the scheduler crate, `worker` the worker crate, `status` reads Postgres, `demo` runs the whole path on
//! generated sample audio.

mod args;
mod commands;

use clap::Parser;
use std::process::ExitCode;
use std::time::Duration;

/// How long, at exit, blocking work still running (a decode a stopped submission left behind) may delay it.
const EXIT_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    scenequeue_core::telemetry::init();
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli));
    runtime.shutdown_timeout(EXIT_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the message already contains.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
