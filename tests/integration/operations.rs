//! What an operator relies on when something went wrong: `retry`, queued jobs whose message the broker lost,
//! lost workers in `status`, and submissions and the scheduler riding out an outage of Postgres or RabbitMQ. An
//! outage is played by a forwarder between the client and the real service (`common/proxy.rs`): the services
//! themselves are never restarted here.

use crate::common;
use crate::common::proxy::Proxy;
use crate::common::{Loud, TestEnv, job_ids, small_batch, speech_like, submit_request, write_wav};
use scenequeue_audio::vad::{SpeechDetector, SpeechStream};
use scenequeue_core::config::Services;
use scenequeue_core::ids::{BatchId, JobId, SceneId};
use scenequeue_core::outage::Patience;
use scenequeue_core::retry::Target;
use scenequeue_core::states::{BatchState, JobState, WorkerState};
use scenequeue_core::{batches, db, jobs, workers};
use scenequeue_scheduler::{
    Detector, ReapSettings, SchedulerError, SubmitRequest, reap_with, submit, submit_without_broker,
};
use sqlx::{Connection, PgConnection};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A broker address where nothing listens: every connection is refused.
const NO_BROKER: &str = "amqp://guest:guest@127.0.0.1:1/%2f";

async fn drain(env: &TestEnv) -> scenequeue_worker::WorkerReport {
    scenequeue_worker::run(env.worker_config(), env.services.clone(), CancellationToken::new().into())
        .await
        .expect("worker runs until the queue is empty")
}

async fn jobs_in(env: &TestEnv, batch: BatchId, state: JobState) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE batch_id = $1 AND state = $2")
        .bind(batch)
        .bind(state)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// Polls `done` until it holds, failing the test after a minute.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `scenequeue` binary, pointed at this test's services.
fn cli(env: &TestEnv) -> Command {
    common::scenequeue(env)
}

fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run scenequeue");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_runs_dead_jobs_and_failed_scenes_again_and_keeps_what_succeeded() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("a.wav"), &speech_like(48_000, 9.0, 7), 48_000, 1);
    let b = input.join("b.wav");
    write_wav(&b, &speech_like(48_000, 6.0, 8), 48_000, 1);
    let (connection, publisher) = env.publisher().await;
    let batch = submit(&env.pool, &publisher, &submit_request(&env, vec![input], 4.0)).await.unwrap().batch;

    // b.wav is damaged after it was cut, so its scenes fail in the worker; one job of a.wav dies.
    let original = std::fs::read(&b).unwrap();
    std::fs::write(&b, b"RIFF\x10\x00\x00\x00WAVEdamaged").unwrap();
    let dead: JobId = sqlx::query_scalar(
        "SELECT j.id FROM jobs j WHERE j.batch_id = $1 AND NOT EXISTS (SELECT 1 FROM scenes s JOIN media m
         ON m.id = s.media_id WHERE s.job_id = j.id AND m.path LIKE '%b.wav') ORDER BY j.id LIMIT 1",
    )
    .bind(batch)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    jobs::bury(&env.pool, dead, "the model crashed on every attempt").await.unwrap();
    drain(&env).await;
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    let failed = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1 AND state = 'failed'", batch).await;
    let damaged_jobs = env
        .count(
            "SELECT count(DISTINCT s.job_id) FROM scenes s JOIN media m ON m.id = s.media_id
             WHERE s.batch_id = $1 AND m.path LIKE '%b.wav'",
            batch,
        )
        .await;
    let kept: Vec<(SceneId, String)> = sqlx::query_as(
        "SELECT r.scene_id, r.created_at::text FROM results r JOIN scenes s ON s.id = r.scene_id
         WHERE s.batch_id = $1 AND s.state = 'succeeded' ORDER BY 1",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(failed >= 2 && !kept.is_empty(), "{failed} failed, {} succeeded", kept.len());

    // The file is repaired; the operator retries the batch.
    std::fs::write(&b, original).unwrap();
    let report = scenequeue_scheduler::retry(&env.pool, Some(&publisher), batch.0, 64).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert_eq!(report.reset.target, Target::Batch(batch));
    assert_eq!((report.reset.jobs as i64, report.reset.scenes as i64), (damaged_jobs + 1, failed));
    assert!(report.reset.reopened);
    assert_eq!(report.published, Some(damaged_jobs as usize + 1));
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Active));
    let (state, attempts, error): (JobState, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, error FROM jobs WHERE id = $1")
            .bind(dead)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((state, attempts), (JobState::Queued, 0));
    assert!(error.unwrap().contains("the model crashed"), "the last error is kept until the job succeeds");

    let worker = drain(&env).await;
    assert_eq!(worker.jobs_done as i64, damaged_jobs + 1);
    assert_eq!(worker.scenes_succeeded as i64, failed, "only what had failed ran again");
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    let open = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1 AND state <> 'succeeded'", batch).await;
    assert_eq!(open, 0);
    let errors = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND error IS NOT NULL", batch).await;
    assert_eq!(errors, 0);
    for (scene, created) in &kept {
        let now: String = sqlx::query_scalar("SELECT created_at::text FROM results WHERE scene_id = $1")
            .bind(scene)
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert_eq!(&now, created, "a scene that had succeeded was not run again");
    }
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_of_one_job_leaves_the_others_and_refuses_what_it_cannot_retry() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let jobs = job_ids(&env, batch).await;
    for &job in &jobs[..2] {
        jobs::bury(&env.pool, job, "out of attempts").await.unwrap();
    }
    let reset = scenequeue_core::retry::retry(&env.pool, jobs[0].0).await.unwrap();
    let scenes = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM scenes WHERE job_id = $1")
        .bind(jobs[0])
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(reset.target, Target::Job(jobs[0]));
    assert_eq!((reset.batch, reset.jobs, reset.scenes as i64, reset.reopened), (batch, 1, scenes, false));
    let state = |job: JobId| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, JobState>("SELECT state FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(state(jobs[0]).await, JobState::Pending);
    assert_eq!(state(jobs[1]).await, JobState::Dead, "only the job named was retried");
    // A job still queued has nothing to retry.
    let last = *jobs.last().unwrap();
    assert_eq!(scenequeue_core::retry::retry(&env.pool, last.0).await.unwrap().jobs, 0);
    assert_eq!(state(last).await, JobState::Queued);

    // An unknown id, and a batch still being submitted, are refused naming them.
    let unknown = uuid::Uuid::new_v4();
    let err = scenequeue_core::retry::retry(&env.pool, unknown).await.unwrap_err().to_string();
    assert!(err.contains("no batch or job") && err.contains(&unknown.to_string()), "{err}");
    let ingesting = BatchId::new();
    let new = batches::NewBatch {
        id: ingesting,
        model: "nsnet2-48k",
        output_dir: "/tmp",
        priority: 0,
        submission_key: "k",
        options: Default::default(),
        owner: uuid::Uuid::new_v4(),
        asr: None,
    };
    batches::create(&env.pool, &new).await.unwrap();
    let err = scenequeue_core::retry::retry(&env.pool, ingesting.0).await.unwrap_err().to_string();
    assert!(err.contains(&ingesting.to_string()) && err.contains("still being submitted"), "{err}");

    // Through the command line, with the broker away: JSON out, and the job waits pending.
    let (ok, stdout, stderr) =
        output(cli(&env).args(["retry", &jobs[1].to_string(), "--json"]).env("SCENEQUEUE_AMQP_URL", NO_BROKER));
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["target"]["kind"], "job");
    assert_eq!((json["jobs"].as_u64(), json["scenes"].as_u64().is_some()), (Some(1), true));
    assert!(json["published"].is_null());
    assert!(json["not_published"].as_str().unwrap().contains("RabbitMQ unreachable"), "{json}");
    assert_eq!(state(jobs[1]).await, JobState::Pending);
    let (ok, _, stderr) = output(cli(&env).args(["retry", &unknown.to_string()]));
    assert!(!ok && stderr.contains("no batch or job has the id"), "{stderr}");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_jobs_whose_messages_the_broker_lost_are_published_again() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let jobs = job_ids(&env, batch).await;
    let (connection, publisher) = env.publisher().await;
    let now = ReapSettings { reconcile_grace: Duration::ZERO, ..ReapSettings::default() };
    let patient = ReapSettings { reconcile_grace: Duration::from_secs(3600), ..ReapSettings::default() };
    // Every message is in the queue: nothing to do.
    let reaped = reap_with(&env.pool, &publisher, &connection, &env.topology, &now).await.unwrap();
    assert_eq!((reaped.reconciled, reaped.published), (0, 0));
    // A consumer holds one unacknowledged (its prefetch): the queue counts one fewer, and nothing is lost.
    let (holder, channel) = env.channel().await;
    scenequeue_core::mq::set_prefetch(&channel, 1).await.unwrap();
    let mut consumer =
        channel.basic_consume(&env.topology.queue, "holder", Default::default(), Default::default()).await.unwrap();
    futures_util::StreamExt::next(&mut consumer).await.unwrap().unwrap();
    let reaped = reap_with(&env.pool, &publisher, &connection, &env.topology, &now).await.unwrap();
    assert_eq!(reaped.reconciled, 0, "a message held by a consumer is not missing");
    // Closing the channel gives the message back.
    holder.close(200, "ok").await.ok();

    // The broker loses every message.
    let (c, channel) = env.channel().await;
    channel.queue_purge(&env.topology.queue, Default::default()).await.unwrap();
    c.close(200, "ok").await.ok();
    // Within the grace period a missing message may still be on its way: left alone.
    let reaped = reap_with(&env.pool, &publisher, &connection, &env.topology, &patient).await.unwrap();
    assert_eq!(reaped.reconciled, 0);
    let reaped = reap_with(&env.pool, &publisher, &connection, &env.topology, &now).await.unwrap();
    assert_eq!((reaped.reconciled, reaped.published), (jobs.len(), jobs.len()));
    connection.close(200, "ok").await.ok();

    let worker = drain(&env).await;
    assert_eq!(worker.jobs_done as usize, jobs.len());
    assert_eq!(jobs_in(&env, batch, JobState::Succeeded).await as usize, jobs.len());
    let open = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1 AND state <> 'succeeded'", batch).await;
    assert_eq!(open, 0, "every scene was enhanced");
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_that_stopped_heartbeating_are_lost_and_shown_with_their_health() {
    let env = TestEnv::new().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let id = scenequeue_core::ids::WorkerId::new();
        let info = workers::WorkerInfo { id, device: "cpu".into(), session_policy: "per-job".into(), gpu: None };
        workers::register(&env.pool, &info).await.unwrap();
        ids.push(id);
    }
    let [fresh, silent, sick, gone] = ids[..] else { unreachable!() };
    let health = Some("model directory unreadable: permission denied");
    workers::beat(&env.pool, sick, WorkerState::Unhealthy, None, health).await.unwrap();
    workers::beat(&env.pool, gone, WorkerState::Stopped, None, None).await.unwrap();
    // As two minutes later: the three others stopped heartbeating.
    sqlx::query("UPDATE workers SET last_seen = now() - interval '2 minutes' WHERE id <> $1")
        .bind(fresh)
        .execute(&env.pool)
        .await
        .unwrap();

    let (connection, publisher) = env.publisher().await;
    let reaped = reap_with(&env.pool, &publisher, &connection, &env.topology, &ReapSettings::default()).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert_eq!(reaped.lost_workers, 2);
    let state = |id| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, WorkerState>("SELECT state FROM workers WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        [state(fresh).await, state(silent).await, state(sick).await, state(gone).await],
        [WorkerState::Idle, WorkerState::Lost, WorkerState::Lost, WorkerState::Stopped]
    );

    let status = scenequeue_scheduler::status(&env.pool, None).await.unwrap();
    assert_eq!(
        status.worker_states,
        vec![("idle".to_string(), 1), ("lost".to_string(), 2), ("stopped".to_string(), 1)]
    );
    assert_eq!(status.troubled_workers.len(), 2);
    assert!(status.troubled_workers.iter().all(|w| w.state == "lost" && w.idle_s >= 100.0));
    let (ok, stdout, stderr) = output(cli(&env).arg("status"));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("lost 2") && stdout.matches("lost worker ").count() == 2, "{stdout}");
    assert!(stdout.contains("model directory unreadable: permission denied"), "{stdout}");
    assert!(stdout.contains(&format!(":{} (cpu), last seen 20", std::process::id())), "{stdout}");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_without_the_broker_stores_its_batch_and_the_scheduler_publishes_it() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("talk.wav"), &speech_like(48_000, 9.0, 7), 48_000, 1);
    let out = env.dir.join("out");
    let (ok, stdout, stderr) = output(
        cli(&env)
            .args(["submit", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--model", "nsnet2-48k"])
            .args(["--job-seconds", "4"])
            .env("SCENEQUEUE_AMQP_URL", NO_BROKER),
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("RabbitMQ unreachable") && stderr.contains("wait pending"), "{stderr}");
    let batch: BatchId = stdout.trim().parse().unwrap();
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Active));
    let jobs = job_ids(&env, batch).await.len();
    assert!(jobs >= 3);
    assert_eq!(jobs_in(&env, batch, JobState::Pending).await as usize, jobs, "every job waits pending");

    let (connection, publisher) = env.publisher().await;
    let reaped = reap_with(&env.pool, &publisher, &connection, &env.topology, &ReapSettings::default()).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert_eq!(reaped.published, jobs);
    assert_eq!(jobs_in(&env, batch, JobState::Queued).await as usize, jobs);
    env.cleanup().await;
}

