//! The scheduler side of scenequeue: turning recordings into published jobs, and keeping jobs moving.
//!
//! The public surface is what a binary needs ([`submit`], [`reap`], [`retry`], [`status`], [`scene_list`] and
//! their types);
//! [`testing`] exposes the pure planning steps to the integration tests and the benchmarks.
//!
//! # Layout
//! - `dead_letters`: the dead-letter queue drained (jobs published again, or buried once out of attempts).
//! - `export`: a batch's scene list (JSON) for downstream transcription.
//! - `ingest`: find the recordings of a submission, decode (and hash, in the same read) and cut them.
//! - [`manifest`]: JSON Lines and CSV manifests of the enhanced scenes, for transcription tools.
//! - `packing`: group scenes into jobs by a duration budget (pure).
//! - `submit`: a submission's request and flow: open (or resume) its batch, store it chunk by chunk, publish.
//! - `examine`: one recording hashed, and decoded and cut unless it is a duplicate.
//! - `writer`: examined recordings planned into rows and stored a chunk at a time.
//! - `steps`: a submission's database steps, tried again while Postgres is away.
//! - `report`: what became of each recording of a submission.
//! - `progress`: counters a progress bar reads while a submission runs.
//! - `reaper`: requeue jobs whose worker vanished, bury those out of attempts, mark lost workers, drain dead
//!   letters, republish messages the broker lost.
//! - `reconcile`: queued jobs against the messages the broker holds.
//! - `retry`: an operator's retry of dead jobs and failed scenes.
//! - `status`: counts per state for the CLI.
//! - [`transcripts`]: a batch's transcripts read back per recording, for subtitles and ASR manifests.

mod dead_letters;
mod examine;
mod export;
mod ingest;
pub mod manifest;
mod packing;
mod progress;
mod reaper;
mod reconcile;
mod report;
mod retry;
mod status;
mod steps;
mod submit;
pub mod transcripts;
mod writer;

pub use export::{RecordingEntry, SceneEntry, SceneList, scene_list};
pub use packing::PackMode;
pub use progress::{ProgressSnapshot, SubmitProgress};
pub use reaper::{DEFAULT_REAP_INTERVAL, ReapReport, ReapSettings, reap, reap_with};
pub use report::{LISTED, MediaOutcome, MediaReport, RecordingCounts, SubmitReport};
pub use retry::{RetryReport, retry};
pub use status::{FlaggedScene, MemorySummary, StateCounts, WorkerRow, status};
pub use submit::{Detector, SubmitRequest, submit, submit_until, submit_without_broker};

/// Planning steps below `submit`, for the integration tests and the benchmarks.
pub mod testing {
    pub use crate::ingest::{CutRecording, Entry, collect_inputs, content_hash, cut, cut_and_hash};
    pub use crate::packing::{PackedJob, Packer, pack};
    pub use crate::submit::store_cut_batch;
}

/// Why a submission or a reaper pass failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A Postgres query failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A broker operation failed (such as reading the dead-letter queue).
    #[error(transparent)]
    Mq(#[from] scenequeue_core::mq::MqError),
    /// Publishing pending jobs to the broker failed.
    #[error(transparent)]
    Dispatch(#[from] scenequeue_core::dispatch::DispatchError),
    /// A submitted path, or the output directory, could not be read or created.
    #[error("{path}: {reason}")]
    Input {
        /// The path at fault.
        path: std::path::PathBuf,
        /// What went wrong with it.
        reason: String,
    },
    /// The submitted paths held no recordings; the string says why.
    #[error("nothing to submit: {0}")]
    NothingToSubmit(String),
    /// The model name holds characters other than letters, digits, '-' and '_'; the string is the name.
    #[error("model name {0:?} is not valid: use letters, digits, '-' and '_'")]
    BadModelName(String),
    /// An enhancement option is out of range; the string names it.
    #[error("enhancement options: {0}")]
    BadOptions(String),
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A submission could not resume its batch: no such batch, other recordings or settings, or not interrupted.
    #[error("cannot resume: {0}")]
    Resume(String),
    /// A retry was refused (unknown id, batch still ingesting) or failed.
    #[error(transparent)]
    Retry(#[from] scenequeue_core::retry::RetryError),
    /// Postgres stayed away longer than the submission's patience; what was stored before stays in the batch.
    #[error(
        "batch {batch} is interrupted: {source}. What was stored so far is kept; once Postgres is back, run the same \
         command again (or add --resume {batch}) to complete it"
    )]
    DatabaseLost {
        /// The batch being stored.
        batch: scenequeue_core::ids::BatchId,
        /// How long Postgres was waited for, and its last error.
        source: scenequeue_core::outage::StepError,
    },
    /// Postgres stayed away longer than the submission's patience before its batch was opened: nothing was stored.
    #[error("nothing was stored: {0}. Once Postgres is back, run the same command again")]
    DatabaseAway(scenequeue_core::outage::StepError),
    /// Another run of the same submission took the batch over while this one stalled (over a minute without a
    /// heartbeat); this run stored nothing more, so nothing is stored twice.
    #[error("batch {0} was taken over by another run of the same submission while this one stalled; this run stopped")]
    TakenOver(scenequeue_core::ids::BatchId),
}
