//! A submission's database steps: each one a read, an idempotent write or a transaction that rolled back, tried
//! again with capped back-off while Postgres is away, for the submission's patience. Giving up after the batch
//! was opened leaves it interrupted, to be resumed; before, nothing was stored.

use crate::SchedulerError;
use scenequeue_core::ids::BatchId;
use scenequeue_core::outage::{Patience, StepError, retry_step};
use std::future::Future;

/// The database steps of one submission, tried again while Postgres is away (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Steps {
    pub(crate) patience: Patience,
    /// The batch, once it is open: giving up then leaves it interrupted; before, nothing was stored.
    pub(crate) batch: Option<BatchId>,
}

impl Steps {
    pub(crate) async fn run<T, F, Fut>(&self, what: &'static str, step: F) -> Result<T, SchedulerError>
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
