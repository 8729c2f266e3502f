//! `scenequeue scheduler` (the reaper loop and the operator's view) and `scenequeue migrate`

use crate::args::SchedulerArgs;
use scenequeue_core::config::Services;
use scenequeue_core::outage::{Backoff, Patience};
use scenequeue_core::{db, mq};
use scenequeue_scheduler::{ReapSettings, SchedulerError, reap_with};
use std::time::Duration;
use tracing::{info, warn};

/// Migrates the database and declares the queue, waiting (five minutes at most) for either service while it
/// starts: in a deployment this runs beside them as they boot.
pub async fn migrate(services: &Services) -> anyhow::Result<()> {
    let (patience, stop) = (Patience::default(), super::shutdown_on_signal());
    let Some(pool) = db::connect_when_up(&services.database_url, 1, &patience, &stop).await? else { return Ok(()) };
    pool.close().await;
    let Some(connection) = mq::connect_when_up(&services.amqp_url, &patience, &stop).await? else { return Ok(()) };
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

async fn open_broker(services: &Services, topology: &mq::Topology) -> Result<Broker, mq::MqError> {
    let connection = mq::connect(&services.amqp_url).await?;
    let publisher = mq::Publisher::new(&connection, topology).await?;
    Ok(Broker { connection, publisher })
}

/// First and longest wait between two attempts to reach a service that is away.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs the reaper every interval until SIGINT or SIGTERM. Never exits because a service is away: it starts
/// without Postgres or RabbitMQ and waits for each (capped back-off, every failure logged with its reason),
/// reconnects to the broker after it went away, and a pass that fails (Postgres gone for a while) is logged and
/// tried again at the next tick; the pool reconnects by itself.
pub async fn run(services: &Services, args: &SchedulerArgs) -> anyhow::Result<()> {
    let shutdown = super::shutdown_on_signal();
    let http = args.http.config()?;
    let connected = db::connect_when_up(&services.database_url, 4, &Patience::forever(), &shutdown).await?;
    let Some(pool) = connected else { return Ok(()) };
    info!("Postgres connected");
    // The operator's view runs beside the reaper; a server that cannot listen is logged and the reaper goes on.
    let server = tokio::spawn({
        let (pool, shutdown) = (pool.clone(), shutdown.clone());
        async move {
            if let Err(e) = scenequeue_api::serve(pool, http, shutdown, None).await {
                warn!(error = %e, "the operator's view is not served; the scheduler goes on without it");
            }
        }
    });
    let settings = ReapSettings {
        lost_after: Duration::from_secs(args.lost_after_s),
        reconcile_grace: Duration::from_secs(args.reconcile_grace_s),
        ..ReapSettings::for_farm(services)
    };
    let topology = mq::Topology::new(&services.queue);
    let mut broker: Option<Broker> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(args.interval_s.max(1)));
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    info!(interval_s = args.interval_s, "scheduler started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        // At start, and after a broker restart (the old connection is dead for good): open a new connection, with
        // capped back-off.
        let Some(b) = broker.as_ref().filter(|b| b.connection.status().connected()) else {
            broker = None;
            match open_broker(services, &topology).await {
                Ok(b) => {
                    info!("RabbitMQ connected");
                    broker = Some(b);
                    backoff.reset();
                    // Reap at once rather than a tick later.
                    tick.reset_immediately();
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    warn!(error = %e, retry_in = ?wait, "RabbitMQ unreachable; the scheduler waits for it");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
            continue;
        };
        let broker_failed = match reap_with(&pool, &b.publisher, &b.connection, &topology, &settings).await {
            Ok(r) => {
                if r != Default::default() {
                    info!(?r, "reaper pass");
                }
                false
            }
            Err(e) => {
                warn!(error = %e, "reaper pass failed; trying again at the next tick");
                matches!(e, SchedulerError::Mq(_) | SchedulerError::Dispatch(_))
            }
        };
        // A channel that met a broker error may go on failing (one that published to a quorum queue whose leader
        // died is refused even after a new leader is elected): the next pass opens a new connection.
        if broker_failed && let Some(b) = broker.take() {
            let _ = b.connection.close(200, "reopening after a broker error").await;
        }
    }
    if let Some(b) = broker {
        let _ = b.connection.close(200, "done").await;
    }
    let _ = server.await;
    pool.close().await;
    Ok(())
}
