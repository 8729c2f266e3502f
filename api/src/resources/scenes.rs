//! `GET /api/v1/scenes?batch=&recording=&state=&text=&after=&limit=` (paged by id) and `GET /api/v1/scenes/{id}`,
//! with the scene's result when it has one, its transcript included. `text` finds the scenes whose transcript holds
//! it (case-insensitive).

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::page::{self, Page};
use axum::Json;
use axum::extract::{Path, Query, State};
use scenequeue_core::ids::{BatchId, JobId, MediaId, SceneId};
use scenequeue_core::states::SceneState;
use scenequeue_core::transcripts::Transcript;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// A scene as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Scene {
    /// Its id.
    pub id: SceneId,
    /// Its batch.
    pub batch_id: BatchId,
    /// Its recording.
    pub media_id: MediaId,
    /// The recording's path.
    pub path: String,
    /// Its job.
    pub job_id: Option<JobId>,
    /// Its index in the recording.
    pub idx: i32,
    /// Start in the recording, seconds.
    pub start_s: f64,
    /// End in the recording, seconds.
    pub end_s: f64,
    /// Its state.
    pub state: SceneState,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether its enhanced audio is stored.
    pub has_output: bool,
    /// Input level, dBFS.
    pub rms_in_db: Option<f64>,
    /// Output level, dBFS.
    pub rms_out_db: Option<f64>,
    /// What the recogniser heard, for a batch submitted with `--transcribe`.
    pub transcript: Option<sqlx::types::Json<Transcript>>,
}

/// `?batch=&recording=&state=&text=&after=&limit=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SceneQuery {
    /// Only this batch's scenes.
    pub batch: Option<BatchId>,
    /// Only this recording's scenes.
    pub recording: Option<MediaId>,
    /// Only scenes in this state.
    pub state: Option<SceneState>,
    /// Only scenes whose transcript holds this text (case-insensitive).
    pub text: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<uuid::Uuid>,
    /// Items wanted.
    pub limit: Option<i64>,
}

const SELECT: &str = "SELECT s.id, s.batch_id, s.media_id, m.path, s.job_id, s.idx, s.start_s, s.end_s, s.state,
    s.error, r.scene_id IS NOT NULL AS has_output, r.rms_in_db, r.rms_out_db, r.transcript
    FROM scenes s JOIN media m ON m.id = s.media_id LEFT JOIN results r ON r.scene_id = s.id";

/// One scene.
pub async fn one(pool: &PgPool, id: SceneId) -> ApiResult<Scene> {
    let scene: Option<Scene> =
        sqlx::query_as(&format!("{SELECT} WHERE s.id = $1")).bind(id).fetch_optional(pool).await?;
    scene.ok_or_else(|| ApiError::NotFound(format!("scene {id}")))
}

/// `GET /api/v1/scenes`
pub async fn list(State(state): State<AppState>, Query(q): Query<SceneQuery>) -> ApiResult<Json<Page<Scene>>> {
    let limit = page::limit(q.limit)?;
    let rows: Vec<Scene> = sqlx::query_as(&format!(
        "{SELECT}
         WHERE ($1::uuid IS NULL OR s.batch_id = $1) AND ($2::uuid IS NULL OR s.media_id = $2)
           AND ($3::scene_state IS NULL OR s.state = $3) AND ($4::uuid IS NULL OR s.id > $4)
           AND ($6::text IS NULL OR r.transcript->>'text' ILIKE '%' || $6 || '%')
         ORDER BY s.id LIMIT $5"
    ))
    .bind(q.batch)
    .bind(q.recording)
    .bind(q.state)
    .bind(q.after)
    .bind(limit + 1)
    .bind(q.text.as_deref().map(like_literal))
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Page::new(rows, limit, |s| s.id.0)))
}

/// `text` as a literal inside a LIKE pattern: its `%`, `_` and `\` match themselves.
pub fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// `GET /api/v1/scenes/{id}`
pub async fn get(State(state): State<AppState>, Path(id): Path<SceneId>) -> ApiResult<Json<Scene>> {
    Ok(Json(one(&state.pool, id).await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn searched_text_is_matched_literally() {
        assert_eq!(super::like_literal(r"50% off_now \o/"), r"50\% off\_now \\o/");
    }
}
