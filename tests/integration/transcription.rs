//! The Whisper stage on the real model (tiny.en, converted from the CTranslate2 weights by
//! `scripts/fetch-models.sh`): what it writes against the known text and against faster-whisper on the same
//! samples, its guards against invented text, and the farm's `--transcribe` end to end, a killed worker included.

use crate::common::{TestEnv, http, mix_at, root, speak, submit_request, write_wav};
use futures_util::FutureExt;
use scenequeue_core::ids::BatchId;
use scenequeue_core::options::AsrOptions;
use scenequeue_core::transcripts::{AsrInput, Transcript};
use scenequeue_core::wer::Tally;
use scenequeue_scheduler::transcripts::{Recording, per_recording};
use scenequeue_worker::asr::{Language, SAMPLE_RATE, Whisper};
use scenequeue_worker::{Device, Runtime};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MODEL: &str = "whisper-tiny.en";

/// Sentences no recogniser has seen in this order, without digits (which Whisper writes as numerals).
const SENTENCES: [&str; 6] = [
    "The committee will meet again on Thursday to discuss the new budget for the library.",
    "Please remember to close the windows before you leave the office tonight.",
    "A small dog ran across the field chasing a bright red ball.",
    "She painted the old fence green and planted roses along the garden path.",
    "He forgot his umbrella at the station and walked home in the heavy rain.",
    "The engineers tested the new pump for three days without a single fault.",
];

/// Silence of `total_s` seconds at `rate` with each sentence spoken at its offset; returns the audio and, per
/// sentence, where its speech starts (the first sample above -40 dBFS).
fn placed(dir: &Path, sentences: &[(f64, &str)], total_s: f64, rate: u32) -> (Vec<f32>, Vec<f64>) {
    let mut audio = vec![0f32; (total_s * f64::from(rate)) as usize];
    let mut onsets = Vec::new();
    for &(offset, text) in sentences {
        let speech = speak(dir, text, 160, rate);
        let first = speech.iter().position(|s| s.abs() > 0.01).expect("espeak spoke");
        let at = (offset * f64::from(rate)) as usize;
        for (slot, &s) in audio[at..].iter_mut().zip(&speech) {
            *slot += s * 0.5;
        }
        onsets.push(offset + first as f64 / f64::from(rate));
    }
    (audio, onsets)
}

fn whisper() -> Whisper {
    let runtime = Runtime::init(&crate::common::ort_library(), Device::Cpu, 2).unwrap();
    Whisper::load(&runtime, &crate::common::model_dir(), MODEL).expect("whisper-tiny.en (scripts/fetch-models.sh)")
}

