//! Job state transitions in Postgres, shared by workers and the reaper. Ownership is a lease: a worker holds a
//! job until `lease_expires`, extends it while working, and only the holder of the lease's token (its
//! [`Fence`]) may complete, release or hand back the job. A job whose lease runs out is taken back by the
//! reaper, so a vanished worker delays a job but never loses it. Every transition that ends a job locks its
//! batch row first, so two jobs ending at once cannot both miss that they were the last.
//!
//! Every function is named for the transition it makes; states are bound as the Rust enums of `states`, never
//! written as strings.

use crate::db::JOB_EVENTS_CHANNEL;
use crate::fence::Fence;
use crate::ids::{BatchId, JobId, WorkerId};
use crate::states::{BatchState, JobState, SceneState, WorkerState};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// What a worker learns when it asks for a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Lease {
    /// The job is ours until the lease expires.
    Granted {
        /// The job's batch.
        batch: BatchId,
        /// This attempt's number, from 1.
        attempt: i32,
        /// The token every write of this attempt is conditional on.
        fence: Fence,
        /// Leases of this job that expired before (its workers died or hung).
        crashes: i32,
    },
    /// Already finished (a duplicate message): acknowledge and move on.
    Finished,
    /// Another worker holds a live lease.
    HeldElsewhere,
    /// No such job (its batch was deleted).
    Missing,
    /// Every attempt was used: the job is now dead.
    Exhausted,
    /// Released for a retry that is not due yet (its back-off): the message is a stray duplicate.
    NotDue,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// running: takes the lease on `job` for `ttl` if it is waiting (pending or queued, and its back-off over), or
/// running under an expired lease. The lease gets a fresh token, and the worker's row (if it has one) says it is
/// busy with the job, in the same statement.
pub async fn lease(pool: &PgPool, job: JobId, worker: WorkerId, ttl: Duration) -> Result<Lease, sqlx::Error> {
    let token = Uuid::new_v4();
    let granted: Option<(BatchId, i32, i32)> = sqlx::query_as(
        "WITH granted AS (
             UPDATE jobs SET state = $4, lease_owner = $2, lease_expires = now() + make_interval(secs => $3),
                    lease_token = $7, attempts = attempts + 1, started_at = coalesce(started_at, now()),
                    not_before = NULL
             WHERE id = $1 AND attempts < max_attempts
               AND ((state IN ($5, $6) AND (not_before IS NULL OR not_before <= now()))
                    OR (state = $4 AND lease_expires < now()))
             RETURNING batch_id, attempts, crashes
         ), busy AS (
             UPDATE workers SET state = $8, current_job = $1, health = NULL, last_seen = now()
             WHERE id = $2 AND EXISTS (SELECT 1 FROM granted)
         )
         SELECT batch_id, attempts, crashes FROM granted",
    )
    .bind(job)
    .bind(worker)
    .bind(secs(ttl))
    .bind(JobState::Running)
    .bind(JobState::Pending)
    .bind(JobState::Queued)
    .bind(token)
    .bind(WorkerState::Busy)
    .fetch_optional(pool)
    .await?;
    if let Some((batch, attempt, crashes)) = granted {
        return Ok(Lease::Granted { batch, attempt, fence: Fence { job, token }, crashes });
    }
    let found: Option<NotGranted> = sqlx::query_as(
        "SELECT state, attempts >= max_attempts AS out_of_attempts,
                coalesce(state = $2 AND lease_expires >= now(), false) AS leased,
                coalesce(not_before > now(), false) AS backing_off
         FROM jobs WHERE id = $1",
    )
    .bind(job)
    .bind(JobState::Running)
    .fetch_optional(pool)
    .await?;
    let Some(job_now) = found else {
        return Ok(Lease::Missing);
    };
    Ok(if job_now.state.is_terminal() {
        Lease::Finished
    } else if job_now.leased {
        Lease::HeldElsewhere
    } else if job_now.out_of_attempts {
        bury(pool, job, "every attempt was used").await?;
        Lease::Exhausted
    } else if job_now.backing_off {
        Lease::NotDue
    } else {
        // Taken by another worker between the two statements.
        Lease::HeldElsewhere
    })
}

/// Why a job was not granted: how it stands now.
#[derive(sqlx::FromRow)]
struct NotGranted {
    state: JobState,
    /// Every attempt was used.
    out_of_attempts: bool,
    /// Another worker holds a live lease.
    leased: bool,
    /// Released for a retry whose back-off has not passed.
    backing_off: bool,
}

