//! `farm`: how many scene completions per second one PostgreSQL and one RabbitMQ carry. Runs N workers in this
//! process through the same code as `scenequeue worker` (`scenequeue_worker::run`: leases, heartbeats, fenced
//! writes, acks, dispatch), each with the model-free runner (a set time per scene, an empty output file), over
//! a backlog seeded in a database and queue of its own. Reports completions per second, what each scene cost the
//! database (transactions, rows, WAL bytes), connections, and the latency of each state transition.

use crate::statements::Statements;
use anyhow::Context;
use scenequeue_core::config::Services;
use scenequeue_core::{db, dispatch, mq};
use scenequeue_worker::WorkerConfig;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// `scenequeue-bench farm`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Simulated workers.
    #[arg(long, default_value_t = 10)]
    workers: usize,
    /// Jobs in the backlog.
    #[arg(long, default_value_t = 2_000)]
    jobs: usize,
    /// Scenes per job.
    #[arg(long, default_value_t = 20)]
    scenes_per_job: usize,
    /// Time each scene "takes", milliseconds (0: none).
    #[arg(long, default_value_t = 0)]
    scene_ms: u64,
    /// Database connections per worker.
    #[arg(long, default_value_t = 2)]
    db_connections: u32,
    /// Jobs the broker may hold queued (default: two per worker).
    #[arg(long)]
    max_queued: Option<i64>,
    /// Unacknowledged jobs each worker may hold (the farm's `--prefetch`, `SCENEQUEUE_PREFETCH`).
    #[arg(long, default_value_t = 1)]
    prefetch: u16,
    /// Where the empty outputs go (a tmpfs keeps the disk out of the figures).
    #[arg(long, default_value = "/dev/shm")]
    out: std::path::PathBuf,
    /// Postgres the workers connect to (a pooler, say); the database is created through --admin-url.
    #[arg(long, env = "SCENEQUEUE_DATABASE_URL", default_value_t = Services::default().database_url)]
    database_url: String,
    /// Postgres for creating and reading the database (a direct connection).
    #[arg(long)]
    admin_url: Option<String>,
    /// RabbitMQ.
    #[arg(long, env = "SCENEQUEUE_AMQP_URL", default_value_t = Services::default().amqp_url)]
    amqp_url: String,
    /// Keep the database afterwards.
    #[arg(long)]
    keep: bool,
    /// Count the database statements (round trips) of the run, from the driver's event per statement (which
    /// costs the simulated workers some CPU: leave it out for the CPU figures).
    #[arg(long)]
    statements: bool,
}

impl Args {
    /// Whether the run counts its database statements.
    pub fn counts_statements(&self) -> bool {
        self.statements
    }
}

pub async fn run(args: &Args, statements: Option<Statements>) -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("sq_bench_farm_{}", &id[..12]);
    let admin_url = args.admin_url.clone().unwrap_or_else(|| args.database_url.clone());
    let mut admin = PgConnection::connect(&admin_url).await.context("connecting to Postgres")?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
    let out = args.out.join(&name);
    let urls = (db::with_database(&admin_url, &name), db::with_database(&args.database_url, &name));
    let result = measure(args, &urls, &out, statements).await;
    let _ = std::fs::remove_dir_all(&out);
    if args.keep {
        eprintln!("kept database {name}");
    } else {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
    }
    result
}

