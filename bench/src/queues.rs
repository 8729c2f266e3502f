//! A classic queue against a quorum queue on the same broker: confirmed publishes and acknowledged deliveries per
//! second for job-sized messages, and, with `--kill` and `--restart` (commands that stop and start the node the
//! queue lives on, such as `scripts/cluster.sh kill-mq 1`), what each gives while that node is down: whether the
//! queue answers through another node, whether a publish is confirmed there, what can be read, and what is there
//! once the node is back.

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The node the queues are declared on (their leader, or a classic queue's home).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// Another node of the same cluster, used while the first is down.
    #[arg(long)]
    other_url: Option<String>,
    /// Messages per queue type.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Publishes in flight before their confirms are awaited.
    #[arg(long, default_value_t = 200)]
    window: usize,
    /// A shell command that kills the node of `--amqp-url`.
    #[arg(long)]
    kill: Option<String>,
    /// A shell command that starts it again (and waits until it is up).
    #[arg(long)]
    restart: Option<String>,
}

const BODY: &[u8] = br#"{"job_id":"0190e8a4-8f5c-7d6e-9a1b-2c3d4e5f6a7b"}"#;

async fn connect(url: &str) -> anyhow::Result<Connection> {
    Connection::connect(url, ConnectionProperties::default()).await.with_context(|| format!("connecting to {url}"))
}

fn queue_args(kind: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(ShortString::from("x-queue-type"), AMQPValue::LongString(kind.into()));
    args
}

async fn declare(channel: &Channel, name: &str, kind: &str) -> Result<(), lapin::Error> {
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(name, durable, queue_args(kind)).await.map(|_| ())
}

/// Publishes `n` persistent messages with confirms, `window` in flight; returns how many were acked.
async fn publish(channel: &Channel, queue: &str, n: usize, window: usize) -> Result<usize, lapin::Error> {
    let mut acked = 0;
    let mut sent = 0;
    while sent < n {
        let mut pending = Vec::with_capacity(window);
        for _ in 0..window.min(n - sent) {
            let properties = BasicProperties::default().with_delivery_mode(2);
            pending.push(channel.basic_publish("", queue, BasicPublishOptions::default(), BODY, properties).await?);
            sent += 1;
        }
        for confirm in pending {
            if confirm.await?.is_ack() {
                acked += 1;
            }
        }
    }
    Ok(acked)
}

/// Reads and acknowledges messages until `n` were read or none came for `idle`; returns how many.
async fn drain(channel: &Channel, queue: &str, n: usize, idle: Duration) -> Result<usize, lapin::Error> {
    channel.basic_qos(100, BasicQosOptions::default()).await?;
    let mut consumer =
        channel.basic_consume(queue, "bench", BasicConsumeOptions::default(), FieldTable::default()).await?;
    let mut read = 0;
    while read < n {
        match tokio::time::timeout(idle, consumer.next()).await {
            Ok(Some(Ok(delivery))) => {
                delivery.ack(BasicAckOptions::default()).await?;
                read += 1;
            }
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) | Err(_) => break,
        }
    }
    let _ = channel.basic_cancel("bench", Default::default()).await;
    Ok(read)
}

fn shell(command: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("sh").args(["-c", command]).status()?;
    anyhow::ensure!(status.success(), "{command} failed");
    Ok(())
}

fn per_second(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

async fn one(args: &Args, kind: &str) -> anyhow::Result<()> {
    let name = format!("bench.queues.{kind}.{}", uuid::Uuid::new_v4().simple());
    let connection = connect(&args.amqp_url).await?;
    let channel = connection.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    declare(&channel, &name, kind).await?;
    let t = Instant::now();
    let acked = publish(&channel, &name, args.messages, args.window).await?;
    let publish_rate = per_second(acked, t);
    let t = Instant::now();
    let read = drain(&channel, &name, args.messages, Duration::from_secs(5)).await?;
    println!(
        "{kind:<8} publish+confirm {publish_rate:>8.0} msg/s ({acked} acked); consume+ack {:>8.0} msg/s ({read} read)",
        per_second(read, t)
    );

    if let (Some(kill), Some(restart), Some(other)) = (&args.kill, &args.restart, &args.other_url) {
        let kept = 1000;
        publish(&channel, &name, kept, args.window).await?;
        drop(channel);
        shell(kill)?;
        let other = connect(other).await?;
        let channel = other.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let passive = QueueDeclareOptions { passive: true, durable: true, ..QueueDeclareOptions::default() };
        let answered = match channel.queue_declare(&name, passive, queue_args(kind)).await {
            Ok(q) => format!("answers ({} ready)", q.message_count()),
            Err(e) => format!("does not answer: {e}"),
        };
        let channel = if channel.status().connected() { channel } else { other.create_channel().await? };
        let _ = channel.confirm_select(ConfirmSelectOptions::default()).await;
        // At once, and again 5 s later (a quorum queue elects a new leader meanwhile).
        let mut during = Vec::new();
        let mut channel = channel;
        for wait in [0, 5] {
            tokio::time::sleep(Duration::from_secs(wait)).await;
            // A fresh channel each time: one that published to the old leader may keep addressing it.
            if wait > 0 || !channel.status().connected() {
                channel = other.create_channel().await?;
                channel.confirm_select(ConfirmSelectOptions::default()).await?;
            }
            let sent = tokio::time::timeout(Duration::from_secs(15), publish(&channel, &name, 100, 100)).await;
            during.push(match sent {
                Ok(Ok(n)) => format!("{n} of 100 confirmed after {wait} s"),
                Ok(Err(e)) => format!("refused after {wait} s: {e}"),
                Err(_) => format!("no confirm in 15 s after {wait} s"),
            });
        }
        let during = during.join(", ");
        let channel = if channel.status().connected() { channel } else { other.create_channel().await? };
        let readable = match drain(&channel, &name, usize::MAX, Duration::from_secs(3)).await {
            Ok(n) => format!("{n} read"),
            Err(e) => format!("none read: {e}"),
        };
        shell(restart)?;
        let back = connect(&args.amqp_url).await?;
        let channel = back.create_channel().await?;
        let after = drain(&channel, &name, usize::MAX, Duration::from_secs(3)).await?;
        println!(
            "{kind:<8} node down, {kept} messages on it: through another node the queue {answered}; publishes there: {during}; reads there: {readable}; after the node came back: {after} more read"
        );
        let _ = channel.queue_delete(&name, QueueDeleteOptions::default()).await;
        let _ = back.close(200, "done").await;
        let _ = other.close(200, "done").await;
    } else {
        let _ = channel.queue_delete(&name, QueueDeleteOptions::default()).await;
    }
    let _ = connection.close(200, "done").await;
    Ok(())
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    println!("{} messages of {} bytes, persistent, {} in flight", args.messages, BODY.len(), args.window);
    for kind in ["classic", "quorum"] {
        one(args, kind).await?;
    }
    Ok(())
}
