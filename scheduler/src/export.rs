//! The scene list of a batch, for downstream transcription: every recording with its scenes' positions in the
//! source, their states and the enhanced files.

use scenequeue_core::ids::{BatchId, MediaId, SceneId};
use serde::Serialize;
use sqlx::PgPool;

/// One scene: where it lies in its recording, its state, and its enhanced file.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SceneEntry {
    /// The scene's id.
    pub id: SceneId,
    /// Its index in the recording.
    pub index: i32,
    /// Start in the recording, seconds.
    pub start_s: f64,
    /// End in the recording, seconds.
    pub end_s: f64,
    /// Its state.
    pub state: String,
    /// The enhanced file, once it succeeded.
    pub output: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// What the output checks found (`original`: the original audio was written instead).
    pub flags: Vec<String>,
    /// Speech-band level of the input, dBFS.
    pub speech_in_db: Option<f32>,
    /// Speech-band level of the output, dBFS.
    pub speech_out_db: Option<f32>,
    #[serde(skip)]
    #[sqlx(rename = "media_id")]
    media: MediaId,
}

/// One recording and its scenes in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingEntry {
    /// The recording's id.
    pub id: MediaId,
    /// Its path as submitted (absolute).
    pub path: String,
    /// Its state.
    pub state: String,
    /// Its length, seconds.
    pub duration_s: Option<f64>,
    /// Why it could not be cut into scenes.
    pub error: Option<String>,
    /// What the user should know about how it was read (non-finite samples replaced).
    pub warning: Option<String>,
    /// Its scenes.
    pub scenes: Vec<SceneEntry>,
}

/// A batch's recordings and scenes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneList {
    /// The batch.
    pub batch: BatchId,
    /// The model it was enhanced with.
    pub model: String,
    /// Its recordings by path.
    pub recordings: Vec<RecordingEntry>,
}

type MediaRow = (MediaId, String, String, Option<f64>, Option<String>, Option<String>);

/// The scene list of `batch`, recordings by path and scenes in time order; None if there is no such batch.
pub async fn scene_list(pool: &PgPool, batch: BatchId) -> Result<Option<SceneList>, sqlx::Error> {
    let Some(model) = sqlx::query_scalar::<_, String>("SELECT model FROM batches WHERE id = $1")
        .bind(batch)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let media: Vec<MediaRow> = sqlx::query_as(
        "SELECT id, path, state::text, duration_s, error, warning FROM media WHERE batch_id = $1 ORDER BY path, id",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    let scenes: Vec<SceneEntry> = sqlx::query_as(
        "SELECT s.media_id, s.id, s.idx AS index, s.start_s, s.end_s, s.state::text AS state,
                r.output_path AS output, s.error, coalesce(r.flags::text[], '{}') AS flags, r.speech_in_db,
                r.speech_out_db
         FROM scenes s LEFT JOIN results r ON r.scene_id = s.id WHERE s.batch_id = $1 ORDER BY s.media_id, s.idx",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    let mut by_media: std::collections::HashMap<MediaId, Vec<SceneEntry>> = std::collections::HashMap::new();
    for scene in scenes {
        by_media.entry(scene.media).or_default().push(scene);
    }
    let recordings = media
        .into_iter()
        .map(|(id, path, state, duration_s, error, warning)| RecordingEntry {
            scenes: by_media.remove(&id).unwrap_or_default(),
            id,
            path,
            state,
            duration_s,
            error,
            warning,
        })
        .collect();
    Ok(Some(SceneList { batch, model, recordings }))
}