/// The backlog: one batch, one recording per job, every job and scene pending.
async fn seed(pool: &PgPool, args: &Args, out: &std::path::Path) -> anyhow::Result<uuid::Uuid> {
    let batch = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO batches (id, state, model, output_dir) VALUES ($1, 'active', 'nsnet2-48k', $2)")
        .bind(batch)
        .bind(out.to_string_lossy().as_ref())
        .execute(pool)
        .await?;
    let statements = [
        "CREATE UNLOGGED TABLE seed AS SELECT gen_random_uuid() AS job, gen_random_uuid() AS media, j
         FROM generate_series(0, $2 - 1) j",
        "INSERT INTO media (id, batch_id, path, state, sample_rate, channels, duration_s, decoder)
         SELECT media, $1, '/simulated/recording-' || j || '.wav', 'split', 48000, 1, $3 * 10.0, 'symphonia' FROM seed",
        "INSERT INTO jobs (id, batch_id, state, audio_s) SELECT job, $1, 'pending', $3 * 10.0 FROM seed",
        "INSERT INTO scenes (id, media_id, batch_id, job_id, idx, start_s, end_s, state)
         SELECT gen_random_uuid(), media, $1, job, i, i * 10.0, i * 10.0 + 10.0, 'pending'
         FROM seed, generate_series(0, $3 - 1) i",
        "DROP TABLE seed",
        "SELECT compact_state_counts()",
    ];
    for sql in statements {
        sqlx::query(sql)
            .bind(batch)
            .bind(args.jobs as i64)
            .bind(args.scenes_per_job as i64)
            .execute(pool)
            .await
            .with_context(|| sql.to_string())?;
    }
    sqlx::query("VACUUM ANALYZE batches, media, jobs, scenes").execute(pool).await?;
    Ok(batch)
}

/// Database counters of this database, read before and after the run.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
struct DbCounters {
    commits: i64,
    rollbacks: i64,
    inserted: i64,
    updated: i64,
    deleted: i64,
    wal_bytes: f64,
}

