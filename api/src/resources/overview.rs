//! `GET /api/v1/overview`: the farm at a glance, from the kept counts: jobs and scenes per state, progress in
//! audio hours, throughput over the last hour (in all and per worker), the ETA and workers per state.

use crate::AppState;
use crate::error::ApiResult;
use axum::Json;
use axum::extract::{Query, State};
use scenequeue_core::counts::{self, StateCounts};
use scenequeue_core::ids::BatchId;
use scenequeue_core::states::SceneState;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Progress of the farm, or of one batch.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The batch, when the overview is of one.
    pub batch: Option<BatchId>,
    /// Jobs and scenes per state, with their audio seconds.
    pub counts: StateCounts,
    /// Audio submitted, hours.
    pub audio_h_total: f64,
    /// Audio whose scenes ended (succeeded or failed), hours.
    pub audio_h_done: f64,
    /// Share of the audio done, 0 to 1 (1 when there is none).
    pub progress: f64,
    /// Audio of the jobs that succeeded in the last hour, hours per hour, in all.
    pub throughput_h_per_h: f64,
    /// Audio of the jobs each worker finished in the last hour.
    pub throughput_by_worker: Vec<WorkerThroughput>,
    /// Seconds until the audio left is done at the last hour's pace; `None` when nothing ran in the last hour or
    /// nothing is left.
    pub eta_s: Option<f64>,
    /// Workers seen in the last day, per state.
    pub workers: Vec<(String, i64)>,
}

/// A worker's pace over the last hour.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WorkerThroughput {
    /// The worker.
    pub worker_id: uuid::Uuid,
    /// Its host.
    pub hostname: Option<String>,
    /// Audio of the jobs it finished in the last hour, hours per hour.
    pub h_per_h: f64,
}

/// `?batch=<id>`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct BatchFilter {
    /// Only this batch.
    pub batch: Option<BatchId>,
}

/// Reads the overview of `batch`, or of the farm.
pub async fn read(pool: &PgPool, batch: Option<BatchId>) -> Result<Overview, sqlx::Error> {
    // Jobs that succeeded in the last hour, by the worker that finished them: a few thousand rows of `jobs`
    // rather than every result of the hour. The three reads go at once.
    let (counts, by_worker, workers) = tokio::try_join!(
        counts::read(pool, batch),
        sqlx::query_as::<_, WorkerThroughput>(
            "SELECT j.finished_by AS worker_id, w.hostname, sum(j.audio_s)::float8 / 3600 AS h_per_h
             FROM jobs j LEFT JOIN workers w ON w.id = j.finished_by
             WHERE j.finished_at > now() - interval '1 hour' AND j.finished_by IS NOT NULL
               AND ($1::uuid IS NULL OR j.batch_id = $1)
             GROUP BY j.finished_by, w.hostname ORDER BY h_per_h DESC LIMIT 100",
        )
        .bind(batch)
        .fetch_all(pool),
        sqlx::query_as::<_, (String, i64)>(
            "SELECT state::text, count(*) FROM workers WHERE last_seen > now() - interval '1 day'
             GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(pool),
    )?;
    let total = counts.scenes_total().audio_s;
    let done = counts.scenes_in(SceneState::Succeeded).audio_s + counts.scenes_in(SceneState::Failed).audio_s;
    let pace: f64 = by_worker.iter().map(|w| w.h_per_h).sum();
    let left_h = (total - done).max(0.0) / 3600.0;
    Ok(Overview {
        batch,
        audio_h_total: total / 3600.0,
        audio_h_done: done / 3600.0,
        progress: if total > 0.0 { (done / total).clamp(0.0, 1.0) } else { 1.0 },
        throughput_h_per_h: pace,
        eta_s: (pace > 0.0 && left_h > 0.0).then(|| left_h / pace * 3600.0),
        throughput_by_worker: by_worker,
        workers,
        counts,
    })
}

/// `GET /api/v1/overview[?batch=<id>]`
pub async fn get(State(state): State<AppState>, Query(filter): Query<BatchFilter>) -> ApiResult<Json<Overview>> {
    Ok(Json(read(&state.pool, filter.batch).await?))
}
