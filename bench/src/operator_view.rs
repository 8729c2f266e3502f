//! `operator-view`: how fast the operator's view answers at backlog scale. Seeds a database of its own with
//! `--scenes` scenes in `--jobs` jobs (one recording per job, `--batches` batches, states mixed as on a busy farm,
//! a result per enhanced scene, twenty workers), serves it on an ephemeral port and times each page and list
//! endpoint over real HTTP, sequentially: the 50th and 95th percentile and the slowest of `--requests`
//! requests after a warm-up. The database load of one open dashboard is its snapshot query's time times the
//! snapshots it is sent per minute (one every 5 s when idle, at most one a second while jobs end).

use anyhow::Context;
use clap::Args as ClapArgs;
use scenequeue_api::ApiConfig;
use scenequeue_core::config::Services;
use scenequeue_core::db;
use sqlx::{Connection, PgConnection, PgPool};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

#[derive(ClapArgs)]
pub struct Args {
    #[arg(long, env = "SCENEQUEUE_DATABASE_URL", default_value_t = Services::default().database_url)]
    database_url: String,
    /// Scenes to seed.
    #[arg(long, default_value_t = 1_000_000)]
    scenes: i64,
    /// Jobs to seed (one recording each).
    #[arg(long, default_value_t = 10_000)]
    jobs: i64,
    /// Batches the jobs are spread over.
    #[arg(long, default_value_t = 100)]
    batches: i64,
    /// Timed requests per endpoint.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Keep the database afterwards.
    #[arg(long)]
    keep: bool,
}

