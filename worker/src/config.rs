//! Worker settings. The CLI fills them from flags and environment variables (README, "Configuration").

use crate::batching::FixedWindows;
use crate::faults::FaultPlan;
use crate::output_check::OnBadOutput;
use crate::recovery::RecoveryConfig;
use crate::runner::InferenceOptions;
use crate::runtime::{CudaSettings, Device, RuntimeOptions};
use crate::sessions::SessionPolicy;
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::OutputFormat;
use std::path::PathBuf;
use std::time::Duration;

/// Where ONNX Runtime and the models are: the flags every command that runs a model shares.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ModelFiles {
    /// ONNX Runtime shared library (`libonnxruntime.so.*`).
    #[arg(long, env = "SCENEQUEUE_ORT_LIBRARY", default_value_os_t = ModelFiles::default().ort_library)]
    pub ort_library: PathBuf,
    /// Directory of model directories (each with a `manifest.toml`).
    #[arg(long, env = "SCENEQUEUE_MODEL_DIR", default_value_os_t = ModelFiles::default().model_dir)]
    pub model_dir: PathBuf,
}

impl Default for ModelFiles {
    /// Where `scripts/fetch-models.sh` puts them, relative to the project root.
    fn default() -> Self {
        Self { ort_library: ".scenequeue/ort/libonnxruntime.so".into(), model_dir: "models".into() }
    }
}

/// A worker's settings. `Default` holds every documented default (the CLI's flags take theirs from it);
/// [`WorkerConfig::validate`] refuses values no worker can run with.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Path of the ONNX Runtime shared library (`libonnxruntime.so.*`).
    pub ort_library: PathBuf,
    /// Directory holding one sub-directory per model, each with a `manifest.toml`.
    pub model_dir: PathBuf,
    /// Model loaded (and checked) at start-up.
    pub default_model: String,
    /// Where inference runs (CPU or a CUDA GPU).
    pub device: Device,
    /// ONNX Runtime intra-op threads per session.
    pub intra_threads: usize,
    /// CUDA execution-provider settings: cuDNN search, arena growth, arena cap.
    pub cuda: CudaSettings,
    /// When the ONNX Runtime session is created and dropped (see `sessions`).
    pub session_policy: SessionPolicy,
    /// Long-scene windows and out-of-memory recovery.
    pub recovery: RecoveryConfig,
    /// Rumble high-pass, loudness normalisation and clipping protection of every output.
    pub post: PostProcess,
    /// 16-bit or float WAV, or FLAC.
    pub output_format: OutputFormat,
    /// What becomes of an output that fails its checks (`output_check`).
    pub on_bad_output: OnBadOutput,
    /// Fixed-shape window batching across scenes; None runs every scene on its own.
    pub fixed_windows: Option<FixedWindows>,
    /// Injected failures (tests and the GPU check only).
    pub faults: FaultPlan,
    /// The `scenequeue` binary started for the `process` policy (default: this executable).
    pub child_program: Option<PathBuf>,
    /// How long a job lease lasts without renewal; renewed every quarter of it while the job progresses, so a
    /// dead worker's job is taken over within about this plus one reaper pass.
    pub lease_ttl: Duration,
    /// The least time a scene may run without an answer before the watchdog abandons it as hung; the bound grows
    /// with the scene's length and the measured speed (`watchdog`).
    pub watchdog_floor: Duration,
    /// How often an unhealthy worker runs its self-check.
    pub health_check: Duration,
    /// After SIGTERM, how long the job in progress may take to finish before it is handed back.
    pub grace: Duration,
    /// First retry back-off of a failed job; doubled per attempt, with jitter, capped at 32 times this.
    pub retry_backoff: Duration,
    /// Failed connections to RabbitMQ in a row before giving up (capped exponential back-off between them);
    /// None: never give up, however long the broker is away.
    pub max_reconnects: Option<u32>,
    /// Stop once this many jobs are done (None: run until shut down).
    pub max_jobs: Option<u64>,
    /// A file rewritten with the time on every heartbeat, for a liveness probe (None: no file).
    pub alive_file: Option<PathBuf>,
    /// Take messages one at a time and stop when the queue is empty (batch runs and tests), instead of
    /// consuming until shut down.
    pub drain: bool,
    /// Connections the worker's pool may open to Postgres.
    pub db_connections: u32,
    /// Farm simulation only: no model and no audio; each scene takes this long and writes an empty file
    /// (`simulated`).
    pub simulate: Option<Duration>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let files = ModelFiles::default();
        Self {
            ort_library: files.ort_library,
            model_dir: files.model_dir,
            default_model: "deepfilternet3".into(),
            device: Device::Cpu,
            intra_threads: 1,
            cuda: CudaSettings::default(),
            session_policy: SessionPolicy::PerJob,
            recovery: RecoveryConfig::default(),
            post: PostProcess::default(),
            output_format: OutputFormat::default(),
            on_bad_output: OnBadOutput::default(),
            fixed_windows: None,
            faults: FaultPlan::default(),
            child_program: None,
            lease_ttl: Duration::from_secs(20),
            watchdog_floor: Duration::from_secs(60),
            health_check: Duration::from_secs(10),
            grace: Duration::from_secs(25),
            retry_backoff: Duration::from_secs(5),
            max_reconnects: None,
            max_jobs: None,
            alive_file: None,
            drain: false,
            db_connections: 4,
            simulate: None,
        }
    }
}

/// The shortest lease a worker takes: it is renewed every quarter of it.
pub const MIN_LEASE: Duration = Duration::from_secs(3);

impl WorkerConfig {
    /// The defaults, with ONNX Runtime and the models at `files` and `model` loaded at start-up.
    pub fn new(files: ModelFiles, model: impl Into<String>) -> Self {
        Self {
            ort_library: files.ort_library,
            model_dir: files.model_dir,
            default_model: model.into(),
            ..Self::default()
        }
    }

    /// Refuses settings no worker can run with, saying which and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.intra_threads == 0 {
            return Err("a worker needs at least 1 ONNX Runtime thread".into());
        }
        if self.lease_ttl < MIN_LEASE {
            return Err(format!("the job lease must be at least {} s, not {:?}", MIN_LEASE.as_secs(), self.lease_ttl));
        }
        if self.watchdog_floor < Duration::from_secs(1) {
            return Err(format!("the watchdog floor must be at least 1 s, not {:?}", self.watchdog_floor));
        }
        if self.health_check.is_zero() {
            return Err("the self-check interval must be more than 0 s".into());
        }
        if self.db_connections < 2 {
            return Err("a worker needs at least 2 database connections (its job and its heartbeat)".into());
        }
        self.recovery.validate()?;
        self.post.validate()
    }

    /// How often the worker heartbeats (its row, and its job's lease while the job progresses).
    pub fn heartbeat(&self) -> Duration {
        (self.lease_ttl / 4).min(Duration::from_secs(5))
    }

    /// The settings the inference side (thread or child process) runs with.
    pub fn inference_options(&self) -> InferenceOptions {
        InferenceOptions {
            runtime: RuntimeOptions {
                cuda: self.cuda,
                ..RuntimeOptions::new(self.ort_library.clone(), self.device, self.intra_threads)
            },
            model_dir: self.model_dir.clone(),
            recovery: self.recovery.clone(),
            faults: self.faults.clone(),
            post: self.post,
            output_format: self.output_format,
            on_bad_output: self.on_bad_output,
            fixed_windows: self.fixed_windows,
        }
    }
}
