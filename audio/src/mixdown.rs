//! Interleaved frames to mono, the same way on every decoding route: the channels are averaged; a sample that is
//! not finite (NaN, infinity: a float file damaged in writing) counts as 0 and is tallied, so it can never turn
//! a whole scene into NaN (and then silence) downstream. The energy of each channel and of the mix are kept,
//! to tell channels that cancel when averaged (one the other inverted) from a recording that is silent.

/// The mix is this much below its loudest channel when channels cancel, dB (uncorrelated channels lose at most
/// 3 dB per halving of the count; identical ones nothing).
pub(crate) const CANCEL_DB: f64 = 20.0;
/// A channel quieter than this (mean square, dBFS) is silence, not cancellation.
const AUDIBLE_DB: f64 = -60.0;

/// Running state of one stream's mixdown.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mixdown {
    /// Samples that were not finite, replaced by 0.
    pub non_finite: u64,
    channel_energy: Vec<f64>,
    mix_energy: f64,
    frames: u64,
}

impl Mixdown {
    /// Appends the mono mix of `interleaved` frames of `channels` channels to `out`.
    pub fn mix(&mut self, interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
        let channels = channels.max(1);
        if self.channel_energy.len() != channels {
            self.channel_energy = vec![0.0; channels];
        }
        let scale = 1.0 / channels as f32;
        for frame in interleaved.chunks_exact(channels) {
            let mut sum = 0.0f32;
            for (c, &s) in frame.iter().enumerate() {
                let s = if s.is_finite() {
                    s
                } else {
                    self.non_finite += 1;
                    0.0
                };
                self.channel_energy[c] += f64::from(s) * f64::from(s);
                sum += s;
            }
            let m = sum * scale;
            self.mix_energy += f64::from(m) * f64::from(m);
            out.push(m);
        }
        self.frames += (interleaved.len() / channels) as u64;
    }

    /// When the channels cancel each other in the mix: the loudest channel's level and the mix's, dBFS.
    pub fn cancellation(&self) -> Option<(f64, f64)> {
        if self.channel_energy.len() < 2 || self.frames == 0 {
            return None;
        }
        let db = |e: f64| 10.0 * (e / self.frames as f64).max(1e-15).log10();
        let loudest = db(self.channel_energy.iter().copied().fold(0.0, f64::max));
        let mix = db(self.mix_energy);
        (loudest > AUDIBLE_DB && mix < loudest - CANCEL_DB).then_some((loudest, mix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stereo(left: &[f32], right: &[f32]) -> Vec<f32> {
        left.iter().zip(right).flat_map(|(&l, &r)| [l, r]).collect()
    }

    fn tone(n: usize) -> Vec<f32> {
        (0..n).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect()
    }

    #[test]
    fn non_finite_samples_count_as_zero_and_are_tallied() {
        let mut m = Mixdown::default();
        let mut out = Vec::new();
        m.mix(&[0.5, f32::NAN, f32::INFINITY, 0.25], 1, &mut out);
        assert_eq!(out, vec![0.5, 0.0, 0.0, 0.25]);
        assert_eq!(m.non_finite, 2);
    }

    #[test]
    fn inverted_channels_are_told_from_silence_and_from_ordinary_stereo() {
        let x = tone(4800);
        let inverted: Vec<f32> = x.iter().map(|s| -s).collect();
        let (mut m, mut out) = (Mixdown::default(), Vec::new());
        m.mix(&stereo(&x, &inverted), 2, &mut out);
        let (loudest, mix) = m.cancellation().expect("cancels");
        assert!(loudest > -15.0 && mix < -100.0, "{loudest} {mix}");
        let (mut same, mut out) = (Mixdown::default(), Vec::new());
        same.mix(&stereo(&x, &x), 2, &mut out);
        assert_eq!(same.cancellation(), None);
        let quiet = vec![0.0; 4800];
        let (mut one_sided, mut out) = (Mixdown::default(), Vec::new());
        one_sided.mix(&stereo(&x, &quiet), 2, &mut out);
        assert_eq!(one_sided.cancellation(), None, "one silent channel costs 6 dB, not a cancellation");
        let (mut silent, mut out) = (Mixdown::default(), Vec::new());
        silent.mix(&stereo(&quiet, &quiet), 2, &mut out);
        assert_eq!(silent.cancellation(), None);
    }
}
