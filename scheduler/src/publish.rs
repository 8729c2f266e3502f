//! Publishing stored jobs. A job is `pending` until the broker confirms its message, then `queued`; whatever is
//! still pending after a crash is found and published again here, so no stored job is ever stranded.

use crate::SchedulerError;
use scenequeue_core::ids::{BatchId, JobId};
use scenequeue_core::mq::Publisher;
use sqlx::PgPool;
use uuid::Uuid;

/// Messages in flight at once while publishing; bounds memory for batches of any size.
const CHUNK: i64 = 1000;

/// Publishes every pending job (of `batch`, or of all batches) and marks it queued. Returns how many.
pub async fn publish_pending(
    pool: &PgPool,
    publisher: &Publisher,
    batch: Option<BatchId>,
) -> Result<usize, SchedulerError> {
    let mut total = 0;
    let mut after = Uuid::nil();
    loop {
        let ids: Vec<JobId> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'pending' AND ($1::uuid IS NULL OR batch_id = $1) AND id > $2
             ORDER BY id LIMIT $3",
        )
        .bind(batch)
        .bind(after)
        .bind(CHUNK)
        .fetch_all(pool)
        .await?;
        let Some(last) = ids.last() else {
            return Ok(total);
        };
        after = last.0;
        let confirmed = publisher.publish_jobs(&ids).await?;
        mark_queued(pool, &confirmed).await?;
        total += confirmed.len();
    }
}

async fn mark_queued(pool: &PgPool, jobs: &[JobId]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.0).collect();
    let mut tx = pool.begin().await?;
    // A worker may already have leased a job whose confirm arrived late: only pending rows move.
    sqlx::query("UPDATE jobs SET state = 'queued' WHERE id = ANY($1) AND state = 'pending'")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE scenes SET state = 'queued' WHERE job_id = ANY($1) AND state = 'pending'")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
