//! Shared vocabulary of scenequeue: the types and connections that the scheduler, the workers and the CLI
//! all speak.
//!
//! # Layout
//! - [`batches`]: batch creation and activation.
//! - [`dispatch`]: releasing pending jobs to the broker by priority, with a bounded number queued there.
//! - [`ids`]: newtype ids over UUIDs, one per table.
//! - [`states`]: lifecycle enums, mirrored one to one by Postgres enums.
//! - [`config`]: typed service settings shared by every process.
//! - [`db`]: the connection pool, the embedded migrations and completion notifications.
//! - [`jobs`]: job leases and state transitions shared by workers and the reaper.
//! - [`scenes`]: scene state transitions and result rows.
//! - [`workers`]: worker rows (registration, state).
//! - [`mq`]: RabbitMQ topology, confirmed publishing and the job message.
//! - [`options`]: enhancement settings chosen per submission and stored on the batch; presets.
//! - [`telemetry`]: structured logging set-up.

pub mod batches;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod ids;
pub mod jobs;
pub mod mq;
pub mod options;
pub mod scenes;
pub mod states;
pub mod telemetry;
pub mod workers;
