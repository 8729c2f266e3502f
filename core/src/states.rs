//! Lifecycle states. Each enum is a Postgres enum of the same name (see migrations/), so a state can never be a
//! stray string on either side.

use serde::{Deserialize, Serialize};

/// A batch is ingesting while its recordings are decoded and cut; active while jobs remain; finished when every
/// job has reached a terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "batch_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    Ingesting,
    Active,
    Finished,
}

/// A recording is pending until decoded and cut into scenes (split) or refused with a reason (failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "media_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MediaState {
    Pending,
    Split,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "scene_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SceneState {
    Pending,
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// pending: stored, not yet confirmed by the broker; queued: confirmed; running: leased by a worker;
/// succeeded: every scene has a terminal state; dead: attempts exhausted, with the reason kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "job_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Queued,
    Running,
    Succeeded,
    Dead,
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "worker_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    Idle,
    Busy,
    Stopped,
}

macro_rules! display_as_serde {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let s = serde_json::to_value(self).ok();
                f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
            }
        }
    )*};
}
display_as_serde!(BatchState, MediaState, SceneState, JobState, WorkerState);

/// Which step of out-of-memory recovery produced a scene's output (`none`: the first run succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "recovery_step", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RecoveryStep {
    #[default]
    None,
    /// The session was dropped and recreated, then the scene ran whole.
    Recreated,
    /// The scene ran in shorter windows on a fresh session.
    Windowed,
    /// The scene ran on a CPU session.
    Cpu,
}
display_as_serde!(RecoveryStep);
