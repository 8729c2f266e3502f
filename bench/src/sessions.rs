//! The session-policy benchmark (and the GPU check: `scripts/gpu-check.sh` runs it on a CUDA machine).

use crate::synth::{scene_plan, speech_like};
use anyhow::Context;
use scenequeue_core::options::AsrOptions;
use scenequeue_core::transcripts::AsrInput;
use scenequeue_scheduler::{PackMode, testing::pack};
use scenequeue_worker::FaultPlan;
use scenequeue_worker::FixedWindows;
use scenequeue_worker::RecoveryConfig;
use scenequeue_worker::SessionPolicy;
use scenequeue_worker::testing::MemoryProbe;
use scenequeue_worker::testing::SceneTask;
use scenequeue_worker::testing::{InferenceOptions, runner};
use scenequeue_worker::{ArenaExtend, ConvSearch, CudaSettings, Device, RuntimeOptions};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    files: crate::ModelFiles,
    #[arg(long, default_value = "nsnet2-48k")]
    model: String,
    #[arg(long, default_value = "cpu")]
    device: Device,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Comma-separated session policies, run in this order.
    #[arg(long, default_value = "per-job,every-4-jobs,held-above-1024,shrink-each-run,process,persistent")]
    policies: String,
    #[arg(long, default_value_t = 200)]
    scenes: usize,
    #[arg(long, default_value_t = 1.0)]
    min_scene_s: f64,
    #[arg(long, default_value_t = 220.0)]
    max_scene_s: f64,
    /// Audio per job, seconds.
    #[arg(long, default_value_t = 300.0)]
    job_seconds: f64,
    /// CUDA arena cap, MiB (8192 emulates an 8 GB card).
    #[arg(long)]
    gpu_mem_limit_mb: Option<u64>,
    #[arg(long, default_value = "heuristic")]
    cudnn_search: ConvSearch,
    #[arg(long, default_value = "next-power-of-two")]
    arena_extend: ArenaExtend,
    #[arg(long)]
    cpu_fallback: bool,
    /// Working directory (source audio, outputs, results.json).
    #[arg(long, default_value = "target/bench-sessions")]
    out: PathBuf,
    /// Stop starting new jobs of a policy after this many seconds (the report says how many scenes ran).
    #[arg(long)]
    time_limit_s: Option<f64>,
    /// Fixed-shape window batching, as WINDOW_S:OVERLAP_S:BATCH (the worker's --fixed-windows-s etc.).
    #[arg(long)]
    fixed_windows: Option<FixedWindows>,
    /// Transcribe every scene after enhancement with this recognition model (as `submit --transcribe` with
    /// `--enhance-for-asr auto`: both versions), so the memory figures cover both stages of a job.
    #[arg(long)]
    transcribe: Option<String>,
    /// The scenequeue binary, for the `process` policy.
    #[arg(long, default_value = "target/release/scenequeue")]
    scenequeue: PathBuf,
}

#[derive(Debug, Default, Serialize)]
struct PolicyResult {
    policy: String,
    jobs: usize,
    scenes: usize,
    failed_scenes: usize,
    audio_s: f64,
    wall_s: f64,
    x_real_time: f64,
    ooms: u64,
    recovered_scenes: u64,
    sessions_created: u64,
    session_create_ms_mean: f64,
    session_create_ms_first: f64,
    restart_share_pct: f64,
    gpu_baseline_mb: Option<f32>,
    gpu_peak_mb: Option<f32>,
    gpu_final_mb: Option<f32>,
    gpu_max_after_job_mb: Option<f32>,
    jobs_back_to_baseline: usize,
    rss_final_mb: Option<f32>,
    /// The process's resident memory after each job, MiB.
    rss_after_jobs_mb: Vec<f32>,
    /// Mean resident memory after the first and the last jobs (see [`RssTrend`]).
    rss_trend: Option<RssTrend>,
}

/// Whether resident memory grows across jobs: the mean after the first jobs that follow a warm-up, against the
/// mean after the last ones (50 of each, or a third of the jobs when there are fewer than 155).
#[derive(Debug, Clone, Copy, Serialize)]
struct RssTrend {
    first_mb: f32,
    last_mb: f32,
    /// Last against first, percent.
    growth_pct: f32,
}

/// Jobs skipped before the first window: sessions, caches and the allocator's pools settle.
const RSS_WARM_UP_JOBS: usize = 5;

