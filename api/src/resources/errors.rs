//! `GET /api/v1/errors?batch=`: failed scenes and dead jobs grouped by reason, most frequent first, each with a
//! few of the recordings affected.

use crate::AppState;
use crate::error::ApiResult;
use crate::resources::overview::BatchFilter;
use axum::Json;
use axum::extract::{Query, State};
use scenequeue_core::ids::BatchId;
use scenequeue_core::states::{JobState, MediaState, SceneState};
use serde::Serialize;
use sqlx::PgPool;

/// One reason and what failed for it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ErrorGroup {
    /// What failed: `scene`, `job` or `recording`.
    pub kind: String,
    /// The reason, as stored.
    pub reason: String,
    /// How many failed for it.
    pub count: i64,
    /// Up to [`PATHS_SHOWN`] recordings affected.
    pub recordings: Vec<String>,
}

/// Reasons listed, and recordings listed per reason.
pub const GROUPS_SHOWN: i64 = 50;
/// Recordings listed per reason.
pub const PATHS_SHOWN: i64 = 5;

/// Failures of `batch` (or of every batch) grouped by reason.
pub async fn read(pool: &PgPool, batch: Option<BatchId>) -> Result<Vec<ErrorGroup>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM (
            SELECT 'scene' AS kind, coalesce(s.error, '') AS reason, count(*) AS count,
                   (array_agg(DISTINCT m.path))[1:$2] AS recordings
            FROM scenes s JOIN media m ON m.id = s.media_id
            WHERE s.state = $3 AND ($1::uuid IS NULL OR s.batch_id = $1) GROUP BY 2
            UNION ALL
            SELECT 'job', coalesce(j.error, ''), count(*),
                   (SELECT (array_agg(DISTINCT m.path))[1:$2] FROM scenes s JOIN media m ON m.id = s.media_id
                    WHERE s.job_id = ANY(array_agg(j.id)))
            FROM jobs j WHERE j.state = $4 AND ($1::uuid IS NULL OR j.batch_id = $1) GROUP BY 2
            UNION ALL
            SELECT 'recording', coalesce(error, ''), count(*), (array_agg(path ORDER BY path))[1:$2]
            FROM media WHERE state = $5 AND ($1::uuid IS NULL OR batch_id = $1) GROUP BY 2
         ) g ORDER BY count DESC, kind, reason LIMIT $6",
    )
    .bind(batch)
    .bind(PATHS_SHOWN as i32)
    .bind(SceneState::Failed)
    .bind(JobState::Dead)
    .bind(MediaState::Failed)
    .bind(GROUPS_SHOWN)
    .fetch_all(pool)
    .await
}

/// `GET /api/v1/errors[?batch=<id>]`
pub async fn list(
    State(state): State<AppState>,
    Query(filter): Query<BatchFilter>,
) -> ApiResult<Json<Vec<ErrorGroup>>> {
    Ok(Json(read(&state.pool, filter.batch).await?))
}
