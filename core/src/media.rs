//! Recordings and what a submission plans of them: the rows of a chunk (recordings, their scenes, the jobs that
//! hold them) stored into a batch, one statement per table, and the look-ups that find a recording already split
//! for a model (by path, then by the hash of its bytes), so a submission run again skips it.

use crate::ids::{BatchId, JobId, MediaId, SceneId};
use crate::states::MediaState;
use sqlx::PgPool;
use std::path::Path;
use uuid::Uuid;

/// A recording as a submission examined it: cut into scenes (with what was read of it), or refused.
#[derive(Debug, Clone)]
pub struct PlannedMedia {
    /// The recording's id.
    pub id: MediaId,
    /// Its path.
    pub path: String,
    /// The hash of its bytes (None when it could not be read).
    pub hash: Option<String>,
    /// Read: sample rate, channels, length in seconds, and the decoder that read it. None: refused.
    pub read: Option<(i32, i16, f64, &'static str)>,
    /// Why it was refused.
    pub error: Option<String>,
    /// Something the user should know about how it was read.
    pub warning: Option<String>,
}

/// A job: its id and the audio (or window) seconds it holds.
#[derive(Debug, Clone, Copy)]
pub struct PlannedJob {
    /// The job's id.
    pub id: JobId,
    /// What it costs in the duration budget, seconds.
    pub audio_s: f64,
}

/// A scene of a recording, in a job.
#[derive(Debug, Clone, Copy)]
pub struct PlannedScene {
    /// The scene's id.
    pub id: SceneId,
    /// Its recording.
    pub media: MediaId,
    /// Its job.
    pub job: JobId,
    /// Its index within the recording.
    pub idx: i32,
    /// Start in the recording, seconds.
    pub start_s: f64,
    /// End in the recording, seconds.
    pub end_s: f64,
}

/// One chunk of a submission's plan.
#[derive(Debug, Default)]
pub struct Planned {
    /// Recordings examined: split (`read` set) or failed (`error` set).
    pub media: Vec<PlannedMedia>,
    /// Jobs closed.
    pub jobs: Vec<PlannedJob>,
    /// Their scenes.
    pub scenes: Vec<PlannedScene>,
}

/// Stores a chunk into `batch` inside the caller's transaction (which checks the batch is still the caller's):
/// recordings `split` or `failed`, jobs allowed `max_attempts`, scenes. Rows already stored by a commit whose
/// answer was lost are left as they are, so the transaction can be run again.
pub async fn store_planned(
    tx: &mut sqlx::PgConnection,
    batch: BatchId,
    planned: &Planned,
    max_attempts: i32,
) -> Result<(), sqlx::Error> {
    let media = &planned.media;
    sqlx::query(
        "INSERT INTO media (id, batch_id, path, content_hash, state, sample_rate, channels, duration_s, error,
                           decoder, warning)
         SELECT id, $1, path, hash, CASE WHEN error IS NULL THEN $10 ELSE $11 END,
                sr, ch, dur, error, decoder, warning
         FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::int4[], $6::int2[], $7::float8[], $8::text[],
                     $9::text[], $12::text[])
              AS t(id, path, hash, sr, ch, dur, error, decoder, warning)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(batch)
    .bind(media.iter().map(|m| m.id.0).collect::<Vec<Uuid>>())
    .bind(media.iter().map(|m| m.path.as_str()).collect::<Vec<&str>>())
    .bind(media.iter().map(|m| m.hash.as_deref()).collect::<Vec<Option<&str>>>())
    .bind(media.iter().map(|m| m.read.map(|r| r.0)).collect::<Vec<Option<i32>>>())
    .bind(media.iter().map(|m| m.read.map(|r| r.1)).collect::<Vec<Option<i16>>>())
    .bind(media.iter().map(|m| m.read.map(|r| r.2)).collect::<Vec<Option<f64>>>())
    .bind(media.iter().map(|m| m.error.as_deref()).collect::<Vec<Option<&str>>>())
    .bind(media.iter().map(|m| m.read.map(|r| r.3)).collect::<Vec<Option<&str>>>())
    .bind(MediaState::Split)
    .bind(MediaState::Failed)
    .bind(media.iter().map(|m| m.warning.as_deref()).collect::<Vec<Option<&str>>>())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO jobs (id, batch_id, audio_s, max_attempts)
         SELECT id, $1, audio_s, $4 FROM UNNEST($2::uuid[], $3::float8[]) AS t(id, audio_s)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(batch)
    .bind(planned.jobs.iter().map(|j| j.id.0).collect::<Vec<Uuid>>())
    .bind(planned.jobs.iter().map(|j| j.audio_s).collect::<Vec<f64>>())
    .bind(max_attempts)
    .execute(&mut *tx)
    .await?;
    let scenes = &planned.scenes;
    sqlx::query(
        "INSERT INTO scenes (id, media_id, batch_id, job_id, idx, start_s, end_s)
         SELECT id, media_id, $1, job_id, idx, start_s, end_s
         FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::int4[], $6::float8[], $7::float8[])
              AS t(id, media_id, job_id, idx, start_s, end_s)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(batch)
    .bind(scenes.iter().map(|s| s.id.0).collect::<Vec<Uuid>>())
    .bind(scenes.iter().map(|s| s.media.0).collect::<Vec<Uuid>>())
    .bind(scenes.iter().map(|s| s.job.0).collect::<Vec<Uuid>>())
    .bind(scenes.iter().map(|s| s.idx).collect::<Vec<i32>>())
    .bind(scenes.iter().map(|s| s.start_s).collect::<Vec<f64>>())
    .bind(scenes.iter().map(|s| s.end_s).collect::<Vec<f64>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether a recording at `path` was already split for `model` (in any batch).
pub async fn split_at_path(pool: &PgPool, model: &str, path: &Path) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM media m JOIN batches b ON b.id = m.batch_id
         WHERE m.path = $1 AND m.state = $3 AND b.model = $2)",
    )
    .bind(path.to_string_lossy().as_ref())
    .bind(model)
    .bind(MediaState::Split)
    .fetch_one(pool)
    .await
}

/// The batch in which a recording with these bytes was already cut into scenes for `model`, if any.
pub async fn earlier_split(pool: &PgPool, content_hash: &str, model: &str) -> Result<Option<BatchId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT m.batch_id FROM media m JOIN batches b ON b.id = m.batch_id
         WHERE m.content_hash = $1 AND m.state = $3 AND b.model = $2 LIMIT 1",
    )
    .bind(content_hash)
    .bind(model)
    .bind(MediaState::Split)
    .fetch_optional(pool)
    .await
}
