//! Counts per state, for `scenequeue status`.

use scenequeue_core::ids::BatchId;
use sqlx::PgPool;

#[derive(Debug, Clone, Default)]
pub struct StateCounts {
    pub batches: Vec<(String, i64)>,
    pub media: Vec<(String, i64)>,
    pub jobs: Vec<(String, i64)>,
    pub scenes: Vec<(String, i64)>,
    /// (path, error) of failed recordings.
    pub failed_media: Vec<(String, String)>,
    /// (media path, scene index, error) of failed scenes, at most `FAILURES_SHOWN`.
    pub failed_scenes: Vec<(String, i32, String)>,
    /// (job id, error) of dead jobs.
    pub dead_jobs: Vec<(String, String)>,
}

pub const FAILURES_SHOWN: i64 = 20;

async fn counts(pool: &PgPool, table: &str, batch: Option<BatchId>) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let column = if table == "batches" { "id" } else { "batch_id" };
    // `table` and `column` come from this module's constants, never from input.
    let sql = format!(
        "SELECT state::text, count(*) FROM {table} WHERE ($1::uuid IS NULL OR {column} = $1) GROUP BY state ORDER BY state"
    );
    sqlx::query_as(&sql).bind(batch).fetch_all(pool).await
}

pub async fn status(pool: &PgPool, batch: Option<BatchId>) -> Result<StateCounts, sqlx::Error> {
    Ok(StateCounts {
        batches: counts(pool, "batches", batch).await?,
        media: counts(pool, "media", batch).await?,
        jobs: counts(pool, "jobs", batch).await?,
        scenes: counts(pool, "scenes", batch).await?,
        failed_media: sqlx::query_as(
            "SELECT path, coalesce(error, '') FROM media WHERE state = 'failed' AND ($1::uuid IS NULL OR batch_id = $1)
             ORDER BY path LIMIT $2",
        )
        .bind(batch)
        .bind(FAILURES_SHOWN)
        .fetch_all(pool)
        .await?,
        failed_scenes: sqlx::query_as(
            "SELECT m.path, s.idx, coalesce(s.error, '') FROM scenes s JOIN media m ON m.id = s.media_id
             WHERE s.state = 'failed' AND ($1::uuid IS NULL OR s.batch_id = $1) ORDER BY m.path, s.idx LIMIT $2",
        )
        .bind(batch)
        .bind(FAILURES_SHOWN)
        .fetch_all(pool)
        .await?,
        dead_jobs: sqlx::query_as(
            "SELECT id::text, coalesce(error, '') FROM jobs WHERE state = 'dead' AND ($1::uuid IS NULL OR batch_id = $1)
             ORDER BY id LIMIT $2",
        )
        .bind(batch)
        .bind(FAILURES_SHOWN)
        .fetch_all(pool)
        .await?,
    })
}