/// A detector that holds the first recording until the test lets it go, so an outage can start at a known step
/// of the submission: after the batch was opened, before the recording is looked up and stored.
struct Gate {
    entered: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl SpeechDetector for Gate {
    fn sample_rate(&self) -> u32 {
        16_000
    }
    fn frame_s(&self) -> f64 {
        0.01
    }
    fn stream(&self) -> Box<dyn SpeechStream + '_> {
        if let Some(entered) = self.entered.lock().unwrap().take() {
            entered.send(()).unwrap();
            let _ = self.release.lock().unwrap().recv();
        }
        Box::new(Loud)
    }
}

/// The gate as a detector, a receiver told when the first recording is held, and the sender that lets it go.
fn gate() -> (Detector, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gate = Gate { entered: Mutex::new(Some(entered_tx)), release: Mutex::new(release_rx) };
    (Detector(Arc::new(gate)), entered_rx, release_tx)
}

/// Two recordings, submitted one at a time through `gate`, waiting Postgres out for `budget`.
fn gated_request(env: &TestEnv, detector: Detector, budget: Duration) -> SubmitRequest {
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (name, seed) in [("a.wav", 1), ("b.wav", 2)] {
        write_wav(&input.join(name), &speech_like(16_000, 5.0, seed), 16_000, 1);
    }
    SubmitRequest {
        decode_concurrency: 1,
        detector: Some(detector),
        patience: Patience { budget, initial: Duration::from_millis(50), max_wait: Duration::from_millis(200) },
        ..submit_request(env, vec![input], 60.0)
    }
}

