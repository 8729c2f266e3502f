//! ONNX Runtime: the library is loaded once per process (from a path, never downloaded), and every session is
//! built from one set of options: threads, and for CUDA the execution-provider settings below. CUDA
//! registration fails loudly: a missing CUDA library must never silently turn a GPU worker into a CPU worker.
//!
//! Defaults follow the measurements in docs/BENCHMARKS.md: cuDNN's HEURISTIC convolution search (EXHAUSTIVE
//! was 10-16x slower on variable-length scenes), the arena's default extension, no memory limit.

use ort::environment::Environment;
use ort::ep::cuda::ConvAlgorithmSearch;
use ort::ep::{ArenaExtendStrategy, CUDA, ExecutionProviderDispatch};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{RunOptions, Session};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// The CUDA execution provider on one GPU.
    Cuda {
        /// CUDA device index (`cuda:N`; plain `cuda` means 0).
        device_id: i32,
    },
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

/// cuDNN convolution algorithm search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ConvSearch {
    /// Picks by heuristics, no benchmarking: fast for every shape (the default).
    #[default]
    Heuristic,
    /// Benchmarks every algorithm per new shape: only worth it when shapes repeat (fixed windows).
    Exhaustive,
    /// cuDNN's default algorithm.
    Default,
}

impl std::str::FromStr for ConvSearch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "heuristic" => Ok(Self::Heuristic),
            "exhaustive" => Ok(Self::Exhaustive),
            "default" => Ok(Self::Default),
            _ => Err(format!("unknown cuDNN search {s:?}: expected heuristic, exhaustive or default")),
        }
    }
}

impl std::fmt::Display for ConvSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Heuristic => "heuristic",
            Self::Exhaustive => "exhaustive",
            Self::Default => "default",
        })
    }
}

/// How the CUDA memory arena grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ArenaExtend {
    /// Each extension doubles (ONNX Runtime's default).
    #[default]
    NextPowerOfTwo,
    /// Each extension is what the request needs.
    SameAsRequested,
}

impl std::fmt::Display for ArenaExtend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NextPowerOfTwo => "next-power-of-two",
            Self::SameAsRequested => "same-as-requested",
        })
    }
}

impl std::str::FromStr for ArenaExtend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "next-power-of-two" => Ok(Self::NextPowerOfTwo),
            "same-as-requested" => Ok(Self::SameAsRequested),
            _ => Err(format!("unknown arena extension {s:?}: expected next-power-of-two or same-as-requested")),
        }
    }
}

/// Execution-provider settings for CUDA sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CudaSettings {
    /// cuDNN convolution algorithm search.
    pub conv_search: ConvSearch,
    /// How the arena grows.
    pub arena_extend: ArenaExtend,
    /// Cap on the CUDA arena, MiB (also emulates a smaller card).
    pub memory_limit_mb: Option<u64>,
}

/// Everything that shapes a session; serializable so an isolated child process builds identical sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeOptions {
    /// Path of the ONNX Runtime shared library.
    pub library: PathBuf,
    /// Where sessions run.
    pub device: Device,
    /// ONNX Runtime intra-op threads per session (raised to at least 1).
    pub intra_threads: usize,
    /// CUDA execution-provider settings (unused on the CPU).
    pub cuda: CudaSettings,
    /// Ask ONNX Runtime to return unused arena memory after every run.
    pub shrink_arena_each_run: bool,
}

impl RuntimeOptions {
    /// Options for the library at `library` on `device` with `intra_threads` threads, default CUDA settings
    /// and no arena shrinkage.
    pub fn new(library: PathBuf, device: Device, intra_threads: usize) -> Self {
        Self { library, device, intra_threads, cuda: CudaSettings::default(), shrink_arena_each_run: false }
    }
}

/// Why ONNX Runtime could not be loaded or a session built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No ONNX Runtime library at the given path (or a session was asked for before the library was loaded).
    #[error("ONNX Runtime library not found at {0} (run scripts/fetch-models.sh, or set SCENEQUEUE_ORT_LIBRARY)")]
    LibraryMissing(PathBuf),
    /// The library file exists but could not be loaded.
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    Load {
        /// The library's path.
        path: PathBuf,
        /// The loader's error message.
        reason: String,
    },
    /// A different library was asked for after one was already loaded in this process.
    #[error("ONNX Runtime was already loaded from {loaded}; cannot switch to {requested} in the same process")]
    Conflict {
        /// The library already loaded.
        loaded: PathBuf,
        /// The library asked for now.
        requested: PathBuf,
    },
    /// ONNX Runtime failed while creating its environment, a session or run options.
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
    /// The inference thread could not be started.
    #[error("cannot start the inference thread: {0}")]
    Thread(std::io::Error),
}

static ENV: OnceLock<(PathBuf, Environment)> = OnceLock::new();

/// Held while a session is created and while the shared CPU arena is renewed, so a session never reads the
/// environment's allocators halfway through a swap.
static ARENA: Mutex<()> = Mutex::new(());

fn arena_lock() -> std::sync::MutexGuard<'static, ()> {
    ARENA.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Builds sessions with one set of options.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The options every session is built with.
    pub options: RuntimeOptions,
}

impl Runtime {
    /// Loads the library (once per process) and returns a runtime for building sessions.
    pub fn init(library: &Path, device: Device, intra_threads: usize) -> Result<Self, RuntimeError> {
        Self::with_options(RuntimeOptions::new(library.to_path_buf(), device, intra_threads))
    }

