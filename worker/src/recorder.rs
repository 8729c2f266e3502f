//! Results of a job's scenes recorded in batches: one transaction (and one statement per table) for up to
//! [`BATCH_SCENES`] scenes, or whatever finished within [`BATCH_WINDOW`], instead of one per scene. The files of
//! results not yet recorded are attempt files, removed if the attempt ends before recording them: a crash
//! loses no result, it only leaves those scenes for the next attempt.

use crate::report::JobCounts;
use scenequeue_core::fence::Fence;
use scenequeue_core::results::{self, RecordError, SceneResult};
use scenequeue_core::states::RecoveryStep;
use sqlx::PgPool;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Scenes recorded in one transaction at most.
pub const BATCH_SCENES: usize = 64;
/// Longest time a finished scene waits to be recorded (so progress shows while a job runs).
pub const BATCH_WINDOW: Duration = Duration::from_millis(500);

/// Finished scenes of one attempt not yet recorded.
#[derive(Default)]
pub struct Recorder {
    pending: Vec<(SceneResult, PathBuf)>,
    since: Option<Instant>,
}

impl Recorder {
    /// Adds a finished scene, its output still under the attempt's own name.
    pub fn add(&mut self, result: SceneResult, attempt_file: PathBuf) {
        self.since.get_or_insert_with(Instant::now);
        self.pending.push((result, attempt_file));
    }

    /// Whether the batch is due: full, or its first scene waited long enough.
    pub fn due(&self) -> bool {
        self.pending.len() >= BATCH_SCENES || self.since.is_some_and(|t| t.elapsed() >= BATCH_WINDOW)
    }

    /// Records every pending scene under the lease, and says what was recorded. None if the lease was lost
    /// (nothing recorded, their files removed).
    pub async fn flush(&mut self, pool: &PgPool, fence: &Fence) -> Result<Option<JobCounts>, RecordError> {
        if self.pending.is_empty() {
            return Ok(Some(JobCounts::default()));
        }
        let pending = std::mem::take(&mut self.pending);
        self.since = None;
        let recorded = results::record_successes(pool, fence, &pending).await;
        if recorded.is_err() {
            // Not recorded: the attempt's files must not outlive it (those moved into place have none left).
            for (_, file) in &pending {
                let _ = tokio::fs::remove_file(file).await;
            }
        }
        if !recorded? {
            return Ok(None);
        }
        let mut counts = JobCounts::default();
        for (r, _) in &pending {
            counts.scenes_succeeded += 1;
            counts.ooms += u64::from(r.measured.oom_count);
            counts.scenes_recovered += u64::from(r.measured.recovery != RecoveryStep::None);
        }
        Ok(Some(counts))
    }
}

impl Drop for Recorder {
    /// An attempt that ends with results unrecorded removes their files.
    fn drop(&mut self) {
        for (_, file) in &self.pending {
            let _ = std::fs::remove_file(file);
        }
    }
}
