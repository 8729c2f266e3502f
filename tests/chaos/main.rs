//! The chaos suite: a farm of real processes (the scheduler and three supervised workers) on the real services
//! enhances a few hundred scenes while workers are killed at random moments, RabbitMQ restarts and stays down
//! for a minute, PostgreSQL restarts, one scene panics the decoder, one hangs, and one worker cannot write its
//! output. At the end every good scene has exactly one result and a valid file, the bad ones are failed with
//! their causes, nothing is left unfinished, and the workers are alive.
//!
//! It restarts shared services, so `scripts/test.sh` runs this binary alone, after the other tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod farm;
mod hosts;
mod nodes;
#[path = "../shared/mod.rs"]
mod shared;

use farm::{Farm, Recipe, since};
use scenequeue_core::ids::BatchId;
use scenequeue_core::states::{BatchState, SceneState};
use shared::{TestEnv, speech_like, write_wav};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RECORDINGS: usize = 56;
const WORKERS: usize = 3;
/// Jobs held by the broker: a few per worker, as a farm would set it, so a job taken back does not queue behind
/// the whole backlog.
const MAX_QUEUED: &str = "6";

fn scenequeue(env: &TestEnv) -> Command {
    let mut cmd = shared::scenequeue(env);
    cmd.env("SCENEQUEUE_MAX_QUEUED", MAX_QUEUED).env("RUST_LOG", "info");
    cmd
}

/// The farm's scheduler: a pass every 2 s, and workers or queued jobs counted lost after 10 s.
const SCHEDULER_ARGS: &[&str] =
    &["scheduler", "--interval-s", "2", "--lost-after-s", "10", "--reconcile-grace-s", "10"];

const WORKER_ARGS: &[&str] = &[
    "worker",
    "--model",
    "nsnet2-48k",
    "--threads",
    "1",
    "--lease-s",
    "6",
    "--watchdog-floor-s",
    "8",
    "--health-check-s",
    "2",
    "--grace-s",
    "2",
    "--retry-backoff-s",
    "1",
];

