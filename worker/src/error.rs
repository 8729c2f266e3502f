//! Why a worker met an error outside a scene's own failures, and what becomes of the work it interrupted.
//! [`WorkerError::disposition`] is the one decision, made by an exhaustive match on the error (no arm for "any
//! other"): a new variant cannot compile until someone decides its fate. Whether a database error is an outage
//! is `core::outage::transient`'s rule, the same one every process follows.

use crate::disposition::Disposition;
use crate::failure::SceneFailure;
use crate::runtime::RuntimeError;
use scenequeue_core::db::DbError;
use scenequeue_core::mq::MqError;
use scenequeue_core::outage::transient;
use scenequeue_core::results::RecordError;

/// Why a worker stopped with an error, or a job could not go on.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Postgres could not be reached or migrated at start-up.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A query failed: an outage is waited out, anything else (the schema or the code is wrong) stops the
    /// worker, loudly, rather than being retried forever.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// Results could not be recorded: the database failed, or the output disk did.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// RabbitMQ refused the topology or a channel operation.
    #[error(transparent)]
    Mq(#[from] MqError),
    /// ONNX Runtime could not be loaded or configured.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The model given at start-up could not be loaded.
    #[error("model check at start-up failed: {0}")]
    Startup(SceneFailure),
    /// A failure that nothing this worker does can fix (its disposition is fatal), or an inference side that
    /// cannot go on (too many hung threads): the worker stops so that its supervisor starts it afresh.
    #[error("{0}")]
    Fatal(String),
    /// The broker stayed unreachable for every reconnection attempt the settings allow.
    #[error("giving up after {attempts} failed connections to the broker; last error: {last}")]
    GaveUp {
        /// Connections tried in a row.
        attempts: u32,
        /// The last connection error.
        last: String,
    },
}

impl From<lapin::Error> for WorkerError {
    fn from(e: lapin::Error) -> Self {
        Self::Mq(MqError::Protocol(e))
    }
}

impl WorkerError {
    /// What becomes of the work this error interrupted: a service that is away is waited out (`Reconnect`); a
    /// disk that fails the worker's output makes it `Unhealthy` until its self-check passes; what no wait fixes
    /// stops the worker (`Fatal`).
    pub fn disposition(&self) -> Disposition {
        let outage = |away: bool| if away { Disposition::Reconnect } else { Disposition::Fatal };
        match self {
            Self::Db(e) => outage(e.is_outage()),
            Self::Sql(e) | Self::Record(RecordError::Db(e)) => outage(transient(e)),
            Self::Record(RecordError::Move { .. }) => Disposition::Unhealthy,
            Self::Mq(e) => outage(e.is_outage()),
            Self::Runtime(_) | Self::Startup(_) | Self::Fatal(_) | Self::GaveUp { .. } => Disposition::Fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn an_outage_is_waited_out_and_a_wrong_query_stops_the_worker() {
        assert_eq!(WorkerError::Sql(sqlx::Error::PoolTimedOut).disposition(), Disposition::Reconnect);
        assert_eq!(
            WorkerError::Sql(sqlx::Error::Io(ErrorKind::ConnectionReset.into())).disposition(),
            Disposition::Reconnect
        );
        assert_eq!(WorkerError::Sql(sqlx::Error::RowNotFound).disposition(), Disposition::Fatal);
        let source = sqlx::Error::Io(ErrorKind::ConnectionRefused.into());
        let refused = DbError::Connect { url: "postgres://db".into(), source };
        assert_eq!(WorkerError::Db(refused).disposition(), Disposition::Reconnect);
        assert_eq!(WorkerError::Fatal("settings".into()).disposition(), Disposition::Fatal);
    }

    #[test]
    fn a_file_that_cannot_be_moved_into_place_is_the_disk_not_the_database() {
        let moved = RecordError::Move { from: "scene.x.wav".into(), source: ErrorKind::ReadOnlyFilesystem.into() };
        assert_eq!(WorkerError::Record(moved).disposition(), Disposition::Unhealthy);
        let lost = RecordError::Db(sqlx::Error::Io(ErrorKind::BrokenPipe.into()));
        assert_eq!(WorkerError::Record(lost).disposition(), Disposition::Reconnect);
    }
}
