//! An operator's controls on a running farm, besides retry: pause and resume a batch (dispatch skips a paused
//! batch's pending jobs; jobs already in the broker still run), change its priority, cancel it, and drain a
//! worker (it finishes its job and stops taking more; see `workers::drain_requested`).

use crate::db::notify_job_event;
use crate::ids::{BatchId, WorkerId};
use crate::jobs::finish_batch_and_notify;
use crate::states::{JobState, SceneState};
use serde::Serialize;
use sqlx::PgPool;

/// The reason kept on the jobs and scenes a cancellation ended.
pub(crate) const CANCELLED: &str = "cancelled by an operator";

/// Pauses (`true`) or resumes (`false`) `batch`. False when there is no such batch.
pub async fn set_paused(pool: &PgPool, batch: BatchId, paused: bool) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE batches SET paused = $2 WHERE id = $1").bind(batch).bind(paused).execute(pool).await?;
    notify_job_event(pool, batch).await?;
    Ok(done.rows_affected() > 0)
}

/// Sets the priority of `batch` (higher is dispatched first). False when there is no such batch.
pub async fn set_priority(pool: &PgPool, batch: BatchId, priority: i16) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE batches SET priority = $2 WHERE id = $1").bind(batch).bind(priority).execute(pool).await?;
    notify_job_event(pool, batch).await?;
    Ok(done.rows_affected() > 0)
}

/// What a cancellation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cancelled {
    /// Jobs that had not started, now dead.
    pub jobs: u64,
    /// Their scenes, now failed.
    pub scenes: u64,
}

/// Cancels `batch`: it is paused, and its jobs that have not started (pending or queued) are dead with the reason
/// [`CANCELLED`], their scenes failed; running jobs finish. A retry runs them again. `None` when there is no such
/// batch. One transaction that locks the batch row first, as batch completion does.
pub async fn cancel(pool: &PgPool, batch: BatchId) -> Result<Option<Cancelled>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let found: Option<BatchId> = sqlx::query_scalar("UPDATE batches SET paused = true WHERE id = $1 RETURNING id")
        .bind(batch)
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Ok(None);
    }
    let jobs: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE jobs SET state = $2, error = $3, finished_at = now() WHERE batch_id = $1 AND state IN ($4, $5)
         RETURNING id",
    )
    .bind(batch)
    .bind(JobState::Dead)
    .bind(CANCELLED)
    .bind(JobState::Pending)
    .bind(JobState::Queued)
    .fetch_all(&mut *tx)
    .await?;
    let scenes = sqlx::query("UPDATE scenes SET state = $2, error = $3 WHERE job_id = ANY($1) AND state = $4")
        .bind(&jobs)
        .bind(SceneState::Failed)
        .bind(CANCELLED)
        .bind(SceneState::Pending)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    finish_batch_and_notify(&mut tx, batch).await?;
    tx.commit().await?;
    Ok(Some(Cancelled { jobs: jobs.len() as u64, scenes }))
}

/// Asks worker `id` to drain: finish its job, then stop. False when there is no such worker.
pub async fn drain_worker(pool: &PgPool, id: WorkerId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE workers SET drain_requested = true WHERE id = $1").bind(id).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}
