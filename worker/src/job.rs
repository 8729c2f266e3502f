//! One leased job: its scenes run group by group under the watchdog, each outcome written under the job's
//! fence, and the failure dispositions (`disposition`) turned into how the attempt ends.

use crate::consume::{Ctx, WorkerError, WorkerReport};
use crate::disposition::Disposition;
use crate::health::SelfCheck;
use crate::heartbeat::Progress;
use crate::inference::ThreadGone;
use crate::paths::scene_output;
use crate::recorder::Recorder;
use crate::scene::{SceneFailure, SceneOutput, SceneTask};
use crate::tuning::Tuning;
use crate::watchdog::Watchdog;
use scenequeue_core::fence::Fence;
use scenequeue_core::ids::BatchId;
use scenequeue_core::scenes::{self, JobWork, PendingScene, SceneResult};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;
use tracing::warn;

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

/// Runs what is left of the job.
pub async fn run(
    ctx: &Ctx<'_>,
    at: &Attempt<'_>,
    watchdog: &mut Watchdog,
    report: &mut WorkerReport,
) -> Result<JobEnd, WorkerError> {
    // One fenced write reads what is left (scenes finished by an earlier attempt keep their outcome) and marks
    // every scene left running: they are all handed to the model in this attempt.
    let Some(JobWork { model, output_dir, options, attempt, scenes: pending }) =
        scenes::start_attempt(ctx.pool, &at.fence).await?
    else {
        return Ok(JobEnd::LeaseLost);
    };
    let tuning = Tuning::resolve(&ctx.config.post, &options);
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
    let mut recorder = Recorder::default();
    let mut rest = pending.as_slice();
    while !rest.is_empty() {
        if at.lost.is_cancelled() {
            return Ok(JobEnd::LeaseLost);
        }
        if at.hand_back.is_cancelled() {
            return ending(ctx, at, &mut recorder, JobEnd::HandedBack, report).await;
        }
        let take = group_len(rest, group_s);
        let (group, tail) = rest.split_at(take);
        rest = tail;
        if let [scene] = group
            && hung.contains(&scene.path)
        {
            let failure = SceneFailure::NotTried { path: PathBuf::from(&scene.path) };
            if let Some(end) = fail(ctx, at, scene, &model, Path::new(&output_dir), failure, report).await? {
                return ending(ctx, at, &mut recorder, end, report).await;
            }
            continue;
        }
        let tasks: Vec<SceneTask> = group.iter().map(|s| task(ctx, at, s, &output_dir, tuning)).collect();
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
            answer = call => Some(answer),
            _ = at.hand_back.cancelled() => None,
        };
        let Some(answer) = answer else {
            return ending(ctx, at, &mut recorder, JobEnd::HandedBack, report).await;
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
                return ending(ctx, at, &mut recorder, JobEnd::Retry { reason, crashed: true }, report).await;
            }
            Err(ThreadGone::Broken(reason)) => return Err(WorkerError::Fatal(reason)),
        };
        at.progress.expect_within(ctx.config.lease_ttl);
        // Files the runner wrote for this group are removed unless recorded, whatever ends the attempt.
        let mut unrecorded =
            Unrecorded(results.iter().zip(&tasks).map(|(r, t)| r.as_ref().ok().map(|_| t.output.clone())).collect());
        if at.lost.is_cancelled() {
            return Ok(JobEnd::LeaseLost);
        }
        if results.len() < tasks.len() && !results.iter().any(|r| matches!(r, Err(e) if e.ends_job())) {
            let reason = format!("{} outcomes for {} scenes", results.len(), tasks.len());
            return ending(ctx, at, &mut recorder, JobEnd::Retry { reason, crashed: false }, report).await;
        }
        for (i, ((scene, task), result)) in group.iter().zip(&tasks).zip(results).enumerate() {
            match result {
                Ok(out) => {
                    watchdog.observe(out.duration_s, out.processing_ms);
                    // The recorder's now: moved into place with its batch, or removed with it.
                    unrecorded.forget(i);
                    recorder.add(result_row(ctx, at, scene, &output_dir, attempt, &out), task.output.clone());
                }
                Err(e) => {
                    let dir = task.output.parent().unwrap_or(Path::new(&output_dir));
                    if let Some(end) = fail(ctx, at, scene, &model, dir, e, report).await? {
                        return ending(ctx, at, &mut recorder, end, report).await;
                    }
                }
            }
        }
        if recorder.due() && !recorder.flush(ctx.pool, &at.fence, report).await? {
            warn!(job.id = %at.fence.job, "lease lost: results were fenced out and their files removed");
            return Ok(JobEnd::LeaseLost);
        }
    }
    ending(ctx, at, &mut recorder, JobEnd::Done, report).await
}

