//! Worker rows in `workers`: who each worker is, where it runs, what it is doing, when it was last seen.

use crate::fence::Fence;
use crate::ids::{JobId, WorkerId};
use crate::states::{JobState, WorkerState};
use sqlx::PgPool;
use std::time::Duration;

/// What a worker says about itself when it starts.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// Its id.
    pub id: WorkerId,
    /// The device it runs models on (`cpu`, `cuda:0`...).
    pub device: String,
    /// Its session policy, as written on the command line.
    pub session_policy: String,
    /// The GPU's name and memory in MiB, when it has one.
    pub gpu: Option<(String, f32)>,
}

/// Registers a starting worker (state `idle`); registering again is harmless, so it can be tried again after a
/// failure whose commit went through.
pub async fn register(pool: &PgPool, info: &WorkerInfo) -> Result<(), sqlx::Error> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let (gpu_name, gpu_total_mb) = info.gpu.clone().unzip();
    sqlx::query(
        "INSERT INTO workers (id, hostname, pid, device, session_policy, gpu_name, gpu_total_mb, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(info.id)
    .bind(hostname)
    .bind(i32::try_from(std::process::id()).unwrap_or(i32::MAX))
    .bind(&info.device)
    .bind(&info.session_policy)
    .bind(gpu_name)
    .bind(gpu_total_mb)
    .bind(WorkerState::Idle)
    .execute(pool)
    .await?;
    Ok(())
}

/// A job of the worker ended and it goes on: idle, no job, one more job counted, seen now.
pub async fn job_ended(pool: &PgPool, id: WorkerId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE workers SET state = $2, current_job = NULL, health = NULL, last_seen = now(),
                jobs_done = jobs_done + 1
         WHERE id = $1",
    )
    .bind(id)
    .bind(WorkerState::Idle)
    .execute(pool)
    .await?;
    Ok(())
}

/// A worker's heartbeat: it is alive, in `state` (a worker the reaper marked lost comes back), running `job`,
/// with `health` saying why it is unhealthy (None when it is not). Returns whether an operator asked the worker
/// to drain (finish its job and stop; see `controls::drain_worker`).
pub async fn beat(
    pool: &PgPool,
    id: WorkerId,
    state: WorkerState,
    job: Option<JobId>,
    health: Option<&str>,
) -> Result<bool, sqlx::Error> {
    beat_holding(pool, id, (state, job, health), None).await.map(|beat| beat.drain_requested)
}

/// What a heartbeat learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Beat {
    /// An operator asked the worker to drain (finish its job and stop).
    pub drain_requested: bool,
    /// The lease the beat extended still holds (false without one).
    pub lease_held: bool,
}

/// [`beat`], and, for a worker holding a job's lease, the lease extended to `ttl` from now if its fence still
/// holds it, in the same statement (the two would otherwise be two writes every few seconds for every busy
/// worker). Returns whether an operator asked the worker to drain, and whether the given lease still holds
/// (false without one).
pub async fn beat_holding(
    pool: &PgPool,
    id: WorkerId,
    (state, job, health): (WorkerState, Option<JobId>, Option<&str>),
    lease: Option<(&Fence, Duration)>,
) -> Result<Beat, sqlx::Error> {
    sqlx::query_as(
        "WITH extended AS (
             UPDATE jobs SET lease_expires = now() + make_interval(secs => $7)
             WHERE id = $5 AND lease_token = $6 AND state = $8
             RETURNING 1
         ), beat AS (
             UPDATE workers SET state = $2, current_job = $3, health = $4, last_seen = now() WHERE id = $1
             RETURNING drain_requested
         )
         SELECT coalesce((SELECT drain_requested FROM beat), false) AS drain_requested,
                EXISTS (SELECT 1 FROM extended) AS lease_held",
    )
    .bind(id)
    .bind(state)
    .bind(job)
    .bind(health)
    .bind(lease.map(|(fence, _)| fence.job))
    .bind(lease.map(|(fence, _)| fence.token))
    .bind(lease.map_or(0.0, |(_, ttl)| ttl.as_secs_f64()))
    .bind(JobState::Running)
    .fetch_one(pool)
    .await
}
