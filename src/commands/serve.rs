//! `scenequeue serve`: the operator's view alone (dashboard, JSON API, actions, /metrics), until SIGINT or SIGTERM.

use crate::args::HttpArgs;
use scenequeue_core::config::Services;
use scenequeue_core::db;
use scenequeue_core::outage::Patience;

/// Connections the server's pool may hold.
const POOL_SIZE: u32 = 8;

pub async fn run(services: &Services, args: &HttpArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let shutdown = super::shutdown_on_signal();
    // A server waits for Postgres however long it takes to start.
    let connected = db::connect_when_up(&services.database_url, POOL_SIZE, &Patience::forever(), &shutdown).await?;
    let Some(pool) = connected else { return Ok(()) };
    scenequeue_api::serve(pool.clone(), config, shutdown, None).await?;
    pool.close().await;
    Ok(())
}
