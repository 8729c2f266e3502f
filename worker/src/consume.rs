//! The consume loop. A delivery is acknowledged only after the job's outcome is in Postgres, so a crash at any
//! point leaves the message unacknowledged and the broker delivers it again; the job lease and the per-scene
//! result rows (one per scene, upserted) make that redelivery harmless.

use crate::config::WorkerConfig;
use crate::inference::{self, InferenceHandle, ThreadGone};
use crate::memory::MemoryProbe;
use crate::paths::scene_output;
use crate::runtime::RuntimeError;
use crate::scene::{SceneFailure, SceneTask};
use crate::tuning::Tuning;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use scenequeue_core::config::Services;
use scenequeue_core::db::{self, DbError};
use scenequeue_core::dispatch::dispatch;
use scenequeue_core::ids::{BatchId, JobId, SceneId, WorkerId};
use scenequeue_core::jobs::{self, JobCosts, Lease};
use scenequeue_core::mq::{self, JobMessage, MqError, Topology};
use scenequeue_core::options::BatchOptions;
use scenequeue_core::scenes::{self, JobWork, SceneResult};
use scenequeue_core::states::WorkerState;
use scenequeue_core::workers::{self, WorkerInfo};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// Why a worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Postgres could not be reached or migrated at start-up.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A query failed in a way a reconnect does not fix.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// RabbitMQ refused the topology or a channel operation.
    #[error(transparent)]
    Mq(#[from] MqError),
    /// ONNX Runtime could not be loaded or configured.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The model given at start-up could not be loaded.
    #[error("model check at start-up failed: {0}")]
    Startup(SceneFailure),
    /// The inference thread died.
    #[error(transparent)]
    Thread(#[from] ThreadGone),
    /// The inference thread could not be started.
    #[error("cannot start the inference thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// The broker stayed unreachable for every reconnection attempt.
    #[error("giving up after {attempts} failed connections to the broker; last error: {last}")]
    Reconnect {
        /// Connections tried in a row.
        attempts: u32,
        /// The last connection error.
        last: String,
    },
}

impl From<lapin::Error> for WorkerError {
    fn from(e: lapin::Error) -> Self {
        Self::Mq(MqError::Protocol(e))
    }
}

/// What a worker did before it stopped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WorkerReport {
    /// Jobs completed (every scene with a terminal state).
    pub jobs_done: u64,
    /// Scenes enhanced and recorded.
    pub scenes_succeeded: u64,
    /// Scenes recorded as failed, with their cause.
    pub scenes_failed: u64,
    /// Out-of-memory errors met (and recovered from, unless the scene failed).
    pub ooms: u64,
    /// Scenes whose output came from a recovery step.
    pub scenes_recovered: u64,
    /// Deliveries of jobs that were already finished or held by another worker.
    pub duplicates: u64,
    /// Sessions (or isolated child processes) created.
    pub sessions_created: u64,
    /// Time spent creating them.
    pub session_create_time: Duration,
}

enum Stop {
    Shutdown,
    MaxJobs,
    Drained,
    /// The broker could not be reached at all.
    Unreachable(String),
    /// A connection that worked was lost.
    ConnectionLost(String),
}

struct Ctx<'a> {
    pool: &'a PgPool,
    inference: &'a InferenceHandle,
    config: &'a WorkerConfig,
    worker: WorkerId,
    /// Jobs the broker may hold queued; the worker tops the queue up to this after every job.
    max_queued: i64,
}

