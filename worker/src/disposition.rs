//! What becomes of the work a failure interrupted: five answers. Each error type gives its own, in one
//! exhaustive match (`SceneFailure::disposition` for a scene's failures, `WorkerError::disposition` for the
//! worker's), and the job and the consume loop act on the answer alone. An isolated child process sends the
//! answer itself across its protocol, so the decision is the same whichever runner met the failure.

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
