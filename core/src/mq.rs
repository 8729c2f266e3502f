//! RabbitMQ: the durable topology, publishing with a broker confirm per message, and the job message itself.
//!
//! Topology for a base name `Q`: a durable quorum queue `Q` (at-least-once delivery; `x-delivery-limit`
//! bounds redeliveries), a fanout dead-letter exchange `Q.dlx` and its durable queue `Q.dead`, where messages
//! land that were rejected or redelivered too often. Nothing is ever dropped silently.

use crate::ids::JobId;
use crate::outage::{Patience, when_up};
use lapin::options::{
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The body of every job message: the id alone. Postgres holds everything else, so a message can never
/// disagree with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    /// The job to run.
    pub job_id: JobId,
}

/// Why a RabbitMQ operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MqError {
    /// The connection to the broker could not be opened.
    #[error("cannot connect to RabbitMQ at {url}: {source}")]
    Connect {
        /// The broker URL, with its password hidden.
        url: String,
        /// The client library's error.
        #[source]
        source: lapin::Error,
    },
    /// The node answered, but announces another cluster than the one expected (`SCENEQUEUE_AMQP_CLUSTER`).
    #[error("RabbitMQ at {url} belongs to cluster {found:?}, not {expected:?}: passed over")]
    ForeignNode {
        /// The node's URL, with its password hidden.
        url: String,
        /// The cluster name it announces.
        found: String,
        /// The cluster name expected.
        expected: String,
    },
    /// A broker operation (declare, publish, confirm, consume) failed on an open connection.
    #[error("RabbitMQ: {0}")]
    Protocol(#[from] lapin::Error),
    /// The broker did not confirm a job's message: it nacked it or returned it as unroutable.
    #[error("the broker refused (nack) the message for job {0}")]
    Nacked(JobId),
    /// A job message could not be encoded, or a received body is not a valid job message.
    #[error("job message is not valid: {0}")]
    BadMessage(#[from] serde_json::Error),
}

impl MqError {
    /// Whether waiting (and reconnecting) may fix it: the broker away, starting, restarting or refusing a
    /// message for now, rather than refusing these credentials or this virtual host, or a message that cannot
    /// be encoded.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Connect { source, .. } | Self::Protocol(source) => !refused_for_good(source),
            // The list's other nodes may come back.
            Self::Nacked(_) | Self::ForeignNode { .. } => true,
            Self::BadMessage(_) => false,
        }
    }
}

/// The broker refused these credentials or this virtual host: the same connection is refused however long one
/// waits.
fn refused_for_good(e: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
    matches!(e, lapin::Error::ProtocolError(p)
        if matches!(p.kind(), AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)))
}

/// Names of everything declared for one queue base name.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The durable quorum queue that carries job messages (the base name).
    pub queue: String,
    /// The fanout exchange that dead-lettered messages go to (`<queue>.dlx`).
    pub dead_letter_exchange: String,
    /// The queue that holds dead-lettered messages (`<queue>.dead`).
    pub dead_queue: String,
    /// Deliveries of one message before the broker dead-letters it (covers worker crashes mid-job).
    pub delivery_limit: u32,
}

impl Topology {
    /// The topology for base name `queue`, with a delivery limit of 5; declares nothing.
    pub fn new(queue: &str) -> Self {
        Self {
            queue: queue.to_string(),
            dead_letter_exchange: format!("{queue}.dlx"),
            dead_queue: format!("{queue}.dead"),
            delivery_limit: 5,
        }
    }

