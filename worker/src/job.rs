//! One leased job: its scenes run group by group under the watchdog, each outcome written under the job's
//! fence, and every failure turned into how the attempt ends by its disposition (a scene's by
//! `SceneFailure::disposition`, the worker's own by `WorkerError::disposition`).

use crate::ctx::Ctx;
use crate::disposition::Disposition;
use crate::error::WorkerError;
use crate::failure::SceneFailure;
use crate::health::SelfCheck;
use crate::heartbeat::Progress;
use crate::inference::ThreadGone;
use crate::paths::{remove_stale_attempts, scene_output};
use crate::recorder::Recorder;
use crate::report::JobCounts;
use crate::scene::SceneTask;
use crate::tuning::Tuning;
use crate::watchdog::Watchdog;
use scenequeue_core::fence::Fence;
use scenequeue_core::ids::BatchId;
use scenequeue_core::options::AsrOptions;
use scenequeue_core::results::{RecordError, SceneResult};
use scenequeue_core::scenes::{self, JobWork, PendingScene};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Crashes (expired leases, groups that hung or panicked) after which a job runs scene by scene, each scene in
/// a child process of its own.
pub const ISOLATE_AFTER_CRASHES: i32 = 2;

/// How an attempt at a job ended.
#[derive(Debug)]
pub enum JobEnd {
    /// Every scene has a terminal state.
    Done,
    /// The lease was lost (taken over): nothing more was written.
    LeaseLost,
    /// Another attempt may succeed; `crashed` counts it towards running scene by scene.
    Retry {
        /// Why.
        reason: String,
        /// A group hung or panicked.
        crashed: bool,
    },
    /// This worker is at fault: the job goes back without spending an attempt, and the worker stops taking jobs
    /// until the check passes.
    Unhealthy {
        /// Why.
        reason: String,
        /// What must work again.
        check: SelfCheck,
    },
    /// The worker is shutting down and its grace ran out: the job goes back without spending an attempt.
    HandedBack,
}

/// The leased job's identity and its attempt's context.
pub struct Attempt<'a> {
    /// The lease.
    pub fence: Fence,
    /// The job's batch.
    pub batch: BatchId,
    /// Expired leases of the job so far.
    pub crashes: i32,
    /// Cancelled when the lease is lost.
    pub lost: &'a CancellationToken,
    /// Cancelled when the job must be handed back now (shutdown after its grace, or a second signal).
    pub hand_back: &'a CancellationToken,
    /// The watchdog's deadline, which gates the lease's renewal.
    pub progress: &'a Progress,
}

/// What an attempt settled and how it ended: an error only for what the consume loop decides (a service away,
/// or nothing this worker can do).
pub struct Attempted {
    /// Scenes recorded by this attempt.
    pub counts: JobCounts,
    /// How it ended.
    pub end: Result<JobEnd, WorkerError>,
}

/// Runs what is left of the job.
pub async fn run(ctx: &Ctx<'_>, at: &Attempt<'_>, watchdog: &mut Watchdog) -> Attempted {
    let mut job =
        JobRun { ctx, at, recorder: Recorder::default(), counts: JobCounts::default(), model: None, asr: None };
    let end = match job.scenes(watchdog).await {
        Ok(end) => job.ending(end).await,
        Err(e) => Err(e),
    };
    let end = end.or_else(|e| job.decide(e));
    Attempted { counts: job.counts, end }
}

/// One attempt in progress: what it has to record, and what it settled so far.
struct JobRun<'c, 'a> {
    ctx: &'c Ctx<'c>,
    at: &'c Attempt<'a>,
    recorder: Recorder,
    counts: JobCounts,
    /// The batch's model and output directory, once the attempt has started.
    model: Option<(String, PathBuf)>,
    /// The batch's transcription, if it asked for one.
    asr: Option<AsrOptions>,
}