    /// Loads the library named in `options` (once per process) and returns a runtime building sessions with
    /// them; fails if another library is already loaded.
    pub fn with_options(mut options: RuntimeOptions) -> Result<Self, RuntimeError> {
        options.intra_threads = options.intra_threads.max(1);
        let requested = options.library.clone();
        if let Some((loaded, _)) = ENV.get() {
            if !same_file(loaded, &requested) {
                return Err(RuntimeError::Conflict { loaded: loaded.clone(), requested });
            }
        } else {
            if !requested.is_file() {
                return Err(RuntimeError::LibraryMissing(requested));
            }
            let builder = ort::init_from(&requested)
                .map_err(|e| RuntimeError::Load { path: requested.clone(), reason: e.to_string() })?;
            let env = builder.with_name("scenequeue").build()?;
            scenequeue_arena::renew(&env)?;
            // A concurrent initialiser may have won; its environment is equivalent.
            let _ = ENV.set((requested, env));
        }
        Ok(Self { options })
    }

    /// The same runtime on the CPU (the last step of out-of-memory recovery).
    pub fn on_cpu(&self) -> Self {
        Self { options: RuntimeOptions { device: Device::Cpu, ..self.options.clone() } }
    }

    /// The device sessions run on.
    pub fn device(&self) -> Device {
        self.options.device
    }

    fn environment(&self) -> Result<&Environment, RuntimeError> {
        ENV.get().map(|(_, env)| env).ok_or_else(|| RuntimeError::LibraryMissing(PathBuf::from("<not initialised>")))
    }

    fn execution_providers(&self) -> Vec<ExecutionProviderDispatch> {
        let Device::Cuda { device_id } = self.options.device else {
            return Vec::new();
        };
        let cuda = &self.options.cuda;
        let mut ep = CUDA::default()
            .with_device_id(device_id)
            .with_conv_algorithm_search(match cuda.conv_search {
                ConvSearch::Heuristic => ConvAlgorithmSearch::Heuristic,
                ConvSearch::Exhaustive => ConvAlgorithmSearch::Exhaustive,
                ConvSearch::Default => ConvAlgorithmSearch::Default,
            })
            .with_arena_extend_strategy(match cuda.arena_extend {
                ArenaExtend::NextPowerOfTwo => ArenaExtendStrategy::NextPowerOfTwo,
                ArenaExtend::SameAsRequested => ArenaExtendStrategy::SameAsRequested,
            });
        if let Some(mb) = cuda.memory_limit_mb {
            ep = ep.with_memory_limit((mb as usize).saturating_mul(1 << 20));
        }
        vec![ep.build().error_on_failure()]
    }

    /// A session builder with this runtime's options.
    pub fn builder(&self) -> Result<SessionBuilder, RuntimeError> {
        let builder = Session::builder(self.environment()?)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort::Error::from)?
            .with_intra_threads(self.options.intra_threads)
            .map_err(ort::Error::from)?
            .with_execution_providers(self.execution_providers())
            .map_err(ort::Error::from)?;
        // On the CPU, no memory pattern: ONNX Runtime plans one block for a run's tensors from the shapes it saw,
        // and scenes change length with every run. Without it a worker's peak for 30 s DeepFilterNet3 scenes was
        // about 100 MiB lower, no slower, and every output byte the same. And one arena for all sessions (the
        // environment's, `scenequeue_arena`) instead of one each: a DeepFilterNet3 call's three sessions no
        // longer hold three peaks (docs/BENCHMARKS.md, "A lean worker"). Neither measured on a GPU, so left as
        // they were there.
        let builder = match self.options.device {
            Device::Cpu => builder
                .with_memory_pattern(false)
                .map_err(ort::Error::from)?
                .with_env_allocators()
                .map_err(ort::Error::from)?,
            Device::Cuda { .. } => builder,
        };
        Ok(builder)
    }

    /// Builds a session for the model file at `path`.
    pub fn session(&self, path: &Path) -> Result<Session, RuntimeError> {
        let _arena = arena_lock();
        Ok(self.builder()?.commit_from_file(path)?)
    }

    /// Builds a session for a model held in memory (e.g. a graph rewritten at load time).
    pub fn session_from_memory(&self, model: &[u8]) -> Result<Session, RuntimeError> {
        let _arena = arena_lock();
        Ok(self.builder()?.commit_from_memory(model)?)
    }

    /// Gives the CPU sessions created from now on a fresh, empty shared arena. The one they shared before is
    /// freed with the last session still using it: call this after dropping a job's sessions to return their
    /// memory. A failure is logged and leaves the old arena in place (memory held longer, nothing lost).
    pub fn renew_cpu_arena(&self) {
        let Ok(env) = self.environment() else { return };
        let _arena = arena_lock();
        if let Err(e) = scenequeue_arena::renew(env) {
            tracing::warn!(error = %e, "could not renew the shared CPU arena; the old one stays");
        }
    }

    /// Options for every run: arena shrinkage when asked for.
    pub fn run_options(&self) -> Result<Option<RunOptions>, RuntimeError> {
        if !self.options.shrink_arena_each_run {
            return Ok(None);
        }
        let mut options = RunOptions::new()?;
        let arena = match self.options.device {
            Device::Cpu => "cpu:0".to_string(),
            Device::Cuda { device_id } => format!("gpu:{device_id}"),
        };
        options.set("memory.enable_memory_arena_shrinkage", arena)?;
        Ok(Some(options))
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