async fn counters(pool: &PgPool) -> anyhow::Result<DbCounters> {
    Ok(sqlx::query_as(
        "SELECT xact_commit AS commits, xact_rollback AS rollbacks, tup_inserted AS inserted, tup_updated AS updated,
                tup_deleted AS deleted, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 AS wal_bytes
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}

async fn measure(
    args: &Args,
    (admin_url, worker_url): &(String, String),
    out: &std::path::Path,
    statements: Option<Statements>,
) -> anyhow::Result<()> {
    let pool = db::connect(admin_url, 4).await?;
    let scenes = (args.jobs * args.scenes_per_job) as i64;
    eprintln!("seeding {} jobs of {} scenes", args.jobs, args.scenes_per_job);
    let batch = seed(&pool, args, out).await?;
    let services = Services {
        database_url: worker_url.to_string(),
        amqp_url: args.amqp_url.clone(),
        queue: format!("sq_bench_farm_{}", &batch.simple().to_string()[20..]),
        max_queued: args.max_queued.unwrap_or(2 * args.workers as i64),
        prefetch: args.prefetch,
    };
    let connection = mq::connect(&services.amqp_url).await?;
    let topology = mq::Topology::new(&services.queue);
    let publisher = mq::Publisher::new(&connection, &topology).await?;
    let publishing = Instant::now();
    let published = dispatch::dispatch(&pool, &publisher, services.max_queued).await?;
    let publishing = publishing.elapsed().as_secs_f64();

    let before = counters(&pool).await?;
    let cpu_before = CpuTime::now();
    let statements_before = statements.as_ref().map(Statements::get);
    let started = Instant::now();
    let stop = CancellationToken::new();
    let config = WorkerConfig {
        default_model: "nsnet2-48k".into(),
        simulate: Some(Duration::from_millis(args.scene_ms)),
        db_connections: args.db_connections,
        ..WorkerConfig::default()
    };
    let mut workers = Vec::with_capacity(args.workers);
    for _ in 0..args.workers {
        let (config, services, stop) = (config.clone(), services.clone(), stop.clone());
        workers.push(tokio::spawn(async move { scenequeue_worker::run(config, services, stop.into()).await }));
    }

    // Completions sampled once a second from the kept counts; connections from pg_stat_activity; the queue's
    // ready messages and consumers from the broker.
    let mut samples: Vec<(f64, i64)> = Vec::new();
    let mut connections = 0i64;
    let mut broker = Broker::default();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (done, open): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(sum(scenes), 0)::int8 FROM scene_counts WHERE state IN ('succeeded', 'failed')),
                    (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database())",
        )
        .fetch_one(&pool)
        .await?;
        connections = connections.max(open);
        let depth = mq::queue_depth(&connection, &services.queue).await?;
        broker.max_ready = broker.max_ready.max(depth.messages);
        broker.max_consumers = broker.max_consumers.max(depth.consumers);
        samples.push((started.elapsed().as_secs_f64(), done));
        eprintln!("  {:>6.1} s  {done} of {scenes} scenes", started.elapsed().as_secs_f64());
        if done >= scenes {
            break;
        }
        if workers.iter().all(|w| w.is_finished()) {
            let first = match workers.swap_remove(0).await? {
                Err(e) => e.to_string(),
                Ok(_) => "no error".into(),
            };
            anyhow::bail!("every worker stopped with {done} of {scenes} scenes done; the first said: {first}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = counters(&pool).await?;
    let cpu = CpuTime::now().since(&cpu_before);
    let statements_run = statements.as_ref().zip(statements_before).map(|(s, before)| s.get() - before);
    stop.cancel();
    for w in workers {
        let report = w.await?.map_err(|e| anyhow::anyhow!("a worker failed: {e}"))?;
        broker.deliveries += report.jobs_done + report.duplicates;
    }
    let _ = connection.close(200, "done").await;

    report(&pool, args, &services, (scenes, elapsed, connections), &samples, broker, (before, after)).await?;
    println!(
        "Publishing the first {published} jobs with a broker confirm each took {:.0} ms ({:.0} jobs/s); {:.0} jobs/s \
         completed overall.",
        publishing * 1000.0,
        published as f64 / publishing.max(1e-9),
        args.jobs as f64 / elapsed
    );
    if let Some(n) = statements_run {
        println!(
            "Database statements (round trips) of the workers and this benchmark's sampling: {:.2} per scene, {:.1} \
             per job.",
            n as f64 / scenes as f64,
            n as f64 / args.jobs as f64
        );
    }
    let per_k = |ticks: u64| ticks as f64 / 100.0 / scenes as f64 * 1000.0;
    println!(
        "CPU seconds per 1,000 scenes, from /proc on this machine: PostgreSQL {:.3}, RabbitMQ {:.3}, PgBouncer {:.3}, \
         the simulated workers (this process) {:.3}.",
        per_k(cpu.postgres),
        per_k(cpu.rabbitmq),
        per_k(cpu.pgbouncer),
        per_k(cpu.this)
    );
    Ok(())
}

/// CPU time (user and system, in clock ticks of 1/100 s) of the services' processes on this machine and of this
/// process, from /proc. Only meaningful where the services run on the same machine as the benchmark.
#[derive(Debug, Default, Clone, Copy)]
struct CpuTime {
    postgres: u64,
    rabbitmq: u64,
    pgbouncer: u64,
    this: u64,
}

impl CpuTime {
    fn now() -> Self {
        let mut t = Self::default();
        let me = std::process::id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else { return t };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // "pid (comm) state ppid ...": utime and stime are the 14th and 15th fields.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
            let comm = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let ticks = match (fields.get(11), fields.get(12)) {
                (Some(u), Some(s)) => u.parse::<u64>().unwrap_or(0) + s.parse::<u64>().unwrap_or(0),
                _ => continue,
            };
            match comm {
                _ if name == me => t.this += ticks,
                "postgres" => t.postgres += ticks,
                "beam.smp" => t.rabbitmq += ticks,
                "pgbouncer" => t.pgbouncer += ticks,
                _ => {}
            }
        }
        t
    }

    /// The time spent since `before` (a process that ended in between is not counted).
    fn since(&self, before: &Self) -> Self {
        Self {
            postgres: self.postgres.saturating_sub(before.postgres),
            rabbitmq: self.rabbitmq.saturating_sub(before.rabbitmq),
            pgbouncer: self.pgbouncer.saturating_sub(before.pgbouncer),
            this: self.this.saturating_sub(before.this),
        }
    }
}

/// What the broker was seen doing.
#[derive(Debug, Default, Clone, Copy)]
struct Broker {
    /// Most ready messages in the queue at a sample.
    max_ready: u32,
    /// Most consumers on the queue at a sample.
    max_consumers: u32,
    /// Deliveries the workers handled: jobs done plus duplicates (already finished or held elsewhere).
    deliveries: u64,
}

/// Completions per second between 10 % and 90 % of the backlog (the start and the tail left out).
fn sustained(samples: &[(f64, i64)], scenes: i64) -> f64 {
    let at = |share: f64| samples.iter().find(|(_, done)| *done as f64 >= share * scenes as f64).copied();
    match (at(0.1), at(0.9)) {
        (Some((t0, d0)), Some((t1, d1))) if t1 > t0 => (d1 - d0) as f64 / (t1 - t0),
        _ => 0.0,
    }
}

async fn report(
    pool: &PgPool,
    args: &Args,
    services: &Services,
    (scenes, elapsed, connections): (i64, f64, i64),
    samples: &[(f64, i64)],
    broker: Broker,
    (before, after): (DbCounters, DbCounters),
) -> anyhow::Result<()> {
    // Latency of each transition, milliseconds: creation to first lease (queue wait), lease to end (the job),
    // lease to its first recorded result; and the scenes recorded per transaction (a transaction's rows share
    // its `now()`).
    let percentiles = |expr: &str| {
        format!(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM {expr}) * 1000)
             FROM jobs j"
        )
    };
    let wait: Vec<f64> = sqlx::query_scalar(&percentiles("j.started_at - j.created_at")).fetch_one(pool).await?;
    let run: Vec<f64> = sqlx::query_scalar(&percentiles("j.finished_at - j.started_at")).fetch_one(pool).await?;
    let first: Vec<f64> = sqlx::query_scalar(
        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM f.first - j.started_at) * 1000)
         FROM jobs j JOIN (SELECT job_id, min(created_at) AS first FROM results GROUP BY job_id) f ON f.job_id = j.id",
    )
    .fetch_one(pool)
    .await?;
    let per_record: f64 =
        sqlx::query_scalar("SELECT count(*)::float8 / greatest(count(DISTINCT (job_id, created_at)), 1) FROM results")
            .fetch_one(pool)
            .await?;
    let jobs = args.jobs as f64;
    let per_scene = |n: i64| n as f64 / scenes as f64;
    let rows = (after.inserted - before.inserted) + (after.updated - before.updated) + (after.deleted - before.deleted);
    println!(
        "| workers | jobs x scenes | scene ms | db conns/worker | max queued | scenes/s (10-90 %) | scenes/s overall \
         | commits/scene | rows/scene | WAL bytes/scene | connections |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} x {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.0} | {} |",
        args.workers,
        args.jobs,
        args.scenes_per_job,
        args.scene_ms,
        args.db_connections,
        services.max_queued,
        sustained(samples, scenes),
        scenes as f64 / elapsed,
        per_scene(after.commits - before.commits),
        per_scene(rows),
        (after.wal_bytes - before.wal_bytes) / scenes as f64,
        connections,
    );
    let p = |v: &[f64]| format!("{:.0} / {:.0} / {:.0}", v[0], v[1], v[2]);
    println!();
    println!("| transition (ms) | p50 / p95 / p99 |");
    println!("|---|---|");
    println!("| job created -> leased | {} |", p(&wait));
    println!("| job leased -> ended | {} |", p(&run));
    println!("| job leased -> its first result recorded | {} |", p(&first));
    println!();
    println!(
        "{scenes} scenes in {elapsed:.1} s; {:.1} commits and {:.0} rows per job; {per_record:.1} scenes recorded per \
         transaction; rollbacks {}.",
        (after.commits - before.commits) as f64 / jobs,
        rows as f64 / jobs,
        after.rollbacks - before.rollbacks
    );
    println!(
        "Broker: {:.2} deliveries per job, at most {} jobs ready in the queue and {} consumers on it (prefetch {}).",
        broker.deliveries as f64 / jobs,
        broker.max_ready,
        broker.max_consumers,
        args.prefetch
    );
    Ok(())
}
