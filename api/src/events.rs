//! Live updates: one Postgres listener per server on the job-events channel (every terminal job state and every
//! operator control notifies it, in the committing transaction), fanned out to the browsers over server-sent
//! events. A browser gets a full snapshot when it connects (and so on every reconnect, since notices sent while
//! it or the listener was away are lost), then a fresh one after each change, at most one per second, and one
//! every few seconds anyway so progress inside a running job shows; one sent because of notices is preceded by a
//! `changed` event naming their batches, whichever server's client caused them. The farm's stream (no `batch`) follows each
//! snapshot with a `batches` event: the progress of the batches on the front page.

use crate::AppState;
use crate::resources::batches::{self, BatchQuery};
use crate::resources::overview::{self, BatchFilter};
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use scenequeue_core::db::JOB_EVENTS_CHANNEL;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;

/// Notices kept for a slow browser before it skips ahead (it only needs the latest anyway).
const NOTICES_BUFFERED: usize = 16;
/// Least time between two snapshots sent to one browser.
const MIN_GAP: Duration = Duration::from_secs(1);
/// Longest time between two snapshots sent to one browser.
const MAX_GAP: Duration = Duration::from_secs(5);

/// The fan-out of change notices (the batch id each one named).
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<String>,
}

impl Events {
    /// Starts listening on `pool`'s database, returning once the listener listens (or its first try failed);
    /// reconnects (with a pause) while the pool is open.
    pub async fn start(pool: PgPool) -> Self {
        let (sender, _) = broadcast::channel(NOTICES_BUFFERED);
        let tx = sender.clone();
        let mut first = Some(connect(&pool).await);
        tokio::spawn(async move {
            while !pool.is_closed() {
                let listener = match first.take() {
                    Some(listener) => listener,
                    None => connect(&pool).await,
                };
                if let Err(e) = async { forward(listener?, &tx).await }.await {
                    tracing::debug!(error = %e, "job-events listener lost; reconnecting");
                }
                tokio::time::sleep(MAX_GAP).await;
            }
        });
        Self { sender }
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.sender.subscribe()
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(JOB_EVENTS_CHANNEL).await?;
    Ok(listener)
}

async fn forward(mut listener: PgListener, tx: &broadcast::Sender<String>) -> Result<(), sqlx::Error> {
    // What changed while no listener was connected is covered by the snapshot each browser gets next.
    let _ = tx.send(String::new());
    loop {
        let notice = listener.recv().await?;
        let _ = tx.send(notice.payload().to_string());
    }
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Event {
    Event::default().event(name).json_data(value).unwrap_or_else(|_| Event::default().event("error"))
}

fn unavailable(e: &dyn std::fmt::Display) -> Event {
    tracing::debug!(error = %e, "no snapshot for a live view");
    Event::default().event("error").data("database unavailable")
}

/// The overview of the filter, then, for the farm, the front page's batches.
async fn snapshot(pool: &PgPool, filter: BatchFilter) -> Vec<Event> {
    let overview = match overview::read(pool, filter.batch).await {
        Ok(o) => json_event("overview", &o),
        Err(e) => return vec![unavailable(&e)],
    };
    if filter.batch.is_some() {
        return vec![overview];
    }
    let query = BatchQuery { limit: Some(batches::FRONT_PAGE), ..Default::default() };
    match batches::list_page(pool, query).await {
        Ok(page) => vec![overview, json_event("batches", &page.items)],
        Err(e) => vec![overview, unavailable(&e)],
    }
}

/// Waits for the next change notice, then takes those already waiting too: the batches they named, each once
/// (an empty list when notices were skipped or the listener reconnected, so which changed is not known).
async fn next_change(notices: &mut broadcast::Receiver<String>) -> Vec<String> {
    use broadcast::error::{RecvError, TryRecvError};
    let first = loop {
        match notices.recv().await {
            Ok(batch) => break Some(batch),
            Err(RecvError::Lagged(_)) => break None,
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    };
    let mut named: Vec<String> = Vec::new();
    let mut known = true;
    let mut notice = first;
    loop {
        match notice {
            Some(batch) if !batch.is_empty() => {
                if !named.contains(&batch) {
                    named.push(batch);
                }
            }
            _ => known = false,
        }
        notice = match notices.try_recv() {
            Ok(batch) => Some(batch),
            Err(TryRecvError::Lagged(_)) => None,
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        };
    }
    if known { named } else { Vec::new() }
}

/// `GET /api/v1/events[?batch=<id>]`: `overview` events (the same body as `GET /api/v1/overview`), and without
/// `batch` also `batches` events (the items of `GET /api/v1/batches?limit=50`). A snapshot sent because something
/// changed comes after a `changed` event: a JSON array of the batch ids named by the notices (empty when unknown).
pub async fn stream(
    State(state): State<AppState>,
    Query(filter): Query<BatchFilter>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = (true, state.events.subscribe(), state.pool.clone());
    let stream = futures_util::stream::unfold(start, move |(first, mut notices, pool)| async move {
        let mut events = Vec::new();
        if !first {
            tokio::time::sleep(MIN_GAP).await;
            if let Ok(changed) = tokio::time::timeout(MAX_GAP - MIN_GAP, next_change(&mut notices)).await {
                events.push(json_event("changed", &changed));
            }
        }
        events.extend(snapshot(&pool, filter).await);
        Some((futures_util::stream::iter(events.into_iter().map(Ok)), (false, notices, pool)))
    })
    .flatten();
    Sse::new(stream).keep_alive(KeepAlive::default())
}
