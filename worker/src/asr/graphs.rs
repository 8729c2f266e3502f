//! The two ONNX graphs `scripts/whisper_onnx.py` writes, run through the worker's own sessions: the encoder turns
//! a 30 s window into each decoder layer's cross-attention keys and values (kept in ONNX Runtime's memory for the
//! window's decoding), the decoder takes new tokens with the keys and values of the tokens before them and
//! returns the next logits with those keys and values grown.

use super::AsrError;
use crate::runtime::Runtime;
use ort::session::{RunOptions, Session};
use ort::value::{DynValue, Tensor};
use std::path::Path;
use std::time::Duration;

/// The model's dimensions (`shape.json`, written by the converter).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Shape {
    /// Width of every layer.
    pub width: usize,
    /// Mel filters per frame.
    pub mels: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Tokens in the vocabulary.
    pub vocabulary: usize,
    /// Most tokens the decoder can see (its positions).
    pub max_tokens: usize,
}

/// A window's cross-attention keys and values.
pub struct Cross {
    k: DynValue,
    v: DynValue,
}

/// The decoder's self-attention keys and values of the tokens seen so far.
pub struct Past {
    k: DynValue,
    v: DynValue,
}

/// The encoder's and decoder's sessions.
pub struct Graphs {
    encoder: Session,
    decoder: Session,
    run_options: Option<RunOptions>,
    /// The model's dimensions.
    pub shape: Shape,
    /// Time spent inside ONNX Runtime.
    pub clock: Duration,
}

impl Graphs {
    /// Builds both sessions for the model in `dir`.
    pub fn load(runtime: &Runtime, dir: &Path) -> Result<Self, AsrError> {
        let shape_path = dir.join("shape.json");
        let text = std::fs::read_to_string(&shape_path).map_err(|e| AsrError::file(&shape_path, e))?;
        let shape: Shape =
            serde_json::from_str(&text).map_err(|e| AsrError::Invalid { path: shape_path, reason: e.to_string() })?;
        let session = |name: &str| {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(AsrError::Missing(path));
            }
            runtime.session(&path).map_err(|source| AsrError::Load { path, source })
        };
        let encoder = session("encoder.onnx")?;
        let decoder = session("decoder.onnx")?;
        let run_options = runtime.run_options().map_err(|source| AsrError::Load { path: dir.to_path_buf(), source })?;
        Ok(Self { encoder, decoder, run_options, shape, clock: Duration::ZERO })
    }

    /// Encodes one window of features (`mels` rows of 3000 frames).
    pub fn encode(&mut self, mel: Vec<f32>) -> Result<Cross, AsrError> {
        let frames = mel.len() / self.shape.mels;
        let input = Tensor::from_array(([1usize, self.shape.mels, frames], mel))?;
        let started = std::time::Instant::now();
        let mut outputs = match &self.run_options {
            Some(options) => self.encoder.run_with_options(ort::inputs!["mel" => input], options)?,
            None => self.encoder.run(ort::inputs!["mel" => input])?,
        };
        self.clock += started.elapsed();
        let k = outputs.remove("cross_k").ok_or(AsrError::Output("cross_k"))?;
        let v = outputs.remove("cross_v").ok_or(AsrError::Output("cross_v"))?;
        Ok(Cross { k, v })
    }

    /// The state before the first token.
    pub fn start(&self) -> Result<Past, AsrError> {
        let empty = || Tensor::from_array(([self.shape.decoder_layers, 1, 0, self.shape.width], Vec::<f32>::new()));
        Ok(Past { k: empty()?.into_dyn(), v: empty()?.into_dyn() })
    }

    /// Feeds `tokens` after `past`; returns their logits (`tokens.len()` rows of the vocabulary) and the grown
    /// state.
    pub fn step(&mut self, cross: &Cross, past: Past, tokens: &[u32]) -> Result<(Vec<f32>, Past), AsrError> {
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let input = Tensor::from_array(([1usize, ids.len()], ids))?;
        let inputs = ort::inputs![
            "tokens" => input,
            "self_k" => past.k,
            "self_v" => past.v,
            "cross_k" => &cross.k,
            "cross_v" => &cross.v,
        ];
        let started = std::time::Instant::now();
        let mut outputs = match &self.run_options {
            Some(options) => self.decoder.run_with_options(inputs, options)?,
            None => self.decoder.run(inputs)?,
        };
        self.clock += started.elapsed();
        let (_, logits) = outputs.get("logits").ok_or(AsrError::Output("logits"))?.try_extract_tensor::<f32>()?;
        let logits = logits.to_vec();
        if logits.len() != tokens.len() * self.shape.vocabulary {
            return Err(AsrError::Shape(format!(
                "{} logits for {} tokens of a {}-token vocabulary",
                logits.len(),
                tokens.len(),
                self.shape.vocabulary
            )));
        }
        let k = outputs.remove("next_k").ok_or(AsrError::Output("next_k"))?;
        let v = outputs.remove("next_v").ok_or(AsrError::Output("next_v"))?;
        Ok((logits, Past { k, v }))
    }
}
