//! The planning benchmark: plan + persist + publish for a synthetic backlog, through the same writer and
//! publisher as `scenequeue submit` (decoding excluded: it is measured per file elsewhere), against the real
//! Postgres and RabbitMQ. Each size runs in its own database and queue, removed afterwards. Peak resident
//! memory is read after each size: flat memory means it does not grow with the number of scenes.

use anyhow::Context;
use scenequeue_audio::decode::AudioInfo;
use scenequeue_audio::scenes::Span;
use scenequeue_core::config::Services;
use scenequeue_core::{db, mq};
use scenequeue_scheduler::testing::CutRecording;
use scenequeue_scheduler::testing::store_cut_batch;
use sqlx::Connection;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "SCENEQUEUE_DATABASE_URL", default_value_t = Services::default().database_url)]
    database_url: String,
    #[arg(long, env = "SCENEQUEUE_AMQP_URL", default_value_t = Services::default().amqp_url)]
    amqp_url: String,
    /// Backlog sizes in scenes, run in this order.
    #[arg(long, default_value = "10000,100000")]
    scenes: String,
    /// Scenes per synthetic recording.
    #[arg(long, default_value_t = 20)]
    per_recording: usize,
    #[arg(long, default_value_t = 300.0)]
    job_seconds: f64,
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

/// Recordings of `per` scenes of 2-20 s separated by pauses, one at a time (the plan never holds them all).
fn backlog(scenes: usize, per: usize) -> impl Iterator<Item = (PathBuf, CutRecording)> {
    let recordings = scenes.div_ceil(per);
    (0..recordings).map(move |r| {
        let n = per.min(scenes - r * per);
        let mut t = 0.5;
        let spans: Vec<Span> = (0..n)
            .map(|i| {
                let d = 2.0 + ((r * 31 + i * 17) % 19) as f64;
                let span = Span { start_s: t, end_s: t + d };
                t += d + 0.8;
                span
            })
            .collect();
        let info = AudioInfo {
            sample_rate: 48_000,
            channels: 1,
            frames: ((t + 0.5) * 48_000.0) as u64,
            decoder: Default::default(),
            non_finite: 0,
        };
        (PathBuf::from(format!("/backlog/{:05}/recording-{r:07}.wav", r / 1000)), CutRecording { info, scenes: spans })
    })
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    println!("| scenes | recordings | jobs | published | seconds | scenes/s | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|");
    for size in args.scenes.split(',').map(|s| s.trim().parse::<usize>()) {
        let size = size.context("--scenes takes comma-separated numbers")?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("sq_bench_{id}");
        let mut admin = sqlx::PgConnection::connect(&args.database_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        let pool = db::connect(&db::with_database(&args.database_url, &name), 4).await?;
        let topology = mq::Topology::new(&format!("scenequeue.bench.{id}"));
        let connection = mq::connect(&args.amqp_url).await?;
        let publisher = mq::Publisher::new(&connection, &topology).await?;

        let started = Instant::now();
        let report = store_cut_batch(
            &pool,
            &publisher,
            "nsnet2-48k",
            backlog(size, args.per_recording),
            args.job_seconds,
            i64::MAX,
        )
        .await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {secs:.2} | {:.0} | {:.0} |",
            report.scenes,
            size.div_ceil(args.per_recording),
            report.jobs,
            report.published,
            report.scenes as f64 / secs,
            peak_rss_mb().unwrap_or(0.0)
        );

        topology.delete(&connection.create_channel().await?).await?;
        let _ = connection.close(200, "done").await;
        pool.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await?;
    }
    Ok(())
}
