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

/// Recordings a report lists one by one; past them it only counts, so a submission's memory stays flat however
/// many recordings it holds (`scenequeue status` lists every refused one from the database).
pub const LISTED: usize = 1_000;

/// Recordings of a submission by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingCounts {
    /// Cut into scenes and stored.
    pub split: usize,
    /// Refused, with the reason stored.
    pub failed: usize,
    /// Already split for the model.
    pub duplicate: usize,
}

impl RecordingCounts {
    /// Every recording counted.
    pub fn total(&self) -> usize {
        self.split + self.failed + self.duplicate
    }
}

/// What a submission stored and published.
#[derive(Debug, Clone)]
pub struct SubmitReport {
    /// The batch.
    pub batch: BatchId,
    /// The first [`LISTED`] recordings examined by this run, each with its outcome.
    pub media: Vec<MediaReport>,
    /// Every recording examined by this run, counted by outcome.
    pub recordings: RecordingCounts,
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

impl SubmitReport {
    /// An empty report of `batch`.
    pub(crate) fn new(batch: BatchId) -> Self {
        Self {
            batch,
            media: Vec::new(),
            recordings: RecordingCounts::default(),
            scenes: 0,
            jobs: 0,
            published: 0,
            resumed: false,
            interrupted: false,
        }
    }

    /// Counts one recording's outcome, and lists it while fewer than [`LISTED`] are.
    pub(crate) fn add(&mut self, media: MediaReport) {
        match media.outcome {
            MediaOutcome::Split { .. } => self.recordings.split += 1,
            MediaOutcome::Failed(_) => self.recordings.failed += 1,
            MediaOutcome::Duplicate { .. } => self.recordings.duplicate += 1,
        }
        if self.media.len() < LISTED {
            self.media.push(media);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_counts_every_recording_and_lists_a_bounded_number() {
        let mut report = SubmitReport::new(BatchId::new());
        for i in 0..LISTED + 10 {
            let outcome = match i % 3 {
                0 => MediaOutcome::Split { scenes: 2, duration_s: 5.0, warning: None },
                1 => MediaOutcome::Failed("corrupt".into()),
                _ => MediaOutcome::Duplicate { batch: report.batch },
            };
            report.add(MediaReport { path: format!("r{i}.wav").into(), outcome });
        }
        assert_eq!(report.media.len(), LISTED);
        assert_eq!(report.recordings, RecordingCounts { split: 337, failed: 337, duplicate: 336 });
        assert_eq!(report.recordings.total(), LISTED + 10);
    }
}
