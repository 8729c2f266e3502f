//! `scenequeue serve`: the operator's view alone (dashboard, JSON API, actions, /metrics), until SIGINT or SIGTERM.

use crate::args::HttpArgs;
use scenequeue_core::config::Services;
use scenequeue_core::db;

/// Connections the server's pool may hold.
const POOL_SIZE: u32 = 8;

pub async fn run(services: &Services, args: &HttpArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let shutdown = super::shutdown_on_signal();
    let pool = db::connect(&services.database_url, POOL_SIZE).await?;
    scenequeue_api::serve(pool.clone(), config, shutdown, None).await?;
    pool.close().await;
    Ok(())
}
