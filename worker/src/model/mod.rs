//! Models: a directory per model holding `manifest.toml` (name, adapter, sample rate, files) and the model
//! files it names. The adapter is the code that knows the model's tensors; adding a model family means adding
//! an adapter here, nothing else.

mod batch_axis;
mod deepfilternet3;
mod graph_cache;
mod nsnet2;
mod waveform;

use crate::runtime::{Runtime, RuntimeError};
use scenequeue_core::config::valid_model_name;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The contract every model adapter fulfils: mono audio at `sample_rate` in, the same length out.
pub trait Enhancer: Send {
    /// Sample rate the model takes and returns, Hz.
    fn sample_rate(&self) -> u32;
    /// Enhances one mono signal at `sample_rate`, returning a signal of the same length.
    fn enhance(&mut self, x: &[f32]) -> Result<Vec<f32>, InferenceError>;
    /// Enhances windows of equal length, each on its own (fixed-shape batching, see `audio::windows`). Adapters
    /// whose graphs take a batch (see `batches`) run them in one call; the others one after the other.
    fn enhance_batch(&mut self, windows: &[&[f32]]) -> Result<Vec<Vec<f32>>, InferenceError> {
        windows.iter().map(|w| self.enhance(w)).collect()
    }
    /// Whether `enhance_batch` runs a batch in one call. Without it, fixed windows go one per call (no silent
    /// windows to fill a batch).
    fn batches(&self) -> bool {
        false
    }
    /// Longer scenes run in crossfaded windows of this many seconds, for models whose memory grows with the
    /// input and whose output re-converges quickly after a window starts (measured per model).
    fn window_s(&self) -> Option<f64> {
        None
    }
    /// Time spent inside ONNX Runtime since the enhancer was created (the rest of `enhance` is DSP).
    fn runtime_time(&self) -> std::time::Duration;
    /// Sets DeepFilterNet's post-filter (strength `beta`; None: off) for the calls that follow. Returns false if
    /// the model has no post-filter and one was asked for.
    fn set_post_filter(&mut self, beta: Option<f32>) -> bool {
        beta.is_none()
    }
}

/// Which adapter runs a model's tensors (`adapter` in `manifest.toml`, kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdapterKind {
    /// NSNet2: log-power spectrum in, spectral gain out.
    Nsnet2,
    /// Any model with a waveform in and a waveform out (see `waveform`).
    Waveform,
    /// DeepFilterNet3: ERB features in, ERB mask and deep-filter taps out, over three graphs.
    Deepfilternet3,
}

/// `manifest.toml` of a model directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Model name; must equal the name of the directory holding the manifest.
    pub name: String,
    /// The adapter that runs the model.
    pub adapter: AdapterKind,
    /// Sample rate the model works at, Hz.
    pub sample_rate: u32,
    /// The ONNX file, relative to the model directory.
    pub model: String,
    /// The model's license (informational; e.g. `MIT OR Apache-2.0`).
    #[serde(default)]
    pub license: Option<String>,
    /// Where the model files come from (informational).
    #[serde(default)]
    pub source: Option<String>,
}

/// Why a model could not be found, checked or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The name is not a valid model name, or there is no `manifest.toml` for it under the model directory.
    #[error("model {name:?}: no manifest at {path} (models available: {available})")]
    Unknown {
        /// The model name asked for.
        name: String,
        /// Where its manifest was looked for.
        path: PathBuf,
        /// Comma-separated names of the models that do have a manifest.
        available: String,
    },
    /// The manifest cannot be read or parsed, or names another model than its directory (also used when the
    /// Silero VAD graph has unexpected inputs).
    #[error("{path}: invalid manifest: {reason}")]
    BadManifest {
        /// The manifest (or model file) at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A model file that the manifest names (or that an adapter needs) does not exist.
    #[error("{path}: model file missing (run scripts/fetch-models.sh)")]
    FileMissing {
        /// The missing file.
        path: PathBuf,
    },
    /// ONNX Runtime cannot build a session (or run options) for the model file.
    #[error("{path}: cannot load as ONNX: {source}")]
    Load {
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's error.
        #[source]
        source: RuntimeError,
    },
    /// The model file cannot be prepared for loading (e.g. opening the batch axis of a DeepFilterNet3 graph
    /// failed).
    #[error("{path}: cannot load as ONNX: {reason}")]
    Invalid {
        /// The model file.
        path: PathBuf,
        /// Why it could not be prepared.
        reason: String,
    },
    /// The model loads, but its inputs, outputs or sample rate do not fit the manifest's adapter.
    #[error("{path}: does not fit the {adapter:?} adapter: expected {expected}, found {found}")]
    Mismatch {
        /// The model file.
        path: PathBuf,
        /// The adapter it was checked against.
        adapter: AdapterKind,
        /// What the adapter needs.
        expected: String,
        /// What the model has.
        found: String,
    },
}

