//! `scenequeue-bench`: measurements that belong in docs/BENCHMARKS.md, never in tests.
//!
//! `sessions` runs the worker's inference path (the same runners, recovery and telemetry a worker uses) over
//! a deterministic plan of scenes packed into jobs, once per session policy, and reports per policy:
//! out-of-memory count, GPU memory at baseline / peak / after the last job, whether memory went back to the
//! baseline after every job, throughput (times real time), session creation time and its share of job time.
//!
//! `adapters` measures each model's real-time factor with its ONNX Runtime / DSP split.
//! `plan` measures plan + persist + publish throughput for a synthetic backlog on the real services.
//! `transcription` measures what enhancement does to a recogniser's word error rate, per chain of settings.
//! `reading` measures a worker's reading of its scenes per container (WAV, FLAC, MP3, AAC/MP4, Matroska) for
//! long recordings with hundreds of scenes, as a ratio to WAV.
//! `ingest` measures a submission's decoding and hashing of a tree of recordings, and the bytes it reads.
//! `operator-view` measures the dashboard, the JSON API and /metrics over a seeded backlog of a million scenes.
//! `farm` measures the scene completions per second one PostgreSQL and one RabbitMQ carry, with N model-free
//! workers running the worker's own code.

mod adapters;
mod corpus;
mod farm;
mod ingest;
mod operator_view;
mod plan;
mod queues;
mod reading;
mod sessions;
mod statements;
mod synth;
mod transcription;

use clap::{Parser, Subcommand};

/// Where ONNX Runtime and the models are: the worker's own flag group.
pub use scenequeue_worker::ModelFiles;

#[derive(Parser)]
#[command(name = "scenequeue-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Sessions(sessions::Args),
    /// Real-time factor of each model adapter, with the ONNX Runtime / DSP split, against the official runtime.
    Adapters(adapters::Args),
    /// Plan + persist + publish throughput for a synthetic backlog, on the real services.
    Plan(plan::Args),
    /// Word error rate of a recogniser on clean, noisy and enhanced speech, per noise, SNR and chain.
    Transcription(transcription::Args),
    /// A worker's reading of its scenes per container, for long recordings, as a ratio to WAV.
    Reading(reading::Args),
    /// A submission's decoding and hashing of a tree of recordings: time and bytes read per byte of input.
    Ingest(ingest::Args),
    /// Latency of the dashboard, the JSON API and /metrics at backlog scale, and one dashboard's database load.
    OperatorView(operator_view::Args),
    /// Scene completions per second that one PostgreSQL and one RabbitMQ carry, with model-free workers.
    Farm(farm::Args),
    /// A classic queue against a quorum queue: throughput, and what each gives while its node is down.
    Queues(queues::Args),
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // `farm --statements` counts the database statements it runs; its logger does that beside logging.
    let statements = match &command {
        Command::Farm(args) if args.counts_statements() => Some(statements::Statements::install()),
        _ => None,
    };
    scenequeue_core::telemetry::init();
    match command {
        Command::Sessions(args) => sessions::run(&args),
        Command::Adapters(args) => adapters::run(&args),
        Command::Transcription(args) => transcription::run(&args),
        Command::Plan(args) => tokio::runtime::Runtime::new()?.block_on(plan::run(&args)),
        Command::Reading(args) => reading::run(&args),
        Command::Ingest(args) => ingest::run(&args),
        Command::OperatorView(args) => tokio::runtime::Runtime::new()?.block_on(operator_view::run(&args)),
        Command::Farm(args) => tokio::runtime::Runtime::new()?.block_on(farm::run(&args, statements)),
        Command::Queues(args) => tokio::runtime::Runtime::new()?.block_on(queues::run(&args)),
    }
}
