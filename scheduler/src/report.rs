//! What a submission did: each recording's outcome, and the batch's totals.

use scenequeue_core::ids::BatchId;
use std::path::PathBuf;

/// What became of one recording.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaOutcome {
    /// Cut into scenes and stored.
    Split {
        /// Scenes cut.
        scenes: usize,
        /// Length, seconds.
        duration_s: f64,
        /// Something the user should know about how it was read (non-finite samples replaced).
        warning: Option<String>,
    },
    /// Refused, with the reason stored for it.
    Failed(String),
    /// Already split for this model in `batch` (which may be this one, for a file given twice).
    Duplicate {
        /// The batch that holds it.
        batch: BatchId,
    },
}

/// One recording of a submission and what became of it.
#[derive(Debug, Clone)]
pub struct MediaReport {
    /// The recording.
    pub path: PathBuf,
    /// What became of it.
    pub outcome: MediaOutcome,
}

/// What a submission stored and published.
#[derive(Debug, Clone)]
pub struct SubmitReport {
    /// The batch.
    pub batch: BatchId,
    /// Every recording examined by this run.
    pub media: Vec<MediaReport>,
    /// Scenes stored by this run.
    pub scenes: usize,
    /// Jobs stored by this run.
    pub jobs: usize,
    /// Jobs published to the broker by this run.
    pub published: usize,
    /// This run took an interrupted batch back (recordings it already held were not read again).
    pub resumed: bool,
    /// The run was stopped before every recording was stored: the batch is `interrupted`.
    pub interrupted: bool,
}
