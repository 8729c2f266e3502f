//! Why a scene produced no output, and the one place each such failure is given its disposition.

use crate::asr::AsrError;
use crate::disposition::Disposition;
use crate::model::{InferenceError, ModelError};
use crate::sessions::EnhanceError;
use scenequeue_audio::AudioError;
use std::path::PathBuf;

/// What went wrong with the scene itself.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// Its span could not be read or resampled, or its output could not be written.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The model refused or failed on its audio.
    #[error("inference failed: {0}")]
    Inference(#[from] InferenceError),
    /// The enhanced output failed its checks and the setting says to fail the scene.
    #[error("{path}: {reason}")]
    BadOutput {
        /// The recording.
        path: PathBuf,
        /// What the checks found.
        reason: String,
    },
    /// The decoder panicked on the recording.
    #[error("{path}: the decoder crashed on this file: {message}")]
    DecoderCrashed {
        /// The recording.
        path: PathBuf,
        /// The panic's message.
        message: String,
    },
}

/// Why a scene produced no output. What becomes of it is decided in one place: [`SceneFailure::disposition`].
#[derive(Debug, thiserror::Error)]
pub enum SceneFailure {
    /// The model could not be loaded or its session created: a problem of this worker, not of the scene.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The scene itself failed (unreadable span, inference error, bad output), or its output could not be written.
    #[error(transparent)]
    Scene(#[from] SceneError),
    /// The scene panicked in decoding, DSP or inference; the panic was caught at the scene boundary.
    #[error("{path}: processing crashed (panic: {message})")]
    Panicked {
        /// The recording.
        path: PathBuf,
        /// The panic's message.
        message: String,
    },
    /// The scene made no progress within its bound (the watchdog); its session or child was abandoned.
    #[error("{path}: no progress for {seconds:.0} s (the scene hung); abandoned")]
    Hung {
        /// The recording.
        path: PathBuf,
        /// The bound that passed, seconds.
        seconds: f64,
    },
    /// Not run: an earlier scene of the same recording hung in this job, and this one would hang as well.
    #[error("{path}: not tried, as an earlier scene of this recording hung")]
    NotTried {
        /// The recording.
        path: PathBuf,
    },
    /// A group of scenes hung or panicked together, so the culprit is unknown: the job is retried, and runs
    /// scene by scene once this has happened twice.
    #[error("{reason}")]
    Stuck {
        /// What happened.
        reason: String,
    },
    /// Reported by an isolated inference process, with the disposition it decided.
    #[error("{message}")]
    Isolated {
        /// The child's message.
        message: String,
        /// What the child decided becomes of it.
        disposition: Disposition,
    },
    /// The recogniser could not be loaded or failed on the scene's audio.
    #[error("transcription: {0}")]
    Transcription(AsrError),
    /// The inference side returned no outcome for the scene (a bug; the job is retried).
    #[error("no outcome was returned for the scene")]
    NoResult,
}

impl From<EnhanceError> for SceneFailure {
    fn from(e: EnhanceError) -> Self {
        match e {
            EnhanceError::Model(e) => Self::Model(e),
            EnhanceError::Inference(e) => Self::Scene(SceneError::Inference(e)),
        }
    }
}

impl From<AudioError> for SceneFailure {
    fn from(e: AudioError) -> Self {
        Self::Scene(SceneError::Audio(e))
    }
}

impl SceneFailure {
    /// The one place a scene's failure is given its disposition.
    pub fn disposition(&self) -> Disposition {
        match self {
            // A model that cannot be loaded or a session that cannot be created: this worker's fault.
            Self::Model(_) => Disposition::Unhealthy,
            Self::Scene(e) => match e {
                // Writing the output failed: a missing mount, a read-only directory, a full disk.
                SceneError::Audio(AudioError::Write { .. }) => Disposition::Unhealthy,
                SceneError::Audio(
                    AudioError::Unreadable { .. }
                    | AudioError::Unsupported { .. }
                    | AudioError::Empty { .. }
                    | AudioError::SpanOutOfRange { .. }
                    | AudioError::Resample { .. },
                )
                | SceneError::Inference(_)
                | SceneError::BadOutput { .. }
                | SceneError::DecoderCrashed { .. } => Disposition::FailScene,
            },
            Self::Panicked { .. } | Self::Hung { .. } | Self::NotTried { .. } => Disposition::FailScene,
            Self::Isolated { disposition, .. } => *disposition,
            Self::Transcription(e) => match e {
                // A recognition model that is not there or cannot be loaded: this worker's fault.
                AsrError::Unknown { .. }
                | AsrError::Missing(_)
                | AsrError::Read { .. }
                | AsrError::Invalid { .. }
                | AsrError::Load { .. }
                | AsrError::Language(_) => Disposition::Unhealthy,
                // The device ran out of memory: the job again, on fresh sessions.
                AsrError::Ort(_) if e.is_out_of_memory() => Disposition::RetryJob,
                AsrError::Ort(_) | AsrError::Output(_) | AsrError::Shape(_) => Disposition::FailScene,
            },
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