/// Runs a worker until `shutdown` fires (the job in progress is finished first) or `max_jobs` are done.
pub async fn run(
    config: WorkerConfig,
    services: Services,
    shutdown: CancellationToken,
) -> Result<WorkerReport, WorkerError> {
    let pool = db::connect(&services.database_url, 4).await?;
    let runner = inference::runner(&config.inference_options(), config.session_policy, config.child_program.clone())?;
    let inference = InferenceHandle::start(runner)?;
    inference.warm(&config.default_model).await?.map_err(WorkerError::Startup)?;
    let worker = WorkerId::new();
    let gpu = MemoryProbe::new(config.device).gpu_info();
    let info = WorkerInfo {
        id: worker,
        device: config.device.to_string(),
        session_policy: config.session_policy.to_string(),
        gpu,
    };
    workers::register(&pool, &info).await?;
    info!(worker.id = %worker, device = %config.device, policy = %config.session_policy, model = %config.default_model, "worker started");

    let ctx = Ctx { pool: &pool, inference: &inference, config: &config, worker, max_queued: services.max_queued };
    let topology = Topology::new(&services.queue);
    let mut report = WorkerReport::default();
    let mut failures = 0u32;
    let result = loop {
        let reason = match consume(&ctx, &topology, &services.amqp_url, &shutdown, &mut report).await {
            Ok(Stop::Shutdown | Stop::MaxJobs | Stop::Drained) => break Ok(()),
            // Only failures in a row count towards giving up: a connection that worked starts the count over, so
            // drops far apart never add up to an exit.
            Ok(Stop::ConnectionLost(reason)) => {
                failures = 1;
                reason
            }
            Ok(Stop::Unreachable(reason)) => {
                failures += 1;
                reason
            }
            Err(e) => break Err(e),
        };
        if failures > config.max_reconnects {
            break Err(WorkerError::Reconnect { attempts: failures, last: reason });
        }
        let backoff = Duration::from_secs(1u64 << failures.min(5));
        warn!(%reason, ?backoff, attempt = failures, "broker connection lost; reconnecting");
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
    };
    workers::set_state(&pool, worker, WorkerState::Stopped, false).await?;
    info!(worker.id = %worker, jobs = report.jobs_done, "worker stopped");
    result.map(|()| report)
}

/// One broker connection's worth of consuming.
async fn consume(
    ctx: &Ctx<'_>,
    topology: &Topology,
    amqp_url: &str,
    shutdown: &CancellationToken,
    report: &mut WorkerReport,
) -> Result<Stop, WorkerError> {
    let connection = match mq::connect(amqp_url).await {
        Ok(c) => c,
        Err(e) => return Ok(Stop::Unreachable(e.to_string())),
    };
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    mq::set_prefetch(&channel, ctx.config.prefetch).await?;
    // This worker also releases pending jobs to the broker, so the farm flows without a scheduler running.
    let publisher = mq::Publisher::new(&connection, topology).await?;
    if let Err(e) = dispatch(ctx.pool, &publisher, ctx.max_queued).await {
        return Ok(Stop::ConnectionLost(e.to_string()));
    }
    let tag = format!("scenequeue-worker-{}", ctx.worker);
    let mut consumer = if ctx.config.drain {
        None
    } else {
        Some(channel.basic_consume(&topology.queue, &tag, BasicConsumeOptions::default(), FieldTable::default()).await?)
    };
    let stop = loop {
        if ctx.config.max_jobs.is_some_and(|max| report.jobs_done >= max) {
            break Stop::MaxJobs;
        }
        if shutdown.is_cancelled() {
            break Stop::Shutdown;
        }
        let next = match consumer.as_mut() {
            Some(consumer) => tokio::select! {
                _ = shutdown.cancelled() => break Stop::Shutdown,
                next = consumer.next() => next,
            },
            None => match channel.basic_get(&topology.queue, BasicGetOptions::default()).await {
                Ok(Some(message)) => Some(Ok(message.delivery)),
                // Empty: done, unless jobs still wait in Postgres to be released.
                Ok(None) => match dispatch(ctx.pool, &publisher, ctx.max_queued).await {
                    Ok(0) => break Stop::Drained,
                    Ok(_) => continue,
                    Err(e) => break Stop::ConnectionLost(e.to_string()),
                },
                Err(e) => Some(Err(e)),
            },
        };
        let delivery = match next {
            None => break Stop::ConnectionLost("consumer stream ended".into()),
            Some(Err(e)) => break Stop::ConnectionLost(e.to_string()),
            Some(Ok(d)) => d,
        };
        let handled = handle(ctx, &delivery, report).await;
        if handled.is_ok()
            && let Err(e) = dispatch(ctx.pool, &publisher, ctx.max_queued).await
        {
            break Stop::ConnectionLost(e.to_string());
        }
        match handled {
            Ok(()) => {}
            Err(WorkerError::Mq(e)) => break Stop::ConnectionLost(e.to_string()),
            Err(WorkerError::Sql(e)) => {
                // The database is unreachable: hand the message back and retry through the reconnect path.
                let _ = delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
                break Stop::ConnectionLost(format!("database: {e}"));
            }
            Err(e) => return Err(e),
        }
    };
    // Closing returns any prefetched, unacknowledged message to the queue.
    let _ = connection.close(200, "worker stopping").await;
    Ok(stop)
}

