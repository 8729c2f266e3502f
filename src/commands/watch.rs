//! `scenequeue status --json`, `scenequeue status --watch` and `scenequeue workers [--json]`: the operator's view
//! (the same kept counts and figures as the dashboard) for people and scripts.

use super::terminal::{bar, duration, plural, redraw};
use scenequeue_core::config::Services;
use scenequeue_core::ids::BatchId;
use std::time::Duration;

/// Time between two refreshes of `status --watch`.
const REFRESH: Duration = Duration::from_secs(2);

/// One line: a bar, audio hours done of all, throughput, ETA, and scenes per state.
fn line(o: &scenequeue_api::Overview) -> String {
    let scenes: Vec<String> =
        o.counts.scenes.iter().filter(|t| t.count > 0).map(|t| format!("{} {}", t.count, t.state)).collect();
    let total = o.counts.scenes_total().count;
    format!(
        "{} {:5.1}%  {:.2} of {:.2} audio h  {:.2} h/h  ETA {}  {}: {}",
        bar(o.progress),
        o.progress * 100.0,
        o.audio_h_done,
        o.audio_h_total,
        o.throughput_h_per_h,
        o.eta_s.map_or("-".into(), duration),
        plural(total, "scene", "scenes"),
        if scenes.is_empty() { "none".into() } else { scenes.join(", ") }
    )
}

pub async fn run(services: &Services, batch: Option<BatchId>, json: bool, watch: bool) -> anyhow::Result<()> {
    let pool = super::connect_db(services, 1).await?;
    if json || !watch {
        println!("{}", serde_json::to_string_pretty(&scenequeue_api::overview(&pool, batch).await?)?);
        return Ok(());
    }
    let shutdown = super::shutdown_on_signal();
    loop {
        let o = scenequeue_api::overview(&pool, batch).await?;
        redraw(&mut std::io::stdout(), Some(&line(&o)))?;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
    println!();
    Ok(())
}

pub async fn workers(services: &Services, json: bool) -> anyhow::Result<()> {
    let pool = super::connect_db(services, 1).await?;
    let list = scenequeue_api::workers(&pool).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!("{}", plural(list.len() as i64, "worker seen in the last day", "workers seen in the last day"));
    for w in &list {
        println!(
            "{:<20} {:<8} {:<9} heartbeat {:>6} ago  job {:<8}  {}{}",
            format!("{}:{}", w.hostname, w.pid),
            w.device,
            w.state.as_str(),
            duration(w.heartbeat_age_s),
            w.current_job.map_or("-".to_string(), |j| j.to_string()[..8].to_string()),
            plural(w.jobs_done, "job done", "jobs done"),
            if w.drain_requested { ", draining" } else { "" }
        );
    }
    Ok(())
}
