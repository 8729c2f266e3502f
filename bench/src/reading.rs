//! The reading benchmark: what a worker spends reading its scenes, per container, for long recordings with
//! hundreds of scenes. A 44.1 kHz stereo recording is written as WAV and encoded by ffmpeg as FLAC, MP3, AAC in
//! MP4 and FLAC in Matroska; its scenes are packed into jobs by the scheduler's packer, and each job's scenes are
//! read in source order exactly as the worker reads them (one `SpanReader` per job, resampled to the model's 48
//! kHz). Reported per format: seconds of reading and the ratio to WAV in the same run. With `--per-scene`, each
//! scene is also read on its own (open, seek, read), the way spans were read before the forward pass. With
//! `--model`, the whole worker path runs too (the worker's inference runner on the CPU: read, resample,
//! enhance, post-process, write), job by job, and its time is reported as a ratio to WAV as well.

use anyhow::{Context, bail};
use scenequeue_audio::decode::read_span_mono;
use scenequeue_audio::resample::resample;
use scenequeue_audio::spans::SpanReader;
use scenequeue_scheduler::{PackMode, testing::Packer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Recording lengths in minutes, run in this order.
    #[arg(long, default_value = "20,120")]
    minutes: String,
    /// Where the recordings are written (kept between runs: an existing file is reused).
    #[arg(long, default_value = "bench-out/reading")]
    dir: PathBuf,
    #[arg(long, default_value_t = 300.0)]
    job_seconds: f64,
    /// Also read every scene on its own, as before the forward pass (slow for long recordings).
    #[arg(long)]
    per_scene: bool,
    /// Also run the worker's whole path with this model on the CPU (e.g. nsnet2-16k).
    #[arg(long)]
    model: Option<String>,
    /// Run the worker's whole path only for recordings up to this many minutes.
    #[arg(long, default_value_t = 20)]
    model_max_minutes: usize,
    #[command(flatten)]
    files: crate::ModelFiles,
}

const RATE: u32 = 44_100;
const MODEL_RATE: u32 = 48_000;

/// Name, ffmpeg codec arguments (empty: the WAV itself).
const FORMATS: &[(&str, &[&str])] = &[
    ("wav", &[]),
    ("flac", &["-c:a", "flac"]),
    ("mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]),
    ("m4a", &["-c:a", "aac", "-b:a", "128k"]),
    ("mkv", &["-c:a", "flac"]),
];

/// Writes `minutes` of speech-like stereo audio as 16-bit WAV, a minute at a time.
fn write_source(path: &Path, minutes: usize) -> anyhow::Result<()> {
    let spec =
        hound::WavSpec { channels: 2, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec)?;
    for minute in 0..minutes {
        for s in crate::synth::speech_like(RATE, 60.0, minute as u64 + 1) {
            let v = (s.clamp(-1.0, 1.0) * 32767.0) as i16;
            w.write_sample(v)?;
            w.write_sample(v)?;
        }
    }
    w.finalize()?;
    Ok(())
}

fn encode(wav: &Path, out: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(wav)
        .args(args)
        .arg(out)
        .status()
        .context("running ffmpeg (install it: apt-get install ffmpeg)")?;
    if !status.success() {
        bail!("ffmpeg failed to write {}", out.display());
    }
    Ok(())
}

/// Scenes of 2-6 s separated by pauses of 0.3-1.2 s, end to end over the recording.
fn scenes(seconds: f64) -> Vec<(f64, f64)> {
    let mut rng = crate::synth::Rng::new(7);
    let mut out = Vec::new();
    let mut t = 0.5;
    loop {
        let d = 2.0 + 4.0 * rng.next_f64();
        if t + d > seconds - 0.5 {
            return out;
        }
        out.push((t, t + d));
        t += d + 0.3 + 0.9 * rng.next_f64();
    }
}

/// The scenes of each job, in source order, as the scheduler packs them.
fn jobs(spans: &[(f64, f64)], budget_s: f64) -> Vec<Vec<usize>> {
    let mut packer = Packer::new(budget_s, PackMode::Duration);
    let durations: Vec<f64> = spans.iter().map(|(s, e)| e - s).collect();
    let mut jobs = packer.add_recording(0, &durations);
    jobs.extend(packer.flush());
    jobs.into_iter().map(|j| j.scenes.into_iter().map(|(_, i)| i).collect()).collect()
}

/// Reads every job's scenes as a worker does; returns the seconds spent and the samples read.
fn read_jobs(path: &Path, spans: &[(f64, f64)], jobs: &[Vec<usize>]) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let mut samples = 0;
    for job in jobs {
        let mut reader = SpanReader::new();
        for &i in job {
            let (x, rate) = reader.read(path, None, spans[i].0, spans[i].1)?;
            samples += resample(&x, rate, MODEL_RATE)?.len();
        }
    }
    Ok((started.elapsed().as_secs_f64(), samples))
}

