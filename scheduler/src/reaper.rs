//! Keeps jobs moving whatever vanished, one pass per tick of `scenequeue scheduler`:
//!
//! 1. batches whose submitter stopped renewing its heartbeat become `interrupted`;
//! 2. workers that stopped heartbeating become `lost` (see `core::liveness`);
//! 3. running jobs whose lease expired go back to `pending`, or are buried on their last attempt;
//! 4. dead-lettered messages are drained (see `dead_letters`): a job with attempts left is published again, one
//!    out of attempts is buried, a finished one is only acknowledged;
//! 5. queued jobs whose message the broker lost go back to `pending` (see `reconcile`);
//! 6. pending jobs are dispatched (see `core::dispatch`), those of steps 3 to 5 included;
//! 7. the delta rows of the kept counts per state are folded (see `core::counts`).

use crate::SchedulerError;
use crate::dead_letters::{DeadLetterCounts, drain_dead_letters};
use crate::reconcile::reconcile;
use lapin::Connection;
use scenequeue_core::config::Services;
use scenequeue_core::dispatch::{DEFAULT_MAX_QUEUED, dispatch};
use scenequeue_core::liveness::{DEFAULT_LOST_AFTER, mark_lost};
use scenequeue_core::mq::{DEFAULT_PREFETCH, Publisher, Topology};
use scenequeue_core::{batches, counts, jobs};
use sqlx::PgPool;
use std::time::Duration;

/// Default time between two passes: a dead worker's job is taken back at most this long after its lease runs out.
pub const DEFAULT_REAP_INTERVAL: Duration = Duration::from_secs(5);

/// What a pass may do; `Default` holds every documented default (the CLI's flags take theirs from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReapSettings {
    /// Jobs the broker may hold queued (see `core::dispatch`).
    pub max_queued: i64,
    /// A worker without a heartbeat for this long is lost.
    pub lost_after: Duration,
    /// A queued job is republished as lost only once its message was confirmed this long ago, so a message on
    /// its way to a worker is not counted missing.
    pub reconcile_grace: Duration,
    /// Unacknowledged messages one consumer may hold (the workers' prefetch): these are not in the queue's count.
    /// The farm's one setting, `Services::prefetch`, which the workers consume with ([`ReapSettings::for_farm`]).
    pub prefetch: u16,
}

impl Default for ReapSettings {
    fn default() -> Self {
        Self {
            max_queued: DEFAULT_MAX_QUEUED,
            lost_after: DEFAULT_LOST_AFTER,
            reconcile_grace: Duration::from_secs(30),
            prefetch: DEFAULT_PREFETCH,
        }
    }
}

impl ReapSettings {
    /// The defaults, with the farm's own queue bound and prefetch: the same settings its workers run with.
    pub fn for_farm(services: &Services) -> Self {
        Self { max_queued: services.max_queued, prefetch: services.prefetch, ..Self::default() }
    }
}

/// What one reaper pass did, counted per action.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReapReport {
    /// Batches whose submitter stopped (stale heartbeat), now interrupted.
    pub interrupted: usize,
    /// Workers without a heartbeat, now lost.
    pub lost_workers: usize,
    /// Running jobs whose lease expired with attempts left, sent back to pending.
    pub requeued: usize,
    /// Running jobs whose lease expired on their last attempt, now dead.
    pub buried: usize,
    /// Messages taken from the dead-letter queue.
    pub dead_lettered: usize,
    /// Of their jobs, those sent back to pending to be published again.
    pub dead_requeued: usize,
    /// Of their jobs, those buried (out of attempts, or dead-lettered too often).
    pub dead_buried: usize,
    /// Queued jobs whose message the broker no longer held, sent back to pending.
    pub reconciled: usize,
    /// Pending jobs published to the broker.
    pub published: usize,
}

/// One pass with the default settings and `max_queued` jobs at most in the broker. See [`reap_with`].
pub async fn reap(
    pool: &PgPool,
    publisher: &Publisher,
    connection: &Connection,
    topology: &Topology,
    max_queued: i64,
) -> Result<ReapReport, SchedulerError> {
    reap_with(pool, publisher, connection, topology, &ReapSettings { max_queued, ..ReapSettings::default() }).await
}

/// One pass; the scheduler runs it on an interval. A pass that fails part-way leaves every change it made
/// consistent: the next one picks up the rest.
pub async fn reap_with(
    pool: &PgPool,
    publisher: &Publisher,
    connection: &Connection,
    topology: &Topology,
    settings: &ReapSettings,
) -> Result<ReapReport, SchedulerError> {
    let interrupted = batches::interrupt_stale(pool).await?.len();
    let lost_workers = mark_lost(pool, settings.lost_after).await?.len();
    let requeued = jobs::requeue_expired(pool).await?.len();
    let buried = jobs::bury_expired_on_last_attempt(pool).await?;
    let DeadLetterCounts { taken, requeued: dead_requeued, buried: dead_buried } =
        drain_dead_letters(pool, connection, topology).await?;
    let reconciled = reconcile(pool, connection, topology, (settings.prefetch, settings.reconcile_grace)).await?;
    let published = dispatch(pool, publisher, settings.max_queued).await?;
    // Fold the delta rows of the kept counts, so reading them stays a few rows per batch.
    counts::compact(pool).await?;
    Ok(ReapReport {
        interrupted,
        lost_workers,
        requeued,
        buried,
        dead_lettered: taken,
        dead_requeued,
        dead_buried,
        reconciled,
        published,
    })
}
