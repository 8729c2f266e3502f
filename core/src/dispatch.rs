//! Dispatch: releasing stored jobs to the broker. A job is `pending` in Postgres until dispatched, then
//! `queued` once the broker confirms its message. A paused batch's pending jobs wait. The broker holds at most `max_queued` queued jobs; the rest
//! wait in Postgres, released highest batch priority first (then oldest batch first). So a huge low-priority
//! batch occupies at most `max_queued` places ahead of an urgent one, whatever its size.
//!
//! Within a priority, jobs that ran before (taken back from a worker that died, or released for a retry) go
//! first, so a takeover does not wait behind the whole backlog.
//!
//! Submissions, workers (after every job) and the scheduler loop all dispatch; row locks (`SKIP LOCKED`) keep
//! two dispatchers from publishing the same job, and a duplicate would be harmless anyway (see `jobs`).
//! Whatever a crash left pending is dispatched by the next of them. A job released for a retry waits until its
//! `not_before` (the back-off) has passed.

use crate::ids::JobId;
use crate::mq::{MqError, Publisher};
use crate::states::{JobState, SceneState};
use sqlx::PgPool;
use uuid::Uuid;

/// Why dispatching failed; jobs it had not yet marked queued stay `pending` and are dispatched later.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Reading pending jobs or marking confirmed ones queued failed in Postgres.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Publishing to the broker, or awaiting its confirms, failed.
    #[error(transparent)]
    Mq(#[from] MqError),
}

/// Messages published per round trip; bounds memory.
const CHUNK: i64 = 1000;

/// Default bound on jobs queued in the broker.
pub const DEFAULT_MAX_QUEUED: i64 = 64;

/// Publishes pending jobs, by priority, until `max_queued` are queued or none is pending. Returns how many.
pub async fn dispatch(pool: &PgPool, publisher: &Publisher, max_queued: i64) -> Result<usize, DispatchError> {
    let mut total = 0;
    loop {
        // The count is read before the transaction: a full queue (the common case, after every job of every
        // worker) costs one statement. Two dispatchers may both see room and overshoot the bound by a chunk at
        // most, as they could inside a transaction too.
        let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = $1")
            .bind(JobState::Queued)
            .fetch_one(pool)
            .await?;
        let room = (max_queued.max(1) - queued).min(CHUNK);
        if room <= 0 {
            return Ok(total);
        }
        let mut tx = pool.begin().await?;
        let ids: Vec<JobId> = sqlx::query_scalar(
            "SELECT j.id FROM jobs j JOIN batches b ON b.id = j.batch_id
             WHERE j.state = $2 AND NOT b.paused AND (j.not_before IS NULL OR j.not_before <= now())
             ORDER BY b.priority DESC, j.attempts > 0 DESC, b.created_at, j.id
             LIMIT $1 FOR UPDATE OF j SKIP LOCKED",
        )
        .bind(room)
        .bind(JobState::Pending)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(total);
        }
        let confirmed = publisher.publish_jobs(&ids).await?;
        let uuids: Vec<Uuid> = confirmed.iter().map(|j| j.0).collect();
        sqlx::query(
            "UPDATE jobs SET state = $2, queued_at = now(), not_before = NULL WHERE id = ANY($1) AND state = $3",
        )
        .bind(&uuids)
        .bind(JobState::Queued)
        .bind(JobState::Pending)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE scenes SET state = $2 WHERE job_id = ANY($1) AND state = $3")
            .bind(&uuids)
            .bind(SceneState::Queued)
            .bind(SceneState::Pending)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        total += confirmed.len();
    }
}
