//! `scenequeue worker`

use crate::args::WorkerArgs;
use scenequeue_audio::dsp::PostProcess;
use scenequeue_core::config::Services;
use scenequeue_worker::CudaSettings;
use scenequeue_worker::FixedWindows;
use scenequeue_worker::RecoveryConfig;
use scenequeue_worker::WorkerConfig;
use std::time::Duration;

/// The worker's settings from its flags: unset flags already hold `WorkerConfig::default()`'s values; bad values
/// are refused with the reason, never clamped.
pub fn config(args: &WorkerArgs) -> anyhow::Result<WorkerConfig> {
    let fixed_windows = match args.fixed_windows_s {
        Some(window_s) => {
            Some(FixedWindows::new(window_s, args.window_overlap_s, args.window_batch).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let defaults = WorkerConfig::new(args.files.clone(), args.model.clone());
    let config = WorkerConfig {
        device: args.device,
        intra_threads: args.threads,
        session_policy: args.session_policy,
        cuda: CudaSettings {
            conv_search: args.cudnn_search,
            arena_extend: args.cuda_arena_extend,
            memory_limit_mb: args.gpu_mem_limit_mb,
        },
        output_format: args.output_format,
        on_bad_output: args.on_bad_output,
        post: PostProcess {
            highpass_hz: (args.highpass_hz != 0.0).then_some(args.highpass_hz),
            loudness_lufs: args.loudness_lufs,
            peak_ceiling_dbfs: args.peak_ceiling_dbfs,
        },
        recovery: RecoveryConfig {
            long_scene_window_s: args.long_scene_window_s,
            window_s: args.oom_window_s,
            cpu_fallback: args.cpu_fallback,
            ..defaults.recovery.clone()
        },
        fixed_windows,
        lease_ttl: Duration::from_secs(args.lease_s),
        watchdog_floor: Duration::from_secs(args.watchdog_floor_s),
        health_check: Duration::from_secs(args.health_check_s),
        grace: Duration::from_secs(args.grace_s),
        retry_backoff: Duration::try_from_secs_f64(args.retry_backoff_s)
            .map_err(|e| anyhow::anyhow!("--retry-backoff-s {}: {e}", args.retry_backoff_s))?,
        child_program: args.child_program.clone().or(defaults.child_program.clone()),
        max_jobs: args.max_jobs,
        db_connections: args.db_connections,
        alive_file: args.alive_file.clone(),
        drain: args.drain,
        ..defaults
    };
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

pub async fn run(services: &Services, args: &WorkerArgs) -> anyhow::Result<()> {
    let report = scenequeue_worker::run(config(args)?, services.clone(), super::shutdown_twice()).await?;
    eprintln!(
        "worker done: {} jobs, {} scenes succeeded, {} failed ({} recovered from {} out-of-memory errors), \
         {} sessions created",
        report.jobs_done,
        report.scenes_succeeded,
        report.scenes_failed,
        report.scenes_recovered,
        report.ooms,
        report.sessions_created
    );
    Ok(())
}
