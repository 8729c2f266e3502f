//! `GET /api/v1/workers` (seen in the last day, most recent first) and `GET /api/v1/workers/{id}/gpu`: GPU memory
//! held after each of a worker's last jobs.

use crate::AppState;
use crate::error::ApiResult;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use scenequeue_core::ids::{JobId, WorkerId};
use scenequeue_core::states::WorkerState;
use serde::Serialize;
use sqlx::PgPool;

/// A worker as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Worker {
    /// Its id.
    pub id: WorkerId,
    /// Its host.
    pub hostname: String,
    /// Its process id there.
    pub pid: i32,
    /// Its device (`cpu`, `cuda:0`...).
    pub device: String,
    /// Its state, as it last reported (or `lost`).
    pub state: WorkerState,
    /// The job it is running.
    pub current_job: Option<JobId>,
    /// Jobs it finished.
    pub jobs_done: i64,
    /// When it recreates its inference session; with `per-job`, one session is created per job.
    pub session_policy: String,
    /// Its GPU.
    pub gpu_name: Option<String>,
    /// Its GPU's memory, MiB.
    pub gpu_total_mb: Option<f32>,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_s: f64,
    /// Why it is unhealthy.
    pub health: Option<String>,
    /// Whether an operator asked it to drain.
    pub drain_requested: bool,
}

/// Most workers listed.
pub const WORKERS_SHOWN: i64 = 500;

/// Workers seen in the last day, most recent first.
pub async fn read(pool: &PgPool) -> Result<Vec<Worker>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, hostname, pid, device, state, current_job, jobs_done, session_policy, gpu_name, gpu_total_mb,
                last_seen, extract(epoch FROM now() - last_seen)::float8 AS heartbeat_age_s, health, drain_requested
         FROM workers WHERE last_seen > now() - interval '1 day' ORDER BY last_seen DESC LIMIT $1",
    )
    .bind(WORKERS_SHOWN)
    .fetch_all(pool)
    .await
}

/// `GET /api/v1/workers`
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<Worker>>> {
    Ok(Json(read(&state.pool).await?))
}

/// Memory after one job: the GPU's and the worker process's.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct GpuPoint {
    /// The job.
    pub job_id: JobId,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// GPU memory held after it, its session policy applied, MiB.
    pub gpu_after_mb: Option<f32>,
    /// Highest GPU memory held during it, MiB.
    pub gpu_peak_mb: Option<f32>,
    /// The worker process's resident memory after it, its session policy applied, MiB.
    pub rss_after_mb: Option<f32>,
}

/// Points in a GPU memory series.
pub const GPU_POINTS: i64 = 100;

/// GPU memory after each of `worker`'s last jobs, oldest first.
pub async fn gpu_series(pool: &PgPool, worker: WorkerId) -> Result<Vec<GpuPoint>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM (
            SELECT id AS job_id, finished_at, gpu_after_mb, gpu_peak_mb, rss_after_mb FROM jobs
            WHERE finished_by = $1 ORDER BY finished_at DESC LIMIT $2) recent
         ORDER BY finished_at",
    )
    .bind(worker)
    .bind(GPU_POINTS)
    .fetch_all(pool)
    .await
}

/// The GPU series of several workers in one query (the dashboard's charts), each oldest first; a worker without
/// jobs has an empty series.
pub async fn gpu_series_of(
    pool: &PgPool,
    workers: &[WorkerId],
    points: i64,
) -> Result<Vec<(WorkerId, Vec<GpuPoint>)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        worker: WorkerId,
        #[sqlx(flatten)]
        point: GpuPoint,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT w.id AS worker, j.* FROM unnest($1::uuid[]) AS w(id) CROSS JOIN LATERAL (
            SELECT id AS job_id, finished_at, gpu_after_mb, gpu_peak_mb, rss_after_mb FROM jobs
            WHERE finished_by = w.id ORDER BY finished_at DESC LIMIT $2) j
         ORDER BY w.id, j.finished_at",
    )
    .bind(workers.iter().map(|w| w.0).collect::<Vec<_>>())
    .bind(points)
    .fetch_all(pool)
    .await?;
    let mut out: Vec<(WorkerId, Vec<GpuPoint>)> = workers.iter().map(|&w| (w, Vec::new())).collect();
    for row in rows {
        if let Some((_, series)) = out.iter_mut().find(|(w, _)| *w == row.worker) {
            series.push(row.point);
        }
    }
    Ok(out)
}

/// `GET /api/v1/workers/{id}/gpu`
pub async fn gpu(State(state): State<AppState>, Path(id): Path<WorkerId>) -> ApiResult<Json<Vec<GpuPoint>>> {
    Ok(Json(gpu_series(&state.pool, id).await?))
}