/// Starts `req` through `pool`; returns once its first recording is held by the gate.
async fn start_gated(
    env: &TestEnv,
    pool: sqlx::PgPool,
    req: SubmitRequest,
    entered: mpsc::Receiver<()>,
) -> tokio::task::JoinHandle<Result<scenequeue_scheduler::SubmitReport, SchedulerError>> {
    let (connection, publisher) = env.publisher().await;
    let task = tokio::spawn(async move {
        let report = submit(&pool, &publisher, &req).await;
        connection.close(200, "ok").await.ok();
        report
    });
    tokio::task::spawn_blocking(move || entered.recv()).await.unwrap().expect("the first recording reaches the gate");
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_waits_out_a_postgres_outage_and_completes() {
    let env = TestEnv::new().await;
    let proxy = Proxy::start(&env.services.database_url, true).await;
    let pool = db::connect(&proxy.url(&env.services.database_url), 4).await.unwrap();
    let (detector, entered, release) = gate();
    let req = gated_request(&env, detector, Duration::from_secs(120));
    let task = start_gated(&env, pool, req, entered).await;
    // Postgres goes away while the first recording is decoded, and comes back once the submission met it.
    proxy.down();
    release.send(()).unwrap();
    wait_until("the submission tried Postgres twice", || proxy.refused() >= 2).await;
    proxy.up();
    let report = task.await.unwrap().expect("the submission waits Postgres out");
    assert!(!report.interrupted && !report.resumed);
    assert_eq!(report.media.len(), 2);
    assert_eq!(db::batch_state(&env.pool, report.batch).await.unwrap(), Some(BatchState::Active));
    assert_eq!(env.count("SELECT count(*) FROM media WHERE batch_id = $1 AND state = 'split'", report.batch).await, 2);
    assert_eq!(jobs_in(&env, report.batch, JobState::Queued).await as usize, report.jobs);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_stops_once_postgres_stayed_away_too_long_and_the_same_command_resumes_it() {
    let env = TestEnv::new().await;
    let proxy = Proxy::start(&env.services.database_url, true).await;
    let pool = db::connect(&proxy.url(&env.services.database_url), 4).await.unwrap();
    let (detector, entered, release) = gate();
    let req = gated_request(&env, detector.clone(), Duration::from_secs(1));
    let task = start_gated(&env, pool, req.clone(), entered).await;
    proxy.down();
    release.send(()).unwrap();
    let err = task.await.unwrap().expect_err("Postgres stays away past the submission's patience");
    let SchedulerError::DatabaseLost { batch, .. } = &err else { panic!("{err}") };
    let message = err.to_string();
    assert!(message.contains(&format!("batch {batch} is interrupted")), "{message}");
    assert!(
        message.contains("Postgres stayed unreachable") && message.contains("run the same command again"),
        "{message}"
    );
    assert!(message.contains(&format!("--resume {batch}")), "{message}");
    assert_eq!(env.count("SELECT count(*) FROM media WHERE batch_id = $1", *batch).await, 0);

    // A minute later the stopped run's heartbeat is stale, so the same command takes the batch back.
    sqlx::query("UPDATE batches SET ingest_seen = now() - interval '2 minutes' WHERE id = $1")
        .bind(batch)
        .execute(&env.pool)
        .await
        .unwrap();
    let (connection, publisher) = env.publisher().await;
    let again = submit(&env.pool, &publisher, &req).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert!(again.resumed && again.batch == *batch);
    assert_eq!(again.media.len(), 2);
    assert_eq!(db::batch_state(&env.pool, *batch).await.unwrap(), Some(BatchState::Active));
    assert_eq!(env.count("SELECT count(*) FROM batches WHERE id <> $1", *batch).await, 0, "no second batch");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_starts_without_its_services_and_rides_out_their_outages() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("talk.wav"), &speech_like(48_000, 9.0, 7), 48_000, 1);
    let stored = submit_without_broker(&env.pool, &submit_request(&env, vec![input], 4.0), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((stored.published, jobs_in(&env, stored.batch, JobState::Pending).await as usize), (0, stored.jobs));

    let postgres = Proxy::start(&env.services.database_url, false).await;
    let rabbitmq = Proxy::start(&env.services.amqp_url, false).await;
    let mut child = cli(&env)
        .args(["scheduler", "--interval-s", "1"])
        .env("SCENEQUEUE_DATABASE_URL", postgres.url(&env.services.database_url))
        .env("SCENEQUEUE_AMQP_URL", rabbitmq.url(&env.services.amqp_url))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).ok();
        text
    });
    let child = Arc::new(Mutex::new(child));
    let running = || child.lock().unwrap().try_wait().unwrap().is_none();

    // Neither service answers: it keeps trying Postgres.
    wait_until("the scheduler tried Postgres twice", || postgres.refused() >= 2).await;
    assert!(running(), "the scheduler does not exit while Postgres is away");
    postgres.up();
    wait_until("the scheduler tried RabbitMQ twice", || rabbitmq.refused() >= 2).await;
    assert!(running(), "the scheduler does not exit while RabbitMQ is away");
    // The broker comes back as Postgres goes away: its passes fail and are tried again.
    let before = postgres.refused();
    postgres.down();
    rabbitmq.up();
    wait_until("two reaper passes met Postgres away", || postgres.refused() >= before + 2).await;
    assert!(running(), "a failed pass does not stop the scheduler");
    postgres.up();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (jobs_in(&env, stored.batch, JobState::Queued).await as usize) < stored.jobs {
        assert!(Instant::now() < deadline, "the scheduler did not publish the pending jobs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pid = child.lock().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.lock().unwrap().wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status}");
    let log = log.join().unwrap();
    for said in ["Postgres unreachable", "RabbitMQ unreachable", "reaper pass failed"] {
        assert!(log.contains(said), "the log says {said:?}:\n{log}");
    }
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_while_postgres_refuses_connections_waits_for_it() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let postgres = Proxy::start(&env.services.database_url, false).await;
    let services = Services { database_url: postgres.url(&env.services.database_url), ..env.services.clone() };
    let worker = tokio::spawn(scenequeue_worker::run(env.worker_config(), services, CancellationToken::new().into()));
    wait_until("the worker tried Postgres twice", || postgres.refused() >= 2).await;
    assert!(!worker.is_finished(), "the worker waits while Postgres refuses it");
    postgres.up();
    let report = worker.await.unwrap().expect("the worker runs once Postgres answers");
    assert_eq!(report.jobs_done as usize, job_ids(&env, batch).await.len());
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_while_postgres_has_no_connection_to_spare_waits_for_one() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    // The real server refuses every new connection to this database as saturated ("too many connections",
    // 53300), as it does when a farm's workers take every connection it has. One connection is kept to end it.
    let mut admin = PgConnection::connect(&env.services.database_url).await.unwrap();
    let superuser: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(
        !superuser,
        "a database's connection limit binds no superuser: run the tests as scripts/services.sh's role"
    );
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut admin).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} CONNECTION LIMIT 0")).execute(&mut admin).await.unwrap();
    // Through a forwarder, which counts the worker's tries.
    let postgres = Proxy::start(&env.services.database_url, true).await;
    let services = Services { database_url: postgres.url(&env.services.database_url), ..env.services.clone() };
    let worker = tokio::spawn(scenequeue_worker::run(env.worker_config(), services, CancellationToken::new().into()));
    wait_until("the worker was refused as saturated twice", || postgres.forwarded() >= 2).await;
    assert!(!worker.is_finished(), "the worker waits while Postgres has no connection to spare");
    sqlx::query(&format!("ALTER DATABASE {name} CONNECTION LIMIT -1")).execute(&mut admin).await.unwrap();
    admin.close().await.ok();
    let report = worker.await.unwrap().expect("the worker runs once a connection is free");
    assert_eq!(report.jobs_done as usize, job_ids(&env, batch).await.len());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_waits_for_a_broker_that_is_still_starting() {
    let env = TestEnv::new().await;
    let rabbitmq = Proxy::start(&env.services.amqp_url, false).await;
    // A queue of this test's own, declared by `migrate` once the broker answers.
    let queue = format!("{}.migrate", env.services.queue);
    let child = cli(&env)
        .arg("migrate")
        .env("SCENEQUEUE_AMQP_URL", rabbitmq.url(&env.services.amqp_url))
        .env("SCENEQUEUE_QUEUE", &queue)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = Arc::new(Mutex::new(child));
    wait_until("migrate tried RabbitMQ twice", || rabbitmq.refused() >= 2).await;
    assert!(child.lock().unwrap().try_wait().unwrap().is_none(), "migrate waits while the broker refuses it");
    rabbitmq.up();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = child.lock().unwrap();
        let mut said = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            std::io::Read::read_to_string(&mut stderr, &mut said).ok();
        }
        (child.wait().unwrap(), said)
    })
    .await
    .unwrap();
    assert!(out.0.success() && out.1.contains(&format!("queue {queue} declared")), "{}", out.1);
    let (connection, channel) = env.channel().await;
    let topology = scenequeue_core::mq::Topology::new(&queue);
    let depth = scenequeue_core::mq::queue_depth(&connection, &queue).await.expect("the queue exists");
    assert_eq!(depth.messages, 0);
    topology.delete(&channel).await.unwrap();
    connection.close(200, "ok").await.ok();
    env.cleanup().await;
}
