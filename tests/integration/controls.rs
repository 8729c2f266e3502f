//! The kept counts per state and an operator's controls (pause, resume, cancel, priority, drain), through the
//! real pipeline on the real Postgres and RabbitMQ; the drain also on a real worker process.

use crate::common;
use crate::common::{TestEnv, small_batch, speech_like, submit_request, write_wav};
use scenequeue_core::ids::{BatchId, WorkerId};
use scenequeue_core::states::{BatchState, JobState, SceneState, WorkerState};
use scenequeue_core::workers::{self, WorkerInfo};
use scenequeue_core::{controls, counts, db, dispatch};
use scenequeue_scheduler::submit;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

async fn drain(env: &TestEnv) {
    scenequeue_worker::run(env.worker_config(), env.services.clone(), CancellationToken::new().into())
        .await
        .expect("worker runs until the queue is empty");
}

/// The kept counts of `batch` equal counts taken from the tables themselves, state by state, before and after
/// compaction.
async fn assert_counts_true(env: &TestEnv, batch: BatchId) {
    for _ in 0..2 {
        let kept = counts::read(&env.pool, Some(batch)).await.unwrap();
        for &state in JobState::ALL {
            let (n, audio): (i64, f64) = sqlx::query_as(
                "SELECT count(*), coalesce(sum(audio_s), 0)::float8 FROM jobs WHERE batch_id = $1 AND state = $2",
            )
            .bind(batch)
            .bind(state)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            let tally = kept.jobs_in(state);
            assert_eq!(tally.count, n, "jobs {state}");
            assert!((tally.audio_s - audio).abs() < 1e-6, "job audio {state}: {} vs {audio}", tally.audio_s);
        }
        for &state in SceneState::ALL {
            let (n, audio): (i64, f64) = sqlx::query_as(
                "SELECT count(*), coalesce(sum(end_s - start_s), 0)::float8 FROM scenes
                 WHERE batch_id = $1 AND state = $2",
            )
            .bind(batch)
            .bind(state)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            let tally = kept.scenes_in(state);
            assert_eq!(tally.count, n, "scenes {state}");
            assert!((tally.audio_s - audio).abs() < 1e-6, "scene audio {state}: {} vs {audio}", tally.audio_s);
        }
        // Failures per reason class, kept by the same kind of triggers.
        type Failures = Vec<(String, String, i64)>;
        let (kept, real): (Failures, Failures) = (
            sqlx::query_as(
                "SELECT kind, class, sum(n)::int8 FROM failure_counts WHERE batch_id = $1
                 GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2",
            )
            .bind(batch)
            .fetch_all(&env.pool)
            .await
            .unwrap(),
            sqlx::query_as(
                "SELECT * FROM (
                    SELECT 'job' AS kind, reason_class(error) AS class, count(*) FROM jobs
                    WHERE batch_id = $1 AND state = 'dead' GROUP BY 2
                    UNION ALL SELECT 'scene', reason_class(error), count(*) FROM scenes
                    WHERE batch_id = $1 AND state = 'failed' GROUP BY 2
                 ) f ORDER BY 1, 2",
            )
            .bind(batch)
            .fetch_all(&env.pool)
            .await
            .unwrap(),
        );
        assert_eq!(kept, real, "failures per reason class");
        counts::compact(&env.pool).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_counts_equal_real_counts_through_a_run_a_cancel_and_a_retry() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let queued = counts::read(&env.pool, Some(batch)).await.unwrap();
    assert!(queued.jobs_in(JobState::Queued).count >= 3, "{queued:?}");
    assert_counts_true(&env, batch).await;

    // Cancelled before any worker ran: every job is dead, every scene failed, the batch finished.
    let cancelled = controls::cancel(&env.pool, batch).await.unwrap().unwrap();
    assert_eq!(cancelled.jobs as i64, queued.jobs_in(JobState::Queued).count);
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    assert_counts_true(&env, batch).await;
    assert_eq!(
        counts::read(&env.pool, Some(batch)).await.unwrap().jobs_in(JobState::Dead).count,
        cancelled.jobs as i64
    );

    // Their messages are still in the broker: a worker finds the jobs dead and leaves them.
    drain(&env).await;
    assert_eq!(counts::read(&env.pool, Some(batch)).await.unwrap().scenes_in(SceneState::Succeeded).count, 0);

    // A retry runs them; a cancel paused the batch, so they wait until it is resumed.
    let (connection, publisher) = env.publisher().await;
    let report = scenequeue_scheduler::retry(&env.pool, Some(&publisher), batch.0, 64).await.unwrap();
    assert_eq!(report.reset.jobs, cancelled.jobs);
    assert_eq!(report.published, Some(0), "a paused batch is not dispatched");
    assert_counts_true(&env, batch).await;
    assert!(controls::set_paused(&env.pool, batch, false).await.unwrap());
    assert_eq!(dispatch::dispatch(&env.pool, &publisher, 64).await.unwrap() as u64, cancelled.jobs);
    connection.close(200, "ok").await.ok();
    drain(&env).await;
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    let done = counts::read(&env.pool, Some(batch)).await.unwrap();
    assert_eq!(done.scenes_in(SceneState::Succeeded).count, done.scenes_total().count);
    assert_counts_true(&env, batch).await;

    // Deleting a batch takes its counts with it.
    sqlx::query("DELETE FROM batches WHERE id = $1").bind(batch).execute(&env.pool).await.unwrap();
    counts::compact(&env.pool).await.unwrap();
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM job_counts) + (SELECT count(*) FROM scene_counts)
             + (SELECT count(*) FROM failure_counts)",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows, 0);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_and_drain_are_recorded_and_unknown_ids_refused() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    assert!(controls::set_priority(&env.pool, batch, 7).await.unwrap());
    let priority: i16 = sqlx::query_scalar("SELECT priority FROM batches WHERE id = $1")
        .bind(batch)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(priority, 7);
    let nobody = BatchId(uuid::Uuid::new_v4());
    assert!(!controls::set_priority(&env.pool, nobody, 1).await.unwrap());
    assert!(!controls::set_paused(&env.pool, nobody, true).await.unwrap());
    assert!(controls::cancel(&env.pool, nobody).await.unwrap().is_none());

    let worker = WorkerId::new();
    let info = WorkerInfo { id: worker, device: "cpu".into(), session_policy: "per-job".into(), gpu: None };
    workers::register(&env.pool, &info).await.unwrap();
    assert!(!workers::beat(&env.pool, worker, WorkerState::Idle, None, None).await.unwrap());
    assert!(controls::drain_worker(&env.pool, worker).await.unwrap());
    assert!(workers::beat(&env.pool, worker, WorkerState::Idle, None, None).await.unwrap(), "the beat sees the drain");
    assert!(!controls::drain_worker(&env.pool, WorkerId::new()).await.unwrap());
    env.cleanup().await;
}

