//! `scenequeue submit`

use crate::args::{DetectorKind, SplitArgs, SubmitArgs};
use anyhow::Context;
use scenequeue_audio::scenes::SplitParams;
use scenequeue_core::config::Services;
use scenequeue_core::db;
use scenequeue_scheduler::PackMode;
use scenequeue_scheduler::{Detector, MediaOutcome, SubmitReport, SubmitRequest, submit_until, submit_without_broker};
use scenequeue_worker::SileroVad;
use scenequeue_worker::{Device, Runtime};
use std::sync::Arc;

/// The submission from its flags; `--detector silero` loads the Silero model now, so a missing model is an error
/// before anything is written.
pub fn request(args: &SubmitArgs) -> anyhow::Result<SubmitRequest> {
    let detector = match args.detector {
        DetectorKind::Silero => {
            let runtime = Runtime::init(&args.files.ort_library, Device::Cpu, 1)?;
            Some(Detector(Arc::new(SileroVad::load(&runtime, &args.files.model_dir)?)))
        }
        DetectorKind::Energy => None,
    };
    Ok(SubmitRequest {
        skip_duplicates: !args.again,
        priority: args.priority,
        detector,
        resume: args.resume,
        options: crate::commands::enhance_options::options(&args.enhance, &args.files.model_dir, &args.model)?,
        ..request_from(args.inputs.clone(), args.out.clone(), args.model.clone(), &args.split)
    })
}

/// A submission of `inputs` with the splitting and packing flags; everything else at its default.
pub fn request_from(
    inputs: Vec<std::path::PathBuf>,
    out: std::path::PathBuf,
    model: String,
    split: &SplitArgs,
) -> SubmitRequest {
    SubmitRequest {
        inputs,
        output_dir: out,
        model,
        split: SplitParams {
            min_scene_s: split.min_scene_s,
            max_scene_s: split.max_scene_s,
            min_silence_s: split.min_silence_s,
            split_silence_s: split.split_silence_s,
            ..SplitParams::default()
        },
        job_budget_s: split.job_seconds,
        pack_mode: match split.pack_window_s {
            Some(window_s) => PackMode::FixedWindows { window_s },
            None => PackMode::Duration,
        },
        max_attempts: split.max_attempts,
        ..SubmitRequest::default()
    }
}

/// Submits `req` (until Ctrl-C or SIGTERM, which leave the batch interrupted) and prints what became of every
/// recording.
pub async fn submit_and_report(services: &Services, req: &SubmitRequest) -> anyhow::Result<SubmitReport> {
    let req = &SubmitRequest { max_queued: services.max_queued, ..req.clone() };
    let pool = db::connect(&services.database_url, 4).await?;
    let broker = super::open_publisher(services).await;
    let stop = super::shutdown_on_signal();
    let report = match &broker {
        Ok((_, publisher)) => submit_until(&pool, publisher, req, &stop).await,
        Err(e) => {
            eprintln!(
                "warning: RabbitMQ unreachable ({e}): the batch is stored and its jobs wait pending; the scheduler \
                 or a worker publishes them once the broker is back"
            );
            submit_without_broker(&pool, req, &stop).await
        }
    }
    .context("submission failed")?;
    if report.resumed {
        eprintln!("resuming interrupted batch {}", report.batch);
    }
    for m in &report.media {
        match &m.outcome {
            MediaOutcome::Split { scenes, duration_s, warning } => {
                let scenes = if *scenes == 1 { "1 scene".to_string() } else { format!("{scenes} scenes") };
                eprintln!("  ok         {} ({duration_s:.1} s, {scenes})", m.path.display());
                if let Some(warning) = warning {
                    eprintln!("  warning    {}: {warning}", m.path.display());
                }
            }
            MediaOutcome::Failed(e) => eprintln!("  failed     {e}"),
            MediaOutcome::Duplicate { batch } => {
                eprintln!("  duplicate  {} (already submitted in batch {batch})", m.path.display())
            }
        }
    }
    eprintln!(
        "batch {}: {} recordings, {} scenes in {} jobs ({} published)",
        report.batch,
        report.media.len(),
        report.scenes,
        report.jobs,
        report.published
    );
    if let Ok((connection, _)) = &broker {
        let _ = connection.close(200, "done").await;
    }
    if report.interrupted {
        anyhow::bail!(
            "interrupted: batch {} holds what was stored so far; run the same command again (or add --resume {}) to \
             complete it",
            report.batch,
            report.batch
        );
    }
    Ok(report)
}

pub async fn run(services: &Services, args: &SubmitArgs) -> anyhow::Result<()> {
    let report = submit_and_report(services, &request(args)?).await?;
    println!("{}", report.batch);
    Ok(())
}
