//! Lifecycle states. Each enum is a Postgres enum of the same name (see migrations/), so a state can never be a
//! stray string on either side.

use serde::{Deserialize, Serialize};

/// A batch is ingesting while its recordings are decoded and cut; active while jobs remain; finished when every
/// job has reached a terminal state; interrupted when its submitter stopped before storing every recording
/// (submitting the same command again resumes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "batch_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    /// Its recordings are being decoded and cut.
    Ingesting,
    /// Every recording is stored; jobs remain.
    Active,
    /// Every job reached a terminal state.
    Finished,
    /// Its submitter stopped before storing every recording.
    Interrupted,
}

/// A recording's row is written once it was decoded and cut into scenes (split) or refused with a reason
/// (failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "media_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MediaState {
    /// Decoded and cut into scenes.
    Split,
    /// Refused, with the reason kept.
    Failed,
}

/// A scene is pending until a worker hands it to the model (its job's state says whether the job waits in
/// Postgres or in the broker), running while the model has it, then ends succeeded (its enhanced audio and result
/// stored) or failed (with the reason kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "scene_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SceneState {
    /// Waiting for a worker (its job pending or queued).
    Pending,
    /// Handed to the model by a worker.
    Running,
    /// Enhanced, with its output and result stored.
    Succeeded,
    /// Could not be enhanced; the reason is kept and the rest of its job goes on.
    Failed,
}

/// pending: stored, not yet confirmed by the broker; queued: confirmed; running: leased by a worker;
/// succeeded: every scene has a terminal state; dead: attempts exhausted, with the reason kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "job_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Stored, not yet confirmed by the broker; waits in Postgres for dispatch.
    Pending,
    /// Its message is confirmed by the broker.
    Queued,
    /// Leased by a worker.
    Running,
    /// Every scene has a terminal state.
    Succeeded,
    /// Out of attempts (or dead-lettered by the broker), with the reason kept.
    Dead,
}

impl JobState {
    /// Whether the job is finished for good (succeeded or dead) and will never run again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead)
    }
}

/// What a worker is doing, as it last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "worker_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Running and waiting for a job.
    Idle,
    /// Processing a job.
    Busy,
    /// Shut down; it takes no more jobs.
    Stopped,
    /// Its own environment failed (model, device, output directory): it takes no jobs until its self-check
    /// passes.
    Unhealthy,
    /// It stopped heartbeating without shutting down (killed, hung, or cut off from the database).
    Lost,
}

/// Which step of out-of-memory recovery produced a scene's output (`none`: the first run succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "recovery_step", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RecoveryStep {
    /// No recovery was needed: the first run succeeded.
    #[default]
    None,
    /// The session was dropped and recreated, then the scene ran whole.
    Recreated,
    /// The scene ran in shorter windows on a fresh session.
    Windowed,
    /// The scene ran on a CPU session.
    Cpu,
}

/// Each state's name, as Postgres spells it: `as_str` is a plain match, and `Display` prints it.
macro_rules! state_names {
    ($($t:ty { $($variant:ident => $name:literal),* $(,)? })*) => {$(
        impl $t {
            /// Every state, in the order of the Postgres enum.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The state's name, as Postgres spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),*
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

state_names! {
    BatchState { Ingesting => "ingesting", Active => "active", Finished => "finished", Interrupted => "interrupted" }
    MediaState { Split => "split", Failed => "failed" }
    SceneState { Pending => "pending", Running => "running", Succeeded => "succeeded", Failed => "failed" }
    JobState { Pending => "pending", Queued => "queued", Running => "running", Succeeded => "succeeded", Dead => "dead" }
    WorkerState { Idle => "idle", Busy => "busy", Stopped => "stopped", Unhealthy => "unhealthy", Lost => "lost" }
    RecoveryStep { None => "none", Recreated => "recreated", Windowed => "windowed", Cpu => "cpu" }
}

/// What the checks on an enhanced scene found (see `audio::check`), stored with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "output_flag", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OutputFlag {
    /// The model's output held NaN or infinite samples (replaced by silence, unless the original was kept).
    NonFinite,
    /// The output was silent although the input held speech.
    Silent,
    /// The output's speech-band level collapsed far below the input's: the model removed the speech.
    SpeechCollapsed,
    /// The original audio was written in place of the failed output.
    Original,
}

state_names! {
    OutputFlag { NonFinite => "non_finite", Silent => "silent", SpeechCollapsed => "speech_collapsed", Original => "original" }
}
