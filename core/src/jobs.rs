//! Job state transitions in Postgres, shared by workers and the reaper. Ownership is a lease: a worker holds a
//! job until `lease_expires`, extends it while working, and only the holder may complete it. A job whose lease
//! runs out is taken back by the reaper, so a vanished worker delays a job but never loses it.
//!
//! Every function is named for the transition it makes; states are bound as the Rust enums of `states`, never
//! written as strings.

use crate::db::notify_job_event;
use crate::ids::{BatchId, JobId, WorkerId};
use crate::states::{BatchState, JobState, SceneState};
use sqlx::PgPool;
use std::time::Duration;

/// What a worker learns when it asks for a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Lease {
    /// The job is ours until the lease expires; `attempt` counts from 1.
    Granted {
        /// The job's batch.
        batch: BatchId,
        /// This attempt's number.
        attempt: i32,
    },
    /// Already finished (a duplicate message): acknowledge and move on.
    Finished,
    /// Another worker holds a live lease.
    HeldElsewhere,
    /// No such job (its batch was deleted).
    Missing,
    /// Every attempt was used: the job is now dead.
    Exhausted,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// running: takes the lease on `job` for `ttl` if it is waiting (pending or queued), or running under an
/// expired lease.
pub async fn lease(pool: &PgPool, job: JobId, worker: WorkerId, ttl: Duration) -> Result<Lease, sqlx::Error> {
    let granted: Option<(BatchId, i32)> = sqlx::query_as(
        "UPDATE jobs SET state = $4, lease_owner = $2, lease_expires = now() + make_interval(secs => $3),
                attempts = attempts + 1, started_at = coalesce(started_at, now())
         WHERE id = $1 AND attempts < max_attempts
           AND (state IN ($5, $6) OR (state = $4 AND lease_expires < now()))
         RETURNING batch_id, attempts",
    )
    .bind(job)
    .bind(worker)
    .bind(secs(ttl))
    .bind(JobState::Running)
    .bind(JobState::Pending)
    .bind(JobState::Queued)
    .fetch_optional(pool)
    .await?;
    if let Some((batch, attempt)) = granted {
        return Ok(Lease::Granted { batch, attempt });
    }
    let row: Option<(JobState, bool, bool)> = sqlx::query_as(
        "SELECT state, attempts >= max_attempts, state = $2 AND lease_expires >= now() FROM jobs WHERE id = $1",
    )
    .bind(job)
    .bind(JobState::Running)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => Lease::Missing,
        Some((state, _, _)) if state.is_terminal() => Lease::Finished,
        Some((_, _, true)) => Lease::HeldElsewhere,
        Some((_, true, _)) => {
            bury(pool, job, "every attempt was used").await?;
            Lease::Exhausted
        }
        Some(_) => Lease::HeldElsewhere,
    })
}

/// Extends a held lease; false if the lease was lost (taken back by the reaper).
pub async fn extend_lease(pool: &PgPool, job: JobId, worker: WorkerId, ttl: Duration) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET lease_expires = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_owner = $2 AND state = $4",
    )
    .bind(job)
    .bind(worker)
    .bind(secs(ttl))
    .bind(JobState::Running)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// succeeded: marks a held job done (every scene has its own terminal state) and finishes the batch if this was
/// its last open job. Returns false if the lease had been lost.
pub async fn complete(pool: &PgPool, job: JobId, worker: WorkerId) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let batch: Option<BatchId> = sqlx::query_scalar(
        "UPDATE jobs SET state = $3, finished_at = now(), lease_owner = NULL, lease_expires = NULL, error = NULL
         WHERE id = $1 AND lease_owner = $2 AND state = $4 RETURNING batch_id",
    )
    .bind(job)
    .bind(worker)
    .bind(JobState::Succeeded)
    .bind(JobState::Running)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(batch) = batch else {
        return Ok(false);
    };
    finish_batch_if_done(&mut tx, batch).await?;
    notify_job_event(&mut *tx, batch).await?;
    tx.commit().await?;
    Ok(true)
}

