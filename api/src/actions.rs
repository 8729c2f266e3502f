//! Actions, each needing the API token ([`Operator`]): retry dead jobs and failed scenes (of a batch, a job or
//! the job of one scene), cancel, pause and resume a batch, change its priority, drain a worker. Retried jobs
//! wait `pending` and are published by the next dispatch (the scheduler's pass, or any worker's). Every action
//! is logged with what it named.

use crate::AppState;
use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use scenequeue_core::controls::{self, Cancelled};
use scenequeue_core::ids::{BatchId, SceneId, WorkerId};
use scenequeue_core::retry::{self, Reset, RetryError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

fn retry_error(e: RetryError) -> ApiError {
    match e {
        RetryError::Unknown(id) => ApiError::NotFound(format!("batch or job {id}")),
        RetryError::Ingesting(_) => ApiError::Conflict(e.to_string()),
        RetryError::Db(e) => ApiError::Db(e),
    }
}

async fn reset(state: &AppState, id: Uuid) -> ApiResult<Json<Reset>> {
    let reset = retry::retry(&state.pool, id).await.map_err(retry_error)?;
    tracing::info!(target = ?reset.target, jobs = reset.jobs, scenes = reset.scenes, "operator retry");
    Ok(Json(reset))
}

/// `POST /api/v1/batches/{id}/retry`: every dead job and failed scene of the batch.
pub async fn retry_batch(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<BatchId>,
) -> ApiResult<Json<Reset>> {
    reset(&state, id.0).await
}

/// `POST /api/v1/jobs/{id}/retry`: one job.
pub async fn retry_job(_: Operator, State(state): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<Json<Reset>> {
    reset(&state, id).await
}

/// `POST /api/v1/scenes/{id}/retry`: the job of one failed scene (its other failed scenes run again too).
pub async fn retry_scene(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<SceneId>,
) -> ApiResult<Json<Reset>> {
    let job: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT job_id FROM scenes WHERE id = $1").bind(id).fetch_optional(&state.pool).await?;
    let job = job.ok_or_else(|| ApiError::NotFound(format!("scene {id}")))?;
    let job = job.ok_or_else(|| ApiError::Conflict(format!("scene {id} has no job")))?;
    reset(&state, job).await
}

/// `POST /api/v1/batches/{id}/cancel`
pub async fn cancel(_: Operator, State(state): State<AppState>, Path(id): Path<BatchId>) -> ApiResult<Json<Cancelled>> {
    let cancelled =
        controls::cancel(&state.pool, id).await?.ok_or_else(|| ApiError::NotFound(format!("batch {id}")))?;
    tracing::info!(batch.id = %id, jobs = cancelled.jobs, "operator cancelled a batch");
    Ok(Json(cancelled))
}

async fn set_paused(state: &AppState, id: BatchId, paused: bool) -> ApiResult<Json<Value>> {
    if !controls::set_paused(&state.pool, id, paused).await? {
        return Err(ApiError::NotFound(format!("batch {id}")));
    }
    tracing::info!(batch.id = %id, paused, "operator paused or resumed a batch");
    Ok(Json(json!({ "batch": id, "paused": paused })))
}

/// `POST /api/v1/batches/{id}/pause`: its pending jobs are not dispatched; jobs already queued still run.
pub async fn pause(_: Operator, State(state): State<AppState>, Path(id): Path<BatchId>) -> ApiResult<Json<Value>> {
    set_paused(&state, id, true).await
}

/// `POST /api/v1/batches/{id}/resume`
pub async fn resume(_: Operator, State(state): State<AppState>, Path(id): Path<BatchId>) -> ApiResult<Json<Value>> {
    set_paused(&state, id, false).await
}

/// `{"priority": n}`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub struct Priority {
    /// The new priority (higher is dispatched first), -32768 to 32767.
    pub priority: i16,
}

/// `POST /api/v1/batches/{id}/priority` with `{"priority": n}`.
pub async fn priority(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<BatchId>,
    body: Result<Json<Priority>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !controls::set_priority(&state.pool, id, body.priority).await? {
        return Err(ApiError::NotFound(format!("batch {id}")));
    }
    tracing::info!(batch.id = %id, priority = body.priority, "operator changed a batch's priority");
    Ok(Json(json!({ "batch": id, "priority": body.priority })))
}

/// `POST /api/v1/workers/{id}/drain`: it finishes its job (within its grace period) and stops taking more.
pub async fn drain(_: Operator, State(state): State<AppState>, Path(id): Path<WorkerId>) -> ApiResult<Json<Value>> {
    if !controls::drain_worker(&state.pool, id).await? {
        return Err(ApiError::NotFound(format!("worker {id}")));
    }
    tracing::info!(worker.id = %id, "operator asked a worker to drain");
    Ok(Json(json!({ "worker": id, "drain_requested": true })))
}
