//! Fixed-shape window batching (optional, `--fixed-windows`): every scene is cut into windows of one length
//! (overlapping, joined with crossfades; see `audio::windows::process_fixed`) and the windows of consecutive
//! scenes run `batch` at a time, so every model call has the same shape. On a GPU that keeps the memory arena
//! flat from the first call and pays the convolution algorithm search once; on a CPU the batched recurrent
//! layers run faster per second of audio. Models whose graphs take a batch (DeepFilterNet3) run a batch in one
//! call; the others run its windows one after the other. docs/SESSIONS.md has the measured trade-offs.

use crate::model::InferenceError;
use scenequeue_audio::windows::process_fixed;
use serde::{Deserialize, Serialize};

/// Full calls' worth of scenes handed to the inference thread at once (the last call of a group is padded with
/// silent windows, so larger groups waste less; memory grows with the group).
const GROUP_CALLS: f64 = 4.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FixedWindows {
    /// Length of every window, seconds.
    pub window_s: f64,
    /// Overlap between consecutive windows of a scene, seconds (at most half a window): the later window's
    /// warm-up, then a crossfade over its last quarter.
    pub overlap_s: f64,
    /// Windows per model call.
    pub batch: usize,
}

impl FixedWindows {
    /// Seconds of audio a scene group holds: the consumer sends scenes in groups of at least this much.
    pub fn group_seconds(&self) -> f64 {
        GROUP_CALLS * self.batch as f64 * (self.window_s - self.overlap_s.min(self.window_s / 2.0))
    }

    /// Enhances `scenes` (at `rate` Hz) in fixed-shape batches of windows, each batch through `enhance`
    /// (`Sessions::enhance_batch` in the worker, an enhancer directly in the benchmark).
    pub fn run<E: From<InferenceError>>(
        &self,
        scenes: &[&[f32]],
        rate: u32,
        enhance: impl FnMut(&[&[f32]]) -> Result<Vec<Vec<f32>>, E>,
    ) -> Result<Vec<Vec<f32>>, E> {
        let samples = |s: f64| (s * f64::from(rate)).round() as usize;
        let overlap = samples(self.overlap_s);
        process_fixed(scenes, samples(self.window_s), (overlap, overlap / 4), self.batch, enhance, |message| {
            E::from(InferenceError::Shape(message))
        })
    }
}
