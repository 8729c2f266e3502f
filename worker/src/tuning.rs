//! A batch's enhancement settings (`core::options`) resolved over this worker's defaults, carried by each scene
//! task (so an isolated child gets them too), and the attenuation limit they may ask for.
//!
//! The attenuation limit is DeepFilterNet's (`df_set_atten_lim`): with `lim = 10^(-dB/20)` the output is
//! `(1 - lim) * enhanced + lim * noisy`, so noise the model removes entirely comes out attenuated by the limit
//! and no more. DeepFilterNet mixes the two spectra; the inverse STFT is linear and every adapter's output is
//! aligned with its input, so mixing the waveforms is the same thing, for any model.

use scenequeue_audio::dsp::PostProcess;
use scenequeue_core::options::BatchOptions;
use serde::{Deserialize, Serialize};

/// Settings for one scene that differ from the runner's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// The post-processing chain; None keeps the runner's.
    pub post: Option<PostProcess>,
    /// At most this many dB of noise removed; None (or 100 dB and more): no limit.
    pub atten_lim_db: Option<f32>,
    /// DeepFilterNet's post-filter strength; None or 0: off.
    pub post_filter_beta: Option<f32>,
}

impl Tuning {
    /// `options` over the worker's post-processing `defaults`.
    pub fn resolve(defaults: &PostProcess, options: &BatchOptions) -> Self {
        let post = PostProcess {
            highpass_hz: options.highpass_hz.map_or(defaults.highpass_hz, |hz| (hz > 0.0).then_some(hz)),
            loudness_lufs: options.loudness_lufs.or(defaults.loudness_lufs),
            peak_ceiling_dbfs: defaults.peak_ceiling_dbfs,
        };
        Self {
            post: (post != *defaults).then_some(post),
            atten_lim_db: options.atten_lim_db,
            post_filter_beta: options.post_filter_beta.filter(|&beta| beta > 0.0),
        }
    }

    /// Mixes `input` back into `enhanced` (same length, aligned) so that nothing is attenuated by more than the
    /// limit.
    pub fn limit_attenuation(&self, enhanced: &mut [f32], input: &[f32]) {
        let Some(db) = self.atten_lim_db.filter(|&db| db > 0.0 && db < 100.0) else { return };
        let lim = 10f32.powf(-db / 20.0);
        for (y, &x) in enhanced.iter_mut().zip(input) {
            *y = (1.0 - lim) * *y + lim * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_options_override_the_worker_defaults() {
        let defaults = PostProcess::default();
        assert_eq!(Tuning::resolve(&defaults, &BatchOptions::default()), Tuning::default());
        let options = BatchOptions {
            highpass_hz: Some(0.0),
            loudness_lufs: Some(-20.0),
            atten_lim_db: Some(12.0),
            post_filter_beta: Some(0.0),
        };
        let tuning = Tuning::resolve(&defaults, &options);
        let post = tuning.post.unwrap();
        assert_eq!((post.highpass_hz, post.loudness_lufs), (None, Some(-20.0)));
        assert_eq!((tuning.atten_lim_db, tuning.post_filter_beta), (Some(12.0), None));
    }

    #[test]
    fn the_limit_keeps_removed_noise_at_the_limit() {
        let tuning = Tuning { atten_lim_db: Some(20.0), ..Tuning::default() };
        let input = vec![0.5f32; 8];
        let mut removed = vec![0.0f32; 8];
        tuning.limit_attenuation(&mut removed, &input);
        assert!(removed.iter().all(|&v| (v - 0.05).abs() < 1e-6));
        let mut kept = input.clone();
        tuning.limit_attenuation(&mut kept, &input);
        assert_eq!(kept, input);
    }
}
