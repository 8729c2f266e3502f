//! Heartbeats. The worker's row is refreshed every few seconds whatever it is doing, so a worker that dies is
//! seen as lost within seconds; the lease of the job in progress is extended on the same beat, in the same
//! statement, but only while
//! the job makes progress (the watchdog's deadline has not passed), so a job stuck beyond its bound is taken
//! over rather than held forever.

use scenequeue_core::fence::Fence;
use scenequeue_core::ids::{JobId, WorkerId};
use scenequeue_core::states::WorkerState;
use scenequeue_core::workers;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The deadline by which the job in progress must answer.
#[derive(Debug, Clone)]
pub struct Progress(Arc<Mutex<Instant>>);

impl Progress {
    /// A deadline `within` from now.
    pub fn new(within: Duration) -> Self {
        Self(Arc::new(Mutex::new(Instant::now() + within)))
    }

    /// Moves the deadline to `within` from now (a new group of scenes started, or one finished).
    pub fn expect_within(&self, within: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now() + within;
    }

    fn overdue(&self) -> bool {
        Instant::now() > *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lease of the job in progress, which the worker's heartbeat extends while the job progresses.
#[derive(Debug, Clone)]
pub struct HeldLease {
    /// The lease.
    pub fence: Fence,
    /// How long each extension lasts.
    pub ttl: Duration,
    /// The watchdog's deadline: past it, the lease is no longer extended.
    pub progress: Progress,
    /// Cancelled when the lease turns out lost.
    pub lost: CancellationToken,
}

/// A worker's state, its job and its health note.
type Row = (WorkerState, Option<JobId>, Option<String>);

/// What the worker's row says about it, and the lease its heartbeat extends.
#[derive(Debug, Clone)]
pub struct Status {
    inner: Arc<Mutex<Row>>,
    lease: Arc<Mutex<Option<HeldLease>>>,
}

impl Status {
    /// Idle, no job.
    pub fn new() -> Self {
        Self { inner: Arc::new(Mutex::new((WorkerState::Idle, None, None))), lease: Arc::new(Mutex::new(None)) }
    }

    /// From now on the heartbeat extends `lease` too.
    pub fn hold(&self, lease: HeldLease) {
        *self.lease.lock().unwrap_or_else(PoisonError::into_inner) = Some(lease);
    }

    /// The heartbeat stops extending the lease of `fence` (if it is still the one held).
    pub fn let_go(&self, fence: &Fence) {
        let mut held = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref().is_some_and(|l| l.fence == *fence) {
            *held = None;
        }
    }

    fn held(&self) -> Option<HeldLease> {
        self.lease.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Changes what the row says and writes it now.
    pub async fn set(
        &self,
        pool: &PgPool,
        id: WorkerId,
        state: WorkerState,
        job: Option<JobId>,
        health: Option<String>,
    ) -> Result<(), sqlx::Error> {
        self.note(state, job, health.clone());
        workers::beat(pool, id, state, job, health.as_deref()).await.map(|_| ())
    }

    /// Changes what the row says without writing it (a statement that wrote it already, or the next beat will).
    pub fn note(&self, state: WorkerState, job: Option<JobId>, health: Option<String>) {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = (state, job, health);
    }

    /// What the row says about the worker's health now.
    pub fn health(&self) -> Option<String> {
        self.get().2
    }

    fn get(&self) -> Row {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Refreshes the worker's row every `every` until the task is aborted, and extends the lease of the job in
/// progress in the same statement while the job progresses (the watchdog's deadline has not passed); a lease
/// found lost cancels its `lost` token. Cancels `drain` (the worker finishes its job and stops taking more) once
/// an operator asked the worker to drain. On every beat, `alive` (when given) is rewritten with the time, whether
/// or not Postgres answered: a liveness probe that reads its age sees that the worker started (model warmed,
/// registered) and that its runtime still turns, without a query of its own.
pub async fn worker(
    pool: PgPool,
    id: WorkerId,
    status: Status,
    every: Duration,
    drain: CancellationToken,
    alive: Option<PathBuf>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Some(path) = &alive {
            touch(path).await;
        }
        let (state, job, health) = status.get();
        let lease = status.held().filter(|l| {
            let overdue = l.progress.overdue();
            if overdue {
                warn!(job.id = %l.fence.job, "no progress within the watchdog's bound; the lease is no longer renewed");
            }
            !overdue
        });
        let row = (state, job, health.as_deref());
        match workers::beat_holding(&pool, id, row, lease.as_ref().map(|l| (&l.fence, l.ttl))).await {
            Ok(beat) => {
                if let Some(l) = lease.as_ref().filter(|_| !beat.lease_held) {
                    l.lost.cancel();
                    status.let_go(&l.fence);
                }
                if beat.drain_requested && !drain.is_cancelled() {
                    tracing::info!("an operator asked this worker to drain: finishing the current job, then stopping");
                    drain.cancel();
                }
            }
            Err(e) if lease.is_some() => warn!(error = %e, "heartbeat not written; the job's lease was not extended"),
            Err(e) => debug!(error = %e, "heartbeat not written"),
        }
    }
}

/// Writes the current Unix time to `path` (a probe reads the file's age); a failure is logged, never fatal.
async fn touch(path: &Path) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if let Err(e) = tokio::fs::write(path, format!("{now}\n")).await {
        warn!(path = %path.display(), error = %e, "the alive file cannot be written");
    }
}
