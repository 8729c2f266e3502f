//! The scheduler side of scenequeue: turning recordings into published jobs, and keeping jobs moving.
//!
//! # Layout
//! - [`export`]: a batch's scene list (JSON) for downstream transcription.
//! - [`ingest`]: find the recordings of a submission, decode (and hash, in the same read) and cut them.
//! - [`packing`]: group scenes into jobs by a duration budget (pure).
//! - [`submit`]: persist a batch (media, scenes, jobs) and publish its jobs.
//! - [`reaper`]: requeue jobs whose worker vanished, bury those out of attempts, finish batches.
//! - [`status`]: counts per state for the CLI.

pub mod export;
pub mod ingest;
pub mod packing;
pub mod reaper;
pub mod status;
pub mod submit;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Mq(#[from] scenequeue_core::mq::MqError),
    #[error(transparent)]
    Dispatch(#[from] scenequeue_core::dispatch::DispatchError),
    #[error("{path}: {reason}")]
    Input { path: std::path::PathBuf, reason: String },
    #[error("nothing to submit: {0}")]
    NothingToSubmit(String),
    #[error("model name {0:?} is not valid: use letters, digits, '-' and '_'")]
    BadModelName(String),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}
