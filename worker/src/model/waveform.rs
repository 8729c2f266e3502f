//! The generic waveform adapter: any ONNX model with one float waveform input ([T], [1, T] or [B, T]) and one
//! waveform output at the rate its manifest declares, such as an exported MossFormer2_SE_48K or ZipEnhancer
//! that a user brings. The output must be as long as the input (within 2 %, to allow models that round to their
//! hop; the difference is trimmed or zero-padded at the end).

use super::{AdapterKind, InferenceError, ModelError};
use ort::session::{RunOptions, Session};
use ort::value::{Tensor, ValueType};
use std::path::Path;

pub struct Waveform {
    session: Session,
    run_options: Option<RunOptions>,
    runtime_time: std::time::Duration,
    sample_rate: u32,
    input: String,
    /// Rank of the input: 1 ([T]) or 2 ([1, T]).
    rank: usize,
}

fn shape(t: &ValueType) -> Option<Vec<i64>> {
    match t {
        ValueType::Tensor { ty: ort::value::TensorElementType::Float32, shape, .. } => Some(shape.to_vec()),
        _ => None,
    }
}

impl Waveform {
    pub fn new(
        session: Session,
        run_options: Option<RunOptions>,
        sample_rate: u32,
        path: &Path,
    ) -> Result<Self, ModelError> {
        let mismatch = |found: String| ModelError::Mismatch {
            path: path.to_path_buf(),
            adapter: AdapterKind::Waveform,
            expected: "one float32 input and one float32 output, each [T], [1, T] or [B, T]".into(),
            found,
        };
        let (inputs, outputs) = (session.inputs(), session.outputs());
        if inputs.len() != 1 || outputs.len() != 1 {
            return Err(mismatch(format!("{} inputs and {} outputs", inputs.len(), outputs.len())));
        }
        let (Some(in_shape), Some(out_shape)) = (shape(inputs[0].dtype()), shape(outputs[0].dtype())) else {
            return Err(mismatch(format!("{:?} -> {:?}", inputs[0].dtype(), outputs[0].dtype())));
        };
        let fits = |s: &[i64]| match s {
            [_] => true,
            [b, _] => *b == 1 || *b < 0,
            _ => false,
        };
        if !fits(&in_shape) || !fits(&out_shape) {
            return Err(mismatch(format!("{in_shape:?} -> {out_shape:?}")));
        }
        Ok(Self {
            rank: in_shape.len(),
            input: inputs[0].name().to_string(),
            session,
            run_options,
            runtime_time: std::time::Duration::ZERO,
            sample_rate,
        })
    }
}

impl super::Enhancer for Waveform {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn runtime_time(&self) -> std::time::Duration {
        self.runtime_time
    }

    fn enhance(&mut self, x: &[f32]) -> Result<Vec<f32>, InferenceError> {
        let tensor = match self.rank {
            1 => Tensor::from_array(([x.len()], x.to_vec()))?,
            _ => Tensor::from_array(([1usize, x.len()], x.to_vec()))?,
        };
        let inputs = ort::inputs![self.input.as_str() => tensor];
        let outputs = super::run(&mut self.session, self.run_options.as_ref(), inputs, &mut self.runtime_time)?;
        let (_, y) = outputs[0].try_extract_tensor::<f32>()?;
        let tolerance = x.len() / 50 + 1;
        if y.len().abs_diff(x.len()) > tolerance {
            return Err(InferenceError::Shape(format!("{} output samples for {} input samples", y.len(), x.len())));
        }
        let mut y = y.to_vec();
        y.resize(x.len(), 0.0);
        Ok(y)
    }
}
