//! Counts per state, for `scenequeue status`.

use scenequeue_core::ids::BatchId;
use scenequeue_core::states::{JobState, MediaState, OutputFlag, SceneState, WorkerState};
use sqlx::PgPool;

/// Everything `scenequeue status` reports, for one batch or for all of them.
#[derive(Debug, Clone, Default)]
pub struct StateCounts {
    /// (state name, count) of batches in each state.
    pub batches: Vec<(String, i64)>,
    /// (state name, count) of recordings in each state.
    pub media: Vec<(String, i64)>,
    /// (state name, count) of jobs in each state.
    pub jobs: Vec<(String, i64)>,
    /// (state name, count) of scenes in each state.
    pub scenes: Vec<(String, i64)>,
    /// (path, error) of failed recordings.
    pub failed_media: Vec<(String, String)>,
    /// (media path, scene index, error) of failed scenes, at most `FAILURES_SHOWN`.
    pub failed_scenes: Vec<(String, i32, String)>,
    /// (job id, error) of dead jobs.
    pub dead_jobs: Vec<(String, String)>,
    /// (path, warning) of recordings read with a warning, at most `FAILURES_SHOWN`.
    pub warned_media: Vec<(String, String)>,
    /// Enhanced scenes whose output failed a check, at most `FAILURES_SHOWN`.
    pub flagged_scenes: Vec<FlaggedScene>,
    /// (state name, count) of workers seen in the last day (lost ones included).
    pub worker_states: Vec<(String, i64)>,
    /// Workers seen in the last day, most recent first, at most `FAILURES_SHOWN`.
    pub workers: Vec<WorkerRow>,
    /// Lost and unhealthy workers seen in the last day, longest silent first, at most `FAILURES_SHOWN`.
    pub troubled_workers: Vec<WorkerRow>,
    /// GPU memory, session and out-of-memory figures.
    pub memory: MemorySummary,
}

/// One worker, as `status` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkerRow {
    /// Host the worker runs on.
    pub hostname: String,
    /// The worker's process id on that host.
    pub pid: i32,
    /// Execution device it runs the model on (`cpu` or `cuda:N`).
    pub device: String,
    /// When it recreates its inference session (e.g. `per-job`).
    pub session_policy: String,
    /// Its state name (`idle`, `busy`, `stopped`, `unhealthy` or `lost`).
    pub state: String,
    /// Jobs it has finished since it started.
    pub jobs_done: i64,
    /// Name of its GPU; `None` without a GPU (or without NVML).
    pub gpu_name: Option<String>,
    /// Seconds since the worker last reported.
    pub idle_s: f64,
    /// When it last reported (UTC, ISO 8601).
    pub last_seen: String,
    /// What its last self-check found, when it reported one (why it is unhealthy).
    pub health: Option<String>,
}

/// The columns of a [`WorkerRow`].
const WORKER_COLUMNS: &str = "hostname, pid, device, session_policy, state::text AS state, jobs_done, gpu_name,
    extract(epoch FROM now() - last_seen)::float8 AS idle_s,
    to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_seen, health";

/// An enhanced scene whose output failed a check (see `worker::output_check`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlaggedScene {
    /// The recording's path.
    pub path: String,
    /// The scene's index in it.
    pub idx: i32,
    /// What the checks found, and `original` when the original audio was written instead.
    pub flags: Vec<OutputFlag>,
    /// Speech-band level of the input, dBFS.
    pub speech_in_db: Option<f32>,
    /// Speech-band level of the output, dBFS.
    pub speech_out_db: Option<f32>,
}

/// Memory and recovery figures over the finished jobs and results in scope.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct MemorySummary {
    /// Highest GPU memory held after any scene of a job, MiB; `None` if never measured.
    pub gpu_peak_mb: Option<f32>,
    /// Highest GPU memory left held after a job, once its session policy was applied, MiB; `None` if never measured.
    pub gpu_after_max_mb: Option<f32>,
    /// Mean time a job spent creating inference sessions, milliseconds.
    pub session_create_ms_avg: Option<f64>,
    /// Out-of-memory errors hit while enhancing scenes, in total.
    pub oom_count: Option<i64>,
    /// Scenes whose output needed an out-of-memory recovery step.
    pub recovered_scenes: Option<i64>,
}

/// Most rows listed for each kind of failure (and for flagged scenes and workers).
pub const FAILURES_SHOWN: i64 = 20;

async fn counts(pool: &PgPool, table: &str, batch: Option<BatchId>) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let column = if table == "batches" { "id" } else { "batch_id" };
    // `table` and `column` come from this module's constants, never from input.
    let sql = format!(
        "SELECT state::text, count(*) FROM {table} WHERE ($1::uuid IS NULL OR {column} = $1) GROUP BY state ORDER BY state"
    );
    sqlx::query_as(&sql).bind(batch).fetch_all(pool).await
}

