//! `/batches/{id}`: one batch's progress (live) and its scenes, paged and filtered by state, and for a transcribed
//! batch searched by their text.

use super::html::{esc, layout};
use super::overview::figures;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::page::{self, Page};
use crate::resources::{batches, overview, scenes};
use axum::extract::{Path, Query, State};
use axum::response::Html;
use scenequeue_core::ids::{BatchId, SceneId};
use scenequeue_core::states::SceneState;
use serde::Deserialize;
use std::fmt::Write;

/// `?state=&q=&after=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SceneFilter {
    state: Option<SceneState>,
    /// Text the scene's transcript holds.
    q: Option<String>,
    after: Option<uuid::Uuid>,
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: SceneId,
    path: String,
    idx: i32,
    start_s: f64,
    end_s: f64,
    state: SceneState,
    error: Option<String>,
    text: Option<String>,
}

/// Scenes per page.
const PAGE: i64 = 100;

/// `GET /batches/{id}`
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<BatchId>,
    Query(filter): Query<SceneFilter>,
) -> ApiResult<Html<String>> {
    let pool = &state.pool;
    let batch = batches::one(pool, id).await?;
    let o = overview::read(pool, Some(id)).await?;
    let mut body = format!(
        r#"<h1>Batch <code>{id}</code></h1><p>{state}{paused} · model {model} · priority {prio} · submitted {created}</p>
<p class="actions"><button data-action="/api/v1/batches/{id}/{pause}">{pause}</button><button data-action="/api/v1/batches/{id}/retry">retry failed</button><button data-action="/api/v1/batches/{id}/cancel" data-confirm="Cancel this batch?">cancel</button></p>"#,
        state = batch.state,
        paused = if batch.paused { " (paused)" } else { "" },
        model = esc(&batch.model),
        prio = batch.priority,
        created = batch.created_at.format("%Y-%m-%d %H:%M UTC"),
        pause = if batch.paused { "resume" } else { "pause" },
    );
    body.push_str(&figures(&o));
    let limit = page::limit(Some(PAGE))?;
    let query = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_string);
    let transcribed = batch.asr_model.is_some();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.id, m.path, s.idx, s.start_s, s.end_s, s.state, s.error, r.transcript->>'text' AS text
         FROM scenes s JOIN media m ON m.id = s.media_id LEFT JOIN results r ON r.scene_id = s.id
         WHERE s.batch_id = $1 AND ($2::scene_state IS NULL OR s.state = $2) AND ($3::uuid IS NULL OR s.id > $3)
           AND ($5::text IS NULL OR r.transcript->>'text' ILIKE '%' || $5 || '%')
         ORDER BY s.id LIMIT $4",
    )
    .bind(id)
    .bind(filter.state)
    .bind(filter.after)
    .bind(limit + 1)
    .bind(query.as_deref().map(scenes::like_literal))
    .fetch_all(pool)
    .await
    .map_err(ApiError::from)?;
    let page = Page::new(rows, limit, |r| r.id.0);
    body.push_str(r#"<section><h2>Scenes</h2><p class="filters">"#);
    let _ = write!(body, r#"<a href="/batches/{id}">all</a>"#);
    for s in SceneState::ALL {
        let _ = write!(body, r#" · <a href="/batches/{id}?state={s}">{s}</a>"#);
    }
    body.push_str("</p>");
    if transcribed {
        let _ = write!(
            body,
            r#"<form class="search" method="get" action="/batches/{id}"><input type="search" name="q" value="{q}" placeholder="words said in a scene"><button type="submit">search the transcripts</button></form>"#,
            q = esc(query.as_deref().unwrap_or("")),
        );
    }
    let text_head = if transcribed { "<th>text</th>" } else { "" };
    let _ = write!(
        body,
        r#"<table class="list"><thead><tr><th>recording</th><th>scene</th><th>from</th><th>to</th><th>state</th><th>error</th>{text_head}</tr></thead><tbody>"#
    );
    if page.items.is_empty() {
        let none = if query.is_some() { "no scene says that" } else { "no scene" };
        let _ = write!(body, r#"<tr><td colspan="7" class="muted">{none}</td></tr>"#);
    }
    for r in &page.items {
        let _ = write!(
            body,
            r#"<tr><td class="paths">{path}</td><td><a href="/scenes/{sid}">#{idx}</a></td><td>{:.1} s</td><td>{:.1} s</td><td class="state-{st}">{st}</td><td>{err}</td>{text}</tr>"#,
            r.start_s,
            r.end_s,
            path = esc(&r.path),
            sid = r.id,
            idx = r.idx,
            st = r.state,
            err = esc(r.error.as_deref().unwrap_or("")),
            text =
                if transcribed { format!("<td>{}</td>", esc(r.text.as_deref().unwrap_or(""))) } else { String::new() },
        );
    }
    body.push_str("</tbody></table>");
    if let Some(next) = page.next {
        let mut state_q = filter.state.map(|s| format!("state={s}&")).unwrap_or_default();
        if let Some(q) = &query {
            state_q.push_str(&format!("q={}&", query_escape(q)));
        }
        let _ = write!(body, r#"<p><a href="/batches/{id}?{state_q}after={next}">next page →</a></p>"#);
    }
    body.push_str("</section>");
    Ok(layout(&format!("Batch {}", &id.to_string()[..8]), Some(&format!("?batch={id}")), &body))
}

/// `text` escaped for a URL's query string.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
