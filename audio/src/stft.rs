//! Short-time Fourier analysis and weighted overlap-add synthesis, as spectral-mask enhancers use them.
//!
//! The signal is padded by one hop in front and enough zeros behind that every input sample is covered by
//! `win_len / hop` frames; synthesis trims the padding again, so a unit mask reproduces the input exactly when
//! the window pair satisfies the WOLA condition (e.g. square-root periodic Hann at 50 % overlap).

pub use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// STFT analysis and overlap-add synthesis with a fixed window length, hop and FFT size (samples), FFT plans
/// built once.
pub struct Stft {
    win_len: usize,
    hop: usize,
    n_fft: usize,
    analysis: Vec<f32>,
    synthesis: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

/// Square root of the periodic Hann window: analysis and synthesis window for 50 % overlap.
pub fn sqrt_hann(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let h = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / len as f64).cos();
            h.sqrt() as f32
        })
        .collect()
}

impl Stft {
    /// `synthesis` must satisfy sum_k analysis[n + k*hop] * synthesis[n + k*hop] = 1 for perfect reconstruction.
    pub fn new(win_len: usize, hop: usize, n_fft: usize, analysis: Vec<f32>, synthesis: Vec<f32>) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        Self {
            win_len,
            hop,
            n_fft,
            analysis,
            synthesis,
            forward: planner.plan_fft_forward(n_fft),
            inverse: planner.plan_fft_inverse(n_fft),
        }
    }

    /// Frequency bins per frame: `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Number of frames `analyze` yields for `len` samples.
    pub(crate) fn frames_for(&self, len: usize) -> usize {
        (len + self.hop).div_ceil(self.hop) + (self.win_len / self.hop).saturating_sub(1)
    }

    /// Frames x bins spectrum, row-major.
    pub fn analyze(&self, x: &[f32]) -> Vec<Complex32> {
        let frames = self.frames_for(x.len());
        let bins = self.bins();
        let padded_len = (frames - 1) * self.hop + self.win_len;
        let mut padded = vec![0.0f32; padded_len];
        padded[self.hop..self.hop + x.len()].copy_from_slice(x);
        let mut spec = vec![Complex32::new(0.0, 0.0); frames * bins];
        let mut buf = self.forward.make_input_vec();
        let mut scratch = self.forward.make_scratch_vec();
        for (t, out) in spec.chunks_exact_mut(bins).enumerate() {
            let frame = &padded[t * self.hop..t * self.hop + self.win_len];
            buf.fill(0.0);
            for ((b, &s), &w) in buf.iter_mut().zip(frame).zip(&self.analysis) {
                *b = s * w;
            }
            // Lengths come from the plan itself, so processing cannot fail.
            let _ = self.forward.process_with_scratch(&mut buf, out, &mut scratch);
        }
        spec
    }

    /// Inverse of `analyze`: returns exactly `len` samples.
    pub fn synthesize(&self, spec: &[Complex32], len: usize) -> Vec<f32> {
        let bins = self.bins();
        let frames = spec.len() / bins;
        let mut out = vec![0.0f32; (frames.max(1) - 1) * self.hop + self.win_len];
        let mut buf = self.inverse.make_input_vec();
        let mut time = self.inverse.make_output_vec();
        let mut scratch = self.inverse.make_scratch_vec();
        let scale = 1.0 / self.n_fft as f32;
        for (t, frame) in spec.chunks_exact(bins).enumerate() {
            buf.copy_from_slice(frame);
            // A real signal's DC and Nyquist bins are real; the inverse transform insists on it.
            buf[0].im = 0.0;
            if let Some(last) = buf.last_mut() {
                last.im = 0.0;
            }
            let _ = self.inverse.process_with_scratch(&mut buf, &mut time, &mut scratch);
            let dst = &mut out[t * self.hop..t * self.hop + self.win_len];
            for ((o, &s), &w) in dst.iter_mut().zip(&time).zip(&self.synthesis) {
                *o += s * scale * w;
            }
        }
        let start = self.hop.min(out.len());
        let mut y = out[start..(start + len).min(out.len())].to_vec();
        y.resize(len, 0.0);
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_mask_reconstructs_the_input() {
        let w = sqrt_hann(960);
        let stft = Stft::new(960, 480, 1024, w.clone(), w);
        let x: Vec<f32> = (0..10_007).map(|i| ((i as f32 * 0.013).sin() + (i as f32 * 0.31).cos()) * 0.3).collect();
        let spec = stft.analyze(&x);
        assert_eq!(spec.len(), stft.frames_for(x.len()) * 513);
        let y = stft.synthesize(&spec, x.len());
        let err = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-4, "max reconstruction error {err}");
    }
}
