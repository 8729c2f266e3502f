//! Command-line flags; each has an environment variable and a default (see the README's configuration table).

use clap::{Args, Parser, Subcommand};
use scenequeue_audio::encode::OutputFormat;
use scenequeue_core::config::{DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, DEFAULT_QUEUE};
use scenequeue_core::ids::BatchId;
use scenequeue_core::options::Preset;
use scenequeue_worker::runtime::{ArenaExtend, ConvSearch, Device};
use scenequeue_worker::sessions::SessionPolicy;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "scenequeue", version, about = "Scene-by-scene speech enhancement for large audio backlogs")]
pub struct Cli {
    #[command(flatten)]
    pub services: ServiceArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Postgres connection URL.
    #[arg(long, global = true, env = "SCENEQUEUE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// RabbitMQ connection URL.
    #[arg(long, global = true, env = "SCENEQUEUE_AMQP_URL", default_value = DEFAULT_AMQP_URL)]
    pub amqp_url: String,
    /// Name of the job queue (its dead-letter queue is `<queue>.dead`).
    #[arg(long, global = true, env = "SCENEQUEUE_QUEUE", default_value = DEFAULT_QUEUE)]
    pub queue: String,
    /// Jobs the broker may hold queued; the rest wait in Postgres and are released by priority.
    #[arg(long, global = true, env = "SCENEQUEUE_MAX_QUEUED", default_value_t = scenequeue_core::dispatch::DEFAULT_MAX_QUEUED)]
    pub max_queued: i64,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Decode, cut and pack recordings into jobs and publish them; prints the batch id.
    Submit(SubmitArgs),
    /// Consume jobs and enhance their scenes until stopped (Ctrl-C / SIGTERM finish the current job first).
    Worker(WorkerArgs),
    /// Keep jobs moving: requeue jobs of vanished workers, release pending jobs by priority, bury dead-lettered ones.
    Scheduler(SchedulerArgs),
    /// Counts per state of batches, recordings, jobs and scenes, with the reasons for failures.
    Status {
        /// Only this batch.
        batch: Option<BatchId>,
    },
    /// Print a batch's scene list as JSON: every recording, its scenes' start and end in the source, their
    /// states and enhanced files (for downstream transcription).
    Scenes { batch: BatchId },
    /// Apply database migrations and declare the queues, then exit.
    Migrate,
    /// Generate noisy sample speech, run it through the whole system and show how much cleaner it got.
    Demo(DemoArgs),
    /// Serve one job's scenes for a worker with the `process` session policy (started by the worker itself).
    #[command(hide = true)]
    InferenceChild,
}

#[derive(Args, Debug, Clone)]
pub struct SplitArgs {
    /// Shortest scene, seconds (shorter ones merge with a neighbour).
    #[arg(long, env = "SCENEQUEUE_MIN_SCENE_S", default_value_t = 1.0)]
    pub min_scene_s: f64,
    /// Longest scene, seconds.
    #[arg(long, env = "SCENEQUEUE_MAX_SCENE_S", default_value_t = 30.0)]
    pub max_scene_s: f64,
    /// Shortest pause that separates scenes (pass one), seconds.
    #[arg(long, env = "SCENEQUEUE_MIN_SILENCE_S", default_value_t = 0.5)]
    pub min_silence_s: f64,
    /// Shortest pause at which a scene longer than the maximum is re-cut (pass two), seconds.
    #[arg(long, env = "SCENEQUEUE_SPLIT_SILENCE_S", default_value_t = 0.2)]
    pub split_silence_s: f64,
    /// Seconds of audio per job.
    #[arg(long, env = "SCENEQUEUE_JOB_SECONDS", default_value_t = 300.0)]
    pub job_seconds: f64,
    /// Pack by whole fixed windows of this many seconds (a scene costs its duration rounded up to windows).
    #[arg(long, env = "SCENEQUEUE_PACK_WINDOW_S")]
    pub pack_window_s: Option<f64>,
    /// Attempts per job before it is declared dead.
    #[arg(long, env = "SCENEQUEUE_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: i32,
}