impl RssTrend {
    fn of(after_jobs: &[f32]) -> Option<Self> {
        let settled = after_jobs.get(RSS_WARM_UP_JOBS..).filter(|s| s.len() >= 3)?;
        let window = (settled.len() / 3).clamp(1, 50);
        let mean = |w: &[f32]| w.iter().sum::<f32>() / w.len() as f32;
        let (first_mb, last_mb) = (mean(&settled[..window]), mean(&settled[settled.len() - window..]));
        Some(Self { first_mb, last_mb, growth_pct: 100.0 * (last_mb - first_mb) / first_mb })
    }
}

fn fmt(v: Option<f32>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let rate = 48_000;
    let source_s = args.max_scene_s + 10.0;
    let source = args.out.join("source.wav");
    scenequeue_audio::encode::write_wav_pcm16(&source, &speech_like(rate, source_s, 42), rate)?;
    let spans = scene_plan(args.scenes, args.min_scene_s, args.max_scene_s, source_s, 7);
    let durations: Vec<f64> = spans.iter().map(|(a, b)| b - a).collect();
    // One recording: the scenes are spans of the same source file.
    let jobs: Vec<Vec<usize>> = pack(std::slice::from_ref(&durations), args.job_seconds, PackMode::Duration)
        .into_iter()
        .map(|j| j.scenes.into_iter().map(|(_, s)| s).collect())
        .collect();
    let audio_s: f64 = durations.iter().sum();
    eprintln!("{} scenes ({audio_s:.0} s of audio) in {} jobs on {}", spans.len(), jobs.len(), args.device);

    let options = InferenceOptions {
        runtime: RuntimeOptions {
            cuda: CudaSettings {
                conv_search: args.cudnn_search,
                arena_extend: args.arena_extend,
                memory_limit_mb: args.gpu_mem_limit_mb,
            },
            ..RuntimeOptions::new(args.files.ort_library.clone(), args.device, args.threads)
        },
        model_dir: args.files.model_dir.clone(),
        recovery: RecoveryConfig { cpu_fallback: args.cpu_fallback, ..RecoveryConfig::default() },
        faults: FaultPlan::default(),
        post: Default::default(),
        output_format: Default::default(),
        on_bad_output: Default::default(),
        fixed_windows: args.fixed_windows,
    };
    let probe = MemoryProbe::new(args.device);
    let baseline = context_baseline(args, &options, &probe)?;
    let mut results = Vec::new();
    for policy in args.policies.split(',').filter(|p| !p.is_empty()) {
        let policy: SessionPolicy = policy.parse().map_err(anyhow::Error::msg)?;
        let r = run_policy(args, &options, policy, &probe, baseline, &source, &spans, &jobs)?;
        eprintln!(
            "{:<16} {:>7.1}x RT  ooms {}  sessions {}  create {:.1} ms (first {:.0})  restart share {:.2}%  GPU MiB base {} peak {} final {}",
            r.policy,
            r.x_real_time,
            r.ooms,
            r.sessions_created,
            r.session_create_ms_mean,
            r.session_create_ms_first,
            r.restart_share_pct,
            fmt(r.gpu_baseline_mb),
            fmt(r.gpu_peak_mb),
            fmt(r.gpu_final_mb)
        );
        results.push(r);
    }
    std::fs::write(args.out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    println!("{}", table(&results, probe.gpu_info()));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_policy(
    args: &Args,
    options: &InferenceOptions,
    policy: SessionPolicy,
    probe: &MemoryProbe,
    baseline: Option<f32>,
    source: &std::path::Path,
    spans: &[(f64, f64)],
    jobs: &[Vec<usize>],
) -> anyhow::Result<PolicyResult> {
    let mut runner = runner(options, policy, Some(args.scenequeue.clone()))?;
    let mut r = PolicyResult { policy: policy.to_string(), gpu_baseline_mb: baseline, ..PolicyResult::default() };
    let mut create_ms_total = 0.0;
    let started = Instant::now();
    runner.warm(&args.model).map_err(|e| anyhow::anyhow!("{e}")).context("warm-up")?;
    for (j, job) in jobs.iter().enumerate() {
        if args.time_limit_s.is_some_and(|limit| started.elapsed().as_secs_f64() > limit) {
            eprintln!("{policy}: time limit reached after {j} of {} jobs", jobs.len());
            break;
        }
        // A job's scenes go to the runner together, as the worker sends a group (one by one without batching).
        let tasks: Vec<SceneTask> = job
            .iter()
            .map(|&s| SceneTask {
                source: source.to_path_buf(),
                start_s: spans[s].0,
                end_s: spans[s].1,
                output: args.out.join(format!("scene-{s}.wav")),
                tuning: Default::default(),
                decoder: None,
                transcribe: args.transcribe.as_ref().map(|model| AsrOptions {
                    model: model.clone(),
                    language: "en".into(),
                    input: AsrInput::Auto,
                }),
            })
            .collect();
        let mut results = runner.scenes(&args.model, &tasks).into_iter();
        for task in &tasks {
            // No outcome: the runner stopped after a job-level failure.
            match results.next() {
                Some(Ok(out)) => {
                    r.ooms += u64::from(out.oom_count);
                    r.recovered_scenes += u64::from(out.recovery != Default::default());
                    r.audio_s += task.end_s - task.start_s;
                }
                Some(Err(e)) => {
                    eprintln!("scene {} failed: {e}", task.output.display());
                    r.failed_scenes += 1;
                }
                None => r.failed_scenes += 1,
            }
            r.scenes += 1;
            let _ = std::fs::remove_file(&task.output);
        }
        let t = runner.job_done();
        r.sessions_created += t.sessions_created;
        create_ms_total += t.session_create_ms;
        if j == 0 {
            r.session_create_ms_first = t.session_create_ms;
        }
        let device_after = probe.sample().gpu_device_mb;
        r.gpu_peak_mb = [r.gpu_peak_mb, t.gpu_peak_mb, device_after].into_iter().flatten().reduce(f32::max);
        r.gpu_max_after_job_mb = [r.gpu_max_after_job_mb, device_after].into_iter().flatten().reduce(f32::max);
        // "Back to baseline": within 64 MiB of the device's use before this policy's first session.
        if let (Some(b), Some(a)) = (baseline, device_after)
            && a <= b + 64.0
        {
            r.jobs_back_to_baseline += 1;
        }
        r.rss_final_mb = t.after.rss_mb;
        r.rss_after_jobs_mb.extend(t.after.rss_mb);
        r.jobs += 1;
    }
    drop(runner);
    r.wall_s = started.elapsed().as_secs_f64();
    r.gpu_final_mb = probe.sample().gpu_device_mb;
    r.x_real_time = r.audio_s / r.wall_s;
    r.session_create_ms_mean = create_ms_total / r.sessions_created.max(1) as f64;
    r.restart_share_pct = 100.0 * create_ms_total / 1000.0 / r.wall_s;
    r.rss_trend = RssTrend::of(&r.rss_after_jobs_mb);
    Ok(r)
}

/// Device memory in use once CUDA is initialised in this process but no session exists: what "back to
/// baseline" means. Measured by creating one session and dropping it.
fn context_baseline(args: &Args, options: &InferenceOptions, probe: &MemoryProbe) -> anyhow::Result<Option<f32>> {
    if args.device == Device::Cpu {
        return Ok(None);
    }
    let mut warmup = runner(options, SessionPolicy::PerJob, None)?;
    warmup.warm(&args.model).map_err(|e| anyhow::anyhow!("{e}")).context("CUDA warm-up")?;
    warmup.job_done();
    drop(warmup);
    Ok(probe.sample().gpu_device_mb)
}

fn table(results: &[PolicyResult], gpu: Option<(String, f32)>) -> String {
    let mut out = vec![
        match gpu {
            Some((name, total)) => format!("device: {name} ({total:.0} MiB)"),
            None => "device: CPU (no GPU figures)".into(),
        },
        format!(
            "| policy | jobs | scenes | failed | OOM | recovered | x real time | sessions | create ms (mean) | restart share | GPU MiB baseline | peak | after last job | jobs back to baseline | RSS MiB | RSS after jobs, first / last (growth) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|".into(),
    ];
    for r in results {
        out.push(format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {} | {:.1} | {:.2}% | {} | {} | {} | {}/{} | {} | {} |",
            r.policy,
            r.jobs,
            r.scenes,
            r.failed_scenes,
            r.ooms,
            r.recovered_scenes,
            r.x_real_time,
            r.sessions_created,
            r.session_create_ms_mean,
            r.restart_share_pct,
            fmt(r.gpu_baseline_mb),
            fmt(r.gpu_peak_mb),
            fmt(r.gpu_final_mb),
            r.jobs_back_to_baseline,
            r.jobs,
            fmt(r.rss_final_mb),
            r.rss_trend
                .map_or("-".into(), |t| format!("{:.0} / {:.0} ({:+.1} %)", t.first_mb, t.last_mb, t.growth_pct))
        ));
    }
    out.join("\n")
}
