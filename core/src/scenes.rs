//! Scene state transitions and result rows. A worker reads what a leased job still has to do, marks scenes
//! running, then records each one's outcome: a result row (one per scene, whatever the attempt: a retry
//! overwrites, never duplicates) with the scene `succeeded`, or the scene `failed` with its cause. Every write
//! of a worker is fenced by its lease (see `fence`).

use crate::fence::Fence;
use crate::ids::{BatchId, JobId, MediaId, SceneId, WorkerId};
use crate::states::{OutputFlag, RecoveryStep, SceneState};
use sqlx::PgPool;
use std::path::Path;

/// What a leased job has to do: its batch's settings and the scenes no earlier attempt finished.
#[derive(Debug, Clone)]
pub struct JobWork {
    /// The model the batch asked for.
    pub model: String,
    /// Where the batch's outputs go.
    pub output_dir: String,
    /// This attempt's number, from 1.
    pub attempt: i32,
    /// Scenes still to run, by recording path and index (source order).
    pub scenes: Vec<PendingScene>,
}

/// One scene still to run, with the recording it comes from.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingScene {
    /// The scene.
    pub id: SceneId,
    /// Its recording.
    pub media_id: MediaId,
    /// Its index within the recording.
    pub idx: i32,
    /// Start in the recording, seconds.
    pub start_s: f64,
    /// End in the recording, seconds.
    pub end_s: f64,
    /// The recording's path.
    pub path: String,
    /// The decoder the submission read the recording with (`symphonia`, `ffmpeg`; None before it was recorded).
    pub decoder: Option<String>,
}

/// Reads what `job` (of `batch`) still has to do. Scenes finished by an earlier attempt keep their outcome.
pub async fn job_work(pool: &PgPool, job: JobId, batch: BatchId) -> Result<JobWork, sqlx::Error> {
    let (model, output_dir): (String, String) =
        sqlx::query_as("SELECT model, output_dir FROM batches WHERE id = $1").bind(batch).fetch_one(pool).await?;
    let scenes: Vec<PendingScene> = sqlx::query_as(
        "SELECT s.id, s.media_id, s.idx, s.start_s, s.end_s, m.path, m.decoder
         FROM scenes s JOIN media m ON m.id = s.media_id
         WHERE s.job_id = $1 AND s.state NOT IN ($2, $3) ORDER BY m.path, s.idx",
    )
    .bind(job)
    .bind(SceneState::Succeeded)
    .bind(SceneState::Failed)
    .fetch_all(pool)
    .await?;
    let attempt: i32 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE id = $1").bind(job).fetch_one(pool).await?;
    Ok(JobWork { model, output_dir, attempt, scenes })
}

/// Marks `scenes` running (handed to the model). False, and nothing written, if the lease was lost.
pub async fn mark_running(pool: &PgPool, fence: &Fence, scenes: &[SceneId]) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !fence.hold(&mut tx).await? {
        return Ok(false);
    }
    sqlx::query("UPDATE scenes SET state = $2 WHERE id = ANY($1) AND job_id = $3")
        .bind(scenes)
        .bind(SceneState::Running)
        .bind(fence.job)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Everything a result row records about one enhanced scene.
#[derive(Debug, Clone)]
pub struct SceneResult {
    /// The scene.
    pub scene: SceneId,
    /// The job it ran in.
    pub job: JobId,
    /// The worker that ran it.
    pub worker: WorkerId,
    /// The job attempt that produced it.
    pub attempt: i32,
    /// The enhanced file.
    pub output_path: String,
    /// Sample rate of the output, Hz.
    pub sample_rate: u32,
    /// Length of the output, seconds.
    pub duration_s: f64,
    /// Input level, dBFS RMS.
    pub rms_in_db: f32,
    /// Output level, dBFS RMS.
    pub rms_out_db: f32,
    /// Time the scene cost, milliseconds.
    pub processing_ms: f64,
    /// The out-of-memory recovery step that produced the output.
    pub recovery: RecoveryStep,
    /// Out-of-memory errors met on the way.
    pub oom_count: u32,
    /// GPU memory held right after the scene, MiB (None without a GPU).
    pub gpu_mem_mb: Option<f32>,
    /// What the output checks found (empty: it passed).
    pub flags: Vec<OutputFlag>,
    /// Speech-band level of the input, dBFS.
    pub speech_in_db: f32,
    /// Speech-band level of what was written, dBFS.
    pub speech_out_db: f32,
}

/// Records a scene's result and marks it succeeded, in one transaction, after moving the attempt's file
/// (`attempt_file`, written under a name of its own) to the result's `output_path`, all while the lease is held.
/// False if the lease was lost: nothing is recorded and the attempt's file is removed.
pub async fn record_success(
    pool: &PgPool,
    fence: &Fence,
    r: &SceneResult,
    attempt_file: &Path,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !fence.hold(&mut tx).await? {
        drop(tx);
        let _ = tokio::fs::remove_file(attempt_file).await;
        return Ok(false);
    }
    if attempt_file != Path::new(&r.output_path) {
        tokio::fs::rename(attempt_file, &r.output_path).await.map_err(|e| {
            sqlx::Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot move {} into place: {e}", attempt_file.display()),
            ))
        })?;
    }
    sqlx::query(
        "INSERT INTO results (scene_id, job_id, worker_id, attempt, output_path, sample_rate, duration_s,
                              rms_in_db, rms_out_db, processing_ms, recovery, oom_count, gpu_mem_mb,
                              flags, speech_in_db, speech_out_db)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (scene_id) DO UPDATE SET job_id = EXCLUDED.job_id, worker_id = EXCLUDED.worker_id,
             attempt = EXCLUDED.attempt, output_path = EXCLUDED.output_path, sample_rate = EXCLUDED.sample_rate,
             duration_s = EXCLUDED.duration_s, rms_in_db = EXCLUDED.rms_in_db, rms_out_db = EXCLUDED.rms_out_db,
             processing_ms = EXCLUDED.processing_ms, recovery = EXCLUDED.recovery, oom_count = EXCLUDED.oom_count,
             gpu_mem_mb = EXCLUDED.gpu_mem_mb, flags = EXCLUDED.flags, speech_in_db = EXCLUDED.speech_in_db,
             speech_out_db = EXCLUDED.speech_out_db, created_at = now()",
    )
    .bind(r.scene)
    .bind(r.job)
    .bind(r.worker)
    .bind(r.attempt)
    .bind(&r.output_path)
    .bind(i32::try_from(r.sample_rate).unwrap_or(i32::MAX))
    .bind(r.duration_s)
    .bind(f64::from(r.rms_in_db))
    .bind(f64::from(r.rms_out_db))
    .bind(r.processing_ms)
    .bind(r.recovery)
    .bind(i32::try_from(r.oom_count).unwrap_or(i32::MAX))
    .bind(r.gpu_mem_mb)
    .bind(&r.flags)
    .bind(r.speech_in_db)
    .bind(r.speech_out_db)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE scenes SET state = $2, error = NULL WHERE id = $1")
        .bind(r.scene)
        .bind(SceneState::Succeeded)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Marks a scene failed with its cause; the rest of its job goes on. False, and nothing written, if the lease
/// was lost.
pub async fn mark_failed(pool: &PgPool, fence: &Fence, scene: SceneId, error: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !fence.hold(&mut tx).await? {
        return Ok(false);
    }
    sqlx::query("UPDATE scenes SET state = $2, error = $3 WHERE id = $1 AND job_id = $4")
        .bind(scene)
        .bind(SceneState::Failed)
        .bind(error)
        .bind(fence.job)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
