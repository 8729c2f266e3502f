//! A submission: recordings in, a stored batch with its scenes and jobs, jobs published. This file holds the
//! request and its flow; `examine` reads each recording, `writer` stores the plan, `report` says what became of
//! each recording.
//!
//! Streaming and resumable. Recordings are decoded a few at a time and planned one after another (see
//! `packing`); every `CHUNK_SCENES` scenes the plan so far is committed and its jobs published, so memory stays
//! flat however large the submission, and workers start while ingest goes on. Each recording is known by the
//! hash of its bytes: one already split for the same model (in any batch) is skipped, so submitting the same
//! files again after a crash picks up where the first submission stopped. A new file is hashed while it is
//! decoded (one read); a path already split for the model is hashed first, so a duplicate is never decoded.
//! Each recording stores which decoder read it, for the workers.
//!
//! Outages. With the broker unreachable the batch is stored all the same and its jobs stay `pending`: a failed
//! publication is logged, never an error, and the scheduler or any worker publishes them once the broker is
//! back ([`submit_without_broker`] when it cannot be reached at all). With Postgres gone mid-submission, every
//! database step (each one a read, an idempotent write, or a transaction that rolled back) is tried again with
//! capped back-off for `SubmitRequest::patience` (five minutes by default); then the submission stops with
//! [`SchedulerError::DatabaseLost`], which says the batch is interrupted and that the same command resumes it. A
//! run whose batch was marked interrupted while it could not renew its heartbeat takes it back and goes on.

use crate::SchedulerError;
use crate::examine::{Examined, Lookup, Rejected, examine};
use crate::ingest::{CutRecording, Entry, collect_inputs};
use crate::packing::PackMode;
use crate::progress::SubmitProgress;
use crate::report::SubmitReport;
use crate::steps::Steps;
use crate::writer::BatchWriter;
use futures_util::{Stream, StreamExt, stream};
use scenequeue_audio::scenes::SplitParams;
use scenequeue_audio::vad::SpeechDetector;
use scenequeue_core::batches;
use scenequeue_core::config::valid_model_name;
use scenequeue_core::dispatch::dispatch;
use scenequeue_core::ids::BatchId;
use scenequeue_core::mq::Publisher;
use scenequeue_core::options::{AsrOptions, BatchOptions};
use scenequeue_core::outage::Patience;
use sqlx::PgPool;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Scenes planned before a chunk is committed and published.
pub const CHUNK_SCENES: usize = 10_000;
/// Recordings stored before a chunk is committed, whatever their scene count.
const CHUNK_MEDIA: usize = 2_000;

/// A submission: which recordings, where their outputs go, and how they are cut and packed. `Default` holds
/// every documented default (the CLI's flags take theirs from it).
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    /// Recordings, or directories searched recursively.
    pub inputs: Vec<PathBuf>,
    /// Where enhanced scenes are written (must be reachable by the workers).
    pub output_dir: PathBuf,
    /// The model to enhance with (a directory under the workers' model directory).
    pub model: String,
    /// How recordings are cut into scenes.
    pub split: SplitParams,
    /// Seconds of audio (or of windows, see `pack_mode`) per job.
    pub job_budget_s: f64,
    /// What a scene costs in the budget.
    pub pack_mode: PackMode,
    /// Attempts per job before it is declared dead.
    pub max_attempts: i32,
    /// Recordings decoded at once.
    pub decode_concurrency: usize,
    /// Skip recordings already split for this model (by content hash). Off to process them again on purpose.
    pub skip_duplicates: bool,
    /// Higher runs first.
    pub priority: i16,
    /// Jobs the broker may hold queued (see `core::dispatch`).
    pub max_queued: i64,
    /// Cut with a voice-activity model instead of by energy.
    pub detector: Option<Detector>,
    /// Complete this interrupted batch (else an interrupted batch of the same submission is found by itself).
    pub resume: Option<BatchId>,
    /// Enhancement settings stored on the batch, applied by the workers over their own defaults.
    pub options: BatchOptions,
    /// Transcription after enhancement, stored on the batch; None: enhancement only.
    pub asr: Option<AsrOptions>,
    /// How long each database step waits for Postgres to come back before the submission stops.
    pub patience: Patience,
    /// Counters the submission keeps up to date as it goes (a progress bar reads them).
    pub progress: SubmitProgress,
}

