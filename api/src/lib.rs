//! The operator's view of a scenequeue farm, served over HTTP by `scenequeue scheduler` and `scenequeue serve`:
//! a JSON API under `/api/v1/`, actions behind an API token, Prometheus metrics at `/metrics`, and a dashboard
//! at `/` served from the binary. Everything is read from Postgres (the kept counts, never a recount), so
//! several servers show the same farm.
//!
//! The public surface is what a binary needs: [`serve`] with its [`ApiConfig`], and the two reads the CLI prints
//! ([`overview`], [`workers`]).
//!
//! # Layout
//! - `config`: the listening address and the API token, from the environment.
//! - `router`: every route, in one table.
//! - `auth`: the token and the constant-time check every action goes through.
//! - `error`: the one error type and its JSON body.
//! - `page`: keyset pagination.
//! - `resources`: one module per read resource (overview, batches, recordings, jobs, scenes, workers, errors).
//! - `actions`: retry, cancel, pause, resume, priority, drain.
//! - `metrics`: the Prometheus text exposition.
//! - `dashboard`: server-rendered pages, embedded assets, audio files the database knows.
//! - `events`: server-sent events fed by Postgres LISTEN/NOTIFY.

mod actions;
mod auth;
mod config;
mod dashboard;
mod error;
mod events;
mod metrics;
mod page;
mod resources;
mod router;

pub use config::{ApiConfig, ConfigError, DEFAULT_ADDR};
pub use resources::overview::{Overview, read as overview};
pub use resources::workers::{GpuPoint, Worker, gpu_series_of, read as workers};
use router::router;

use sqlx::PgPool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The farm's database.
    pub pool: PgPool,
    /// The token actions need; `None` disables them.
    pub token: Option<Arc<auth::Token>>,
    /// Change notices for the live view.
    pub events: events::Events,
}

impl AppState {
    /// State over `pool`, with actions behind `token` (disabled when `None`); returns once the change listener
    /// listens (or could not connect, and keeps trying).
    pub async fn new(pool: PgPool, token: Option<auth::Token>) -> Self {
        Self { events: events::Events::start(pool.clone()).await, pool, token: token.map(Arc::new) }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("HTTP server: {0}")]
    Serve(#[from] std::io::Error),
}

/// Binds `config.addr` and serves until `shutdown`, then lets requests in flight finish. Returns the bound
/// address through `bound` (useful with port 0).
pub async fn serve(
    pool: PgPool,
    config: ApiConfig,
    shutdown: CancellationToken,
    bound: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind { addr: config.addr, source })?;
    let addr = listener.local_addr()?;
    // Listening for changes before the address is announced: a change made once the server is up reaches its
    // live views.
    let actions = config.token.is_some();
    let app = router(AppState::new(pool, config.token).await);
    tracing::info!(%addr, actions, "operator view listening");
    if let Some(bound) = bound {
        let _ = bound.send(addr);
    }
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}
