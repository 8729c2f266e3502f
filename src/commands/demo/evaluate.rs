//! The demo's evidence: for every enhanced scene, SNR against the clean reference before and after, and the
//! noise floor (10th percentile of 20 ms frame levels) before and after.

use scenequeue_audio::{decode, level};
use scenequeue_core::ids::BatchId;
use scenequeue_core::states::{MediaState, SceneState};
use scenequeue_worker::WorkerReport;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Default)]
struct Tally {
    scenes: usize,
    audio_s: f64,
    clean: f64,
    err_in: f64,
    err_out: f64,
    floor_in: f64,
    floor_out: f64,
    processing_ms: f64,
}

impl Tally {
    fn snr(clean: f64, err: f64) -> f64 {
        10.0 * (clean.max(1e-20) / err.max(1e-20)).log10()
    }

    fn add(&mut self, other: &Tally) {
        self.scenes += other.scenes;
        self.audio_s += other.audio_s;
        self.clean += other.clean;
        self.err_in += other.err_in;
        self.err_out += other.err_out;
        self.floor_in += other.floor_in;
        self.floor_out += other.floor_out;
        self.processing_ms += other.processing_ms;
    }

    fn row(&self, name: &str) -> String {
        let (snr_in, snr_out) = (Self::snr(self.clean, self.err_in), Self::snr(self.clean, self.err_out));
        let n = self.scenes.max(1) as f64;
        format!(
            "{name:<22} {:>6} {:>8.1} {:>9.1} {:>9.1} {:>+8.1} {:>10.1} {:>10.1}",
            self.scenes,
            self.audio_s,
            snr_in,
            snr_out,
            snr_out - snr_in,
            self.floor_in / n,
            self.floor_out / n
        )
    }
}

pub struct Summary {
    per_recording: BTreeMap<String, Tally>,
    failed: Vec<String>,
}

fn power_sums(clean: &[f32], x: &[f32]) -> (f64, f64) {
    let n = clean.len().min(x.len());
    let mut c = 0.0;
    let mut e = 0.0;
    for (&a, &b) in clean[..n].iter().zip(&x[..n]) {
        c += f64::from(a) * f64::from(a);
        e += f64::from(a - b) * f64::from(a - b);
    }
    (c, e)
}

pub async fn evaluate(pool: &PgPool, batch: BatchId, reference_dir: &Path) -> anyhow::Result<Summary> {
    let rows: Vec<(String, f64, f64, String, f64)> = sqlx::query_as(
        "SELECT m.path, s.start_s, s.end_s, r.output_path, r.processing_ms
         FROM results r JOIN scenes s ON s.id = r.scene_id JOIN media m ON m.id = s.media_id
         WHERE s.batch_id = $1 ORDER BY m.path, s.idx",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    let failed: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(error, 'unknown') FROM scenes WHERE batch_id = $1 AND state = $2
         UNION ALL SELECT coalesce(error, 'unknown') FROM media WHERE batch_id = $1 AND state = $3",
    )
    .bind(batch)
    .bind(SceneState::Failed)
    .bind(MediaState::Failed)
    .fetch_all(pool)
    .await?;
    let reference_dir = reference_dir.to_path_buf();
    let per_recording = tokio::task::spawn_blocking(move || measure(rows, &reference_dir)).await??;
    Ok(Summary { per_recording, failed })
}

fn measure(
    rows: Vec<(String, f64, f64, String, f64)>,
    reference_dir: &Path,
) -> anyhow::Result<BTreeMap<String, Tally>> {
    let mut per_recording: BTreeMap<String, Tally> = BTreeMap::new();
    for (source, start_s, end_s, output, processing_ms) in rows {
        let source = PathBuf::from(source);
        let name = source.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        let (noisy, _) = decode::read_span_mono(&source, start_s, end_s)?;
        let (clean, _) = decode::read_span_mono(&reference_dir.join(&name), start_s, end_s)?;
        let out_info = decode::probe(Path::new(&output))?;
        let (enhanced, _) = decode::read_span_mono(Path::new(&output), 0.0, out_info.duration_s())?;
        let (c, e_in) = power_sums(&clean, &noisy);
        let (_, e_out) = power_sums(&clean, &enhanced);
        let frame = 960;
        let t = per_recording.entry(name).or_default();
        t.add(&Tally {
            scenes: 1,
            audio_s: end_s - start_s,
            clean: c,
            err_in: e_in,
            err_out: e_out,
            floor_in: f64::from(level::noise_floor_db(&noisy, frame, 10.0)),
            floor_out: f64::from(level::noise_floor_db(&enhanced, frame, 10.0)),
            processing_ms,
        });
    }
    Ok(per_recording)
}

impl Summary {
    pub fn render(&self, worker: &WorkerReport, elapsed: Duration) -> String {
        let mut out = vec![
            format!(
                "{:<22} {:>6} {:>8} {:>9} {:>9} {:>8} {:>10} {:>10}",
                "recording", "scenes", "audio s", "SNR in", "SNR out", "gain", "floor in", "floor out"
            ),
            format!("{:<22} {:>6} {:>8} {:>9} {:>9} {:>8} {:>10} {:>10}", "", "", "", "dB", "dB", "dB", "dBFS", "dBFS"),
        ];
        let mut total = Tally::default();
        for (name, t) in &self.per_recording {
            out.push(t.row(name));
            total.add(t);
        }
        out.push(total.row("all"));
        let rtf = total.processing_ms / 1000.0 / total.audio_s.max(1e-9);
        out.push(String::new());
        out.push(format!(
            "{} jobs, {} scenes enhanced, {} failed; {} ONNX Runtime sessions created ({:.1} ms each on average); \
             worker time {:.2}x real time; whole demo {:.1} s",
            worker.jobs_done,
            worker.scenes_succeeded,
            self.failed.len(),
            worker.sessions_created,
            worker.session_create_time.as_secs_f64() * 1000.0 / worker.sessions_created.max(1) as f64,
            rtf,
            elapsed.as_secs_f64()
        ));
        for f in &self.failed {
            out.push(format!("failed: {f}"));
        }
        out.join("\n")
    }
}
