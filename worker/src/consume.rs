//! The consume loop. A delivery is acknowledged only after the job's outcome is in Postgres, so a crash at any
//! point leaves the message unacknowledged and the broker delivers it again; the job lease, fenced by its token,
//! and the per-scene result rows (one per scene, upserted) make that redelivery harmless.
//!
//! The loop rides out outages of any length: Postgres is awaited at start-up and the broker reconnected with
//! capped back-off, the count of failures in a row starting over after every connection that worked. While
//! idle it releases due jobs (and takes back expired leases) on every heartbeat, so the farm flows without a
//! scheduler. A worker found unhealthy stops consuming until its self-check passes.

use crate::config::WorkerConfig;
use crate::health::{self, SelfCheck};
use crate::heartbeat::{self, HeldLease, Progress, Status};
use crate::inference::{self, InferenceHandle, MakeRunner};
use crate::job::{self, Attempt, JobEnd};
use crate::memory::MemoryProbe;
use crate::runner::Runner;
use crate::runtime::RuntimeError;
use crate::scene::SceneFailure;
use crate::simulated::Simulated;
use crate::watchdog::Watchdog;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use scenequeue_core::config::Services;
use scenequeue_core::db::{self, DbError};
use scenequeue_core::dispatch::{dispatch, top_up};
use scenequeue_core::fence::Fence;
use scenequeue_core::ids::{BatchId, WorkerId};
use scenequeue_core::jobs::{self, JobCosts, Lease};
use scenequeue_core::mq::{self, JobMessage, MqError, Topology};
use scenequeue_core::states::WorkerState;
use scenequeue_core::workers::{self, WorkerInfo};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// Times a job is handed back without spending an attempt (by unhealthy or stopping workers) before hand-backs
/// spend attempts too, so a job that breaks every worker still ends.
const MAX_HANDBACKS: i32 = 5;

/// Longest wait between two attempts to reach a service again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a worker is asked to stop: `stop` (first SIGTERM) ends consuming and gives the job in progress its grace
/// period; `now` (a second signal) hands the job back at once.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop taking jobs; finish the current one within the grace period, or hand it back.
    pub stop: CancellationToken,
    /// Hand the current job back now.
    pub now: CancellationToken,
}

impl From<CancellationToken> for Shutdown {
    fn from(stop: CancellationToken) -> Self {
        Self { stop, now: CancellationToken::new() }
    }
}

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
    /// A failure that nothing this worker does can fix (its disposition is fatal), or an inference side that
    /// cannot go on (too many hung threads): the worker stops so that its supervisor starts it afresh.
    #[error("{0}")]
    Fatal(String),
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
    /// The worker's own environment failed: no jobs until the check passes.
    Unhealthy(String, SelfCheck),
}

/// What the consume loop and a job share.
pub(crate) struct Ctx<'a> {
    pub(crate) pool: &'a PgPool,
    pub(crate) inference: &'a InferenceHandle,
    pub(crate) config: &'a WorkerConfig,
    pub(crate) worker: WorkerId,
    /// Jobs the broker may hold queued; the worker tops the queue up to this once it is half empty (`top_up`).
    max_queued: i64,
    status: Status,
    shutdown: Shutdown,
}