impl Default for SubmitRequest {
    fn default() -> Self {
        Self {
            inputs: Vec::new(),
            output_dir: PathBuf::from("out"),
            model: "deepfilternet3".into(),
            split: SplitParams::default(),
            job_budget_s: 300.0,
            pack_mode: PackMode::Duration,
            max_attempts: 3,
            decode_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            skip_duplicates: true,
            priority: 0,
            max_queued: scenequeue_core::dispatch::DEFAULT_MAX_QUEUED,
            detector: None,
            resume: None,
            options: BatchOptions::default(),
            asr: None,
            patience: Patience::default(),
            progress: SubmitProgress::default(),
        }
    }
}

/// Publishes pending jobs when there is a broker; a failure leaves them pending for the scheduler or a worker,
/// and is logged, never an error. Returns how many were published.
async fn publish(pool: &PgPool, publisher: Option<&Publisher>, max_queued: i64) -> usize {
    let Some(publisher) = publisher else { return 0 };
    match dispatch(pool, publisher, max_queued).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "publishing failed; the jobs stay pending for the scheduler or a worker");
            0
        }
    }
}

/// A shared voice-activity detector for scene splitting.
#[derive(Clone)]
pub struct Detector(pub Arc<dyn SpeechDetector>);

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Detector({} Hz, {} s frames)", self.0.sample_rate(), self.0.frame_s())
    }
}

