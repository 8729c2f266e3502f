//! A submission: recordings in, a stored batch with its scenes and jobs, jobs published.
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
use crate::ingest::{CutRecording, Entry, collect_inputs, content_hash, cut, cut_and_hash};
use crate::packing::{PackMode, PackedJob, Packer};
use crate::progress::SubmitProgress;
use futures_util::{Stream, StreamExt, stream};
use scenequeue_audio::scenes::{Span, SplitParams};
use scenequeue_audio::vad::SpeechDetector;
use scenequeue_core::batches;
use scenequeue_core::config::valid_model_name;
use scenequeue_core::dispatch::dispatch;
use scenequeue_core::ids::{BatchId, JobId, MediaId, SceneId};
use scenequeue_core::mq::Publisher;
use scenequeue_core::options::BatchOptions;
use scenequeue_core::outage::{Patience, StepError, retry_step};
use scenequeue_core::states::MediaState;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::future::Future;
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
            patience: Patience::default(),
            progress: SubmitProgress::default(),
        }
    }
}

/// The database steps of one submission, tried again while Postgres is away (see the module's documentation).
#[derive(Debug, Clone, Copy)]
struct Steps {
    patience: Patience,
    /// The batch, once it is open: giving up then leaves it interrupted; before, nothing was stored.
    batch: Option<BatchId>,
}

impl Steps {
    async fn run<T, F, Fut>(&self, what: &'static str, step: F) -> Result<T, SchedulerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        retry_step(&self.patience, what, step).await.map_err(|e| match (e, self.batch) {
            (StepError::Failed(e), _) => SchedulerError::Db(e),
            (gave_up, Some(batch)) => SchedulerError::DatabaseLost { batch, source: gave_up },
            (gave_up, None) => SchedulerError::DatabaseAway(gave_up),
        })
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

/// What became of one recording.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaOutcome {
    /// Cut into scenes and stored.
    Split {
        /// Scenes cut.
        scenes: usize,
        /// Length, seconds.
        duration_s: f64,
        /// Something the user should know about how it was read (non-finite samples replaced).
        warning: Option<String>,
    },
    /// Refused, with the reason stored for it.
    Failed(String),
    /// Already split for this model in `batch` (which may be this one, for a file given twice).
    Duplicate {
        /// The batch that holds it.
        batch: BatchId,
    },
}

/// One recording of a submission and what became of it.
#[derive(Debug, Clone)]
pub struct MediaReport {
    /// The recording.
    pub path: PathBuf,
    /// What became of it.
    pub outcome: MediaOutcome,
}

/// What a submission stored and published.
#[derive(Debug, Clone)]
pub struct SubmitReport {
    /// The batch.
    pub batch: BatchId,
    /// Every recording examined by this run.
    pub media: Vec<MediaReport>,
    /// Scenes stored by this run.
    pub scenes: usize,
    /// Jobs stored by this run.
    pub jobs: usize,
    /// Jobs published to the broker by this run.
    pub published: usize,
    /// This run took an interrupted batch back (recordings it already held were not read again).
    pub resumed: bool,
    /// The run was stopped before every recording was stored: the batch is `interrupted`.
    pub interrupted: bool,
}

/// Why a recording is not planned.
pub enum Rejected {
    Failed(String),
    Duplicate(BatchId),
}

/// One recording after hashing and (unless a duplicate) decoding.
pub struct Examined {
    pub path: PathBuf,
    pub hash: Option<String>,
    pub outcome: Result<CutRecording, Rejected>,
}

