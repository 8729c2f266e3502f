//! Batch state transitions: a batch is created `ingesting`, becomes `active` once every recording of its
//! submission is stored, and `finished` when no job of it can still change (see `jobs::finish_batch_if_done`).
//! A submitter that stops early leaves it `interrupted` (itself on Ctrl-C or SIGTERM, the scheduler once its
//! heartbeat is stale); the same submission resumes it.

use crate::ids::BatchId;
use crate::jobs::finish_batch_if_done;
use crate::options::{AsrOptions, BatchOptions};
use crate::states::BatchState;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// How often a submitter renews its batch's heartbeat.
pub const INGEST_HEARTBEAT: Duration = Duration::from_secs(10);
/// A batch still ingesting whose heartbeat is older than this lost its submitter.
pub(crate) const INGEST_STALE: Duration = Duration::from_secs(60);

/// What a new batch is made of.
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    /// Its id.
    pub id: BatchId,
    /// The model it is enhanced with.
    pub model: &'a str,
    /// Where its outputs go.
    pub output_dir: &'a str,
    /// Higher runs first.
    pub priority: i16,
    /// Identifies the submission (its inputs and settings), so the same command can resume it.
    pub submission_key: &'a str,
    /// Enhancement settings the workers apply over their own defaults.
    pub options: BatchOptions,
    /// Transcription after enhancement, if asked for.
    pub asr: Option<&'a AsrOptions>,
    /// The submission run that owns the batch while it ingests.
    pub owner: Uuid,
}

/// ingesting: creates a batch that is being submitted. Creating the same id again changes nothing, so a creation
/// whose commit went through but whose answer was lost can be run again.
pub async fn create(pool: &PgPool, batch: &NewBatch<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO batches (id, state, model, output_dir, priority, submission_key, ingest_seen, atten_lim_db,
                              post_filter_beta, highpass_hz, loudness_lufs, ingest_owner, asr_model, asr_language, asr_input)
         VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(batch.id)
    .bind(BatchState::Ingesting)
    .bind(batch.model)
    .bind(batch.output_dir)
    .bind(batch.priority)
    .bind(batch.submission_key)
    .bind(batch.options.atten_lim_db)
    .bind(batch.options.post_filter_beta)
    .bind(batch.options.highpass_hz)
    .bind(batch.options.loudness_lufs)
    .bind(batch.owner)
    .bind(batch.asr.map(|a| a.model.as_str()))
    .bind(batch.asr.map(|a| a.language.as_str()))
    .bind(batch.asr.map(|a| a.input.as_str()))
    .execute(pool)
    .await?;
    Ok(())
}

