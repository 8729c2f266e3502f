//! The scheduler side of scenequeue: turning recordings into published jobs, and keeping jobs moving.
//!
//! The public surface is what a binary needs ([`submit`], [`reap`], [`status`], [`scene_list`] and their types);
//! [`testing`] exposes the pure planning steps to the integration tests and the benchmarks.
//!
//! # Layout
//! - `export`: a batch's scene list (JSON) for downstream transcription.
//! - `ingest`: find the recordings of a submission, decode them and cut them into scenes.
//! - [`manifest`]: JSON Lines and CSV manifests of the enhanced scenes, for transcription tools.
//! - `packing`: group scenes into jobs by a duration budget (pure).
//! - `submit`: persist a batch (media, scenes, jobs) and publish its jobs.
//! - `reaper`: requeue jobs whose worker vanished, bury those out of attempts, finish batches.
//! - `status`: counts per state for the CLI.

mod export;
mod ingest;
pub mod manifest;
mod packing;
mod reaper;
mod status;
mod submit;

pub use export::{RecordingEntry, SceneEntry, SceneList, scene_list};
pub use packing::PackMode;
pub use reaper::{ReapReport, reap};
pub use status::{FlaggedScene, MemorySummary, StateCounts, WorkerRow, status};
pub use submit::{Detector, MediaOutcome, MediaReport, SubmitReport, SubmitRequest, submit, submit_until};

/// Planning steps below `submit`, for the integration tests and the benchmarks.
pub mod testing {
    pub use crate::ingest::{CutRecording, cut};
    pub use crate::packing::{PackedJob, pack};
    pub use crate::submit::store_cut_batch;
}

/// Why a submission or a reaper pass failed.
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
    #[error("enhancement options: {0}")]
    BadOptions(String),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("cannot resume: {0}")]
    Resume(String),
}
