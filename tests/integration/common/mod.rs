//! Integration-test support on top of `shared`: worker settings, publishers and submissions for a test's own
//! services, scratch directories, the test doubles several suites use (a loudness speech detector, spoken
//! sentences), and the HTTP client and TCP forwarder of the API and outage tests.

pub mod http;
pub mod proxy;

pub use crate::shared::*;
use scenequeue_audio::decode::{probe, read_span_mono};
use scenequeue_audio::resample::resample;
use scenequeue_audio::vad::SpeechStream;
use scenequeue_core::ids::{BatchId, JobId};
use scenequeue_core::mq;
use scenequeue_worker::{ModelFiles, WorkerConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

/// ONNX Runtime and the models, where the test run found them.
pub fn model_files() -> ModelFiles {
    ModelFiles { ort_library: ort_library(), model_dir: model_dir() }
}

impl TestEnv {
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig { drain: true, ..WorkerConfig::new(model_files(), "nsnet2-48k") }
    }

    pub async fn publisher(&self) -> (lapin::Connection, mq::Publisher) {
        let connection = mq::connect(&self.services.amqp_url).await.expect("RabbitMQ");
        let publisher = mq::Publisher::new(&connection, &self.topology).await.expect("publisher");
        (connection, publisher)
    }

    pub async fn channel(&self) -> (lapin::Connection, lapin::Channel) {
        let connection = mq::connect(&self.services.amqp_url).await.expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        (connection, channel)
    }
}

/// A submission of `inputs` to this test's output directory with the default model and splitter.
pub fn submit_request(env: &TestEnv, inputs: Vec<PathBuf>, job_budget_s: f64) -> scenequeue_scheduler::SubmitRequest {
    scenequeue_scheduler::SubmitRequest {
        inputs,
        output_dir: env.dir.join("out"),
        model: "nsnet2-48k".into(),
        job_budget_s,
        decode_concurrency: 2,
        max_queued: env.services.max_queued,
        ..Default::default()
    }
}

/// One 9 s recording in jobs of 4 s: a few jobs of one scene each, submitted and published.
pub async fn small_batch(env: &TestEnv) -> BatchId {
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("talk.wav"), &speech_like(48_000, 9.0, 7), 48_000, 1);
    let (connection, publisher) = env.publisher().await;
    let report = scenequeue_scheduler::submit(&env.pool, &publisher, &submit_request(env, vec![input], 4.0))
        .await
        .expect("submit");
    connection.close(200, "ok").await.ok();
    assert!(report.jobs >= 3, "{} jobs", report.jobs);
    report.batch
}

/// The batch's jobs, by id.
pub async fn job_ids(env: &TestEnv, batch: BatchId) -> Vec<JobId> {
    sqlx::query_scalar("SELECT id FROM jobs WHERE batch_id = $1 ORDER BY id")
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

/// A scratch directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `sq-<suite>-<name>-<pid>` under the system's temporary directory.
    pub fn new(suite: &str, name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("sq-{suite}-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Cuts a recording into scenes where it is loud: a speech detector without a model.
pub struct Loud;

impl SpeechStream for Loud {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, String> {
        Ok(samples.chunks(160).map(|c| if c.iter().any(|s| s.abs() > 0.01) { 1.0 } else { 0.0 }).collect())
    }
    fn finish(&mut self) -> Result<Vec<f32>, String> {
        Ok(Vec::new())
    }
}

/// `text` spoken by espeak-ng (voice en-us, `words_per_minute`) into `dir/speech.wav`, read back mono at `rate` Hz.
pub fn speak(dir: &Path, text: &str, words_per_minute: u32, rate: u32) -> Vec<f32> {
    let path = dir.join("speech.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", &words_per_minute.to_string(), "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("espeak-ng is installed (scripts/test.sh installs it)");
    assert!(status.success(), "espeak-ng failed");
    let info = probe(&path).unwrap();
    let (x, sr) = read_span_mono(&path, 0.0, info.duration_s()).unwrap();
    resample(&x, sr, rate).unwrap()
}

/// `clean` with deterministic white noise (`seed`) added at `snr_db`.
pub fn mix_at(clean: &[f32], snr_db: f64, seed: u64) -> Vec<f32> {
    let mut noise = Noise::new(seed);
    let n: Vec<f32> = clean.iter().map(|_| noise.next()).collect();
    let p = |x: &[f32]| x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64;
    let g = (p(clean) / (p(&n) * 10f64.powf(snr_db / 10.0))).sqrt() as f32;
    clean.iter().zip(&n).map(|(&c, &v)| c + g * v).collect()
}