/// The interrupted batch of the submission with `submission_key`, or one still ingesting whose submitter is gone
/// (stale heartbeat), if any: the one a new run of the same submission resumes.
pub async fn interrupted_submission(pool: &PgPool, submission_key: &str) -> Result<Option<BatchId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM batches WHERE submission_key = $1
           AND (state = $2 OR (state = $3 AND ingest_seen < now() - make_interval(secs => $4)))
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(submission_key)
    .bind(BatchState::Interrupted)
    .bind(BatchState::Ingesting)
    .bind(INGEST_STALE.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// A batch's state and submission key; None if there is no such batch.
pub async fn state_and_key(pool: &PgPool, batch: BatchId) -> Result<Option<(BatchState, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT state, submission_key FROM batches WHERE id = $1").bind(batch).fetch_optional(pool).await
}

/// ingesting again: the submission run `owner` takes an interrupted batch back to complete it (a run that
/// stalled loses it: see [`owns`]). False if the batch is not interrupted (or still ingesting under a live run).
pub async fn resume(pool: &PgPool, batch: BatchId, owner: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE batches SET state = $2, ingest_seen = now(), ingest_owner = $5
         WHERE id = $1 AND (state = $3 OR (state = $2 AND ingest_seen < now() - make_interval(secs => $4)))",
    )
    .bind(batch)
    .bind(BatchState::Ingesting)
    .bind(BatchState::Interrupted)
    .bind(INGEST_STALE.as_secs_f64())
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether the run `owner` still owns `batch` (it is ingesting under that run), locking the batch row for the
/// rest of the transaction, so no other run can take it over while a chunk is stored.
pub async fn owns(tx: &mut sqlx::PgConnection, batch: BatchId, owner: Uuid) -> Result<bool, sqlx::Error> {
    let row: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM batches WHERE id = $1 AND ingest_owner = $2 AND state = $3 FOR UPDATE")
            .bind(batch)
            .bind(owner)
            .bind(BatchState::Ingesting)
            .fetch_optional(tx)
            .await?;
    Ok(row.is_some())
}

/// ingesting again: the run `owner` takes back its own batch after it was marked interrupted while the run could
/// not renew its heartbeat (Postgres was away), so the run goes on. False if another run took it, or it is no
/// longer interrupted. Locks the batch row for the rest of the transaction, as [`owns`] does.
pub async fn reclaim(tx: &mut sqlx::PgConnection, batch: BatchId, owner: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE batches SET state = $2, ingest_seen = now() WHERE id = $1 AND state = $3 AND ingest_owner = $4",
    )
    .bind(batch)
    .bind(BatchState::Ingesting)
    .bind(BatchState::Interrupted)
    .bind(owner)
    .execute(tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether the run `owner` already activated `batch` (it is active or finished under that run), as when an
/// activation's commit went through but its answer was lost.
pub async fn activated_by(pool: &PgPool, batch: BatchId, owner: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM batches WHERE id = $1 AND ingest_owner = $2 AND state IN ($3, $4))",
    )
    .bind(batch)
    .bind(owner)
    .bind(BatchState::Active)
    .bind(BatchState::Finished)
    .fetch_one(pool)
    .await
}

/// Paths of the recordings a batch already holds (stored with their scenes and jobs).
pub async fn stored_paths(pool: &PgPool, batch: BatchId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT path FROM media WHERE batch_id = $1").bind(batch).fetch_all(pool).await
}

/// The run `owner` is still at work on `batch`. False once it lost the batch (marked interrupted while it
/// stalled, or taken over by another run).
pub async fn ingest_heartbeat(pool: &PgPool, batch: BatchId, owner: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE batches SET ingest_seen = now() WHERE id = $1 AND state = $2 AND ingest_owner = $3")
        .bind(batch)
        .bind(BatchState::Ingesting)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// interrupted: the run `owner` stops before storing every recording.
pub async fn interrupt(pool: &PgPool, batch: BatchId, owner: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE batches SET state = $2 WHERE id = $1 AND state = $3 AND ingest_owner = $4")
        .bind(batch)
        .bind(BatchState::Interrupted)
        .bind(BatchState::Ingesting)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(())
}

/// interrupted: batches still ingesting whose submitter stopped renewing the heartbeat. Returns them.
pub async fn interrupt_stale(pool: &PgPool) -> Result<Vec<BatchId>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE batches SET state = $1
         WHERE state = $2 AND ingest_seen < now() - make_interval(secs => $3) RETURNING id",
    )
    .bind(BatchState::Interrupted)
    .bind(BatchState::Ingesting)
    .bind(INGEST_STALE.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// active: every recording of the submission is stored by the run `owner`; finished at once if it holds no
/// open job. False (nothing changed) if that run no longer owns the batch.
pub async fn activate(pool: &PgPool, batch: BatchId, owner: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let r = sqlx::query("UPDATE batches SET state = $2 WHERE id = $1 AND state = $3 AND ingest_owner = $4")
        .bind(batch)
        .bind(BatchState::Active)
        .bind(BatchState::Ingesting)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() != 1 {
        return Ok(false);
    }
    finish_batch_if_done(&mut tx, batch).await?;
    tx.commit().await?;
    Ok(true)
}
