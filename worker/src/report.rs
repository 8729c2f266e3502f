//! What a worker did: the counts of one attempt at a job ([`JobCounts`], returned by `job::run`) and of the
//! worker's whole run ([`WorkerReport`], what `run` returns), which adds them up.

use std::time::Duration;

/// Scenes one attempt at a job settled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobCounts {
    /// Scenes enhanced and recorded.
    pub scenes_succeeded: u64,
    /// Scenes recorded as failed, with their cause.
    pub scenes_failed: u64,
    /// Out-of-memory errors met (and recovered from, unless the scene failed).
    pub ooms: u64,
    /// Scenes whose output came from a recovery step.
    pub scenes_recovered: u64,
}

impl std::ops::AddAssign for JobCounts {
    fn add_assign(&mut self, other: Self) {
        self.scenes_succeeded += other.scenes_succeeded;
        self.scenes_failed += other.scenes_failed;
        self.ooms += other.ooms;
        self.scenes_recovered += other.scenes_recovered;
    }
}

/// What a worker did before it stopped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WorkerReport {
    /// Jobs completed (every scene with a terminal state).
    pub jobs_done: u64,
    /// Scenes enhanced and recorded.
    pub scenes_succeeded: u64,
    /// Scenes recorded as failed, with their cause.
    pub scenes_failed: u64,
    /// Out-of-memory errors met (and recovered from, unless the scene failed).
    pub ooms: u64,
    /// Scenes whose output came from a recovery step.
    pub scenes_recovered: u64,
    /// Deliveries of jobs that were already finished or held by another worker.
    pub duplicates: u64,
    /// Sessions (or isolated child processes) created.
    pub sessions_created: u64,
    /// Time spent creating them.
    pub session_create_time: Duration,
}

impl WorkerReport {
    /// Adds what one attempt at a job settled.
    pub(crate) fn add(&mut self, job: JobCounts) {
        self.scenes_succeeded += job.scenes_succeeded;
        self.scenes_failed += job.scenes_failed;
        self.ooms += job.ooms;
        self.scenes_recovered += job.scenes_recovered;
    }
}
