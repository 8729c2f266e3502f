//! What the consume loop, a job and the settling of its attempt share.

use crate::config::WorkerConfig;
use crate::heartbeat::Status;
use crate::inference::InferenceHandle;
use crate::shutdown::Shutdown;
use scenequeue_core::ids::WorkerId;
use sqlx::PgPool;

/// One running worker's handles and settings.
pub(crate) struct Ctx<'a> {
    pub(crate) pool: &'a PgPool,
    pub(crate) inference: &'a InferenceHandle,
    pub(crate) config: &'a WorkerConfig,
    pub(crate) worker: WorkerId,
    /// Jobs the broker may hold queued; the worker tops the queue up to this once it is half empty (`top_up`).
    pub(crate) max_queued: i64,
    /// Unacknowledged jobs the worker holds from the broker (the farm's setting, which the reconciler counts on).
    pub(crate) prefetch: u16,
    /// What the worker's row says; the heartbeat writes it and extends the lease it holds.
    pub(crate) status: Status,
    pub(crate) shutdown: Shutdown,
}
