//! `GET /api/v1/errors?batch=`: failed scenes, dead jobs and unreadable recordings grouped by reason class, most
//! frequent first, each with an example reason and a few of the recordings affected.

use crate::AppState;
use crate::error::ApiResult;
use crate::resources::overview::BatchFilter;
use axum::Json;
use axum::extract::{Query, State};
use scenequeue_core::ids::BatchId;
use scenequeue_core::states::{JobState, MediaState, SceneState};
use serde::Serialize;
use sqlx::PgPool;
use std::sync::LazyLock;

/// One class of reasons and what failed for it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ErrorGroup {
    /// What failed: `scene`, `job` or `recording`.
    pub kind: String,
    /// The reason's class: its words before the first ':' or '(' without figures (the database function
    /// `reason_class`), so reasons that differ only in a path or an id are one group.
    pub class: String,
    /// How many failed for it (kept as failures happen, never counted per request).
    pub count: i64,
    /// One reason of the class as stored, paths and figures included.
    pub example: String,
    /// Up to [`PATHS_SHOWN`] recordings affected.
    pub recordings: Vec<String>,
}

/// Classes listed, and recordings listed per class.
pub const GROUPS_SHOWN: i64 = 50;
/// Recordings listed per class.
pub const PATHS_SHOWN: usize = 5;

/// Failed rows read per class to find the recordings it hit.
const PATH_ROWS: i64 = 200;

// The states are written into the statements, not bound, so the partial indexes on failed rows serve generic
// plans too; their names come from the state enums.

/// Failed scenes of a reason class (`$2`), of a batch (`$1`) or every one.
static FAILED_SCENES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT m.path, coalesce(s.error, '') FROM scenes s JOIN media m ON m.id = s.media_id
         WHERE s.state = '{}' AND reason_class(s.error) = $2 AND ($1::uuid IS NULL OR s.batch_id = $1) LIMIT $3",
        SceneState::Failed
    )
});

/// Dead jobs of a reason class, each with a recording of its own.
static DEAD_JOBS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT m.path, coalesce(j.error, '') FROM jobs j
         JOIN LATERAL (SELECT media_id FROM scenes WHERE job_id = j.id LIMIT 1) s ON true
         JOIN media m ON m.id = s.media_id
         WHERE j.state = '{}' AND reason_class(j.error) = $2 AND ($1::uuid IS NULL OR j.batch_id = $1) LIMIT $3",
        JobState::Dead
    )
});

/// Refused recordings of a reason class.
static FAILED_RECORDINGS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT path, coalesce(error, '') FROM media WHERE state = '{}' AND reason_class(error) = $2
         AND ($1::uuid IS NULL OR batch_id = $1) LIMIT $3",
        MediaState::Failed
    )
});

/// Failures of `batch` (or of every batch) grouped by reason class, most frequent first: counts from the kept
/// `failure_counts`, then, through the failed rows' class indexes, one example reason and a few recordings for
/// each class shown.
pub async fn read(pool: &PgPool, batch: Option<BatchId>) -> Result<Vec<ErrorGroup>, sqlx::Error> {
    let mut groups: Vec<ErrorGroup> = sqlx::query_as(
        "SELECT kind, class, sum(n)::int8 AS count, '' AS example, '{}'::text[] AS recordings FROM failure_counts
         WHERE $1::uuid IS NULL OR batch_id = $1
         GROUP BY 1, 2 HAVING sum(n) > 0 ORDER BY count DESC, kind, class LIMIT $2",
    )
    .bind(batch)
    .bind(GROUPS_SHOWN)
    .fetch_all(pool)
    .await?;
    let found = futures_util::future::try_join_all(groups.iter().map(|g| {
        let sql = match g.kind.as_str() {
            "scene" => FAILED_SCENES.as_str(),
            "job" => DEAD_JOBS.as_str(),
            _ => FAILED_RECORDINGS.as_str(),
        };
        sqlx::query_as::<_, (String, String)>(sql).bind(batch).bind(&g.class).bind(PATH_ROWS).fetch_all(pool)
    }))
    .await?;
    for (g, rows) in groups.iter_mut().zip(found) {
        for (path, reason) in rows {
            if g.example.is_empty() {
                g.example = reason;
            }
            if g.recordings.len() >= PATHS_SHOWN {
                break;
            }
            if !g.recordings.contains(&path) {
                g.recordings.push(path);
            }
        }
        g.recordings.sort();
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
