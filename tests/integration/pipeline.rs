//! The whole path on the real services: submit, publish, consume, enhance with the real model, record.

use crate::common::{TestEnv, job_ids, small_batch, speech_like, submit_request, write_wav};
use scenequeue_core::ids::{BatchId, JobId};
use scenequeue_core::states::{BatchState, JobState, MediaState, OutputFlag, SceneState};
use scenequeue_scheduler::{MediaOutcome, SubmitRequest, submit};
use scenequeue_worker::FaultPlan;
use scenequeue_worker::FixedWindows;
use tokio_util::sync::CancellationToken;

async fn drain(env: &TestEnv) -> scenequeue_worker::WorkerReport {
    scenequeue_worker::run(env.worker_config(), env.services.clone(), CancellationToken::new().into())
        .await
        .expect("worker runs until the queue is empty")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_is_enhanced_with_every_scene_accounted_for_once() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    write_wav(&input.join("a-48k-mono.wav"), &speech_like(48_000, 10.0, 1), 48_000, 1);
    write_wav(&input.join("nested/b-16k-stereo.wav"), &speech_like(16_000, 7.0, 2), 16_000, 2);
    write_wav(&input.join("c 44k1 (mono).wav"), &speech_like(44_100, 6.5, 3), 44_100, 1);
    std::fs::write(input.join("corrupt.wav"), b"RIFF\x10\x00\x00\x00WAVEjunk that is not audio").unwrap();
    std::fs::write(input.join("voice-memo.m4a"), b"not an mp4 at all").unwrap();
    std::fs::write(input.join("notes.txt"), b"ignored: not audio").unwrap();

    let (connection, publisher) = env.publisher().await;
    let report = submit(&env.pool, &publisher, &submit_request(&env, vec![input.clone()], 8.0)).await.expect("submit");
    connection.close(200, "ok").await.ok();
    let batch = report.batch;
    assert_eq!(report.media.len(), 5, "four audio files and the m4a; notes.txt is not picked up");
    assert!(report.jobs >= 2, "8 s budget over 23.5 s of audio needs several jobs, got {}", report.jobs);
    assert_eq!(report.published, report.jobs);

    let worker = drain(&env).await;
    assert_eq!(worker.jobs_done as usize, report.jobs);
    assert_eq!(worker.scenes_failed, 0);
    assert_eq!(worker.sessions_created as usize, report.jobs, "per-job policy: one session per job");

    bad_recordings_failed_naming_themselves(&env, batch).await;
    let scenes = every_scene_has_one_valid_output(&env, batch).await;
    assert_eq!(scenes, report.scenes);
    every_job_succeeded_first_time_and_the_batch_finished(&env, batch).await;
    let status = scenequeue_scheduler::status(&env.pool, Some(batch)).await.unwrap();
    assert_eq!(status.scenes, vec![("succeeded".to_string(), scenes as i64)]);
    assert_eq!(status.failed_media.len(), 2);
    env.cleanup().await;
}

/// Three recordings split; the corrupt WAV and the m4a failed with messages naming them.
async fn bad_recordings_failed_naming_themselves(env: &TestEnv, batch: BatchId) {
    let media: Vec<(String, MediaState, Option<String>)> =
        sqlx::query_as("SELECT path, state, error FROM media WHERE batch_id = $1 ORDER BY path")
            .bind(batch)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    for (path, state, error) in &media {
        if path.ends_with("corrupt.wav") {
            assert_eq!(*state, MediaState::Failed);
            let e = error.as_deref().unwrap();
            assert!(e.contains("corrupt.wav") && e.contains("not readable as audio"), "{e}");
        } else if path.ends_with(".m4a") {
            assert_eq!(*state, MediaState::Failed);
            let e = error.as_deref().unwrap();
            assert!(e.contains("voice-memo.m4a") && e.contains(".m4a is not a recognised audio container"), "{e}");
        } else {
            assert_eq!(*state, MediaState::Split, "{path}: {error:?}");
        }
    }
}

