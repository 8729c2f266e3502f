//! `GET /metrics`: the farm in the Prometheus text format, read from Postgres at each scrape into a registry of
//! its own (so several servers report the same figures and a restart loses nothing). Names follow Prometheus
//! conventions: one `scenequeue_` prefix, base units (seconds, bytes), counters end in `_total`. Labels are
//! bounded: model, device, state, reason class; never an id. Every state is reported, 0 when empty, so alert
//! rules never see a series vanish.

use crate::AppState;
use crate::error::ApiResult;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, text::encode};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use scenequeue_core::states::{JobState, SceneState, WorkerState};
use sqlx::PgPool;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;
type F64Gauge = Gauge<f64, AtomicU64>;

/// A histogram whose buckets were counted by Postgres.
#[derive(Debug, Default)]
struct DbHistogram {
    sum: f64,
    count: u64,
    /// (upper bound, count between it and the bound below), the last bound +Inf.
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for DbHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A counter whose value Postgres holds.
#[derive(Debug, Default)]
struct DbCounter(f64);

impl EncodeMetric for DbCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<prometheus_client::encoding::NoLabelSet, f64, f64>(&self.0, None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// Bucket bounds of job durations and queue waits, seconds.
const DURATION_BUCKETS: [f64; 10] = [1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];
/// Bucket bounds of session creation, seconds.
const SESSION_BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Counts `expr` (seconds) over the rows `from_where` selects into `bounds`, in one scan grouped by bucket
/// (`width_bucket`, far cheaper than one filtered count per bound). A value equal to a bound falls in that
/// bound's bucket, as Prometheus' `le` says: the bucket of `v` is the number of bounds below it, found as
/// `width_bucket` of `-v` over the negated bounds.
async fn histogram(pool: &PgPool, expr: &str, from_where: &str, bounds: &[f64]) -> Result<DbHistogram, sqlx::Error> {
    // `expr` and `from_where` are this module's constants, never input.
    let sql = format!(
        "SELECT ($2 - width_bucket(-v, $1))::int8, count(*)::int8, sum(v)::float8 FROM (SELECT {expr} AS v {from_where}) x
         WHERE v IS NOT NULL GROUP BY 1"
    );
    let negated: Vec<f64> = bounds.iter().rev().map(|b| -b).collect();
    let rows: Vec<(i64, i64, f64)> =
        sqlx::query_as(&sql).bind(negated).bind(bounds.len() as i64).fetch_all(pool).await?;
    // Each bucket holds what falls between its bound and the one below; the encoder adds them up.
    let mut buckets: Vec<(f64, u64)> =
        bounds.iter().copied().chain(std::iter::once(f64::INFINITY)).map(|b| (b, 0)).collect();
    let (mut sum, mut count) = (0.0, 0u64);
    for (bucket, n, s) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        if let Some(slot) = usize::try_from(bucket).ok().and_then(|i| buckets.get_mut(i)) {
            slot.1 += n;
        }
        sum += s;
        count += n;
    }
    Ok(DbHistogram { sum, count, buckets })
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

/// Job, scene and worker rows of one scrape: (model, state, count) and (model, state, count, audio seconds).
type StateRows<S> = Vec<(String, S, i64)>;
type SceneRows = Vec<(String, SceneState, i64, f64)>;
/// Per (device, state): workers and the longest time since a heartbeat.
type DeviceRows = Vec<(String, WorkerState, i64, f64)>;

/// What one scrape reads, every query of it sent at once (each is small: kept counts, partial indexes, one
/// index probe per worker).
struct Readings {
    models: Vec<String>,
    jobs: StateRows<JobState>,
    scenes: SceneRows,
    job_duration: DbHistogram,
    queue_wait: DbHistogram,
    session_create: DbHistogram,
    ooms: i64,
    recoveries: Vec<(String, i64)>,
    reasons: Vec<(String, i64)>,
    devices: DeviceRows,
    gpu_after: Vec<(String, f64)>,
}

async fn read(pool: &PgPool) -> Result<Readings, sqlx::Error> {
    let (models, jobs, scenes) = tokio::try_join!(
        sqlx::query_scalar("SELECT DISTINCT model FROM batches ORDER BY 1").fetch_all(pool),
        sqlx::query_as(
            "SELECT b.model, c.state, sum(c.jobs)::int8 FROM job_counts c JOIN batches b ON b.id = c.batch_id
             GROUP BY 1, 2",
        )
        .fetch_all(pool),
        sqlx::query_as(
            "SELECT b.model, c.state, sum(c.scenes)::int8, sum(c.audio_s)::float8
             FROM scene_counts c JOIN batches b ON b.id = c.batch_id GROUP BY 1, 2",
        )
        .fetch_all(pool),
    )?;
    let (job_duration, queue_wait, session_create) = tokio::try_join!(
        histogram(
            pool,
            "extract(epoch FROM finished_at - started_at)::float8",
            "FROM jobs WHERE finished_at IS NOT NULL AND started_at IS NOT NULL",
            &DURATION_BUCKETS,
        ),
        histogram(
            pool,
            "extract(epoch FROM started_at - created_at)::float8",
            "FROM jobs WHERE started_at IS NOT NULL",
            &DURATION_BUCKETS,
        ),
        histogram(
            pool,
            "session_create_ms / 1000.0",
            "FROM jobs WHERE session_create_ms IS NOT NULL",
            &SESSION_BUCKETS
        ),
    )?;
    let (ooms, recoveries, reasons, devices, gpu_after) = tokio::try_join!(
        sqlx::query_scalar("SELECT coalesce(sum(oom_count), 0)::int8 FROM results WHERE oom_count > 0").fetch_one(pool),
        sqlx::query_as("SELECT recovery::text, count(*) FROM results WHERE recovery <> 'none' GROUP BY 1")
            .fetch_all(pool),
        // Kept per reason class as scenes fail (migration `20261127000033_failure_counts.sql`).
        sqlx::query_as(
            "SELECT class, sum(n)::int8 FROM failure_counts WHERE kind = 'scene' GROUP BY 1 HAVING sum(n) > 0
             ORDER BY 2 DESC LIMIT 100",
        )
        .fetch_all(pool),
        sqlx::query_as(
            "SELECT device, state, count(*), max(extract(epoch FROM now() - last_seen))::float8 FROM workers
             WHERE last_seen > now() - interval '1 day' GROUP BY 1, 2",
        )
        .fetch_all(pool),
        // Each device's most recent job among its workers' latest, one index probe per worker.
        sqlx::query_as(
            "SELECT DISTINCT ON (w.device) w.device, j.gpu_after_mb::float8 * 1048576
             FROM workers w CROSS JOIN LATERAL (
                SELECT gpu_after_mb, finished_at FROM jobs WHERE finished_by = w.id AND gpu_after_mb IS NOT NULL
                  AND finished_at > now() - interval '1 day' ORDER BY finished_at DESC LIMIT 1) j
             WHERE w.last_seen > now() - interval '1 day'
             ORDER BY w.device, j.finished_at DESC",
        )
        .fetch_all(pool),
    )?;
    Ok(Readings {
        models,
        jobs,
        scenes,
        job_duration,
        queue_wait,
        session_create,
        ooms,
        recoveries,
        reasons,
        devices,
        gpu_after,
    })
}

/// Reads the farm's figures and encodes them in the Prometheus text format.
pub async fn render(pool: &PgPool) -> Result<String, sqlx::Error> {
    let r = read(pool).await?;
    let mut registry = Registry::with_prefix("scenequeue");

    let jobs = Family::<Labels, F64Gauge>::default();
    let scenes = Family::<Labels, F64Gauge>::default();
    for model in &r.models {
        for s in JobState::ALL {
            jobs.get_or_create(&labels(&[("model", model), ("state", s.as_str())])).set(0.0);
        }
        for s in SceneState::ALL {
            scenes.get_or_create(&labels(&[("model", model), ("state", s.as_str())])).set(0.0);
        }
    }
    for (model, state, n) in &r.jobs {
        jobs.get_or_create(&labels(&[("model", model), ("state", state.as_str())])).set(*n as f64);
    }
    let (mut submitted, mut enhanced, mut backlog) = (0.0, 0.0, 0.0);
    for (model, state, n, audio_s) in &r.scenes {
        scenes.get_or_create(&labels(&[("model", model), ("state", state.as_str())])).set(*n as f64);
        submitted += audio_s;
        match state {
            SceneState::Succeeded => enhanced += audio_s,
            SceneState::Pending | SceneState::Running => backlog += audio_s,
            SceneState::Failed => {}
        }
    }
    registry.register("jobs", "Jobs per model and state", jobs);
    registry.register("scenes", "Scenes per model and state", scenes);
    registry.register_with_unit(
        "audio_submitted",
        "Audio submitted (scenes of every batch)",
        Unit::Seconds,
        DbCounter(submitted),
    );
    registry.register_with_unit("audio_enhanced", "Audio of enhanced scenes", Unit::Seconds, DbCounter(enhanced));
    let backlog_gauge = F64Gauge::default();
    backlog_gauge.set(backlog);
    registry.register_with_unit("backlog_audio", "Audio of scenes not yet ended", Unit::Seconds, backlog_gauge);
    registry.register_with_unit(
        "job_duration",
        "Time from a job's first lease to its end",
        Unit::Seconds,
        r.job_duration,
    );
    registry.register_with_unit(
        "job_queue_wait",
        "Time from a job's creation to its first lease",
        Unit::Seconds,
        r.queue_wait,
    );
    registry.register_with_unit(
        "session_create",
        "Time a job spent creating inference sessions",
        Unit::Seconds,
        r.session_create,
    );

    registry.register("oom_errors", "Out-of-memory errors hit while enhancing scenes", DbCounter(r.ooms as f64));
    let recovered = Family::<Labels, F64Gauge>::default();
    for step in ["recreated", "windowed", "cpu"] {
        let n = r.recoveries.iter().find(|x| x.0 == step).map_or(0, |x| x.1);
        recovered.get_or_create(&labels(&[("step", step)])).set(n as f64);
    }
    registry.register("oom_recovered_scenes", "Scenes whose output needed an out-of-memory recovery step", recovered);

    let failures = Family::<Labels, F64Gauge>::default();
    for (class, n) in &r.reasons {
        failures.get_or_create(&labels(&[("reason", class)])).set(*n as f64);
    }
    registry.register("failed_scenes", "Failed scenes per reason class", failures);

    let workers = Family::<Labels, F64Gauge>::default();
    let age = Family::<Labels, F64Gauge>::default();
    let gpu_after = Family::<Labels, F64Gauge>::default();
    for s in WorkerState::ALL {
        workers.get_or_create(&labels(&[("state", s.as_str())])).set(0.0);
    }
    for (device, state, n, oldest) in &r.devices {
        let g = workers.get_or_create(&labels(&[("state", state.as_str())]));
        g.set(g.get() + *n as f64);
        if !matches!(state, WorkerState::Stopped) {
            let g = age.get_or_create(&labels(&[("device", device)]));
            g.set(g.get().max(*oldest));
        }
    }
    for (device, bytes) in &r.gpu_after {
        gpu_after.get_or_create(&labels(&[("device", device)])).set(*bytes);
    }
    registry.register("workers", "Workers seen in the last day per state", workers);
    registry.register_with_unit(
        "worker_heartbeat_age",
        "Longest time since a running worker's last heartbeat, per device",
        Unit::Seconds,
        age,
    );
    registry.register_with_unit(
        "gpu_memory_after_job",
        "GPU memory held after the latest job, per device",
        Unit::Bytes,
        gpu_after,
    );

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    Ok(out)
}

/// `GET /metrics`
pub async fn get(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let body = render(&state.pool).await?;
    Ok(([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body))
}
