//! Scene state transitions and result rows. A worker starts an attempt by reading what a leased job still has
//! to do and marking those scenes running, then records each one's outcome: a result row (one per scene, whatever the attempt: a retry
//! overwrites, never duplicates) with the scene `succeeded`, or the scene `failed` with its cause. Every write
//! of a worker is fenced by its lease (see `fence`).

use crate::fence::Fence;
use crate::ids::{JobId, MediaId, SceneId, WorkerId};
use crate::options::BatchOptions;
use crate::states::{JobState, OutputFlag, RecoveryStep, SceneState};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use std::path::Path;

/// What a leased job has to do: its batch's settings and the scenes no earlier attempt finished.
#[derive(Debug, Clone)]
pub struct JobWork {
    /// The model the batch asked for.
    pub model: String,
    /// Where the batch's outputs go.
    pub output_dir: String,
    /// The batch's processing options.
    pub options: BatchOptions,
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

/// One row of [`start_attempt`]'s statement: the job's and batch's fields, with one scene (none when every
/// scene already has its outcome).
struct AttemptRow {
    attempts: i32,
    model: String,
    output_dir: String,
    options: BatchOptions,
    scene: Option<PendingScene>,
}

impl<'r> sqlx::FromRow<'r, PgRow> for AttemptRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let scene = match row.try_get::<Option<SceneId>, _>("id")? {
            Some(_) => Some(PendingScene::from_row(row)?),
            None => None,
        };
        Ok(Self {
            attempts: row.try_get("attempts")?,
            model: row.try_get("model")?,
            output_dir: row.try_get("output_dir")?,
            options: BatchOptions::from_row(row)?,
            scene,
        })
    }
}

/// Starts an attempt at a leased job, in one statement fenced by its lease: reads what the job still has to do
/// (the scenes no earlier attempt finished keep their outcome), with its batch's settings, and marks those scenes
/// running (handed to the model). None, and nothing written, if the lease was lost.
pub async fn start_attempt(pool: &PgPool, fence: &Fence) -> Result<Option<JobWork>, sqlx::Error> {
    let rows: Vec<AttemptRow> = sqlx::query_as(
        "WITH held AS (
             SELECT j.id AS job_id, j.attempts, b.model, b.output_dir,
                    b.atten_lim_db, b.post_filter_beta, b.highpass_hz, b.loudness_lufs
             FROM jobs j JOIN batches b ON b.id = j.batch_id
             WHERE j.id = $1 AND j.lease_token = $2 AND j.state = $3
             FOR SHARE OF j
         ), marked AS (
             UPDATE scenes s SET state = $4 FROM held
             WHERE s.job_id = held.job_id AND s.state NOT IN ($5, $6)
             RETURNING s.id, s.media_id, s.idx, s.start_s, s.end_s
         )
         SELECT h.attempts, h.model, h.output_dir, h.atten_lim_db, h.post_filter_beta, h.highpass_hz,
                h.loudness_lufs, s.id, s.media_id, s.idx, s.start_s, s.end_s, m.path, m.decoder
         FROM held h LEFT JOIN (marked s JOIN media m ON m.id = s.media_id) ON true
         ORDER BY m.path, s.idx",
    )
    .bind(fence.job)
    .bind(fence.token)
    .bind(JobState::Running)
    .bind(SceneState::Running)
    .bind(SceneState::Succeeded)
    .bind(SceneState::Failed)
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let (attempt, model, output_dir, options) =
        (first.attempts, first.model.clone(), first.output_dir.clone(), first.options);
    let scenes = rows.into_iter().filter_map(|r| r.scene).collect();
    Ok(Some(JobWork { model, output_dir, options, attempt, scenes }))
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

