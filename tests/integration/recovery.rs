//! Session policies and out-of-memory recovery through the real inference path (real model, real ONNX
//! Runtime), with failures injected at the inference seam so every step runs without a GPU.

use crate::common::{model_dir, ort_library, speech_like, write_wav};
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::OutputFormat;
use scenequeue_core::states::RecoveryStep;
use scenequeue_worker::FaultPlan;
use scenequeue_worker::RecoveryConfig;
use scenequeue_worker::SessionPolicy;
use scenequeue_worker::testing::{self as inference, InferenceOptions, Runner};
use scenequeue_worker::testing::{SceneTask, Tuning};
use scenequeue_worker::{Device, RuntimeOptions};
use std::path::{Path, PathBuf};

struct Fixture {
    dir: PathBuf,
    source: PathBuf,
}

impl Fixture {
    fn new(name: &str, seconds: f64) -> Self {
        let dir = std::env::temp_dir().join(format!("sq-recovery-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("source.wav");
        write_wav(&source, &speech_like(48_000, seconds, 5), 48_000, 1);
        Self { dir, source }
    }

    fn task(&self, i: usize, start_s: f64, end_s: f64) -> SceneTask {
        SceneTask {
            source: self.source.clone(),
            start_s,
            end_s,
            output: self.dir.join(format!("out-{i}.wav")),
            tuning: Default::default(),
            decoder: None,
            transcribe: None,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn options(faults: FaultPlan, recovery: RecoveryConfig) -> InferenceOptions {
    InferenceOptions {
        runtime: RuntimeOptions::new(ort_library(), Device::Cpu, 1),
        model_dir: model_dir(),
        recovery,
        faults,
        post: Default::default(),
        output_format: Default::default(),
        on_bad_output: Default::default(),
        fixed_windows: None,
    }
}

fn runner(faults: FaultPlan, recovery: RecoveryConfig, policy: SessionPolicy) -> Box<dyn Runner + Send> {
    runner_with(options(faults, recovery), policy)
}

fn runner_with(options: InferenceOptions, policy: SessionPolicy) -> Box<dyn Runner + Send> {
    inference::runner(&options, policy, Some(PathBuf::from(env!("CARGO_BIN_EXE_scenequeue")))).unwrap()
}

fn frames(path: &Path) -> u32 {
    hound::WavReader::open(path).unwrap().duration()
}

#[test]
fn an_oom_is_recovered_by_a_fresh_session() {
    let f = Fixture::new("fresh", 6.0);
    let mut r =
        runner(FaultPlan { oom_first_runs: 1, ..Default::default() }, RecoveryConfig::default(), SessionPolicy::PerJob);
    let out = r.scene("nsnet2-48k", &f.task(0, 0.5, 4.5)).unwrap();
    assert_eq!(out.recovery, RecoveryStep::Recreated);
    assert_eq!(out.oom_count, 1);
    assert_eq!(frames(&f.dir.join("out-0.wav")), 4 * 48_000);
    assert_eq!(r.job_done().sessions_created, 2, "the failed session and its replacement");
}

#[test]
fn an_oom_on_long_input_is_recovered_in_windows_of_bounded_length() {
    let f = Fixture::new("windows", 10.0);
    let faults = FaultPlan { oom_above_samples: Some(3 * 48_000), ..Default::default() };
    let recovery = RecoveryConfig { window_s: 2.5, ..RecoveryConfig::default() };
    let mut r = runner(faults, recovery, SessionPolicy::PerJob);
    let out = r.scene("nsnet2-48k", &f.task(0, 0.0, 9.0)).unwrap();
    assert_eq!(out.recovery, RecoveryStep::Windowed);
    assert_eq!(out.oom_count, 2, "the whole scene failed twice before the windows");
    assert_eq!(frames(&f.dir.join("out-0.wav")), 9 * 48_000);
    assert!(out.rms_out_db < out.rms_in_db && out.rms_out_db > out.rms_in_db - 20.0, "{out:?}");
    // A short scene under the limit is not affected.
    assert_eq!(r.scene("nsnet2-48k", &f.task(1, 0.0, 2.0)).unwrap().recovery, RecoveryStep::None);
}

#[test]
fn when_every_device_run_fails_the_cpu_fallback_finishes_the_scene() {
    let f = Fixture::new("cpu", 4.0);
    let recovery = RecoveryConfig { cpu_fallback: true, ..RecoveryConfig::default() };
    let mut r = runner(FaultPlan { oom_always: true, ..Default::default() }, recovery, SessionPolicy::PerJob);
    let out = r.scene("nsnet2-48k", &f.task(0, 0.0, 3.0)).unwrap();
    assert_eq!(out.recovery, RecoveryStep::Cpu);
    assert_eq!(out.oom_count, 3);
    assert_eq!(frames(&f.dir.join("out-0.wav")), 3 * 48_000);
}

#[test]
fn without_fallback_the_scene_fails_naming_every_step_and_the_runner_goes_on() {
    let f = Fixture::new("fail", 4.0);
    let mut r =
        runner(FaultPlan { oom_always: true, ..Default::default() }, RecoveryConfig::default(), SessionPolicy::PerJob);
    let err = r.scene("nsnet2-48k", &f.task(0, 0.0, 3.0)).unwrap_err();
    assert!(!err.ends_job(), "an unrecoverable scene fails alone, the job goes on");
    let text = err.to_string();
    assert!(
        text.contains("fresh session") && text.contains("windows") && text.contains("CPU fallback is off"),
        "{text}"
    );
    assert!(!f.dir.join("out-0.wav").exists());
    r.job_done();
}

/// Runs `jobs` jobs of two scenes each and returns the sessions created per job.
fn sessions_per_job(policy: SessionPolicy, jobs: usize) -> Vec<u64> {
    let f = Fixture::new(&format!("policy-{}", policy.to_string().replace('-', "")), 5.0);
    let mut r = runner(FaultPlan::default(), RecoveryConfig::default(), policy);
    r.warm("nsnet2-48k").unwrap();
    (0..jobs)
        .map(|j| {
            r.scene("nsnet2-48k", &f.task(2 * j, 0.0, 2.0)).unwrap();
            r.scene("nsnet2-48k", &f.task(2 * j + 1, 2.0, 4.5)).unwrap();
            let t = r.job_done();
            assert!(t.after.rss_mb.is_some() && t.gpu_peak_mb.is_none(), "{t:?}");
            t.sessions_created
        })
        .collect()
}

#[test]
fn each_policy_creates_sessions_when_it_should() {
    assert_eq!(sessions_per_job(SessionPolicy::PerJob, 3), vec![1, 1, 1]);
    assert_eq!(sessions_per_job(SessionPolicy::EveryJobs(2), 4), vec![1, 0, 1, 0]);
    assert_eq!(sessions_per_job(SessionPolicy::Persistent, 3), vec![1, 0, 0]);
    assert_eq!(sessions_per_job(SessionPolicy::ShrinkEachRun, 3), vec![1, 0, 0]);
    // The threshold compares resident memory on a CPU worker: 1 MiB is always exceeded, 1 TiB never.
    assert_eq!(sessions_per_job(SessionPolicy::HeldAbove(1), 3), vec![1, 1, 1]);
    assert_eq!(sessions_per_job(SessionPolicy::HeldAbove(1 << 20), 3), vec![1, 0, 0]);
}

#[test]
fn process_isolation_runs_each_job_in_a_fresh_child() {
    let counts = sessions_per_job(SessionPolicy::Process, 2);
    assert_eq!(counts, vec![1, 1], "one child process per job");
}

#[test]
fn an_isolated_child_reports_scene_errors_without_dying() {
    let f = Fixture::new("isolated-errors", 3.0);
    let mut r = runner(FaultPlan::default(), RecoveryConfig::default(), SessionPolicy::Process);
    let err = r.scene("nsnet2-48k", &f.task(0, 10.0, 12.0)).unwrap_err();
    assert!(err.to_string().contains("outside the recording"), "{err}");
    assert!(!err.ends_job());
    assert!(r.scene("nsnet2-48k", &f.task(1, 0.0, 2.0)).is_ok(), "the same child serves the next scene");
    assert_eq!(r.job_done().sessions_created, 1);
}

/// Amplitude of the `hz` component of `x` (a single-bin DFT).
fn tone_level(x: &[f32], rate: f32, hz: f32) -> f32 {
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, &v) in x.iter().enumerate() {
        let phase = 2.0 * std::f64::consts::PI * f64::from(hz) * i as f64 / f64::from(rate);
        re += f64::from(v) * phase.cos();
        im += f64::from(v) * phase.sin();
    }
    (2.0 * (re * re + im * im).sqrt() / x.len() as f64) as f32
}

#[test]
fn outputs_lose_their_rumble_and_reach_the_loudness_asked_for() {
    let dir = std::env::temp_dir().join(format!("sq-post-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("rumble.wav");
    let speech = speech_like(48_000, 6.0, 8);
    let with_rumble: Vec<f32> = speech
        .iter()
        .enumerate()
        .map(|(i, &v)| v + 0.2 * (2.0 * std::f32::consts::PI * 25.0 * i as f32 / 48_000.0).sin())
        .collect();
    write_wav(&source, &with_rumble, 48_000, 1);
    let task = |name: &str| SceneTask {
        source: source.clone(),
        start_s: 0.0,
        end_s: 6.0,
        output: dir.join(name),
        tuning: Default::default(),
        decoder: None,
        transcribe: None,
    };
    let read = |name: &str| -> Vec<f32> {
        let (x, _) = scenequeue_audio::decode::read_span_mono(&dir.join(name), 0.0, 6.0).unwrap();
        x
    };
    let no_post = scenequeue_audio::dsp::PostProcess { highpass_hz: None, loudness_lufs: None, peak_ceiling_dbfs: 0.0 };
    let mut plain = runner_with(
        InferenceOptions { post: no_post, ..options(Default::default(), Default::default()) },
        SessionPolicy::PerJob,
    );
    plain.scene("nsnet2-48k", &task("plain.wav")).unwrap();
    let mut chain = runner(FaultPlan::default(), RecoveryConfig::default(), SessionPolicy::PerJob);
    chain.scene("nsnet2-48k", &task("filtered.wav")).unwrap();
    let (before, after) =
        (tone_level(&read("plain.wav"), 48_000.0, 25.0), tone_level(&read("filtered.wav"), 48_000.0, 25.0));
    assert!(after < before / 10.0, "25 Hz rumble {before} -> {after}: the default high-pass takes off more than 20 dB");

    let loud = scenequeue_audio::dsp::PostProcess { loudness_lufs: Some(-20.0), ..Default::default() };
    let mut normalised = runner_with(
        InferenceOptions { post: loud, ..options(Default::default(), Default::default()) },
        SessionPolicy::PerJob,
    );
    normalised.scene("nsnet2-48k", &task("loud.wav")).unwrap();
    let lufs = scenequeue_audio::dsp::loudness_lufs(&read("loud.wav"), 48_000).unwrap();
    assert!((lufs + 20.0).abs() < 0.5, "{lufs} LUFS");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn long_scenes_can_run_in_bounded_crossfaded_windows_without_clicks() {
    let f = Fixture::new("long", 180.0);
    let task = |name: &str| SceneTask {
        source: f.source.clone(),
        start_s: 0.0,
        end_s: 180.0,
        output: f.dir.join(name),
        tuning: Default::default(),
        decoder: None,
        transcribe: None,
    };
    let read = |name: &str| -> Vec<f32> {
        let (x, _) = scenequeue_audio::decode::read_span_mono(&f.dir.join(name), 0.0, 180.0).unwrap();
        x
    };
    runner(FaultPlan::default(), RecoveryConfig::default(), SessionPolicy::PerJob)
        .scene("nsnet2-48k", &task("whole.wav"))
        .unwrap();
    let windowed = RecoveryConfig { long_scene_window_s: 30.0, crossfade_s: 1.0, ..RecoveryConfig::default() };
    // Every call is bounded: a fault plan fails any run longer than the window.
    let bounded = FaultPlan { oom_above_samples: Some(30 * 48_000), ..FaultPlan::default() };
    let out = runner(bounded, windowed, SessionPolicy::PerJob).scene("nsnet2-48k", &task("windowed.wav")).unwrap();
    assert_eq!(out.oom_count, 0, "no call went over the window");
    let (a, b) = (read("whole.wav"), read("windowed.wav"));
    assert_eq!(a.len(), b.len());
    // Alignment: the first window sees exactly what the whole clip saw, so until the first seam they agree.
    let first = 0..28 * 48_000;
    assert!(scenequeue_audio::level::snr_db(&a[first.clone()], &b[first]) > 60.0);
    // No clicks: sample-to-sample steps around the seams (windows start every 29 s) stay within the largest
    // steps found elsewhere in the same output.
    let seams: Vec<usize> = (1..7).map(|k| k * 29 * 48_000).collect();
    let near = |i: usize| seams.iter().any(|&s| i + 48_000 > s && i < s + 2 * 48_000);
    let steps = |keep: &dyn Fn(usize) -> bool| {
        b.windows(2).enumerate().filter(|(i, _)| keep(*i)).map(|(_, w)| (w[1] - w[0]).abs()).fold(0.0f32, f32::max)
    };
    let (at_seams, elsewhere) = (steps(&|i| near(i)), steps(&|i| !near(i)));
    assert!(at_seams <= elsewhere * 1.05, "largest step at seams {at_seams} vs elsewhere {elsewhere}");
}

#[test]
fn a_long_scene_enhanced_over_its_input_is_read_again_when_a_window_runs_out_of_memory() {
    let f = Fixture::new("inplace", 75.0);
    // What recovery's first step gives: the scene whole, on a fresh session.
    let whole = runner(FaultPlan::default(), RecoveryConfig::default(), SessionPolicy::PerJob)
        .scene("nsnet2-48k", &f.task(0, 0.0, 70.0))
        .unwrap();
    // 30 s windows; the second fails, after the first window's output has overwritten the start of the input.
    let windowed = RecoveryConfig { long_scene_window_s: 30.0, ..RecoveryConfig::default() };
    let plan = FaultPlan { oom_on_run: Some(2), ..Default::default() };
    let out = runner(plan, windowed, SessionPolicy::PerJob).scene("nsnet2-48k", &f.task(1, 0.0, 70.0)).unwrap();
    assert_eq!((out.recovery, out.oom_count), (RecoveryStep::Recreated, 1));
    assert_eq!(out.rms_in_db, whole.rms_in_db);
    let bytes = |i: usize| std::fs::read(f.dir.join(format!("out-{i}.wav"))).unwrap();
    assert!(bytes(0) == bytes(1), "the scene was recovered from its original input, not the half-written one");
}

#[test]
fn a_long_scene_enhanced_over_its_input_still_mixes_in_its_input_under_an_attenuation_limit() {
    let f = Fixture::new("limit", 75.0);
    let mut options =
        options(FaultPlan::default(), RecoveryConfig { long_scene_window_s: 30.0, ..RecoveryConfig::default() });
    // Float output and no post-processing, so what was written is what the limit left.
    options.post = PostProcess { highpass_hz: None, loudness_lufs: None, peak_ceiling_dbfs: 0.0 };
    options.output_format = OutputFormat::WavFloat;
    let mut r = runner_with(options, SessionPolicy::PerJob);
    let plain = r.scene("nsnet2-48k", &f.task(0, 0.0, 70.0)).unwrap();
    let mut limited = f.task(1, 0.0, 70.0);
    limited.tuning = Tuning { atten_lim_db: Some(6.0), ..Tuning::default() };
    let out = r.scene("nsnet2-48k", &limited).unwrap();
    assert!(plain.flags.is_empty() && out.flags.is_empty(), "{plain:?} {out:?}");
    let read = |path: &Path| scenequeue_audio::decode::read_span_mono(path, 0.0, 70.0).unwrap().0;
    let (x, a, b) = (read(&f.source), read(&f.dir.join("out-0.wav")), read(&f.dir.join("out-1.wav")));
    assert_eq!((a.len(), b.len()), (70 * 48_000, 70 * 48_000));
    let lim = 10f32.powf(-6.0 / 20.0);
    let differing = (0..a.len()).filter(|&i| ((1.0 - lim) * a[i] + lim * x[i]).to_bits() != b[i].to_bits()).count();
    assert_eq!(differing, 0, "every sample is the limited mix of the enhanced output and the input");
    assert!(a.iter().zip(&b).any(|(a, b)| a != b), "the limit changed the output");
}
