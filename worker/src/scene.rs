//! One scene, end to end, on the calling (blocking) thread: read its span from the recording, resample to the
//! model's rate, enhance (with out-of-memory recovery), post-process (`audio::dsp`), write the output, measure.

use crate::memory::MemoryProbe;
use crate::model::ModelError;
use crate::recovery::{self, RecoveryConfig};
use crate::sessions::{EnhanceError, Sessions};
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::OutputFormat;
use scenequeue_audio::{AudioError, decode, encode, level, resample};
use scenequeue_core::states::RecoveryStep;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// What to do for one scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneTask {
    pub source: PathBuf,
    pub start_s: f64,
    pub end_s: f64,
    pub output: PathBuf,
}

/// What one scene produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneOutput {
    pub sample_rate: u32,
    pub duration_s: f64,
    pub rms_in_db: f32,
    pub rms_out_db: f32,
    pub processing_ms: f64,
    pub recovery: RecoveryStep,
    pub oom_count: u32,
    /// GPU memory held by the worker right after the scene, MiB.
    pub gpu_mem_mb: Option<f32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("inference failed: {0}")]
    Inference(#[from] crate::model::InferenceError),
}

/// Why a scene produced no output.
#[derive(Debug, thiserror::Error)]
pub enum SceneFailure {
    /// The model could not be loaded: a problem of this worker, not of the scene; the job is retried.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The scene itself failed (unreadable span, inference error): recorded on the scene.
    #[error(transparent)]
    Scene(#[from] SceneError),
    /// Reported by an isolated inference process.
    #[error("{message}")]
    Isolated { message: String, job_level: bool },
}

impl SceneFailure {
    /// Whether the whole job should be retried (rather than this scene marked failed).
    pub fn is_job_level(&self) -> bool {
        match self {
            Self::Model(_) => true,
            Self::Scene(_) => false,
            Self::Isolated { job_level, .. } => *job_level,
        }
    }
}

impl From<EnhanceError> for SceneFailure {
    fn from(e: EnhanceError) -> Self {
        match e {
            EnhanceError::Model(e) => Self::Model(e),
            EnhanceError::Inference(e) => Self::Scene(SceneError::Inference(e)),
        }
    }
}

impl From<AudioError> for SceneFailure {
    fn from(e: AudioError) -> Self {
        Self::Scene(SceneError::Audio(e))
    }
}

pub fn process(
    sessions: &mut Sessions,
    model: &str,
    task: &SceneTask,
    recovery: &RecoveryConfig,
    (post, format): (&PostProcess, OutputFormat),
    probe: &MemoryProbe,
) -> Result<SceneOutput, SceneFailure> {
    let started = Instant::now();
    let model_rate = sessions.get(model)?.sample_rate();
    let (audio, rate) = decode::read_span_mono(&task.source, task.start_s, task.end_s)?;
    let input = resample::resample(&audio, rate, model_rate)?;
    drop(audio);
    let mut out = recovery::enhance(sessions, model, &input, model_rate, recovery)?;
    post.apply(&mut out.audio, model_rate);
    encode::write(&task.output, &out.audio, model_rate, format)?;
    Ok(SceneOutput {
        sample_rate: model_rate,
        duration_s: out.audio.len() as f64 / f64::from(model_rate),
        rms_in_db: level::rms_db(&input),
        rms_out_db: level::rms_db(&out.audio),
        processing_ms: started.elapsed().as_secs_f64() * 1000.0,
        recovery: out.step,
        oom_count: out.ooms,
        gpu_mem_mb: probe.sample().gpu_held_mb(),
    })
}