/// Handles one delivery; acks or nacks it.
async fn handle(ctx: &Ctx<'_>, delivery: &Delivery, report: &mut WorkerReport) -> Result<(), WorkerError> {
    let job = match serde_json::from_slice::<JobMessage>(&delivery.data) {
        Ok(m) => m.job_id,
        Err(e) => {
            warn!(error = %e, "rejecting a message that is not a job; it goes to the dead-letter queue");
            delivery.reject(BasicRejectOptions { requeue: false }).await?;
            return Ok(());
        }
    };
    match jobs::lease(ctx.pool, job, ctx.worker, ctx.config.lease_ttl).await? {
        Lease::Granted { batch, attempt } => {
            let span = info_span!("job", job.id = %job, batch.id = %batch, attempt);
            run_leased(ctx, delivery, job, batch, report).instrument(span).await
        }
        other => {
            info!(job.id = %job, outcome = ?other, "nothing to do for this delivery");
            if matches!(other, Lease::Finished | Lease::HeldElsewhere) {
                report.duplicates += 1;
            }
            delivery.ack(BasicAckOptions::default()).await?;
            Ok(())
        }
    }
}

async fn run_leased(
    ctx: &Ctx<'_>,
    delivery: &Delivery,
    job: JobId,
    batch: BatchId,
    report: &mut WorkerReport,
) -> Result<(), WorkerError> {
    workers::set_state(ctx.pool, ctx.worker, WorkerState::Busy, false).await?;
    let lost = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat(ctx.pool.clone(), job, ctx.worker, ctx.config.lease_ttl, lost.clone()));
    let outcome = run_job(ctx, job, batch, &lost, report).await;
    heartbeat.abort();
    let telemetry = ctx.inference.job_done().await?;
    let costs = JobCosts {
        gpu_peak_mb: telemetry.gpu_peak_mb,
        gpu_after_mb: telemetry.after.gpu_held_mb(),
        rss_after_mb: telemetry.after.rss_mb,
        session_create_ms: telemetry.session_create_ms,
    };
    jobs::record_costs(ctx.pool, job, &costs).await?;
    report.sessions_created += telemetry.sessions_created;
    report.session_create_time += Duration::from_secs_f64(telemetry.session_create_ms / 1000.0);
    match outcome {
        Ok(JobEnd::Done) => {
            if jobs::complete(ctx.pool, job, ctx.worker).await? {
                report.jobs_done += 1;
                info!("job succeeded");
            } else {
                warn!("lease was lost before completion; another worker owns the job now");
            }
            delivery.ack(BasicAckOptions::default()).await?;
        }
        Ok(JobEnd::LeaseLost) => {
            warn!("lease lost mid-job; leaving the job to its new owner");
            delivery.ack(BasicAckOptions::default()).await?;
        }
        Err(JobFailure::Retry(reason)) => {
            warn!(%reason, "job attempt failed; requeueing");
            jobs::release(ctx.pool, job, ctx.worker, &reason).await?;
            delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?;
        }
        Err(JobFailure::Worker(e)) => return Err(e),
    }
    workers::set_state(ctx.pool, ctx.worker, WorkerState::Idle, true).await?;
    Ok(())
}

async fn heartbeat(pool: PgPool, job: JobId, worker: WorkerId, ttl: Duration, lost: CancellationToken) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        match jobs::extend_lease(&pool, job, worker, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                lost.cancel();
                return;
            }
            Err(e) => warn!(error = %e, "could not extend the job lease"),
        }
    }
}

enum JobEnd {
    Done,
    LeaseLost,
}

