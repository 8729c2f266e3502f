//! `GET /api/v1/recordings?batch=&state=&after=&limit=`: the recordings of a submission, paged by id, with what
//! decoding found.

use crate::AppState;
use crate::error::ApiResult;
use crate::page::{ListQuery, Page};
use axum::Json;
use axum::extract::{Query, State};
use scenequeue_core::ids::{BatchId, MediaId};
use scenequeue_core::states::MediaState;
use serde::Serialize;

/// A recording as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Recording {
    /// Its id.
    pub id: MediaId,
    /// Its batch.
    pub batch_id: BatchId,
    /// Its path, as submitted.
    pub path: String,
    /// Its state.
    pub state: MediaState,
    /// Its length, seconds.
    pub duration_s: Option<f64>,
    /// Its sample rate, Hz.
    pub sample_rate: Option<i32>,
    /// Why it was refused.
    pub error: Option<String>,
    /// What decoding warned about.
    pub warning: Option<String>,
}

/// `GET /api/v1/recordings`
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery<MediaState>>,
) -> ApiResult<Json<Page<Recording>>> {
    let limit = q.limit()?;
    let rows: Vec<Recording> = sqlx::query_as(
        "SELECT id, batch_id, path, state, duration_s, sample_rate, error, warning FROM media
         WHERE ($1::uuid IS NULL OR batch_id = $1) AND ($2::media_state IS NULL OR state = $2)
           AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id LIMIT $4",
    )
    .bind(q.batch)
    .bind(q.state)
    .bind(q.after)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Page::new(rows, limit, |r| r.id.0)))
}