#[derive(Args, Debug, Clone)]
pub struct SubmitArgs {
    /// Recordings or directories (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where enhanced scenes are written (must be reachable by the workers).
    #[arg(long, env = "SCENEQUEUE_OUTPUT_DIR", default_value = "out")]
    pub out: PathBuf,
    /// Model to enhance with (a directory under the workers' model dir).
    #[arg(long, env = "SCENEQUEUE_MODEL", default_value = "deepfilternet3")]
    pub model: String,
    /// Process recordings again even if already submitted for this model (they are skipped by default).
    #[arg(long)]
    pub again: bool,
    /// Batch priority: higher runs first (e.g. 10 urgent, 0 normal, -10 backlog).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i16,
    /// What finds speech for scene cuts: energy, or silero (the Silero VAD model, from the model dir).
    #[arg(long, env = "SCENEQUEUE_DETECTOR", default_value = "energy", value_parser = ["energy", "silero"])]
    pub detector: String,
    /// ONNX Runtime shared library (for --detector silero).
    #[arg(long, env = "SCENEQUEUE_ORT_LIBRARY", default_value = ".scenequeue/ort/libonnxruntime.so")]
    pub ort_library: PathBuf,
    /// Model directory (for --detector silero).
    #[arg(long, env = "SCENEQUEUE_MODEL_DIR", default_value = "models")]
    pub model_dir: PathBuf,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub enhance: EnhanceArgs,
}

