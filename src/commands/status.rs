//! `scenequeue status` and `scenequeue scenes`

use crate::args::SceneFormat;
use scenequeue_core::config::Services;
use scenequeue_core::ids::BatchId;
use scenequeue_scheduler::{StateCounts, manifest, status};

fn line(name: &str, counts: &[(String, i64)]) -> String {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    format!("{name:<8} {total:>7}  {}", parts.join(", "))
}

pub fn render(c: &StateCounts) -> String {
    let mut out = vec![
        line("batches", &c.batches),
        line("media", &c.media),
        line("jobs", &c.jobs),
        line("scenes", &c.scenes),
        line("workers", &c.worker_states),
    ];
    for w in &c.troubled_workers {
        let health = w.health.as_deref().map_or(String::new(), |h| format!(": {h}"));
        out.push(format!(
            "{} worker {}:{} ({}), last seen {} ({:.0} s ago){health}",
            w.state, w.hostname, w.pid, w.device, w.last_seen, w.idle_s
        ));
    }
    for (_, error) in &c.failed_media {
        out.push(format!("failed recording: {error}"));
    }
    for (path, idx, error) in &c.failed_scenes {
        out.push(format!("failed scene {idx} of {path}: {error}"));
    }
    for (job, error) in &c.dead_jobs {
        out.push(format!("dead job {job}: {error}"));
    }
    for (path, warning) in &c.warned_media {
        out.push(format!("warning: {path}: {warning}"));
    }
    let db = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.1} dBFS"));
    for f in &c.flagged_scenes {
        let flags: Vec<&str> = f.flags.iter().map(|f| f.as_str()).collect();
        out.push(format!(
            "flagged scene {} of {}: {} (speech band {} in, {} out)",
            f.idx,
            f.path,
            flags.join(", "),
            db(f.speech_in_db),
            db(f.speech_out_db)
        ));
    }
    let m = &c.memory;
    let mb = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.0} MiB"));
    out.push(format!(
        "memory   GPU peak {}, held after a job at most {}; session creation {} on average; {} out-of-memory errors, {} scenes recovered",
        mb(m.gpu_peak_mb),
        mb(m.gpu_after_max_mb),
        m.session_create_ms_avg.map_or("-".to_string(), |v| format!("{v:.1} ms")),
        m.oom_count.unwrap_or(0),
        m.recovered_scenes.unwrap_or(0)
    ));
    for w in &c.workers {
        out.push(format!(
            "worker   {}:{} {} ({}) {} {}, {} jobs, seen {:.0} s ago",
            w.hostname,
            w.pid,
            w.device,
            w.gpu_name.as_deref().unwrap_or("no GPU"),
            w.session_policy,
            w.state,
            w.jobs_done,
            w.idle_s
        ));
    }
    out.join("\n")
}

pub async fn run(services: &Services, batch: Option<BatchId>) -> anyhow::Result<()> {
    let pool = super::connect_db(services, 1).await?;
    println!("{}", render(&status(&pool, batch).await?));
    Ok(())
}

pub async fn scenes(services: &Services, batch: BatchId, format: SceneFormat) -> anyhow::Result<()> {
    let pool = super::connect_db(services, 1).await?;
    let list =
        scenequeue_scheduler::scene_list(&pool, batch).await?.ok_or_else(|| anyhow::anyhow!("no batch {batch}"))?;
    match format {
        SceneFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        SceneFormat::Jsonl => print!("{}", manifest::jsonl(&list)?),
        SceneFormat::Csv => print!("{}", manifest::csv(&list)),
    }
    Ok(())
}
