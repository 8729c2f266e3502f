//! Per-submission enhancement options on the real services and models: stored on the batch at submission,
//! applied by the worker over its own defaults, refused when out of range or not offered by the model.

use crate::common::{TestEnv, speech_like, submit_request, write_wav};
use scenequeue_audio::decode::read_span_mono;
use scenequeue_audio::dsp::loudness_lufs;
use scenequeue_audio::level::snr_db;
use scenequeue_core::ids::BatchId;
use scenequeue_core::options::BatchOptions;
use scenequeue_scheduler::SchedulerError;
use scenequeue_scheduler::{SubmitRequest, submit};
use tokio_util::sync::CancellationToken;

/// Every scene of `batch`: (source path, start, end, output path or None, error or None).
async fn scenes(env: &TestEnv, batch: BatchId) -> Vec<(String, f64, f64, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT m.path, s.start_s, s.end_s, r.output_path, s.error FROM scenes s JOIN media m ON m.id = s.media_id
         LEFT JOIN results r ON r.scene_id = s.id WHERE s.batch_id = $1 ORDER BY m.path, s.idx",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhancement_options_travel_with_the_batch_to_the_worker() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("talk.wav"), &speech_like(48_000, 8.0, 5), 48_000, 1);
    let (connection, publisher) = env.publisher().await;
    let request = |model: &str, options: BatchOptions| SubmitRequest {
        model: model.into(),
        skip_duplicates: false,
        options,
        ..submit_request(&env, vec![input.clone()], 60.0)
    };
    // A 1 dB attenuation limit keeps the output within 1 dB of the input wherever the model removes something.
    let limited = BatchOptions {
        atten_lim_db: Some(1.0),
        post_filter_beta: Some(0.02),
        highpass_hz: Some(0.0),
        loudness_lufs: None,
    };
    let loud = BatchOptions { loudness_lufs: Some(-20.0), highpass_hz: Some(0.0), ..BatchOptions::default() };
    let no_post_filter = BatchOptions { post_filter_beta: Some(0.02), ..BatchOptions::default() };
    let a = submit(&env.pool, &publisher, &request("deepfilternet3", limited)).await.unwrap().batch;
    let b = submit(&env.pool, &publisher, &request("deepfilternet3", loud)).await.unwrap().batch;
    let c = submit(&env.pool, &publisher, &request("nsnet2-48k", no_post_filter)).await.unwrap().batch;
    connection.close(200, "ok").await.ok();
    assert_eq!(BatchOptions::load(&env.pool, a).await.unwrap(), limited, "stored on the batch as submitted");
    assert_eq!(BatchOptions::load(&env.pool, b).await.unwrap(), loud);

    // The worker's own defaults: 70 Hz high-pass, no loudness normalisation, no limit.
    scenequeue_worker::run(env.worker_config(), env.services.clone(), CancellationToken::new().into()).await.unwrap();

    let (limited_scenes, loud_scenes) = (scenes(&env, a).await, scenes(&env, b).await);
    assert!(!limited_scenes.is_empty() && limited_scenes.len() == loud_scenes.len());
    for ((source, start, end, limited_out, _), (_, _, _, loud_out, _)) in limited_scenes.iter().zip(&loud_scenes) {
        let (x, _) = read_span_mono(std::path::Path::new(source), *start, *end).unwrap();
        let (y_limited, _) =
            read_span_mono(std::path::Path::new(limited_out.as_ref().unwrap()), 0.0, end - start).unwrap();
        let (y_loud, _) = read_span_mono(std::path::Path::new(loud_out.as_ref().unwrap()), 0.0, end - start).unwrap();
        // (1 - 10^(-1/20)) of the model's change is left: at least 13 dB from the input even if the model
        // removed everything; without a limit the model changes the noisy input far more.
        let (near, far) = (snr_db(&x, &y_limited), snr_db(&x, &y_loud));
        assert!(near >= 13.0, "attenuation limit of 1 dB applied: output {near:.1} dB from the input");
        assert!(far < near - 6.0, "no limit in the other batch: {far:.1} dB from the input against {near:.1}");
        if let Some(lufs) = loudness_lufs(&y_loud, 48_000) {
            assert!((lufs + 20.0).abs() < 0.5, "loudness of the batch: {lufs:.2} LUFS");
        }
    }
    // NSNet2 has no post-filter: every scene of that batch fails, saying so.
    for (_, _, _, output, error) in scenes(&env, c).await {
        assert!(output.is_none());
        let error = error.unwrap();
        assert!(error.contains("has no post-filter"), "{error}");
    }
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_out_of_range_are_refused_at_submission() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("talk.wav"), &speech_like(48_000, 3.0, 6), 48_000, 1);
    let (connection, publisher) = env.publisher().await;
    let options = BatchOptions { loudness_lufs: Some(6.0), ..BatchOptions::default() };
    let request = SubmitRequest { options, ..submit_request(&env, vec![input], 60.0) };
    let err = submit(&env.pool, &publisher, &request).await.unwrap_err();
    assert!(matches!(&err, SchedulerError::BadOptions(e) if e.contains("loudness")), "{err}");
    connection.close(200, "ok").await.ok();
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM batches").fetch_one(&env.pool).await.unwrap();
    assert_eq!(batches, 0, "nothing stored");
    env.cleanup().await;
}