/// Runs a worker until `shutdown` fires (the job in progress is finished within the grace period, or handed
/// back) or `max_jobs` are done.
pub async fn run(config: WorkerConfig, services: Services, shutdown: Shutdown) -> Result<WorkerReport, WorkerError> {
    let Some(pool) = connect_db(&services.database_url, config.db_connections, &shutdown.stop).await? else {
        return Ok(WorkerReport::default());
    };
    let options = config.inference_options();
    let (policy, program) = (config.session_policy, config.child_program.clone());
    let make: MakeRunner = match config.simulate {
        Some(scene_time) => Box::new(move || Ok(Box::new(Simulated::new(scene_time)) as Box<dyn Runner + Send>)),
        None => Box::new(move || inference::runner(&options, policy, program.clone())),
    };
    let inference = InferenceHandle::start(make, config.inference_options(), config.child_program.clone())?;
    match inference.warm(&config.default_model).await {
        Ok(warmed) => warmed.map_err(WorkerError::Startup)?,
        Err(e) => return Err(WorkerError::Fatal(e.to_string())),
    }
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
    let status = Status::new();
    let beat = tokio::spawn(heartbeat::worker(
        pool.clone(),
        worker,
        status.clone(),
        config.heartbeat(),
        shutdown.stop.clone(),
        config.alive_file.clone(),
    ));

    let ctx = Ctx {
        pool: &pool,
        inference: &inference,
        config: &config,
        worker,
        max_queued: services.max_queued,
        status,
        shutdown: shutdown.clone(),
    };
    let topology = Topology::new(&services.queue);
    let mut report = WorkerReport::default();
    let mut watchdog = Watchdog::new(config.watchdog_floor);
    let mut failures = 0u32;
    let result = loop {
        let reason = match consume(&ctx, &topology, &services.amqp_url, &mut watchdog, &mut report).await {
            Ok(Stop::Shutdown | Stop::MaxJobs | Stop::Drained) => break Ok(()),
            Ok(Stop::Unhealthy(reason, check)) => {
                failures = 0;
                if recover(&ctx, &reason, &check).await {
                    continue;
                }
                break Ok(());
            }
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
        if config.max_reconnects.is_some_and(|max| failures > max) {
            break Err(WorkerError::Reconnect { attempts: failures, last: reason });
        }
        let backoff = Duration::from_secs(1u64 << failures.min(5)).min(MAX_BACKOFF);
        warn!(%reason, ?backoff, attempt = failures, "connection lost; reconnecting");
        tokio::select! {
            _ = shutdown.stop.cancelled() => break Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
    };
    beat.abort();
    if let Err(e) = ctx.status.set(&pool, worker, WorkerState::Stopped, None, None).await {
        warn!(error = %e, "could not record that the worker stopped");
    }
    info!(worker.id = %worker, jobs = report.jobs_done, "worker stopped");
    result.map(|()| report)
}

/// Connects to Postgres (and migrates), waiting with capped back-off while it is away. None: shut down first.
async fn connect_db(url: &str, connections: u32, stop: &CancellationToken) -> Result<Option<PgPool>, WorkerError> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match db::connect(url, connections).await {
            Ok(pool) => return Ok(Some(pool)),
            Err(DbError::Connect { source, .. }) if !stop.is_cancelled() && db_away(&source) => {}
            Err(e) => return Err(e.into()),
        }
        warn!(retry_in = ?backoff, "Postgres unreachable; waiting for it");
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Whether a connection error means Postgres is away (down, restarting, unreachable) rather than refusing us.
fn db_away(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        e if scenequeue_core::outage::closed_in_handshake(e) => true,
        // 57P01..57P03: shutting down, crashed, starting up.
        sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("57P")),
        _ => false,
    }
}

/// An unhealthy worker: marked so, it runs its self-check every `health_check` until it passes (true) or the
/// worker is shut down (false).
async fn recover(ctx: &Ctx<'_>, reason: &str, check: &SelfCheck) -> bool {
    warn!(%reason, "this worker is unhealthy: it takes no jobs until its self-check passes");
    let mut last = reason.to_string();
    loop {
        let _ = ctx.status.set(ctx.pool, ctx.worker, WorkerState::Unhealthy, None, Some(last.clone())).await;
        tokio::select! {
            _ = ctx.shutdown.stop.cancelled() => return false,
            _ = tokio::time::sleep(ctx.config.health_check) => {}
        }
        match health::run(ctx.inference, check).await {
            Ok(()) => {
                info!("self-check passed; taking jobs again");
                let _ = ctx.status.set(ctx.pool, ctx.worker, WorkerState::Idle, None, None).await;
                return true;
            }
            Err(e) => {
                warn!(error = %e, "self-check failed");
                last = e;
            }
        }
    }
}

/// One broker connection's worth of consuming.
async fn consume(
    ctx: &Ctx<'_>,
    topology: &Topology,
    amqp_url: &str,
    watchdog: &mut Watchdog,
    report: &mut WorkerReport,
) -> Result<Stop, WorkerError> {
    let connection = match mq::connect(amqp_url).await {
        Ok(c) => c,
        Err(e) => return Ok(Stop::Unreachable(e.to_string())),
    };
    let stop = match consume_on(ctx, &connection, topology, watchdog, report).await {
        Ok(stop) => stop,
        Err(WorkerError::Mq(e)) => Stop::ConnectionLost(e.to_string()),
        Err(WorkerError::Sql(e)) => Stop::ConnectionLost(format!("database: {e}")),
        Err(e) => return Err(e),
    };
    // Closing returns any prefetched, unacknowledged message to the queue.
    let _ = connection.close(200, "worker stopping").await;
    Ok(stop)
}

