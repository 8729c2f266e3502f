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

/// Rows read per reason to find the recordings it hit.
const PATH_ROWS: i64 = 200;

/// Failures of `batch` (or of every batch) grouped by reason: counts first (from the failed rows' indexes), then
/// a few recordings for each of the reasons shown.
pub async fn read(pool: &PgPool, batch: Option<BatchId>) -> Result<Vec<ErrorGroup>, sqlx::Error> {
    let mut groups: Vec<ErrorGroup> = sqlx::query_as(
        "SELECT * FROM (
            -- Grouped by the raw column, so the partial index on failed scenes' reasons gives them in order.
            SELECT 'scene' AS kind, coalesce(error, '') AS reason, n AS count, '{}'::text[] AS recordings
            FROM (SELECT error, count(*) AS n FROM scenes WHERE state = $2 AND ($1::uuid IS NULL OR batch_id = $1)
                  GROUP BY error) s
            UNION ALL
            SELECT 'job', coalesce(error, ''), count(*), '{}'
            FROM jobs WHERE state = $3 AND ($1::uuid IS NULL OR batch_id = $1) GROUP BY 2
            UNION ALL
            SELECT 'recording', coalesce(error, ''), count(*), '{}'
            FROM media WHERE state = $4 AND ($1::uuid IS NULL OR batch_id = $1) GROUP BY 2
         ) g ORDER BY count DESC, kind, reason LIMIT $5",
    )
    .bind(batch)
    .bind(SceneState::Failed)
    .bind(JobState::Dead)
    .bind(MediaState::Failed)
    .bind(GROUPS_SHOWN)
    .fetch_all(pool)
    .await?;
    for g in &mut groups {
        let sql = match g.kind.as_str() {
            "scene" => {
                "SELECT m.path FROM scenes s JOIN media m ON m.id = s.media_id
                 WHERE s.state = $2 AND coalesce(s.error, '') = $3 AND ($1::uuid IS NULL OR s.batch_id = $1) LIMIT $4"
            }
            "job" => {
                "SELECT m.path FROM jobs j JOIN LATERAL (SELECT media_id FROM scenes WHERE job_id = j.id LIMIT 1) s ON true
                 JOIN media m ON m.id = s.media_id
                 WHERE j.state = $5 AND coalesce(j.error, '') = $3 AND ($1::uuid IS NULL OR j.batch_id = $1) LIMIT $4"
            }
            _ => {
                "SELECT path FROM media WHERE state = $6 AND coalesce(error, '') = $3
                 AND ($1::uuid IS NULL OR batch_id = $1) ORDER BY path LIMIT $4"
            }
        };
        let paths: Vec<String> = sqlx::query_scalar(sql)
            .bind(batch)
            .bind(SceneState::Failed)
            .bind(&g.reason)
            .bind(PATH_ROWS)
            .bind(JobState::Dead)
            .bind(MediaState::Failed)
            .fetch_all(pool)
            .await?;
        for p in paths {
            if g.recordings.len() as i64 >= PATHS_SHOWN {
                break;
            }
            if !g.recordings.contains(&p) {
                g.recordings.push(p);
            }
        }
    }
    Ok(groups)
}

/// `GET /api/v1/errors[?batch=<id>]`
pub async fn list(
    State(state): State<AppState>,
    Query(filter): Query<BatchFilter>,
) -> ApiResult<Json<Vec<ErrorGroup>>> {
    Ok(Json(read(&state.pool, filter.batch).await?))
}
