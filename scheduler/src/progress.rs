//! How far a submission has come, for a progress bar: counters the submission bumps as each recording is stored
//! or refused, which anyone holding a clone reads at any time (no lock, no channel to fill up).

use crate::report::{MediaOutcome, MediaReport};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared counters of one submission; clones share them.
#[derive(Debug, Clone, Default)]
pub struct SubmitProgress(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    total: AtomicU64,
    examined: AtomicU64,
    refused: AtomicU64,
    scenes: AtomicU64,
    audio_ms: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProgressSnapshot {
    /// Recordings this run examines (known once the inputs are walked; 0 before).
    pub total: u64,
    /// Recordings examined so far: stored, refused or found already submitted.
    pub examined: u64,
    /// Recordings refused with a reason.
    pub refused: u64,
    /// Scenes cut so far.
    pub scenes: u64,
    /// Audio of the recordings stored so far, seconds.
    pub audio_s: f64,
}

impl SubmitProgress {
    /// The counters now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let c = &self.0;
        ProgressSnapshot {
            total: c.total.load(Ordering::Relaxed),
            examined: c.examined.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            scenes: c.scenes.load(Ordering::Relaxed),
            audio_s: c.audio_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }

    pub(crate) fn set_total(&self, recordings: usize) {
        self.0.total.store(recordings as u64, Ordering::Relaxed);
    }

    pub(crate) fn record(&self, media: &MediaReport) {
        let c = &self.0;
        match &media.outcome {
            MediaOutcome::Split { scenes, duration_s, .. } => {
                c.scenes.fetch_add(*scenes as u64, Ordering::Relaxed);
                c.audio_ms.fetch_add((duration_s.max(0.0) * 1000.0) as u64, Ordering::Relaxed);
            }
            MediaOutcome::Failed(_) => {
                c.refused.fetch_add(1, Ordering::Relaxed);
            }
            MediaOutcome::Duplicate { .. } => {}
        }
        c.examined.fetch_add(1, Ordering::Relaxed);
    }
}
