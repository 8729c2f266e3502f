//! The session policy: when the enhancer (and with it the ONNX Runtime session and its memory arena) is
//! created and dropped. Dropping the session is what returns the arena's memory: a persistent session keeps its
//! high-water mark for ever, which is how a long run of scenes exhausts a GPU. (On the CPU the sessions share the
//! environment's arena, `scenequeue_arena`, which [`Sessions::reset`] renews, so dropping them returns it too.)
//! docs/SESSIONS.md says when to choose which policy.

use crate::asr::{AsrError, Language, Transcript, Whisper};
use crate::faults::{FaultPlan, Faults};
use crate::model::{Enhancer, InferenceError, ModelError, load};
use crate::runtime::Runtime;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// When the enhancer and its ONNX Runtime session are created and dropped (`per-job`, `every-N-jobs`,
/// `held-above-MIB`, `shrink-each-run`, `process`, `persistent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPolicy {
    /// A fresh session for every job (the default).
    PerJob,
    /// A fresh session after every N jobs.
    EveryJobs(u32),
    /// Keep the session while the memory it leaves held after a job stays at or under this many MiB.
    HeldAbove(u32),
    /// One session, with the arena shrunk back after every run.
    ShrinkEachRun,
    /// Every job in a child process with its own CUDA context, gone when the job ends.
    Process,
    /// One session for the worker's life (for CPU workers and measurements).
    Persistent,
}

impl std::str::FromStr for SessionPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |prefix: &str, suffix: &str| {
            s.strip_prefix(prefix)
                .and_then(|n| n.strip_suffix(suffix))
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&n| n > 0)
        };
        match s {
            "per-job" => Ok(Self::PerJob),
            "shrink-each-run" => Ok(Self::ShrinkEachRun),
            "process" => Ok(Self::Process),
            "persistent" => Ok(Self::Persistent),
            _ => number("every-", "-jobs")
                .map(Self::EveryJobs)
                .or_else(|| number("held-above-", "").map(Self::HeldAbove))
                .ok_or_else(|| {
                    format!(
                        "unknown session policy {s:?}: expected per-job, every-N-jobs, held-above-MIB, \
                         shrink-each-run, process or persistent"
                    )
                }),
        }
    }
}

impl std::fmt::Display for SessionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PerJob => f.write_str("per-job"),
            Self::EveryJobs(n) => write!(f, "every-{n}-jobs"),
            Self::HeldAbove(mb) => write!(f, "held-above-{mb}"),
            Self::ShrinkEachRun => f.write_str("shrink-each-run"),
            Self::Process => f.write_str("process"),
            Self::Persistent => f.write_str("persistent"),
        }
    }
}

/// Why an enhancement call produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum EnhanceError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

impl EnhanceError {
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, Self::Inference(e) if e.is_out_of_memory())
    }
}

struct Current {
    model: String,
    enhancer: Box<dyn Enhancer>,
    jobs: u32,
}

/// Owns at most one enhancer and applies the policy. Lives on one thread (the inference thread).
pub struct Sessions {
    runtime: Runtime,
    model_dir: PathBuf,
    policy: SessionPolicy,
    current: Option<Current>,
    faults: Faults,
    created: u64,
    create_time: Duration,
    /// DeepFilterNet's post-filter strength for the calls that follow, set on every enhancer handed out.
    post_filter: Option<f32>,
    /// The recogniser, for batches that ask for transcription: created and dropped with the enhancer's session.
    recogniser: Option<Whisper>,
}

impl Sessions {
    pub fn new(mut runtime: Runtime, model_dir: PathBuf, policy: SessionPolicy, faults: FaultPlan) -> Self {
        if policy == SessionPolicy::ShrinkEachRun {
            runtime.options.shrink_arena_each_run = true;
        }
        Self {
            runtime,
            model_dir,
            policy,
            current: None,
            faults: Faults::new(faults),
            created: 0,
            create_time: Duration::ZERO,
            post_filter: None,
            recogniser: None,
        }
    }

    /// The enhancer for `model`, creating a session if none is live for it. A stale session (another model) is
    /// dropped before the new one is created, so two never hold memory at once.
    pub fn get(&mut self, model: &str) -> Result<&mut dyn Enhancer, ModelError> {
        let current = match self.current.take() {
            Some(c) if c.model == model => c,
            stale => {
                drop(stale);
                let started = Instant::now();
                let enhancer = load(&self.runtime, &self.model_dir, model)?;
                self.create_time += started.elapsed();
                self.created += 1;
                Current { model: model.to_string(), enhancer, jobs: 0 }
            }
        };
        let enhancer = self.current.insert(current).enhancer.as_mut();
        enhancer.set_post_filter(self.post_filter);
        Ok(enhancer)
    }

