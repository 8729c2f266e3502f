//! Whisper's input: the log-mel spectrogram of 16 kHz audio, computed the way faster-whisper computes it (so the
//! two agree on the same samples): 160 zero samples appended, 25 ms periodic-Hann frames every 10 ms with
//! reflected edges, the power spectrum through Slaney-style mel filters, log10 floored at 1e-10, clamped to 8
//! below the recording's maximum and scaled to about [-1, 1]. A window is 3000 frames (30 s); the frames past
//! the end of the recording are zeros.

use realfft::RealFftPlanner;

/// The rate Whisper listens at, Hz.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples between frames.
pub const HOP: usize = 160;
/// Frames in one window of the encoder.
pub const WINDOW_FRAMES: usize = 3000;
/// Seconds per frame.
pub const FRAME_S: f64 = HOP as f64 / SAMPLE_RATE as f64;
const N_FFT: usize = 400;
const BINS: usize = N_FFT / 2 + 1;

/// A recording's log-mel features: `mels` rows of `frames` values.
pub struct Features {
    mels: usize,
    frames: usize,
    data: Vec<f32>,
}

impl Features {
    /// The features of `samples` (16 kHz mono) with `mels` filters (80, or 128 for large-v3).
    pub fn compute(samples: &[f32], mels: usize) -> Self {
        let mut x = Vec::with_capacity(samples.len() + HOP + N_FFT);
        x.extend_from_slice(samples);
        x.extend(std::iter::repeat_n(0.0, HOP));
        // Reflection needs more samples than the pad; a recording this short is silence to Whisper anyway.
        if x.len() <= N_FFT / 2 {
            x.resize(N_FFT / 2 + 1, 0.0);
        }
        let frames = x.len() / HOP;
        let padded = reflect(&x, N_FFT / 2);
        let window: Vec<f32> = (0..N_FFT)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        let filters = mel_filters(mels);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        let (mut input, mut spectrum, mut scratch) =
            (fft.make_input_vec(), fft.make_output_vec(), fft.make_scratch_vec());
        let mut power = vec![0f32; BINS];
        let mut data = vec![0f32; mels * frames];
        for f in 0..frames {
            for ((slot, &s), &w) in input.iter_mut().zip(&padded[f * HOP..f * HOP + N_FFT]).zip(&window) {
                *slot = s * w;
            }
            // Lengths are the planner's own, so processing cannot fail.
            let _ = fft.process_with_scratch(&mut input, &mut spectrum, &mut scratch);
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, row) in filters.chunks_exact(BINS).enumerate() {
                let energy: f32 = row.iter().zip(&power).map(|(a, b)| a * b).sum();
                data[m * frames + f] = energy.max(1e-10).log10();
            }
        }
        let top = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut data {
            *v = (v.max(top - 8.0) + 4.0) / 4.0;
        }
        Self { mels, frames, data }
    }

    /// Frames that hold the recording (the last frame is the appended padding's).
    pub fn content_frames(&self) -> usize {
        self.frames.saturating_sub(1)
    }

    /// The encoder's input for `len` frames from `start`: `mels` rows of `WINDOW_FRAMES`, zeros past `len`.
    pub fn window(&self, start: usize, len: usize) -> Vec<f32> {
        let len = len.min(WINDOW_FRAMES).min(self.frames.saturating_sub(start));
        let mut out = vec![0f32; self.mels * WINDOW_FRAMES];
        for m in 0..self.mels {
            let row = &self.data[m * self.frames + start..m * self.frames + start + len];
            out[m * WINDOW_FRAMES..m * WINDOW_FRAMES + len].copy_from_slice(row);
        }
        out
    }
}

/// `x` with `pad` samples mirrored at each end (numpy's "reflect": the edge sample itself is not repeated).
fn reflect(x: &[f32], pad: usize) -> Vec<f32> {
    let n = x.len();
    let mut out = Vec::with_capacity(n + 2 * pad);
    out.extend((1..=pad).rev().map(|i| x[i.min(n - 1)]));
    out.extend_from_slice(x);
    out.extend((0..pad).map(|i| x[n.saturating_sub(2 + i)]));
    out
}

/// Slaney-style triangular mel filters over the FFT bins, area-normalised: `mels` rows of `BINS` weights.
fn mel_filters(mels: usize) -> Vec<f32> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MAX_MEL: f64 = 45.245640471924965;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    let freqs: Vec<f64> = (0..mels + 2)
        .map(|i| {
            let mel = MAX_MEL * i as f64 / (mels + 1) as f64;
            if mel >= min_log_mel { MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp() } else { F_SP * mel }
        })
        .collect();
    let bin_hz = |k: usize| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64;
    let mut out = vec![0f32; mels * BINS];
    for m in 0..mels {
        let enorm = 2.0 / (freqs[m + 2] - freqs[m]);
        for k in 0..BINS {
            let lower = (bin_hz(k) - freqs[m]) / (freqs[m + 1] - freqs[m]);
            let upper = (freqs[m + 2] - bin_hz(k)) / (freqs[m + 2] - freqs[m + 1]);
            out[m * BINS + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_faster_whisper_s_count_and_padding() {
        let second = vec![0.1f32; SAMPLE_RATE as usize];
        let f = Features::compute(&second, 80);
        // (16000 + 160) / 160 frames, the last one the padding's.
        assert_eq!(f.frames, 101);
        assert_eq!(f.content_frames(), 100);
        let w = f.window(0, f.content_frames());
        assert_eq!(w.len(), 80 * WINDOW_FRAMES);
        assert!(w[100..WINDOW_FRAMES].iter().all(|&v| v == 0.0), "past the content the window is zeros");
    }

    #[test]
    fn a_tone_lights_the_filter_around_its_frequency() {
        let tone: Vec<f32> =
            (0..SAMPLE_RATE).map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin()).collect();
        let f = Features::compute(&tone, 80);
        let frame = 50;
        let loudest =
            (0..80).max_by(|&a, &b| f.data[a * f.frames + frame].total_cmp(&f.data[b * f.frames + frame])).unwrap_or(0);
        // faster-whisper's features put a 1 kHz tone in filter 26 of 80 as well.
        assert_eq!(loudest, 26);
    }

    #[test]
    fn filters_are_slaney_normalised_triangles() {
        let filters = mel_filters(80);
        for row in filters.chunks_exact(BINS) {
            assert!(row.iter().all(|&w| w >= 0.0));
            assert!(row.iter().any(|&w| w > 0.0), "every filter covers a bin");
        }
    }

    #[test]
    fn reflection_mirrors_without_repeating_the_edge() {
        assert_eq!(reflect(&[1.0, 2.0, 3.0, 4.0], 2), vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]);
    }
}