/// Reads the counts and failures of `batch`, or of every batch when `None`.
pub async fn status(pool: &PgPool, batch: Option<BatchId>) -> Result<StateCounts, sqlx::Error> {
    Ok(StateCounts {
        batches: counts(pool, "batches", batch).await?,
        media: counts(pool, "media", batch).await?,
        jobs: counts(pool, "jobs", batch).await?,
        scenes: counts(pool, "scenes", batch).await?,
        failed_media: sqlx::query_as(
            "SELECT path, coalesce(error, '') FROM media WHERE state = $3 AND ($1::uuid IS NULL OR batch_id = $1)
             ORDER BY path LIMIT $2",
        )
        .bind(batch)
        .bind(FAILURES_SHOWN)
        .bind(MediaState::Failed)
        .fetch_all(pool)
        .await?,
        failed_scenes: sqlx::query_as(
            "SELECT m.path, s.idx, coalesce(s.error, '') FROM scenes s JOIN media m ON m.id = s.media_id
             WHERE s.state = $3 AND ($1::uuid IS NULL OR s.batch_id = $1) ORDER BY m.path, s.idx LIMIT $2",
        )
        .bind(batch)
        .bind(FAILURES_SHOWN)
        .bind(SceneState::Failed)
        .fetch_all(pool)
        .await?,
        dead_jobs: sqlx::query_as(
            "SELECT id::text, coalesce(error, '') FROM jobs WHERE state = $3 AND ($1::uuid IS NULL OR batch_id = $1)
             ORDER BY id LIMIT $2",
        )
        .bind(batch)
        .bind(FAILURES_SHOWN)
        .bind(JobState::Dead)
        .fetch_all(pool)
        .await?,
        warned_media: sqlx::query_as(
            "SELECT path, warning FROM media WHERE warning IS NOT NULL AND ($1::uuid IS NULL OR batch_id = $1)
             ORDER BY path LIMIT $2",
        )
        .bind(batch)
        .bind(FAILURES_SHOWN)
        .fetch_all(pool)
        .await?,
        flagged_scenes: sqlx::query_as(
            "SELECT m.path, s.idx, r.flags, r.speech_in_db, r.speech_out_db
             FROM results r JOIN scenes s ON s.id = r.scene_id JOIN media m ON m.id = s.media_id
             WHERE r.flags <> '{}' AND ($1::uuid IS NULL OR s.batch_id = $1) ORDER BY m.path, s.idx LIMIT $2",
        )
        .bind(batch)
        .bind(FAILURES_SHOWN)
        .fetch_all(pool)
        .await?,
        worker_states: sqlx::query_as(
            "SELECT state::text, count(*) FROM workers WHERE last_seen > now() - interval '1 day'
             GROUP BY state ORDER BY state",
        )
        .fetch_all(pool)
        .await?,
        // Workers seen in the last day, most recent first.
        workers: sqlx::query_as(&format!(
            "SELECT {WORKER_COLUMNS} FROM workers WHERE last_seen > now() - interval '1 day'
             ORDER BY last_seen DESC LIMIT $1"
        ))
        .bind(FAILURES_SHOWN)
        .fetch_all(pool)
        .await?,
        troubled_workers: sqlx::query_as(&format!(
            "SELECT {WORKER_COLUMNS} FROM workers WHERE state IN ($2, $3) AND last_seen > now() - interval '1 day'
             ORDER BY last_seen LIMIT $1"
        ))
        .bind(FAILURES_SHOWN)
        .bind(WorkerState::Lost)
        .bind(WorkerState::Unhealthy)
        .fetch_all(pool)
        .await?,
        memory: sqlx::query_as(
            "SELECT (SELECT max(gpu_peak_mb) FROM jobs WHERE $1::uuid IS NULL OR batch_id = $1) AS gpu_peak_mb,
                    (SELECT max(gpu_after_mb) FROM jobs WHERE $1::uuid IS NULL OR batch_id = $1) AS gpu_after_max_mb,
                    (SELECT avg(session_create_ms)::float8 FROM jobs WHERE $1::uuid IS NULL OR batch_id = $1)
                        AS session_create_ms_avg,
                    (SELECT sum(oom_count) FROM results r JOIN scenes s ON s.id = r.scene_id
                      WHERE $1::uuid IS NULL OR s.batch_id = $1) AS oom_count,
                    (SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id
                      WHERE r.recovery <> 'none' AND ($1::uuid IS NULL OR s.batch_id = $1)) AS recovered_scenes",
        )
        .bind(batch)
        .fetch_one(pool)
        .await?,
    })
}
