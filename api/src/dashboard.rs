//! The dashboard (placeholder until the pages land).

use crate::AppState;
use axum::Router;

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