/// Records the results of several scenes of one job and marks them succeeded, in one transaction (one
/// statement for their result rows and states, whatever their number), after moving each attempt's
/// file (written under a name of its own) to its result's `output_path`, all while the lease is held. False if
/// the lease was lost: nothing is recorded and every attempt file is removed. A file that cannot be moved fails
/// the whole call (nothing recorded; the files already moved are where a later attempt writes them again).
pub async fn record_successes(
    pool: &PgPool,
    fence: &Fence,
    results: &[(SceneResult, std::path::PathBuf)],
) -> Result<bool, sqlx::Error> {
    if results.is_empty() {
        return Ok(true);
    }
    let mut tx = pool.begin().await?;
    if !fence.hold(&mut tx).await? {
        drop(tx);
        for (_, attempt_file) in results {
            let _ = tokio::fs::remove_file(attempt_file).await;
        }
        return Ok(false);
    }
    for (r, attempt_file) in results {
        if attempt_file != Path::new(&r.output_path) {
            tokio::fs::rename(attempt_file, &r.output_path).await.map_err(|e| {
                sqlx::Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot move {} into place: {e}", attempt_file.display()),
                ))
            })?;
        }
    }
    let rows = ResultColumns::of(results.iter().map(|(r, _)| r));
    sqlx::query(
        "WITH recorded AS (
         INSERT INTO results (scene_id, job_id, worker_id, attempt, output_path, sample_rate, duration_s,
                              rms_in_db, rms_out_db, processing_ms, recovery, oom_count, gpu_mem_mb,
                              flags, speech_in_db, speech_out_db)
         SELECT r.scene_id, r.job_id, r.worker_id, r.attempt, r.output_path, r.sample_rate, r.duration_s,
                r.rms_in_db, r.rms_out_db, r.processing_ms, r.recovery, r.oom_count, r.gpu_mem_mb,
                coalesce((SELECT array_agg(f::output_flag) FROM jsonb_array_elements_text(r.flags) f),
                         '{}'::output_flag[]),
                r.speech_in_db, r.speech_out_db
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int4[], $5::text[], $6::int4[], $7::float8[],
                     $8::float8[], $9::float8[], $10::float8[], $11::recovery_step[], $12::int4[], $13::float4[],
                     $14::jsonb[], $15::float4[], $16::float4[])
              AS r(scene_id, job_id, worker_id, attempt, output_path, sample_rate, duration_s, rms_in_db,
                   rms_out_db, processing_ms, recovery, oom_count, gpu_mem_mb, flags, speech_in_db, speech_out_db)
         ON CONFLICT (scene_id) DO UPDATE SET job_id = EXCLUDED.job_id, worker_id = EXCLUDED.worker_id,
             attempt = EXCLUDED.attempt, output_path = EXCLUDED.output_path, sample_rate = EXCLUDED.sample_rate,
             duration_s = EXCLUDED.duration_s, rms_in_db = EXCLUDED.rms_in_db, rms_out_db = EXCLUDED.rms_out_db,
             processing_ms = EXCLUDED.processing_ms, recovery = EXCLUDED.recovery, oom_count = EXCLUDED.oom_count,
             gpu_mem_mb = EXCLUDED.gpu_mem_mb, flags = EXCLUDED.flags, speech_in_db = EXCLUDED.speech_in_db,
             speech_out_db = EXCLUDED.speech_out_db, created_at = now()
         RETURNING scene_id)
         UPDATE scenes SET state = $17, error = NULL WHERE id IN (SELECT scene_id FROM recorded)",
    )
    .bind(&rows.scene)
    .bind(&rows.job)
    .bind(&rows.worker)
    .bind(&rows.attempt)
    .bind(&rows.output_path)
    .bind(&rows.sample_rate)
    .bind(&rows.duration_s)
    .bind(&rows.rms_in_db)
    .bind(&rows.rms_out_db)
    .bind(&rows.processing_ms)
    .bind(&rows.recovery)
    .bind(&rows.oom_count)
    .bind(&rows.gpu_mem_mb)
    .bind(&rows.flags)
    .bind(&rows.speech_in_db)
    .bind(&rows.speech_out_db)
    .bind(SceneState::Succeeded)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Result rows as one array per column, for an `unnest` insert.
#[derive(Default)]
struct ResultColumns {
    scene: Vec<SceneId>,
    job: Vec<JobId>,
    worker: Vec<WorkerId>,
    attempt: Vec<i32>,
    output_path: Vec<String>,
    sample_rate: Vec<i32>,
    duration_s: Vec<f64>,
    rms_in_db: Vec<f64>,
    rms_out_db: Vec<f64>,
    processing_ms: Vec<f64>,
    recovery: Vec<RecoveryStep>,
    oom_count: Vec<i32>,
    gpu_mem_mb: Vec<Option<f32>>,
    /// Each scene's flags as a JSON array of their names (an array column cannot hold arrays of its own).
    flags: Vec<serde_json::Value>,
    speech_in_db: Vec<f32>,
    speech_out_db: Vec<f32>,
}

impl ResultColumns {
    fn of<'a>(results: impl Iterator<Item = &'a SceneResult>) -> Self {
        let mut c = Self::default();
        for r in results {
            c.scene.push(r.scene);
            c.job.push(r.job);
            c.worker.push(r.worker);
            c.attempt.push(r.attempt);
            c.output_path.push(r.output_path.clone());
            c.sample_rate.push(i32::try_from(r.sample_rate).unwrap_or(i32::MAX));
            c.duration_s.push(r.duration_s);
            c.rms_in_db.push(f64::from(r.rms_in_db));
            c.rms_out_db.push(f64::from(r.rms_out_db));
            c.processing_ms.push(r.processing_ms);
            c.recovery.push(r.recovery);
            c.oom_count.push(i32::try_from(r.oom_count).unwrap_or(i32::MAX));
            c.gpu_mem_mb.push(r.gpu_mem_mb);
            c.flags.push(serde_json::to_value(&r.flags).unwrap_or_default());
            c.speech_in_db.push(r.speech_in_db);
            c.speech_out_db.push(r.speech_out_db);
        }
        c
    }
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
