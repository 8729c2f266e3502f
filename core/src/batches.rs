//! Batch state transitions: a batch is created `ingesting`, becomes `active` once every recording of its
//! submission is stored, and `finished` when no job of it can still change (see `jobs::finish_batch_if_done`).

use crate::ids::BatchId;
use crate::jobs::finish_batch_if_done;
use crate::states::{BatchState, MediaState};
use sqlx::PgPool;

/// ingesting: creates a batch that is being submitted.
pub async fn create(
    pool: &PgPool,
    batch: BatchId,
    model: &str,
    output_dir: &str,
    priority: i16,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO batches (id, state, model, output_dir, priority) VALUES ($1, $2, $3, $4, $5)")
        .bind(batch)
        .bind(BatchState::Ingesting)
        .bind(model)
        .bind(output_dir)
        .bind(priority)
        .execute(pool)
        .await?;
    Ok(())
}

/// active: every recording of the submission is stored; finished at once if it holds no open job.
pub async fn activate(pool: &PgPool, batch: BatchId) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE batches SET state = $2 WHERE id = $1")
        .bind(batch)
        .bind(BatchState::Active)
        .execute(&mut *tx)
        .await?;
    finish_batch_if_done(&mut tx, batch).await?;
    tx.commit().await
}

/// The batch in which a recording with these bytes was already cut into scenes for `model`, if any.
pub async fn earlier_submission(
    pool: &PgPool,
    content_hash: &str,
    model: &str,
) -> Result<Option<BatchId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT m.batch_id FROM media m JOIN batches b ON b.id = m.batch_id
         WHERE m.content_hash = $1 AND m.state = $3 AND b.model = $2 LIMIT 1",
    )
    .bind(content_hash)
    .bind(model)
    .bind(MediaState::Split)
    .fetch_optional(pool)
    .await
}