/// Locks the job's batch row, so the transactions that end jobs of one batch run one after the other and the
/// last of them sees every other's outcome when it decides whether the batch is finished.
async fn lock_batch_of(tx: &mut sqlx::PgConnection, job: JobId) -> Result<Option<BatchId>, sqlx::Error> {
    sqlx::query_scalar(LOCK_BATCH_OF).bind(job).fetch_optional(tx).await
}

/// The statement of [`lock_batch_of`] (`$1`: the job).
const LOCK_BATCH_OF: &str =
    "SELECT b.id FROM batches b JOIN jobs j ON j.batch_id = b.id WHERE j.id = $1 FOR UPDATE OF b";

/// succeeded: marks a held job done (every scene has its own terminal state), with what it cost when known, and
/// finishes the batch if this was its last open job. Returns false if the lease had been lost. Two statements:
/// the batch lock with the job's update, then the batch's end with the notification.
pub async fn complete(pool: &PgPool, fence: &Fence, costs: Option<&JobCosts>) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let costs = costs.copied();
    let done: Option<BatchId> = sqlx::query_scalar(&format!(
        "WITH locked AS ({LOCK_BATCH_OF})
         UPDATE jobs SET state = $3, finished_at = now(), finished_by = lease_owner, lease_owner = NULL,
                lease_expires = NULL, lease_token = NULL, error = NULL,
                gpu_peak_mb = coalesce($5, gpu_peak_mb), gpu_after_mb = coalesce($6, gpu_after_mb),
                rss_after_mb = coalesce($7, rss_after_mb), session_create_ms = coalesce($8, session_create_ms)
         WHERE id = $1 AND lease_token = $2 AND state = $4 AND batch_id IN (SELECT id FROM locked)
         RETURNING batch_id"
    ))
    .bind(fence.job)
    .bind(fence.token)
    .bind(JobState::Succeeded)
    .bind(JobState::Running)
    .bind(costs.and_then(|c| c.gpu_peak_mb))
    .bind(costs.and_then(|c| c.gpu_after_mb))
    .bind(costs.and_then(|c| c.rss_after_mb))
    .bind(costs.map(|c| c.session_create_ms as f32))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(batch) = done else {
        return Ok(false);
    };
    finish_batch_and_notify(&mut tx, batch).await?;
    tx.commit().await?;
    Ok(true)
}

/// pending: gives a held job back after a failure that another attempt may fix; it is dispatched again once
/// `backoff` has passed. `crashed` counts the failure as a crash (a hang or a panic of a group of scenes), which
/// moves the job towards running scene by scene. Its unfinished scenes go back to pending. False if the lease
/// had been lost.
pub async fn release(
    pool: &PgPool,
    fence: &Fence,
    error: &str,
    backoff: Duration,
    crashed: bool,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let released = sqlx::query(
        "UPDATE jobs SET state = $4, lease_owner = NULL, lease_expires = NULL, lease_token = NULL, error = $3,
                not_before = now() + make_interval(secs => $6), crashes = crashes + CASE WHEN $7 THEN 1 ELSE 0 END
         WHERE id = $1 AND lease_token = $2 AND state = $5",
    )
    .bind(fence.job)
    .bind(fence.token)
    .bind(error)
    .bind(JobState::Pending)
    .bind(JobState::Running)
    .bind(secs(backoff))
    .bind(crashed)
    .execute(&mut *tx)
    .await?;
    if released.rows_affected() == 0 {
        return Ok(false);
    }
    reset_running_scenes(&mut tx, fence.job, SceneState::Pending).await?;
    tx.commit().await?;
    Ok(true)
}

/// queued: gives a held job back because of this worker (its environment failed, or it is shutting down); the
/// caller requeues the message. The attempt is not spent, unless the job was already handed back
/// `max_handbacks` times (so a job that every worker hands back still runs out of attempts). Its unfinished
/// scenes go back to queued. False if the lease had been lost.
pub async fn hand_back(pool: &PgPool, fence: &Fence, reason: &str, max_handbacks: i32) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let given = sqlx::query(
        "UPDATE jobs SET state = $4, lease_owner = NULL, lease_expires = NULL, lease_token = NULL, error = $3,
                attempts = CASE WHEN handbacks < $6 THEN greatest(attempts - 1, 0) ELSE attempts END,
                handbacks = handbacks + 1
         WHERE id = $1 AND lease_token = $2 AND state = $5",
    )
    .bind(fence.job)
    .bind(fence.token)
    .bind(reason)
    .bind(JobState::Queued)
    .bind(JobState::Running)
    .bind(max_handbacks)
    .execute(&mut *tx)
    .await?;
    if given.rows_affected() == 0 {
        return Ok(false);
    }
    reset_running_scenes(&mut tx, fence.job, SceneState::Pending).await?;
    tx.commit().await?;
    Ok(true)
}