/// Enhancement settings of one submission, stored on its batch; each one left out keeps the workers' default.
#[derive(Args, Debug, Clone, Default)]
pub struct EnhanceArgs {
    /// A tested set of the settings below: `transcription` (chosen by `scenequeue-bench transcription`, see
    /// docs/BENCHMARKS.md). Flags given with it override its values.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// At most this many dB of noise removed (DeepFilterNet's attenuation limit; any model): a more natural
    /// sound for listeners (it raised the WER in the transcription benchmark). Above 0; 100 or more: no limit.
    #[arg(long)]
    pub atten_lim_db: Option<f32>,
    /// DeepFilterNet's post-filter strength (beta, e.g. 0.02; 0: off). DeepFilterNet models only.
    #[arg(long)]
    pub post_filter_beta: Option<f32>,
    /// Rumble high-pass cut-off for this batch, Hz (0: off); default: the worker's (70 Hz).
    #[arg(long)]
    pub highpass_hz: Option<f32>,
    /// Normalise this batch's outputs to this loudness, LUFS (BS.1770); default: the worker's (off).
    #[arg(long, allow_negative_numbers = true)]
    pub loudness_lufs: Option<f32>,
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// ONNX Runtime shared library.
    #[arg(long, env = "SCENEQUEUE_ORT_LIBRARY", default_value = ".scenequeue/ort/libonnxruntime.so")]
    pub ort_library: PathBuf,
    /// Directory of model directories (each with manifest.toml).
    #[arg(long, env = "SCENEQUEUE_MODEL_DIR", default_value = "models")]
    pub model_dir: PathBuf,
    /// Model checked and loaded at start-up.
    #[arg(long, env = "SCENEQUEUE_MODEL", default_value = "deepfilternet3")]
    pub model: String,
    /// cpu, cuda or cuda:N.
    #[arg(long, env = "SCENEQUEUE_DEVICE", default_value = "cpu")]
    pub device: Device,
    /// ONNX Runtime intra-op threads.
    #[arg(long, env = "SCENEQUEUE_THREADS", default_value_t = 1)]
    pub threads: usize,
    /// per-job, every-N-jobs, held-above-MIB, shrink-each-run, process or persistent (docs/SESSIONS.md).
    #[arg(long, env = "SCENEQUEUE_SESSION_POLICY", default_value = "per-job")]
    pub session_policy: SessionPolicy,
    /// cuDNN convolution search: heuristic, exhaustive (only worth it with fixed shapes) or default.
    #[arg(long, env = "SCENEQUEUE_CUDNN_SEARCH", default_value = "heuristic")]
    pub cudnn_search: ConvSearch,
    /// CUDA arena growth: next-power-of-two or same-as-requested.
    #[arg(long, env = "SCENEQUEUE_CUDA_ARENA_EXTEND", default_value = "next-power-of-two")]
    pub cuda_arena_extend: ArenaExtend,
    /// Cap on the CUDA arena in MiB (also emulates a smaller card).
    #[arg(long, env = "SCENEQUEUE_GPU_MEM_LIMIT_MB")]
    pub gpu_mem_limit_mb: Option<u64>,
    /// Longest window, seconds, when a scene is retried in windows after running out of memory.
    #[arg(long, env = "SCENEQUEUE_OOM_WINDOW_S", default_value_t = 30.0)]
    pub oom_window_s: f64,
    /// After out-of-memory errors on the GPU, run the scene on the CPU rather than fail it.
    #[arg(long, env = "SCENEQUEUE_CPU_FALLBACK")]
    pub cpu_fallback: bool,
    /// Run scenes longer than this in windows of this length with 1 s crossfades (bounded memory); 0 keeps
    /// each model's own window (30 s for DeepFilterNet3, none for NSNet2).
    #[arg(long, env = "SCENEQUEUE_LONG_SCENE_WINDOW_S", default_value_t = 0.0)]
    pub long_scene_window_s: f64,
    /// Fixed-shape window batching: cut every scene into windows of this many seconds and run --window-batch
    /// of them (from consecutive scenes) per model call, so every call has the same shape (docs/SESSIONS.md).
    /// Off by default.
    #[arg(long, env = "SCENEQUEUE_FIXED_WINDOWS_S")]
    pub fixed_windows_s: Option<f64>,
    /// Overlap of consecutive fixed windows of a scene, seconds: the later window's warm-up, then a crossfade over
    /// its last quarter (at most half a window).
    #[arg(long, env = "SCENEQUEUE_WINDOW_OVERLAP_S", default_value_t = 2.0)]
    pub window_overlap_s: f64,
    /// Fixed windows per model call (at most 320 s of audio per call in all).
    #[arg(long, env = "SCENEQUEUE_WINDOW_BATCH", default_value_t = 8)]
    pub window_batch: usize,
    /// Output files: wav (16-bit PCM), wav-float (32-bit float) or flac (16-bit, lossless).
    #[arg(long, env = "SCENEQUEUE_OUTPUT_FORMAT", default_value = "wav")]
    pub output_format: OutputFormat,
    /// Rumble high-pass cut-off of every output, Hz (0: off).
    #[arg(long, env = "SCENEQUEUE_HIGHPASS_HZ", default_value_t = 70.0)]
    pub highpass_hz: f32,
    /// Normalise every output to this loudness, LUFS (BS.1770); off by default.
    #[arg(long, env = "SCENEQUEUE_LOUDNESS_LUFS", allow_negative_numbers = true)]
    pub loudness_lufs: Option<f32>,
    /// Peak ceiling, dBFS: a scene that would pass it is scaled down as a whole.
    #[arg(long, env = "SCENEQUEUE_PEAK_CEILING_DBFS", default_value_t = -1.0, allow_negative_numbers = true)]
    pub peak_ceiling_dbfs: f32,
    /// Job lease, seconds (renewed every third of it while the job runs).
    #[arg(long, env = "SCENEQUEUE_LEASE_S", default_value_t = 600)]
    pub lease_s: u64,
    /// Exit after this many jobs.
    #[arg(long)]
    pub max_jobs: Option<u64>,
    /// Exit as soon as the queue is empty instead of waiting for more jobs.
    #[arg(long)]
    pub drain: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SchedulerArgs {
    /// Seconds between two passes of the reaper.
    #[arg(long, env = "SCENEQUEUE_REAP_INTERVAL_S", default_value_t = 30)]
    pub interval_s: u64,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where the sample input, the enhanced scenes and the report go.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// SNR at which noise is mixed into the sample speech, dB.
    #[arg(long, default_value_t = 5.0)]
    pub snr_db: f64,
    #[command(flatten)]
    pub worker: WorkerArgs,
}
