//! A batch's transcripts, read back per recording: scenes stream from Postgres in the recording's order (so a
//! batch of any size is written with one recording's cues in memory), each transcribed scene's segments placed
//! on the recording's timeline (scene offset + segment time).

use futures_util::{Stream, StreamExt};
use scenequeue_core::ids::{BatchId, MediaId, SceneId};
use scenequeue_core::transcripts::{Cue, Transcript};
use serde::Serialize;
use sqlx::PgPool;
use sqlx::types::Json;

/// One scene of a batch with what it says (None until it was transcribed, or when the batch did not ask).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SceneText {
    /// The scene.
    pub id: SceneId,
    /// Its recording.
    pub media_id: MediaId,
    /// The recording's path.
    pub path: String,
    /// Start in the recording, seconds.
    pub start_s: f64,
    /// End in the recording, seconds.
    pub end_s: f64,
    /// The enhanced file, once the scene succeeded.
    pub output: Option<String>,
    /// What the recogniser heard.
    pub transcript: Option<Json<Transcript>>,
}

/// A transcribed scene as a line of an ASR manifest: the enhanced file, its place in the source, its text.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptLine<'a> {
    /// The enhanced file.
    pub audio_filepath: &'a str,
    /// Its length, seconds.
    pub duration: f64,
    /// The text.
    pub text: &'a str,
    /// The recording it was cut from.
    pub source: &'a str,
    /// Where it starts in the source, seconds.
    pub offset: f64,
    /// The scene's id.
    pub scene_id: String,
    /// The language heard.
    pub language: &'a str,
    /// Average log-probability of its tokens.
    pub avg_logprob: f32,
    /// Its lowest no-speech probability.
    pub no_speech_prob: f32,
    /// Timed segments, times from the scene's start.
    pub segments: &'a [scenequeue_core::transcripts::Segment],
}

impl SceneText {
    /// The scene as a manifest line, if it was transcribed.
    pub fn line(&self) -> Option<TranscriptLine<'_>> {
        let t = self.transcript.as_ref()?;
        Some(TranscriptLine {
            audio_filepath: self.output.as_deref().unwrap_or_default(),
            duration: self.end_s - self.start_s,
            text: &t.text,
            source: &self.path,
            offset: self.start_s,
            scene_id: self.id.to_string(),
            language: &t.language,
            avg_logprob: t.avg_logprob,
            no_speech_prob: t.no_speech_prob,
            segments: &t.segments,
        })
    }

    /// The scene's segments on its recording's timeline.
    pub fn cues(&self) -> Vec<Cue> {
        self.transcript
            .as_ref()
            .map(|t| t.segments.iter().map(|s| Cue::placed(s, self.start_s)).filter(|c| !c.text.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// Whether the batch exists and asked for transcription: None if there is no such batch.
pub async fn asked(pool: &PgPool, batch: BatchId) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar("SELECT asr_model IS NOT NULL FROM batches WHERE id = $1").bind(batch).fetch_optional(pool).await
}

/// Every scene of `batch`, recordings by path and scenes in time order, streamed.
pub fn scenes(pool: &PgPool, batch: BatchId) -> impl Stream<Item = Result<SceneText, sqlx::Error>> + '_ {
    sqlx::query_as(
        "SELECT s.id, s.media_id, m.path, s.start_s, s.end_s, r.output_path AS output, r.transcript
         FROM scenes s JOIN media m ON m.id = s.media_id LEFT JOIN results r ON r.scene_id = s.id
         WHERE s.batch_id = $1 ORDER BY m.path, m.id, s.idx",
    )
    .bind(batch)
    .fetch(pool)
}

/// The scenes of one recording, gathered from the stream.
pub struct Recording {
    /// The recording.
    pub media_id: MediaId,
    /// Its path.
    pub path: String,
    /// Its scenes in time order.
    pub scenes: Vec<SceneText>,
}

/// Calls `each` with every recording of `batch` in turn, one recording's scenes in memory at a time.
pub async fn per_recording<E: From<sqlx::Error>>(
    pool: &PgPool,
    batch: BatchId,
    mut each: impl FnMut(Recording) -> Result<(), E>,
) -> Result<(), E> {
    let mut rows = std::pin::pin!(scenes(pool, batch));
    let mut current: Option<Recording> = None;
    while let Some(row) = rows.next().await {
        let row = row?;
        match current.as_mut() {
            Some(r) if r.media_id == row.media_id => r.scenes.push(row),
            _ => {
                let next = Recording { media_id: row.media_id, path: row.path.clone(), scenes: vec![row] };
                if let Some(done) = current.replace(next) {
                    each(done)?;
                }
            }
        }
    }
    match current {
        Some(done) => each(done),
        None => Ok(()),
    }
}
