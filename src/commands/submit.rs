//! `scenequeue submit`

use crate::args::{SplitArgs, SubmitArgs};
use anyhow::Context;
use scenequeue_audio::scenes::SplitParams;
use scenequeue_core::config::Services;
use scenequeue_core::{db, mq};
use scenequeue_scheduler::packing::PackMode;
use scenequeue_scheduler::submit::{Detector, MediaOutcome, SubmitReport, SubmitRequest, submit};
use scenequeue_worker::runtime::{Device, Runtime};
use scenequeue_worker::vad::SileroVad;
use std::sync::Arc;

pub fn request(args: &SubmitArgs) -> anyhow::Result<SubmitRequest> {
    let detector = match args.detector.as_str() {
        "silero" => {
            let runtime = Runtime::init(&args.ort_library, Device::Cpu, 1)?;
            Some(Detector(Arc::new(SileroVad::load(&runtime, &args.model_dir)?)))
        }
        _ => None,
    };
    Ok(SubmitRequest {
        skip_duplicates: !args.again,
        priority: args.priority,
        detector,
        options: crate::commands::enhance_options::options(&args.enhance, &args.model_dir, &args.model)?,
        ..request_from(args.inputs.clone(), args.out.clone(), args.model.clone(), &args.split)
    })
}

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
        decode_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
        skip_duplicates: true,
        priority: 0,
        max_queued: scenequeue_core::dispatch::DEFAULT_MAX_QUEUED,
        detector: None,
        options: Default::default(),
    }
}

pub async fn submit_and_report(services: &Services, req: &SubmitRequest) -> anyhow::Result<SubmitReport> {
    let req = &SubmitRequest { max_queued: services.max_queued, ..req.clone() };
    let pool = db::connect(&services.database_url, 4).await?;
    let connection = mq::connect(&services.amqp_url).await?;
    let publisher = mq::Publisher::new(&connection, &mq::Topology::new(&services.queue)).await?;
    let report = submit(&pool, &publisher, req).await.context("submission failed")?;
    for m in &report.media {
        match &m.outcome {
            MediaOutcome::Split { scenes, duration_s } => {
                eprintln!("  ok         {} ({duration_s:.1} s, {scenes} scenes)", m.path.display())
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
    let _ = connection.close(200, "done").await;
    Ok(report)
}

pub async fn run(services: &Services, args: &SubmitArgs) -> anyhow::Result<()> {
    let report = submit_and_report(services, &request(args)?).await?;
    println!("{}", report.batch);
    Ok(())
}
