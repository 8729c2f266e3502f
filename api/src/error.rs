//! One error type at the HTTP edge: each variant maps to a status code and a consistent JSON body
//! `{"error": {"code": "...", "message": "..."}}`. Database text never reaches a client; it is logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Nothing has this id; the string names what was looked for.
    #[error("{0} not found")]
    NotFound(String),
    /// A parameter or body is not valid; the string says which and why.
    #[error("{0}")]
    BadRequest(String),
    /// An action without the API token, or with a wrong one.
    #[error("this action needs the API token (Authorization: Bearer <token>)")]
    Unauthorized,
    /// Actions are disabled: no API token is configured on this server.
    #[error("actions are disabled: no API token is configured (SCENEQUEUE_API_TOKEN or SCENEQUEUE_API_TOKEN_FILE)")]
    ActionsDisabled,
    /// The request conflicts with the state of what it names; the string says how.
    #[error("{0}")]
    Conflict(String),
    /// A query failed; the cause is logged, not sent.
    #[error("database unavailable")]
    Db(#[from] sqlx::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::ActionsDisabled => (StatusCode::FORBIDDEN, "actions_disabled"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Db(_) => (StatusCode::SERVICE_UNAVAILABLE, "database"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Db(e) = &self {
            tracing::warn!(error = %e, "API request failed in the database");
        }
        let (status, code) = self.status_and_code();
        let mut response =
            (status, Json(json!({ "error": { "code": code, "message": self.to_string() } }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What every handler returns.
pub type ApiResult<T> = Result<T, ApiError>;
