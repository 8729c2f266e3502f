//! Settling an attempt: its outcome written to Postgres under the job's lease (completed, released for a retry
//! after a back-off, handed back), with what the job cost, and only then the delivery acknowledged (or handed
//! back to the broker). A crash anywhere before the acknowledgement leaves the message to be delivered again.

use crate::ctx::Ctx;
use crate::error::WorkerError;
use crate::health::SelfCheck;
use crate::inference::ThreadGone;
use crate::job::JobEnd;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use scenequeue_core::fence::Fence;
use scenequeue_core::jobs::{self, JobCosts};
use scenequeue_core::states::WorkerState;
use scenequeue_core::workers;
use std::time::Duration;
use tracing::{info, warn};

/// Times a job is handed back without spending an attempt (by unhealthy or stopping workers) before hand-backs
/// spend attempts too, so a job that breaks every worker still ends.
const MAX_HANDBACKS: i32 = 5;

/// What the consume loop does once an attempt is settled.
pub(crate) enum After {
    /// Take the next job.
    Next,
    /// This worker is at fault: no jobs until the check passes.
    Unhealthy {
        /// Why.
        reason: String,
        /// What must work again.
        check: SelfCheck,
    },
    /// The worker is shutting down.
    ShuttingDown,
}

/// What settling found.
pub(crate) struct Settled {
    /// The job completed under this worker's lease.
    pub(crate) completed: bool,
    /// Sessions (or child processes) the job created, and the time that took.
    pub(crate) sessions: (u64, Duration),
    pub(crate) after: After,
}

/// Writes how attempt `attempt` of the job ended, with its costs, and acknowledges the delivery.
pub(crate) async fn settle(
    ctx: &Ctx<'_>,
    delivery: &Delivery,
    fence: &Fence,
    attempt: i32,
    end: Result<JobEnd, WorkerError>,
) -> Result<Settled, WorkerError> {
    let telemetry = match end {
        Ok(JobEnd::HandedBack) => None,
        _ => job_costs(ctx).await?,
    };
    let (costs, sessions) = telemetry.unzip();
    // A completion records the costs with it; any other end on their own.
    if let (Some(costs), Ok(JobEnd::LeaseLost | JobEnd::Retry { .. } | JobEnd::Unhealthy { .. })) = (&costs, &end) {
        jobs::record_costs(ctx.pool, fence.job, costs).await?;
    }
    let mut completed = false;
    let after = match end? {
        JobEnd::Done => {
            completed = jobs::complete(ctx.pool, fence, costs.as_ref()).await?;
            if completed {
                info!("job succeeded");
            } else {
                warn!("lease lost before completion: the completion was fenced out; another worker owns the job");
            }
            delivery.ack(BasicAckOptions::default()).await?;
            After::Next
        }
        JobEnd::LeaseLost => {
            warn!("lease lost mid-job: its writes are fenced out; leaving the job to its new owner");
            delivery.ack(BasicAckOptions::default()).await?;
            After::Next
        }
        JobEnd::Retry { reason, crashed } => {
            let wait = backoff(ctx.config.retry_backoff, attempt);
            warn!(%reason, retry_in = ?wait, crashed, "job attempt failed; it is retried after a back-off");
            jobs::release(ctx.pool, fence, &reason, wait, crashed).await?;
            delivery.ack(BasicAckOptions::default()).await?;
            After::Next
        }
        JobEnd::Unhealthy { reason, check } => {
            warn!(%reason, "the worker is at fault: handing the job back without spending an attempt");
            let why = format!("handed back by an unhealthy worker: {reason}");
            jobs::hand_back(ctx.pool, fence, &why, MAX_HANDBACKS).await?;
            delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?;
            After::Unhealthy { reason, check }
        }
        JobEnd::HandedBack => {
            warn!("shutting down: handing the job back without spending an attempt");
            jobs::hand_back(ctx.pool, fence, "handed back by a worker shutting down", MAX_HANDBACKS).await?;
            delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?;
            After::ShuttingDown
        }
    };
    if matches!(after, After::Next) {
        ctx.status.note(WorkerState::Idle, None, None);
        workers::job_ended(ctx.pool, ctx.worker).await?;
    }
    Ok(Settled { completed, sessions: sessions.unwrap_or_default(), after })
}

/// Applies the session policy and returns what the job cost, with the sessions it created (None: no telemetry
/// came back).
async fn job_costs(ctx: &Ctx<'_>) -> Result<Option<(JobCosts, (u64, Duration))>, WorkerError> {
    let telemetry = match ctx.inference.job_done().await {
        Ok(t) => t,
        Err(ThreadGone::Broken(reason)) => return Err(WorkerError::Fatal(reason)),
        Err(e @ (ThreadGone::Died | ThreadGone::Hung(_))) => {
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
    let created = Duration::from_secs_f64(telemetry.session_create_ms / 1000.0);
    Ok(Some((costs, (telemetry.sessions_created, created))))
}

/// The back-off before retry `attempt`: `base` doubled per attempt, capped at 32 times `base`, with jitter
/// between half and all of it, so retries of many jobs spread out.
fn backoff(base: Duration, attempt: i32) -> Duration {
    let doubled = base * (1u32 << attempt.clamp(1, 6).saturating_sub(1));
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 2000.0;
    doubled.mul_f64(0.5 + jitter)
}
