//! Fault injection for the inference layer: makes runs on the worker's primary device fail with an
//! out-of-memory error on demand, so every step of recovery can be driven on a machine without a GPU.
//! Off unless a plan is configured (tests and the GPU check use it; production never sets one).

use crate::model::InferenceError;
use serde::{Deserialize, Serialize};

/// Which primary-device runs fail with an injected out-of-memory error; the default injects none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The first N runs on the primary device fail.
    pub oom_first_runs: u32,
    /// Runs on inputs longer than this many samples fail (a card too small for long scenes).
    pub oom_above_samples: Option<usize>,
    /// Every run on the primary device fails (only the CPU fallback can succeed).
    pub oom_always: bool,
    /// This run (counting from 1) on the primary device fails, and no other: a failure halfway through a scene.
    #[serde(default)]
    pub oom_on_run: Option<u32>,
    /// The process aborts (as a native crash in a codec or a driver would end it) when it starts a scene of a
    /// recording whose path contains this text.
    #[serde(default)]
    pub abort_on_source: Option<String>,
}

impl FaultPlan {
    /// Aborts the process if the plan says `source` crashes it.
    pub fn crash_if_planned(&self, source: &std::path::Path) {
        if let Some(needle) = &self.abort_on_source
            && source.to_string_lossy().contains(needle.as_str())
        {
            tracing::error!(source = %source.display(), "injected crash");
            std::process::abort();
        }
    }
}

/// A plan and how many primary-device runs it has seen.
#[derive(Debug, Default)]
pub struct Faults {
    plan: FaultPlan,
    runs: u32,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Self {
        Self { plan, runs: 0 }
    }

    /// Called before every primary-device run of `samples` samples.
    pub fn check(&mut self, samples: usize) -> Result<(), InferenceError> {
        self.runs += 1;
        let p = &self.plan;
        if p.oom_always
            || self.runs <= p.oom_first_runs
            || p.oom_on_run == Some(self.runs)
            || p.oom_above_samples.is_some_and(|max| samples > max)
        {
            return Err(InferenceError::OutOfMemory(format!(
                "injected fault on run {} ({samples} samples)",
                self.runs
            )));
        }
        Ok(())
    }
}
