//! Every file accounted for, through `submit` and a worker on the real services: a tree mixing good recordings
//! with every kind of bad entry ends with each one enhanced or failed with its specific reason and a terminal
//! batch; interrupted submissions resume into the same batch; manifests map every output back to its source.

use crate::common::{Loud, TestEnv, speech_like, submit_request, write_wav};
use scenequeue_audio::vad::{SpeechDetector, SpeechStream};
use scenequeue_core::ids::BatchId;
use scenequeue_core::states::{BatchState, MediaState, OutputFlag, SceneState};
use scenequeue_scheduler::{Detector, MediaOutcome, SubmitRequest, manifest, submit, submit_until};
use scenequeue_worker::{OnBadOutput, WorkerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

async fn drain(env: &TestEnv, config: WorkerConfig) -> scenequeue_worker::WorkerReport {
    scenequeue_worker::run(config, env.services.clone(), CancellationToken::new().into()).await.expect("worker drains")
}

async fn media(env: &TestEnv, batch: BatchId) -> Vec<(String, MediaState, Option<String>)> {
    sqlx::query_as("SELECT path, state, error FROM media WHERE batch_id = $1 ORDER BY path")
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

fn write_float_wav_channels(path: &Path, interleaved: &[f32], sample_rate: u32, channels: u16) {
    let spec = hound::WavSpec { channels, sample_rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in interleaved {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn write_float_wav(path: &Path, samples: &[f32], sample_rate: u32) {
    write_float_wav_channels(path, samples, sample_rate, 1);
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success());
}

/// The reason stored for the entry whose path ends with `name`.
fn reason<'a>(rows: &'a [(String, MediaState, Option<String>)], name: &str) -> &'a str {
    let (path, state, error) = rows.iter().find(|(p, _, _)| p.ends_with(name)).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(*state, MediaState::Failed, "{path}");
    error.as_deref().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_of_bad_entries_never_stops_the_batch_and_every_file_is_accounted_for() {
    let env = TestEnv::new().await;
    let tree = env.dir.join("in");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    write_wav(&tree.join("good-1.wav"), &speech_like(48_000, 7.0, 1), 48_000, 1);
    write_wav(&tree.join("sub/good-2.wav"), &speech_like(16_000, 6.0, 2), 16_000, 2);
    std::os::unix::fs::symlink(tree.join("gone.wav"), tree.join("dangling.wav")).unwrap();
    mkfifo(&tree.join("pipe.wav"));
    std::fs::write(tree.join("empty.wav"), b"").unwrap();
    std::fs::write(tree.join("text.mp3"), b"this is not audio at all, just words").unwrap();
    write_wav(&tree.join("silent.wav"), &vec![0.0; 48_000 * 3], 48_000, 1);
    // A float recording with a hundred NaN samples: replaced at decoding, counted, never a silent scene.
    let mut nan = speech_like(48_000, 6.0, 4);
    for i in 0..100 {
        nan[48_000 + i * 37] = f32::NAN;
    }
    write_float_wav(&tree.join("nan.wav"), &nan, 48_000);
    // Two channels, the second the first inverted: they cancel when averaged.
    let voice = speech_like(48_000, 5.0, 6);
    let inverted: Vec<f32> = voice.iter().flat_map(|&s| [s, -s]).collect();
    write_float_wav_channels(&tree.join("inverted.wav"), &inverted, 48_000, 2);
    // A header that says 0 Hz.
    write_wav(&tree.join("zero-hz.wav"), &speech_like(16_000, 2.0, 7), 16_000, 1);
    let mut bytes = std::fs::read(tree.join("zero-hz.wav")).unwrap();
    bytes[24..28].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(tree.join("zero-hz.wav"), bytes).unwrap();
    // A link back to the tree's root is followed once, not for ever.
    std::os::unix::fs::symlink(&tree, tree.join("sub/loop")).unwrap();

    let (connection, publisher) = env.publisher().await;
    let request = submit_request(&env, vec![tree.clone()], 60.0);
    let report = submit(&env.pool, &publisher, &request).await.expect("submit");
    connection.close(200, "ok").await.ok();
    let split = report.media.iter().filter(|m| matches!(m.outcome, MediaOutcome::Split { .. })).count();
    assert_eq!(split, 3, "{:?}", report.media);
    assert!(!report.interrupted);
    // The counters a progress bar reads agree with the report.
    let progress = request.progress.snapshot();
    assert_eq!((progress.total, progress.examined, progress.refused), (10, 10, 7), "{progress:?}");
    assert_eq!(progress.scenes, report.scenes as u64);
    assert!((progress.audio_s - (7.0 + 6.0 + 6.0)).abs() < 0.1, "{progress:?}");

    let rows = media(&env, report.batch).await;
    assert_eq!(rows.len(), 10, "every entry has a row, the loop adds none: {rows:?}");
    assert!(reason(&rows, "dangling.wav").contains("dangling symbolic link"));
    assert!(reason(&rows, "pipe.wav").contains("FIFO"));
    assert!(reason(&rows, "empty.wav").contains("no audio") || reason(&rows, "empty.wav").contains("empty"));
    assert!(reason(&rows, "text.mp3").contains("text.mp3"));
    assert!(reason(&rows, "silent.wav").contains("silent"));
    let cancel = reason(&rows, "inverted.wav");
    assert!(cancel.contains("cancel when averaged") && !cancel.contains("silent"), "{cancel}");
    let zero = reason(&rows, "zero-hz.wav");
    assert!(zero.contains("zero-hz.wav") && (zero.contains("0 Hz") || zero.contains("crashed")), "{zero}");
    let warning: Option<String> =
        sqlx::query_scalar("SELECT warning FROM media WHERE batch_id = $1 AND path LIKE '%nan.wav'")
            .bind(report.batch)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(warning.as_deref().unwrap_or_default().starts_with("100 non-finite samples"), "{warning:?}");

    let worker = drain(&env, env.worker_config()).await;
    assert_eq!(worker.scenes_failed, 0);
    let done: i64 = env
        .count("SELECT count(*) FROM scenes s JOIN results r ON r.scene_id = s.id WHERE s.batch_id = $1", report.batch)
        .await;
    assert_eq!(done as usize, report.scenes, "every good scene has exactly one result");
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, report.batch).await.unwrap(), Some(BatchState::Finished));
    // The NaN recording's scenes are enhanced speech, not silence.
    let levels: Vec<f64> = sqlx::query_scalar(
        "SELECT r.rms_out_db FROM results r JOIN scenes s ON s.id = r.scene_id JOIN media m ON m.id = s.media_id
         WHERE m.batch_id = $1 AND m.path LIKE '%nan.wav'",
    )
    .bind(report.batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(!levels.is_empty() && levels.iter().all(|&db| db > -60.0), "{levels:?}");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_replaced_by_a_broken_one_after_submission_fails_alone_and_the_worker_goes_on() {
    let env = TestEnv::new().await;
    let tree = env.dir.join("in");
    std::fs::create_dir_all(&tree).unwrap();
    write_wav(&tree.join("a.wav"), &speech_like(48_000, 7.0, 1), 48_000, 1);
    write_wav(&tree.join("b.wav"), &speech_like(48_000, 7.0, 2), 48_000, 1);
    let (connection, publisher) = env.publisher().await;
    let report = submit(&env.pool, &publisher, &submit_request(&env, vec![tree.clone()], 60.0)).await.unwrap();
    connection.close(200, "ok").await.ok();
    // b.wav now says 0 Hz.
    let mut bytes = std::fs::read(tree.join("b.wav")).unwrap();
    bytes[24..28].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(tree.join("b.wav"), bytes).unwrap();
    let worker = drain(&env, env.worker_config()).await;
    assert!(worker.scenes_failed >= 1 && worker.scenes_succeeded >= 1, "{worker:?}");
    let failed: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.path, s.error FROM scenes s JOIN media m ON m.id = s.media_id
         WHERE s.batch_id = $1 AND s.state = 'failed'",
    )
    .bind(report.batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(failed.iter().all(|(path, error)| path.ends_with("b.wav") && error.contains("b.wav")), "{failed:?}");
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, report.batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_does_not_exist_is_an_error_before_anything_is_written() {
    let env = TestEnv::new().await;
    let (connection, publisher) = env.publisher().await;
    let missing = env.dir.join("no-such-dir");
    let err = submit(&env.pool, &publisher, &submit_request(&env, vec![missing], 60.0)).await.unwrap_err();
    connection.close(200, "ok").await.ok();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    assert_eq!(env.count("SELECT count(*) FROM batches WHERE id <> $1", BatchId::new()).await, 0);
    env.cleanup().await;
}

/// Cuts each recording into one scene, and stops the submission when the `stop_at`-th recording is examined.
struct StoppingDetector {
    calls: AtomicUsize,
    stop_at: usize,
    stop: CancellationToken,
}

impl SpeechDetector for StoppingDetector {
    fn sample_rate(&self) -> u32 {
        16_000
    }
    fn frame_s(&self) -> f64 {
        0.01
    }
    fn stream(&self) -> Box<dyn SpeechStream + '_> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.stop_at {
            self.stop.cancel();
        }
        Box::new(Loud)
    }
}

fn detector(stop_at: usize, stop: &CancellationToken) -> Detector {
    Detector(Arc::new(StoppingDetector { calls: AtomicUsize::new(0), stop_at, stop: stop.clone() }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_submission_is_completed_by_the_same_command_into_the_same_batch() {
    let env = TestEnv::new().await;
    let tree = env.dir.join("in");
    std::fs::create_dir_all(&tree).unwrap();
    for i in 0..4 {
        write_wav(&tree.join(format!("talk-{i}.wav")), &speech_like(16_000, 5.0, i + 1), 16_000, 1);
    }
    let request = |detector: Detector| SubmitRequest {
        decode_concurrency: 1,
        detector: Some(detector),
        ..submit_request(&env, vec![tree.clone()], 60.0)
    };
    let (connection, publisher) = env.publisher().await;
    // The first run is stopped while the third recording is examined: two are stored.
    let stop = CancellationToken::new();
    let first = submit_until(&env.pool, &publisher, &request(detector(3, &stop)), &stop).await.unwrap();
    assert!(first.interrupted);
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, first.batch).await.unwrap(), Some(BatchState::Interrupted));
    assert_eq!(media(&env, first.batch).await.len(), 2);

    // The same command again resumes that batch and reads only what it does not hold.
    let never = CancellationToken::new();
    let second = submit_until(&env.pool, &publisher, &request(detector(usize::MAX, &never)), &never).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert!(second.resumed && !second.interrupted);
    assert_eq!(second.batch, first.batch);
    assert_eq!(second.media.len(), 2, "only the two recordings not stored yet were read");
    let rows = media(&env, first.batch).await;
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|(_, state, _)| *state == MediaState::Split), "{rows:?}");
    assert_eq!(env.count("SELECT count(*) FROM batches WHERE id <> $1", first.batch).await, 0, "no second batch");

    drain(&env, env.worker_config()).await;
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, first.batch).await.unwrap(), Some(BatchState::Finished));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_stalled_and_was_taken_over_can_store_nothing_more() {
    use scenequeue_core::batches;
    let env = TestEnv::new().await;
    let tree = env.dir.join("in");
    std::fs::create_dir_all(&tree).unwrap();
    write_wav(&tree.join("a.wav"), &speech_like(16_000, 4.0, 1), 16_000, 1);
    let (first, second) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let batch = BatchId::new();
    let new = batches::NewBatch {
        id: batch,
        model: "nsnet2-48k",
        output_dir: "/tmp",
        priority: 0,
        submission_key: "k",
        options: Default::default(),
        owner: first,
        asr: None,
    };
    batches::create(&env.pool, &new).await.unwrap();
    assert!(batches::ingest_heartbeat(&env.pool, batch, first).await.unwrap());
    // The first run stalls past the limit; a second run of the same submission takes the batch over.
    sqlx::query("UPDATE batches SET ingest_seen = now() - interval '2 minutes' WHERE id = $1")
        .bind(batch)
        .execute(&env.pool)
        .await
        .unwrap();
    assert!(batches::resume(&env.pool, batch, second).await.unwrap());
    // The first run wakes up: its heartbeat, its chunks and its activation are all refused.
    assert!(!batches::ingest_heartbeat(&env.pool, batch, first).await.unwrap());
    let mut tx = env.pool.begin().await.unwrap();
    assert!(!batches::owns(&mut tx, batch, first).await.unwrap());
    tx.rollback().await.unwrap();
    assert!(!batches::activate(&env.pool, batch, first).await.unwrap());
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap(), Some(BatchState::Ingesting));
    assert!(batches::activate(&env.pool, batch, second).await.unwrap());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_another_submission_and_a_batch_that_is_not_interrupted() {
    let env = TestEnv::new().await;
    let tree = env.dir.join("in");
    std::fs::create_dir_all(&tree).unwrap();
    write_wav(&tree.join("a.wav"), &speech_like(16_000, 4.0, 1), 16_000, 1);
    let (connection, publisher) = env.publisher().await;
    let done = submit(&env.pool, &publisher, &submit_request(&env, vec![tree.clone()], 60.0)).await.unwrap();
    let again = SubmitRequest { resume: Some(done.batch), ..submit_request(&env, vec![tree.clone()], 60.0) };
    let err = submit(&env.pool, &publisher, &again).await.unwrap_err().to_string();
    assert!(err.contains("not interrupted"), "{err}");
    let other = SubmitRequest { resume: Some(done.batch), ..submit_request(&env, vec![tree.clone()], 30.0) };
    let err = submit(&env.pool, &publisher, &other).await.unwrap_err().to_string();
    assert!(err.contains("other recordings or settings"), "{err}");
    connection.close(200, "ok").await.ok();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_submission_is_marked_interrupted_by_the_scheduler() {
    let env = TestEnv::new().await;
    let tree = env.dir.join("in");
    std::fs::create_dir_all(&tree).unwrap();
    write_wav(&tree.join("a.wav"), &speech_like(16_000, 4.0, 1), 16_000, 1);
    let (connection, publisher) = env.publisher().await;
    let report = submit(&env.pool, &publisher, &submit_request(&env, vec![tree], 60.0)).await.unwrap();
    // As a submitter killed mid-way leaves it: still ingesting, heartbeat two minutes old.
    sqlx::query("UPDATE batches SET state = 'ingesting', ingest_seen = now() - interval '2 minutes' WHERE id = $1")
        .bind(report.batch)
        .execute(&env.pool)
        .await
        .unwrap();
    let reaped = scenequeue_scheduler::reap(&env.pool, &publisher, &connection, &env.topology, 64).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert_eq!(reaped.interrupted, 1);
    assert_eq!(scenequeue_core::db::batch_state(&env.pool, report.batch).await.unwrap(), Some(BatchState::Interrupted));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_map_every_enhanced_scene_back_to_its_source_and_bad_outputs_keep_the_original() {
    let env = TestEnv::new().await;
    let tree = env.dir.join("in");
    std::fs::create_dir_all(&tree).unwrap();
    write_wav(&tree.join("talk, with comma.wav"), &speech_like(48_000, 10.0, 5), 48_000, 1);
    write_wav(&tree.join("short.wav"), &speech_like(44_100, 6.5, 3), 44_100, 1);
    let (connection, publisher) = env.publisher().await;
    let report = submit(&env.pool, &publisher, &submit_request(&env, vec![tree.clone()], 60.0)).await.unwrap();
    connection.close(200, "ok").await.ok();
    // NSNet2 empties one of the synthetic bursts of short.wav: with `original`, that scene keeps its input.
    drain(&env, WorkerConfig { on_bad_output: OnBadOutput::Original, ..env.worker_config() }).await;

    let list = scenequeue_scheduler::scene_list(&env.pool, report.batch).await.unwrap().unwrap();
    let enhanced: Vec<_> = list.recordings.iter().flat_map(|r| r.scenes.iter().map(move |s| (r, s))).collect();
    assert!(enhanced.iter().all(|(_, s)| s.state == SceneState::Succeeded.as_str()));
    let jsonl = manifest::jsonl(&list).unwrap();
    let lines: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), enhanced.len());
    for (line, (recording, scene)) in lines.iter().zip(&enhanced) {
        let path = PathBuf::from(line["audio_filepath"].as_str().unwrap());
        assert_eq!(Some(path.to_str().unwrap()), scene.output.as_deref());
        assert_eq!(line["source"].as_str().unwrap(), recording.path);
        assert!((line["offset"].as_f64().unwrap() - scene.start_s).abs() < 1e-9);
        // The file's length is the scene's, and its audio is the source's span at that offset.
        let info = scenequeue_audio::decode::probe(&path).unwrap();
        assert!((info.duration_s() - line["duration"].as_f64().unwrap()).abs() < 0.001);
    }
    let csv = manifest::csv(&list);
    assert_eq!(csv.lines().count(), lines.len() + 1);
    assert!(csv.contains("\"") && csv.contains("talk, with comma.wav"), "a comma in a path is quoted");

    let original: Vec<_> = enhanced.iter().filter(|(_, s)| s.flags.iter().any(|f| f == "original")).collect();
    assert!(!original.is_empty(), "a scene whose speech band collapsed kept its original audio");
    for (_, scene) in &original {
        assert!(scene.flags.iter().any(|f| f == OutputFlag::SpeechCollapsed.as_str() || f == "silent"));
        assert_eq!(scene.speech_in_db, scene.speech_out_db);
    }
    let status = scenequeue_scheduler::status(&env.pool, Some(report.batch)).await.unwrap();
    assert_eq!(status.flagged_scenes.len(), original.len());
    env.cleanup().await;
}
