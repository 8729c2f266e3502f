//! Real-time factor of each model adapter on this machine, at each thread count, with the time split between
//! ONNX Runtime and the adapter's own DSP; and the official DeepFilterNet runtime (libdeepfilter.so, through
//! tests/support/deepfilter_reference.py) on the same audio.

use crate::synth::speech_like;
use anyhow::Context;
use scenequeue_audio::resample::resample;
use scenequeue_worker::model;
use scenequeue_worker::runtime::{Device, Runtime, RuntimeOptions};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

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
    /// The official runtime, for comparison (skipped when missing).
    #[arg(long, default_value = ".scenequeue/deepfilter/libdeepfilter.so")]
    libdeepfilter: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let audio48 = speech_like(48_000, args.seconds, 3);
    println!("| model | threads | x real time | RTF | ONNX Runtime share | DSP share |");
    println!("|---|---|---|---|---|---|");
    for threads in args.threads.split(',').map(|t| t.trim().parse::<usize>()) {
        let threads = threads.context("--threads takes comma-separated numbers")?;
        let runtime = Runtime::with_options(RuntimeOptions::new(args.files.ort_library.clone(), Device::Cpu, threads))?;
        for name in args.models.split(',').map(str::trim) {
            let mut enhancer = model::load(&runtime, &args.files.model_dir, name)?;
            let rate = enhancer.sample_rate();
            let x = resample(&audio48, 48_000, rate)?;
            enhancer.enhance(&x[..rate as usize])?;
            let ort_before = enhancer.runtime_time();
            let started = Instant::now();
            enhancer.enhance(&x)?;
            let total = started.elapsed().as_secs_f64();
            let ort = (enhancer.runtime_time() - ort_before).as_secs_f64();
            println!(
                "| {name} | {threads} | {:.1} | {:.4} | {:.0} % | {:.0} % |",
                args.seconds / total,
                total / args.seconds,
                100.0 * ort / total,
                100.0 * (total - ort) / total
            );
        }
    }
    if args.libdeepfilter.is_file() {
        let dir = std::env::temp_dir().join(format!("sq-bench-adapters-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (input, output) = (dir.join("in.f32"), dir.join("out.f32"));
        std::fs::write(&input, audio48.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
        let out = Command::new("python3")
            .arg("tests/support/deepfilter_reference.py")
            .arg(&args.libdeepfilter)
            .arg(args.files.model_dir.join("deepfilternet3/DeepFilterNet3_onnx.tar.gz"))
            .arg(&input)
            .arg(&output)
            .output()
            .context("running the official runtime")?;
        let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().context("official runtime's timing")?;
        println!(
            "| libdeepfilter.so (official, its own threads) | - | {:.1} | {:.4} | - | - |",
            args.seconds / secs,
            secs / args.seconds
        );
        std::fs::remove_dir_all(dir).ok();
    }
    Ok(())
}
