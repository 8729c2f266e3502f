//! Real-time factor of each model adapter on this machine, at each thread count, with the time split between
//! ONNX Runtime and the adapter's own DSP; DeepFilterNet3 also in fixed-shape window batches (the worker's
//! `--fixed-windows`); and the official DeepFilterNet runtime (libdeepfilter.so, through
//! tests/support/deepfilter_reference.py) on the same audio, against which every DeepFilterNet3 output is
//! compared (signal-to-difference ratio: equal quality means a high agreement).

use crate::synth::speech_like;
use anyhow::Context;
use scenequeue_audio::decode;
use scenequeue_audio::level::snr_db;
use scenequeue_audio::resample::resample;
use scenequeue_worker::FixedWindows;
use scenequeue_worker::testing::model::{self, Enhancer};
use scenequeue_worker::{Device, Runtime, RuntimeOptions};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The official runtime's output lags its input by this many samples.
const OFFICIAL_DELAY: usize = 1440;
const DFN3: &str = "deepfilternet3";

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    files: crate::ModelFiles,
    #[arg(long, default_value = "deepfilternet3,nsnet2-48k,nsnet2-16k")]
    models: String,
    #[arg(long, default_value = "1,2")]
    threads: String,
    /// Seconds of audio per measurement.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// DeepFilterNet3 fixed-window settings to measure, as WINDOW_S:OVERLAP_S:BATCH, comma-separated.
    #[arg(long, default_value = "10:2:8,20:2:4,30:2:2")]
    fixed: String,
    /// A recording, or a directory of WAV files (e.g. the demo's `demo-out/input`), to measure on: its first
    /// --seconds, repeated if shorter. Synthetic speech-like audio when not given. Agreement figures mean more on real speech: a recurrent model's output on synthetic tones
    /// diverges from run to run far more than on speech.
    #[arg(long)]
    input: Option<PathBuf>,
    /// The official runtime, for comparison (skipped when missing).
    #[arg(long, default_value = ".scenequeue/deepfilter/libdeepfilter.so")]
    libdeepfilter: PathBuf,
}

/// A recording, or the WAV files of a directory one after the other, at 48 kHz.
fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<f32>> {
    let mut files = vec![path.to_path_buf()];
    if path.is_dir() {
        files = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .filter(|p| p.as_ref().map_or(true, |p| p.extension().is_some_and(|x| x == "wav")))
            .collect::<Result<_, _>>()?;
        files.sort();
    }
    let mut out = Vec::new();
    for file in files {
        let info = decode::probe(&file)?;
        let (x, rate) = decode::read_span_mono(&file, 0.0, info.duration_s())?;
        out.extend(resample(&x, rate, 48_000)?);
    }
    Ok(out)
}