/// Runs every job through the worker's inference runner (a fresh session per job, as a worker does); returns the
/// seconds spent.
fn enhance_jobs(
    args: &Args,
    model: &str,
    path: &Path,
    spans: &[(f64, f64)],
    jobs: &[Vec<usize>],
) -> anyhow::Result<f64> {
    use scenequeue_worker::testing::{InferenceOptions, runner};
    use scenequeue_worker::{Device, RuntimeOptions};
    let options = InferenceOptions {
        runtime: RuntimeOptions::new(args.files.ort_library.clone(), Device::Cpu, 1),
        model_dir: args.files.model_dir.clone(),
        recovery: Default::default(),
        faults: Default::default(),
        post: Default::default(),
        output_format: Default::default(),
        // Reading is measured, not the checks' verdicts.
        on_bad_output: scenequeue_worker::OnBadOutput::Flag,
        fixed_windows: None,
    };
    let out = args.dir.join("out");
    std::fs::create_dir_all(&out)?;
    let mut runner = runner(&options, scenequeue_worker::SessionPolicy::PerJob, None)?;
    runner.warm(model).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    for job in jobs {
        let tasks: Vec<scenequeue_worker::testing::SceneTask> = job
            .iter()
            .map(|&i| scenequeue_worker::testing::SceneTask {
                source: path.to_path_buf(),
                start_s: spans[i].0,
                end_s: spans[i].1,
                output: out.join(format!("scene-{i}.wav")),
                tuning: Default::default(),
                decoder: None,
                transcribe: None,
            })
            .collect();
        for result in runner.scenes(model, &tasks) {
            result.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        runner.job_done();
    }
    let seconds = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&out)?;
    Ok(seconds)
}

fn read_each(path: &Path, spans: &[(f64, f64)]) -> anyhow::Result<f64> {
    let started = Instant::now();
    for &(start, end) in spans {
        let (x, rate) = read_span_mono(path, start, end)?;
        resample(&x, rate, MODEL_RATE)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    for minutes in args.minutes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let minutes: usize = minutes.parse().with_context(|| format!("--minutes: {minutes:?}"))?;
        let wav = args.dir.join(format!("{minutes}min.wav"));
        if !wav.exists() {
            write_source(&wav, minutes)?;
        }
        let spans = scenes(minutes as f64 * 60.0);
        let jobs = jobs(&spans, args.job_seconds);
        println!("{minutes} min, {} scenes in {} jobs of up to {} s:", spans.len(), jobs.len(), args.job_seconds);
        let model = args.model.as_deref().filter(|_| minutes <= args.model_max_minutes);
        let per_scene_head = if args.per_scene { " each scene alone, s |" } else { "" };
        let worker_head = if model.is_some() { " worker, s | worker x WAV |" } else { "" };
        println!("| format | reading, s | x WAV | scene audio / s |{per_scene_head}{worker_head}");
        let rule = format!(
            "|---|---|---|---|{}{}",
            if args.per_scene { "---|" } else { "" },
            if model.is_some() { "---|---|" } else { "" }
        );
        println!("{rule}");
        let (mut wav_s, mut wav_worker_s) = (None, None);
        for (name, codec) in FORMATS {
            let path = if codec.is_empty() { wav.clone() } else { args.dir.join(format!("{minutes}min.{name}")) };
            if !path.exists() {
                encode(&wav, &path, codec)?;
            }
            let (seconds, samples) = read_jobs(&path, &spans, &jobs)?;
            let base = *wav_s.get_or_insert(seconds);
            let per_scene = if args.per_scene { format!(" {:.1} |", read_each(&path, &spans)?) } else { String::new() };
            let worker = match model {
                Some(model) => {
                    let s = enhance_jobs(args, model, &path, &spans, &jobs)?;
                    let base = *wav_worker_s.get_or_insert(s);
                    format!(" {s:.1} | {:.2} |", s / base)
                }
                None => String::new(),
            };
            println!(
                "| {name} | {seconds:.1} | {:.2} | {:.0} |{per_scene}{worker}",
                seconds / base,
                samples as f64 / f64::from(MODEL_RATE) / seconds
            );
        }
    }
    Ok(())
}