/// Identifies a submission by what shapes its batch (model, outputs, inputs, cutting and packing), not by its
/// priority: running the same command again finds the batch it left interrupted.
fn submission_key(req: &SubmitRequest, output_dir: &Path, entries: &[Entry]) -> String {
    let mut hasher = blake3::Hasher::new();
    let p = &req.split;
    hasher.update(
        format!(
            "model={}\nout={}\nsplit={:?}\nbudget={}\npack={:?}\nattempts={}\ndetector={}\noptions={:?}\nasr={:?}\n",
            req.model,
            output_dir.display(),
            (p.frame_s, p.min_scene_s, p.max_scene_s, p.min_silence_s, p.split_silence_s, p.margin_db, p.floor_db),
            req.job_budget_s,
            req.pack_mode,
            req.max_attempts,
            req.detector.is_some(),
            req.options,
            req.asr
        )
        .as_bytes(),
    );
    for entry in entries {
        hasher.update(entry.path().to_string_lossy().as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
}

/// The batch this run stores into, and whether it resumes an interrupted one: `req.resume` if given (it must be
/// interrupted and of the same submission), else the interrupted batch of the same submission, else a new one
/// (with the id `fresh`, chosen once so that a creation tried again cannot make two).
async fn open_batch(
    pool: &PgPool,
    req: &SubmitRequest,
    (output_dir, key): (&Path, &str),
    (owner, fresh): (Uuid, BatchId),
    steps: &Steps,
) -> Result<(BatchId, bool), SchedulerError> {
    let opening = "opening the batch";
    let candidate = match req.resume {
        Some(batch) => match steps.run(opening, || batches::state_and_key(pool, batch)).await? {
            None => return Err(SchedulerError::Resume(format!("there is no batch {batch}"))),
            Some((_, stored)) if stored.as_deref() != Some(key) => {
                return Err(SchedulerError::Resume(format!(
                    "batch {batch} was submitted with other recordings or settings: give the same paths and \
                     options as the first run"
                )));
            }
            Some(_) => Some(batch),
        },
        None => steps.run(opening, || batches::interrupted_submission(pool, key)).await?,
    };
    if let Some(batch) = candidate {
        if steps.run(opening, || batches::resume(pool, batch, owner)).await? {
            return Ok((batch, true));
        }
        if req.resume.is_some() {
            return Err(SchedulerError::Resume(format!(
                "batch {batch} is not interrupted (it is complete, or its submitter is still running)"
            )));
        }
    }
    let output_dir = output_dir.to_string_lossy();
    let new = batches::NewBatch {
        id: fresh,
        model: &req.model,
        output_dir: output_dir.as_ref(),
        priority: req.priority,
        submission_key: key,
        options: req.options,
        asr: req.asr.as_ref(),
        owner,
    };
    steps.run(opening, || batches::create(pool, &new)).await?;
    Ok((fresh, false))
}

/// Submits `req` to the end. See [`submit_until`].
pub async fn submit(pool: &PgPool, publisher: &Publisher, req: &SubmitRequest) -> Result<SubmitReport, SchedulerError> {
    submit_until(pool, publisher, req, &CancellationToken::new()).await
}

/// Submits `req` until every recording is stored or `stop` fires. Stopped, or failing midway, the batch is left
/// `interrupted` with what was stored so far; the same submission run again (or with `resume`) completes it.
pub async fn submit_until(
    pool: &PgPool,
    publisher: &Publisher,
    req: &SubmitRequest,
    stop: &CancellationToken,
) -> Result<SubmitReport, SchedulerError> {
    submit_through(pool, Some(publisher), req, stop).await
}

/// Submits `req` while the broker cannot be reached: the batch is stored as by [`submit_until`] and every job
/// stays `pending`; the scheduler or any worker publishes them once the broker is back.
pub async fn submit_without_broker(
    pool: &PgPool,
    req: &SubmitRequest,
    stop: &CancellationToken,
) -> Result<SubmitReport, SchedulerError> {
    submit_through(pool, None, req, stop).await
}

async fn submit_through(
    pool: &PgPool,
    publisher: Option<&Publisher>,
    req: &SubmitRequest,
    stop: &CancellationToken,
) -> Result<SubmitReport, SchedulerError> {
    if !valid_model_name(&req.model) {
        return Err(SchedulerError::BadModelName(req.model.clone()));
    }
    req.options.validate().map_err(SchedulerError::BadOptions)?;
    // Walking a large tree (on a network share, say) is blocking work: off the runtime.
    let (out, inputs) = (req.output_dir.clone(), req.inputs.clone());
    let (output_dir, mut entries) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&out)
            .map_err(|e| SchedulerError::Input { path: out.clone(), reason: e.to_string() })?;
        let output_dir = std::fs::canonicalize(&out)
            .map_err(|e| SchedulerError::Input { path: out.clone(), reason: e.to_string() })?;
        Ok::<_, SchedulerError>((output_dir, collect_inputs(&inputs)?))
    })
    .await??;
    if entries.is_empty() {
        return Err(SchedulerError::NothingToSubmit("no recordings found in the given paths".into()));
    }
    let key = submission_key(req, &output_dir, &entries);
    // This run's claim on the batch: a run that stalls long enough to be taken over stores nothing more.
    let owner = Uuid::new_v4();
    let steps = Steps { patience: req.patience, batch: None };
    let (batch, resumed) = open_batch(pool, req, (&output_dir, &key), (owner, BatchId::new()), &steps).await?;
    let steps = Steps { batch: Some(batch), ..steps };
    if resumed {
        let stored: HashSet<String> =
            steps.run("opening the batch", || batches::stored_paths(pool, batch)).await?.into_iter().collect();
        entries.retain(|e| !stored.contains(e.path().to_string_lossy().as_ref()));
    }
    req.progress.set_total(entries.len());
    let stop = stop.child_token();
    let heartbeat = tokio::spawn(ingest_heartbeat(pool.clone(), batch, owner, stop.clone()));
    let lookup = Lookup { pool: pool.clone(), model: req.model.clone(), skip_duplicates: req.skip_duplicates, steps };
    let examined = stream::iter(entries)
        .map(|entry| examine(lookup.clone(), entry, req.split.clone(), req.detector.as_ref().map(|d| d.0.clone())))
        .buffered(req.decode_concurrency.max(1));
    let stored = store(pool, publisher, req, (batch, owner), examined, &stop).await;
    heartbeat.abort();
    match stored {
        Ok(mut report) => {
            report.resumed = resumed;
            Ok(report)
        }
        Err(e) => {
            // Best effort: with the database gone the scheduler marks it once the heartbeat is stale.
            let _ = batches::interrupt(pool, batch, owner).await;
            Err(e)
        }
    }
}

/// Renews the batch's ingest heartbeat until aborted; stops the run (`lost`) once it no longer owns the batch. A
/// batch marked interrupted while Postgres was away (the heartbeat went stale) is taken back, unless the run is
/// stopping.
async fn ingest_heartbeat(pool: PgPool, batch: BatchId, owner: Uuid, lost: CancellationToken) {
    let mut tick = tokio::time::interval(batches::INGEST_HEARTBEAT);
    loop {
        tick.tick().await;
        match batches::ingest_heartbeat(&pool, batch, owner).await {
            Ok(true) => {}
            Ok(false) if !lost.is_cancelled() && reclaim(&pool, batch, owner).await.unwrap_or(false) => {
                tracing::warn!(batch.id = %batch, "the batch was marked interrupted while Postgres was away; taken back");
            }
            Ok(false) => {
                tracing::warn!(batch.id = %batch, "this run no longer owns the batch; stopping");
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(batch.id = %batch, error = %e, "could not renew the submission heartbeat"),
        }
    }
}

/// The run `owner` takes back its batch marked interrupted while it could not renew its heartbeat.
async fn reclaim(pool: &PgPool, batch: BatchId, owner: Uuid) -> Result<bool, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    batches::reclaim(&mut connection, batch, owner).await
}

