//! `GET /api/v1/jobs?batch=&state=&after=&limit=` (paged by id) and `GET /api/v1/jobs/{id}`.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::page::{ListQuery, Page};
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use scenequeue_core::ids::{BatchId, JobId};
use scenequeue_core::states::JobState;
use serde::Serialize;

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Its batch.
    pub batch_id: BatchId,
    /// Its state.
    pub state: JobState,
    /// Audio it holds, seconds.
    pub audio_s: f64,
    /// Attempts spent.
    pub attempts: i32,
    /// Attempts it may spend.
    pub max_attempts: i32,
    /// The worker holding its lease, while running.
    pub lease_owner: Option<uuid::Uuid>,
    /// Its last error.
    pub error: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When a worker first took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// GPU memory held after the job, MiB.
    pub gpu_after_mb: Option<f32>,
    /// Time spent creating inference sessions, milliseconds.
    pub session_create_ms: Option<f32>,
}

const COLUMNS: &str = "id, batch_id, state, audio_s, attempts, max_attempts, lease_owner, error, created_at,
    started_at, finished_at, gpu_after_mb, session_create_ms";

/// `GET /api/v1/jobs`
pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery<JobState>>) -> ApiResult<Json<Page<Job>>> {
    let limit = q.limit()?;
    let rows: Vec<Job> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs
         WHERE ($1::uuid IS NULL OR batch_id = $1) AND ($2::job_state IS NULL OR state = $2)
           AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id LIMIT $4"
    ))
    .bind(q.batch)
    .bind(q.state)
    .bind(q.after)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Page::new(rows, limit, |j| j.id.0)))
}

/// `GET /api/v1/jobs/{id}`
pub async fn get(State(state): State<AppState>, Path(id): Path<JobId>) -> ApiResult<Json<Job>> {
    let job: Option<Job> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    job.map(Json).ok_or_else(|| ApiError::NotFound(format!("job {id}")))
}