/// Every scene succeeded, with exactly one result and one distinct output file of the right length and a lower
/// level than its input; NSNet2 empties some of the synthetic bursts, and the checks flag those. Returns the
/// number of scenes.
async fn every_scene_has_one_valid_output(env: &TestEnv, batch: BatchId) -> usize {
    type Row = (SceneState, f64, f64, Option<String>, Option<f64>, Option<f64>, Option<f64>, Vec<OutputFlag>);
    let scenes: Vec<Row> = sqlx::query_as(
        "SELECT s.state, s.start_s, s.end_s, r.output_path, r.duration_s, r.rms_in_db, r.rms_out_db, r.flags
         FROM scenes s LEFT JOIN results r ON r.scene_id = s.id WHERE s.batch_id = $1",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(scenes.len() >= 6, "bursts every 3.2 s are separate scenes, got {}", scenes.len());
    assert_eq!(
        env.count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1", batch)
            .await as usize,
        scenes.len()
    );
    let mut outputs = std::collections::HashSet::new();
    for (state, start, end, output, duration, rms_in, rms_out, flags) in &scenes {
        assert_eq!(*state, SceneState::Succeeded);
        let output = output.as_deref().expect("a result row");
        assert!(outputs.insert(output.to_string()), "output path used twice: {output}");
        assert!(output.starts_with(env.dir.join("out").join(batch.to_string()).to_str().unwrap()));
        let reader = hound::WavReader::open(output).expect("output is a WAV");
        assert_eq!(reader.spec().sample_rate, 48_000);
        assert_eq!(reader.spec().channels, 1);
        let secs = reader.duration() as f64 / 48_000.0;
        assert!((secs - (end - start)).abs() < 0.001, "output {secs} s for a {} s scene", end - start);
        assert!((duration.unwrap() - secs).abs() < 1e-6);
        assert!(rms_out.unwrap() < rms_in.unwrap(), "enhancement removes energy: {rms_in:?} -> {rms_out:?}");
        assert!(flags.iter().all(|f| matches!(f, OutputFlag::SpeechCollapsed | OutputFlag::Silent)), "{flags:?}");
    }
    let clean = scenes.iter().filter(|s| s.7.is_empty()).count();
    assert!(clean * 2 > scenes.len(), "most scenes pass their checks: {clean} of {}", scenes.len());
    scenes.len()
}

/// Every job succeeded on its first attempt and the batch is finished.
async fn every_job_succeeded_first_time_and_the_batch_finished(env: &TestEnv, batch: BatchId) {
    let jobs: Vec<(JobState, i32)> = sqlx::query_as("SELECT state, attempts FROM jobs WHERE batch_id = $1")
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert!(jobs.iter().all(|&(s, a)| s == JobState::Succeeded && a == 1), "{jobs:?}");
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_deliveries_never_duplicate_work_or_results() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let jobs = job_ids(&env, batch).await;
    // Every job message twice, as after a publisher retry or a broker redelivery.
    let (connection, publisher) = env.publisher().await;
    publisher.publish_jobs(&jobs).await.unwrap();
    connection.close(200, "ok").await.ok();

    let worker = drain(&env).await;
    assert_eq!(worker.jobs_done as usize, jobs.len());
    assert_eq!(worker.duplicates as usize, jobs.len());
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM jobs WHERE batch_id = $1")
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert!(attempts.iter().all(|&a| a == 1), "{attempts:?}");
    let scenes = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await;
    let results = env
        .count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1", batch)
        .await;
    assert_eq!(results, scenes);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_vanished_worker_are_requeued_by_the_reaper() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let jobs = job_ids(&env, batch).await;
    // A worker took every job and died: its leases are expired and its messages are gone.
    let ghost = scenequeue_core::ids::WorkerId::new();
    for &job in &jobs {
        let lease = scenequeue_core::jobs::lease(&env.pool, job, ghost, std::time::Duration::ZERO).await.unwrap();
        assert!(matches!(lease, scenequeue_core::jobs::Lease::Granted { attempt: 1, .. }), "{lease:?}");
    }
    let (connection, channel) = env.channel().await;
    channel.queue_purge(&env.topology.queue, Default::default()).await.unwrap();

    let (pconn, publisher) = env.publisher().await;
    let reaped = scenequeue_scheduler::reap(&env.pool, &publisher, &pconn, &env.topology, 64).await.unwrap();
    assert_eq!(reaped.requeued, jobs.len());
    assert_eq!(reaped.published, jobs.len());
    pconn.close(200, "ok").await.ok();
    connection.close(200, "ok").await.ok();

    let worker = drain(&env).await;
    assert_eq!(worker.jobs_done as usize, jobs.len());
    let states: Vec<(JobState, i32)> = sqlx::query_as("SELECT state, attempts FROM jobs WHERE batch_id = $1")
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert!(states.iter().all(|&(s, a)| s == JobState::Succeeded && a == 2), "{states:?}");
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

/// The broker gives up on one message (as at its delivery limit): it leaves the job queue and lands in the
/// dead-letter queue. Done by hand, with a confirm, so the test does not race the broker's own routing. Returns
/// the message's job.
async fn dead_letter_one(env: &TestEnv) -> JobId {
    let (connection, channel) = env.channel().await;
    let message = channel.basic_get(&env.topology.queue, Default::default()).await.unwrap().expect("a message");
    let dead: scenequeue_core::mq::JobMessage = serde_json::from_slice(&message.delivery.data).unwrap();
    message.delivery.ack(Default::default()).await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    let confirm = channel
        .basic_publish(
            &env.topology.dead_letter_exchange,
            "",
            Default::default(),
            &message.delivery.data,
            Default::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    connection.close(200, "ok").await.ok();
    dead.job_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_job_is_buried_with_its_reason() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let jobs = job_ids(&env, batch).await;
    let dead = dead_letter_one(&env).await;
    // Every attempt of the job was used: a worker failed it three times, giving it back each time.
    let ghost = scenequeue_core::ids::WorkerId::new();
    for _ in 0..3 {
        let lease = scenequeue_core::jobs::lease(&env.pool, dead, ghost, std::time::Duration::from_secs(600)).await;
        let scenequeue_core::jobs::Lease::Granted { fence, .. } = lease.unwrap() else { panic!("not granted") };
        let error = "the model could not be loaded";
        scenequeue_core::jobs::release(&env.pool, &fence, error, std::time::Duration::ZERO, false).await.unwrap();
    }

    let (pconn, publisher) = env.publisher().await;
    let reaped = scenequeue_scheduler::reap(&env.pool, &publisher, &pconn, &env.topology, 64).await.unwrap();
    assert_eq!((reaped.dead_lettered, reaped.dead_buried, reaped.dead_requeued), (1, 1, 0));
    pconn.close(200, "ok").await.ok();

    let worker = drain(&env).await;
    assert_eq!(worker.jobs_done as usize, jobs.len() - 1);
    let (state, error): (JobState, Option<String>) =
        sqlx::query_as("SELECT state, error FROM jobs WHERE id = $1").bind(dead).fetch_one(&env.pool).await.unwrap();
    assert_eq!(state, JobState::Dead);
    let error = error.unwrap();
    assert!(error.contains("dead-lettered") && error.contains("last error: the model could not be loaded"), "{error}");
    let failed: Vec<String> = sqlx::query_scalar("SELECT error FROM scenes WHERE job_id = $1 AND state = 'failed'")
        .bind(dead)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert!(!failed.is_empty() && failed.iter().all(|e| e.contains("dead-lettered")), "{failed:?}");
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_job_with_attempts_left_is_published_again() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let jobs = job_ids(&env, batch).await;
    let dead = dead_letter_one(&env).await;

    let (pconn, publisher) = env.publisher().await;
    let reaped = scenequeue_scheduler::reap(&env.pool, &publisher, &pconn, &env.topology, 64).await.unwrap();
    assert_eq!((reaped.dead_lettered, reaped.dead_requeued, reaped.dead_buried), (1, 1, 0));
    assert_eq!(reaped.published, 1);
    pconn.close(200, "ok").await.ok();
    let (state, error, dead_letters): (JobState, Option<String>, i32) =
        sqlx::query_as("SELECT state, error, dead_letters FROM jobs WHERE id = $1")
            .bind(dead)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((state, dead_letters), (JobState::Queued, 1));
    assert!(error.unwrap().starts_with(scenequeue_core::requeue::DEAD_LETTER_NOTE));

    let worker = drain(&env).await;
    assert_eq!(worker.jobs_done as usize, jobs.len(), "the dead-lettered job ran too");
    let (state, error): (JobState, Option<String>) =
        sqlx::query_as("SELECT state, error FROM jobs WHERE id = $1").bind(dead).fetch_one(&env.pool).await.unwrap();
    assert_eq!((state, error), (JobState::Succeeded, None));
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consuming_worker_finishes_the_batch_and_notifies_waiters() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let shutdown = CancellationToken::new();
    let config = scenequeue_worker::WorkerConfig { drain: false, ..env.worker_config() };
    let worker = tokio::spawn(scenequeue_worker::run(config, env.services.clone(), shutdown.clone().into()));
    scenequeue_core::db::wait_for_batch(&env.pool, batch, std::time::Duration::from_secs(300))
        .await
        .expect("batch finishes");
    shutdown.cancel();
    let report = worker.await.unwrap().expect("worker stops cleanly");
    assert_eq!(report.jobs_done as usize, job_ids(&env, batch).await.len());
    let stopped: String =
        sqlx::query_scalar("SELECT state::text FROM workers").fetch_one(&env.pool).await.expect("one worker row");
    assert_eq!(stopped, "stopped");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_an_unknown_model_refuses_to_start_and_says_why() {
    let env = TestEnv::new().await;
    let config = scenequeue_worker::WorkerConfig { default_model: "no-such-model".into(), ..env.worker_config() };
    let err = scenequeue_worker::run(config, env.services.clone(), CancellationToken::new().into())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-model") && err.contains("nsnet2-48k"), "{err}");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_and_memory_telemetry_are_recorded() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    let config = scenequeue_worker::WorkerConfig {
        faults: scenequeue_worker::FaultPlan { oom_first_runs: 1, ..Default::default() },
        ..env.worker_config()
    };
    let report = scenequeue_worker::run(config, env.services.clone(), CancellationToken::new().into()).await.unwrap();
    assert_eq!((report.ooms, report.scenes_recovered), (1, 1));
    let recovered: Vec<(String, i32)> = sqlx::query_as(
        "SELECT r.recovery::text, r.oom_count FROM results r JOIN scenes s ON s.id = r.scene_id
         WHERE s.batch_id = $1 AND r.recovery <> 'none'",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(recovered, vec![("recreated".to_string(), 1)]);
    // On a CPU worker GPU figures are absent (NULL), resident memory is recorded for every job.
    let (rss, gpu, create_ms): (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT count(rss_after_mb), count(gpu_after_mb), count(session_create_ms) FROM jobs WHERE batch_id = $1",
    )
    .bind(batch)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let jobs = job_ids(&env, batch).await.len() as i64;
    assert_eq!((rss, gpu, create_ms), (Some(jobs), Some(0), Some(jobs)));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitting_the_same_recordings_again_does_not_duplicate_them() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("one.wav"), &speech_like(48_000, 5.0, 21), 48_000, 1);
    write_wav(&input.join("two.wav"), &speech_like(48_000, 6.0, 22), 48_000, 1);
    // The same bytes under another name, in the same submission.
    std::fs::copy(input.join("one.wav"), input.join("one-copy.wav")).unwrap();
    let (connection, publisher) = env.publisher().await;
    let first = submit(&env.pool, &publisher, &submit_request(&env, vec![input.clone()], 300.0)).await.unwrap();
    let outcome = |r: &scenequeue_scheduler::SubmitReport, name: &str| {
        r.media.iter().find(|m| m.path.ends_with(name)).map(|m| m.outcome.clone()).unwrap()
    };
    // Paths are taken in sorted order, so the copy comes first and is kept.
    assert!(matches!(outcome(&first, "one-copy.wav"), MediaOutcome::Split { .. }));
    assert_eq!(outcome(&first, "one.wav"), MediaOutcome::Duplicate { batch: first.batch });

    // Again, after "a crash", with one new recording: only the new one is planned.
    write_wav(&input.join("three.wav"), &speech_like(48_000, 4.0, 23), 48_000, 1);
    let second = submit(&env.pool, &publisher, &submit_request(&env, vec![input.clone()], 300.0)).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert_eq!(outcome(&second, "one.wav"), MediaOutcome::Duplicate { batch: first.batch });
    assert_eq!(outcome(&second, "two.wav"), MediaOutcome::Duplicate { batch: first.batch });
    assert!(matches!(outcome(&second, "three.wav"), MediaOutcome::Split { .. }));
    let media: i64 = sqlx::query_scalar("SELECT count(*) FROM media").fetch_one(&env.pool).await.unwrap();
    assert_eq!(media, 3, "one (as its copy), two, three: no duplicate rows");
    let hashes: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT content_hash) FROM media").fetch_one(&env.pool).await.unwrap();
    assert_eq!(hashes, 3);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scene_list_exports_every_scene_with_its_output() {
    let env = TestEnv::new().await;
    let batch = small_batch(&env).await;
    drain(&env).await;
    let list = scenequeue_scheduler::scene_list(&env.pool, batch).await.unwrap().expect("the batch exists");
    assert_eq!(list.recordings.len(), 1);
    let scenes = &list.recordings[0].scenes;
    let stored = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await as usize;
    assert_eq!(scenes.len(), stored);
    assert!(scenes.windows(2).all(|w| w[0].index < w[1].index && w[0].end_s <= w[1].start_s));
    assert!(
        scenes
            .iter()
            .all(|s| s.state == "succeeded" && s.output.as_deref().is_some_and(|o| std::path::Path::new(o).is_file()))
    );
    let json = serde_json::to_value(&list).unwrap();
    assert_eq!(json["recordings"][0]["scenes"][0]["index"], 0);
    assert!(scenequeue_scheduler::scene_list(&env.pool, BatchId::new()).await.unwrap().is_none());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_batch_is_not_starved_by_a_large_backlog() {
    let mut env = TestEnv::new().await;
    env.services.max_queued = 2;
    let (low_dir, high_dir) = (env.dir.join("backlog"), env.dir.join("urgent"));
    std::fs::create_dir_all(&low_dir).unwrap();
    std::fs::create_dir_all(&high_dir).unwrap();
    for i in 0..8 {
        write_wav(&low_dir.join(format!("old-{i}.wav")), &speech_like(16_000, 2.5, 100 + i), 16_000, 1);
    }
    write_wav(&high_dir.join("now.wav"), &speech_like(16_000, 2.5, 300), 16_000, 1);
    let (connection, publisher) = env.publisher().await;
    // One scene per job, so the backlog is eight jobs; only two may sit in the broker at a time.
    let low = SubmitRequest { max_queued: 2, priority: -10, ..submit_request(&env, vec![low_dir], 1.0) };
    let low = submit(&env.pool, &publisher, &low).await.unwrap();
    assert_eq!((low.jobs, low.published), (8, 2));
    let high = SubmitRequest { max_queued: 2, priority: 10, ..submit_request(&env, vec![high_dir], 1.0) };
    let high = submit(&env.pool, &publisher, &high).await.unwrap();
    assert_eq!((high.jobs, high.published), (1, 0), "the broker is full: the urgent job waits in Postgres");
    connection.close(200, "ok").await.ok();

    let worker = drain(&env).await;
    assert_eq!(worker.jobs_done, 9, "everything is done in the end");
    // Completion order: the urgent job runs as soon as a place frees, not after the backlog.
    let order: Vec<BatchId> =
        sqlx::query_scalar("SELECT batch_id FROM jobs ORDER BY finished_at").fetch_all(&env.pool).await.unwrap();
    let urgent_at = order.iter().position(|&b| b == high.batch).unwrap();
    assert!(urgent_at <= 2, "urgent job finished in place {urgent_at} of {}: {order:?}", order.len());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_reach_the_broker_gives_up_after_bounded_retries() {
    let env = TestEnv::new().await;
    // Nothing listens on port 1: every connection attempt is refused.
    let services = scenequeue_core::config::Services {
        amqp_url: "amqp://guest:guest@127.0.0.1:1/%2f".into(),
        ..env.services.clone()
    };
    let config = scenequeue_worker::WorkerConfig { max_reconnects: Some(1), ..env.worker_config() };
    let err = scenequeue_worker::run(config, services, CancellationToken::new().into()).await.unwrap_err().to_string();
    assert!(err.contains("giving up after 2 failed connections") && err.contains("127.0.0.1:1"), "{err}");
    let stopped: String = sqlx::query_scalar("SELECT state::text FROM workers").fetch_one(&env.pool).await.unwrap();
    assert_eq!(stopped, "stopped", "the worker row says it stopped");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_window_batches_enhance_a_job_to_flac_and_an_unreadable_scene_fails_alone() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (name, seconds, seed) in [("a.wav", 12.0, 1), ("b.wav", 7.0, 2), ("c.wav", 9.0, 3)] {
        write_wav(&input.join(name), &speech_like(48_000, seconds, seed), 48_000, 1);
    }
    let (connection, publisher) = env.publisher().await;
    let request = SubmitRequest { model: "deepfilternet3".into(), ..submit_request(&env, vec![input.clone()], 60.0) };
    let report = submit(&env.pool, &publisher, &request).await.expect("submit");
    connection.close(200, "ok").await.ok();
    assert_eq!(report.jobs, 1, "28 s of audio fits one 60 s job");
    // b.wav is damaged after it was cut into scenes: its scenes cannot be read when the worker gets to them.
    std::fs::write(input.join("b.wav"), b"RIFF\x10\x00\x00\x00WAVEdamaged").unwrap();

    let config = scenequeue_worker::WorkerConfig {
        fixed_windows: Some(FixedWindows { window_s: 4.0, overlap_s: 1.0, batch: 4 }),
        default_model: "deepfilternet3".into(),
        // The first model call runs out of memory: the batched call of the scene group.
        faults: FaultPlan { oom_first_runs: 1, ..FaultPlan::default() },
        output_format: scenequeue_audio::encode::OutputFormat::Flac,
        ..env.worker_config()
    };
    let worker = scenequeue_worker::run(config, env.services.clone(), CancellationToken::new().into()).await.unwrap();
    assert_eq!(worker.jobs_done, 1);

    let scenes: Vec<FixedWindowRow> = sqlx::query_as(
        "SELECT m.path, s.state, s.start_s, s.end_s, s.error, r.output_path FROM scenes s
         JOIN media m ON m.id = s.media_id LEFT JOIN results r ON r.scene_id = s.id WHERE s.batch_id = $1",
    )
    .bind(report.batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let damaged = scenes.iter().filter(|s| s.0.ends_with("b.wav")).count();
    assert!(damaged >= 1 && scenes.len() > damaged + 1, "{scenes:?}");
    assert_eq!(worker.scenes_failed as usize, damaged);
    assert_eq!(worker.scenes_succeeded as usize, scenes.len() - damaged);
    // All readable scenes were in the batch that failed (one group), and each was recovered on its own.
    assert_eq!(worker.scenes_recovered, worker.scenes_succeeded);
    assert_eq!(worker.ooms, 1, "the batch's error is counted once");
    damaged_scenes_failed_and_the_others_became_flac_of_their_length(&scenes);
    let states: Vec<JobState> = sqlx::query_scalar("SELECT state FROM jobs WHERE batch_id = $1")
        .bind(report.batch)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(states, vec![JobState::Succeeded]);
    env.cleanup().await;
}

type FixedWindowRow = (String, SceneState, f64, f64, Option<String>, Option<String>);

/// The damaged recording's scenes failed naming it; every other scene became a FLAC file of its length.
fn damaged_scenes_failed_and_the_others_became_flac_of_their_length(scenes: &[FixedWindowRow]) {
    for (path, state, start, end, error, output) in scenes {
        if path.ends_with("b.wav") {
            assert_eq!(*state, SceneState::Failed);
            let e = error.as_deref().unwrap();
            assert!(e.contains("b.wav"), "{e}");
            assert!(output.is_none());
        } else {
            assert_eq!(*state, SceneState::Succeeded, "{path}: {error:?}");
            let output = output.as_deref().unwrap();
            assert!(output.ends_with(".flac"), "{output}");
            let info = scenequeue_audio::decode::probe(std::path::Path::new(output)).unwrap();
            let secs = info.duration_s();
            assert!((secs - (end - start)).abs() < 0.001, "output {secs} s for a {} s scene", end - start);
        }
    }
}
