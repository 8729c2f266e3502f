//! Command-line flags; each has an environment variable (see the README's configuration table). Defaults are
//! never written here: each flag takes its default from the `Default` of the settings it fills
//! (`Services`, `SubmitRequest`, `SplitParams`, `WorkerConfig` and the types inside it), so a default lives in
//! one place.

use clap::{Args, Parser, Subcommand, ValueEnum};
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::OutputFormat;
use scenequeue_audio::scenes::SplitParams;
use scenequeue_core::config::Services;
use scenequeue_core::ids::BatchId;
use scenequeue_core::options::Preset;
use scenequeue_scheduler::{DEFAULT_REAP_INTERVAL, ReapSettings, SubmitRequest};
use scenequeue_worker::{
    ArenaExtend, ConvSearch, Device, FixedWindows, ModelFiles, OnBadOutput, RecoveryConfig, SessionPolicy, WorkerConfig,
};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "scenequeue", version, about = "Scene-by-scene speech enhancement for large audio backlogs")]
pub struct Cli {
    /// A TOML configuration file: keys are the settings' environment variables without `SCENEQUEUE_`, in lower
    /// case (`database_url = "..."`); flags and environment variables win over it (docs/DEPLOYING.md).
    #[arg(long, global = true, env = crate::config::CONFIG_ENV)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub services: ServiceArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Postgres connection URL; `host1:port,host2:port` follows the primary of a failover pair (its value is never
    /// shown in help or logs).
    #[arg(long, global = true, env = "SCENEQUEUE_DATABASE_URL", hide_env_values = true, default_value_t = Services::default().database_url)]
    pub database_url: String,
    /// RabbitMQ connection URL, or a comma-separated list of a cluster's nodes (its value is never shown in help
    /// or logs).
    #[arg(long, global = true, env = "SCENEQUEUE_AMQP_URL", hide_env_values = true, default_value_t = Services::default().amqp_url)]
    pub amqp_url: String,
    /// With a list of broker nodes: the cluster name each must announce; a node naming another is passed over.
    #[arg(long, global = true, env = "SCENEQUEUE_AMQP_CLUSTER")]
    pub amqp_cluster: Option<String>,
    /// Name of the job queue (its dead-letter queue is `<queue>.dead`).
    #[arg(long, global = true, env = "SCENEQUEUE_QUEUE", default_value_t = Services::default().queue)]
    pub queue: String,
    /// Jobs the broker may hold queued; the rest wait in Postgres and are released by priority.
    #[arg(long, global = true, env = "SCENEQUEUE_MAX_QUEUED", default_value_t = Services::default().max_queued)]
    pub max_queued: i64,
    /// Unacknowledged jobs each worker holds from the broker; the scheduler counts on the same number when it
    /// reconciles the queue, so set it once for the whole farm.
    #[arg(long, global = true, env = "SCENEQUEUE_PREFETCH", default_value_t = Services::default().prefetch,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Decode, cut and pack recordings into jobs and publish them; prints the batch id.
    Submit(SubmitArgs),
    /// Consume jobs and enhance their scenes until stopped (Ctrl-C / SIGTERM finish the current job first).
    Worker(WorkerArgs),
    /// Keep jobs moving: requeue jobs of vanished workers, mark lost workers, release pending jobs by priority,
    /// publish again jobs whose message the broker lost or dead-lettered. Waits out Postgres and RabbitMQ outages.
    Scheduler(SchedulerArgs),
    /// Serve the operator's view alone (dashboard, JSON API, actions, /metrics), without reaping; the scheduler
    /// serves it too.
    Serve(HttpArgs),
    /// Run the dead jobs and failed scenes of a batch, or of one job, again, keeping what already succeeded; prints
    /// what was reset.
    Retry {
        /// A batch id or a job id.
        id: uuid::Uuid,
        /// Print a JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Counts per state of batches, recordings, jobs and scenes, with the reasons for failures.
    Status {
        /// Only this batch.
        batch: Option<BatchId>,
        /// Print the overview (kept counts per state, progress in audio hours, throughput, ETA) as JSON.
        #[arg(long)]
        json: bool,
        /// Keep a live progress bar on screen, refreshed every 2 s, until Ctrl-C.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
    /// Workers seen in the last day: device, state, last heartbeat, current job, jobs done.
    Workers {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a batch's scenes: as JSON, every recording with its scenes' start and end in the source, their
    /// states, enhanced files and check flags; as a JSON Lines or CSV manifest, one line per enhanced scene
    /// (file, duration, source recording, offset in it) for transcription tools.
    Scenes {
        /// The batch.
        batch: BatchId,
        /// json (the whole list), jsonl or csv (manifests of the enhanced scenes).
        #[arg(long, value_enum, default_value_t = SceneFormat::Json)]
        format: SceneFormat,
    },
    /// Write a transcribed batch's text: one subtitle or text file per recording (times on the recording's
    /// timeline), or JSON Lines with one object per scene (the enhanced file, its place in the source, its text).
    Transcripts {
        /// The batch (submitted with --transcribe).
        batch: BatchId,
        /// srt, vtt or txt (one file per recording, needs --out) or jsonl (stdout, or DIR/transcripts.jsonl).
        #[arg(long, value_enum, default_value_t = scenequeue_core::transcripts::TextFormat::Srt)]
        format: scenequeue_core::transcripts::TextFormat,
        /// Directory to write into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Apply database migrations and declare the queues, then exit.
    Migrate,
    /// Exit 0 when this container's process is healthy: a worker's alive file is recent, or else the HTTP
    /// server of a scheduler (or `serve`) answers. For HEALTHCHECK and Kubernetes exec probes.
    Probe(ProbeArgs),
    /// Print the effective configuration (flags > environment > configuration file > defaults) as TOML, each
    /// setting with where its value came from; passwords and tokens are masked.
    Config,
    /// Generate noisy sample speech, run it through the whole system and show how much cleaner it got.
    Demo(DemoArgs),
    /// Transcribe audio files with Whisper on this machine (no services needed): one transcript per file, as
    /// JSON Lines on stdout, or as subtitles or text files in a directory.
    Transcribe(TranscribeArgs),
    /// Serve one job's scenes for a worker with the `process` session policy (started by the worker itself).
    #[command(hide = true)]
    InferenceChild,
}

#[derive(Args, Debug, Clone)]
pub struct SplitArgs {
    /// Shortest scene, seconds (shorter ones merge with a neighbour).
    #[arg(long, env = "SCENEQUEUE_MIN_SCENE_S", default_value_t = SplitParams::default().min_scene_s)]
    pub min_scene_s: f64,
    /// Longest scene, seconds.
    #[arg(long, env = "SCENEQUEUE_MAX_SCENE_S", default_value_t = SplitParams::default().max_scene_s)]
    pub max_scene_s: f64,
    /// Shortest pause that separates scenes (pass one), seconds.
    #[arg(long, env = "SCENEQUEUE_MIN_SILENCE_S", default_value_t = SplitParams::default().min_silence_s)]
    pub min_silence_s: f64,
    /// Shortest pause at which a scene longer than the maximum is re-cut (pass two), seconds.
    #[arg(long, env = "SCENEQUEUE_SPLIT_SILENCE_S", default_value_t = SplitParams::default().split_silence_s)]
    pub split_silence_s: f64,
    /// Seconds of audio per job.
    #[arg(long, env = "SCENEQUEUE_JOB_SECONDS", default_value_t = SubmitRequest::default().job_budget_s)]
    pub job_seconds: f64,
    /// Pack by whole fixed windows of this many seconds (a scene costs its duration rounded up to windows).
    #[arg(long, env = "SCENEQUEUE_PACK_WINDOW_S")]
    pub pack_window_s: Option<f64>,
    /// Attempts per job before it is declared dead.
    #[arg(long, env = "SCENEQUEUE_MAX_ATTEMPTS", default_value_t = SubmitRequest::default().max_attempts)]
    pub max_attempts: i32,
}

#[derive(Args, Debug, Clone)]
pub struct SubmitArgs {
    /// Recordings or directories (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where enhanced scenes are written (must be reachable by the workers).
    #[arg(long, env = "SCENEQUEUE_OUTPUT_DIR", default_value_os_t = SubmitRequest::default().output_dir)]
    pub out: PathBuf,
    /// Model to enhance with (a directory under the workers' model dir).
    #[arg(long, env = "SCENEQUEUE_MODEL", default_value_t = SubmitRequest::default().model)]
    pub model: String,
    /// Process recordings again even if already submitted for this model (they are skipped by default).
    #[arg(long)]
    pub again: bool,
    /// Complete this interrupted batch (running the same command again finds it by itself).
    #[arg(long)]
    pub resume: Option<BatchId>,
    /// Batch priority: higher runs first (e.g. 10 urgent, 0 normal, -10 backlog).
    #[arg(long, default_value_t = SubmitRequest::default().priority, allow_negative_numbers = true)]
    pub priority: i16,
    /// What finds speech for scene cuts.
    #[arg(long, env = "SCENEQUEUE_DETECTOR", value_enum, default_value_t = DetectorKind::Energy)]
    pub detector: DetectorKind,
    /// ONNX Runtime and the Silero model (for --detector silero).
    #[command(flatten)]
    pub files: ModelFiles,
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
    /// Transcribe every enhanced scene after enhancement, in the same job (text, timed segments, language;
    /// `scenequeue transcripts BATCH` writes them out per recording).
    #[arg(long)]
    pub transcribe: bool,
    /// The recognition model for --transcribe (a directory under the model directory's `asr/`).
    #[arg(long, env = "SCENEQUEUE_ASR_MODEL", default_value = "whisper-tiny.en", requires = "transcribe")]
    pub asr_model: String,
    /// The language spoken, for --transcribe: `auto` (detected per scene) or a code such as en, de, ja.
    #[arg(long, default_value = "auto", requires = "transcribe")]
    pub language: scenequeue_worker::asr::Language,
    /// Which audio the recogniser gets, for --transcribe: auto (per scene, the enhanced or the untouched audio,
    /// whichever it is surer of; both are transcribed), always (the enhanced scene) or never (the untouched one).
    /// The enhanced files are written either way.
    #[arg(long, default_value = "auto", requires = "transcribe")]
    pub enhance_for_asr: scenequeue_core::transcripts::AsrInput,
}

/// How `scenes` prints a batch.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SceneFormat {
    /// The whole scene list, recordings and scenes, failures included.
    Json,
    /// One JSON object per enhanced scene (`audio_filepath`, `duration`, `source`, `offset`...).
    Jsonl,
    /// The same columns as CSV, with a header row.
    Csv,
}

/// What finds speech for scene cuts.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorKind {
    /// Frame energy against the recording's noise floor (no model).
    Energy,
    /// The Silero voice-activity model, from the model directory.
    Silero,
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub files: ModelFiles,
    /// Model checked and loaded at start-up.
    #[arg(long, env = "SCENEQUEUE_MODEL", default_value_t = WorkerConfig::default().default_model)]
    pub model: String,
    /// cpu, cuda or cuda:N.
    #[arg(long, env = "SCENEQUEUE_DEVICE", default_value_t = WorkerConfig::default().device)]
    pub device: Device,
    /// ONNX Runtime intra-op threads.
    #[arg(long, env = "SCENEQUEUE_THREADS", default_value_t = WorkerConfig::default().intra_threads)]
    pub threads: usize,
    /// per-job, every-N-jobs, held-above-MIB, shrink-each-run, process or persistent (docs/SESSIONS.md).
    #[arg(long, env = "SCENEQUEUE_SESSION_POLICY", default_value_t = WorkerConfig::default().session_policy)]
    pub session_policy: SessionPolicy,
    /// cuDNN convolution search: heuristic, exhaustive (only worth it with fixed shapes) or default.
    #[arg(long, env = "SCENEQUEUE_CUDNN_SEARCH", default_value_t = WorkerConfig::default().cuda.conv_search)]
    pub cudnn_search: ConvSearch,
    /// CUDA arena growth: next-power-of-two or same-as-requested.
    #[arg(long, env = "SCENEQUEUE_CUDA_ARENA_EXTEND", default_value_t = WorkerConfig::default().cuda.arena_extend)]
    pub cuda_arena_extend: ArenaExtend,
    /// Cap on the CUDA arena in MiB (also emulates a smaller card).
    #[arg(long, env = "SCENEQUEUE_GPU_MEM_LIMIT_MB")]
    pub gpu_mem_limit_mb: Option<u64>,
    /// Longest window, seconds, when a scene is retried in windows after running out of memory.
    #[arg(long, env = "SCENEQUEUE_OOM_WINDOW_S", default_value_t = RecoveryConfig::default().window_s)]
    pub oom_window_s: f64,
    /// After out-of-memory errors on the GPU, run the scene on the CPU rather than fail it.
    #[arg(long, env = "SCENEQUEUE_CPU_FALLBACK")]
    pub cpu_fallback: bool,
    /// Run scenes longer than this in windows of this length with 1 s crossfades (bounded memory); 0 keeps
    /// each model's own window (30 s for DeepFilterNet3, none for NSNet2).
    #[arg(long, env = "SCENEQUEUE_LONG_SCENE_WINDOW_S", default_value_t = RecoveryConfig::default().long_scene_window_s)]
    pub long_scene_window_s: f64,
    /// Fixed-shape window batching: cut every scene into windows of this many seconds and run --window-batch
    /// of them (from consecutive scenes) per model call, so every call has the same shape (docs/SESSIONS.md).
    /// Off by default.
    #[arg(long, env = "SCENEQUEUE_FIXED_WINDOWS_S")]
    pub fixed_windows_s: Option<f64>,
    /// Overlap of consecutive fixed windows of a scene, seconds: the later window's warm-up, then a crossfade over
    /// its last quarter (at most half a window).
    #[arg(long, env = "SCENEQUEUE_WINDOW_OVERLAP_S", default_value_t = FixedWindows::DEFAULT_OVERLAP_S)]
    pub window_overlap_s: f64,
    /// Fixed windows per model call (at most 320 s of audio per call in all).
    #[arg(long, env = "SCENEQUEUE_WINDOW_BATCH", default_value_t = FixedWindows::DEFAULT_BATCH)]
    pub window_batch: usize,
    /// Output files: wav (16-bit PCM), wav-float (32-bit float) or flac (16-bit, lossless).
    #[arg(long, env = "SCENEQUEUE_OUTPUT_FORMAT", default_value_t = WorkerConfig::default().output_format)]
    pub output_format: OutputFormat,
    /// What becomes of an enhanced scene that fails its checks (non-finite samples, silent output while the
    /// input held speech, speech band collapsed): fail (the scene fails), flag (kept, flagged) or original (the
    /// original audio is written in its place, flagged).
    #[arg(long, env = "SCENEQUEUE_ON_BAD_OUTPUT", default_value_t = WorkerConfig::default().on_bad_output)]
    pub on_bad_output: OnBadOutput,
    /// Rumble high-pass cut-off of every output, Hz (0: off).
    #[arg(long, env = "SCENEQUEUE_HIGHPASS_HZ", default_value_t = PostProcess::default().highpass_hz.unwrap_or(0.0))]
    pub highpass_hz: f32,
    /// Normalise every output to this loudness, LUFS (BS.1770); off by default.
    #[arg(long, env = "SCENEQUEUE_LOUDNESS_LUFS", allow_negative_numbers = true)]
    pub loudness_lufs: Option<f32>,
    /// Peak ceiling, dBFS: a scene that would pass it is scaled down as a whole.
    #[arg(long, env = "SCENEQUEUE_PEAK_CEILING_DBFS", default_value_t = PostProcess::default().peak_ceiling_dbfs, allow_negative_numbers = true)]
    pub peak_ceiling_dbfs: f32,
    /// Job lease, seconds: renewed every quarter of it (at most every 5 s) while the job progresses, so the job
    /// of a worker that died is taken over within about this plus one reaper pass.
    #[arg(long, env = "SCENEQUEUE_LEASE_S", default_value_t = WorkerConfig::default().lease_ttl.as_secs())]
    pub lease_s: u64,
    /// Least time a scene may run without an answer before it is abandoned and failed as hung, seconds; the
    /// bound grows with the scene's length and the speed measured on this worker.
    #[arg(long, env = "SCENEQUEUE_WATCHDOG_FLOOR_S", default_value_t = WorkerConfig::default().watchdog_floor.as_secs())]
    pub watchdog_floor_s: u64,
    /// Seconds between two self-checks of a worker that found itself unhealthy (model, device, output directory).
    #[arg(long, env = "SCENEQUEUE_HEALTH_CHECK_S", default_value_t = WorkerConfig::default().health_check.as_secs())]
    pub health_check_s: u64,
    /// After SIGTERM, seconds the job in progress may take before it is handed back (a second signal hands it
    /// back at once).
    #[arg(long, env = "SCENEQUEUE_GRACE_S", default_value_t = WorkerConfig::default().grace.as_secs())]
    pub grace_s: u64,
    /// First back-off before a failed job is retried, seconds; doubled per attempt, with jitter.
    #[arg(long, env = "SCENEQUEUE_RETRY_BACKOFF_S", default_value_t = WorkerConfig::default().retry_backoff.as_secs_f64())]
    pub retry_backoff_s: f64,
    /// The scenequeue binary started for isolated child processes (default: this one).
    #[arg(long, env = "SCENEQUEUE_CHILD_PROGRAM")]
    pub child_program: Option<PathBuf>,
    /// Connections the worker opens to Postgres (at least 2: its job and its heartbeat); docs/SCALING.md.
    #[arg(long, env = "SCENEQUEUE_DB_CONNECTIONS", default_value_t = WorkerConfig::default().db_connections)]
    pub db_connections: u32,
    /// Exit after this many jobs.
    #[arg(long)]
    pub max_jobs: Option<u64>,
    /// Exit as soon as the queue is empty instead of waiting for more jobs.
    #[arg(long)]
    pub drain: bool,
    /// A file the worker rewrites with the time on every heartbeat (every few seconds) once started, for a
    /// liveness probe that checks its age (docs/DEPLOYING.md).
    #[arg(long, env = "SCENEQUEUE_ALIVE_FILE")]
    pub alive_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct HttpArgs {
    /// Where the operator's view (dashboard, JSON API, /metrics) listens.
    #[arg(long, env = "SCENEQUEUE_HTTP_ADDR", default_value = scenequeue_api::DEFAULT_ADDR)]
    pub http_addr: std::net::SocketAddr,
    /// The token every action of the API needs (Authorization: Bearer <token>); without one, actions are off.
    #[arg(long, env = "SCENEQUEUE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// A file whose first line is the API token (instead of --api-token).
    #[arg(long, env = "SCENEQUEUE_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
}

impl HttpArgs {
    /// The server's settings.
    pub fn config(&self) -> Result<scenequeue_api::ApiConfig, scenequeue_api::ConfigError> {
        scenequeue_api::ApiConfig::new(self.http_addr, self.api_token.as_deref(), self.api_token_file.as_deref())
    }
}

#[derive(Args, Debug, Clone)]
pub struct ProbeArgs {
    /// Probe a worker by its alive file (see `worker --alive-file`); without it, probe the HTTP server.
    #[arg(long, env = "SCENEQUEUE_ALIVE_FILE")]
    pub alive_file: Option<PathBuf>,
    /// Oldest the alive file may be, seconds (a worker rewrites it every 5 s or less).
    #[arg(long, default_value_t = 60)]
    pub max_age_s: u64,
    /// The HTTP server to probe.
    #[arg(long, env = "SCENEQUEUE_HTTP_ADDR", default_value = scenequeue_api::DEFAULT_ADDR)]
    pub http_addr: std::net::SocketAddr,
}

#[derive(Args, Debug, Clone)]
pub struct SchedulerArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// Seconds between two passes of the reaper.
    #[arg(long, env = "SCENEQUEUE_REAP_INTERVAL_S", default_value_t = DEFAULT_REAP_INTERVAL.as_secs())]
    pub interval_s: u64,
    /// Seconds without a heartbeat after which a worker is marked lost.
    #[arg(long, env = "SCENEQUEUE_LOST_AFTER_S", default_value_t = ReapSettings::default().lost_after.as_secs())]
    pub lost_after_s: u64,
    /// Seconds after its message was confirmed before a queued job whose message the broker no longer holds is
    /// published again.
    #[arg(long, env = "SCENEQUEUE_RECONCILE_GRACE_S", default_value_t = ReapSettings::default().reconcile_grace.as_secs())]
    pub reconcile_grace_s: u64,
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

#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// Audio or video files, in any format `submit` reads.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The recognition model (a directory under the model directory's `asr/`).
    #[arg(long, env = "SCENEQUEUE_ASR_MODEL", default_value = "whisper-tiny.en")]
    pub asr_model: String,
    /// The language spoken: `auto` (detected from the first 30 s) or a code such as en, de, ja.
    #[arg(long, default_value = "auto")]
    pub language: scenequeue_worker::asr::Language,
    /// Output: jsonl (one object per file on stdout or in DIR/transcripts.jsonl), srt, vtt or txt (one file per
    /// input, named after it, in DIR; on stdout for a single input without --out).
    #[arg(long, value_enum, default_value_t = scenequeue_core::transcripts::TextFormat::Jsonl)]
    pub format: scenequeue_core::transcripts::TextFormat,
    /// Directory to write the transcripts into.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub files: ModelFiles,
    /// Where inference runs: cpu, cuda or cuda:N.
    #[arg(long, env = "SCENEQUEUE_DEVICE", default_value_t = WorkerConfig::default().device)]
    pub device: Device,
    /// ONNX Runtime intra-op threads.
    #[arg(long, env = "SCENEQUEUE_THREADS", default_value_t = WorkerConfig::default().intra_threads)]
    pub threads: usize,
}