/// active: the run `owner` activates its batch. It was taken back first if it had been marked interrupted while
/// Postgres was away; an activation tried again after its commit went through finds it already done.
async fn activate(pool: &PgPool, batch: BatchId, owner: Uuid) -> Result<bool, sqlx::Error> {
    if batches::activate(pool, batch, owner).await? {
        return Ok(true);
    }
    if reclaim(pool, batch, owner).await? {
        return batches::activate(pool, batch, owner).await;
    }
    batches::activated_by(pool, batch, owner).await
}

/// Stores examined recordings into `batch` as they come, committing and dispatching every chunk; stopped by
/// `stop`, it commits what it has and leaves the batch interrupted.
async fn store(
    pool: &PgPool,
    publisher: Option<&Publisher>,
    req: &SubmitRequest,
    (batch, owner): (BatchId, Uuid),
    examined: impl Stream<Item = Result<Examined, SchedulerError>>,
    stop: &CancellationToken,
) -> Result<SubmitReport, SchedulerError> {
    let steps = Steps { patience: req.patience, batch: Some(batch) };
    let mut writer = BatchWriter::new((batch, owner), req.job_budget_s, req.pack_mode, req.max_attempts);
    let mut report = SubmitReport::new(batch);
    let mut hashes: HashSet<String> = HashSet::new();
    let mut examined = std::pin::pin!(examined);
    loop {
        let next = tokio::select! {
            // A stop wins over a recording that is ready at the same moment.
            biased;
            _ = stop.cancelled() => None,
            next = examined.next() => Some(next),
        };
        let Some(next) = next else {
            // Stopped: keep what was examined, leave the rest to the next run.
            let (scenes, jobs) = writer.flush(pool, &steps).await?;
            report.scenes += scenes;
            report.jobs += jobs;
            report.published += publish(pool, publisher, req.max_queued).await;
            steps.run("marking the batch interrupted", || batches::interrupt(pool, batch, owner)).await?;
            report.interrupted = true;
            return Ok(report);
        };
        let Some(item) = next else { break };
        let mut item = item?;
        // The same bytes twice in one submission: keep the first.
        if let (Some(hash), Ok(_), true) = (&item.hash, &item.outcome, req.skip_duplicates)
            && !hashes.insert(hash.clone())
        {
            item.outcome = Err(Rejected::Duplicate(batch));
        }
        let media = writer.add(item);
        req.progress.record(&media);
        report.add(media);
        if writer.pending_scenes >= CHUNK_SCENES || writer.pending_media() >= CHUNK_MEDIA {
            let (scenes, jobs) = writer.flush(pool, &steps).await?;
            report.scenes += scenes;
            report.jobs += jobs;
            report.published += publish(pool, publisher, req.max_queued).await;
        }
    }
    let (scenes, jobs) = writer.flush(pool, &steps).await?;
    report.scenes += scenes;
    report.jobs += jobs;

    if !steps.run("activating the batch", || activate(pool, batch, owner)).await? {
        return Err(SchedulerError::TakenOver(batch));
    }
    report.published += publish(pool, publisher, req.max_queued).await;
    Ok(report)
}

/// Stores already-cut recordings as a batch through the same planner and writer as `submit` (benchmarks).
pub async fn store_cut_batch(
    pool: &PgPool,
    publisher: &Publisher,
    model: &str,
    recordings: impl IntoIterator<Item = (PathBuf, CutRecording)>,
    job_budget_s: f64,
    max_queued: i64,
) -> Result<SubmitReport, SchedulerError> {
    let req = SubmitRequest {
        output_dir: PathBuf::from("/dev/null"),
        model: model.to_string(),
        job_budget_s,
        decode_concurrency: 1,
        skip_duplicates: false,
        max_queued,
        ..SubmitRequest::default()
    };
    let batch = BatchId::new();
    let new = batches::NewBatch {
        id: batch,
        model,
        output_dir: "/dev/null",
        priority: 0,
        submission_key: "",
        options: BatchOptions::default(),
        asr: None,
        owner: Uuid::new_v4(),
    };
    batches::create(pool, &new).await?;
    let examined = recordings.into_iter().map(|(path, cut)| Ok(Examined { path, hash: None, outcome: Ok(cut) }));
    store(pool, Some(publisher), &req, (batch, new.owner), stream::iter(examined), &CancellationToken::new()).await
}
