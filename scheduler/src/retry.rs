//! `scenequeue retry <id>`: dead jobs and failed scenes of a batch or of one job run again (see
//! `core::retry` for what is reset), then the jobs are published if the broker answers. When it does not, they
//! wait in `pending` for the next dispatcher (the scheduler, or any worker).

use crate::SchedulerError;
use scenequeue_core::dispatch::dispatch;
use scenequeue_core::mq::Publisher;
use scenequeue_core::retry::{Reset, retry as reset};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// What a retry reset, and whether its jobs were published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryReport {
    /// What was put back to run.
    #[serde(flatten)]
    pub reset: Reset,
    /// Pending jobs published right after (of any batch, by priority); None if the broker was not reached.
    pub published: Option<usize>,
    /// Why nothing was published, when the broker was not reached: the jobs wait pending.
    pub not_published: Option<String>,
}

/// Resets the dead jobs and failed scenes of the batch or job `id` in one transaction, then dispatches through
/// `publisher` when there is one. A dispatch that fails is reported, not an error: the reset stands and the jobs
/// wait pending.
pub async fn retry(
    pool: &PgPool,
    publisher: Option<&Publisher>,
    id: Uuid,
    max_queued: i64,
) -> Result<RetryReport, SchedulerError> {
    let reset = reset(pool, id).await?;
    let (published, not_published) = match publisher {
        None => (None, Some("the broker is not reachable".to_string())),
        Some(publisher) => match dispatch(pool, publisher, max_queued).await {
            Ok(n) => (Some(n), None),
            Err(e) => {
                tracing::warn!(error = %e, "retried jobs stay pending: publishing them failed");
                (None, Some(e.to_string()))
            }
        },
    };
    Ok(RetryReport { reset, published, not_published })
}
