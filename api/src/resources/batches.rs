//! `GET /api/v1/batches` (newest first, paged) and `GET /api/v1/batches/{id}`: each batch with its settings and
//! its progress from the kept counts.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::page::{self, Page};
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use scenequeue_core::counts;
use scenequeue_core::ids::BatchId;
use scenequeue_core::states::{BatchState, SceneState};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Batch {
    /// Its id.
    pub id: BatchId,
    /// Its state.
    pub state: BatchState,
    /// Model its scenes are enhanced with.
    pub model: String,
    /// Recognition model its scenes are transcribed with (None: not transcribed).
    pub asr_model: Option<String>,
    /// Which audio the recogniser gets (`auto`, `enhanced`, `original`).
    pub asr_input: Option<String>,
    /// Dispatch priority (higher first).
    pub priority: i16,
    /// Whether an operator paused it.
    pub paused: bool,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When its last job ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its progress (filled from the kept counts).
    #[sqlx(skip)]
    pub progress: Progress,
}

/// A batch's scenes and audio per outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// Scenes in all.
    pub scenes: i64,
    /// Scenes enhanced.
    pub succeeded: i64,
    /// Scenes that failed.
    pub failed: i64,
    /// Audio in all, hours.
    pub audio_h_total: f64,
    /// Audio of ended scenes, hours.
    pub audio_h_done: f64,
}

/// `?state=&after=&limit=`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct BatchQuery {
    /// Only batches in this state.
    pub state: Option<BatchState>,
    /// The `next` of the previous page.
    pub after: Option<uuid::Uuid>,
    /// Items wanted.
    pub limit: Option<i64>,
}

/// Batches on the dashboard's front page, and in its live updates.
pub const FRONT_PAGE: i64 = 50;

const COLUMNS: &str = "id, state, model, asr_model, asr_input, priority, paused, created_at, finished_at";

async fn with_progress(pool: &PgPool, mut batches: Vec<Batch>) -> Result<Vec<Batch>, sqlx::Error> {
    let ids: Vec<BatchId> = batches.iter().map(|b| b.id).collect();
    for (batch, state, n, audio_s) in counts::scenes_of(pool, &ids).await? {
        if let Some(b) = batches.iter_mut().find(|b| b.id == batch) {
            let p = &mut b.progress;
            p.scenes += n;
            p.audio_h_total += audio_s / 3600.0;
            match state {
                SceneState::Succeeded => p.succeeded += n,
                SceneState::Failed => p.failed += n,
                _ => continue,
            }
            p.audio_h_done += audio_s / 3600.0;
        }
    }
    Ok(batches)
}

/// Lists batches, newest first.
pub async fn list_page(pool: &PgPool, query: BatchQuery) -> ApiResult<Page<Batch>> {
    let limit = page::limit(query.limit)?;
    let rows: Vec<Batch> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM batches
         WHERE ($1::batch_state IS NULL OR state = $1)
           AND ($2::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM batches WHERE id = $2))
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(query.state)
    .bind(query.after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let page = Page::new(rows, limit, |b| b.id.0);
    Ok(Page { items: with_progress(pool, page.items).await?, next: page.next })
}

/// One batch.
pub async fn one(pool: &PgPool, id: BatchId) -> ApiResult<Batch> {
    let batch: Option<Batch> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM batches WHERE id = $1")).bind(id).fetch_optional(pool).await?;
    let batch = batch.ok_or_else(|| ApiError::NotFound(format!("batch {id}")))?;
    with_progress(pool, vec![batch]).await?.into_iter().next().ok_or_else(|| ApiError::NotFound(format!("batch {id}")))
}

/// `GET /api/v1/batches`
pub async fn list(State(state): State<AppState>, Query(query): Query<BatchQuery>) -> ApiResult<Json<Page<Batch>>> {
    Ok(Json(list_page(&state.pool, query).await?))
}

/// `GET /api/v1/batches/{id}`
pub async fn get(State(state): State<AppState>, Path(id): Path<BatchId>) -> ApiResult<Json<Batch>> {
    Ok(Json(one(&state.pool, id).await?))
}