/// The official runtime on `audio`: its output and the seconds it took.
fn official(args: &Args, audio: &[f32]) -> anyhow::Result<(Vec<f32>, f64)> {
    let dir = std::env::temp_dir().join(format!("sq-bench-adapters-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (input, output) = (dir.join("in.f32"), dir.join("out.f32"));
    std::fs::write(&input, audio.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    let out = Command::new("python3")
        .arg("tests/support/deepfilter_reference.py")
        .arg(&args.libdeepfilter)
        .arg(args.files.model_dir.join("deepfilternet3/DeepFilterNet3_onnx.tar.gz"))
        .arg(&input)
        .arg(&output)
        .output()
        .context("running the official runtime")?;
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().context("official runtime's timing")?;
    let samples =
        std::fs::read(&output)?.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    std::fs::remove_dir_all(dir).ok();
    Ok((samples, secs))
}

/// Agreement of `ours` with the official output, in dB, away from the first and last 0.1 s (None when too short).
fn agreement(official: &[f32], ours: &[f32]) -> Option<f64> {
    let edge = 4800;
    let n = official.len().min(ours.len() + OFFICIAL_DELAY).checked_sub(OFFICIAL_DELAY).filter(|&n| n > 2 * edge)?;
    Some(f64::from(snr_db(&official[edge + OFFICIAL_DELAY..n + OFFICIAL_DELAY - edge], &ours[edge..n - edge])))
}

struct Row<'a> {
    name: &'a str,
    mode: String,
    threads: usize,
    seconds: f64,
    total: f64,
    ort: f64,
    agreement: Option<f64>,
    with_whole: Option<f64>,
}

fn print(row: &Row) {
    let db = |v: Option<f64>| v.map_or("-".to_string(), |a| format!("{a:.1} dB"));
    println!(
        "| {} | {} | {} | {:.1} | {:.4} | {:.0} % | {:.0} % | {} | {} |",
        row.name,
        row.mode,
        row.threads,
        row.seconds / row.total,
        row.total / row.seconds,
        100.0 * row.ort / row.total,
        100.0 * (row.total - row.ort) / row.total,
        db(row.agreement),
        db(row.with_whole)
    );
}

/// Times `f` on `enhancer`: (output, wall seconds, ONNX Runtime seconds).
fn timed(
    enhancer: &mut Box<dyn Enhancer>,
    f: impl FnOnce(&mut Box<dyn Enhancer>) -> anyhow::Result<Vec<f32>>,
) -> anyhow::Result<(Vec<f32>, f64, f64)> {
    let ort_before = enhancer.runtime_time();
    let started = Instant::now();
    let y = f(enhancer)?;
    let total = started.elapsed().as_secs_f64();
    Ok((y, total, (enhancer.runtime_time() - ort_before).as_secs_f64()))
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let audio48 = match &args.input {
        None => speech_like(48_000, args.seconds, 3),
        Some(path) => {
            let x = read_input(path)?;
            anyhow::ensure!(!x.is_empty(), "{}: no audio", path.display());
            x.iter().copied().cycle().take((args.seconds * 48_000.0) as usize).collect()
        }
    };
    let fixed: Vec<FixedWindows> = args
        .fixed
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let reference = if args.libdeepfilter.is_file() { Some(official(args, &audio48)?) } else { None };
    println!(
        "| model | mode | threads | x real time | RTF | ONNX Runtime share | DSP share | agreement with libdeepfilter \
         | agreement with whole clip |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for threads in args.threads.split(',').map(|t| t.trim().parse::<usize>()) {
        let threads = threads.context("--threads takes comma-separated numbers")?;
        let runtime = Runtime::with_options(RuntimeOptions::new(args.files.ort_library.clone(), Device::Cpu, threads))?;
        for name in args.models.split(',').map(str::trim) {
            let mut enhancer = model::load(&runtime, &args.files.model_dir, name)?;
            let rate = enhancer.sample_rate();
            let x = resample(&audio48, 48_000, rate)?;
            enhancer.enhance(&x[..rate as usize])?;
            let compare = |y: &[f32]| reference.as_ref().filter(|_| name == DFN3).and_then(|(r, _)| agreement(r, y));
            let report = |mode: String, (y, total, ort): &(Vec<f32>, f64, f64), with_whole: Option<f64>| {
                let agreement = compare(y);
                print(&Row {
                    name,
                    mode,
                    threads,
                    seconds: args.seconds,
                    total: *total,
                    ort: *ort,
                    agreement,
                    with_whole,
                });
            };
            let whole = timed(&mut enhancer, |e| Ok(e.enhance(&x)?))?;
            report("whole clip".into(), &whole, None);
            if name != DFN3 {
                continue;
            }
            for f in &fixed {
                let run = timed(&mut enhancer, |e| {
                    let mut out = f.run(&[&x], rate, |w| e.enhance_batch(w))?;
                    out.pop().context("no output")
                })?;
                let mode = format!("fixed {} s windows, {} s overlap, {} per call", f.window_s, f.overlap_s, f.batch);
                report(mode, &run, Some(f64::from(snr_db(&whole.0, &run.0))));
            }
        }
    }
    if let Some((_, secs)) = reference {
        println!(
            "| libdeepfilter.so (official) | frame by frame | - | {:.1} | {:.4} | - | - | - | - |",
            args.seconds / secs,
            secs / args.seconds
        );
    }
    Ok(())
}
