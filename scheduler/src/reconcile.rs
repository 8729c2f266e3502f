//! Queued jobs the broker lost: every `queued` job should have a message in the job queue. When the queue holds
//! fewer messages than there are queued jobs, even counting every message its consumers may hold unacknowledged
//! (consumers times the prefetch bound), the difference was lost (a purge, a broker that lost its data). That
//! many queued jobs, oldest first and only those confirmed more than a grace period ago, go back to `pending`,
//! and dispatch publishes them again.
//!
//! The counts are two readings, not one snapshot, so the guess can be off either way for a pass: one too many
//! republishes a job whose message was on its way (a duplicate, harmless: it finds the job running or finished
//! and is acknowledged); one too few is caught by the next pass. Stale messages (duplicates, messages of jobs
//! since finished) hide as many lost ones until workers consume them.

use crate::SchedulerError;
use lapin::Connection;
use scenequeue_core::mq::{Topology, queue_depth};
use scenequeue_core::requeue::{queued_count, requeue_lost_messages};
use sqlx::PgPool;
use std::time::Duration;
use tracing::warn;

/// Sends back to `pending` the queued jobs whose messages the broker no longer holds (each consumer may hold
/// `prefetch` unacknowledged), confirmed more than `grace` ago. Returns how many.
pub async fn reconcile(
    pool: &PgPool,
    connection: &Connection,
    topology: &Topology,
    (prefetch, grace): (u16, Duration),
) -> Result<usize, SchedulerError> {
    let queued = queued_count(pool).await?;
    if queued == 0 {
        return Ok(0);
    }
    let depth = queue_depth(connection, &topology.queue).await?;
    let held = i64::from(depth.messages) + i64::from(depth.consumers) * i64::from(prefetch);
    let shortfall = queued - held;
    if shortfall <= 0 {
        return Ok(0);
    }
    let requeued = requeue_lost_messages(pool, shortfall, grace).await?;
    if !requeued.is_empty() {
        warn!(
            queued,
            messages = depth.messages,
            consumers = depth.consumers,
            republished = requeued.len(),
            "the broker holds fewer messages than queued jobs; publishing the oldest again"
        );
    }
    Ok(requeued.len())
}