/// Seeds the farm: batches, recordings, jobs, scenes, results and workers, all by set-based SQL.
async fn seed(pool: &PgPool, args: &Args) -> anyhow::Result<()> {
    let per_job = (args.scenes / args.jobs).max(1);
    let statements = [
        format!(
            "INSERT INTO batches (id, state, model, output_dir, created_at, priority)
             SELECT gen_random_uuid(), 'active', CASE WHEN b % 3 = 0 THEN 'deepfilternet3' ELSE 'nsnet2-48k' END,
                    '/out', now() - make_interval(mins => {n} - b), (b % 3)::int2
             FROM generate_series(1, {n}) b",
            n = args.batches
        ),
        "CREATE UNLOGGED TABLE seed_batches AS SELECT id, row_number() OVER (ORDER BY created_at) - 1 AS n FROM batches"
            .into(),
        format!(
            "CREATE UNLOGGED TABLE seed_jobs AS
             SELECT gen_random_uuid() AS job, gen_random_uuid() AS media, j,
                    (SELECT id FROM seed_batches WHERE n = j % {b}) AS batch,
                    CASE WHEN j % 100 < 60 THEN 'succeeded' WHEN j % 100 < 65 THEN 'dead'
                         WHEN j % 100 < 70 THEN 'running' WHEN j % 100 < 80 THEN 'queued' ELSE 'pending' END::job_state
                        AS state
             FROM generate_series(0, {jobs} - 1) j",
            b = args.batches,
            jobs = args.jobs
        ),
        "INSERT INTO workers (id, hostname, pid, device, state, jobs_done, last_seen, gpu_name, gpu_total_mb)
         SELECT gen_random_uuid(), 'gpu-' || w, 1000 + w, 'cuda:0', CASE WHEN w < 18 THEN 'busy' ELSE 'idle' END::worker_state,
                300 + w, now() - make_interval(secs => w % 5), 'NVIDIA L4', 23034
         FROM generate_series(1, 20) w"
            .into(),
        "CREATE UNLOGGED TABLE seed_workers AS SELECT id, row_number() OVER (ORDER BY hostname) - 1 AS n FROM workers".into(),
        format!(
            "INSERT INTO media (id, batch_id, path, state, sample_rate, channels, duration_s, decoder)
             SELECT media, batch, '/archive/' || (j % {b}) || '/recording-' || j || '.wav', 'split', 48000, 1,
                    {per_job} * 6.0, 'symphonia'
             FROM seed_jobs",
            b = args.batches
        ),
        format!(
            "INSERT INTO jobs (id, batch_id, state, audio_s, attempts, created_at, started_at, finished_at, error,
                               gpu_after_mb, gpu_peak_mb, session_create_ms, lease_expires, finished_by)
             SELECT job, batch, state, {per_job} * 5.5, CASE WHEN state = 'pending' THEN 0 ELSE 1 END,
                    now() - interval '3 hours', CASE WHEN state IN ('succeeded', 'dead', 'running')
                    THEN now() - interval '2 hours' + make_interval(secs => j % 3600) END,
                    CASE WHEN state IN ('succeeded', 'dead') THEN now() - interval '1 hour'
                         + make_interval(secs => j % 3500 + 60) END,
                    CASE WHEN state = 'dead' THEN
                         (ARRAY['the model crashed on every attempt', 'lease expired on the last attempt',
                                'dead-lettered too often'])[1 + j % 3] END,
                    CASE WHEN state IN ('succeeded', 'dead') THEN 900 + j % 50 END,
                    CASE WHEN state IN ('succeeded', 'dead') THEN 2400 + j % 300 END,
                    CASE WHEN state IN ('succeeded', 'dead') THEN 150 + j % 90 END,
                    CASE WHEN state = 'running' THEN now() + interval '1 hour' END,
                    CASE WHEN state IN ('succeeded', 'dead') THEN (SELECT id FROM seed_workers WHERE n = j % 20) END
             FROM seed_jobs"
        ),
        format!(
            "INSERT INTO scenes (id, media_id, batch_id, job_id, idx, start_s, end_s, state, error)
             SELECT gen_random_uuid(), media, batch, job, i, i * 6.0, i * 6.0 + 5.5,
                    CASE WHEN state = 'succeeded' AND (j + i) % 100 = 0 THEN 'failed'
                         WHEN state = 'succeeded' THEN 'succeeded' WHEN state = 'dead' THEN 'failed'
                         WHEN state = 'running' AND i < {per_job} / 2 THEN 'succeeded'
                         WHEN state = 'running' THEN 'running' ELSE 'pending' END::scene_state,
                    CASE WHEN state = 'succeeded' AND (j + i) % 100 = 0 THEN 'decoding the scene failed: corrupt frame'
                         WHEN state = 'dead' THEN 'job dead: the model crashed on every attempt' END
             FROM seed_jobs, generate_series(0, {per_job} - 1) i"
        ),
        "INSERT INTO results (scene_id, job_id, worker_id, attempt, output_path, sample_rate, duration_s, rms_in_db,
                              rms_out_db, processing_ms, created_at)
         SELECT s.id, s.job_id, (SELECT id FROM seed_workers WHERE n = abs(hashtext(s.job_id::text)) % 20), 1,
                '/out/' || s.id || '.wav', 48000, s.end_s - s.start_s, -24, -27, 180,
                now() - make_interval(secs => abs(hashtext(s.id::text)) % 7200)
         FROM scenes s WHERE s.state = 'succeeded'"
            .into(),
        "SELECT compact_state_counts()".into(),
        "DROP TABLE seed_batches, seed_jobs, seed_workers".into(),
        // As autovacuum leaves a table that stopped changing: statistics and the visibility map (index-only scans).
        "VACUUM ANALYZE batches, media, jobs, scenes, results, workers, job_counts, scene_counts".into(),
    ];
    for sql in statements {
        let started = Instant::now();
        sqlx::query(&sql).execute(pool).await.with_context(|| sql.clone())?;
        eprintln!(
            "  {:>6.1} s  {}",
            started.elapsed().as_secs_f64(),
            sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(())
}

/// One GET over HTTP/1.1; the status and the body's length.
async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, usize)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
    Ok((status, raw.len()))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let name = format!("sq_bench_view_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&args.database_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
    let result = measure(args, &db::with_database(&args.database_url, &name)).await;
    if !args.keep {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
    } else {
        eprintln!("kept database {name}");
    }
    result
}

