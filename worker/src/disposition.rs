//! One disposition per failure, decided here and nowhere else. Every way a scene or a job can fail maps to one
//! of five answers, and the consume loop acts on the answer alone. An isolated child process sends the answer
//! itself across its protocol, so the decision is the same whichever runner met the failure.

use crate::scene::{SceneError, SceneFailure};
use scenequeue_audio::AudioError;
use serde::{Deserialize, Serialize};

/// What becomes of the work a failure interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disposition {
    /// The scene's own input or output is at fault (unreadable span, decoder crash, bad output, a scene that
    /// hangs or kills its runner): it fails with its cause and the rest of the job goes on.
    FailScene,
    /// Another attempt may succeed: the job is released and retried after an exponential back-off with jitter,
    /// spending one of its bounded attempts.
    RetryJob,
    /// A service went away (Postgres, RabbitMQ): reconnect with capped back-off; the lease runs out or is
    /// handed back, and the job is taken over.
    Reconnect,
    /// This worker's environment is at fault (model missing, session creation failing, output directory not
    /// writable, disk full): the job is handed back without spending an attempt and the worker takes no jobs
    /// until its periodic self-check passes.
    Unhealthy,
    /// Nothing this process can do helps (its settings are unusable): it stops with the reason.
    Fatal,
}

impl SceneFailure {
    /// The one place a scene's failure is given its disposition.
    pub fn disposition(&self) -> Disposition {
        match self {
            // A model that cannot be loaded or a session that cannot be created: this worker's fault.
            Self::Model(_) => Disposition::Unhealthy,
            // Writing the output failed: a missing mount, a read-only directory, a full disk.
            Self::Scene(SceneError::Audio(AudioError::Write { .. })) => Disposition::Unhealthy,
            Self::Scene(_) | Self::Panicked { .. } | Self::Hung { .. } | Self::NotTried { .. } => {
                Disposition::FailScene
            }
            Self::Isolated { disposition, .. } => *disposition,
            Self::Stuck { .. } | Self::NoResult => Disposition::RetryJob,
        }
    }

    /// Whether the failure stops the rest of a group (every disposition but failing the scene alone).
    pub fn ends_job(&self) -> bool {
        self.disposition() != Disposition::FailScene
    }

    /// Whether the failure counts as a crash of the job (a group of scenes hung or panicked together): a job
    /// with two crashes runs scene by scene, each in a child process, so the culprit is failed alone.
    pub fn is_crash(&self) -> bool {
        matches!(self, Self::Stuck { .. })
    }
}