/// queued: gives a held job back after a failure that another attempt may fix (the message is requeued by the
/// caller).
pub async fn release(pool: &PgPool, job: JobId, worker: WorkerId, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET state = $4, lease_owner = NULL, lease_expires = NULL, error = $3
         WHERE id = $1 AND lease_owner = $2 AND state = $5",
    )
    .bind(job)
    .bind(worker)
    .bind(error)
    .bind(JobState::Queued)
    .bind(JobState::Running)
    .execute(pool)
    .await?;
    Ok(())
}

/// dead: marks a job dead with its reason, fails its unfinished scenes with the same reason, and finishes the
/// batch if nothing else is open.
pub async fn bury(pool: &PgPool, job: JobId, reason: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let batch: Option<BatchId> = sqlx::query_scalar(
        "UPDATE jobs SET state = $3, finished_at = now(), lease_owner = NULL, lease_expires = NULL,
                error = CASE WHEN error IS NULL THEN $2 ELSE $2 || ' (last error: ' || error || ')' END
         WHERE id = $1 AND state NOT IN ($4, $3) RETURNING batch_id",
    )
    .bind(job)
    .bind(reason)
    .bind(JobState::Dead)
    .bind(JobState::Succeeded)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(batch) = batch {
        sqlx::query(
            "UPDATE scenes SET state = $3, error = 'job dead: ' || $2
             WHERE job_id = $1 AND state NOT IN ($4, $3)",
        )
        .bind(job)
        .bind(reason)
        .bind(SceneState::Failed)
        .bind(SceneState::Succeeded)
        .execute(&mut *tx)
        .await?;
        finish_batch_if_done(&mut tx, batch).await?;
        notify_job_event(&mut *tx, batch).await?;
    }
    tx.commit().await
}

/// pending: running jobs whose lease expired with attempts left go back to wait for dispatch, with the reason
/// recorded. Returns them.
pub async fn requeue_expired(pool: &PgPool) -> Result<Vec<JobId>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE jobs SET state = $1, lease_owner = NULL, lease_expires = NULL,
                error = 'lease expired: the worker stopped answering'
         WHERE state = $2 AND lease_expires < now() AND attempts < max_attempts RETURNING id",
    )
    .bind(JobState::Pending)
    .bind(JobState::Running)
    .fetch_all(pool)
    .await
}

/// dead: running jobs whose lease expired on their last attempt are buried. Returns how many.
pub async fn bury_expired_on_last_attempt(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let exhausted: Vec<JobId> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE state = $1 AND lease_expires < now() AND attempts >= max_attempts",
    )
    .bind(JobState::Running)
    .fetch_all(pool)
    .await?;
    for &job in &exhausted {
        bury(pool, job, "lease expired on the last attempt").await?;
    }
    Ok(exhausted.len())
}

/// What a job cost in sessions and memory, recorded when it ends (MiB; None where not measured).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JobCosts {
    /// Highest GPU memory held after any scene of the job.
    pub gpu_peak_mb: Option<f32>,
    /// GPU memory held after the job, once the session policy was applied.
    pub gpu_after_mb: Option<f32>,
    /// Resident memory of the worker after the job.
    pub rss_after_mb: Option<f32>,
    /// Time spent creating sessions during the job, milliseconds.
    pub session_create_ms: f64,
}

/// Records what a job cost.
pub async fn record_costs(pool: &PgPool, job: JobId, costs: &JobCosts) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET gpu_peak_mb = $2, gpu_after_mb = $3, rss_after_mb = $4, session_create_ms = $5 WHERE id = $1",
    )
    .bind(job)
    .bind(costs.gpu_peak_mb)
    .bind(costs.gpu_after_mb)
    .bind(costs.rss_after_mb)
    .bind(costs.session_create_ms as f32)
    .execute(pool)
    .await?;
    Ok(())
}

/// finished: a batch is finished once none of its jobs can still change. A batch still ingesting is never
/// finished here: its submitter activates it when every recording is stored.
pub async fn finish_batch_if_done(tx: &mut sqlx::PgConnection, batch: BatchId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET state = $2, finished_at = now()
         WHERE id = $1 AND state = $3
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = $1 AND state NOT IN ($4, $5))",
    )
    .bind(batch)
    .bind(BatchState::Finished)
    .bind(BatchState::Active)
    .bind(JobState::Succeeded)
    .bind(JobState::Dead)
    .execute(tx)
    .await?;
    Ok(())
}
