//! A model-free runner for farm simulations (`scenequeue-bench farm`): each scene "takes" a set time on the
//! inference thread and its output is an empty file, so everything around inference (leases, heartbeats, fenced
//! writes, file moves, acks, dispatch) runs exactly as in a real worker, at whatever pace the state path allows.

use crate::failure::{SceneError, SceneFailure};
use crate::runner::{JobTelemetry, Runner};
use crate::scene::{SceneOutput, SceneTask};
use scenequeue_audio::AudioError;
use scenequeue_core::states::RecoveryStep;
use std::time::Duration;

/// Sample rate reported for the simulated outputs, Hz.
const SAMPLE_RATE: u32 = 48_000;

/// Scenes that take `scene_time` each and write an empty output.
#[derive(Debug, Clone)]
pub struct Simulated {
    scene_time: Duration,
}

impl Simulated {
    /// Each scene takes `scene_time` (zero: none at all).
    pub fn new(scene_time: Duration) -> Self {
        Self { scene_time }
    }

    fn simulate(&self, task: &SceneTask) -> Result<SceneOutput, SceneFailure> {
        if !self.scene_time.is_zero() {
            std::thread::sleep(self.scene_time);
        }
        if let Some(dir) = task.output.parent() {
            std::fs::create_dir_all(dir).map_err(|e| write_error(task, &e))?;
        }
        std::fs::File::create(&task.output).map_err(|e| write_error(task, &e))?;
        Ok(SceneOutput {
            sample_rate: SAMPLE_RATE,
            duration_s: task.end_s - task.start_s,
            rms_in_db: -20.0,
            rms_out_db: -20.0,
            processing_ms: self.scene_time.as_secs_f64() * 1000.0,
            recovery: RecoveryStep::None,
            oom_count: 0,
            gpu_mem_mb: None,
            flags: Vec::new(),
            speech_in_db: -20.0,
            transcript: None,
            speech_out_db: -20.0,
        })
    }
}

fn write_error(task: &SceneTask, e: &std::io::Error) -> SceneFailure {
    SceneFailure::Scene(SceneError::Audio(AudioError::Write { path: task.output.clone(), reason: e.to_string() }))
}

impl Runner for Simulated {
    fn warm(&mut self, _model: &str) -> Result<(), SceneFailure> {
        Ok(())
    }

    fn scenes(&mut self, _model: &str, tasks: &[SceneTask]) -> Vec<Result<SceneOutput, SceneFailure>> {
        tasks.iter().map(|t| self.simulate(t)).collect()
    }

    fn job_done(&mut self) -> JobTelemetry {
        JobTelemetry::default()
    }
}
