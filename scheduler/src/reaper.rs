//! Keeps jobs moving when workers vanish: a running job whose lease expired goes back to the queue (or is
//! buried once out of attempts, with the reason), pending jobs are dispatched (see `core::dispatch`), and jobs
//! whose message the broker dead-lettered (delivery limit reached) are buried with that reason rather than
//! left waiting for a message that will never come.

use crate::SchedulerError;
use lapin::Connection;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use scenequeue_core::batches;
use scenequeue_core::dispatch::dispatch;
use scenequeue_core::jobs::{self, bury};
use scenequeue_core::mq::{JobMessage, Publisher, Topology};
use sqlx::PgPool;
use tracing::warn;

/// Dead-lettered messages handled per pass (bounds one pass's work).
const DEAD_PER_PASS: usize = 1000;

/// What one reaper pass did, counted per action.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReapReport {
    /// Batches whose submitter stopped (stale heartbeat), now interrupted.
    pub interrupted: usize,
    /// Running jobs whose lease expired with attempts left, sent back to pending.
    pub requeued: usize,
    /// Running jobs whose lease expired on their last attempt, now dead.
    pub buried: usize,
    /// Pending jobs published to the broker.
    pub published: usize,
    /// Messages taken from the dead-letter queue (their jobs buried).
    pub dead_lettered: usize,
}

/// One pass; the scheduler runs it on an interval.
pub async fn reap(
    pool: &PgPool,
    publisher: &Publisher,
    connection: &Connection,
    topology: &Topology,
    max_queued: i64,
) -> Result<ReapReport, SchedulerError> {
    let interrupted = batches::interrupt_stale(pool).await?.len();
    let requeued = jobs::requeue_expired(pool).await?;
    let buried = jobs::bury_expired_on_last_attempt(pool).await?;
    let published = dispatch(pool, publisher, max_queued).await?;
    let dead_lettered = drain_dead_letters(pool, connection, topology).await?;
    Ok(ReapReport { interrupted, requeued: requeued.len(), buried, published, dead_lettered })
}

async fn drain_dead_letters(
    pool: &PgPool,
    connection: &Connection,
    topology: &Topology,
) -> Result<usize, SchedulerError> {
    let channel = connection.create_channel().await.map_err(scenequeue_core::mq::MqError::from)?;
    let mut handled = 0;
    while handled < DEAD_PER_PASS {
        let got = channel
            .basic_get(&topology.dead_queue, BasicGetOptions::default())
            .await
            .map_err(scenequeue_core::mq::MqError::from)?;
        let Some(message) = got else { break };
        match serde_json::from_slice::<JobMessage>(&message.delivery.data) {
            Ok(m) => bury(pool, m.job_id, "the broker dead-lettered its message (delivery limit reached)").await?,
            Err(e) => warn!(error = %e, "dropping a dead-lettered message that is not a job"),
        }
        message.delivery.ack(BasicAckOptions::default()).await.map_err(scenequeue_core::mq::MqError::from)?;
        handled += 1;
    }
    let _ = channel.close(200, "done").await;
    Ok(handled)
}
