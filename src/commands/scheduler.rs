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

pub async fn run(services: &Services, args: &SchedulerArgs) -> anyhow::Result<()> {
    let pool = db::connect(&services.database_url, 4).await?;
    let connection = mq::connect(&services.amqp_url).await?;
    let topology = mq::Topology::new(&services.queue);
    let publisher = mq::Publisher::new(&connection, &topology).await?;
    let shutdown = super::shutdown_on_signal();
    let mut tick = tokio::time::interval(Duration::from_secs(args.interval_s.max(1)));
    info!(interval_s = args.interval_s, "scheduler started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match reap(&pool, &publisher, &connection, &topology, services.max_queued).await {
            Ok(r) if r != Default::default() => info!(?r, "reaper pass"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "reaper pass failed"),
        }
    }
    let _ = connection.close(200, "done").await;
    Ok(())
}
