//! Scene state transitions. A worker starts an attempt by reading what a leased job still has to do and marking
//! those scenes running, then records each one's outcome: a result row with the scene `succeeded` (see
//! `results`), or the scene `failed` with its cause. Every write of a worker is fenced by its lease (see
//! `fence`).

use crate::fence::Fence;
use crate::ids::{MediaId, SceneId};
use crate::options::{AsrOptions, BatchOptions};
use crate::states::{JobState, SceneState};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

/// What a leased job has to do: its batch's settings and the scenes no earlier attempt finished.
#[derive(Debug, Clone)]
pub struct JobWork {
    /// The model the batch asked for.
    pub model: String,
    /// Where the batch's outputs go.
    pub output_dir: String,
    /// The batch's processing options.
    pub options: BatchOptions,
    /// The batch's transcription, if it asked for one.
    pub asr: Option<AsrOptions>,
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
    asr: Option<AsrOptions>,
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
            asr: AsrOptions::from_columns(
                row.try_get("asr_model")?,
                row.try_get("asr_language")?,
                row.try_get("asr_input")?,
            ),
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
                    b.atten_lim_db, b.post_filter_beta, b.highpass_hz, b.loudness_lufs, b.asr_model, b.asr_language,
                    b.asr_input
             FROM jobs j JOIN batches b ON b.id = j.batch_id
             WHERE j.id = $1 AND j.lease_token = $2 AND j.state = $3
             FOR SHARE OF j
         ), marked AS (
             UPDATE scenes s SET state = $4 FROM held
             WHERE s.job_id = held.job_id AND s.state NOT IN ($5, $6)
             RETURNING s.id, s.media_id, s.idx, s.start_s, s.end_s
         )
         SELECT h.attempts, h.model, h.output_dir, h.atten_lim_db, h.post_filter_beta, h.highpass_hz,
                h.loudness_lufs, h.asr_model, h.asr_language, h.asr_input, s.id, s.media_id, s.idx, s.start_s, s.end_s, m.path, m.decoder
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
    let (attempt, model, output_dir, options, asr) =
        (first.attempts, first.model.clone(), first.output_dir.clone(), first.options, first.asr.clone());
    let scenes = rows.into_iter().filter_map(|r| r.scene).collect();
    Ok(Some(JobWork { model, output_dir, options, asr, attempt, scenes }))
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
