//! Workers that stopped heartbeating: a worker renews `workers.last_seen` every few seconds while it runs; one
//! whose last sign of life is older than a threshold, and that never said it stopped, is marked `lost` (killed,
//! hung, or cut off from the database). Its job is not touched here: its lease runs out and the reaper hands
//! the job to another worker.

use crate::ids::WorkerId;
use crate::states::WorkerState;
use sqlx::PgPool;
use std::time::Duration;

/// Default time without a heartbeat after which a worker is lost.
pub const DEFAULT_LOST_AFTER: Duration = Duration::from_secs(30);

/// lost: idle, busy or unhealthy workers last seen more than `after` ago. Returns them.
pub async fn mark_lost(pool: &PgPool, after: Duration) -> Result<Vec<WorkerId>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE workers SET state = $1
         WHERE state IN ($2, $3, $4) AND last_seen < now() - make_interval(secs => $5) RETURNING id",
    )
    .bind(WorkerState::Lost)
    .bind(WorkerState::Idle)
    .bind(WorkerState::Busy)
    .bind(WorkerState::Unhealthy)
    .bind(after.as_secs_f64())
    .fetch_all(pool)
    .await
}
