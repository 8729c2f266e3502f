//! Service settings every process shares. The CLI parses them once from flags and the environment
//! (see the README's configuration table); libraries and tests receive them typed.

/// Where Postgres and RabbitMQ live and which queue carries this farm's jobs.
#[derive(Debug, Clone)]
pub struct Services {
    /// Postgres connection URL.
    pub database_url: String,
    /// RabbitMQ connection URL.
    pub amqp_url: String,
    /// Base name of the job queue; the dead-letter exchange and queue are derived from it.
    pub queue: String,
    /// Jobs the broker may hold queued (see `dispatch`).
    pub max_queued: i64,
    /// Unacknowledged jobs each worker holds from the broker. A farm-wide setting: the workers consume with it,
    /// and the scheduler counts on it when it reconciles the queue with Postgres (jobs held by consumers are not
    /// in the queue's count).
    pub prefetch: u16,
}

/// Postgres of a local installation (README, set-up).
pub(crate) const DEFAULT_DATABASE_URL: &str = "postgres://scenequeue:scenequeue@127.0.0.1:5432/scenequeue";
/// RabbitMQ of a local installation.
pub(crate) const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The job queue of a farm that names none.
pub(crate) const DEFAULT_QUEUE: &str = "scenequeue.jobs";

impl Default for Services {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            amqp_url: DEFAULT_AMQP_URL.into(),
            queue: DEFAULT_QUEUE.into(),
            max_queued: crate::dispatch::DEFAULT_MAX_QUEUED,
            prefetch: crate::mq::DEFAULT_PREFETCH,
        }
    }
}

/// The one rule for model names, shared by submissions and workers: 1 to 64 ASCII letters, digits, `-`, `_` and
/// `.` (as in `whisper-tiny.en`), not starting with `.`. A name is a directory under the model directory, so it
/// must never hold a path separator or `..`.
pub fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && !name.contains("..")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::valid_model_name;

    #[test]
    fn model_names_are_plain_directory_names() {
        assert!(valid_model_name("deepfilternet3"));
        assert!(valid_model_name("nsnet2-48k_v2"));
        assert!(valid_model_name("whisper-tiny.en"));
        for bad in ["", "../etc", "a/b", "a b", "ü", ".", "..", ".hidden", "a..b", &"x".repeat(65)] {
            assert!(!valid_model_name(bad), "{bad:?}");
        }
    }
}
