//! One scene, end to end, on the calling (blocking) thread: read its span from the recording, resample to the
//! model's rate, enhance, write the output, and measure.

use crate::model::{Enhancer, InferenceError};
use scenequeue_audio::{AudioError, decode, encode, level, resample};
use std::path::PathBuf;
use std::time::Instant;

/// What to do for one scene.
#[derive(Debug, Clone)]
pub struct SceneTask {
    pub source: PathBuf,
    pub start_s: f64,
    pub end_s: f64,
    pub output: PathBuf,
}

/// What one scene produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneOutput {
    pub sample_rate: u32,
    pub duration_s: f64,
    pub rms_in_db: f32,
    pub rms_out_db: f32,
    pub processing_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("inference failed: {0}")]
    Inference(#[from] InferenceError),
}

pub fn process(enhancer: &mut dyn Enhancer, task: &SceneTask) -> Result<SceneOutput, SceneError> {
    let started = Instant::now();
    let (audio, rate) = decode::read_span_mono(&task.source, task.start_s, task.end_s)?;
    let model_rate = enhancer.sample_rate();
    let input = resample::resample(&audio, rate, model_rate)?;
    let output = enhancer.enhance(&input)?;
    encode::write_wav_pcm16(&task.output, &output, model_rate)?;
    Ok(SceneOutput {
        sample_rate: model_rate,
        duration_s: output.len() as f64 / f64::from(model_rate),
        rms_in_db: level::rms_db(&input),
        rms_out_db: level::rms_db(&output),
        processing_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}
