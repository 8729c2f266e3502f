//! The runner contract: what the inference side can be asked to do, the settings it runs with, and what a job
//! cost. Its implementations are `in_process` (sessions in this process) and `isolation` (a child process per
//! job); `inference` runs whichever was chosen on a dedicated thread.

use crate::batching::FixedWindows;
use crate::failure::SceneFailure;
use crate::faults::FaultPlan;
use crate::memory::MemorySample;
use crate::output_check::OnBadOutput;
use crate::recovery::RecoveryConfig;
use crate::runtime::RuntimeOptions;
use crate::scene::{SceneOutput, SceneTask};
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::OutputFormat;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Everything the inference side needs; serializable so an isolated child gets the same settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceOptions {
    /// ONNX Runtime library, device and session settings.
    pub runtime: RuntimeOptions,
    /// Directory of model directories.
    pub model_dir: PathBuf,
    /// Long-scene windows and out-of-memory recovery.
    pub recovery: RecoveryConfig,
    /// Injected failures (tests and the GPU check only).
    pub faults: FaultPlan,
    /// Applied to every enhanced scene before it is written.
    pub post: PostProcess,
    /// How outputs are encoded.
    pub output_format: OutputFormat,
    /// What becomes of an output that fails its checks.
    #[serde(default)]
    pub on_bad_output: OnBadOutput,
    /// Fixed-shape window batching across scenes (`batching`); None runs every scene on its own.
    #[serde(default)]
    pub fixed_windows: Option<FixedWindows>,
}

/// What a job cost in sessions and memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobTelemetry {
    /// Sessions (or child processes) created during the job.
    pub sessions_created: u64,
    /// Time spent creating them, milliseconds.
    pub session_create_ms: f64,
    /// Highest GPU memory held after any scene of the job, MiB.
    pub gpu_peak_mb: Option<f32>,
    /// Memory after the job, once the policy was applied.
    pub after: MemorySample,
    /// Whether the policy dropped the session after the job.
    pub session_dropped: bool,
}

/// One way of running scenes: in this process, or in a child per job.
pub trait Runner {
    /// Creates the session for `model` now (checks the model and pays device initialisation early).
    fn warm(&mut self, model: &str) -> Result<(), SceneFailure>;
    /// The one entry point for work: a group of consecutive scenes of one job, each with its own outcome, in
    /// order. The list ends early after a job-level failure.
    fn scenes(&mut self, model: &str, tasks: &[SceneTask]) -> Vec<Result<SceneOutput, SceneFailure>>;
    /// Applies the session policy after a job and reports what the job cost.
    fn job_done(&mut self) -> JobTelemetry;
    /// What the watchdog fires when this runner hangs: it kills the runner's child process, if any, and
    /// tells the runner to start nothing more.
    fn kill_switch(&self) -> KillSwitch {
        KillSwitch::default()
    }

    /// One scene: a group of one.
    fn scene(&mut self, model: &str, task: &SceneTask) -> Result<SceneOutput, SceneFailure> {
        self.scenes(model, std::slice::from_ref(task)).pop().unwrap_or(Err(SceneFailure::NoResult))
    }
}

/// Runs `tasks` one at a time through `run`, stopping after a failure that ends the job.
pub(crate) fn one_by_one(
    tasks: &[SceneTask],
    mut run: impl FnMut(&SceneTask) -> Result<SceneOutput, SceneFailure>,
) -> Vec<Result<SceneOutput, SceneFailure>> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        let result = run(task);
        let ends_job = matches!(&result, Err(e) if e.ends_job());
        results.push(result);
        if ends_job {
            break;
        }
    }
    results
}

/// The larger of two optional figures.
pub(crate) fn max_opt(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Shared between a runner and the watchdog: fired when the runner is abandoned.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch {
    fired: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
}

impl KillSwitch {
    /// Abandons the runner: kills its child process (if one is running) and marks it fired.
    pub fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        if let Some(child) = self.child.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            let _ = child.kill();
        }
    }

    /// Whether the runner was abandoned: it must start nothing more.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// The slot holding the runner's child process, so the watchdog can kill it.
    pub(crate) fn child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
