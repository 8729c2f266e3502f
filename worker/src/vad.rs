//! Silero VAD (PyPI `silero-vad`, MIT): the "sequence" export, which scores up to 512 frames of 32 ms per call
//! (`input` [frames, 64 + 512] at 16 kHz, each frame prefixed with the last 64 samples of the one before; LSTM
//! state `h`/`c` [1, 1, 128] carried across calls). Used by the scheduler to find speech when energy is a poor
//! guide (music, steady noise). Runs on the CPU.

use crate::model::ModelError;
use crate::runtime::{Device, Runtime};
use ort::session::Session;
use ort::value::Tensor;
use scenequeue_audio::vad::{SpeechDetector, SpeechStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const RATE: u32 = 16_000;
const FRAME: usize = 512;
const CONTEXT: usize = 64;
const STATE: usize = 128;
/// Frames per model call: 16.4 s of audio.
const BLOCK: usize = 512;
pub const MODEL_FILE: &str = "silero-vad/silero_vad_16k_sequence.onnx";

/// Silero VAD speech detector (16 kHz, 32 ms frames) on a CPU session shared behind a lock.
pub struct SileroVad {
    session: Mutex<Session>,
}

impl SileroVad {
    /// Loads `<model_dir>/silero-vad/silero_vad_16k_sequence.onnx` on a CPU session.
    pub fn load(runtime: &Runtime, model_dir: &Path) -> Result<Self, ModelError> {
        let path: PathBuf = model_dir.join(MODEL_FILE);
        if !path.is_file() {
            return Err(ModelError::FileMissing { path });
        }
        let runtime = if runtime.device() == Device::Cpu { runtime.clone() } else { runtime.on_cpu() };
        let session = runtime.session(&path).map_err(|source| ModelError::Load { path: path.clone(), source })?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if names != ["input", "h", "c"] {
            return Err(ModelError::BadManifest {
                path,
                reason: format!("expected inputs input, h, c (Silero VAD sequence export), found {names:?}"),
            });
        }
        Ok(Self { session: Mutex::new(session) })
    }

    /// Scores whole frames; updates the LSTM state.
    fn score(&self, block: Vec<f32>, frames: usize, h: &mut Vec<f32>, c: &mut Vec<f32>) -> Result<Vec<f32>, String> {
        let err = |e: ort::Error| format!("Silero VAD: {e}");
        let mut session = self.session.lock().map_err(|_| "Silero VAD session poisoned".to_string())?;
        let outputs = session
            .run(ort::inputs![
                "input" => Tensor::from_array(([frames, CONTEXT + FRAME], block)).map_err(err)?,
                "h" => Tensor::from_array(([1usize, 1, STATE], std::mem::take(h))).map_err(err)?,
                "c" => Tensor::from_array(([1usize, 1, STATE], std::mem::take(c))).map_err(err)?,
            ])
            .map_err(err)?;
        let probs = outputs["speech_probs"].try_extract_tensor::<f32>().map_err(err)?.1.to_vec();
        *h = outputs["hn"].try_extract_tensor::<f32>().map_err(err)?.1.to_vec();
        *c = outputs["cn"].try_extract_tensor::<f32>().map_err(err)?.1.to_vec();
        if probs.len() != frames || h.len() != STATE || c.len() != STATE {
            return Err(format!("Silero VAD returned {} probabilities for {frames} frames", probs.len()));
        }
        Ok(probs)
    }
}

impl SpeechDetector for SileroVad {
    fn sample_rate(&self) -> u32 {
        RATE
    }

    fn frame_s(&self) -> f64 {
        FRAME as f64 / f64::from(RATE)
    }

    fn stream(&self) -> Box<dyn SpeechStream + '_> {
        Box::new(Stream {
            vad: self,
            pending: Vec::new(),
            context: [0.0; CONTEXT],
            h: vec![0.0; STATE],
            c: vec![0.0; STATE],
        })
    }
}

struct Stream<'a> {
    vad: &'a SileroVad,
    pending: Vec<f32>,
    context: [f32; CONTEXT],
    h: Vec<f32>,
    c: Vec<f32>,
}

impl Stream<'_> {
    /// Scores the first `frames` whole frames of `pending`.
    fn run(&mut self, frames: usize) -> Result<Vec<f32>, String> {
        let mut block = Vec::with_capacity(frames * (CONTEXT + FRAME));
        for frame in self.pending[..frames * FRAME].chunks_exact(FRAME) {
            block.extend_from_slice(&self.context);
            block.extend_from_slice(frame);
            self.context.copy_from_slice(&frame[FRAME - CONTEXT..]);
        }
        self.pending.drain(..frames * FRAME);
        self.vad.score(block, frames, &mut self.h, &mut self.c)
    }
}

impl SpeechStream for Stream<'_> {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, String> {
        self.pending.extend_from_slice(samples);
        let mut probs = Vec::new();
        while self.pending.len() >= FRAME * BLOCK {
            probs.extend(self.run(BLOCK)?);
        }
        Ok(probs)
    }

    fn finish(&mut self) -> Result<Vec<f32>, String> {
        if !self.pending.is_empty() {
            let frames = self.pending.len().div_ceil(FRAME);
            self.pending.resize(frames * FRAME, 0.0);
            return self.run(frames);
        }
        Ok(Vec::new())
    }
}
