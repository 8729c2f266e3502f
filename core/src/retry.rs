//! An operator's retry (`scenequeue retry <id>`): dead jobs and failed scenes run again, and what already
//! succeeded is kept. For a batch, or for one job:
//!
//! - failed scenes of a finished job (dead, or succeeded with failed scenes) go back to `pending`;
//! - such a job goes back to `pending` with a clean slate: attempts, crashes, handbacks and dead letters at 0, no
//!   back-off, no lease. Its `error` stays (it is the real last error) until the job succeeds;
//! - a `finished` batch that got a job back is `active` again.
//!
//! Jobs still open (pending, queued, running) are left to finish: their failed scenes are retried once they end.
//! All of it is one transaction that locks the batch row first, as batch completion does, so a job finishing
//! at the same moment either sees the retried jobs open or finished the batch before it is reopened here.

use crate::ids::{BatchId, JobId};
use crate::states::{BatchState, JobState, SceneState};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// What an id given to `retry` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Target {
    /// A whole batch.
    Batch(BatchId),
    /// One job.
    Job(JobId),
}

/// Why a retry was refused or failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The id is neither a batch's nor a job's.
    #[error("no batch or job has the id {0}")]
    Unknown(Uuid),
    /// The batch's submission is still storing recordings.
    #[error(
        "batch {0} is still being submitted (ingesting); retry it once its submission has finished or was interrupted"
    )]
    Ingesting(BatchId),
    /// A query failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// What a retry put back to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reset {
    /// What the id named.
    pub target: Target,
    /// The batch concerned.
    pub batch: BatchId,
    /// Jobs put back to `pending`.
    pub jobs: u64,
    /// Scenes put back to `pending`.
    pub scenes: u64,
    /// The batch was finished and is active again.
    pub reopened: bool,
}

/// pending: puts back to run the dead jobs and failed scenes of the batch or job with this `id`.
pub async fn retry(pool: &PgPool, id: Uuid) -> Result<Reset, RetryError> {
    let mut tx = pool.begin().await?;
    let batch_state: Option<BatchState> = sqlx::query_scalar("SELECT state FROM batches WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let (target, batch, state) = match batch_state {
        Some(BatchState::Ingesting) => return Err(RetryError::Ingesting(BatchId(id))),
        Some(state) => (Target::Batch(BatchId(id)), BatchId(id), state),
        None => {
            let batch: Option<BatchId> =
                sqlx::query_scalar("SELECT batch_id FROM jobs WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            let batch = batch.ok_or(RetryError::Unknown(id))?;
            let state: BatchState = sqlx::query_scalar("SELECT state FROM batches WHERE id = $1 FOR UPDATE")
                .bind(batch)
                .fetch_one(&mut *tx)
                .await?;
            (Target::Job(JobId(id)), batch, state)
        }
    };
    let job = match target {
        Target::Job(job) => Some(job),
        Target::Batch(_) => None,
    };
    let jobs: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE jobs SET state = $3, attempts = 0, crashes = 0, handbacks = 0, dead_letters = 0, not_before = NULL,
                lease_owner = NULL, lease_expires = NULL, lease_token = NULL, queued_at = NULL, finished_at = NULL
         WHERE batch_id = $1 AND ($2::uuid IS NULL OR id = $2)
           AND (state = $4 OR (state = $5 AND EXISTS (SELECT 1 FROM scenes s WHERE s.job_id = jobs.id AND s.state = $6)))
         RETURNING id",
    )
    .bind(batch)
    .bind(job)
    .bind(JobState::Pending)
    .bind(JobState::Dead)
    .bind(JobState::Succeeded)
    .bind(SceneState::Failed)
    .fetch_all(&mut *tx)
    .await?;
    let scenes = sqlx::query("UPDATE scenes SET state = $2 WHERE job_id = ANY($1) AND state NOT IN ($3, $2)")
        .bind(&jobs)
        .bind(SceneState::Pending)
        .bind(SceneState::Succeeded)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let reopened = !jobs.is_empty() && state == BatchState::Finished;
    if reopened {
        sqlx::query("UPDATE batches SET state = $2, finished_at = NULL WHERE id = $1")
            .bind(batch)
            .bind(BatchState::Active)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Reset { target, batch, jobs: jobs.len() as u64, scenes, reopened })
}
