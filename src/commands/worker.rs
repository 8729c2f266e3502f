//! `scenequeue worker`

use crate::args::WorkerArgs;
use scenequeue_core::config::Services;
use scenequeue_worker::WorkerConfig;
use std::time::Duration;

pub fn config(args: &WorkerArgs) -> WorkerConfig {
    WorkerConfig {
        device: args.device,
        intra_threads: args.threads,
        session_policy: args.session_policy,
        lease_ttl: Duration::from_secs(args.lease_s.max(3)),
        max_jobs: args.max_jobs,
        drain: args.drain,
        ..WorkerConfig::new(args.ort_library.clone(), args.model_dir.clone(), args.model.clone())
    }
}

pub async fn run(services: &Services, args: &WorkerArgs) -> anyhow::Result<()> {
    let report = scenequeue_worker::run(config(args), services.clone(), super::shutdown_on_signal()).await?;
    eprintln!(
        "worker done: {} jobs, {} scenes succeeded, {} failed, {} sessions created",
        report.jobs_done, report.scenes_succeeded, report.scenes_failed, report.sessions_created
    );
    Ok(())
}