/// Why an enhancement run failed.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// An allocation failed: recoverable by freeing memory (see `recovery`).
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// Any other ONNX Runtime error (allocation failures become `OutOfMemory`).
    #[error("ONNX Runtime: {0}")]
    Ort(ort::Error),
    /// The model's outputs (or a batch's windows) are not the shape or number the adapter expects.
    #[error("model output has an unexpected shape: {0}")]
    Shape(String),
    /// A setting the model does not have (e.g. DeepFilterNet's post-filter asked of another model).
    #[error("{0}")]
    Unsupported(String),
}

impl InferenceError {
    /// Whether this is a failed allocation, which recovery can retry with less memory.
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, Self::OutOfMemory(_))
    }
}

/// Messages by which ONNX Runtime, CUDA and cuDNN report a failed allocation.
const OOM_MARKERS: &[&str] = &[
    "out of memory",
    "Failed to allocate memory",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "cudaErrorMemoryAllocation",
    "bad_alloc",
    // ONNX Runtime's BFC arena at its cap (gpu_mem_limit): "Available memory of N is smaller than requested bytes".
    "is smaller than requested bytes",
];

/// Runs `session` on `inputs`, with `options` when there are any (arena shrinkage), adding the time taken to
/// `clock`.
fn run<'s>(
    session: &'s mut ort::session::Session,
    options: Option<&'s ort::session::RunOptions>,
    inputs: Vec<(std::borrow::Cow<'_, str>, ort::session::SessionInputValue<'_>)>,
    clock: &mut std::time::Duration,
) -> Result<ort::session::SessionOutputs<'s>, ort::Error> {
    let started = std::time::Instant::now();
    let outputs = match options {
        Some(options) => session.run_with_options(inputs, options),
        None => session.run(inputs),
    };
    *clock += started.elapsed();
    outputs
}

/// Whether an error message reports a failed allocation.
pub fn is_out_of_memory_message(message: &str) -> bool {
    OOM_MARKERS.iter().any(|m| message.contains(m))
}

impl From<ort::Error> for InferenceError {
    fn from(e: ort::Error) -> Self {
        let message = e.to_string();
        if is_out_of_memory_message(&message) { Self::OutOfMemory(message) } else { Self::Ort(e) }
    }
}

/// Reads and checks the manifest of model `name` under `model_dir`.
pub fn manifest(model_dir: &Path, name: &str) -> Result<(Manifest, PathBuf), ModelError> {
    let dir = model_dir.join(name);
    let path = dir.join("manifest.toml");
    if !valid_model_name(name) || !path.is_file() {
        return Err(ModelError::Unknown { name: name.to_string(), path, available: available(model_dir).join(", ") });
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ModelError::BadManifest { path: path.clone(), reason: e.to_string() })?;
    let manifest: Manifest =
        toml::from_str(&text).map_err(|e| ModelError::BadManifest { path: path.clone(), reason: e.to_string() })?;
    if manifest.name != name {
        return Err(ModelError::BadManifest {
            path,
            reason: format!("names model {:?} but lives in directory {name:?}", manifest.name),
        });
    }
    let file = dir.join(&manifest.model);
    if !file.is_file() {
        return Err(ModelError::FileMissing { path: file });
    }
    Ok((manifest, file))
}

/// Model names with a manifest under `model_dir`, sorted.
pub fn available(model_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(model_dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("manifest.toml").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Creates a ready-to-run enhancer (a new ONNX Runtime session) for model `name`.
pub fn load(runtime: &Runtime, model_dir: &Path, name: &str) -> Result<Box<dyn Enhancer>, ModelError> {
    let (manifest, file) = manifest(model_dir, name)?;
    let single = || {
        let load_err = |source| ModelError::Load { path: file.clone(), source };
        Ok::<_, ModelError>((runtime.session(&file).map_err(load_err)?, runtime.run_options().map_err(load_err)?))
    };
    match manifest.adapter {
        AdapterKind::Nsnet2 => {
            let (session, options) = single()?;
            Ok(Box::new(nsnet2::Nsnet2::new(session, options, manifest.sample_rate, &file)?))
        }
        AdapterKind::Waveform => {
            let (session, options) = single()?;
            Ok(Box::new(waveform::Waveform::new(session, options, manifest.sample_rate, &file)?))
        }
        AdapterKind::Deepfilternet3 => Ok(Box::new(deepfilternet3::DeepFilterNet3::load(runtime, &file)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::is_out_of_memory_message;

    #[test]
    fn allocation_failures_are_recognised_as_out_of_memory() {
        // As ONNX Runtime 1.31 reported it on an H200 with gpu_mem_limit set (docs/BENCHMARKS.md).
        let arena = "Non-zero status code returned while running GRU node. Name:'GRU_15' Status Message: \
                     bfc_arena.cc:360 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*) \
                     Available memory of 1048576 is smaller than requested bytes of 45088768";
        assert!(is_out_of_memory_message(arena));
        assert!(is_out_of_memory_message("CUDA failure 2: out of memory"));
        assert!(!is_out_of_memory_message("Invalid input name: feats"));
    }
}
