//! Riding out an outage of Postgres or RabbitMQ: capped exponential back-off, the one rule for which database
//! errors are worth waiting out (the server is away, starting, saturated) rather than reporting (the query is
//! wrong), how long to wait ([`Patience`]), and a database step retried meanwhile. `db::connect_when_up` and
//! `mq::connect_when_up` wait for a service that is starting the same way.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Capped exponential back-off: `initial`, then doubling up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `initial` and doubles up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, initial, max: max.max(initial) }
    }

    /// The wait before the next attempt; each call doubles the following one, up to the cap.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// Starts over after an attempt that worked.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Whether a database error means Postgres is away or saturated (connection refused, lost or shutting down,
/// still starting, too many connections, no connection free in the pool in time) or that the transaction lost a
/// race (serialization failure, deadlock), rather than that the query itself is wrong: only these are worth
/// waiting out and trying again. Every process decides by this one rule.
pub fn transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        e if closed_in_handshake(e) => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            // 08: connection exception; 40001, 40P01: serialization failure, deadlock (the transaction rolled back);
            // 57P01-57P03: the server is shutting down or starting; 53300: too many connections; 25006: a write
            // reached a node that is read-only now (a failover under way: the pool follows the new primary).
            code.starts_with("08")
                || matches!(code.as_ref(), "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300" | "25006")
        }),
        _ => false,
    }
}

/// Whether the connection was closed while TLS was being negotiated (`sslmode=prefer`, the default, asks first):
/// the driver reports the closed socket as an odd answer to its `SSLRequest`. A server going away, or a proxy or
/// load balancer with nothing behind it, does this.
pub(crate) fn closed_in_handshake(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Protocol(message) if message.contains("SSLRequest"))
}

/// How long a database step waits out an outage, and how often it tries again meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// Longest a step keeps trying, counted from its first failure.
    pub budget: Duration,
    /// First wait between two tries.
    pub initial: Duration,
    /// Longest wait between two tries.
    pub max_wait: Duration,
}

impl Default for Patience {
    /// Five minutes, with waits from 1 s doubling up to 30 s.
    fn default() -> Self {
        Self { budget: Duration::from_secs(300), initial: Duration::from_secs(1), max_wait: Duration::from_secs(30) }
    }
}

impl Patience {
    /// For a process that serves until it is stopped (worker, scheduler, API): it waits however long a service
    /// is away, with the default waits between tries.
    pub fn forever() -> Self {
        Self { budget: Duration::MAX, ..Self::default() }
    }

    /// For a one-shot command (`status`, `submit`, `retry`): long enough for a service that is starting, short
    /// enough that a wrong address is reported while the user still waits.
    pub fn starting() -> Self {
        Self { budget: Duration::from_secs(30), ..Self::default() }
    }
}

/// Runs `attempt` until it succeeds, fails for a reason `is_outage` says waiting does not fix (returned at
/// once), or `service` has been away for `patience.budget` (then the last error). Each failure is logged with
/// its reason and the wait before the next try. None: `stop` fired first.
pub(crate) async fn when_up<T, E, F, Fut>(
    service: &'static str,
    patience: &Patience,
    stop: &CancellationToken,
    is_outage: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<Option<T>, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(patience.initial, patience.max_wait);
    let started = Instant::now();
    loop {
        let error = tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            tried = attempt() => match tried {
                Ok(value) => return Ok(Some(value)),
                Err(e) if is_outage(&e) => e,
                Err(e) => return Err(e),
            },
        };
        let waited = started.elapsed();
        if waited >= patience.budget {
            return Err(error);
        }
        // Jitter (half to all of the back-off) spreads the tries of many processes that met the same outage.
        let jitter = 0.5 + f64::from(started.elapsed().subsec_nanos() % 1000) / 2000.0;
        let wait = backoff.next_wait().mul_f64(jitter).min(patience.budget - waited);
        warn!(%error, retry_in = ?wait, "{service} unreachable; waiting for it");
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Why a database step failed for good.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step failed for a reason waiting does not fix.
    #[error(transparent)]
    Failed(sqlx::Error),
    /// Postgres stayed away for the whole budget.
    #[error("Postgres stayed unreachable for {waited_s:.0} s while {what}: {last}")]
    GaveUp {
        /// The step, in words (`storing recordings`).
        what: &'static str,
        /// Seconds spent waiting.
        waited_s: f64,
        /// The last error.
        last: sqlx::Error,
    },
}

/// Runs `step` until it succeeds, fails for a reason other than an outage, or Postgres has been away for
/// `patience.budget`; each failure is logged with its reason and the wait before the next try. `step` must be
/// safe to run again after a failure (a transaction that rolled back, a read, an idempotent write).
pub async fn retry_step<T, F, Fut>(patience: &Patience, what: &'static str, mut step: F) -> Result<T, StepError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut backoff = Backoff::new(patience.initial, patience.max_wait);
    let mut first_failure: Option<Instant> = None;
    loop {
        let error = match step().await {
            Ok(value) => return Ok(value),
            Err(e) if transient(&e) => e,
            Err(e) => return Err(StepError::Failed(e)),
        };
        let since = *first_failure.get_or_insert_with(Instant::now);
        let waited = since.elapsed();
        if waited >= patience.budget {
            return Err(StepError::GaveUp { what, waited_s: waited.as_secs_f64(), last: error });
        }
        let wait = backoff.next_wait().min(patience.budget - waited);
        warn!(%error, step = what, retry_in = ?wait, "Postgres unreachable; waiting for it");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_its_cap_and_starts_over() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let waits: Vec<u64> = (0..5).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_secs(1));
    }

    #[test]
    fn only_an_absent_server_is_waited_out() {
        assert!(transient(&sqlx::Error::PoolTimedOut));
        assert!(transient(&sqlx::Error::WorkerCrashed));
        assert!(transient(&sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into())));
        assert!(!transient(&sqlx::Error::RowNotFound));
        assert!(!transient(&sqlx::Error::PoolClosed));
        let closed = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into());
        assert!(transient(&closed));
        assert!(!transient(&sqlx::Error::Protocol("unknown message type".into())));
    }

    #[tokio::test]
    async fn a_step_gives_up_after_its_budget_and_a_query_error_at_once() {
        let patience = Patience {
            budget: Duration::from_millis(30),
            initial: Duration::from_millis(5),
            max_wait: Duration::from_millis(10),
        };
        let mut tries = 0;
        let r: Result<(), _> = retry_step(&patience, "testing", || {
            tries += 1;
            async { Err(sqlx::Error::PoolTimedOut) }
        })
        .await;
        assert!(matches!(r, Err(StepError::GaveUp { what: "testing", .. })), "{r:?}");
        assert!(tries >= 2, "{tries}");
        let r: Result<(), _> = retry_step(&patience, "testing", || async { Err(sqlx::Error::RowNotFound) }).await;
        assert!(matches!(r, Err(StepError::Failed(sqlx::Error::RowNotFound))));
        let mut tries = 0;
        let r = retry_step(&patience, "testing", || {
            tries += 1;
            let fail = tries < 3;
            async move { if fail { Err(sqlx::Error::PoolTimedOut) } else { Ok(tries) } }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
    }
}