/// Runs blocking work on the blocking pool; a panic in it (a decoder bug on a hostile file) becomes an error
/// naming `path`, never the end of the submission.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let message = scenequeue_core::panics::message(panic.as_ref());
            Err(format!("{}: the decoder crashed on this file: {message}", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// What examining a recording looks up in the database, and how patiently.
#[derive(Clone)]
struct Lookup {
    pool: PgPool,
    model: String,
    skip_duplicates: bool,
    steps: Steps,
}

async fn examine(
    lookup: Lookup,
    entry: Entry,
    split: SplitParams,
    detector: Option<Detector>,
) -> Result<Examined, SchedulerError> {
    let Lookup { pool, model, skip_duplicates, steps } = lookup;
    let path = match entry {
        Entry::Recording(path) => path,
        Entry::Failed(path, reason) => {
            let outcome = Err(Rejected::Failed(format!("{}: {reason}", path.display())));
            return Ok(Examined { path, hash: None, outcome });
        }
    };
    let detect = move || detector.as_ref().map(|d| d.0.clone());
    // A path already split for this model is probably the same recording submitted again: hash it first, so a
    // duplicate costs one read and no decoding. Anything else is hashed while it is decoded: one read.
    let known = skip_duplicates && steps.run("looking up a recording", || path_known(&pool, &model, &path)).await?;
    if !known {
        let (p, detector) = (path.clone(), detect());
        let (hash, outcome) = match blocking(&path, move || Ok(cut_and_hash(&p, &split, detector.as_deref()))).await {
            Ok(done) => done,
            Err(crashed) => (None, Err(crashed)),
        };
        if let Some(hash) = &hash
            && let Some(batch) =
                steps.run("looking up a recording", || earlier_split(&pool, &model, hash, skip_duplicates)).await?
        {
            return Ok(Examined { path, hash: Some(hash.clone()), outcome: Err(Rejected::Duplicate(batch)) });
        }
        return Ok(Examined { path, hash, outcome: outcome.map_err(Rejected::Failed) });
    }
    let p = path.clone();
    let hash = match blocking(&path, move || content_hash(&p)).await {
        Ok(h) => h,
        Err(e) => return Ok(Examined { path, hash: None, outcome: Err(Rejected::Failed(e)) }),
    };
    if let Some(batch) =
        steps.run("looking up a recording", || earlier_split(&pool, &model, &hash, skip_duplicates)).await?
    {
        return Ok(Examined { path, hash: Some(hash), outcome: Err(Rejected::Duplicate(batch)) });
    }
    let (p, detector) = (path.clone(), detect());
    let outcome = blocking(&path, move || cut(&p, &split, detector.as_deref())).await.map_err(Rejected::Failed);
    Ok(Examined { path, hash: Some(hash), outcome })
}

/// Whether a recording at `path` was already split for `model`.
async fn path_known(pool: &PgPool, model: &str, path: &Path) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM media m JOIN batches b ON b.id = m.batch_id
         WHERE m.path = $1 AND m.state = $3 AND b.model = $2)",
    )
    .bind(path.to_string_lossy().as_ref())
    .bind(model)
    .bind(MediaState::Split)
    .fetch_one(pool)
    .await
}

/// The batch in which the recording with `hash` was already split for `model`, when duplicates are skipped.
async fn earlier_split(
    pool: &PgPool,
    model: &str,
    hash: &str,
    skip_duplicates: bool,
) -> Result<Option<BatchId>, sqlx::Error> {
    if !skip_duplicates {
        return Ok(None);
    }
    batches::earlier_submission(pool, hash, model).await
}

