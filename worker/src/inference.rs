//! The inference thread: one OS thread owns the sessions (or the isolated child process) and runs every model
//! call, so inference never blocks the async runtime and at most one session exists per worker. The async side
//! talks to it through a channel of capacity one and awaits each reply.

use crate::batching::FixedWindows;
use crate::faults::FaultPlan;
use crate::isolation::Isolated;
use crate::memory::{MemoryProbe, MemorySample};
use crate::recovery::RecoveryConfig;
use crate::runtime::{Runtime, RuntimeOptions};
use crate::scene::{self, SceneFailure, SceneOutput, SceneTask};
use crate::sessions::{SessionPolicy, Sessions};
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::OutputFormat;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

/// Everything the inference side needs; serializable so an isolated child gets the same settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceOptions {
    pub runtime: RuntimeOptions,
    pub model_dir: PathBuf,
    pub recovery: RecoveryConfig,
    pub faults: FaultPlan,
    /// Applied to every enhanced scene before it is written.
    pub post: PostProcess,
    pub output_format: OutputFormat,
    /// Fixed-shape window batching across scenes (`batching`); None runs every scene on its own.
    #[serde(default)]
    pub fixed_windows: Option<FixedWindows>,
}

/// What a job cost in sessions and memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobTelemetry {
    /// Sessions (or child processes) created during the job.
    pub sessions_created: u64,
    pub session_create_ms: f64,
    /// Highest GPU memory held after any scene of the job, MiB.
    pub gpu_peak_mb: Option<f32>,
    /// Memory after the job, once the policy was applied.
    pub after: MemorySample,
    pub session_dropped: bool,
}

/// One way of running scenes: in this process, or in a child per job.
pub trait Runner {
    fn warm(&mut self, model: &str) -> Result<(), SceneFailure>;
    fn scene(&mut self, model: &str, task: &SceneTask) -> Result<SceneOutput, SceneFailure>;
    /// A group of consecutive scenes of one job, each with its own outcome, in order; the list ends early after
    /// a job-level failure. Runners that batch across scenes override it.
    fn scenes(&mut self, model: &str, tasks: &[SceneTask]) -> Vec<Result<SceneOutput, SceneFailure>> {
        one_by_one(self, model, tasks)
    }
    fn job_done(&mut self) -> JobTelemetry;
}

/// Runs `tasks` one scene at a time, stopping after a job-level failure.
fn one_by_one<R: Runner + ?Sized>(
    runner: &mut R,
    model: &str,
    tasks: &[SceneTask],
) -> Vec<Result<SceneOutput, SceneFailure>> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        let result = runner.scene(model, task);
        let job_level = matches!(&result, Err(e) if e.is_job_level());
        results.push(result);
        if job_level {
            break;
        }
    }
    results
}

/// Sessions in this process.
pub struct InProcess {
    sessions: Sessions,
    probe: MemoryProbe,
    recovery: RecoveryConfig,
    post: PostProcess,
    output_format: OutputFormat,
    fixed_windows: Option<FixedWindows>,
    peak: Option<f32>,
    created_before: (u64, f64),
}

impl InProcess {
    pub fn new(runtime: Runtime, options: &InferenceOptions, policy: SessionPolicy) -> Self {
        let probe = MemoryProbe::new(runtime.device());
        Self {
            sessions: Sessions::new(runtime, options.model_dir.clone(), policy, options.faults.clone()),
            probe,
            recovery: options.recovery.clone(),
            post: options.post,
            output_format: options.output_format,
            fixed_windows: options.fixed_windows,
            peak: None,
            created_before: (0, 0.0),
        }
    }

    pub fn probe(&self) -> &MemoryProbe {
        &self.probe
    }
}