    /// Sets the post-filter of `model` (DeepFilterNet's, strength `beta`) for the calls that follow, on this
    /// session and on any created later; an error if the model has none and one is asked for.
    pub fn set_post_filter(&mut self, model: &str, beta: Option<f32>) -> Result<(), EnhanceError> {
        self.post_filter = beta;
        if self.get(model)?.set_post_filter(beta) {
            return Ok(());
        }
        self.post_filter = None;
        Err(EnhanceError::Inference(InferenceError::Unsupported(format!(
            "model {model:?} has no post-filter: --post-filter-beta is a DeepFilterNet option"
        ))))
    }

    /// Runs `model` on the primary device (where injected faults apply).
    pub fn enhance(&mut self, model: &str, x: &[f32]) -> Result<Vec<f32>, EnhanceError> {
        self.get(model)?;
        self.faults.check(x.len())?;
        Ok(self.get(model)?.enhance(x)?)
    }

    /// Runs `model` on windows of equal length at once (see `batching`); faults see the batch's total length.
    pub fn enhance_batch(&mut self, model: &str, windows: &[&[f32]]) -> Result<Vec<Vec<f32>>, EnhanceError> {
        self.get(model)?;
        self.faults.check(windows.iter().map(|w| w.len()).sum())?;
        Ok(self.get(model)?.enhance_batch(windows)?)
    }

    /// Runs `model` once on a throw-away CPU session (the last step of out-of-memory recovery).
    pub fn enhance_on_cpu(&mut self, model: &str, x: &[f32]) -> Result<Vec<f32>, EnhanceError> {
        let started = Instant::now();
        let mut enhancer = load(&self.runtime.on_cpu(), &self.model_dir, model)?;
        enhancer.set_post_filter(self.post_filter);
        self.create_time += started.elapsed();
        self.created += 1;
        Ok(enhancer.enhance(x)?)
    }

    /// Transcribes 16 kHz samples with recognition model `name`, creating its sessions if none are live for it.
    pub fn transcribe(&mut self, name: &str, samples: &[f32], language: &Language) -> Result<Transcript, AsrError> {
        let recogniser = match self.recogniser.take() {
            Some(r) if r.name() == name => r,
            stale => {
                drop(stale);
                let started = Instant::now();
                let loaded = Whisper::load(&self.runtime, &self.model_dir, name)?;
                self.create_time += started.elapsed();
                self.created += 1;
                loaded
            }
        };
        self.recogniser.insert(recogniser).transcribe(samples, language)
    }

    /// Drops the live sessions now and renews the CPU arena they shared, returning their memory (and what the C
    /// heap keeps free) to the system.
    pub fn reset(&mut self) {
        self.current = None;
        self.recogniser = None;
        self.runtime.renew_cpu_arena();
        scenequeue_arena::trim_heap();
    }

    /// Applies the policy after a job, given the memory held now (MiB). Returns whether the session was dropped.
    pub fn job_done(&mut self, held_mb: Option<f32>) -> bool {
        let Some(current) = self.current.as_mut() else {
            return false;
        };
        current.jobs += 1;
        let drop_now = match self.policy {
            SessionPolicy::PerJob | SessionPolicy::Process => true,
            SessionPolicy::EveryJobs(n) => current.jobs >= n,
            SessionPolicy::HeldAbove(limit) => held_mb.is_some_and(|mb| mb > limit as f32),
            SessionPolicy::ShrinkEachRun | SessionPolicy::Persistent => false,
        };
        if drop_now {
            self.reset();
        }
        drop_now
    }

    /// Sessions created so far and the total time spent creating them.
    pub fn created(&self) -> (u64, Duration) {
        (self.created, self.create_time)
    }
}

#[cfg(test)]
mod tests {
    use super::SessionPolicy;

    #[test]
    fn policies_parse_and_print_back() {
        for (text, policy) in [
            ("per-job", SessionPolicy::PerJob),
            ("every-4-jobs", SessionPolicy::EveryJobs(4)),
            ("held-above-1500", SessionPolicy::HeldAbove(1500)),
            ("shrink-each-run", SessionPolicy::ShrinkEachRun),
            ("process", SessionPolicy::Process),
            ("persistent", SessionPolicy::Persistent),
        ] {
            assert_eq!(text.parse(), Ok(policy));
            assert_eq!(policy.to_string(), text);
        }
        assert!("every-0-jobs".parse::<SessionPolicy>().is_err());
        assert!("held-above-".parse::<SessionPolicy>().is_err());
        assert!("sometimes".parse::<SessionPolicy>().is_err());
    }
}