async fn measure(args: &Args, url: &str) -> anyhow::Result<()> {
    let pool = db::connect(url, 8).await?;
    eprintln!("seeding {} scenes in {} jobs, {} batches", args.scenes, args.jobs, args.batches);
    let started = Instant::now();
    seed(&pool, args).await?;
    eprintln!("seeded in {:.0} s", started.elapsed().as_secs_f64());
    let (batch, job_batch_state): (uuid::Uuid, String) =
        sqlx::query_as("SELECT id, 'succeeded' FROM batches ORDER BY created_at DESC LIMIT 1").fetch_one(&pool).await?;
    let scene: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM scenes WHERE batch_id = $1 LIMIT 1").bind(batch).fetch_one(&pool).await?;
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let config = ApiConfig::new("127.0.0.1:0".parse()?, None, None)?;
    tokio::spawn(scenequeue_api::serve(pool.clone(), config, stop.clone(), Some(tx)));
    let addr = rx.await?;
    let endpoints = [
        ("dashboard /", "/".to_string()),
        ("batch page", format!("/batches/{batch}")),
        ("scene page", format!("/scenes/{scene}")),
        ("GET /api/v1/overview", "/api/v1/overview".into()),
        ("GET /api/v1/overview?batch=", format!("/api/v1/overview?batch={batch}")),
        ("GET /api/v1/batches", "/api/v1/batches".into()),
        ("GET /api/v1/batches/{id}", format!("/api/v1/batches/{batch}")),
        ("GET /api/v1/recordings?batch=", format!("/api/v1/recordings?batch={batch}")),
        ("GET /api/v1/jobs", "/api/v1/jobs".into()),
        ("GET /api/v1/jobs?batch=&state=", format!("/api/v1/jobs?batch={batch}&state={job_batch_state}")),
        ("GET /api/v1/jobs?state=dead", "/api/v1/jobs?state=dead".into()),
        ("GET /api/v1/scenes", "/api/v1/scenes".into()),
        ("GET /api/v1/scenes?batch=", format!("/api/v1/scenes?batch={batch}")),
        ("GET /api/v1/scenes?batch=&state=failed", format!("/api/v1/scenes?batch={batch}&state=failed")),
        ("GET /api/v1/scenes?state=failed", "/api/v1/scenes?state=failed".into()),
        ("GET /api/v1/workers", "/api/v1/workers".into()),
        ("GET /api/v1/errors", "/api/v1/errors".into()),
        ("GET /api/v1/errors?batch=", format!("/api/v1/errors?batch={batch}")),
        ("GET /metrics", "/metrics".into()),
    ];
    println!("| endpoint | p50 ms | p95 ms | max ms | bytes |");
    println!("|---|---|---|---|---|");
    let mut overview_mean = 0.0;
    for (label, path) in &endpoints {
        for _ in 0..3 {
            get(addr, path).await?;
        }
        let mut times = Vec::with_capacity(args.requests);
        let mut bytes = 0;
        for _ in 0..args.requests {
            let started = Instant::now();
            let (status, n) = get(addr, path).await?;
            times.push(started.elapsed());
            anyhow::ensure!(status == 200, "{path} answered {status}");
            bytes = n;
        }
        if path == "/api/v1/overview" {
            overview_mean = times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len() as f64;
        }
        times.sort();
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} | {bytes} |",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&times, 1.0)
        );
    }
    println!(
        "\nOne open dashboard: one snapshot (the overview) takes {:.1} ms, sent every 5 s when idle ({:.2} s of \
         database time per minute) and at most once a second while jobs end ({:.2} s per minute).",
        overview_mean * 1000.0,
        overview_mean * 12.0,
        overview_mean * 60.0
    );
    stop.cancel();
    pool.close().await;
    Ok(())
}