fn max_opt(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl Runner for InProcess {
    fn warm(&mut self, model: &str) -> Result<(), SceneFailure> {
        self.sessions.get(model).map(|_| ()).map_err(SceneFailure::Model)
    }

    fn scene(&mut self, model: &str, task: &SceneTask) -> Result<SceneOutput, SceneFailure> {
        if self.fixed_windows.is_some() {
            let mut results = self.scenes(model, std::slice::from_ref(task));
            return results.pop().unwrap_or_else(|| Err(SceneFailure::NoResult));
        }
        let out = scene::process(
            &mut self.sessions,
            model,
            task,
            &self.recovery,
            (&self.post, self.output_format),
            &self.probe,
        )?;
        self.peak = max_opt(self.peak, out.gpu_mem_mb);
        Ok(out)
    }

    fn scenes(&mut self, model: &str, tasks: &[SceneTask]) -> Vec<Result<SceneOutput, SceneFailure>> {
        let Some(fixed) = self.fixed_windows else {
            return one_by_one(self, model, tasks);
        };
        let results = scene::process_group(
            &mut self.sessions,
            model,
            tasks,
            (&fixed, &self.recovery),
            (&self.post, self.output_format),
            &self.probe,
        );
        for out in results.iter().flatten() {
            self.peak = max_opt(self.peak, out.gpu_mem_mb);
        }
        results
    }

    fn job_done(&mut self) -> JobTelemetry {
        scene::release_reader();
        let held = self.probe.sample();
        let session_dropped = self.sessions.job_done(held.held_mb());
        let after = if session_dropped { self.probe.sample() } else { held };
        let (created, time) = self.sessions.created();
        let time_ms = time.as_secs_f64() * 1000.0;
        let telemetry = JobTelemetry {
            sessions_created: created - self.created_before.0,
            session_create_ms: time_ms - self.created_before.1,
            gpu_peak_mb: max_opt(self.peak.take(), held.gpu_held_mb()),
            after,
            session_dropped,
        };
        self.created_before = (created, time_ms);
        telemetry
    }
}

/// Builds the runner for `policy`.
pub fn runner(
    options: &InferenceOptions,
    policy: SessionPolicy,
    child_program: Option<PathBuf>,
) -> Result<Box<dyn Runner + Send>, crate::runtime::RuntimeError> {
    let runtime = Runtime::with_options(options.runtime.clone())?;
    Ok(match policy {
        SessionPolicy::Process => Box::new(Isolated::new(options.clone(), child_program)),
        _ => Box::new(InProcess::new(runtime, options, policy)),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("the inference thread has stopped")]
pub struct ThreadGone;

type Reply<T> = oneshot::Sender<T>;

enum Command {
    Warm { model: String, reply: Reply<Result<(), SceneFailure>> },
    Scene { model: String, task: Box<SceneTask>, reply: Reply<Result<SceneOutput, SceneFailure>> },
    Scenes { model: String, tasks: Vec<SceneTask>, reply: Reply<Vec<Result<SceneOutput, SceneFailure>>> },
    JobDone { reply: Reply<JobTelemetry> },
}

#[derive(Clone)]
pub struct InferenceHandle {
    tx: mpsc::Sender<Command>,
}

impl InferenceHandle {
    pub fn start(mut runner: Box<dyn Runner + Send>) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Command>(1);
        std::thread::Builder::new().name("inference".into()).spawn(move || {
            while let Some(command) = rx.blocking_recv() {
                match command {
                    Command::Warm { model, reply } => {
                        let _ = reply.send(runner.warm(&model));
                    }
                    Command::Scene { model, task, reply } => {
                        let _ = reply.send(runner.scene(&model, &task));
                    }
                    Command::Scenes { model, tasks, reply } => {
                        let _ = reply.send(runner.scenes(&model, &tasks));
                    }
                    Command::JobDone { reply } => {
                        let _ = reply.send(runner.job_done());
                    }
                }
            }
        })?;
        Ok(Self { tx })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ThreadGone> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| ThreadGone)?;
        answer.await.map_err(|_| ThreadGone)
    }

    /// Creates the session for `model` now (checks the model at start-up and pays CUDA initialisation early).
    pub async fn warm(&self, model: &str) -> Result<Result<(), SceneFailure>, ThreadGone> {
        self.call(|reply| Command::Warm { model: model.to_string(), reply }).await
    }

    pub async fn scene(&self, model: &str, task: SceneTask) -> Result<Result<SceneOutput, SceneFailure>, ThreadGone> {
        self.call(|reply| Command::Scene { model: model.to_string(), task: Box::new(task), reply }).await
    }

    /// A group of scenes (see `Runner::scenes`).
    pub async fn scenes(
        &self,
        model: &str,
        tasks: Vec<SceneTask>,
    ) -> Result<Vec<Result<SceneOutput, SceneFailure>>, ThreadGone> {
        self.call(|reply| Command::Scenes { model: model.to_string(), tasks, reply }).await
    }

    /// Applies the session policy after a job and reports what the job cost.
    pub async fn job_done(&self) -> Result<JobTelemetry, ThreadGone> {
        self.call(|reply| Command::JobDone { reply }).await
    }
}
