//! Postgres: the pool, the embedded migrations, and the notification that tells waiters a job or batch moved.

use crate::ids::BatchId;
use crate::outage::{Patience, transient, when_up};
use crate::states::BatchState;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every migration under `migrations/`, embedded at build time and applied at start-up.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Channel on which a `NOTIFY` is sent with the batch id whenever one of its jobs reaches a terminal state.
pub const JOB_EVENTS_CHANNEL: &str = "scenequeue_job_events";

/// Why connecting to Postgres, migrating, or waiting on a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The pool could not open a connection to the database.
    #[error("cannot connect to Postgres at {url}: {source}")]
    Connect {
        /// The database URL, with its password hidden.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A pending migration could not be applied at start-up.
    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query or listener operation failed.
    #[error(transparent)]
    Query(#[from] sqlx::Error),
    /// The batch was not finished when the wait's time-out (the `Duration`) ran out.
    #[error("batch {0} did not finish within {1:?}")]
    WaitTimeout(BatchId, Duration),
}

impl DbError {
    /// Whether waiting may fix it: Postgres away, starting or saturated (`outage::transient`), also when a
    /// migration met that, rather than a refusal (authentication, a missing database) or a migration that fails.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Connect { source, .. } | Self::Query(source) => transient(source),
            Self::Migrate(
                sqlx::migrate::MigrateError::Execute(e) | sqlx::migrate::MigrateError::ExecuteMigration(e, _),
            ) => transient(e),
            Self::Migrate(_) | Self::WaitTimeout(..) => false,
        }
    }
}

/// [`connect`] once Postgres answers: an outage ([`DbError::is_outage`]) is waited out with capped back-off,
/// each try logged with its reason, for as long as `patience` allows (then its last error). What waiting cannot
/// fix is returned at once. None: `stop` fired first.
pub async fn connect_when_up(
    url: &str,
    max_connections: u32,
    patience: &Patience,
    stop: &CancellationToken,
) -> Result<Option<PgPool>, DbError> {
    // One connection first: it fails with the driver's reason (refused, too many clients, starting up), where a
    // pool only says that it timed out.
    when_up("Postgres", patience, stop, DbError::is_outage, || async {
        // A list of hosts is searched host by host, each failure with its reason, when the pool is made.
        if crate::primary::hosts(url).len() == 1 {
            probe(url).await?;
        }
        connect(url, max_connections).await
    })
    .await
}

/// Longest a process takes to open all its connections before it lets go of them and tries again later.
const ADMISSION: Duration = Duration::from_secs(2);

/// Opens a bounded pool holding all its connections, and applies pending migrations. With none pending the
/// migrator is not run at all, so a role with data rights only (no right to create in the schema;
/// docs/DEPLOYING.md) connects once the schema's owner has run `scenequeue migrate`.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let refused = |source| DbError::Connect { url: redact(url), source };
    let options = PgPoolOptions::new()
        .max_connections(max_connections)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10));
    let hosts = crate::primary::hosts(url);
    let pool = if hosts.len() > 1 {
        // Several hosts: the pool connects to the one that takes writes, and follows it (`primary`).
        let (follower, current, conn) = crate::primary::Follower::new(&hosts).await.map_err(refused)?;
        let stale = Arc::clone(&follower);
        let pool = options
            .before_acquire(move |_, meta| {
                let keep = !stale.is_stale(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .connect_lazy_with(follower.options(current));
        tokio::spawn(follower.follow(pool.clone(), current, conn));
        pool
    } else {
        options.connect_lazy(url).map_err(refused)?
    };
    // Every connection the pool may use is opened now, all within `ADMISSION`, and kept: a process that needs two
    // at once (a worker's job and its heartbeat) never waits on a second one that a saturated server cannot give,
    // which, across a farm of such processes each holding one, stalls them all. A process that cannot open them
    // all lets go of those it opened and is refused as saturated (`connect_when_up` tries again later), so a full
    // server admits whole processes, never parts of many.
    let all = futures_util::future::try_join_all((0..max_connections).map(|_| pool.acquire()));
    match tokio::time::timeout(ADMISSION, all).await {
        Ok(Ok(held)) => drop(held),
        Ok(Err(source)) => return Err(refused(source)),
        Err(_) => return Err(refused(sqlx::Error::PoolTimedOut)),
    }
    if !up_to_date(&pool).await {
        MIGRATOR.run(&pool).await?;
    }
    Ok(pool)
}

/// Whether every embedded migration is recorded as applied with the same checksum. Anything else (no migrations
/// table yet, a migration missing, changed or failed, the table unreadable) runs the migrator, which applies what
/// is pending or says what is wrong.
async fn up_to_date(pool: &PgPool) -> bool {
    let applied: Vec<(i64, Vec<u8>)> =
        match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success").fetch_all(pool).await {
            Ok(rows) => rows,
            Err(_) => return false,
        };
    MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .all(|m| applied.iter().any(|(version, checksum)| *version == m.version && *checksum == *m.checksum))
}

/// Opens one connection (to the host that takes writes, of a list) and closes it again: whether Postgres answers, with the driver's own reason when it does
/// not (a pool reports only that it timed out).
async fn probe(url: &str) -> Result<(), DbError> {
    use sqlx::Connection;
    let connection =
        crate::primary::connect_writable(url).await.map_err(|source| DbError::Connect { url: redact(url), source })?;
    let _ = connection.close().await;
    Ok(())
}

/// Hides a password in a connection URL before it goes into an error message or a log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `url` naming the database `name` instead of its own, its query (`?sslmode=...`) kept: a scratch database of a
/// test or a benchmark on the same server.
pub fn with_database(url: &str, name: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let base = head.rsplit_once('/').map_or(head, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Tells listeners that a job of `batch` reached a terminal state. Runs inside the caller's transaction so the
/// notification is delivered only if the state change commits.
pub(crate) async fn notify_job_event<'e, E>(executor: E, batch: BatchId) -> Result<(), sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query("SELECT pg_notify($1, $2)").bind(JOB_EVENTS_CHANNEL).bind(batch.to_string()).execute(executor).await?;
    Ok(())
}

/// The current state of `batch`, or `None` if there is no such batch.
pub async fn batch_state(pool: &PgPool, batch: BatchId) -> Result<Option<BatchState>, sqlx::Error> {
    sqlx::query_scalar("SELECT state FROM batches WHERE id = $1").bind(batch).fetch_optional(pool).await
}

/// Waits, without polling, until `batch` is finished: listens for job events and re-reads the state after each
/// one (and once at the start, so an event sent before the listener existed is not missed).
pub async fn wait_for_batch(pool: &PgPool, batch: BatchId, timeout: Duration) -> Result<(), DbError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(JOB_EVENTS_CHANNEL).await?;
    let wait = async {
        loop {
            if batch_state(pool, batch).await? == Some(BatchState::Finished) {
                return Ok::<(), DbError>(());
            }
            listener.recv().await?;
        }
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| DbError::WaitTimeout(batch, timeout))?
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_password_only() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
