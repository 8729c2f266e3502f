//! Scene detection with a voice-activity model instead of energy: the recording is decoded and resampled to
//! the detector's rate as a stream, the detector gives a speech probability per frame, and a hysteresis turns
//! probabilities into the per-frame silence decision that `scenes::split_silent` cuts at. Memory stays bounded
//! for recordings of any length.

use crate::AudioError;
use crate::decode::{AudioInfo, for_each_chunk_hashed};
use crate::hashing::FileHash;
use crate::resample::StreamResampler;
use crate::scenes::{Span, SplitParams, split_silent};
use std::path::Path;

/// A voice-activity model, run as a stream.
pub trait SpeechDetector: Send + Sync {
    /// The rate it listens at.
    fn sample_rate(&self) -> u32;
    /// Seconds per probability.
    fn frame_s(&self) -> f64;
    /// A new stream (state starts empty).
    fn stream(&self) -> Box<dyn SpeechStream + '_>;
}

/// One recording's pass through a speech detector.
pub trait SpeechStream {
    /// Feeds samples at the detector's rate; returns the probabilities of the frames completed.
    fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, String>;
    /// Ends the stream (the last frame zero-padded); returns the remaining probabilities.
    fn finish(&mut self) -> Result<Vec<f32>, String>;
}

/// Speech starts above `on` and continues until the probability falls below `off` (Silero's own defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hysteresis {
    /// Speech starts when the probability rises above this.
    pub on: f32,
    /// Speech ends when the probability falls below this.
    pub off: f32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self { on: 0.5, off: 0.35 }
    }
}

/// Per-frame silence from per-frame speech probabilities.
pub(crate) fn silence_from_probs(probs: &[f32], h: Hysteresis) -> Vec<bool> {
    let mut speaking = false;
    probs
        .iter()
        .map(|&p| {
            speaking = if speaking { p >= h.off } else { p > h.on };
            !speaking
        })
        .collect()
}

/// Decodes `path` as a stream through `detector`; returns what the recording holds and its silence per frame.
/// With `hash`, the bytes read extend it.
pub(crate) fn detect(
    path: &Path,
    detector: &dyn SpeechDetector,
    h: Hysteresis,
    hash: Option<&FileHash>,
) -> Result<(AudioInfo, Vec<bool>), AudioError> {
    let mut stream = detector.stream();
    let mut resampler: Option<StreamResampler> = None;
    let mut probs = Vec::new();
    let info = for_each_chunk_hashed(path, 1 << 15, hash, |chunk, rate| {
        let rs = match resampler.as_mut() {
            Some(rs) => rs,
            None => resampler.insert(StreamResampler::new(rate, detector.sample_rate()).map_err(|e| e.to_string())?),
        };
        let x = rs.push(chunk).map_err(|e| e.to_string())?;
        probs.extend(stream.push(&x)?);
        Ok(())
    })?;
    let unreadable = |reason: String| AudioError::Unreadable { path: path.to_path_buf(), reason };
    if let Some(rs) = resampler.as_mut() {
        let tail = rs.finish()?;
        probs.extend(stream.push(&tail).map_err(unreadable)?);
    }
    probs.extend(stream.finish().map_err(unreadable)?);
    Ok((info, silence_from_probs(&probs, h)))
}

/// Cuts a recording into scenes with `detector` deciding what is speech; with `hash`, the bytes read extend it.
pub fn split_with(
    path: &Path,
    detector: &dyn SpeechDetector,
    p: &SplitParams,
    hash: Option<&FileHash>,
) -> Result<(AudioInfo, Vec<Span>), AudioError> {
    let (info, silent) = detect(path, detector, Hysteresis::default(), hash)?;
    Ok((info, split_silent(&silent, detector.frame_s(), info.duration_s(), p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_bridges_dips_between_the_thresholds() {
        let probs = [0.1, 0.6, 0.4, 0.4, 0.3, 0.45, 0.55, 0.2];
        let silent = silence_from_probs(&probs, Hysteresis::default());
        assert_eq!(silent, vec![true, false, false, false, true, true, false, true]);
    }
}
