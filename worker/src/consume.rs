//! The consume loop. A delivery is acknowledged only after the job's outcome is in Postgres, so a crash at any
//! point leaves the message unacknowledged and the broker delivers it again; the job lease, fenced by its token,
//! and the per-scene result rows (one per scene, upserted) make that redelivery harmless.
//!
//! The loop rides out outages of any length: Postgres is awaited at start-up and the broker reconnected with
//! capped back-off, the count of failures in a row starting over after every connection that worked. While
//! idle it releases due jobs (and takes back expired leases) on every heartbeat, so the farm flows without a
//! scheduler. A worker found unhealthy stops consuming until its self-check passes.

use crate::config::WorkerConfig;
use crate::ctx::Ctx;
use crate::disposition::Disposition;
use crate::error::WorkerError;
use crate::health::{self, SelfCheck};
use crate::heartbeat::{self, HeldLease, Progress, Status};
use crate::inference::{self, InferenceHandle, MakeRunner};
use crate::job::{self, Attempt};
use crate::memory::MemoryProbe;
use crate::report::WorkerReport;
use crate::runner::Runner;
use crate::settle::{self, After};
use crate::shutdown::Shutdown;
use crate::simulated::Simulated;
use crate::watchdog::Watchdog;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use scenequeue_core::config::Services;
use scenequeue_core::db;
use scenequeue_core::dispatch::{dispatch, top_up};
use scenequeue_core::fence::Fence;
use scenequeue_core::ids::{BatchId, WorkerId};
use scenequeue_core::jobs::{self, Lease};
use scenequeue_core::mq::{self, JobMessage, Topology};
use scenequeue_core::outage::{Patience, retry_step};
use scenequeue_core::states::WorkerState;
use scenequeue_core::workers::{self, WorkerInfo};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// Longest wait between two attempts to reach the broker again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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

/// Runs a worker until `shutdown` fires (the job in progress is finished within the grace period, or handed
/// back) or `max_jobs` are done. Postgres and the broker are waited for, however long they take to answer.
pub async fn run(config: WorkerConfig, services: Services, shutdown: Shutdown) -> Result<WorkerReport, WorkerError> {
    let forever = Patience::forever();
    let connected = db::connect_when_up(&services.database_url, config.db_connections, &forever, &shutdown.stop);
    let Some(pool) = connected.await? else {
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
    // A saturated database (every connection taken, the pool timing out) is waited out like one that is away.
    let registered = tokio::select! {
        _ = shutdown.stop.cancelled() => return Ok(WorkerReport::default()),
        registered = retry_step(&forever, "registering the worker", || workers::register(&pool, &info)) => registered,
    };
    registered.map_err(|e| WorkerError::Fatal(e.to_string()))?;
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
        prefetch: services.prefetch,
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
            break Err(WorkerError::GaveUp { attempts: failures, last: reason });
        }
        // The dashboard's worker row says why this worker takes no jobs (Postgres may be away too: then the next
        // beat writes it).
        let health = Some(format!("{BROKER_AWAY}: {reason}"));
        let _ = ctx.status.set(ctx.pool, worker, WorkerState::Idle, None, health).await;
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

/// How a worker's health begins while it has no broker connection.
const BROKER_AWAY: &str = "RabbitMQ unreachable, reconnecting";

/// One broker connection's worth of consuming. An error that escapes is acted on by its disposition alone: a
/// service away is reconnected to, a worker at fault checks itself, anything else stops the worker.
async fn consume(
    ctx: &Ctx<'_>,
    topology: &Topology,
    amqp_url: &str,
    watchdog: &mut Watchdog,
    report: &mut WorkerReport,
) -> Result<Stop, WorkerError> {
    let connection = match mq::connect(amqp_url).await {
        Ok(c) => {
            if ctx.status.health().is_some_and(|h| h.starts_with(BROKER_AWAY)) {
                let _ = ctx.status.set(ctx.pool, ctx.worker, WorkerState::Idle, None, None).await;
            }
            c
        }
        Err(e) if e.is_outage() => return Ok(Stop::Unreachable(e.to_string())),
        // Refused credentials or virtual host: the same connection is refused however often it is tried.
        Err(e) => return Err(e.into()),
    };
    let stopped = consume_on(ctx, &connection, topology, watchdog, report).await;
    // Closing returns any prefetched, unacknowledged message to the queue.
    let _ = connection.close(200, "worker stopping").await;
    match stopped {
        Ok(stop) => Ok(stop),
        Err(e) => match e.disposition() {
            Disposition::Reconnect => Ok(Stop::ConnectionLost(e.to_string())),
            Disposition::Unhealthy => {
                let check = SelfCheck { model: ctx.config.default_model.clone(), output_dir: None };
                Ok(Stop::Unhealthy(e.to_string(), check))
            }
            Disposition::FailScene | Disposition::RetryJob | Disposition::Fatal => Err(e),
        },
    }
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
    mq::set_prefetch(&channel, ctx.prefetch).await?;
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
            Err(e) => {
                // Whatever this worker does next, the message goes back to the queue for another.
                let _ = delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
                return Err(e);
            }
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
            run_leased(ctx, delivery, (fence, batch, crashes, attempt), watchdog, report).instrument(span).await
        }
        other @ (Lease::Finished | Lease::HeldElsewhere) => {
            info!(job.id = %job, outcome = ?other, "a duplicate delivery: the job is done or another worker's");
            report.duplicates += 1;
            delivery.ack(BasicAckOptions::default()).await?;
            Ok(None)
        }
        other @ (Lease::Missing | Lease::Exhausted | Lease::NotDue) => {
            info!(job.id = %job, outcome = ?other, "nothing to do for this delivery");
            delivery.ack(BasicAckOptions::default()).await?;
            Ok(None)
        }
    }
}

/// Runs a leased job (its lease extended by the heartbeat while the job progresses, handed back after the
/// grace period once shutdown began) and settles the attempt.
async fn run_leased(
    ctx: &Ctx<'_>,
    delivery: &Delivery,
    (fence, batch, crashes, attempt): (Fence, BatchId, i32, i32),
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
    let attempted = job::run(ctx, &at, watchdog).await;
    ctx.status.let_go(&fence);
    grace.abort();
    report.add(attempted.counts);
    let settled = settle::settle(ctx, delivery, &fence, attempt, attempted.end).await?;
    report.jobs_done += u64::from(settled.completed);
    report.sessions_created += settled.sessions.0;
    report.session_create_time += settled.sessions.1;
    Ok(match settled.after {
        After::Next => None,
        After::Unhealthy { reason, check } => Some(Stop::Unhealthy(reason, check)),
        After::ShuttingDown => Some(Stop::Shutdown),
    })
}
