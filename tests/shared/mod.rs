//! What both test binaries (the integration tests and the chaos suite) use: every test gets its own Postgres
//! database and its own RabbitMQ queues on the real local services, removed again when it ends (also when it
//! fails: a drop guard), plus generated audio fixtures and where ONNX Runtime and the models are.

use scenequeue_core::config::Services;
use scenequeue_core::mq::{self, Topology};
use scenequeue_core::{db, ids::BatchId};
use sqlx::{Connection, PgPool};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The `scenequeue` binary pointed at `env`'s services, ONNX Runtime and models.
pub fn scenequeue(env: &TestEnv) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scenequeue"));
    cmd.env("SCENEQUEUE_DATABASE_URL", &env.services.database_url)
        .env("SCENEQUEUE_AMQP_URL", &env.services.amqp_url)
        .env("SCENEQUEUE_QUEUE", &env.services.queue)
        .env("SCENEQUEUE_ORT_LIBRARY", ort_library())
        .env("SCENEQUEUE_MODEL_DIR", model_dir());
    cmd
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn ort_library() -> PathBuf {
    std::env::var_os("SCENEQUEUE_ORT_LIBRARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".scenequeue/ort/libonnxruntime.so"))
}

pub fn model_dir() -> PathBuf {
    std::env::var_os("SCENEQUEUE_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("models"))
}

/// One test's services: its own database, queues and directory, removed when it is dropped.
pub struct TestEnv {
    pub services: Services,
    pub pool: PgPool,
    pub topology: Topology,
    pub dir: PathBuf,
    base_url: String,
    db_name: String,
}

impl TestEnv {
    pub async fn new() -> Self {
        let defaults = Services::default();
        let base_url = std::env::var("SCENEQUEUE_DATABASE_URL").unwrap_or(defaults.database_url);
        let amqp_url = std::env::var("SCENEQUEUE_AMQP_URL").unwrap_or(defaults.amqp_url);
        Self::on(base_url, amqp_url).await
    }

    /// A test's database and queues on the services at `base_url` (a host or a failover list) and `amqp_url` (a
    /// node or a cluster's list).
    pub async fn on(base_url: String, amqp_url: String) -> Self {
        let defaults = Services::default();
        let id = Uuid::new_v4().simple().to_string();
        let db_name = format!("sq_test_{id}");
        let mut admin = scenequeue_core::primary::connect_writable(&base_url)
            .await
            .expect("Postgres answers (run scripts/services.sh)");
        sqlx::query(&format!("CREATE DATABASE {db_name}")).execute(&mut admin).await.expect("create test database");
        admin.close().await.ok();
        let url = db::with_database(&base_url, &db_name);
        let pool = db::connect(&url, 8).await.expect("connect and migrate the test database");
        let queue = format!("scenequeue.test.{id}");
        let dir = std::env::temp_dir().join(&db_name);
        std::fs::create_dir_all(&dir).expect("test dir");
        let topology = Topology::new(&queue);
        let connection = mq::connect(&amqp_url).await.expect("RabbitMQ answers (run scripts/services.sh)");
        topology.declare(&connection.create_channel().await.expect("channel")).await.expect("declare topology");
        connection.close(200, "ok").await.ok();
        Self {
            services: Services { database_url: url, amqp_url, queue, ..defaults },
            pool,
            topology,
            dir,
            base_url,
            db_name,
        }
    }

    pub async fn count(&self, sql: &str, batch: BatchId) -> i64 {
        sqlx::query_scalar(sql).bind(batch).fetch_one(&self.pool).await.expect(sql)
    }

    /// Closes the pool, then the drop guard removes the database, the queues and the files of this test.
    pub async fn cleanup(self) {
        self.pool.close().await;
    }
}

impl Drop for TestEnv {
    /// Removes the test's database (closing its connections), queues and files, also when the test failed. Runs
    /// on a thread of its own with its own runtime, since a drop cannot await.
    fn drop(&mut self) {
        let (base_url, db_name) = (self.base_url.clone(), self.db_name.clone());
        let (amqp_url, topology, dir) = (self.services.amqp_url.clone(), self.topology.clone(), self.dir.clone());
        let cleanup = async move {
            if let Ok(mut admin) = scenequeue_core::primary::connect_writable(&base_url).await {
                let _ =
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).execute(&mut admin).await;
                let _ = admin.close().await;
            }
            if let Ok(connection) = mq::connect(&amqp_url).await {
                if let Ok(channel) = connection.create_channel().await {
                    let _ = topology.delete(&channel).await;
                }
                let _ = connection.close(200, "ok").await;
            }
        };
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                runtime.block_on(cleanup);
            }
        })
        .join();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A small deterministic noise source (xorshift), so fixtures are identical on every run.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// Voiced, syllable-modulated harmonic bursts (2-3 s) separated by pauses, with white noise throughout:
/// something the splitter cuts into scenes and an enhancer makes quieter between the bursts.
pub fn speech_like(sample_rate: u32, seconds: f64, seed: u64) -> Vec<f32> {
    let n = (seconds * f64::from(sample_rate)) as usize;
    let sr = sample_rate as f32;
    let mut noise = Noise::new(seed);
    (0..n)
        .map(|i| {
            let t = i as f32 / sr;
            let cycle = t % 3.2;
            let voiced = cycle > 0.3 && cycle < 2.7;
            let envelope = if voiced { (std::f32::consts::PI * 4.0 * t).sin().abs() * 0.8 + 0.2 } else { 0.0 };
            let f0 = 120.0 + 20.0 * (t * 0.7).sin();
            let harmonics: f32 =
                (1..8).map(|k| (2.0 * std::f32::consts::PI * f0 * k as f32 * t).sin() / k as f32).sum();
            0.25 * envelope * harmonics + 0.01 * noise.next()
        })
        .collect()
}

/// Writes interleaved samples (the same signal on every channel) as 16-bit PCM.
pub fn write_wav(path: &Path, samples: &[f32], sample_rate: u32, channels: u16) {
    let spec = hound::WavSpec { channels, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        for _ in 0..channels {
            w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16).expect("write sample");
        }
    }
    w.finalize().expect("finalize wav");
}

/// Runs a command that makes a fixture (sox, ffmpeg), failing the test with its error output.
pub fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test.sh installs sox and ffmpeg)"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}
