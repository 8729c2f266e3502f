//! Running a scene through the model within bounded memory, and out-of-memory recovery.
//!
//! A scene longer than the model's window (`Enhancer::window_s`: 30 s for DeepFilterNet3) or the configured
//! `long_scene_window_s` runs in windows of that length joined by 1 s linear crossfades, so a 30-minute scene
//! costs the memory of one window (and, as `scene::process` writes each window's output over its input, the
//! scene is held once). Models keep no window by default: each window starts the recurrent state
//! from zero, and NSNet2's state was measured not to re-converge to the whole-clip state (outputs agreeing to
//! only 3-6 dB even 25 s into a window), while DeepFilterNet3's agrees to 35 dB within 2 s. An allocation failure costs at most a retry, never the
//! worker or the job:
//! 1. drop the session (its arena with it), create a fresh one, run the scene whole again;
//! 2. drop it again and run the scene in overlapping windows, shorter each time (window_s, then a third of it,
//!    and so on down to min_window_s), each on a fresh session;
//! 3. if configured, run the scene on a CPU session;
//! 4. only then fail the scene, with every step named in the reason.

use crate::sessions::{EnhanceError, Sessions};
use scenequeue_audio::windows::process_windowed;
use scenequeue_core::states::RecoveryStep;
use serde::{Deserialize, Serialize};

/// Long-scene windows and out-of-memory recovery. `Default` holds the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryConfig {
    /// Scenes longer than this always run in windows of this length (bounded memory for scenes of any length),
    /// joined by `crossfade_s` crossfades; 0 runs every scene whole (the default, see above).
    pub long_scene_window_s: f64,
    /// Crossfade between long-scene windows, seconds.
    pub crossfade_s: f64,
    /// Longest window of step 2, seconds (at most half the scene).
    pub window_s: f64,
    /// Shortest window step 2 tries, seconds.
    pub min_window_s: f64,
    /// Crossfade between windows, seconds.
    pub overlap_s: f64,
    /// Allow step 3.
    pub cpu_fallback: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            long_scene_window_s: 0.0,
            crossfade_s: 1.0,
            window_s: 30.0,
            min_window_s: 2.0,
            overlap_s: 0.5,
            cpu_fallback: false,
        }
    }
}

impl RecoveryConfig {
    /// Refuses windows no scene can run in, saying which.
    pub fn validate(&self) -> Result<(), String> {
        if self.long_scene_window_s.is_nan() || self.long_scene_window_s < 0.0 {
            return Err(format!("the long-scene window must be 0 (off) or more, not {} s", self.long_scene_window_s));
        }
        if self.window_s.is_nan() || self.min_window_s < 1.0 || self.window_s < self.min_window_s {
            return Err(format!(
                "the out-of-memory window must be at least {} s, not {} s",
                self.min_window_s.max(1.0),
                self.window_s
            ));
        }
        Ok(())
    }
}

/// Enhanced audio and how it was obtained.
#[derive(Debug)]
pub struct Recovered {
    pub audio: Vec<f32>,
    pub step: RecoveryStep,
    pub ooms: u32,
}

/// The window a scene longer than it runs in and the crossfade between windows, in samples at `rate` Hz: the
/// configured window, else the model's own (see `Enhancer::window_s`); None where scenes run whole.
pub fn long_windows(
    sessions: &mut Sessions,
    model: &str,
    rate: u32,
    config: &RecoveryConfig,
) -> Result<Option<(usize, usize)>, EnhanceError> {
    let rate = f64::from(rate);
    let window_s = if config.long_scene_window_s > 0.0 {
        Some(config.long_scene_window_s)
    } else {
        sessions.get(model)?.window_s()
    };
    Ok(window_s.map(|w| ((w * rate) as usize, (config.crossfade_s * rate) as usize)).filter(|&(w, _)| w > 0))
}

/// Runs `model` over `x` (at `rate` Hz), recovering from out-of-memory errors as described above. Any other
/// error is returned at once.
pub fn enhance(
    sessions: &mut Sessions,
    model: &str,
    x: &[f32],
    rate: u32,
    config: &RecoveryConfig,
) -> Result<Recovered, EnhanceError> {
    let first = match long_windows(sessions, model, rate, config)? {
        Some((long, fade)) if x.len() > long => process_windowed(x, long, fade, |w| sessions.enhance(model, w)),
        _ => sessions.enhance(model, x),
    };
    match first {
        Ok(audio) => Ok(Recovered { audio, step: RecoveryStep::None, ooms: 0 }),
        Err(e) if e.is_out_of_memory() => recover(sessions, model, x, rate, config, e),
        Err(e) => Err(e),
    }
}

/// Recovery after a first attempt at `x` failed with the out-of-memory error `first`: steps 1 to 4 above.
pub fn recover(
    sessions: &mut Sessions,
    model: &str,
    x: &[f32],
    rate: u32,
    config: &RecoveryConfig,
    first: EnhanceError,
) -> Result<Recovered, EnhanceError> {
    tracing::warn!(error = %first, "out of memory; recreating the session");
    drop(first);
    let mut ooms = 1;
    sessions.reset();
    match sessions.enhance(model, x) {
        Ok(audio) => return Ok(Recovered { audio, step: RecoveryStep::Recreated, ooms }),
        Err(e) if e.is_out_of_memory() => tracing::warn!(error = %e, "out of memory on a fresh session"),
        Err(e) => return Err(e),
    }

    let rate = f64::from(rate);
    let mut last = None;
    let mut tried: Option<usize> = None;
    let mut window_s = config.window_s;
    while window_s >= config.min_window_s * 0.999 {
        let window = ((window_s * rate) as usize).min(x.len().div_ceil(2)).max((config.min_window_s * rate) as usize);
        window_s /= 3.0;
        if tried.is_some_and(|t| t <= window) {
            continue;
        }
        tried = Some(window);
        ooms += 1;
        sessions.reset();
        let overlap = ((config.overlap_s * rate) as usize).min(window / 4);
        tracing::warn!(window_s = window as f64 / rate, "still out of memory; retrying in windows");
        match process_windowed(x, window, overlap, |w| sessions.enhance(model, w)) {
            Ok(audio) => return Ok(Recovered { audio, step: RecoveryStep::Windowed, ooms }),
            Err(e) if e.is_out_of_memory() => last = Some(e),
            Err(e) => return Err(e),
        }
    }

    ooms += 1;
    sessions.reset();
    if config.cpu_fallback {
        tracing::warn!("still out of memory; running the scene on the CPU");
        let audio = sessions.enhance_on_cpu(model, x)?;
        return Ok(Recovered { audio, step: RecoveryStep::Cpu, ooms });
    }
    let smallest = tried.map_or(0.0, |w| w as f64 / rate);
    let last = last.map_or_else(String::new, |e| format!(": {e}"));
    Err(EnhanceError::Inference(crate::model::InferenceError::OutOfMemory(format!(
        "still out of memory after a fresh session and windows down to {smallest:.1} s (CPU fallback is off){last}"
    ))))
}