/// Identifies a submission by what shapes its batch (model, outputs, inputs, cutting and packing), not by its
/// priority: running the same command again finds the batch it left interrupted.
fn submission_key(req: &SubmitRequest, output_dir: &Path, entries: &[Entry]) -> String {
    let mut hasher = blake3::Hasher::new();
    let p = &req.split;
    hasher.update(
        format!(
            "model={}\nout={}\nsplit={:?}\nbudget={}\npack={:?}\nattempts={}\ndetector={}\noptions={:?}\n",
            req.model,
            output_dir.display(),
            (p.frame_s, p.min_scene_s, p.max_scene_s, p.min_silence_s, p.split_silence_s, p.margin_db, p.floor_db),
            req.job_budget_s,
            req.pack_mode,
            req.max_attempts,
            req.detector.is_some(),
            req.options
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
        .map(|entry| examine(lookup.clone(), entry, req.split.clone(), req.detector.clone()))
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
    let mut report =
        SubmitReport { batch, media: Vec::new(), scenes: 0, jobs: 0, published: 0, resumed: false, interrupted: false };
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
        report.media.push(media);
        if writer.pending_scenes >= CHUNK_SCENES || writer.media.len() >= CHUNK_MEDIA {
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

/// Rows planned but not yet stored. Scenes wait here until the packer closes their job.
struct BatchWriter {
    batch: BatchId,
    /// The run that owns the batch: checked, under a row lock, in every chunk's transaction.
    owner: Uuid,
    packer: Packer,
    max_attempts: i32,
    next_recording: usize,
    /// Recordings with scenes not yet in a closed job: id and spans.
    open: HashMap<usize, (MediaId, Vec<Span>)>,
    /// Scenes assigned per recording so far (to know when a recording is complete).
    assigned: HashMap<usize, usize>,
    media: Vec<MediaRow>,
    jobs: Vec<(JobId, f64)>,
    scenes: Vec<SceneRow>,
    pending_scenes: usize,
}

struct MediaRow {
    id: MediaId,
    path: String,
    hash: Option<String>,
    info: Option<(i32, i16, f64)>,
    decoder: Option<&'static str>,
    error: Option<String>,
    warning: Option<String>,
}

struct SceneRow {
    id: SceneId,
    media: MediaId,
    job: JobId,
    idx: i32,
    span: Span,
}

impl BatchWriter {
    fn new((batch, owner): (BatchId, Uuid), budget_s: f64, mode: PackMode, max_attempts: i32) -> Self {
        Self {
            batch,
            owner,
            packer: Packer::new(budget_s, mode),
            max_attempts,
            next_recording: 0,
            open: HashMap::new(),
            assigned: HashMap::new(),
            media: Vec::new(),
            jobs: Vec::new(),
            scenes: Vec::new(),
            pending_scenes: 0,
        }
    }

    fn add(&mut self, item: Examined) -> MediaReport {
        let path = item.path.to_string_lossy().into_owned();
        let outcome = match item.outcome {
            Err(Rejected::Duplicate(batch)) => {
                return MediaReport { path: item.path, outcome: MediaOutcome::Duplicate { batch } };
            }
            Err(Rejected::Failed(error)) => {
                let row = MediaRow {
                    id: MediaId::new(),
                    path,
                    hash: item.hash,
                    info: None,
                    decoder: None,
                    error: Some(error.clone()),
                    warning: None,
                };
                self.media.push(row);
                MediaOutcome::Failed(error)
            }
            Ok(cut) => {
                let id = MediaId::new();
                let recording = self.next_recording;
                self.next_recording += 1;
                let durations: Vec<f64> = cut.scenes.iter().map(Span::duration_s).collect();
                let warning = (cut.info.non_finite > 0).then(|| {
                    format!(
                        "{} non-finite samples (NaN or infinity) were replaced by silence while decoding",
                        cut.info.non_finite
                    )
                });
                let outcome = MediaOutcome::Split {
                    scenes: cut.scenes.len(),
                    duration_s: cut.info.duration_s(),
                    warning: warning.clone(),
                };
                self.media.push(MediaRow {
                    id,
                    path,
                    hash: item.hash,
                    info: Some((
                        cut.info.sample_rate as i32,
                        i16::try_from(cut.info.channels).unwrap_or(i16::MAX),
                        cut.info.duration_s(),
                    )),
                    decoder: Some(cut.info.decoder.as_str()),
                    error: None,
                    warning,
                });
                self.pending_scenes += cut.scenes.len();
                self.open.insert(recording, (id, cut.scenes));
                for job in self.packer.add_recording(recording, &durations) {
                    self.close(job);
                }
                outcome
            }
        };
        MediaReport { path: item.path, outcome }
    }

    /// Turns a closed job into rows and releases recordings whose scenes are all assigned.
    fn close(&mut self, job: PackedJob) {
        let job_id = JobId::new();
        for (recording, idx) in job.scenes {
            let Some((media, spans)) = self.open.get(&recording) else { continue };
            self.scenes.push(SceneRow {
                id: SceneId::new(),
                media: *media,
                job: job_id,
                idx: idx as i32,
                span: spans[idx],
            });
            let done = self.assigned.entry(recording).or_default();
            *done += 1;
            if *done == spans.len() {
                self.open.remove(&recording);
                self.assigned.remove(&recording);
            }
        }
        self.jobs.push((job_id, job.cost_s));
    }

    /// Closes the open job and stores everything planned, in one transaction (tried again while Postgres is away).
    /// Returns (scenes, jobs) stored.
    async fn flush(&mut self, pool: &PgPool, steps: &Steps) -> Result<(usize, usize), SchedulerError> {
        if let Some(job) = self.packer.flush() {
            self.close(job);
        }
        let this = &*self;
        if !steps.run("storing recordings", || this.commit(pool)).await? {
            return Err(SchedulerError::TakenOver(self.batch));
        }
        let stored = (self.scenes.len(), self.jobs.len());
        self.media.clear();
        self.jobs.clear();
        self.scenes.clear();
        self.pending_scenes = 0;
        Ok(stored)
    }

    /// Stores the planned rows if this run still owns the batch (taking it back if it was marked interrupted while
    /// Postgres was away); false, with nothing stored, if another run took it. Rows already stored by a commit
    /// whose answer was lost are left as they are, so it can be run again.
    async fn commit(&self, pool: &PgPool) -> Result<bool, sqlx::Error> {
        let mut tx = pool.begin().await?;
        if !batches::owns(&mut tx, self.batch, self.owner).await?
            && !batches::reclaim(&mut tx, self.batch, self.owner).await?
        {
            return Ok(false);
        }
        self.insert(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert(&self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO media (id, batch_id, path, content_hash, state, sample_rate, channels, duration_s, error,
                               decoder, warning)
             SELECT id, $1, path, hash, CASE WHEN error IS NULL THEN $10 ELSE $11 END,
                    sr, ch, dur, error, decoder, warning
             FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::int4[], $6::int2[], $7::float8[], $8::text[],
                         $9::text[], $12::text[])
                  AS t(id, path, hash, sr, ch, dur, error, decoder, warning)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(self.batch)
        .bind(self.media.iter().map(|m| m.id.0).collect::<Vec<Uuid>>())
        .bind(self.media.iter().map(|m| m.path.as_str()).collect::<Vec<&str>>())
        .bind(self.media.iter().map(|m| m.hash.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(self.media.iter().map(|m| m.info.map(|i| i.0)).collect::<Vec<Option<i32>>>())
        .bind(self.media.iter().map(|m| m.info.map(|i| i.1)).collect::<Vec<Option<i16>>>())
        .bind(self.media.iter().map(|m| m.info.map(|i| i.2)).collect::<Vec<Option<f64>>>())
        .bind(self.media.iter().map(|m| m.error.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(self.media.iter().map(|m| m.decoder).collect::<Vec<Option<&str>>>())
        .bind(MediaState::Split)
        .bind(MediaState::Failed)
        .bind(self.media.iter().map(|m| m.warning.as_deref()).collect::<Vec<Option<&str>>>())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO jobs (id, batch_id, audio_s, max_attempts)
             SELECT id, $1, audio_s, $4 FROM UNNEST($2::uuid[], $3::float8[]) AS t(id, audio_s)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(self.batch)
        .bind(self.jobs.iter().map(|(j, _)| j.0).collect::<Vec<Uuid>>())
        .bind(self.jobs.iter().map(|(_, d)| *d).collect::<Vec<f64>>())
        .bind(self.max_attempts)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO scenes (id, media_id, batch_id, job_id, idx, start_s, end_s)
             SELECT id, media_id, $1, job_id, idx, start_s, end_s
             FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::int4[], $6::float8[], $7::float8[])
                  AS t(id, media_id, job_id, idx, start_s, end_s)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(self.batch)
        .bind(self.scenes.iter().map(|s| s.id.0).collect::<Vec<Uuid>>())
        .bind(self.scenes.iter().map(|s| s.media.0).collect::<Vec<Uuid>>())
        .bind(self.scenes.iter().map(|s| s.job.0).collect::<Vec<Uuid>>())
        .bind(self.scenes.iter().map(|s| s.idx).collect::<Vec<i32>>())
        .bind(self.scenes.iter().map(|s| s.span.start_s).collect::<Vec<f64>>())
        .bind(self.scenes.iter().map(|s| s.span.end_s).collect::<Vec<f64>>())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
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
        owner: Uuid::new_v4(),
    };
    batches::create(pool, &new).await?;
    let examined = recordings.into_iter().map(|(path, cut)| Ok(Examined { path, hash: None, outcome: Ok(cut) }));
    store(pool, Some(publisher), &req, (batch, new.owner), stream::iter(examined), &CancellationToken::new()).await
}
