//! ONNX Runtime: the library is loaded once per process (from a path, never downloaded), and every session is
//! built with the same options: thread count, and the CUDA execution provider when asked for. CUDA registration
//! fails loudly: a missing CUDA library must never silently turn a GPU worker into a slow CPU worker.

use ort::environment::Environment;
use ort::ep::{CUDA, ExecutionProviderDispatch};
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda { device_id: i32 },
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda { device_id: 0 }),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(|device_id| Self::Cuda { device_id })
                .ok_or_else(|| format!("unknown device {s:?}: expected cpu, cuda or cuda:N")),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda { device_id } => write!(f, "cuda:{device_id}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found at {0} (run scripts/fetch-models.sh, or set SCENEQUEUE_ORT_LIBRARY)")]
    LibraryMissing(PathBuf),
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("ONNX Runtime was already loaded from {loaded}; cannot switch to {requested} in the same process")]
    Conflict { loaded: PathBuf, requested: PathBuf },
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
}

static ENV: OnceLock<(PathBuf, Environment)> = OnceLock::new();

/// Session options shared by every session of a worker.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub device: Device,
    pub intra_threads: usize,
}

impl Runtime {
    /// Loads the library (once per process) and returns a runtime for building sessions.
    pub fn init(library: &Path, device: Device, intra_threads: usize) -> Result<Self, RuntimeError> {
        let requested = library.to_path_buf();
        if let Some((loaded, _)) = ENV.get() {
            if !same_file(loaded, &requested) {
                return Err(RuntimeError::Conflict { loaded: loaded.clone(), requested });
            }
        } else {
            if !library.is_file() {
                return Err(RuntimeError::LibraryMissing(requested));
            }
            let builder = ort::init_from(library)
                .map_err(|e| RuntimeError::Load { path: requested.clone(), reason: e.to_string() })?;
            let env = builder.with_name("scenequeue").build()?;
            // A concurrent initialiser may have won; its environment is equivalent.
            let _ = ENV.set((requested, env));
        }
        Ok(Self { device, intra_threads: intra_threads.max(1) })
    }

    fn environment(&self) -> Result<&Environment, RuntimeError> {
        ENV.get().map(|(_, env)| env).ok_or_else(|| RuntimeError::LibraryMissing(PathBuf::from("<not initialised>")))
    }

    fn execution_providers(&self) -> Vec<ExecutionProviderDispatch> {
        match self.device {
            Device::Cpu => Vec::new(),
            Device::Cuda { device_id } => vec![
                CUDA::default()
                    .with_device_id(device_id)
                    // HEURISTIC: EXHAUSTIVE search measured 10-16x slower on variable-length scenes.
                    .with_conv_algorithm_search(ort::ep::cuda::ConvAlgorithmSearch::Heuristic)
                    .build()
                    .error_on_failure(),
            ],
        }
    }

    /// A session builder with this runtime's options.
    pub fn builder(&self) -> Result<SessionBuilder, RuntimeError> {
        let builder = Session::builder(self.environment()?)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort::Error::from)?
            .with_intra_threads(self.intra_threads)
            .map_err(ort::Error::from)?
            .with_execution_providers(self.execution_providers())
            .map_err(ort::Error::from)?;
        Ok(builder)
    }

    /// Builds a session for the model file at `path`.
    pub fn session(&self, path: &Path) -> Result<Session, RuntimeError> {
        Ok(self.builder()?.commit_from_file(path)?)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
