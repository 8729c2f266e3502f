//! Shared vocabulary of scenequeue: the types and connections that the scheduler, the workers and the CLI
//! all speak. Every change of a batch's, job's, scene's or worker's state is a function here named for the
//! transition (`jobs::complete`, `scenes::mark_failed`, `batches::interrupt`...), binding the state enums of
//! [`states`] rather than writing state names in SQL.
//!
//! Queries are checked at run time, not by `sqlx::query!` at compile time: the checked macros need a live
//! database or a committed offline cache regenerated after every schema change, for a guarantee that
//! `tests/integration/states.rs` (the Rust enums against the Postgres enums) and the integration tests, which run every
//! query against the migrated schema, already give.
//!
//! # Layout
//! - [`batches`]: batch creation and activation.
//! - [`controls`]: an operator's pause, resume, priority and cancel of a batch, and drain of a worker.
//! - [`counts`]: jobs and scenes per state, kept by triggers as states change.
//! - [`dispatch`]: releasing pending jobs to the broker by priority, with a bounded number queued there.
//! - [`fence`]: the lease token every write of a worker is conditional on.
//! - [`ids`]: newtype ids over UUIDs, one per table.
//! - [`states`]: lifecycle enums, mirrored one to one by Postgres enums.
//! - [`config`]: typed service settings shared by every process.
//! - [`db`]: the connection pool, the embedded migrations and completion notifications.
//! - [`jobs`]: job leases and state transitions shared by workers and the reaper.
//! - [`media`]: a submission's planned rows (recordings, scenes, jobs) stored into its batch; recordings already
//!   split.
//! - [`scenes`]: scene state transitions (an attempt's start, a scene's failure).
//! - [`results`]: result rows: a scene's measurements, recorded with its output moved into place.
//! - [`workers`]: worker rows (registration, state).
//! - [`mq`]: RabbitMQ topology, confirmed publishing, queue depth and the job message.
//! - [`requeue`]: jobs whose message the broker lost or dead-lettered, back to pending for dispatch.
//! - [`retry`]: an operator's retry of a batch's or job's dead jobs and failed scenes.
//! - [`liveness`]: workers that stopped heartbeating, marked lost.
//! - [`outage`]: capped back-off, and database steps retried while Postgres is away.
//! - [`options`]: enhancement settings chosen per submission and stored on the batch; presets.
//! - [`panics`]: a caught panic's message, stored as a failure's cause.
//! - [`telemetry`]: structured logging set-up.
//! - [`transcripts`]: a scene's text and timed segments, and the subtitle formats.
//! - [`wer`]: word error rate, for the benchmarks and the recogniser's tests.

pub mod batches;
pub mod brokers;
pub mod config;
pub mod controls;
pub mod counts;
pub mod db;
pub mod dispatch;
pub mod fence;
pub mod ids;
pub mod jobs;
pub mod liveness;
pub mod media;
pub mod mq;
pub mod options;
pub mod outage;
pub mod panics;
pub mod primary;
pub mod requeue;
pub mod results;
pub mod retry;
pub mod scenes;
pub mod states;
pub mod telemetry;
pub mod transcripts;
pub mod wer;
pub mod workers;
