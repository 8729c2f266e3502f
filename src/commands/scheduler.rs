//! `scenequeue scheduler` and `scenequeue migrate`

use crate::args::SchedulerArgs;
use scenequeue_core::config::Services;
use scenequeue_core::{db, mq};
use scenequeue_scheduler::reap;
use std::time::Duration;
use tracing::{info, warn};

pub async fn migrate(services: &Services) -> anyhow::Result<()> {
    db::connect(&services.database_url, 1).await?;
    let connection = mq::connect(&services.amqp_url).await?;
    mq::Topology::new(&services.queue).declare(&connection.create_channel().await?).await?;
    let _ = connection.close(200, "done").await;
    eprintln!("database migrated and queue {} declared", services.queue);
    Ok(())
}

/// The broker side of the scheduler: a connection and a confirm-mode publisher, opened again after the broker
/// went away.
struct Broker {
    connection: lapin::Connection,
    publisher: mq::Publisher,
}

async fn open_broker(services: &Services, topology: &mq::Topology) -> anyhow::Result<Broker> {
    let connection = mq::connect(&services.amqp_url).await?;
    let publisher = mq::Publisher::new(&connection, topology).await?;
    Ok(Broker { connection, publisher })
}

/// Longest wait between two attempts to reach the broker again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub async fn run(services: &Services, args: &SchedulerArgs) -> anyhow::Result<()> {
    let pool = db::connect(&services.database_url, 4).await?;
    let topology = mq::Topology::new(&services.queue);
    let mut broker = Some(open_broker(services, &topology).await?);
    let shutdown = super::shutdown_on_signal();
    let mut tick = tokio::time::interval(Duration::from_secs(args.interval_s.max(1)));
    let mut backoff = Duration::from_secs(1);
    info!(interval_s = args.interval_s, "scheduler started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        // After a broker restart the old connection is dead for good: open a new one, with capped back-off.
        let Some(b) = broker.as_ref().filter(|b| b.connection.status().connected()) else {
            broker = None;
            match open_broker(services, &topology).await {
                Ok(b) => {
                    info!("broker connection restored");
                    broker = Some(b);
                    backoff = Duration::from_secs(1);
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?backoff, "broker unreachable");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        match reap(&pool, &b.publisher, &b.connection, &topology, services.max_queued).await {
            Ok(r) if r != Default::default() => info!(?r, "reaper pass"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "reaper pass failed"),
        }
    }
    if let Some(b) = broker {
        let _ = b.connection.close(200, "done").await;
    }
    Ok(())
}
