//! `scenequeue status`

use scenequeue_core::config::Services;
use scenequeue_core::db;
use scenequeue_core::ids::BatchId;
use scenequeue_scheduler::status::{StateCounts, status};

fn line(name: &str, counts: &[(String, i64)]) -> String {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    format!("{name:<8} {total:>7}  {}", parts.join(", "))
}

pub fn render(c: &StateCounts) -> String {
    let mut out =
        vec![line("batches", &c.batches), line("media", &c.media), line("jobs", &c.jobs), line("scenes", &c.scenes)];
    for (_, error) in &c.failed_media {
        out.push(format!("failed recording: {error}"));
    }
    for (path, idx, error) in &c.failed_scenes {
        out.push(format!("failed scene {idx} of {path}: {error}"));
    }
    for (job, error) in &c.dead_jobs {
        out.push(format!("dead job {job}: {error}"));
    }
    out.join("\n")
}

pub async fn run(services: &Services, batch: Option<BatchId>) -> anyhow::Result<()> {
    let pool = db::connect(&services.database_url, 1).await?;
    println!("{}", render(&status(&pool, batch).await?));
    Ok(())
}
