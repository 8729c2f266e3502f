//! `scenequeue submit`

use super::terminal::{bar, plural, redraw};
use crate::args::{DetectorKind, SplitArgs, SubmitArgs};
use anyhow::Context;
use scenequeue_audio::scenes::SplitParams;
use scenequeue_core::config::Services;
use scenequeue_scheduler::PackMode;
use scenequeue_scheduler::{Detector, MediaOutcome, SubmitReport, SubmitRequest, submit_until, submit_without_broker};
use scenequeue_scheduler::{ProgressSnapshot, SubmitProgress};
use scenequeue_worker::SileroVad;
use scenequeue_worker::{Device, Runtime};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
        asr: crate::commands::enhance_options::asr(&args.enhance, &args.files.model_dir)?,
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
    let pool = super::connect_db(services, 4).await?;
    let broker = super::open_publisher(services).await;
    let stop = super::shutdown_on_signal();
    let bar = ProgressBar::start(&req.progress);
    let report = match &broker {
        Ok((_, publisher)) => submit_until(&pool, publisher, req, &stop).await,
        Err(e) => {
            eprintln!(
                "warning: RabbitMQ unreachable ({e}): the batch is stored and its jobs wait pending; the scheduler \
                 or a worker publishes them once the broker is back"
            );
            submit_without_broker(&pool, req, &stop).await
        }
    };
    bar.finish().await;
    let report = report.context("submission failed")?;
    if report.resumed {
        eprintln!("resuming interrupted batch {}", report.batch);
    }
    for m in &report.media {
        match &m.outcome {
            MediaOutcome::Split { scenes, duration_s, warning } => {
                let scenes = plural(*scenes as i64, "scene", "scenes");
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
    let counted = report.recordings;
    if counted.total() > report.media.len() {
        eprintln!(
            "  ... and {} more: {} stored, {} failed, {} duplicates in all (`scenequeue status {}` lists every failed one)",
            counted.total() - report.media.len(),
            counted.split,
            counted.failed,
            counted.duplicate,
            report.batch
        );
    }
    eprintln!(
        "batch {}: {}, {} in {} ({} published)",
        report.batch,
        plural(counted.total() as i64, "recording", "recordings"),
        plural(report.scenes as i64, "scene", "scenes"),
        plural(report.jobs as i64, "job", "jobs"),
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

/// Time between two redraws of the submission's progress bar.
const REDRAW: Duration = Duration::from_millis(250);

/// One line: a bar of recordings examined, audio stored, scenes cut, recordings refused.
fn progress_line(p: &ProgressSnapshot) -> String {
    if p.total == 0 {
        return "finding recordings…".into();
    }
    format!(
        "{} {} of {}  {:.2} audio h  {}  {} refused",
        bar(p.examined as f64 / p.total as f64),
        p.examined,
        plural(p.total as i64, "recording", "recordings"),
        p.audio_s / 3600.0,
        plural(p.scenes as i64, "scene", "scenes"),
        p.refused
    )
}

/// The submission's progress drawn on stderr while it runs, when stderr is a terminal (never into a log or a
/// pipe).
struct ProgressBar {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressBar {
    fn start(progress: &SubmitProgress) -> Self {
        let stop = CancellationToken::new();
        if !std::io::stderr().is_terminal() {
            return Self { stop, task: None };
        }
        let (progress, stopped) = (progress.clone(), stop.clone());
        let task = tokio::spawn(async move {
            loop {
                let _ = redraw(&mut std::io::stderr(), Some(&progress_line(&progress.snapshot())));
                tokio::select! {
                    _ = stopped.cancelled() => break,
                    _ = tokio::time::sleep(REDRAW) => {}
                }
            }
            let _ = redraw(&mut std::io::stderr(), None);
        });
        Self { stop, task: Some(task) }
    }

    /// Stops drawing and clears the line, before anything else is printed.
    async fn finish(self) {
        self.stop.cancel();
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

pub async fn run(services: &Services, args: &SubmitArgs) -> anyhow::Result<()> {
    let report = submit_and_report(services, &request(args)?).await?;
    println!("{}", report.batch);
    Ok(())
}
