//! The session policy: when the enhancer (and with it the ONNX Runtime session and its memory arena) is
//! created and dropped. Dropping the session is what returns the arena's memory: a persistent session keeps
//! its high-water mark for ever, which is how a long run of scenes exhausts a GPU.

use crate::model::{Enhancer, ModelError, load};
use crate::runtime::Runtime;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPolicy {
    /// A fresh session for every job (the default).
    PerJob,
    /// A fresh session after every N jobs.
    EveryJobs(u32),
    /// One session for the worker's life (only for CPU workers or measurements).
    Persistent,
}

impl std::str::FromStr for SessionPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "per-job" => Ok(Self::PerJob),
            "persistent" => Ok(Self::Persistent),
            _ => s
                .strip_prefix("every-")
                .and_then(|n| n.strip_suffix("-jobs"))
                .and_then(|n| n.parse().ok())
                .filter(|&n: &u32| n > 0)
                .map(Self::EveryJobs)
                .ok_or_else(|| format!("unknown session policy {s:?}: expected per-job, every-N-jobs or persistent")),
        }
    }
}

struct Current {
    model: String,
    enhancer: Box<dyn Enhancer>,
    jobs: u32,
}

/// Owns at most one enhancer and applies the policy. Lives on the inference thread.
pub struct Sessions {
    runtime: Runtime,
    model_dir: PathBuf,
    policy: SessionPolicy,
    current: Option<Current>,
    created: u64,
    create_time: Duration,
}

impl Sessions {
    pub fn new(runtime: Runtime, model_dir: PathBuf, policy: SessionPolicy) -> Self {
        Self { runtime, model_dir, policy, current: None, created: 0, create_time: Duration::ZERO }
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
        Ok(self.current.insert(current).enhancer.as_mut())
    }

    /// Called after every job: drops the session when the policy says so.
    pub fn job_done(&mut self) {
        let drop_now = match (&mut self.current, self.policy) {
            (None, _) => false,
            (Some(_), SessionPolicy::PerJob) => true,
            (Some(c), SessionPolicy::EveryJobs(n)) => {
                c.jobs += 1;
                c.jobs >= n
            }
            (Some(_), SessionPolicy::Persistent) => false,
        };
        if drop_now {
            self.current = None;
        }
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
    fn policies_parse() {
        assert_eq!("per-job".parse(), Ok(SessionPolicy::PerJob));
        assert_eq!("every-4-jobs".parse(), Ok(SessionPolicy::EveryJobs(4)));
        assert_eq!("persistent".parse(), Ok(SessionPolicy::Persistent));
        assert!("every-0-jobs".parse::<SessionPolicy>().is_err());
        assert!("sometimes".parse::<SessionPolicy>().is_err());
    }
}