/// Scenes of `job` left `running` by an attempt that ended without them go back to `to`.
async fn reset_running_scenes(tx: &mut sqlx::PgConnection, job: JobId, to: SceneState) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE scenes SET state = $2 WHERE job_id = $1 AND state = $3")
        .bind(job)
        .bind(to)
        .bind(SceneState::Running)
        .execute(tx)
        .await?;
    Ok(())
}

/// dead: marks a job dead with its reason, fails its unfinished scenes with the same reason, and finishes the
/// batch if nothing else is open. A job whose scenes all reached a terminal state is not dead: it is marked
/// succeeded instead (its failed scenes keep their own causes).
pub async fn bury(pool: &PgPool, job: JobId, reason: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(batch) = lock_batch_of(&mut tx, job).await? else {
        return Ok(());
    };
    let open: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM scenes WHERE job_id = $1 AND state NOT IN ($2, $3))")
            .bind(job)
            .bind(SceneState::Succeeded)
            .bind(SceneState::Failed)
            .fetch_one(&mut *tx)
            .await?;
    let state = if open { JobState::Dead } else { JobState::Succeeded };
    let ended = sqlx::query(
        "UPDATE jobs SET state = $3, finished_at = now(), lease_owner = NULL, lease_expires = NULL,
                lease_token = NULL,
                error = CASE WHEN $3 = $5 THEN error WHEN error IS NULL THEN $2
                             ELSE $2 || ' (last error: ' || error || ')' END
         WHERE id = $1 AND state NOT IN ($4, $5)",
    )
    .bind(job)
    .bind(reason)
    .bind(state)
    .bind(JobState::Dead)
    .bind(JobState::Succeeded)
    .execute(&mut *tx)
    .await?;
    if ended.rows_affected() > 0 {
        if open {
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
        }
        finish_batch_and_notify(&mut tx, batch).await?;
    }
    tx.commit().await
}

/// pending: running jobs whose lease expired with attempts left go back to wait for dispatch, with the reason
/// recorded and one more crash counted; their scenes left running go back to pending. Returns them. One
/// statement: every idle worker runs it on every heartbeat, and it usually finds nothing.
pub async fn requeue_expired(pool: &PgPool) -> Result<Vec<JobId>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH taken AS (
             UPDATE jobs SET state = $1, lease_owner = NULL, lease_expires = NULL, lease_token = NULL,
                    crashes = crashes + 1,
                    error = 'lease expired: the worker stopped answering' ||
                            coalesce(' (last error: ' || error || ')', '')
             WHERE state = $2 AND lease_expires < now() AND attempts < max_attempts RETURNING id
         ), scenes_back AS (
             UPDATE scenes SET state = $3 WHERE job_id IN (SELECT id FROM taken) AND state = $4
         )
         SELECT id FROM taken",
    )
    .bind(JobState::Pending)
    .bind(JobState::Running)
    .bind(SceneState::Pending)
    .bind(SceneState::Running)
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
pub(crate) async fn finish_batch_if_done(tx: &mut sqlx::PgConnection, batch: BatchId) -> Result<(), sqlx::Error> {
    bind_finish(sqlx::query(FINISH_BATCH_IF_DONE), batch).execute(tx).await?;
    Ok(())
}

/// [`finish_batch_if_done`], and tells listeners that a job of `batch` reached a terminal state (see
/// `db::notify_job_event`), in one statement. Inside the caller's transaction, after the job's change and
/// under the batch's lock.
pub(crate) async fn finish_batch_and_notify(tx: &mut sqlx::PgConnection, batch: BatchId) -> Result<(), sqlx::Error> {
    let sql = format!("WITH finished AS ({FINISH_BATCH_IF_DONE}) SELECT pg_notify($6, $7)");
    bind_finish(sqlx::query(&sql), batch).bind(JOB_EVENTS_CHANNEL).bind(batch.to_string()).execute(tx).await?;
    Ok(())
}

/// The statement of [`finish_batch_if_done`]; [`bind_finish`] binds `$1` to `$5`.
const FINISH_BATCH_IF_DONE: &str = "UPDATE batches SET state = $2, finished_at = now()
     WHERE id = $1 AND state = $3
       AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = $1 AND state NOT IN ($4, $5))";

fn bind_finish<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    batch: BatchId,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query.bind(batch).bind(BatchState::Finished).bind(BatchState::Active).bind(JobState::Succeeded).bind(JobState::Dead)
}
