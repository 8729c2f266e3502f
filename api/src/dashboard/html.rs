//! HTML building blocks: escaping, the page layout, figures in the units an operator reads.

use axum::response::Html;

/// `s` safe inside HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title`, the live-update scope (`live` is the events query, `None` for a page without live
/// figures) and `body`.
pub fn layout(title: &str, live: Option<&str>, body: &str) -> Html<String> {
    let live_attr = live.map(|q| format!(r#" data-live="/api/v1/events{}""#, esc(q))).unwrap_or_default();
    let controls = if live.is_some() {
        r#"<span id="live-status" class="muted">connecting…</span>
           <button type="button" id="live-toggle" aria-pressed="false">Pause live updates</button>"#
    } else {
        ""
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>{title} · scenequeue</title><link rel="stylesheet" href="/assets/style.css"></head>
<body{live_attr}>
<header><a href="/" class="brand">scenequeue</a><span class="grow"></span>{controls}
<label class="token">API token <input type="password" id="api-token" autocomplete="off" size="14"></label></header>
<main>{body}</main>
<div id="toast" role="status" aria-live="polite"></div>
<script src="/assets/live.js"></script>
</body></html>"#,
        title = esc(title),
    ))
}

/// Hours with two decimals, or minutes and seconds below a tenth of an hour.
pub fn hours(h: f64) -> String {
    if h >= 0.1 { format!("{h:.2} h") } else { format!("{:.0} s", h * 3600.0) }
}

/// A duration in seconds, as the largest two units.
pub fn duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// A progress bar at `share` (0 to 1), with `field` naming it for live updates.
pub fn bar(share: f64, field: &str) -> String {
    let pct = (share.clamp(0.0, 1.0) * 100.0 * 10.0).round() / 10.0;
    format!(
        r#"<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="{pct}" data-field="{field}"><span style="width:{pct}%"></span><em>{pct}%</em></div>"#
    )
}

/// "1 scene", "2 scenes".
pub fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}
