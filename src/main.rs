//! `scenequeue`: the one command a user runs. Subcommands map onto the architecture: `submit` and `scheduler`
//! drive the scheduler crate, `worker` the worker crate, `status` reads Postgres, `demo` runs the whole path on
//! generated sample audio.

mod args;
mod commands;
mod config;

use clap::{CommandFactory, FromArgMatches};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

/// How long, at exit, blocking work still running (a decode a stopped submission left behind) may delay it.
const EXIT_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    scenequeue_core::telemetry::init();
    let (cli, file, flags) = match parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if matches!(cli.command, args::Command::Config) {
        print!("{}", commands::config::render(&args::Cli::command(), &file, &flags));
        return ExitCode::SUCCESS;
    }
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

/// The command line with the configuration file's values as the flags' defaults; the file's settings; the
/// settings given as flags. A bad flag exits here with clap's message; a bad file is an error naming it.
fn parse(args: Vec<OsString>) -> Result<(args::Cli, config::FileSettings, BTreeMap<String, String>), String> {
    let file = match config::config_path(&args) {
        Some(path) => config::load(&path, &args::Cli::command())?,
        None => config::FileSettings::default(),
    };
    let matches = config::apply(args::Cli::command(), &file).get_matches_from(args);
    let cli = args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let flags = config::given_flags(&args::Cli::command(), &matches);
    Ok((cli, file, flags))
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