    /// Declares the topology; idempotent, so every process declares it at start-up.
    pub async fn declare(&self, channel: &Channel) -> Result<(), MqError> {
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        channel
            .exchange_declare(
                &self.dead_letter_exchange,
                ExchangeKind::Fanout,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await?;
        channel.queue_declare(&self.dead_queue, durable, quorum_args(None, None)).await?;
        channel
            .queue_bind(
                &self.dead_queue,
                &self.dead_letter_exchange,
                "",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                &self.queue,
                durable,
                quorum_args(Some(&self.dead_letter_exchange), Some(self.delivery_limit)),
            )
            .await?;
        Ok(())
    }

    /// Removes the queues and exchange (used by tests to clean up after themselves).
    pub async fn delete(&self, channel: &Channel) -> Result<(), MqError> {
        channel.queue_delete(&self.queue, QueueDeleteOptions::default()).await?;
        channel.queue_delete(&self.dead_queue, QueueDeleteOptions::default()).await?;
        channel.exchange_delete(&self.dead_letter_exchange, Default::default()).await?;
        Ok(())
    }
}

fn quorum_args(dead_letter_exchange: Option<&str>, delivery_limit: Option<u32>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(ShortString::from("x-queue-type"), AMQPValue::LongString("quorum".into()));
    if let Some(dlx) = dead_letter_exchange {
        args.insert(ShortString::from("x-dead-letter-exchange"), AMQPValue::LongString(dlx.into()));
    }
    if let Some(limit) = delivery_limit {
        args.insert(ShortString::from("x-delivery-limit"), AMQPValue::LongUInt(limit));
    }
    args
}

/// Opens a connection, named `scenequeue`, to the broker at `url`, or to a node of a comma-separated list of a
/// cluster's nodes (`brokers::connect`).
pub async fn connect(url: &str) -> Result<Connection, MqError> {
    crate::brokers::connect(url).await
}

/// [`connect`] once the broker answers: an outage ([`MqError::is_outage`]: refused while it starts, closed
/// while it boots) is waited out with capped back-off, each try logged with its reason, for as long as
/// `patience` allows (then its last error). None: `stop` fired first.
pub async fn connect_when_up(
    url: &str,
    patience: &Patience,
    stop: &CancellationToken,
) -> Result<Option<Connection>, MqError> {
    when_up("RabbitMQ", patience, stop, MqError::is_outage, || connect(url)).await
}

/// A channel in confirm mode: every publish waits for the broker's ack, so a message counts as sent only once
/// the broker has taken responsibility for it.
pub struct Publisher {
    channel: Channel,
    queue: String,
}

impl Publisher {
    /// Opens a confirm-mode channel on `connection`, declares `topology`, and publishes to its queue.
    pub async fn new(connection: &Connection, topology: &Topology) -> Result<Self, MqError> {
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        topology.declare(&channel).await?;
        Ok(Self { channel, queue: topology.queue.clone() })
    }

    /// Publishes `jobs` pipelined: all are sent, then every confirm is awaited. Returns the ids the broker
    /// confirmed; an error means some may be unconfirmed (they stay `pending` and are republished later).
    pub async fn publish_jobs(&self, jobs: &[JobId]) -> Result<Vec<JobId>, MqError> {
        let mut pending = Vec::with_capacity(jobs.len());
        for &job_id in jobs {
            let body = serde_json::to_vec(&JobMessage { job_id })?;
            let confirm = self
                .channel
                .basic_publish(
                    "",
                    &self.queue,
                    BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                    &body,
                    BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_content_type("application/json".into())
                        .with_message_id(job_id.to_string().into()),
                )
                .await?;
            pending.push((job_id, confirm));
        }
        let mut confirmed = Vec::with_capacity(pending.len());
        for (job_id, confirm) in pending {
            let confirmation = confirm.await?;
            // With `mandatory`, an unroutable message comes back as an ack carrying the returned message.
            match confirmation {
                lapin::publisher_confirm::Confirmation::Ack(None) => confirmed.push(job_id),
                _ => return Err(MqError::Nacked(job_id)),
            }
        }
        Ok(confirmed)
    }
}

/// What the broker holds in a queue right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages ready for delivery (not counting those delivered and not yet acknowledged).
    pub messages: u32,
    /// Consumers subscribed to the queue; each may hold up to its prefetch of unacknowledged messages.
    pub consumers: u32,
}

/// Reads a queue's depth with a passive declare, on a channel of its own (a missing queue closes the channel it
/// was asked on: the error names the queue).
pub async fn queue_depth(connection: &Connection, queue: &str) -> Result<QueueDepth, MqError> {
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue,
            QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
            FieldTable::default(),
        )
        .await;
    let _ = channel.close(200, "done").await;
    let q = declared?;
    Ok(QueueDepth { messages: q.message_count(), consumers: q.consumer_count() })
}

/// Jobs a worker holds unacknowledged by default: one, so a job waits in the queue (where any idle worker can
/// take it) rather than behind a busy worker's current job. Measured against 4 in docs/SCALING.md.
pub const DEFAULT_PREFETCH: u16 = 1;

/// Sets the prefetch of a consuming channel: a worker holds at most `prefetch` unacknowledged jobs.
pub async fn set_prefetch(channel: &Channel, prefetch: u16) -> Result<(), MqError> {
    channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    Ok(())
}