impl JobRun<'_, '_> {
    async fn scenes(&mut self, watchdog: &mut Watchdog) -> Result<JobEnd, WorkerError> {
        let (ctx, at) = (self.ctx, self.at);
        // One fenced write reads what is left (scenes finished by an earlier attempt keep their outcome) and marks
        // every scene left running: they are all handed to the model in this attempt.
        let Some(JobWork { model, output_dir, options, asr, attempt, scenes: pending }) =
            scenes::start_attempt(ctx.pool, &at.fence).await?
        else {
            return Ok(JobEnd::LeaseLost);
        };
        let output_dir = PathBuf::from(output_dir);
        self.model = Some((model.clone(), output_dir.clone()));
        self.asr = asr;
        let tuning = Tuning::resolve(&ctx.config.post, &options);
        // Files an earlier attempt wrote and never recorded (its worker was killed in between, so its lease ran out
        // and this is a later attempt) go now.
        if attempt > 1 {
            let finals: Vec<PathBuf> = pending.iter().map(|s| self.task(s, &output_dir, tuning).1).collect();
            match tokio::task::spawn_blocking(move || remove_stale_attempts(&finals)).await {
                Ok(0) => {}
                Ok(removed) => info!(removed, "removed the unrecorded files of an earlier attempt"),
                Err(e) => warn!(error = %e, "could not look for the files of an earlier attempt"),
            }
        }
        let isolate = at.crashes >= ISOLATE_AFTER_CRASHES;
        if isolate {
            warn!(
                crashes = at.crashes,
                "this job crashed its workers before: running its scenes one by one, each in a child process"
            );
        }
        // Scenes go to the inference thread one at a time, or in groups when windows are batched across scenes.
        let group_s = if isolate { 0.0 } else { ctx.config.fixed_windows.map_or(0.0, |f| f.group_seconds()) };
        // Recordings that hung a scene: their other scenes would hang too (a stale mount), each costing a thread.
        let mut hung: HashSet<String> = HashSet::new();
        let mut rest = pending.as_slice();
        while !rest.is_empty() {
            if at.lost.is_cancelled() {
                return Ok(JobEnd::LeaseLost);
            }
            if at.hand_back.is_cancelled() {
                return Ok(JobEnd::HandedBack);
            }
            let take = group_len(rest, group_s);
            let (group, tail) = rest.split_at(take);
            rest = tail;
            if let [scene] = group
                && hung.contains(&scene.path)
            {
                let failure = SceneFailure::NotTried { path: PathBuf::from(&scene.path) };
                match self.fail(scene, &model, &output_dir, failure).await? {
                    Some(end) => return Ok(end),
                    None => continue,
                }
            }
            let planned: Vec<(SceneTask, PathBuf)> = group.iter().map(|s| self.task(s, &output_dir, tuning)).collect();
            let tasks: Vec<SceneTask> = planned.iter().map(|(t, _)| t.clone()).collect();
            let audio_s: f64 = group.iter().map(|s| s.end_s - s.start_s).sum();
            let bound = watchdog.bound(audio_s);
            at.progress.expect_within(bound + ctx.config.heartbeat());
            let call = async {
                if isolate {
                    let task = tasks.first().cloned().ok_or(ThreadGone::Died)?;
                    ctx.inference.isolated(&model, task, bound).await.map(|r| vec![r])
                } else {
                    ctx.inference.scenes(&model, tasks.clone(), bound).await
                }
            };
            let answer = tokio::select! {
                answer = call => answer,
                _ = at.hand_back.cancelled() => return Ok(JobEnd::HandedBack),
            };
            let results = match answer {
                Ok(results) => results,
                // One scene that hangs is failed alone; in a group the culprit is unknown, so the job is retried.
                Err(ThreadGone::Hung(seconds)) if tasks.len() == 1 => {
                    hung.insert(group[0].path.clone());
                    vec![Err(SceneFailure::Hung { path: tasks[0].source.clone(), seconds })]
                }
                Err(e @ (ThreadGone::Hung(_) | ThreadGone::Died)) => {
                    let reason = format!("{} scenes from {}: {e}", tasks.len(), tasks[0].source.display());
                    return Ok(JobEnd::Retry { reason, crashed: true });
                }
                Err(ThreadGone::Broken(reason)) => return Err(WorkerError::Fatal(reason)),
            };
            at.progress.expect_within(ctx.config.lease_ttl);
            // Files the runner wrote for this group are removed unless recorded, whatever ends the attempt.
            let mut unrecorded = Unrecorded(
                results.iter().zip(&tasks).map(|(r, t)| r.as_ref().ok().map(|_| t.output.clone())).collect(),
            );
            if at.lost.is_cancelled() {
                return Ok(JobEnd::LeaseLost);
            }
            if results.len() < tasks.len() && !results.iter().any(|r| matches!(r, Err(e) if e.ends_job())) {
                let reason = format!("{} outcomes for {} scenes", results.len(), tasks.len());
                return Ok(JobEnd::Retry { reason, crashed: false });
            }
            for (i, ((scene, (task, final_path)), result)) in group.iter().zip(planned).zip(results).enumerate() {
                match result {
                    Ok(measured) => {
                        watchdog.observe(measured.duration_s, measured.processing_ms);
                        // The recorder's now: moved into place with its batch, or removed with it.
                        unrecorded.forget(i);
                        let row = SceneResult {
                            scene: scene.id,
                            job: at.fence.job,
                            worker: ctx.worker,
                            attempt,
                            output_path: final_path.to_string_lossy().into_owned(),
                            measured,
                        };
                        self.recorder.add(row, task.output);
                    }
                    Err(e) => {
                        let dir = task.output.parent().unwrap_or(&output_dir).to_path_buf();
                        if let Some(end) = self.fail(scene, &model, &dir, e).await? {
                            return Ok(end);
                        }
                    }
                }
            }
            if self.recorder.due() && !self.flush().await? {
                return Ok(JobEnd::LeaseLost);
            }
        }
        Ok(JobEnd::Done)
    }

