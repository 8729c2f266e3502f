//! The dashboard: server-rendered pages with a little plain JavaScript, every asset embedded in the binary, so it
//! works offline (no CDN, no build step). Pages render the figures at request time and `assets/live.js` keeps
//! them current from the server-sent events; the user can pause that.
//!
//! - [`overview`]: `/`, the farm: progress, throughput, ETA, jobs and scenes by state, batches, failures, workers.
//! - [`batch`]: `/batches/{id}`, one batch and its scenes.
//! - [`scene`]: `/scenes/{id}`, the original and enhanced audio side by side with spectrograms.
//! - [`files`]: the audio those pages play, only files the database knows.

mod batch;
mod files;
mod html;
mod overview;
mod scene;

use crate::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/batches/{id}", get(batch::page))
        .route("/scenes/{id}", get(scene::page))
        .route("/files/scenes/{id}/{which}", get(files::scene_audio))
        .route("/assets/{name}", get(asset))
}

/// The embedded assets, by name.
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../assets/style.css")),
    ("live.js", "text/javascript; charset=utf-8", include_str!("../../assets/live.js")),
    ("scene.js", "text/javascript; charset=utf-8", include_str!("../../assets/scene.js")),
];

async fn asset(Path(name): Path<String>) -> axum::response::Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => ([(CONTENT_TYPE, *kind), (CACHE_CONTROL, "max-age=300")], *body).into_response(),
        None => crate::error::ApiError::NotFound(format!("asset {name}")).into_response(),
    }
}
