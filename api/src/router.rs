//! Every route in one table: reads are open, actions take the token (see `auth::Operator`).

use crate::resources::{batches, errors, jobs, overview, recordings, scenes, workers};
use crate::{AppState, actions, dashboard, events, metrics};
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::routing::{get, post};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

/// Longest a request may take (server-sent events excepted: they are routed outside this limit).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most requests served at once.
const CONCURRENCY: usize = 256;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/overview", get(overview::get))
        .route("/api/v1/batches", get(batches::list))
        .route("/api/v1/batches/{id}", get(batches::get))
        .route("/api/v1/recordings", get(recordings::list))
        .route("/api/v1/jobs", get(jobs::list))
        .route("/api/v1/jobs/{id}", get(jobs::get))
        .route("/api/v1/scenes", get(scenes::list))
        .route("/api/v1/scenes/{id}", get(scenes::get))
        .route("/api/v1/workers", get(workers::list))
        .route("/api/v1/workers/{id}/gpu", get(workers::gpu))
        .route("/api/v1/errors", get(errors::list))
        .route("/api/v1/batches/{id}/retry", post(actions::retry_batch))
        .route("/api/v1/batches/{id}/cancel", post(actions::cancel))
        .route("/api/v1/batches/{id}/pause", post(actions::pause))
        .route("/api/v1/batches/{id}/resume", post(actions::resume))
        .route("/api/v1/batches/{id}/priority", post(actions::priority))
        .route("/api/v1/jobs/{id}/retry", post(actions::retry_job))
        .route("/api/v1/scenes/{id}/retry", post(actions::retry_scene))
        .route("/api/v1/workers/{id}/drain", post(actions::drain))
        .route("/metrics", get(metrics::get))
        .merge(dashboard::routes())
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    (StatusCode::SERVICE_UNAVAILABLE, "the server is busy or the request took too long")
                }))
                .timeout(REQUEST_TIMEOUT)
                .concurrency_limit(CONCURRENCY),
        );
    Router::new()
        .route("/api/v1/events", get(events::stream))
        .merge(api)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::NotFound("this path".into())
}
