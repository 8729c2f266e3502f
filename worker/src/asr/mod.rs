//! Speech recognition with Whisper, on the worker's ONNX Runtime: the same library, device, threads, CUDA
//! settings and session lifetime as the enhancers. A model lives in `models/asr/NAME/`, converted once from
//! CTranslate2's weights by `scripts/whisper_onnx.py` (run by `scripts/fetch-models.sh`): `encoder.onnx`,
//! `decoder.onnx`, `shape.json`, `vocabulary.txt`, `config.json` and a `manifest.toml`.
//!
//! Decoding is greedy with timestamps and no text carried from one window to the next, long recordings are
//! walked window by window (`longform`), and the result is text, timed segments, the language, the average
//! log-probability and the no-speech probability.

mod features;
mod graphs;
mod greedy;
mod longform;
mod vocab;

pub use features::SAMPLE_RATE;
pub use longform::compression_ratio;

use crate::runtime::{Runtime, RuntimeError};
use features::Features;
use graphs::{Cross, Graphs};
pub use scenequeue_core::transcripts::{Segment, Transcript};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vocab::Vocabulary;

/// Where recognition models live under the model directory.
pub const ASR_DIR: &str = "asr";

/// The language to transcribe in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Language {
    /// Detected from the first window (English for English-only models).
    #[default]
    Auto,
    /// This code (`en`, `de`, `ja`, ...).
    Code(String),
}

impl std::str::FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            code if (2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase()) => {
                Ok(Self::Code(code.to_string()))
            }
            _ => Err(format!("unknown language {s:?}: expected auto or a code such as en, de, ja")),
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Code(code) => f.write_str(code),
        }
    }
}

/// Why a model could not be loaded or a recording transcribed.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    /// No such recognition model.
    #[error("recognition model {name:?}: no manifest at {path} (models available: {available})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Where its manifest was looked for.
        path: PathBuf,
        /// The recognition models that are there.
        available: String,
    },
    /// A file the model needs is missing.
    #[error(
        "{0}: missing (scripts/fetch-models.sh fetches the recognition models: tiny.en always, base with --whisper-base)"
    )]
    Missing(PathBuf),
    /// A file of the model cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the model is not what it should be.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// ONNX Runtime cannot build a session for a graph.
    #[error("{path}: cannot load as ONNX: {source}")]
    Load {
        /// The graph.
        path: PathBuf,
        /// ONNX Runtime's error.
        #[source]
        source: RuntimeError,
    },
    /// The model knows no such language.
    #[error("the model does not know language {0:?}")]
    Language(String),
    /// A graph lacks an output.
    #[error("the graph returned no {0}")]
    Output(&'static str),
    /// A graph's output has the wrong size.
    #[error("unexpected output shape: {0}")]
    Shape(String),
    /// ONNX Runtime failed while running.
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
}

impl AsrError {
    fn file(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::Missing(path.to_path_buf())
        } else {
            Self::Read { path: path.to_path_buf(), source }
        }
    }

    /// Whether the device ran out of memory (so the job can be retried rather than the scene failed).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, Self::Ort(e) if crate::model::is_out_of_memory_message(&e.to_string()))
    }
}

/// `manifest.toml`: the model's name and family (its license and source are for people).
#[derive(Deserialize)]
struct Manifest {
    name: String,
    family: String,
}

/// A loaded Whisper model: two sessions and its vocabulary.
pub struct Whisper {
    graphs: Graphs,
    vocab: Vocabulary,
    name: String,
}

impl Whisper {
    /// Loads recognition model `name` from `model_dir/asr/`, building its sessions with `runtime`.
    pub fn load(runtime: &Runtime, model_dir: &Path, name: &str) -> Result<Self, AsrError> {
        let root = model_dir.join(ASR_DIR);
        let dir = root.join(name);
        let path = dir.join("manifest.toml");
        let valid = scenequeue_core::config::valid_model_name(name);
        if !valid || !path.is_file() {
            return Err(AsrError::Unknown { name: name.to_string(), path, available: available(model_dir).join(", ") });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| AsrError::file(&path, e))?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|e| AsrError::Invalid { path: path.clone(), reason: e.to_string() })?;
        if manifest.name != name || manifest.family != "whisper" {
            return Err(AsrError::Invalid {
                path,
                reason: format!("names {} model {:?} in directory {name:?}", manifest.family, manifest.name),
            });
        }
        let vocab = Vocabulary::load(&dir)?;
        let graphs = Graphs::load(runtime, &dir)?;
        if graphs.shape.vocabulary != vocab.size() {
            return Err(AsrError::Invalid {
                path: dir.join("vocabulary.txt"),
                reason: format!("{} tokens for a model of {}", vocab.size(), graphs.shape.vocabulary),
            });
        }
        Ok(Self { graphs, vocab, name: name.to_string() })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Time spent inside ONNX Runtime since the model was loaded.
    pub fn runtime_time(&self) -> std::time::Duration {
        self.graphs.clock
    }

    /// Transcribes 16 kHz mono samples.
    pub fn transcribe(&mut self, samples: &[f32], language: &Language) -> Result<Transcript, AsrError> {
        let features = Features::compute(samples, self.graphs.shape.mels);
        let (language, first) = self.choose_language(&features, language)?;
        let specials = &self.vocab.specials;
        let mut sot = vec![specials.sot];
        if self.vocab.multilingual() {
            let id = self.vocab.language(&language).ok_or_else(|| AsrError::Language(language.clone()))?;
            sot.extend([id, specials.transcribe]);
        }
        let walk = longform::walk(&mut self.graphs, &self.vocab, &features, &sot, first)?;
        let text = walk.segments.iter().map(|s| s.text.as_str()).collect::<String>().trim().to_string();
        let (sum, count) = walk.logprob;
        let no_speech_prob = walk.windows.iter().map(|&(p, _)| p).fold(1.0f32, f32::min);
        Ok(Transcript {
            text,
            segments: walk.segments,
            language,
            avg_logprob: if count == 0 { 0.0 } else { (sum / count as f64) as f32 },
            no_speech_prob,
            heard: None,
            other_logprob: None,
        })
    }

    /// The language to decode in: as asked, English for English-only models, or the likeliest language token
    /// after the start of the transcript in the first window (whose encoding is returned, for the walk to reuse).
    fn choose_language(&mut self, features: &Features, asked: &Language) -> Result<(String, Option<Cross>), AsrError> {
        if !self.vocab.multilingual() {
            return match asked {
                Language::Code(code) if code != "en" => Err(AsrError::Language(code.clone())),
                _ => Ok(("en".to_string(), None)),
            };
        }
        if let Language::Code(code) = asked {
            return match self.vocab.language(code) {
                Some(_) => Ok((code.clone(), None)),
                None => Err(AsrError::Language(code.clone())),
            };
        }
        let cross = self.graphs.encode(features.window(0, features.content_frames()))?;
        let past = self.graphs.start()?;
        let (logits, _) = self.graphs.step(&cross, past, &[self.vocab.specials.sot])?;
        let best = self
            .vocab
            .specials
            .languages
            .iter()
            .max_by(|a, b| logits[a.1 as usize].total_cmp(&logits[b.1 as usize]))
            .map(|(code, _)| code.clone());
        Ok((best.unwrap_or_else(|| "en".to_string()), Some(cross)))
    }
}

/// Recognition models under `model_dir/asr/` with a manifest and their graphs fetched, sorted.
pub fn available(model_dir: &Path) -> Vec<String> {
    let root = model_dir.join(ASR_DIR);
    let mut names = crate::model::available(&root);
    names.retain(|name| root.join(name).join("encoder.onnx").is_file());
    names
}
