//! Faults a farm meets every week, on the real services and the real model: a worker that lost its lease, a
//! scene that hangs, a scene that crashes its process, an output directory that cannot be written, SIGTERM in
//! the middle of a job, and a job buried after all its scenes ended.

use crate::common;
use crate::common::{TestEnv, speech_like, submit_request, write_wav};
use scenequeue_core::ids::{BatchId, JobId, WorkerId};
use scenequeue_core::jobs::{self, Lease};
use scenequeue_core::results::{self, Measurements, RecordError, SceneResult};
use scenequeue_core::states::{BatchState, JobState, SceneState, WorkerState};
use scenequeue_core::{controls, scenes, workers};
use scenequeue_scheduler::submit;
use scenequeue_worker::{FaultPlan, Shutdown, WorkerConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Submits `recordings` (name, seconds) as one batch whose scenes all fit one job.
async fn one_job_batch(env: &TestEnv, recordings: &[(&str, f64)]) -> (BatchId, PathBuf) {
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (i, (name, seconds)) in recordings.iter().enumerate() {
        write_wav(&input.join(name), &speech_like(48_000, *seconds, 11 + i as u64), 48_000, 1);
    }
    let (connection, publisher) = env.publisher().await;
    let report = submit(&env.pool, &publisher, &submit_request(env, vec![input.clone()], 600.0)).await.expect("submit");
    connection.close(200, "ok").await.ok();
    assert_eq!(report.jobs, 1);
    (report.batch, input)
}

async fn the_job(env: &TestEnv, batch: BatchId) -> JobId {
    sqlx::query_scalar("SELECT id FROM jobs WHERE batch_id = $1").bind(batch).fetch_one(&env.pool).await.unwrap()
}

async fn scene_rows(env: &TestEnv, batch: BatchId) -> Vec<(String, SceneState, Option<String>)> {
    sqlx::query_as(
        "SELECT m.path, s.state, s.error FROM scenes s JOIN media m ON m.id = s.media_id
         WHERE s.batch_id = $1 ORDER BY m.path, s.idx",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// Polls `sql` (one boolean, bound to `id`) until it holds, failing after `limit`.
async fn wait_until(env: &TestEnv, sql: &str, id: uuid::Uuid, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let holds: bool = sqlx::query_scalar(sql).bind(id).fetch_one(&env.pool).await.unwrap();
        if holds {
            return;
        }
        assert!(Instant::now() < deadline, "still false after {limit:?}: {sql}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replaces a recording with a FIFO nobody writes to: opening it blocks, like a read from a stale mount.
fn make_hang(path: &Path) {
    std::fs::remove_file(path).unwrap();
    common::run(std::process::Command::new("mkfifo").arg(path));
}

/// Lets a reader blocked on the FIFO go (it reads nothing), so no thread outlives the test.
fn release_hang(path: &Path) {
    let path = path.to_path_buf();
    std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(path)));
}

fn worker(env: &TestEnv) -> WorkerConfig {
    WorkerConfig {
        watchdog_floor: Duration::from_secs(2),
        health_check: Duration::from_millis(500),
        ..env.worker_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lease_can_write_nothing() {
    let env = TestEnv::new().await;
    let (batch, _) = one_job_batch(&env, &[("talk.wav", 4.0)]).await;
    let job = the_job(&env, batch).await;
    let scene: scenequeue_core::ids::SceneId = sqlx::query_scalar("SELECT id FROM scenes WHERE job_id = $1 LIMIT 1")
        .bind(job)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    // A takes the job, stalls past its lease, and B takes it over.
    let (a, b) = (WorkerId::new(), WorkerId::new());
    let Lease::Granted { fence: old, .. } = jobs::lease(&env.pool, job, a, Duration::ZERO).await.unwrap() else {
        panic!("A gets the lease")
    };
    let Lease::Granted { fence: new, attempt: 2, .. } =
        jobs::lease(&env.pool, job, b, Duration::from_secs(60)).await.unwrap()
    else {
        panic!("B takes over the expired lease")
    };
    assert_ne!(old.token, new.token);

    // Every write of A is refused (its heartbeat extends no lease); its attempt's file is removed, the final file
    // never appears.
    let busy = (WorkerState::Busy, Some(job), None);
    assert!(
        !workers::beat_holding(&env.pool, a, busy, Some((&old, Duration::from_secs(60)))).await.unwrap().lease_held
    );
    assert!(scenes::start_attempt(&env.pool, &old).await.unwrap().is_none());
    assert!(!scenes::mark_failed(&env.pool, &old, scene, "late").await.unwrap());
    let final_path = env.dir.join("scene.wav");
    let attempt_file = env.dir.join(format!("scene.{}.wav", old.short()));
    std::fs::write(&attempt_file, b"late").unwrap();
    let late = result_row(scene, job, a, &final_path);
    assert!(!results::record_successes(&env.pool, &old, &[(late, attempt_file.clone())]).await.unwrap());
    assert!(!attempt_file.exists() && !final_path.exists());
    assert!(!jobs::release(&env.pool, &old, "late", Duration::ZERO, false).await.unwrap());
    assert!(!jobs::hand_back(&env.pool, &old, "late", 5).await.unwrap());
    assert!(!jobs::complete(&env.pool, &old, None).await.unwrap());
    assert_eq!(scene_state(&env, scene).await, SceneState::Pending, "A changed nothing");

    // B's writes land, and its file is moved into place.
    let work = scenes::start_attempt(&env.pool, &new).await.unwrap().expect("B's lease holds");
    assert_eq!(work.attempt, 2);
    assert!(work.scenes.iter().any(|s| s.id == scene), "the scene is left to do");
    assert_eq!(scene_state(&env, scene).await, SceneState::Running);
    let attempt_file = env.dir.join(format!("scene.{}.wav", new.short()));
    std::fs::write(&attempt_file, b"audio").unwrap();
    let recorded = [(result_row(scene, job, b, &final_path), attempt_file.clone())];
    assert!(results::record_successes(&env.pool, &new, &recorded).await.unwrap());
    assert!(final_path.exists() && !attempt_file.exists());
    assert_eq!(scene_state(&env, scene).await, SceneState::Succeeded);
    let writer: WorkerId = sqlx::query_scalar("SELECT worker_id FROM results WHERE scene_id = $1")
        .bind(scene)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(writer, b);
    env.cleanup().await;
}

fn result_row(scene: scenequeue_core::ids::SceneId, job: JobId, worker: WorkerId, path: &Path) -> SceneResult {
    SceneResult {
        scene,
        job,
        worker,
        attempt: 1,
        output_path: path.to_string_lossy().into_owned(),
        measured: Measurements {
            sample_rate: 48_000,
            duration_s: 1.0,
            rms_in_db: -20.0,
            rms_out_db: -20.0,
            processing_ms: 1.0,
            recovery: Default::default(),
            oom_count: 0,
            gpu_mem_mb: None,
            flags: vec![],
            speech_in_db: -20.0,
            speech_out_db: -20.0,
            transcript: None,
        },
    }
}

/// Seconds until the job's lease expires (negative once expired; None without a lease).
async fn lease_left_s(env: &TestEnv, job: JobId) -> Option<f64> {
    sqlx::query_scalar("SELECT extract(epoch FROM lease_expires - now())::float8 FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_extends_the_lease_it_holds_and_no_other() {
    let env = TestEnv::new().await;
    let (batch, _) = one_job_batch(&env, &[("talk.wav", 4.0)]).await;
    let job = the_job(&env, batch).await;
    let (a, b) = (WorkerId::new(), WorkerId::new());
    for id in [a, b] {
        let info = workers::WorkerInfo { id, device: "cpu".into(), session_policy: "per-job".into(), gpu: None };
        workers::register(&env.pool, &info).await.unwrap();
    }
    let Lease::Granted { fence, .. } = jobs::lease(&env.pool, job, a, Duration::from_secs(5)).await.unwrap() else {
        panic!("A gets the lease")
    };
    assert!(lease_left_s(&env, job).await.unwrap() <= 5.0);
    let busy = (WorkerState::Busy, Some(job), None);

    // A's beat extends its lease to the TTL it gives, in the same statement as its row.
    let beat = workers::beat_holding(&env.pool, a, busy, Some((&fence, Duration::from_secs(600)))).await.unwrap();
    assert!(beat.lease_held && !beat.drain_requested);
    assert!(lease_left_s(&env, job).await.unwrap() > 500.0, "extended to about 600 s");

    // B beating with a token that is not the lease's extends nothing.
    let forged = scenequeue_core::fence::Fence { job, token: uuid::Uuid::new_v4() };
    let beat = workers::beat_holding(&env.pool, b, busy, Some((&forged, Duration::from_secs(6000)))).await.unwrap();
    assert!(!beat.lease_held);
    assert!(lease_left_s(&env, job).await.unwrap() < 700.0, "B did not extend A's lease");

    // Without a lease the beat says so, and carries an operator's drain request.
    assert!(controls::drain_worker(&env.pool, a).await.unwrap());
    let beat = workers::beat_holding(&env.pool, a, (WorkerState::Idle, None, None), None).await.unwrap();
    assert!(!beat.lease_held && beat.drain_requested);

    // Once the job is released, A's old lease is gone: its beat finds nothing to extend.
    assert!(jobs::release(&env.pool, &fence, "test", Duration::ZERO, false).await.unwrap());
    let beat = workers::beat_holding(&env.pool, a, busy, Some((&fence, Duration::from_secs(600)))).await.unwrap();
    assert!(!beat.lease_held);
    assert_eq!(lease_left_s(&env, job).await, None);
    env.cleanup().await;
}

/// A tmpfs of `size` mounted at `dir` for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        common::run(
            std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir),
        );
        Self(dir.to_path_buf())
    }

    fn read_only(&self) {
        common::run(std::process::Command::new("mount").args(["-o", "remount,ro"]).arg(&self.0));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_whose_file_cannot_be_moved_is_a_disk_failure_and_records_nothing() {
    let env = TestEnv::new().await;
    let (batch, _) = one_job_batch(&env, &[("talk.wav", 4.0)]).await;
    let job = the_job(&env, batch).await;
    let Lease::Granted { fence, .. } =
        jobs::lease(&env.pool, job, WorkerId::new(), Duration::from_secs(60)).await.unwrap()
    else {
        panic!("the lease")
    };
    let work = scenes::start_attempt(&env.pool, &fence).await.unwrap().expect("the lease holds");
    let scene = work.scenes[0].id;
    // The attempt's file was written; then the output disk turned read-only.
    let disk = Tmpfs::mount(&env.dir.join("disk"), "1m");
    let attempt_file = disk.0.join(format!("scene.{}.wav", fence.short()));
    std::fs::write(&attempt_file, b"audio").unwrap();
    disk.read_only();
    let row = result_row(scene, job, WorkerId::new(), &disk.0.join("scene.wav"));
    let recorded = results::record_successes(&env.pool, &fence, &[(row, attempt_file)]).await;
    match recorded {
        Err(RecordError::Move { source, .. }) => assert_eq!(source.raw_os_error(), Some(30), "EROFS: {source}"),
        other => panic!("a disk failure, not {other:?}"),
    }
    assert_eq!(scene_state(&env, scene).await, SceneState::Running, "nothing recorded");
    let results: i64 = env
        .count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1", batch)
        .await;
    assert_eq!(results, 0);
    drop(disk);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_output_disk_makes_the_worker_unhealthy_and_hands_the_job_back() {
    let env = TestEnv::new().await;
    let (batch, _) = one_job_batch(&env, &[("talk.wav", 6.0)]).await;
    let job = the_job(&env, batch).await;
    // The batch's output directory is a small disk (room for the scene's output once it is empty), filled to the
    // last byte before the worker starts.
    let disk = Tmpfs::mount(&env.dir.join("out"), "2m");
    let filler = disk.0.join("filler");
    let mut chunk = 0u64;
    while std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&filler)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &[0u8; 4096]))
        .is_ok()
    {
        chunk += 1;
        assert!(chunk < 1_000, "a 2 MiB disk fills up");
    }
    let shutdown = Shutdown::default();
    let config = WorkerConfig { drain: false, ..worker(&env) };
    let running = tokio::spawn(scenequeue_worker::run(config, env.services.clone(), shutdown.clone()));

    wait_until(
        &env,
        "SELECT handbacks >= 1 AND attempts = 0 AND error LIKE '%unhealthy%' FROM jobs WHERE id = $1",
        job.0,
        Duration::from_secs(60),
    )
    .await;
    wait_until(
        &env,
        "SELECT bool_or(state = 'unhealthy' AND health LIKE '%No space left%') FROM workers WHERE $1::uuid IS NOT NULL",
        job.0,
        Duration::from_secs(30),
    )
    .await;
    assert!(
        scene_rows(&env, batch).await.iter().all(|(_, s, _)| *s != SceneState::Failed),
        "no scene was failed for the disk's fault"
    );

    // Space again: the self-check passes and the job is done, without having spent an attempt on the disk.
    std::fs::remove_file(&filler).unwrap();
    wait_until(&env, "SELECT state = 'finished' FROM batches WHERE id = $1", batch.0, Duration::from_secs(60)).await;
    shutdown.stop.cancel();
    let report = running.await.unwrap().unwrap();
    assert_eq!(report.jobs_done, 1);
    assert!(scene_rows(&env, batch).await.iter().all(|(_, s, _)| *s == SceneState::Succeeded));
    drop(disk);
    env.cleanup().await;
}

async fn scene_state(env: &TestEnv, scene: scenequeue_core::ids::SceneId) -> SceneState {
    sqlx::query_scalar("SELECT state FROM scenes WHERE id = $1").bind(scene).fetch_one(&env.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_attempt_removes_what_a_killed_worker_wrote_and_never_recorded() {
    let env = TestEnv::new().await;
    let (batch, _) = one_job_batch(&env, &[("talk.wav", 4.0)]).await;
    let job = the_job(&env, batch).await;
    let (media, idx, output_dir): (uuid::Uuid, i32, String) = sqlx::query_as(
        "SELECT s.media_id, s.idx, b.output_dir FROM scenes s JOIN batches b ON b.id = s.batch_id
         WHERE s.job_id = $1 ORDER BY s.idx LIMIT 1",
    )
    .bind(job)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    // A worker took the job, wrote a scene under its attempt's name, a half-written one, and was killed.
    let Lease::Granted { fence, .. } = jobs::lease(&env.pool, job, WorkerId::new(), Duration::ZERO).await.unwrap()
    else {
        panic!("the lease")
    };
    let media = media.simple().to_string();
    let dir = Path::new(&output_dir).join(batch.to_string()).join(format!("talk-{}", &media[media.len() - 12..]));
    std::fs::create_dir_all(&dir).unwrap();
    let left = [
        dir.join(format!("scene-{idx:05}.{}.wav", fence.short())),
        dir.join(format!("scene-{idx:05}.{}.wav.partial", fence.short())),
    ];
    for file in &left {
        std::fs::write(file, b"unrecorded").unwrap();
    }
    // Its lease ran out; the next worker takes the job over.
    let report = scenequeue_worker::run(worker(&env), env.services.clone(), Shutdown::default()).await.unwrap();
    assert_eq!(report.jobs_done, 1);
    for file in &left {
        assert!(!file.exists(), "{} was removed", file.display());
    }
    let final_path: String = sqlx::query_scalar(
        "SELECT r.output_path FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.job_id = $1 AND s.idx = $2",
    )
    .bind(job)
    .bind(idx)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(Path::new(&final_path).parent(), Some(dir.as_path()), "the test put the files where the worker writes");
    assert!(Path::new(&final_path).exists());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_scene_is_failed_by_the_watchdog_and_the_job_goes_on() {
    let env = TestEnv::new().await;
    let (batch, input) = one_job_batch(&env, &[("a-talk.wav", 6.0), ("b-stuck.wav", 3.0), ("c-talk.wav", 6.0)]).await;
    make_hang(&input.join("b-stuck.wav"));
    let report = scenequeue_worker::run(worker(&env), env.services.clone(), Shutdown::default()).await.unwrap();
    release_hang(&input.join("b-stuck.wav"));

    let rows = scene_rows(&env, batch).await;
    for (path, state, error) in &rows {
        if path.ends_with("b-stuck.wav") {
            let error = error.as_deref().unwrap_or_default();
            assert_eq!(*state, SceneState::Failed, "{path}");
            assert!(error.contains("no progress") || error.contains("not tried"), "{error}");
        } else {
            assert_eq!(*state, SceneState::Succeeded, "{path}: {error:?}");
        }
    }
    assert!(rows.iter().any(|(_, _, e)| e.as_deref().is_some_and(|e| e.contains("no progress for"))));
    assert_eq!(report.jobs_done, 1);
    let (state, attempts): (JobState, i32) = sqlx::query_as("SELECT state, attempts FROM jobs WHERE batch_id = $1")
        .bind(batch)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!((state, attempts), (JobState::Succeeded, 1), "the hang cost no attempt");
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_crashed_twice_runs_alone_and_only_the_crashing_scene_fails() {
    let env = TestEnv::new().await;
    let (batch, _) = one_job_batch(&env, &[("a-talk.wav", 6.0), ("b-poison.wav", 3.0), ("c-talk.wav", 4.0)]).await;
    // Two workers died on this job already (their leases expired).
    sqlx::query("UPDATE jobs SET crashes = 2 WHERE batch_id = $1").bind(batch).execute(&env.pool).await.unwrap();
    let config = WorkerConfig {
        // The poison scene aborts whatever process runs it; this test's own process would die with it.
        faults: FaultPlan { abort_on_source: Some("b-poison".into()), ..FaultPlan::default() },
        child_program: Some(env!("CARGO_BIN_EXE_scenequeue").into()),
        ..worker(&env)
    };
    let report = scenequeue_worker::run(config, env.services.clone(), Shutdown::default()).await.unwrap();

    let rows = scene_rows(&env, batch).await;
    for (path, state, error) in &rows {
        if path.ends_with("b-poison.wav") {
            let error = error.as_deref().unwrap_or_default();
            assert_eq!(*state, SceneState::Failed);
            assert!(error.contains("killed its inference process twice") && error.contains("SIGABRT"), "{error}");
        } else {
            assert_eq!(*state, SceneState::Succeeded, "{path}: {error:?}");
        }
    }
    assert_eq!(report.jobs_done, 1);
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_output_makes_the_worker_unhealthy_until_it_is_fixed() {
    let env = TestEnv::new().await;
    let (batch, _) = one_job_batch(&env, &[("talk.wav", 6.0)]).await;
    let job = the_job(&env, batch).await;
    // The output mount went missing: a file stands where the batch's directory must be made.
    let blocked = env.dir.join("out").join(batch.to_string());
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    std::fs::write(&blocked, b"not a directory").unwrap();
    let shutdown = Shutdown::default();
    let config = WorkerConfig { drain: false, ..worker(&env) };
    let running = tokio::spawn(scenequeue_worker::run(config, env.services.clone(), shutdown.clone()));

    wait_until(
        &env,
        "SELECT handbacks = 1 AND state = 'queued' AND attempts = 0 FROM jobs WHERE id = $1",
        job.0,
        Duration::from_secs(60),
    )
    .await;
    wait_until(
        &env,
        "SELECT bool_or(state = 'unhealthy' AND health LIKE '%not writable%') FROM workers WHERE $1::uuid IS NOT NULL",
        job.0,
        Duration::from_secs(30),
    )
    .await;
    let scene_states: Vec<SceneState> =
        sqlx::query_scalar("SELECT state FROM scenes WHERE job_id = $1").bind(job).fetch_all(&env.pool).await.unwrap();
    assert!(
        scene_states.iter().all(|s| *s == SceneState::Pending),
        "no scene was failed for the worker's fault: {scene_states:?}"
    );

    std::fs::remove_file(&blocked).unwrap();
    wait_until(&env, "SELECT state = 'finished' FROM batches WHERE id = $1", batch.0, Duration::from_secs(60)).await;
    shutdown.stop.cancel();
    let report = running.await.unwrap().unwrap();
    assert_eq!(report.jobs_done, 1);
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM jobs WHERE id = $1").bind(job).fetch_one(&env.pool).await.unwrap();
    assert_eq!(attempts, 1, "the hand-back spent no attempt");
    assert!(scene_rows(&env, batch).await.iter().all(|(_, s, _)| *s == SceneState::Succeeded));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_job_hands_the_job_back_after_the_grace_period() {
    let env = TestEnv::new().await;
    let (batch, input) = one_job_batch(&env, &[("a-stuck.wav", 3.0), ("b-talk.wav", 4.0)]).await;
    let job = the_job(&env, batch).await;
    make_hang(&input.join("a-stuck.wav"));
    let shutdown = Shutdown::default();
    let config = WorkerConfig {
        drain: false,
        grace: Duration::from_secs(1),
        watchdog_floor: Duration::from_secs(600),
        ..env.worker_config()
    };
    let running = tokio::spawn(scenequeue_worker::run(config, env.services.clone(), shutdown.clone()));
    wait_until(&env, "SELECT state = 'running' FROM jobs WHERE id = $1", job.0, Duration::from_secs(60)).await;
    shutdown.stop.cancel();
    let report = running.await.unwrap().expect("the worker exits cleanly");
    release_hang(&input.join("a-stuck.wav"));

    assert_eq!(report.jobs_done, 0);
    let (state, attempts, error): (JobState, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, error FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((state, attempts), (JobState::Queued, 0), "{error:?}");
    let worker_state: WorkerState =
        sqlx::query_scalar("SELECT state FROM workers LIMIT 1").fetch_one(&env.pool).await.unwrap();
    assert_eq!(worker_state, WorkerState::Stopped);
    let (connection, channel) = env.channel().await;
    let queue = channel
        .queue_declare(
            &env.topology.queue,
            lapin::options::QueueDeclareOptions { passive: true, ..Default::default() },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(queue.message_count(), 1, "the message went back to the queue");
    connection.close(200, "ok").await.ok();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_scenes_all_ended_is_not_buried_dead() {
    let env = TestEnv::new().await;
    let (batch, _) = one_job_batch(&env, &[("talk.wav", 4.0)]).await;
    let job = the_job(&env, batch).await;
    let Lease::Granted { fence, .. } = jobs::lease(&env.pool, job, WorkerId::new(), Duration::ZERO).await.unwrap()
    else {
        panic!("lease")
    };
    let ids: Vec<scenequeue_core::ids::SceneId> =
        sqlx::query_scalar("SELECT id FROM scenes WHERE job_id = $1").bind(job).fetch_all(&env.pool).await.unwrap();
    for id in &ids {
        assert!(scenes::mark_failed(&env.pool, &fence, *id, "unreadable span").await.unwrap());
    }
    sqlx::query("UPDATE batches SET state = 'active' WHERE id = $1").bind(batch).execute(&env.pool).await.unwrap();
    assert_eq!(jobs::bury_expired_on_last_attempt(&env.pool).await.unwrap(), 0, "attempts are left");
    jobs::bury(&env.pool, job, "lease expired on the last attempt").await.unwrap();
    let state: JobState =
        sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1").bind(job).fetch_one(&env.pool).await.unwrap();
    assert_eq!(state, JobState::Succeeded, "every scene ended: the job is not dead");
    let errors: Vec<String> =
        sqlx::query_scalar("SELECT error FROM scenes WHERE job_id = $1").bind(job).fetch_all(&env.pool).await.unwrap();
    assert!(errors.iter().all(|e| e == "unreadable span"), "the scenes keep their own causes: {errors:?}");
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_ending_at_the_same_moment_finish_their_batch() {
    let env = TestEnv::new().await;
    let batch = common::small_batch(&env).await;
    let jobs = common::job_ids(&env, batch).await;
    // Every job leased and its scenes ended, then all completed at once, each on its own task and connection:
    // whichever commits last must see the others (the batch row is locked by each) and finish the batch.
    let mut fences = Vec::new();
    for &job in &jobs {
        let Lease::Granted { fence, .. } =
            jobs::lease(&env.pool, job, WorkerId::new(), Duration::from_secs(60)).await.unwrap()
        else {
            panic!("lease")
        };
        let ids: Vec<scenequeue_core::ids::SceneId> =
            sqlx::query_scalar("SELECT id FROM scenes WHERE job_id = $1").bind(job).fetch_all(&env.pool).await.unwrap();
        for id in ids {
            assert!(scenes::mark_failed(&env.pool, &fence, id, "unreadable span").await.unwrap());
        }
        fences.push(fence);
    }
    let ends = fences.into_iter().map(|fence| {
        let pool = env.pool.clone();
        tokio::spawn(async move { jobs::complete(&pool, &fence, None).await })
    });
    let completed = futures_util::future::join_all(ends).await;
    assert!(completed.into_iter().all(|c| c.unwrap().unwrap()));
    assert_eq!(
        scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(),
        Some(BatchState::Finished),
        "the last of {} jobs to commit saw the others and finished the batch",
        jobs.len()
    );
    env.cleanup().await;
}