enum JobFailure {
    /// Another attempt may succeed (e.g. the model could not be loaded on this worker).
    Retry(String),
    Worker(WorkerError),
}

impl<E: Into<WorkerError>> From<E> for JobFailure {
    fn from(e: E) -> Self {
        Self::Worker(e.into())
    }
}

async fn run_job(
    ctx: &Ctx<'_>,
    job: JobId,
    batch: BatchId,
    lost: &CancellationToken,
    report: &mut WorkerReport,
) -> Result<JobEnd, JobFailure> {
    // The batch's own enhancement settings, over this worker's defaults.
    let tuning = Tuning::resolve(&ctx.config.post, &BatchOptions::load(ctx.pool, batch).await?);
    // Scenes finished by an earlier attempt keep their outcome.
    let JobWork { model, output_dir, attempt, scenes: pending } = scenes::job_work(ctx.pool, job, batch).await?;
    // Scenes go to the inference thread one at a time, or in groups when windows are batched across scenes.
    let group_s = ctx.config.fixed_windows.map_or(0.0, |f| f.group_seconds());
    let mut rest = pending.as_slice();
    while !rest.is_empty() {
        if lost.is_cancelled() {
            return Ok(JobEnd::LeaseLost);
        }
        let mut take = 0;
        let mut seconds = 0.0;
        while take < rest.len() && (take == 0 || seconds < group_s) {
            seconds += rest[take].end_s - rest[take].start_s;
            take += 1;
        }
        let (group, tail) = rest.split_at(take);
        rest = tail;
        let ids: Vec<SceneId> = group.iter().map(|s| s.id).collect();
        scenes::mark_running(ctx.pool, &ids).await?;
        let tasks: Vec<SceneTask> = group
            .iter()
            .map(|scene| {
                let source = PathBuf::from(&scene.path);
                SceneTask {
                    output: scene_output(Path::new(&output_dir), batch, scene.media_id, &source, scene.idx)
                        .with_extension(ctx.config.output_format.extension()),
                    source,
                    start_s: scene.start_s,
                    end_s: scene.end_s,
                    tuning,
                    decoder: scene.decoder.as_deref().and_then(|d| d.parse().ok()),
                }
            })
            .collect();
        let results = ctx.inference.scenes(&model, tasks.clone()).await?;
        // A lease lost while the group ran: another worker may own the job now; its results win.
        if lost.is_cancelled() {
            return Ok(JobEnd::LeaseLost);
        }
        if results.len() < tasks.len() && !results.iter().any(|r| matches!(r, Err(e) if e.is_job_level())) {
            return Err(JobFailure::Retry(format!("{} outcomes for {} scenes", results.len(), tasks.len())));
        }
        for ((scene, task), result) in group.iter().zip(&tasks).zip(results) {
            match result {
                Ok(out) => {
                    let output_path = task.output.to_string_lossy().into_owned();
                    let result = SceneResult {
                        scene: scene.id,
                        job,
                        worker: ctx.worker,
                        attempt,
                        output_path,
                        sample_rate: out.sample_rate,
                        duration_s: out.duration_s,
                        rms_in_db: out.rms_in_db,
                        rms_out_db: out.rms_out_db,
                        processing_ms: out.processing_ms,
                        recovery: out.recovery,
                        oom_count: out.oom_count,
                        gpu_mem_mb: out.gpu_mem_mb,
                        flags: out.flags,
                        speech_in_db: out.speech_in_db,
                        speech_out_db: out.speech_out_db,
                    };
                    scenes::record_success(ctx.pool, &result).await?;
                    report.scenes_succeeded += 1;
                    report.ooms += u64::from(out.oom_count);
                    report.scenes_recovered += u64::from(out.recovery != scenequeue_core::states::RecoveryStep::None);
                }
                Err(e) if e.is_job_level() => return Err(JobFailure::Retry(e.to_string())),
                Err(e) => {
                    warn!(scene.id = %scene.id, error = %e, "scene failed");
                    scenes::mark_failed(ctx.pool, scene.id, &e.to_string()).await?;
                    report.scenes_failed += 1;
                }
            }
        }
    }
    Ok(JobEnd::Done)
}
