//! Counts the database statements this process runs, from the database driver's own event per statement (target
//! `sqlx::query`, logged when the statement finishes), for benchmarks that report round trips. Installs the
//! process's logger: the usual stderr one, plus the counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Statements run so far.
#[derive(Debug, Clone, Default)]
pub struct Statements(Arc<AtomicU64>);

impl Statements {
    /// Installs the logger with the counter and returns the counter.
    pub fn install() -> Self {
        let counter = Self::default();
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_filter(scenequeue_core::telemetry::filter());
        let count = counter.clone().with_filter(Targets::new().with_target("sqlx::query", LevelFilter::TRACE));
        let _ = tracing_subscriber::registry().with(logs).with(count).try_init();
        counter
    }

    /// Statements counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl<S: Subscriber> Layer<S> for Statements {
    fn on_event(&self, _event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
