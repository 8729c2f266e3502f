//! Job state transitions in Postgres, shared by workers and the reaper. Ownership is a lease: a worker holds a
//! job until `lease_expires`, extends it while working, and only the holder may complete it. A job whose lease
//! runs out is taken back by the reaper, so a vanished worker delays a job but never loses it.

use crate::db::notify_job_event;
use crate::ids::{BatchId, JobId, WorkerId};
use crate::states::JobState;
use sqlx::PgPool;
use std::time::Duration;

/// What a worker learns when it asks for a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Lease {
    /// The job is ours until the lease expires; `attempt` counts from 1.
    Granted { batch: BatchId, attempt: i32 },
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

/// Takes the lease on `job` for `ttl` if it is waiting, or running under an expired lease.
pub async fn lease(pool: &PgPool, job: JobId, worker: WorkerId, ttl: Duration) -> Result<Lease, sqlx::Error> {
    let granted: Option<(BatchId, i32)> = sqlx::query_as(
        "UPDATE jobs SET state = 'running', lease_owner = $2, lease_expires = now() + make_interval(secs => $3),
                attempts = attempts + 1, started_at = coalesce(started_at, now())
         WHERE id = $1 AND attempts < max_attempts
           AND (state IN ('pending', 'queued') OR (state = 'running' AND lease_expires < now()))
         RETURNING batch_id, attempts",
    )
    .bind(job)
    .bind(worker)
    .bind(secs(ttl))
    .fetch_optional(pool)
    .await?;
    if let Some((batch, attempt)) = granted {
        return Ok(Lease::Granted { batch, attempt });
    }
    let row: Option<(JobState, bool, bool)> = sqlx::query_as(
        "SELECT state, attempts >= max_attempts, state = 'running' AND lease_expires >= now() FROM jobs WHERE id = $1",
    )
    .bind(job)
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
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(job)
    .bind(worker)
    .bind(secs(ttl))
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks a held job succeeded (every scene has its own terminal state) and finishes the batch if this was its
/// last open job. Returns false if the lease had been lost.
pub async fn complete(pool: &PgPool, job: JobId, worker: WorkerId) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let batch: Option<BatchId> = sqlx::query_scalar(
        "UPDATE jobs SET state = 'succeeded', finished_at = now(), lease_owner = NULL, lease_expires = NULL, error = NULL
         WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING batch_id",
    )
    .bind(job)
    .bind(worker)
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

/// Gives a held job back after a failure that another attempt may fix (the message is requeued by the caller).
pub async fn release(pool: &PgPool, job: JobId, worker: WorkerId, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires = NULL, error = $3
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(job)
    .bind(worker)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks a job dead with its reason, fails its unfinished scenes with the same reason, and finishes the batch
/// if nothing else is open.
pub async fn bury(pool: &PgPool, job: JobId, reason: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let batch: Option<BatchId> = sqlx::query_scalar(
        "UPDATE jobs SET state = 'dead', finished_at = now(), lease_owner = NULL, lease_expires = NULL,
                error = CASE WHEN error IS NULL THEN $2 ELSE $2 || ' (last error: ' || error || ')' END
         WHERE id = $1 AND state NOT IN ('succeeded', 'dead') RETURNING batch_id",
    )
    .bind(job)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(batch) = batch {
        sqlx::query(
            "UPDATE scenes SET state = 'failed', error = 'job dead: ' || $2
             WHERE job_id = $1 AND state NOT IN ('succeeded', 'failed')",
        )
        .bind(job)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        finish_batch_if_done(&mut tx, batch).await?;
        notify_job_event(&mut *tx, batch).await?;
    }
    tx.commit().await
}

/// A batch is finished once none of its jobs can still change. A batch still ingesting is never finished here:
/// its submitter activates it when every recording is stored.
pub async fn finish_batch_if_done(tx: &mut sqlx::PgConnection, batch: BatchId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET state = 'finished', finished_at = now()
         WHERE id = $1 AND state = 'active'
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = $1 AND state NOT IN ('succeeded', 'dead'))",
    )
    .bind(batch)
    .execute(tx)
    .await?;
    Ok(())
}
