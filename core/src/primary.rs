//! Following a PostgreSQL primary across a failover.
//!
//! A database URL may name several hosts, as libpq does and as pg_auto_failover's `pg_autoctl show uri` prints:
//! `postgres://user@h1:5432,h2:5432/db?target_session_attrs=read-write`. The hosts are tried in order and the
//! first that takes writes (`transaction_read_only` is off: a standby, or a new primary the failover manager
//! has not opened for writes yet, is skipped) is the one the pool connects to. A follower task then checks it
//! every second on a connection of its own; when it stops answering or turns read-only, the hosts are searched
//! again and the pool's new connections go to the one that takes writes. Connections opened before the switch
//! are discarded when next acquired, so a demoted node that is still up serves no more queries, and `LISTEN`
//! sessions (which acquire from the pool when they reconnect) follow too. The failover itself is the manager's
//! (pg_auto_failover, Patroni): this only finds where it put the primary.

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How often the follower checks that the pool's host still takes writes.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Longest a check or a host's connection may take before the host counts as gone.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The single-host URLs of `url`, in its order. A URL with one host comes back unchanged; with several, each
/// keeps the user, password, database and parameters, without `target_session_attrs` (the follower's rule).
pub fn hosts(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else { return vec![url.to_string()] };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostlist) = authority.rsplit_once('@').map_or(("", authority), |(u, h)| (u, h));
    if !hostlist.contains(',') {
        return vec![url.to_string()];
    }
    let tail = without_param(tail, "target_session_attrs");
    let at = if userinfo.is_empty() { String::new() } else { format!("{userinfo}@") };
    hostlist.split(',').filter(|h| !h.is_empty()).map(|host| format!("{scheme}://{at}{host}{tail}")).collect()
}

/// `tail` (a path and query) without the query parameter `name`.
fn without_param(tail: &str, name: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_string() };
    let kept: Vec<&str> = query.split('&').filter(|p| p.split('=').next() != Some(name) && !p.is_empty()).collect();
    if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) }
}

/// No host of a list takes writes right now: a failover is under way, or the list names no primary. Each
/// host's answer is listed.
#[derive(Debug, thiserror::Error)]
#[error("no host takes writes ({0})")]
pub struct NoPrimary(String);

/// What one host answered; a host that takes writes hands over the connection it was asked on.
enum Answer {
    Writable(PgConnection),
    ReadOnly,
    Failed(sqlx::Error),
}

/// Whether the server of `conn` takes writes now: a primary the failover manager has opened for them.
async fn takes_writes(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only").fetch_one(conn).await?;
    Ok(read_only == "off")
}

async fn ask(options: &PgConnectOptions) -> Answer {
    let attempt = async {
        let mut conn = PgConnection::connect_with(options).await?;
        let writable = takes_writes(&mut conn).await?;
        Ok::<_, sqlx::Error>((conn, writable))
    };
    match tokio::time::timeout(CHECK_TIMEOUT, attempt).await {
        Ok(Ok((conn, true))) => Answer::Writable(conn),
        Ok(Ok((conn, false))) => {
            let _ = conn.close().await;
            Answer::ReadOnly
        }
        Ok(Err(e)) => Answer::Failed(e),
        Err(_) => Answer::Failed(sqlx::Error::PoolTimedOut),
    }
}

/// Each single-host URL with its parsed options.
fn parse(urls: &[String]) -> Result<Vec<(String, PgConnectOptions)>, sqlx::Error> {
    urls.iter().map(|u| u.parse::<PgConnectOptions>().map(|o| (u.clone(), o.disable_statement_logging()))).collect()
}

/// The first host of `hosts` that takes writes: its index and the connection it was asked on. When none does: the last host's error when every
/// host refused for a reason waiting cannot fix (a password, a missing database), else [`NoPrimary`] as an I/O
/// error, which `outage::transient` waits out like a single host's outage.
pub async fn find(hosts: &[(String, PgConnectOptions)]) -> Result<(usize, PgConnection), sqlx::Error> {
    let mut answers = Vec::with_capacity(hosts.len());
    let (mut last_error, mut all_refused) = (None, true);
    for (i, (url, options)) in hosts.iter().enumerate() {
        match ask(options).await {
            Answer::Writable(conn) => return Ok((i, conn)),
            Answer::ReadOnly => {
                all_refused = false;
                answers.push(format!("{}: read-only", crate::db::redact(url)));
            }
            Answer::Failed(e) => {
                all_refused &= !crate::outage::transient(&e);
                answers.push(format!("{}: {e}", crate::db::redact(url)));
                last_error = Some(e);
            }
        }
    }
    match last_error {
        Some(e) if all_refused => Err(e),
        _ => Err(sqlx::Error::Io(std::io::Error::other(NoPrimary(answers.join("; "))))),
    }
}

