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

/// Fixed-shape window settings, checked by [`FixedWindows::new`].
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

/// `WINDOW_S:OVERLAP_S:BATCH`, e.g. `10:2:8` (benchmarks and the GPU check).
impl std::str::FromStr for FixedWindows {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected WINDOW_S:OVERLAP_S:BATCH, e.g. 10:2:8");
        let parts: Vec<&str> = s.trim().split(':').collect();
        let [w, o, b] = parts.as_slice() else { return Err(bad()) };
        let (window_s, overlap_s, batch) = (
            w.parse::<f64>().map_err(|_| bad())?,
            o.parse::<f64>().map_err(|_| bad())?,
            b.parse::<usize>().map_err(|_| bad())?,
        );
        Self::new(window_s, overlap_s, batch).map_err(|e| format!("{s:?}: {e}"))
    }
}

/// The most audio one model call may hold, seconds (window x batch): bounds the memory of a call.
pub const MAX_CALL_S: f64 = 320.0;

impl FixedWindows {
    /// Default overlap of consecutive windows of a scene, seconds.
    pub const DEFAULT_OVERLAP_S: f64 = 2.0;
    /// Default windows per model call.
    pub const DEFAULT_BATCH: usize = 8;

    /// Checked settings: a window of 1 s or more, an overlap of at most half of it, a batch of 1 or more, and at
    /// most [`MAX_CALL_S`] of audio per call.
    pub fn new(window_s: f64, overlap_s: f64, batch: usize) -> Result<Self, String> {
        if window_s.is_nan() || window_s < 1.0 {
            return Err(format!("fixed windows must be 1 s or longer, not {window_s} s"));
        }
        if !(0.0..=window_s / 2.0).contains(&overlap_s) {
            let half = window_s / 2.0;
            return Err(format!("the window overlap must be 0 to half the window ({half} s), not {overlap_s} s"));
        }
        if batch == 0 || window_s * batch as f64 > MAX_CALL_S {
            return Err(format!(
                "{batch} windows of {window_s} s per call: a call holds 1 window or more and at most {MAX_CALL_S} s \
                 of audio"
            ));
        }
        Ok(Self { window_s, overlap_s, batch })
    }

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

#[cfg(test)]
mod tests {
    use super::FixedWindows;

    #[test]
    fn settings_parse_and_bad_ones_are_refused() {
        assert_eq!("10:2:8".parse(), Ok(FixedWindows { window_s: 10.0, overlap_s: 2.0, batch: 8 }));
        for bad in ["10:2", "10:6:8", "0.5:0:8", "10:2:0", "a:b:c", "60:2:8", "nan:0:1"] {
            assert!(bad.parse::<FixedWindows>().is_err(), "{bad}");
        }
    }
}
