//! The scene list of a batch, for downstream transcription: every recording with its scenes' positions in the
//! source, their states and the enhanced files.

use scenequeue_core::ids::{BatchId, MediaId, SceneId};
use serde::Serialize;
use sqlx::PgPool;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneEntry {
    pub id: SceneId,
    pub index: i32,
    pub start_s: f64,
    pub end_s: f64,
    pub state: String,
    pub output: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingEntry {
    pub id: MediaId,
    pub path: String,
    pub state: String,
    pub duration_s: Option<f64>,
    pub error: Option<String>,
    pub scenes: Vec<SceneEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneList {
    pub batch: BatchId,
    pub model: String,
    pub recordings: Vec<RecordingEntry>,
}

type MediaRow = (MediaId, String, String, Option<f64>, Option<String>);
type SceneRow = (MediaId, SceneId, i32, f64, f64, String, Option<String>, Option<String>);

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
        "SELECT id, path, state::text, duration_s, error FROM media WHERE batch_id = $1 ORDER BY path, id",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    let scenes: Vec<SceneRow> = sqlx::query_as(
        "SELECT s.media_id, s.id, s.idx, s.start_s, s.end_s, s.state::text, r.output_path, s.error
         FROM scenes s LEFT JOIN results r ON r.scene_id = s.id WHERE s.batch_id = $1 ORDER BY s.media_id, s.idx",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    let mut by_media: std::collections::HashMap<MediaId, Vec<SceneEntry>> = std::collections::HashMap::new();
    for (media, id, index, start_s, end_s, state, output, error) in scenes {
        by_media.entry(media).or_default().push(SceneEntry { id, index, start_s, end_s, state, output, error });
    }
    let recordings = media
        .into_iter()
        .map(|(id, path, state, duration_s, error)| RecordingEntry {
            scenes: by_media.remove(&id).unwrap_or_default(),
            id,
            path,
            state,
            duration_s,
            error,
        })
        .collect();
    Ok(Some(SceneList { batch, model, recordings }))
}
