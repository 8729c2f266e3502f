//! The dead-letter queue, drained by the reaper: the broker gave up on a message (its delivery limit reached).
//! The job goes back to `pending` if it has attempts left, so dispatch publishes it again; one out of attempts,
//! or dead-lettered too often, is buried with the reason; a finished one is only acknowledged (see
//! `core::requeue`).

use crate::SchedulerError;
use lapin::Connection;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use scenequeue_core::mq::{JobMessage, MqError, Topology};
use scenequeue_core::requeue::{DeadLetter, requeue_dead_lettered};
use sqlx::PgPool;
use tracing::{info, warn};

/// Dead-lettered messages handled per pass (bounds one pass's work).
const DEAD_PER_PASS: usize = 1000;

/// What draining the dead-letter queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterCounts {
    /// Messages taken (and acknowledged).
    pub taken: usize,
    /// Their jobs sent back to pending.
    pub requeued: usize,
    /// Their jobs buried.
    pub buried: usize,
}

/// Takes up to `DEAD_PER_PASS` messages from the dead-letter queue and settles each one's job. A message is
/// acknowledged only once its job is settled, so a pass that fails leaves it for the next one.
pub async fn drain_dead_letters(
    pool: &PgPool,
    connection: &Connection,
    topology: &Topology,
) -> Result<DeadLetterCounts, SchedulerError> {
    let channel = connection.create_channel().await.map_err(MqError::from)?;
    let mut counts = DeadLetterCounts::default();
    while counts.taken < DEAD_PER_PASS {
        let got = channel.basic_get(&topology.dead_queue, BasicGetOptions::default()).await.map_err(MqError::from)?;
        let Some(message) = got else { break };
        match serde_json::from_slice::<JobMessage>(&message.delivery.data) {
            Ok(m) => match requeue_dead_lettered(pool, m.job_id).await? {
                DeadLetter::Requeued => {
                    info!(job.id = %m.job_id, "dead-lettered job published again");
                    counts.requeued += 1;
                }
                DeadLetter::Buried => {
                    warn!(job.id = %m.job_id, "dead-lettered job buried");
                    counts.buried += 1;
                }
                DeadLetter::Finished | DeadLetter::Held | DeadLetter::Missing => {}
            },
            Err(e) => warn!(error = %e, "dropping a dead-lettered message that is not a job"),
        }
        message.delivery.ack(BasicAckOptions::default()).await.map_err(MqError::from)?;
        counts.taken += 1;
    }
    let _ = channel.close(200, "done").await;
    Ok(counts)
}