    /// Ends the attempt as `end` says, recording the results still pending first (a job retried or handed back
    /// keeps what it finished). A lost lease ends it as lost, with those results' files removed.
    async fn ending(&mut self, end: JobEnd) -> Result<JobEnd, WorkerError> {
        if matches!(end, JobEnd::LeaseLost) || self.flush().await? {
            return Ok(end);
        }
        Ok(JobEnd::LeaseLost)
    }

    /// Records the pending results; false if the lease was lost (their files removed).
    async fn flush(&mut self) -> Result<bool, RecordError> {
        let recorded = self.recorder.flush(self.ctx.pool, &self.at.fence).await?;
        match recorded {
            Some(counts) => {
                self.counts += counts;
                Ok(true)
            }
            None => {
                warn!(job.id = %self.at.fence.job, "lease lost: results were fenced out and their files removed");
                Ok(false)
            }
        }
    }

    /// The attempt stopped on an error of the worker's own: what the job needs from its disposition. A disk that
    /// failed makes the worker unhealthy, with the job handed back; a service away or a fatal error is the consume
    /// loop's to act on.
    fn decide(&self, e: WorkerError) -> Result<JobEnd, WorkerError> {
        match e.disposition() {
            Disposition::Unhealthy => {
                let (model, dir) = match &self.model {
                    Some((model, dir)) => (model.clone(), Some(dir.clone())),
                    None => (self.ctx.config.default_model.clone(), None),
                };
                // The directory the failure was met in, when the error names it.
                let failed_in = match &e {
                    WorkerError::Record(RecordError::Move { from, .. }) => from.parent().map(Path::to_path_buf),
                    _ => None,
                };
                let check = SelfCheck { model, output_dir: failed_in.or(dir) };
                Ok(JobEnd::Unhealthy { reason: e.to_string(), check })
            }
            Disposition::RetryJob | Disposition::FailScene => {
                Ok(JobEnd::Retry { reason: e.to_string(), crashed: false })
            }
            Disposition::Reconnect | Disposition::Fatal => Err(e),
        }
    }

    /// The scene's task, written under this attempt's own name, and the final path it is moved to once recorded.
    fn task(&self, scene: &PendingScene, output_dir: &Path, tuning: Tuning) -> (SceneTask, PathBuf) {
        let extension = self.ctx.config.output_format.extension();
        let final_path = scene_output(output_dir, self.at.batch, scene.media_id, Path::new(&scene.path), scene.idx)
            .with_extension(extension);
        // `scene-00001.<token>.wav`: this attempt's file, moved into place only while its lease holds.
        let output = final_path.with_extension(format!("{}.{extension}", self.at.fence.short()));
        let task = SceneTask {
            output,
            source: PathBuf::from(&scene.path),
            start_s: scene.start_s,
            end_s: scene.end_s,
            tuning,
            decoder: scene.decoder.as_deref().and_then(|d| d.parse().ok()),
            transcribe: self.asr.clone(),
        };
        (task, final_path)
    }

    /// Acts on a scene's failure as its disposition says; `output_dir` is where its output was to be written.
    /// None: the scene failed alone and the job goes on.
    async fn fail(
        &mut self,
        scene: &PendingScene,
        model: &str,
        output_dir: &Path,
        e: SceneFailure,
    ) -> Result<Option<JobEnd>, WorkerError> {
        let reason = e.to_string();
        Ok(Some(match e.disposition() {
            Disposition::FailScene => {
                warn!(scene.id = %scene.id, error = %reason, "scene failed");
                if !scenes::mark_failed(self.ctx.pool, &self.at.fence, scene.id, &reason).await? {
                    warn!(scene.id = %scene.id, "lease lost: the scene's failure was fenced out");
                    return Ok(Some(JobEnd::LeaseLost));
                }
                self.counts.scenes_failed += 1;
                return Ok(None);
            }
            Disposition::RetryJob | Disposition::Reconnect => JobEnd::Retry { reason, crashed: e.is_crash() },
            Disposition::Unhealthy => {
                let check = SelfCheck { model: model.to_string(), output_dir: Some(output_dir.to_path_buf()) };
                JobEnd::Unhealthy { reason, check }
            }
            Disposition::Fatal => return Err(WorkerError::Fatal(reason)),
        }))
    }
}

/// Attempt files of a group not yet recorded; removed when the guard is dropped.
struct Unrecorded(Vec<Option<PathBuf>>);

impl Unrecorded {
    fn forget(&mut self, i: usize) {
        if let Some(slot) = self.0.get_mut(i) {
            *slot = None;
        }
    }
}

impl Drop for Unrecorded {
    fn drop(&mut self) {
        for path in self.0.iter().flatten() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How many of `rest`'s scenes form the next group: at least one, then up to `group_s` seconds of audio.
fn group_len(rest: &[PendingScene], group_s: f64) -> usize {
    let (mut take, mut seconds) = (0, 0.0);
    while take < rest.len() && (take == 0 || seconds < group_s) {
        seconds += rest[take].end_s - rest[take].start_s;
        take += 1;
    }
    take
}