async fn consume_on(
    ctx: &Ctx<'_>,
    connection: &lapin::Connection,
    topology: &Topology,
    watchdog: &mut Watchdog,
    report: &mut WorkerReport,
) -> Result<Stop, WorkerError> {
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    mq::set_prefetch(&channel, ctx.config.prefetch).await?;
    // This worker also releases pending jobs to the broker, so the farm flows without a scheduler running.
    let publisher = mq::Publisher::new(connection, topology).await?;
    if let Err(e) = release_due(ctx, &publisher).await {
        return Ok(Stop::ConnectionLost(e));
    }
    let tag = format!("scenequeue-worker-{}", ctx.worker);
    let mut consumer = if ctx.config.drain {
        None
    } else {
        Some(channel.basic_consume(&topology.queue, &tag, BasicConsumeOptions::default(), FieldTable::default()).await?)
    };
    let mut idle = tokio::time::interval(ctx.config.heartbeat());
    idle.tick().await;
    loop {
        if ctx.config.max_jobs.is_some_and(|max| report.jobs_done >= max) {
            return Ok(Stop::MaxJobs);
        }
        if ctx.shutdown.stop.is_cancelled() {
            return Ok(Stop::Shutdown);
        }
        let next = match consumer.as_mut() {
            Some(consumer) => tokio::select! {
                _ = ctx.shutdown.stop.cancelled() => return Ok(Stop::Shutdown),
                _ = idle.tick() => {
                    if let Err(e) = release_due(ctx, &publisher).await {
                        return Ok(Stop::ConnectionLost(e));
                    }
                    continue;
                }
                next = consumer.next() => next,
            },
            None => match channel.basic_get(&topology.queue, BasicGetOptions::default()).await {
                Ok(Some(message)) => Some(Ok(message.delivery)),
                // Empty: done, unless jobs still wait in Postgres to be released.
                Ok(None) => match dispatch(ctx.pool, &publisher, ctx.max_queued).await {
                    Ok(0) => return Ok(Stop::Drained),
                    Ok(_) => continue,
                    Err(e) => return Ok(Stop::ConnectionLost(e.to_string())),
                },
                Err(e) => Some(Err(e)),
            },
        };
        let delivery = match next {
            None => return Ok(Stop::ConnectionLost("consumer stream ended".into())),
            Some(Err(e)) => return Ok(Stop::ConnectionLost(e.to_string())),
            Some(Ok(d)) => d,
        };
        match handle(ctx, &delivery, watchdog, report).await {
            Ok(None) => {}
            Ok(Some(stop)) => return Ok(stop),
            Err(WorkerError::Sql(e)) => {
                // The database went away: hand the message back and retry through the reconnect path.
                let _ = delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
                return Ok(Stop::ConnectionLost(format!("database: {e}")));
            }
            Err(e) => return Err(e),
        }
        // The queue is topped up (once half empty) after every job; expired leases are taken back on the heartbeat's
        // tick, which the select above takes between jobs too, so a busy farm does not scan for them after every job.
        if let Err(e) = top_up(ctx.pool, &publisher, ctx.max_queued).await {
            return Ok(Stop::ConnectionLost(e.to_string()));
        }
    }
}

/// Takes back jobs whose lease expired and publishes the jobs that are due.
async fn release_due(ctx: &Ctx<'_>, publisher: &mq::Publisher) -> Result<(), String> {
    let requeued = jobs::requeue_expired(ctx.pool).await.map_err(|e| format!("database: {e}"))?;
    if !requeued.is_empty() {
        info!(jobs = requeued.len(), "took back jobs whose worker stopped answering");
    }
    top_up(ctx.pool, publisher, ctx.max_queued).await.map(|_| ()).map_err(|e| e.to_string())
}

/// Handles one delivery; acks or nacks it. Some: the consume loop must stop.
async fn handle(
    ctx: &Ctx<'_>,
    delivery: &Delivery,
    watchdog: &mut Watchdog,
    report: &mut WorkerReport,
) -> Result<Option<Stop>, WorkerError> {
    let job = match serde_json::from_slice::<JobMessage>(&delivery.data) {
        Ok(m) => m.job_id,
        Err(e) => {
            warn!(error = %e, "rejecting a message that is not a job; it goes to the dead-letter queue");
            delivery.reject(BasicRejectOptions { requeue: false }).await?;
            return Ok(None);
        }
    };
    match jobs::lease(ctx.pool, job, ctx.worker, ctx.config.lease_ttl).await? {
        Lease::Granted { batch, attempt, fence, crashes } => {
            let span = info_span!("job", job.id = %job, batch.id = %batch, attempt);
            run_leased(ctx, delivery, fence, batch, crashes, attempt, watchdog, report).instrument(span).await
        }
        other => {
            info!(job.id = %job, outcome = ?other, "nothing to do for this delivery");
            if matches!(other, Lease::Finished | Lease::HeldElsewhere) {
                report.duplicates += 1;
            }
            delivery.ack(BasicAckOptions::default()).await?;
            Ok(None)
        }
    }
}

/// The back-off before retry `attempt`: `base` doubled per attempt, capped at 32 times `base`, with jitter
/// between half and all of it, so retries of many jobs spread out.
fn backoff(base: Duration, attempt: i32) -> Duration {
    let doubled = base * (1u32 << attempt.clamp(1, 6).saturating_sub(1));
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 2000.0;
    doubled.mul_f64(0.5 + jitter)
}

