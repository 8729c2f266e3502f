//! Dispatch: releasing stored jobs to the broker. A job is `pending` in Postgres until dispatched, then
//! `queued` once the broker confirms its message; its scenes stay `pending` until a worker runs them (only the
//! job's row is written, however many scenes it holds). A paused batch's pending jobs wait. The broker holds at most `max_queued` queued jobs; the rest
//! wait in Postgres, released highest batch priority first (then oldest batch first). So a huge low-priority
//! batch occupies at most `max_queued` places ahead of an urgent one, whatever its size.
//!
//! Within a priority, jobs that ran before (taken back from a worker that died, or released for a retry) go
//! first, so a takeover does not wait behind the whole backlog.
//!
//! Submissions, workers (after every job) and the scheduler loop all dispatch. They fill the queue one at a time
//! (a transaction-scoped advisory lock, which a transaction pooler keeps), so the bound holds however many
//! dispatch at once; a worker that finds another filling leaves it to that one. Row locks (`SKIP LOCKED`) keep
//! two dispatchers from publishing the same job anyway, and a duplicate would be harmless (see `jobs`).
//! Whatever a crash left pending is dispatched by the next of them. A job released for a retry waits until its
//! `not_before` (the back-off) has passed.

use crate::ids::JobId;
use crate::mq::{MqError, Publisher};
use crate::states::JobState;
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

/// The advisory lock that dispatchers of one database take in turn (an arbitrary constant: "sqdispat").
const LOCK_KEY: i64 = 0x7371_6469_7370_6174;

/// Places left in the broker's bound: `max_queued` less the jobs queued, at most a chunk.
async fn room<'e, E: sqlx::PgExecutor<'e>>(executor: E, max_queued: i64) -> Result<i64, sqlx::Error> {
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = $1")
        .bind(JobState::Queued)
        .fetch_one(executor)
        .await?;
    Ok((max_queued.max(1) - queued).min(CHUNK))
}

/// Publishes pending jobs, by priority, until `max_queued` are queued or none is pending. Returns how many. Waits
/// for a dispatcher already at work, so that 0 means nothing could be published.
pub async fn dispatch(pool: &PgPool, publisher: &Publisher, max_queued: i64) -> Result<usize, DispatchError> {
    fill(pool, publisher, max_queued, Turn::Wait).await
}

/// [`dispatch`] for the hot path of a busy farm (a worker after every job, and on its heartbeat): starts only once
/// the queue is down to half its bound (then fills it), and leaves the filling to a dispatcher already at work
/// instead of waiting for it. Returns 0 when it did not start, though jobs may be pending. So a thousand workers
/// do not each try to publish the one job that their last one made room for.
pub async fn top_up(pool: &PgPool, publisher: &Publisher, max_queued: i64) -> Result<usize, DispatchError> {
    fill(pool, publisher, max_queued, Turn::Skip).await
}

/// What a dispatcher does when another holds the dispatch lock.
#[derive(Clone, Copy, PartialEq)]
enum Turn {
    Wait,
    Skip,
}

async fn fill(pool: &PgPool, publisher: &Publisher, max_queued: i64, turn: Turn) -> Result<usize, DispatchError> {
    let mut total = 0;
    let low_water = match turn {
        Turn::Wait => 1,
        Turn::Skip => (max_queued / 2).clamp(1, CHUNK),
    };
    loop {
        // A full queue (the common case, after every job of every worker) costs one statement.
        if room(pool, max_queued).await? < if total == 0 { low_water } else { 1 } {
            return Ok(total);
        }
        // One dispatcher at a time fills the queue, so the bound holds however many workers dispatch at once.
        let mut tx = pool.begin().await?;
        if turn == Turn::Wait {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK_KEY).execute(&mut *tx).await?;
        } else {
            let ours: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)").bind(LOCK_KEY).fetch_one(&mut *tx).await?;
            if !ours {
                return Ok(total);
            }
        }
        let room = room(&mut *tx, max_queued).await?;
        if room <= 0 {
            return Ok(total);
        }
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
        tx.commit().await?;
        total += confirmed.len();
    }
}