/// Ends the attempt as `end` says, recording the results still pending first (a job retried or handed back
/// keeps what it finished). A lost lease ends it as lost, with those results' files removed.
async fn ending(
    ctx: &Ctx<'_>,
    at: &Attempt<'_>,
    recorder: &mut Recorder,
    end: JobEnd,
    report: &mut WorkerReport,
) -> Result<JobEnd, WorkerError> {
    if matches!(end, JobEnd::LeaseLost) {
        return Ok(end);
    }
    if !recorder.flush(ctx.pool, &at.fence, report).await? {
        warn!(job.id = %at.fence.job, "lease lost: results were fenced out and their files removed");
        return Ok(JobEnd::LeaseLost);
    }
    Ok(end)
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

/// The scene's final output path; the attempt writes under a name of its own first (see [`attempt_file`]).
fn final_output(ctx: &Ctx<'_>, at: &Attempt<'_>, scene: &PendingScene, output_dir: &str) -> PathBuf {
    scene_output(Path::new(output_dir), at.batch, scene.media_id, Path::new(&scene.path), scene.idx)
        .with_extension(ctx.config.output_format.extension())
}

/// `scene-00001.<token>.wav`: this attempt's file, moved into place only while its lease holds.
fn attempt_file(final_path: &Path, fence: &Fence, extension: &str) -> PathBuf {
    final_path.with_extension(format!("{}.{extension}", fence.short()))
}

fn task(ctx: &Ctx<'_>, at: &Attempt<'_>, scene: &PendingScene, output_dir: &str, tuning: Tuning) -> SceneTask {
    let final_path = final_output(ctx, at, scene, output_dir);
    SceneTask {
        output: attempt_file(&final_path, &at.fence, ctx.config.output_format.extension()),
        source: PathBuf::from(&scene.path),
        start_s: scene.start_s,
        end_s: scene.end_s,
        tuning,
        decoder: scene.decoder.as_deref().and_then(|d| d.parse().ok()),
    }
}

/// The result row of an enhanced scene.
fn result_row(
    ctx: &Ctx<'_>,
    at: &Attempt<'_>,
    scene: &PendingScene,
    output_dir: &str,
    attempt: i32,
    out: &SceneOutput,
) -> SceneResult {
    SceneResult {
        scene: scene.id,
        job: at.fence.job,
        worker: ctx.worker,
        attempt,
        output_path: final_output(ctx, at, scene, output_dir).to_string_lossy().into_owned(),
        sample_rate: out.sample_rate,
        duration_s: out.duration_s,
        rms_in_db: out.rms_in_db,
        rms_out_db: out.rms_out_db,
        processing_ms: out.processing_ms,
        recovery: out.recovery,
        oom_count: out.oom_count,
        gpu_mem_mb: out.gpu_mem_mb,
        flags: out.flags.clone(),
        speech_in_db: out.speech_in_db,
        speech_out_db: out.speech_out_db,
    }
}

/// Acts on a scene's failure as its disposition says; `output_dir` is where its output was to be written.
async fn fail(
    ctx: &Ctx<'_>,
    at: &Attempt<'_>,
    scene: &PendingScene,
    model: &str,
    output_dir: &Path,
    e: SceneFailure,
    report: &mut WorkerReport,
) -> Result<Option<JobEnd>, WorkerError> {
    let reason = e.to_string();
    Ok(Some(match e.disposition() {
        Disposition::FailScene => {
            warn!(scene.id = %scene.id, error = %reason, "scene failed");
            if !scenes::mark_failed(ctx.pool, &at.fence, scene.id, &reason).await? {
                warn!(scene.id = %scene.id, "lease lost: the scene's failure was fenced out");
                return Ok(Some(JobEnd::LeaseLost));
            }
            report.scenes_failed += 1;
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