/// One connection to the host of `url` that takes writes: the host itself when `url` names one.
pub async fn connect_writable(url: &str) -> Result<PgConnection, sqlx::Error> {
    let urls = hosts(url);
    if urls.len() == 1 {
        return PgConnection::connect(url).await;
    }
    Ok(find(&parse(&urls)?).await?.1)
}

/// The hosts of a list, parsed, and when the pool last switched between them.
pub(crate) struct Follower {
    hosts: Vec<(String, PgConnectOptions)>,
    switched: Mutex<Option<Instant>>,
}

impl Follower {
    /// Parses every host of `url` (a list of at least two). Returns the follower and the index of the host that
    /// takes writes now.
    /// The connection the host was found on is kept for the follower's checks (`follow`).
    pub(crate) async fn new(urls: &[String]) -> Result<(Arc<Self>, usize, PgConnection), sqlx::Error> {
        let hosts = parse(urls)?;
        let (current, conn) = find(&hosts).await?;
        Ok((Arc::new(Self { hosts, switched: Mutex::new(None) }), current, conn))
    }

    pub(crate) fn options(&self, index: usize) -> PgConnectOptions {
        self.hosts[index].1.clone()
    }

    /// Whether a connection of this age was opened before the last switch (it may reach the old primary).
    pub(crate) fn is_stale(&self, age: Duration) -> bool {
        let switched = self.switched.lock().map(|s| *s).unwrap_or(None);
        switched.is_some_and(|at| age > at.elapsed())
    }

    /// Checks the current host every second while the pool is open; moves the pool to the host that takes writes
    /// when it stops doing so.
    pub(crate) async fn follow(self: Arc<Self>, pool: PgPool, mut current: usize, conn: PgConnection) {
        let mut held = Some(conn);
        let mut searching = false;
        while !pool.is_closed() {
            tokio::time::sleep(CHECK_EVERY).await;
            if self.still_writable(&mut held, current).await {
                continue;
            }
            held = None;
            match find(&self.hosts).await {
                Ok((found, conn)) => {
                    held = Some(conn);
                    searching = false;
                    if found != current {
                        info!(from = %crate::db::redact(&self.hosts[current].0), to = %crate::db::redact(&self.hosts[found].0),
                            "the primary moved; new connections go to the new one");
                        pool.set_connect_options(self.options(found));
                        if let Ok(mut s) = self.switched.lock() {
                            *s = Some(Instant::now());
                        }
                        current = found;
                    }
                }
                Err(e) => {
                    if !searching {
                        warn!(error = %e, "the primary is gone and no host takes writes yet; looking every second");
                    }
                    searching = true;
                }
            }
        }
    }

    /// Whether the current host still answers on the follower's own connection and takes writes.
    async fn still_writable(&self, held: &mut Option<PgConnection>, current: usize) -> bool {
        let check = async {
            if held.is_none() {
                *held = Some(PgConnection::connect_with(&self.hosts[current].1).await?);
            }
            let Some(conn) = held.as_mut() else { return Ok(false) };
            takes_writes(conn).await
        };
        matches!(tokio::time::timeout(CHECK_TIMEOUT, check).await, Ok(Ok(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::hosts;

    #[test]
    fn a_list_becomes_one_url_per_host_in_order() {
        assert_eq!(
            hosts("postgres://u:p@a:5432,b:5433/db?target_session_attrs=read-write&sslmode=disable"),
            ["postgres://u:p@a:5432/db?sslmode=disable", "postgres://u:p@b:5433/db?sslmode=disable"]
        );
        assert_eq!(
            hosts("postgresql://a,b/db?target_session_attrs=read-write"),
            ["postgresql://a/db", "postgresql://b/db"]
        );
    }

    #[test]
    fn one_host_is_left_alone() {
        for url in ["postgres://u:p@h:5432/db", "postgres://h/db?target_session_attrs=read-write", "not a url"] {
            assert_eq!(hosts(url), [url]);
        }
    }
}