/// Scenes in each state for the batch.
async fn progress(env: &TestEnv, batch: BatchId) -> (i64, i64) {
    loop {
        let row: Result<(i64, i64), _> = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state IN ('succeeded', 'failed'))
             FROM scenes WHERE batch_id = $1",
        )
        .bind(batch)
        .fetch_one(&env.pool)
        .await;
        match row {
            Ok(r) => return r,
            // Postgres is restarting: ask again.
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits until at least `done` scenes ended, failing with diagnostics after `limit`.
async fn until_done(env: &TestEnv, farm: &Farm, batch: BatchId, done: i64, limit: Duration) -> f64 {
    let started = Instant::now();
    loop {
        if progress(env, batch).await.1 >= done {
            return since(started);
        }
        if started.elapsed() > limit {
            let states: Vec<(String, i64)> =
                sqlx::query_as("SELECT state::text, count(*) FROM jobs WHERE batch_id = $1 GROUP BY 1")
                    .bind(batch)
                    .fetch_all(&env.pool)
                    .await
                    .unwrap_or_default();
            panic!("{done} scenes not ended after {limit:?}; jobs: {states:?}\n{}", farm.log_tails(30));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seconds until one more scene than now ends (the farm is flowing again).
async fn until_flowing(env: &TestEnv, farm: &Farm, batch: BatchId, total: i64) -> f64 {
    let now = progress(env, batch).await.1;
    if now >= total {
        return 0.0;
    }
    until_done(env, farm, batch, now + 1, Duration::from_secs(180)).await
}

/// Kills a random busy worker; returns the seconds until its job was taken back from it (its lease expired and
/// it was requeued) and until it ran again (leased by another worker, or finished).
async fn kill_a_busy_worker(env: &TestEnv, farm: &Farm, seed: &mut u64) -> Option<(f64, f64)> {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let slot = (*seed >> 33) as usize % WORKERS;
    let pid = farm.pid(slot + 1);
    let job: Option<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
        "SELECT j.id, j.lease_token FROM workers w JOIN jobs j ON j.id = w.current_job
         WHERE w.pid = $1 AND w.state = 'busy' AND j.state = 'running' ORDER BY w.started_at DESC LIMIT 1",
    )
    .bind(pid as i32)
    .fetch_optional(&env.pool)
    .await
    .ok()
    .flatten();
    if !farm.kill(slot + 1) {
        return None;
    }
    let killed = Instant::now();
    let (job, token) = job?;
    let mut reclaimed = None;
    loop {
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT NOT (state = 'running' AND lease_token = $2),
                    state IN ('succeeded', 'dead') OR (state = 'running' AND lease_token IS DISTINCT FROM $2)
             FROM jobs WHERE id = $1",
        )
        .bind(job)
        .bind(token)
        .fetch_optional(&env.pool)
        .await
        .ok()
        .flatten();
        if let Some((back, again)) = row {
            if back && reclaimed.is_none() {
                reclaimed = Some(since(killed));
            }
            if again {
                return Some((reclaimed.unwrap_or_default(), since(killed)));
            }
        }
        assert!(killed.elapsed() < Duration::from_secs(120), "job {job} not taken over\n{}", farm.log_tails(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A scene's recording, state, error, output file, output length, and span.
type SceneRow = (String, SceneState, Option<String>, Option<String>, Option<f64>, f64, f64);

fn make_recordings(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..RECORDINGS {
        write_wav(&dir.join(format!("talk-{i:03}.wav")), &speech_like(48_000, 20.0, 100 + i as u64), 48_000, 1);
    }
    (dir.join("talk-007.wav"), dir.join("talk-023.wav"))
}

/// After submission the poison recording gets a header that says 0 Hz (its decoder panics on it), and the hung
/// one becomes a FIFO nobody writes to (opening it blocks, like a read from a stale mount).
fn spoil(poison: &Path, hang: &Path) {
    let mut bytes = std::fs::read(poison).unwrap();
    bytes[24..28].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(poison, bytes).unwrap();
    std::fs::remove_file(hang).unwrap();
    shared::run(Command::new("mkfifo").arg(hang));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_farm_survives_kills_outages_and_poison() {
    let env = TestEnv::new().await;
    let (input, out, logs) = (env.dir.join("in"), env.dir.join("out"), env.dir.join("logs"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let (poison, hang) = make_recordings(&input);
    let status = scenequeue(&env)
        .args(["submit", "--model", "nsnet2-48k", "--job-seconds", "10", "--max-attempts", "10", "--out"])
        .arg(&out)
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success());
    let batch: BatchId = sqlx::query_scalar("SELECT id FROM batches").fetch_one(&env.pool).await.unwrap();
    spoil(&poison, &hang);
    let scenes: i64 = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await;
    assert!(scenes >= 300, "{scenes} scenes");

    let farm = Farm::new();
    let scheduler = Recipe::of(scenequeue(&env).args(SCHEDULER_ARGS));
    farm.add("scheduler", &logs, move || scheduler.command());
    for w in 0..WORKERS {
        let worker = Recipe::of(scenequeue(&env).args(WORKER_ARGS));
        let out = out.clone();
        farm.add(&format!("worker-{w}"), &logs, move || {
            if w < WORKERS - 1 {
                return worker.command();
            }
            // The last worker runs where the output directory is mounted read-only: it cannot write a scene.
            let mut unshare = Command::new("unshare");
            unshare.args(["-m", "sh", "-c", r#"mount --bind -o ro "$0" "$0" && exec "$@""#]).arg(&out);
            worker.wrapped_in(unshare)
        });
    }

    let started = Instant::now();
    let mut seed = 42u64;
    let mut report: Vec<String> = Vec::new();
    let mut kills = 0;
    let mut kill = async |report: &mut Vec<String>, seed: &mut u64| {
        kills += 1;
        if let Some((back, again)) = kill_a_busy_worker(&env, &farm, seed).await {
            report.push(format!("kill -9 #{kills}: its job taken back after {back} s, running again after {again} s"));
        }
    };
    until_done(&env, &farm, batch, scenes / 20, Duration::from_secs(180)).await;
    kill(&mut report, &mut seed).await;
    farm::rabbit_stop();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let down = since(down);
    farm::rabbit_start();
    let flowing = until_flowing(&env, &farm, batch, scenes).await;
    report.push(format!("RabbitMQ down {down} s: scenes flowing again {flowing} s after it was back up"));
    farm::postgres_restart();
    let flowing = until_flowing(&env, &farm, batch, scenes).await;
    report.push(format!("PostgreSQL restarted: scenes flowing again after {flowing} s"));
    kill(&mut report, &mut seed).await;
    kill(&mut report, &mut seed).await;
    farm::rabbit_stop();
    farm::rabbit_start();
    let flowing = until_flowing(&env, &farm, batch, scenes).await;
    report.push(format!("RabbitMQ restarted: scenes flowing again after {flowing} s"));
    for _ in 0..4 {
        kill(&mut report, &mut seed).await;
    }
    until_done(&env, &farm, batch, scenes, Duration::from_secs(300)).await;
    // The last job ends, then the batch: wait for the batch too.
    let deadline = Instant::now() + Duration::from_secs(60);
    while scenequeue_core::db::batch_state(&env.pool, batch).await.ok().flatten() != Some(BatchState::Finished) {
        assert!(Instant::now() < deadline, "batch not finished\n{}", farm.log_tails(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = since(started);
    // Killed processes are started again by their supervisor; none may have stopped by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let processes = loop {
        let processes = farm.report();
        if processes.iter().all(|(_, _, _, alive)| *alive) || Instant::now() > deadline {
            break processes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let tails = farm.log_tails(40);
    farm.shutdown();
    assert!(processes.iter().all(|(_, starts, kills, alive)| *alive && *starts == kills + 1), "{processes:?}\n{tails}");

    // Every job and scene ended; only the poison and the hung recordings' scenes failed, with their causes.
    let open: i64 =
        env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND state NOT IN ('succeeded', 'dead')", batch).await;
    assert_eq!(open, 0);
    let dead: i64 = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND state = 'dead'", batch).await;
    assert_eq!(dead, 0, "no job ran out of attempts");
    let rows: Vec<SceneRow> = sqlx::query_as(
        "SELECT m.path, s.state, s.error, r.output_path, r.duration_s, s.start_s, s.end_s
         FROM scenes s JOIN media m ON m.id = s.media_id LEFT JOIN results r ON r.scene_id = s.id
         WHERE s.batch_id = $1",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len() as i64, scenes, "one row per scene: no result is duplicated");
    let (mut good, mut poisoned, mut hung) = (0, 0, 0);
    for (path, state, error, output, duration, start, end) in &rows {
        let error = error.clone().unwrap_or_default();
        if Path::new(path) == poison {
            assert_eq!(*state, SceneState::Failed, "{path}");
            assert!(error.contains("crashed"), "{error}");
            poisoned += 1;
        } else if Path::new(path) == hang {
            assert_eq!(*state, SceneState::Failed, "{path}");
            assert!(error.contains("no progress") || error.contains("not tried"), "{error}");
            hung += 1;
        } else {
            assert_eq!(*state, SceneState::Succeeded, "{path}: {error}");
            let output = output.as_deref().expect("a result row");
            let wav = hound::WavReader::open(output).expect(output);
            let seconds = f64::from(wav.duration()) / f64::from(wav.spec().sample_rate);
            assert!((seconds - (end - start)).abs() < 0.05, "{output}: {seconds} s for a {} s scene", end - start);
            assert!((seconds - duration.unwrap_or_default()).abs() < 0.01);
            good += 1;
        }
    }
    assert!(poisoned >= 1 && hung >= 1);
    let results: i64 = env
        .count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1", batch)
        .await;
    assert_eq!(results, good);
    let unhealthy: i64 =
        env.count("SELECT count(*) FROM workers WHERE state = 'unhealthy' AND $1::uuid IS NOT NULL", batch).await;

    println!(
        "chaos: {scenes} scenes in {elapsed} s: {good} succeeded with one result and a valid file each, {poisoned} poison and {hung} hung scenes failed with their causes, 0 jobs dead, 0 left open"
    );
    println!("chaos: processes (name, starts, kills, alive): {processes:?}; workers unhealthy at the end: {unhealthy}");
    for line in report {
        println!("chaos: {line}");
    }
    env.cleanup().await;
}

/// `url` with its host (and port) replaced by `gateway:port`.
fn via(url: &str, gateway: std::net::Ipv4Addr, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
    let path = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
    let at = if userinfo.is_empty() { String::new() } else { format!("{userinfo}@") };
    format!("{scheme}://{at}{gateway}:{port}{path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_mid_job_is_fenced_out() {
    let env = TestEnv::new().await;
    let (input, out, logs) = (env.dir.join("in"), env.dir.join("out"), env.dir.join("logs"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&input).unwrap();
    // One recording, one scene of 8 minutes (no cut: pauses shorter than the least silence), one job: host A is
    // still enhancing it when it is joined again, so its write comes late, after the takeover.
    write_wav(&input.join("lecture.wav"), &speech_like(48_000, 480.0, 300), 48_000, 1);
    let status = scenequeue(&env)
        .args([
            "submit",
            "--model",
            "nsnet2-48k",
            "--min-silence-s",
            "5",
            "--max-scene-s",
            "600",
            "--job-seconds",
            "600",
        ])
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success());
    let batch: BatchId = sqlx::query_scalar("SELECT id FROM batches").fetch_one(&env.pool).await.unwrap();
    let scenes: i64 = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await;

    let (a, b) = (hosts::Host::new(1, &[5432, 5672]).await, hosts::Host::new(2, &[5432, 5672]).await);
    let farm = Farm::new();
    let scheduler = Recipe::of(scenequeue(&env).args(["scheduler", "--interval-s", "1"]));
    farm.add("scheduler", &logs, move || scheduler.command());
    let worker_on = |host: &hosts::Host| {
        let mut c = host.command(std::ffi::OsStr::new(env!("CARGO_BIN_EXE_scenequeue")));
        c.env("SCENEQUEUE_DATABASE_URL", via(&env.services.database_url, host.gateway, 5432))
            .env("SCENEQUEUE_AMQP_URL", via(&env.services.amqp_url, host.gateway, 5672))
            .env("SCENEQUEUE_QUEUE", &env.services.queue)
            .env("SCENEQUEUE_ORT_LIBRARY", shared::ort_library())
            .env("SCENEQUEUE_MODEL_DIR", shared::model_dir())
            .env("RUST_LOG", "info")
            .args(["worker", "--model", "nsnet2-48k", "--threads", "1", "--lease-s", "4"]);
        let recipe = Recipe::of(&c);
        move || recipe.command()
    };
    // Host A starts alone, so it takes the first job; once it is working on it, it is cut off.
    farm.add("worker-a", &logs, worker_on(&a));
    let (job, token, scene_a): (uuid::Uuid, uuid::Uuid, uuid::Uuid) = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let row = sqlx::query_as(
                "SELECT j.id, j.lease_token, s.id FROM jobs j JOIN scenes s ON s.job_id = j.id
                 WHERE j.batch_id = $1 AND j.state = 'running' AND s.state = 'running' LIMIT 1",
            )
            .bind(batch)
            .fetch_optional(&env.pool)
            .await
            .unwrap();
            if let Some(row) = row {
                break row;
            }
            assert!(Instant::now() < deadline, "host A never started a job\n{}", farm.log_tails(30));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    a.set_link(false);
    let cut = Instant::now();
    let worker_a: uuid::Uuid =
        sqlx::query_scalar("SELECT lease_owner FROM jobs WHERE id = $1").bind(job).fetch_one(&env.pool).await.unwrap();
    farm.add("worker-b", &logs, worker_on(&b));

    // B takes the job over once A's lease ran out; A stays cut off until then, longer than its lease.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let moved: bool = sqlx::query_scalar(
            "SELECT state = 'succeeded' OR (state = 'running' AND lease_token <> $2) FROM jobs WHERE id = $1",
        )
        .bind(job)
        .bind(token)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        if moved {
            break;
        }
        assert!(Instant::now() < deadline, "job not taken over\n{}", farm.log_tails(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken_over = since(cut);
    let takeover_at: f64 =
        sqlx::query_scalar("SELECT extract(epoch FROM now())::float8").fetch_one(&env.pool).await.unwrap();
    assert!(cut.elapsed() > Duration::from_secs(4), "cut off longer than its lease");
    a.set_link(true);

    // A comes back; its late writes are refused and it says so; B (and A, afterwards) finish the batch.
    let fenced = logs.join("worker-a.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let log = std::fs::read_to_string(&fenced).unwrap_or_default();
        let finished = scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap() == Some(BatchState::Finished);
        if finished && (log.contains("fenced out") || log.contains("lease lost")) {
            break;
        }
        assert!(Instant::now() < deadline, "finished: {finished}\n{}", farm.log_tails(80));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tails = farm.log_tails(20);
    farm.shutdown();
    let log = std::fs::read_to_string(&fenced).unwrap_or_default();
    let refusal = log.lines().find(|l| l.contains("fenced out") || l.contains("lease lost")).unwrap_or_default();

    let results: i64 = env
        .count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1", batch)
        .await;
    let succeeded: i64 =
        env.count("SELECT count(*) FROM scenes WHERE batch_id = $1 AND state = 'succeeded'", batch).await;
    assert_eq!((results, succeeded), (scenes, scenes), "every scene once\n{tails}");
    let late: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM results WHERE job_id = $1 AND worker_id = $2 AND extract(epoch FROM created_at) > $3",
    )
    .bind(job)
    .bind(worker_a)
    .bind(takeover_at)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(late, 0, "no write of the cut-off host landed after the takeover");
    let (writer, state): (uuid::Uuid, SceneState) =
        sqlx::query_as("SELECT r.worker_id, s.state FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.id = $1")
            .bind(scene_a)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_ne!(writer, worker_a, "the scene host A was working on when cut off was written by the other host");
    assert_eq!(state, SceneState::Succeeded);
    let attempt_files: Vec<PathBuf> = walk(&out)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().matches('.').count() > 1))
        .collect();
    assert!(attempt_files.is_empty(), "every attempt file was moved into place or removed: {attempt_files:?}");
    println!(
        "hosts: {scenes} scene(s), each with one result; host A cut off mid-job, its job running on host B {taken_over} s \
         later; A's late writes refused by the fence; no attempt file left\nhosts: A said: {refusal}"
    );
    drop((a, b));
    env.cleanup().await;
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
