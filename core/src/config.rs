//! Service settings every process shares. The CLI parses them once from flags and the environment
//! (see the README's configuration table); libraries and tests receive them typed.

/// Where Postgres and RabbitMQ live and which queue carries this farm's jobs.
#[derive(Debug, Clone)]
pub struct Services {
    pub database_url: String,
    pub amqp_url: String,
    /// Base name of the job queue; the dead-letter exchange and queue are derived from it.
    pub queue: String,
    /// Jobs the broker may hold queued (see `dispatch`).
    pub max_queued: i64,
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://scenequeue:scenequeue@127.0.0.1:5432/scenequeue";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_QUEUE: &str = "scenequeue.jobs";
