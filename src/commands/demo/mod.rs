//! `scenequeue demo`: the whole system on generated audio. Sample speech is synthesised (espeak-ng), noise is
//! mixed in at a known SNR, the recordings are submitted, an in-process worker enhances them through RabbitMQ
//! and Postgres exactly as a farm would, and the report compares every scene with the clean original.

mod evaluate;
mod sample;

use crate::args::{DemoArgs, SplitArgs};
use anyhow::Context;
use scenequeue_core::config::Services;
use scenequeue_core::db;
use scenequeue_core::ids::BatchId;
use scenequeue_core::options::AsrOptions;
use scenequeue_core::transcripts::AsrInput;
use scenequeue_core::wer::Tally;
use scenequeue_scheduler::SubmitRequest;
use scenequeue_scheduler::transcripts;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The recogniser the demo transcribes with, when installed.
const DEMO_ASR: &str = "whisper-tiny.en";

/// What the farm heard in each recording, against what was said (empty when the batch was not transcribed).
async fn heard(pool: &sqlx::PgPool, batch: BatchId) -> anyhow::Result<String> {
    if transcripts::asked(pool, batch).await? != Some(true) {
        return Ok(String::new());
    }
    let mut out =
        format!("\n\nWhat {DEMO_ASR} heard (each scene's enhanced or untouched audio, whichever it was surer of):\n");
    let mut total = Tally::default();
    transcripts::per_recording(pool, batch, |recording| -> anyhow::Result<()> {
        let stem = Path::new(&recording.path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let texts: Vec<&str> =
            recording.scenes.iter().filter_map(|s| s.transcript.as_ref()).map(|t| t.text.as_str()).collect();
        let enhanced = recording
            .scenes
            .iter()
            .filter(|s| s.transcript.as_ref().is_some_and(|t| t.heard == Some(AsrInput::Enhanced)))
            .count();
        let heard = texts.join(" ");
        let said = sample::spoken(&stem).unwrap_or_default();
        let mut tally = Tally::default();
        tally.add(&said, &heard);
        total.merge(tally);
        out.push_str(&format!(
            "\n{stem} (WER {:.1} %, {enhanced} of {} scenes heard enhanced)\n  said:  {said}\n  heard: {heard}\n",
            tally.wer(),
            recording.scenes.len()
        ));
        Ok(())
    })
    .await?;
    out.push_str(&format!("\nWord error rate over all recordings: {:.1} %\n", total.wer()));
    Ok(out)
}

pub async fn run(services: &Services, args: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let input_dir = args.out.join("input");
    let reference_dir = args.out.join("reference");
    let enhanced_dir = args.out.join("enhanced");
    eprintln!("1/4 generating noisy sample speech (espeak-ng + sox, noise at {} dB SNR)", args.snr_db);
    let (input, reference, snr) = (input_dir.clone(), reference_dir.clone(), args.snr_db);
    tokio::task::spawn_blocking(move || sample::generate(&input, &reference, snr)).await??;

    eprintln!("2/4 submitting");
    let split = SplitArgs {
        min_scene_s: 1.0,
        max_scene_s: 30.0,
        min_silence_s: 0.5,
        split_silence_s: 0.2,
        job_seconds: 20.0,
        pack_window_s: None,
        max_attempts: 3,
    };
    // The samples are byte-identical on every run: process them again rather than skip them as duplicates.
    let asr = scenequeue_worker::asr::available(&args.worker.files.model_dir)
        .contains(&DEMO_ASR.to_string())
        .then(|| AsrOptions { model: DEMO_ASR.into(), language: "en".into(), input: AsrInput::Auto });
    let req = SubmitRequest {
        skip_duplicates: false,
        asr,
        ..crate::commands::submit::request_from(
            vec![input_dir.clone()],
            enhanced_dir,
            args.worker.model.clone(),
            &split,
        )
    };
    let report = crate::commands::submit::submit_and_report(services, &req).await?;

    eprintln!("3/4 running a worker until the batch is done");
    let shutdown = CancellationToken::new();
    let config = crate::commands::worker::config(&args.worker)?;
    let mut worker = tokio::spawn(scenequeue_worker::run(config, services.clone(), shutdown.clone().into()));
    let pool = super::connect_db(services, 2).await?;
    let wait = db::wait_for_batch(&pool, report.batch, Duration::from_secs(3600));
    tokio::pin!(wait);
    tokio::select! {
        r = &mut wait => r?,
        // The worker returns early only on a fatal error (model or library missing): report that.
        r = &mut worker => {
            r.context("worker task")??;
            anyhow::bail!("the worker stopped before the batch finished");
        }
    }
    shutdown.cancel();
    let worker_report = worker.await.context("worker task")??;

    eprintln!("4/4 measuring");
    let summary = evaluate::evaluate(&pool, report.batch, &reference_dir).await?;
    let mut text = summary.render(&worker_report, started.elapsed());
    text.push_str(&heard(&pool, report.batch).await?);
    std::fs::write(args.out.join("report.txt"), &text)?;
    println!("{text}");
    println!("Enhanced scenes: {}", args.out.join("enhanced").join(report.batch.to_string()).display());
    println!("Noisy inputs: {}   clean references: {}", input_dir.display(), reference_dir.display());
    println!("Report: {}", args.out.join("report.txt").display());
    Ok(())
}