/// faster-whisper's transcript of `wav` with the options the stage decodes with (`tests/support`).
fn faster_whisper(wav: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(root().join("tests/support/faster_whisper_ref.py"))
        .arg(root().join(".scenequeue/ct2").join(MODEL))
        .arg(wav)
        .env("PYTHONPATH", root().join(".scenequeue/faster-whisper"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "faster-whisper (scripts/fetch-asr-reference.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn read_16k(wav: &Path) -> Vec<f32> {
    let info = scenequeue_audio::decode::probe(wav).unwrap();
    let (x, rate) = scenequeue_audio::decode::read_span_mono(wav, 0.0, info.duration_s()).unwrap();
    assert_eq!(rate, SAMPLE_RATE);
    x
}

fn wer(reference: &str, hypothesis: &str) -> f64 {
    let mut t = Tally::default();
    t.add(reference, hypothesis);
    t.wer()
}

#[test]
fn tiny_en_writes_what_faster_whisper_writes_on_the_same_samples() {
    let dir = crate::common::TempDir::new("transcription", "agree");
    // Two 30 s windows' worth: the walk crosses from one to the next.
    let sentences: Vec<(f64, &str)> = SENTENCES.iter().enumerate().map(|(i, s)| (1.0 + 9.5 * i as f64, *s)).collect();
    let (clean, _) = placed(&dir.0, &sentences, 60.0, SAMPLE_RATE);
    let known = SENTENCES.join(" ");
    for snr in [20.0, 5.0] {
        let wav = dir.0.join(format!("noisy-{snr}.wav"));
        write_wav(&wav, &mix_at(&clean, snr, 11), SAMPLE_RATE, 1);
        let ours = whisper().transcribe(&read_16k(&wav), &Language::Auto).unwrap();
        let reference = faster_whisper(&wav);
        let theirs = reference["text"].as_str().unwrap();
        let (ours_wer, theirs_wer) = (wer(&known, &ours.text), wer(&known, theirs));
        println!("{snr} dB: WER {ours_wer:.1} % here, {theirs_wer:.1} % faster-whisper\n  {}\n  {theirs}", ours.text);
        assert!((ours_wer - theirs_wer).abs() <= 1.0, "{snr} dB: {ours_wer:.1} % against {theirs_wer:.1} %");
        assert!(wer(theirs, &ours.text) <= 1.0, "the two transcripts differ:\n{}\n{theirs}", ours.text);
        if snr == 20.0 {
            assert!(ours_wer < 20.0, "tiny.en on clear espeak speech: WER {ours_wer:.1} %");
        }
        assert_eq!(ours.language, "en");
        let segments = reference["segments"].as_array().unwrap();
        assert_eq!(ours.segments.len(), segments.len(), "segment count");
        for (a, b) in ours.segments.iter().zip(segments) {
            assert!((a.start - b["start"].as_f64().unwrap()).abs() < 0.021, "{a:?} against {b}");
            assert!((a.end - b["end"].as_f64().unwrap()).abs() < 0.021, "{a:?} against {b}");
        }
    }
}

#[test]
fn hiss_and_music_give_no_text() {
    let mut model = whisper();
    let mut noise = crate::common::Noise::new(3);
    let hiss: Vec<f32> = (0..SAMPLE_RATE * 20).map(|_| noise.next() * 3e-4).collect();
    // A tune: notes of half a second with their harmonics, decaying.
    let notes = [220.0f32, 277.2, 329.6, 440.0, 554.4, 659.3, 392.0, 493.9, 587.3];
    let rate = SAMPLE_RATE as f32;
    let tune: Vec<f32> = (0..SAMPLE_RATE * 20)
        .map(|i| {
            let t = (i % (SAMPLE_RATE / 2)) as f32 / rate;
            let f = notes[(i / (SAMPLE_RATE / 2)) as usize % notes.len()];
            let tone: f32 = (1..=3).map(|k| (2.0 * std::f32::consts::PI * f * k as f32 * t).sin() / k as f32).sum();
            0.2 * tone * (-3.0 * t).exp()
        })
        .collect();
    for (name, audio) in [("hiss", hiss), ("tune", tune), ("nothing", Vec::new())] {
        let t: Transcript = model.transcribe(&audio, &Language::Auto).unwrap();
        assert_eq!(t.text, "", "{name} gave text: {t:?}");
        assert!(t.segments.is_empty(), "{name}: {:?}", t.segments);
    }
}

#[test]
fn a_language_the_model_does_not_know_is_refused() {
    let err = whisper().transcribe(&[0.0; 16_000], &"de".parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("does not know language \"de\""), "{err}");
    assert!("english".parse::<Language>().is_err());
}

/// The batch's recordings with their cues, read back as `scenequeue transcripts` reads them.
async fn recordings(env: &TestEnv, batch: BatchId) -> Vec<Recording> {
    let mut out = Vec::new();
    per_recording(&env.pool, batch, |r| -> Result<(), sqlx::Error> {
        out.push(r);
        Ok(())
    })
    .await
    .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcribed_batch_has_its_words_where_they_are_said() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let sentences = [(4.0, SENTENCES[0]), (37.5, SENTENCES[2]), (71.0, SENTENCES[5])];
    let (audio, onsets) = placed(&env.dir, &sentences, 90.0, 48_000);
    write_wav(&input.join("lecture.wav"), &mix_at(&audio, 30.0, 5), 48_000, 1);
    write_wav(&input.join("untranscribed.wav"), &audio[..48_000 * 20], 48_000, 1);

    let (connection, publisher) = env.publisher().await;
    let mut request = submit_request(&env, vec![input.join("lecture.wav")], 30.0);
    request.asr = Some(AsrOptions { model: MODEL.into(), language: "en".into(), input: AsrInput::Enhanced });
    let batch = scenequeue_scheduler::submit(&env.pool, &publisher, &request).await.unwrap().batch;
    let plain = scenequeue_scheduler::submit(
        &env.pool,
        &publisher,
        &submit_request(&env, vec![input.join("untranscribed.wav")], 30.0),
    )
    .await
    .unwrap()
    .batch;
    connection.close(200, "ok").await.ok();
    scenequeue_worker::run(env.worker_config(), env.services.clone(), Default::default()).await.unwrap();

    let transcribed =
        env.count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1 AND r.transcript IS NOT NULL", batch).await;
    let scenes = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1 AND state = 'succeeded'", batch).await;
    assert_eq!(transcribed, scenes, "every scene of the transcribed batch has its transcript");
    assert!(scenes >= 3);
    let plain_rows = env.count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1 AND r.transcript IS NULL", plain).await;
    assert!(plain_rows >= 1 && plain_rows == env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", plain).await);
    assert_eq!(scenequeue_scheduler::transcripts::asked(&env.pool, plain).await.unwrap(), Some(false));

    let recordings = recordings(&env, batch).await;
    assert_eq!(recordings.len(), 1);
    let heard: Vec<_> = recordings[0].scenes.iter().map(|s| s.transcript.as_ref().and_then(|t| t.heard)).collect();
    assert!(heard.iter().all(|h| *h == Some(AsrInput::Enhanced)), "{heard:?}");
    let cues: Vec<_> = recordings[0].scenes.iter().flat_map(|s| s.cues()).collect();
    for (&(_, text), onset) in sentences.iter().zip(&onsets) {
        let cue = cues.iter().min_by(|a, b| (a.start - onset).abs().total_cmp(&(b.start - onset).abs())).expect("cues");
        println!("said at {onset:.2} s: cue {:.2}-{:.2} s {:?}", cue.start, cue.end, cue.text);
        assert!(
            (cue.start - onset).abs() <= 0.3,
            "{text:?} said at {onset:.2} s, its cue starts at {:.2} s",
            cue.start
        );
        let heard: String = cues
            .iter()
            .filter(|c| c.start >= cue.start - 0.01 && c.start < onset + 8.0)
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(wer(text, &heard) < 35.0, "{text:?} heard as {heard:?}");
    }
    let srt = scenequeue_core::transcripts::srt(&cues);
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    the_operator_s_view_shows_and_searches_the_text(&env, batch, plain).await;
    env.cleanup().await;
}

/// The API serves each scene's transcript and finds scenes by their words; the dashboard's scene page shows the
/// text and the batch page searches it (a batch without transcription offers no search).
async fn the_operator_s_view_shows_and_searches_the_text(env: &TestEnv, batch: BatchId, plain: BatchId) {
    let config = scenequeue_api::ApiConfig::new("127.0.0.1:0".parse().unwrap(), None, None).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(scenequeue_api::serve(env.pool.clone(), config, stop.clone(), Some(tx)));
    let addr = rx.await.unwrap();
    let found = http::get(addr, &format!("/api/v1/scenes?batch={batch}&text=COMMITTEE")).await.json();
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    let text = items[0]["transcript"]["text"].as_str().unwrap();
    assert!(text.to_lowercase().contains("committee"), "{text}");
    assert!(items[0]["transcript"]["segments"].as_array().is_some_and(|s| !s.is_empty()));
    let none = http::get(addr, &format!("/api/v1/scenes?batch={batch}&text=100%25_sure")).await.json();
    assert_eq!(none["items"].as_array().unwrap().len(), 0, "% and _ match themselves");
    let scene = items[0]["id"].as_str().unwrap();
    let page = http::get(addr, &format!("/scenes/{scene}")).await;
    assert!(page.body.contains("Transcript") && page.body.contains(text.split(' ').nth(1).unwrap()), "{}", page.body);
    let searched = http::get(addr, &format!("/batches/{batch}?q=committee")).await;
    assert!(searched.body.contains(&format!("/scenes/{scene}")) && searched.body.contains("search the transcripts"));
    let rows = searched.body.matches("href=\"/scenes/").count();
    assert_eq!(rows, 1, "only the scene that says it");
    assert!(!http::get(addr, &format!("/batches/{plain}")).await.body.contains("search the transcripts"));
    stop.cancel();
}

/// `scenequeue` with this test's services, logging warnings.
fn scenequeue(env: &TestEnv) -> Command {
    let mut cmd = crate::common::scenequeue(env);
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// Kills the child when dropped, so a failing test leaves no worker behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(env: &TestEnv, args: &[&str], log: PathBuf) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Child(scenequeue(env).args(args).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap())
}

/// Polls `check` until it holds or `limit` passes.
async fn until<F: std::future::Future<Output = bool>>(limit: Duration, what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_and_duplicates_no_transcript() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let sentences: Vec<(f64, &str)> = SENTENCES.iter().enumerate().map(|(i, s)| (0.5 + 7.0 * i as f64, *s)).collect();
    let (audio, _) = placed(&env.dir, &sentences, 43.0, 48_000);
    write_wav(&input.join("talk.wav"), &audio, 48_000, 1);
    let out = env.dir.join("out");
    let status = scenequeue(&env)
        .args(["submit", "--model", "nsnet2-48k", "--job-seconds", "600", "--transcribe", "--language", "en", "--out"])
        .arg(&out)
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success());
    let batch: BatchId = sqlx::query_scalar("SELECT id FROM batches").fetch_one(&env.pool).await.unwrap();
    let scenes = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await;
    assert!(scenes >= 4, "{scenes} scenes in one job");

    let worker = ["worker", "--model", "nsnet2-48k", "--threads", "1", "--lease-s", "4", "--retry-backoff-s", "1"];
    let mut first = spawn(&env, &worker, env.dir.join("first.log"));
    // Killed once it has recorded part of the job: the rest is mid-flight.
    let done =
        || env.count("SELECT count(*) FROM scenes WHERE batch_id = $1 AND state = 'succeeded'", batch).map(|n| n >= 1);
    until(Duration::from_secs(120), "a first scene recorded", done).await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let before = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1 AND state = 'succeeded'", batch).await;
    assert!(before < scenes, "killed mid-job ({before} of {scenes} recorded)");

    let _scheduler =
        spawn(&env, &["scheduler", "--interval-s", "1", "--lost-after-s", "5"], env.dir.join("scheduler.log"));
    let _second = spawn(&env, &worker, env.dir.join("second.log"));
    let finished = || async {
        scenequeue_core::db::batch_state(&env.pool, batch).await.unwrap()
            == Some(scenequeue_core::states::BatchState::Finished)
    };
    until(Duration::from_secs(180), "the batch finished", finished).await;

    let rows: Vec<(String, Option<sqlx::types::Json<Transcript>>, i32)> = sqlx::query_as(
        "SELECT r.output_path, r.transcript, r.attempt FROM results r JOIN scenes s ON s.id = r.scene_id
         WHERE s.batch_id = $1",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len() as i64, scenes, "one result per scene");
    assert!(rows.iter().all(|(_, t, _)| t.as_ref().is_some_and(|t| !t.text.is_empty())), "every scene transcribed");
    // `auto` (the default) heard both versions of each scene (of a scene whose enhanced output passed its checks)
    // and kept one.
    assert!(rows.iter().all(|(_, t, _)| t.as_ref().is_some_and(|t| t.heard.is_some())));
    assert!(rows.iter().any(|(_, t, _)| t.as_ref().is_some_and(|t| t.other_logprob.is_some())));
    assert!(rows.iter().any(|(_, _, attempt)| *attempt > 1), "the rest of the job ran again");
    let files = std::fs::read_dir(out.join(batch.to_string()))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .count();
    assert_eq!(files as i64, scenes, "one file per scene, no attempt file left");
    let mut heard = Tally::default();
    let said = SENTENCES.join(" ");
    let text: Vec<String> = {
        let mut rows: Vec<(f64, String)> = sqlx::query_as(
            "SELECT s.start_s, r.transcript->>'text' FROM results r JOIN scenes s ON s.id = r.scene_id
             WHERE s.batch_id = $1 ORDER BY s.start_s",
        )
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap();
        rows.drain(..).map(|(_, t)| t).collect()
    };
    heard.add(&said, &text.join(" "));
    assert!(heard.wer() < 35.0, "WER {:.1} %: {text:?}", heard.wer());
    env.cleanup().await;
}
