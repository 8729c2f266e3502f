//! The audio the scene page plays. A file is found through the database (the scene's recording and span, or its
//! result's output path), never from a path in the request. The original is decoded from the recording (a
//! blocking read, off the async runtime, a few at a time) and sent as 16-bit WAV.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use scenequeue_core::ids::SceneId;
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// Originals decoded at once, across requests.
static DECODES: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// `GET /files/scenes/{id}/original` and `GET /files/scenes/{id}/enhanced`
pub async fn scene_audio(
    State(state): State<AppState>,
    Path((id, which)): Path<(SceneId, String)>,
) -> ApiResult<Response> {
    match which.as_str() {
        "original" => original(&state, id).await,
        "enhanced" => enhanced(&state, id).await,
        _ => Err(ApiError::NotFound(format!("{which} audio"))),
    }
}

async fn original(state: &AppState, id: SceneId) -> ApiResult<Response> {
    let row: Option<(String, f64, f64)> = sqlx::query_as(
        "SELECT m.path, s.start_s, s.end_s FROM scenes s JOIN media m ON m.id = s.media_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let (path, start, end) = row.ok_or_else(|| ApiError::NotFound(format!("scene {id}")))?;
    let _permit = DECODES.acquire().await.map_err(|_| ApiError::Conflict("the server is stopping".into()))?;
    let read = tokio::task::spawn_blocking(move || scenequeue_audio::decode::read_span_mono(path.as_ref(), start, end))
        .await
        .map_err(|_| ApiError::Conflict("decoding the recording failed".into()))?;
    let (samples, rate) = read.map_err(|e| ApiError::Conflict(format!("the recording cannot be read: {e}")))?;
    Ok(([(CONTENT_TYPE, "audio/wav"), (CACHE_CONTROL, "max-age=60")], wav(&samples, rate)).into_response())
}

async fn enhanced(state: &AppState, id: SceneId) -> ApiResult<Response> {
    let path: Option<String> = sqlx::query_scalar("SELECT output_path FROM results WHERE scene_id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    let path = path.ok_or_else(|| ApiError::NotFound(format!("enhanced audio of scene {id}")))?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| ApiError::NotFound(format!("enhanced file of scene {id}")))?;
    let kind = match std::path::Path::new(&path).extension().and_then(|e| e.to_str()) {
        Some("flac") => "audio/flac",
        Some("ogg" | "opus") => "audio/ogg",
        _ => "audio/wav",
    };
    Ok(([(CONTENT_TYPE, kind), (CACHE_CONTROL, "max-age=60")], bytes).into_response())
}

/// Mono 16-bit PCM WAV of `samples`.
fn wav(samples: &[f32], rate: u32) -> Vec<u8> {
    let data = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
    }
    out
}
