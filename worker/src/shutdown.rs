//! How a worker is asked to stop: two tokens, one per signal.

use tokio_util::sync::CancellationToken;

/// How a worker is asked to stop: `stop` (first SIGTERM) ends consuming and gives the job in progress its grace
/// period; `now` (a second signal) hands the job back at once.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop taking jobs; finish the current one within the grace period, or hand it back.
    pub stop: CancellationToken,
    /// Hand the current job back now.
    pub now: CancellationToken,
}

impl From<CancellationToken> for Shutdown {
    fn from(stop: CancellationToken) -> Self {
        Self { stop, now: CancellationToken::new() }
    }
}
