//! The in-process runner: the worker's own sessions, managed by the session policy, run every scene.

use crate::batching::FixedWindows;
use crate::failure::SceneFailure;
use crate::faults::FaultPlan;
use crate::memory::MemoryProbe;
use crate::output_check::OnBadOutput;
use crate::recovery::RecoveryConfig;
use crate::runner::{InferenceOptions, JobTelemetry, Runner, max_opt, one_by_one};
use crate::runtime::Runtime;
use crate::scene::{self, SceneOutput, SceneTask};
use crate::sessions::{SessionPolicy, Sessions};
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::OutputFormat;
use scenequeue_core::panics;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Sessions in this process.
pub struct InProcess {
    sessions: Sessions,
    probe: MemoryProbe,
    recovery: RecoveryConfig,
    post: PostProcess,
    output_format: OutputFormat,
    on_bad_output: OnBadOutput,
    fixed_windows: Option<FixedWindows>,
    faults: FaultPlan,
    peak: Option<f32>,
    created_before: (u64, f64),
}

impl InProcess {
    /// A runner over `runtime` with `options`, creating and dropping sessions as `policy` says.
    pub fn new(runtime: Runtime, options: &InferenceOptions, policy: SessionPolicy) -> Self {
        let probe = MemoryProbe::new(runtime.device());
        Self {
            sessions: Sessions::new(runtime, options.model_dir.clone(), policy, options.faults.clone()),
            probe,
            recovery: options.recovery.clone(),
            post: options.post,
            output_format: options.output_format,
            on_bad_output: options.on_bad_output,
            fixed_windows: options.fixed_windows,
            faults: options.faults.clone(),
            peak: None,
            created_before: (0, 0.0),
        }
    }
}

impl Runner for InProcess {
    fn warm(&mut self, model: &str) -> Result<(), SceneFailure> {
        self.sessions.get(model).map(|_| ()).map_err(SceneFailure::Model)
    }

    /// A panic in decoding, DSP or inference is caught at the scene boundary: the scene fails with the panic's
    /// message (a group of batched scenes is retried, as its culprit is unknown), and the session, whose state
    /// the panic may have broken, is dropped.
    fn scenes(&mut self, model: &str, tasks: &[SceneTask]) -> Vec<Result<SceneOutput, SceneFailure>> {
        tasks.iter().for_each(|task| self.faults.crash_if_planned(&task.source));
        let output = (&self.post, self.output_format, self.on_bad_output);
        let sessions = &mut self.sessions;
        let results = match self.fixed_windows {
            Some(fixed) => {
                let run =
                    || scene::process_group(sessions, model, tasks, (&fixed, &self.recovery), output, &self.probe);
                match catch_unwind(AssertUnwindSafe(run)) {
                    Ok(results) => results,
                    Err(panic) => {
                        let message = panics::message(panic.as_ref());
                        sessions.reset();
                        let reason = format!("a batched group of {} scenes panicked: {message}", tasks.len());
                        vec![Err(SceneFailure::Stuck { reason })]
                    }
                }
            }
            None => one_by_one(tasks, |task| {
                let run = || scene::process(sessions, model, task, &self.recovery, output, &self.probe);
                catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|panic| {
                    sessions.reset();
                    Err(SceneFailure::Panicked { path: task.source.clone(), message: panics::message(panic.as_ref()) })
                })
            }),
        };
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
