//! `/scenes/{id}`: one scene, its original and enhanced audio side by side, each with its spectrogram (drawn in
//! the browser by `assets/scene.js` from the same audio), and for a transcribed batch the text under them.

use super::html::{esc, layout};
use crate::AppState;
use crate::error::ApiResult;
use crate::resources::scenes;
use axum::extract::{Path, State};
use axum::response::Html;
use scenequeue_core::ids::SceneId;
use scenequeue_core::transcripts::{AsrInput, Cue, Transcript};

/// `GET /scenes/{id}`
pub async fn page(State(state): State<AppState>, Path(id): Path<SceneId>) -> ApiResult<Html<String>> {
    let s = scenes::one(&state.pool, id).await?;
    let enhanced = if s.has_output {
        format!(
            r#"<figure><figcaption>Enhanced{levels}</figcaption><audio controls preload="metadata" src="/files/scenes/{id}/enhanced"></audio><canvas class="spectrogram" data-src="/files/scenes/{id}/enhanced" width="480" height="160"></canvas></figure>"#,
            levels = match (s.rms_in_db, s.rms_out_db) {
                (Some(i), Some(o)) => format!(" <span class=\"muted\">{i:.1} → {o:.1} dBFS</span>"),
                _ => String::new(),
            }
        )
    } else {
        r#"<figure><figcaption>Enhanced</figcaption><p class="muted">not enhanced (yet)</p></figure>"#.into()
    };
    let body = format!(
        r#"<h1>Scene #{idx} of <span class="paths">{path}</span></h1>
<p><a href="/batches/{batch}">batch {batch_short}</a> · {start:.2} s to {end:.2} s · <span class="state-{st}">{st}</span>{err}
{retry}</p>
<section class="pair"><figure><figcaption>Original</figcaption><audio controls preload="metadata" src="/files/scenes/{id}/original"></audio><canvas class="spectrogram" data-src="/files/scenes/{id}/original" width="480" height="160"></canvas></figure>
{enhanced}</section>{transcript}<script src="/assets/scene.js"></script>"#,
        transcript = s.transcript.as_ref().map(|t| transcript(t, s.start_s)).unwrap_or_default(),
        idx = s.idx,
        path = esc(&s.path),
        batch = s.batch_id,
        batch_short = &s.batch_id.to_string()[..8],
        start = s.start_s,
        end = s.end_s,
        st = s.state,
        err = s.error.as_deref().map(|e| format!(" · {}", esc(e))).unwrap_or_default(),
        retry = if s.state == scenequeue_core::states::SceneState::Failed {
            format!(r#"<button data-action="/api/v1/scenes/{id}/retry">retry</button>"#)
        } else {
            String::new()
        },
    );
    Ok(layout(&format!("Scene {}", s.idx), None, &body))
}

/// The scene's transcript: what was heard, from which audio, and its segments on the recording's timeline.
fn transcript(t: &Transcript, offset: f64) -> String {
    let heard = match t.heard {
        Some(AsrInput::Original) => "the untouched audio",
        Some(AsrInput::Enhanced) => "the enhanced audio",
        Some(AsrInput::Auto) | None => "the audio",
    };
    let other = t.other_logprob.map(|o| format!(" (the other version: {o:.2})")).unwrap_or_default();
    let mut out = format!(
        r#"<section class="transcript"><h2>Transcript</h2><p class="muted">heard in {heard} · language {lang} · average log-probability {lp:.2}{other} · no-speech probability {ns:.2}</p><p class="text">{text}</p><ol class="segments">"#,
        lang = esc(&t.language),
        lp = t.avg_logprob,
        ns = t.no_speech_prob,
        text =
            if t.text.is_empty() { r#"<span class="muted">no speech heard</span>"#.to_string() } else { esc(&t.text) },
    );
    for s in &t.segments {
        let cue = Cue::placed(s, offset);
        out.push_str(&format!(
            "<li><span class=\"muted\">{:.2}-{:.2} s</span> {}</li>",
            cue.start,
            cue.end,
            esc(&cue.text)
        ));
    }
    out.push_str("</ol></section>");
    out
}