/// Polls `probe` until it answers, failing with `what` after a minute.
async fn until<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_worker_process_finishes_its_job_takes_no_other_and_exits() {
    let env = TestEnv::new().await;
    // Eight recordings of 10 s, a job each.
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..8 {
        write_wav(&input.join(format!("talk-{i}.wav")), &speech_like(48_000, 10.0, 20 + i), 48_000, 1);
    }
    let (connection, publisher) = env.publisher().await;
    let report = submit(&env.pool, &publisher, &submit_request(&env, vec![input], 10.0)).await.unwrap();
    connection.close(200, "ok").await.ok();
    let batch = report.batch;
    assert_eq!(report.jobs, 8);

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scenequeue"))
        .args(["worker", "--model", "nsnet2-48k", "--threads", "1", "--lease-s", "3"])
        .env("SCENEQUEUE_DATABASE_URL", &env.services.database_url)
        .env("SCENEQUEUE_AMQP_URL", &env.services.amqp_url)
        .env("SCENEQUEUE_QUEUE", &env.services.queue)
        .env("SCENEQUEUE_ORT_LIBRARY", common::ort_library())
        .env("SCENEQUEUE_MODEL_DIR", common::model_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Once it is running a job, an operator drains it.
    let (worker, job): (uuid::Uuid, uuid::Uuid) = until("the worker runs a job", || async {
        sqlx::query_as(
            "SELECT w.id, w.current_job FROM workers w JOIN jobs j ON j.id = w.current_job
             WHERE j.batch_id = $1 AND w.state = 'busy'",
        )
        .bind(batch)
        .fetch_optional(&env.pool)
        .await
        .unwrap()
    })
    .await;
    assert!(controls::drain_worker(&env.pool, WorkerId(worker)).await.unwrap());

    // It stops by itself, successfully, with the job it held done and the rest left for others.
    let status = until("the drained worker exits", || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(status.success(), "{status:?}");
    let state: JobState =
        sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1").bind(job).fetch_one(&env.pool).await.unwrap();
    assert_eq!(state, JobState::Succeeded, "the job it held when drained");
    let (worker_state, current): (WorkerState, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT state, current_job FROM workers WHERE id = $1")
            .bind(worker)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((worker_state, current), (WorkerState::Stopped, None));
    let by_it = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND finished_by IS NOT NULL", batch).await;
    let leased = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND lease_owner IS NOT NULL", batch).await;
    assert!(by_it < 8, "a drained worker took every job ({by_it})");
    assert_eq!(leased, 0, "a drained worker leaves no lease behind");

    // Another worker finishes the batch: every scene once.
    drain(&env).await;
    assert_eq!(db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    assert_eq!(env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND state = 'succeeded'", batch).await, 8);
    let results = env
        .count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1", batch)
        .await;
    assert_eq!(results, env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await);
    env.cleanup().await;
}
