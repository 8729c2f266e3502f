//! Jobs whose message is gone from the job queue go back to `pending`, so dispatch publishes them again: queued
//! jobs whose message the broker lost (a purge, a broker that lost its data), and jobs whose message the broker
//! dead-lettered while they still had attempts left. A duplicate message is harmless (a lease is granted once;
//! a duplicate finds the job running or finished and is acknowledged), a lost one is not, so both err towards
//! publishing again.

use crate::ids::JobId;
use crate::jobs::bury;
use crate::states::JobState;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// Times a job's message may be dead-lettered and published again before the job is buried, so a message that
/// keeps dying without costing an attempt cannot circle for ever.
pub(crate) const MAX_DEAD_LETTERS: i32 = 3;

/// The note a job published again after a dead letter carries in its error, before its last error.
pub const DEAD_LETTER_NOTE: &str = "the broker dead-lettered its message (delivery limit reached); published again";

/// Jobs in state `queued`: each should have a message in the broker.
pub async fn queued_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = $1").bind(JobState::Queued).fetch_one(pool).await
}

/// pending: at most `limit` queued jobs confirmed more than `grace` ago, oldest first, whose messages the broker
/// no longer holds; their scenes go back to `pending` too. Returns them.
pub async fn requeue_lost_messages(pool: &PgPool, limit: i64, grace: Duration) -> Result<Vec<JobId>, sqlx::Error> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let jobs: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE jobs SET state = $1, queued_at = NULL
         WHERE id IN (SELECT id FROM jobs WHERE state = $2
                        AND coalesce(queued_at, '-infinity') < now() - make_interval(secs => $3)
                      ORDER BY queued_at NULLS FIRST, id LIMIT $4 FOR UPDATE SKIP LOCKED)
           AND state = $2
         RETURNING id",
    )
    .bind(JobState::Pending)
    .bind(JobState::Queued)
    .bind(grace.as_secs_f64())
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(jobs.into_iter().map(JobId).collect())
}

/// What became of a job whose message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetter {
    /// Back to `pending`, to be published again, with a note in its error.
    Requeued,
    /// Out of attempts (or dead-lettered too often): buried with the reason.
    Buried,
    /// Already succeeded or dead: nothing to do.
    Finished,
    /// Running under a live lease: its holder finishes it (or the lease expires and the reaper requeues it).
    Held,
    /// No such job (its batch was deleted).
    Missing,
}

/// pending (or dead): a job whose message the broker dead-lettered is published again if it has attempts left
/// and was not dead-lettered [`MAX_DEAD_LETTERS`] times already; otherwise it is buried.
pub async fn requeue_dead_lettered(pool: &PgPool, job: JobId) -> Result<DeadLetter, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(JobState, bool, i32, bool)> = sqlx::query_as(
        "SELECT state, attempts >= max_attempts, dead_letters, coalesce(lease_expires >= now(), false)
         FROM jobs WHERE id = $1 FOR UPDATE",
    )
    .bind(job)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((state, exhausted, dead_letters, live_lease)) = row else {
        return Ok(DeadLetter::Missing);
    };
    if state.is_terminal() {
        return Ok(DeadLetter::Finished);
    }
    if state == JobState::Running && live_lease {
        return Ok(DeadLetter::Held);
    }
    if exhausted || dead_letters + 1 >= MAX_DEAD_LETTERS {
        tx.commit().await?;
        let reason = if exhausted {
            "the broker dead-lettered its message (delivery limit reached) on the job's last attempt".to_string()
        } else {
            format!("the broker dead-lettered its message {MAX_DEAD_LETTERS} times (delivery limit reached)")
        };
        bury(pool, job, &reason).await?;
        return Ok(DeadLetter::Buried);
    }
    sqlx::query(
        "UPDATE jobs SET state = $2, dead_letters = dead_letters + 1, lease_owner = NULL, lease_expires = NULL,
                queued_at = NULL,
                error = CASE WHEN error IS NULL THEN $3 WHEN starts_with(error, $3) THEN error
                             ELSE $3 || ' (last error: ' || error || ')' END
         WHERE id = $1",
    )
    .bind(job)
    .bind(JobState::Pending)
    .bind(DEAD_LETTER_NOTE)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(DeadLetter::Requeued)
}
