//! `/`: the farm at a glance.

use super::html::{bar, duration, esc, hours, layout, plural};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::resources::batches::{self, BatchQuery};
use crate::resources::errors;
use crate::resources::overview::{self, Overview};
use crate::resources::workers::{self, GpuPoint};
use axum::extract::State;
use axum::response::Html;
use scenequeue_core::ids::WorkerId;
use scenequeue_core::states::WorkerState;
use std::fmt::Write;

/// Workers whose GPU memory chart is drawn.
const CHARTS: usize = 20;

/// The progress cards and the tables of counts; `live.js` updates the elements named by `data-field`.
pub fn figures(o: &Overview) -> String {
    let mut out = String::new();
    let left_h = (o.audio_h_total - o.audio_h_done).max(0.0);
    let _ = write!(
        out,
        r#"<section class="cards">
<div class="card"><h2>Progress</h2>{bar}<p><b data-field="done">{done}</b> of <b data-field="total">{total}</b> of audio</p></div>
<div class="card"><h2>Throughput</h2><p class="big" data-field="throughput">{tp:.2}</p><p class="muted">audio hours per hour, last hour</p></div>
<div class="card"><h2>ETA</h2><p class="big" data-field="eta">{eta}</p><p class="muted"><span data-field="left">{left}</span> left</p></div>
</section>
<section class="cards"><div class="card"><h2>Jobs by state</h2><table class="counts">"#,
        bar = bar(o.progress, "progress"),
        done = hours(o.audio_h_done),
        total = hours(o.audio_h_total),
        tp = o.throughput_h_per_h,
        eta = o.eta_s.map_or("—".into(), duration),
        left = hours(left_h),
    );
    for t in &o.counts.jobs {
        let _ = write!(out, r#"<tr><th>{s}</th><td data-job-state="{s}">{n}</td></tr>"#, s = t.state, n = t.count);
    }
    out.push_str(r#"</table></div><div class="card"><h2>Scenes by state</h2><table class="counts">"#);
    for t in &o.counts.scenes {
        let _ = write!(out, r#"<tr><th>{s}</th><td data-scene-state="{s}">{n}</td></tr>"#, s = t.state, n = t.count);
    }
    out.push_str(r#"</table></div><div class="card"><h2>Throughput per worker</h2><table class="counts">"#);
    if o.throughput_by_worker.is_empty() {
        out.push_str(r#"<tr><td class="muted">nothing enhanced in the last hour</td></tr>"#);
    }
    for w in &o.throughput_by_worker {
        let _ =
            write!(out, "<tr><th>{}</th><td>{:.2} h/h</td></tr>", esc(w.hostname.as_deref().unwrap_or("?")), w.h_per_h);
    }
    out.push_str("</table></div></section>");
    out
}

/// A small line chart of memory after each job (`what`: GPU or host), as inline SVG.
fn memory_chart(points: &[GpuPoint], what: &str, value: impl Fn(&GpuPoint) -> Option<f32>) -> String {
    let values: Vec<f32> = points.iter().filter_map(value).collect();
    if values.is_empty() {
        return format!(r#"<span class="muted">no {what} figures</span>"#);
    }
    let max = values.iter().copied().fold(1.0f32, f32::max);
    let (w, h) = (120.0f32, 28.0f32);
    let step = if values.len() > 1 { w / (values.len() - 1) as f32 } else { 0.0 };
    let line: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f32 * step, h - v / max * (h - 2.0)))
        .collect();
    let last = values.last().copied().unwrap_or(0.0);
    format!(
        r#"<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{what} memory after each job, last {last:.0} MiB"><polyline points="{}"/></svg> <span class="muted">{last:.0} MiB</span>"#,
        line.join(" ")
    )
}

/// `GET /`
pub async fn page(State(state): State<AppState>) -> ApiResult<Html<String>> {
    let pool = &state.pool;
    // Every part of the page at once, each on its own connection of the pool.
    let (o, batches, failures, workers) = tokio::try_join!(
        async { Ok::<_, ApiError>(overview::read(pool, None).await?) },
        batches::list_page(pool, BatchQuery { limit: Some(batches::FRONT_PAGE), ..Default::default() }),
        async { Ok(errors::read(pool, None).await?) },
        async { Ok(workers::read(pool).await?) },
    )?;
    let charted: Vec<WorkerId> = workers.iter().take(CHARTS).map(|w| w.id).collect();
    let series = workers::gpu_series_of(pool, &charted, workers::GPU_POINTS).await?;
    let mut body = figures(&o);

    body.push_str(r#"<section><h2>Batches</h2><table class="list"><thead><tr><th>batch</th><th>state</th><th>model</th><th>priority</th><th>progress</th><th>audio</th><th>actions</th></tr></thead><tbody>"#);
    if batches.items.is_empty() {
        body.push_str(r#"<tr><td colspan="7" class="muted">no batch submitted yet</td></tr>"#);
    }
    for b in &batches.items {
        let p = &b.progress;
        let share = if p.audio_h_total > 0.0 { p.audio_h_done / p.audio_h_total } else { 1.0 };
        let pause = if b.paused { "resume" } else { "pause" };
        let _ = write!(
            body,
            r#"<tr data-batch="{id}"><td><a href="/batches/{id}">{short}</a></td><td data-field="batch-{id}-state">{state}{paused}</td><td>{model}</td><td>{prio}</td><td>{bar}<span class="muted"><span data-field="batch-{id}-scenes">{scenes}</span>, <span data-field="batch-{id}-failed">{failed}</span> failed</span></td><td><span data-field="batch-{id}-done">{done}</span> / {total}</td>
<td class="actions"><button data-action="/api/v1/batches/{id}/{pause}">{pause}</button><button data-action="/api/v1/batches/{id}/retry">retry failed</button><button data-action="/api/v1/batches/{id}/cancel" data-confirm="Cancel this batch?">cancel</button></td></tr>"#,
            id = b.id,
            short = &b.id.to_string()[..8],
            state = b.state,
            paused = if b.paused { " (paused)" } else { "" },
            model = esc(&b.model),
            prio = b.priority,
            bar = bar(share, &format!("batch-{}", b.id)),
            scenes = plural(p.scenes, "scene", "scenes"),
            failed = p.failed,
            done = hours(p.audio_h_done),
            total = hours(p.audio_h_total),
        );
    }
    body.push_str("</tbody></table></section>");

    body.push_str(r#"<section><h2>Failures by reason</h2><table class="list"><thead><tr><th>what</th><th>reason (an example below)</th><th>count</th><th>recordings</th></tr></thead><tbody>"#);
    if failures.is_empty() {
        body.push_str(r#"<tr><td colspan="4" class="muted">no failures</td></tr>"#);
    }
    for f in &failures {
        let paths: Vec<String> = f.recordings.iter().map(|p| esc(p)).collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}<br><span class=\"muted\">{}</span></td><td>{}</td><td class=\"paths\">{}</td></tr>",
            esc(&f.kind),
            esc(&f.class),
            esc(&f.example),
            f.count,
            paths.join("<br>")
        );
    }
    body.push_str("</tbody></table></section>");

    body.push_str(r#"<section><h2>Workers</h2><table class="list"><thead><tr><th>host</th><th>device</th><th>state</th><th>last heartbeat</th><th>current job</th><th>jobs done</th><th>sessions created</th><th>GPU memory after each job</th><th>host memory after each job</th><th></th></tr></thead><tbody>"#);
    if workers.is_empty() {
        body.push_str(r#"<tr><td colspan="10" class="muted">no worker seen in the last day</td></tr>"#);
    }
    for (i, w) in workers.iter().enumerate() {
        let points = series.get(i).map(|(_, points)| points.as_slice()).unwrap_or_default();
        let chart = memory_chart(points, "GPU", |p| p.gpu_after_mb);
        let memory = memory_chart(points, "host", |p| p.rss_after_mb);
        // With the per-job policy a worker creates one session per job; other policies keep theirs longer.
        let sessions = if w.session_policy == "per-job" {
            w.jobs_done.to_string()
        } else {
            format!("({})", esc(&w.session_policy))
        };
        let _ = write!(
            body,
            r#"<tr><td>{host} <span class="muted">pid {pid}</span></td><td>{device}{gpu}</td><td class="state-{state}">{state}{health}</td><td>{age} ago</td><td>{job}</td><td>{done}</td><td>{sessions}</td><td>{chart}</td><td>{memory}</td><td class="actions">{drain}</td></tr>"#,
            host = esc(&w.hostname),
            pid = w.pid,
            device = esc(&w.device),
            gpu =
                w.gpu_name.as_deref().map(|g| format!(" <span class=\"muted\">{}</span>", esc(g))).unwrap_or_default(),
            state = w.state,
            health =
                w.health.as_deref().map(|h| format!("<br><span class=\"muted\">{}</span>", esc(h))).unwrap_or_default(),
            age = duration(w.heartbeat_age_s),
            job = w.current_job.map(|j| j.to_string()[..8].to_string()).unwrap_or_else(|| "—".into()),
            done = w.jobs_done,
            drain = if matches!(w.state, WorkerState::Stopped | WorkerState::Lost) {
                String::new()
            } else if w.drain_requested {
                "draining".to_string()
            } else {
                format!(r#"<button data-action="/api/v1/workers/{}/drain">drain</button>"#, w.id)
            },
        );
    }
    body.push_str("</tbody></table></section>");
    Ok(layout("Farm", Some(""), &body))
}