#[allow(clippy::too_many_arguments)]
async fn run_leased(
    ctx: &Ctx<'_>,
    delivery: &Delivery,
    fence: Fence,
    batch: BatchId,
    crashes: i32,
    attempt: i32,
    watchdog: &mut Watchdog,
    report: &mut WorkerReport,
) -> Result<Option<Stop>, WorkerError> {
    // The lease wrote the worker's row busy with this job.
    ctx.status.note(WorkerState::Busy, Some(fence.job), None);
    let lost = CancellationToken::new();
    let progress = Progress::new(ctx.config.lease_ttl);
    // The worker's heartbeat extends the lease from now on, while the job progresses.
    ctx.status.hold(HeldLease { fence, ttl: ctx.config.lease_ttl, progress: progress.clone(), lost: lost.clone() });
    // After SIGTERM the job has its grace period; then, or at a second signal, it is handed back.
    let hand_back = ctx.shutdown.now.child_token();
    let grace = tokio::spawn({
        let (stop, hand_back, grace) = (ctx.shutdown.stop.clone(), hand_back.clone(), ctx.config.grace);
        async move {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
            hand_back.cancel();
        }
    });
    let at = Attempt { fence, batch, crashes, lost: &lost, hand_back: &hand_back, progress: &progress };
    let outcome = job::run(ctx, &at, watchdog, report).await;
    ctx.status.let_go(&fence);
    grace.abort();
    let costs = match outcome {
        Ok(JobEnd::HandedBack) => None,
        _ => job_costs(ctx, report).await?,
    };
    // A completion records the costs with it; any other end on their own.
    if let (Some(costs), Ok(JobEnd::LeaseLost | JobEnd::Retry { .. } | JobEnd::Unhealthy { .. })) = (&costs, &outcome) {
        jobs::record_costs(ctx.pool, fence.job, costs).await?;
    }
    let stop = match outcome? {
        JobEnd::Done => {
            if jobs::complete(ctx.pool, &fence, costs.as_ref()).await? {
                report.jobs_done += 1;
                info!("job succeeded");
            } else {
                warn!("lease lost before completion: the completion was fenced out; another worker owns the job");
            }
            delivery.ack(BasicAckOptions::default()).await?;
            None
        }
        JobEnd::LeaseLost => {
            warn!("lease lost mid-job: its writes are fenced out; leaving the job to its new owner");
            delivery.ack(BasicAckOptions::default()).await?;
            None
        }
        JobEnd::Retry { reason, crashed } => {
            let wait = backoff(ctx.config.retry_backoff, attempt);
            warn!(%reason, retry_in = ?wait, crashed, "job attempt failed; it is retried after a back-off");
            jobs::release(ctx.pool, &fence, &reason, wait, crashed).await?;
            delivery.ack(BasicAckOptions::default()).await?;
            None
        }
        JobEnd::Unhealthy { reason, check } => {
            warn!(%reason, "the worker is at fault: handing the job back without spending an attempt");
            jobs::hand_back(ctx.pool, &fence, &format!("handed back by an unhealthy worker: {reason}"), MAX_HANDBACKS)
                .await?;
            delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?;
            Some(Stop::Unhealthy(reason, check))
        }
        JobEnd::HandedBack => {
            warn!("shutting down: handing the job back without spending an attempt");
            jobs::hand_back(ctx.pool, &fence, "handed back by a worker shutting down", MAX_HANDBACKS).await?;
            delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?;
            Some(Stop::Shutdown)
        }
    };
    if stop.is_none() {
        ctx.status.note(WorkerState::Idle, None, None);
        workers::job_ended(ctx.pool, ctx.worker).await?;
    }
    Ok(stop)
}

/// Applies the session policy and returns what the job cost (None: no telemetry came back).
async fn job_costs(ctx: &Ctx<'_>, report: &mut WorkerReport) -> Result<Option<JobCosts>, WorkerError> {
    let telemetry = match ctx.inference.job_done().await {
        Ok(t) => t,
        Err(crate::inference::ThreadGone::Broken(reason)) => return Err(WorkerError::Fatal(reason)),
        Err(e) => {
            warn!(error = %e, "no telemetry for this job");
            return Ok(None);
        }
    };
    let costs = JobCosts {
        gpu_peak_mb: telemetry.gpu_peak_mb,
        gpu_after_mb: telemetry.after.gpu_held_mb(),
        rss_after_mb: telemetry.after.rss_mb,
        session_create_ms: telemetry.session_create_ms,
    };
    report.sessions_created += telemetry.sessions_created;
    report.session_create_time += Duration::from_secs_f64(telemetry.session_create_ms / 1000.0);
    Ok(Some(costs))
}
