//! Worker rows in `workers`: who each worker is, where it runs, what it is doing, when it was last seen.

use crate::ids::WorkerId;
use crate::states::WorkerState;
use sqlx::PgPool;

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

/// Registers a starting worker (state `idle`).
pub async fn register(pool: &PgPool, info: &WorkerInfo) -> Result<(), sqlx::Error> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let (gpu_name, gpu_total_mb) = info.gpu.clone().unzip();
    sqlx::query(
        "INSERT INTO workers (id, hostname, pid, device, session_policy, gpu_name, gpu_total_mb, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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

/// Records a worker's new state (and one more job done when `job_finished`).
pub async fn set_state(pool: &PgPool, id: WorkerId, state: WorkerState, job_finished: bool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE workers SET state = $2, last_seen = now(), jobs_done = jobs_done + CASE WHEN $3 THEN 1 ELSE 0 END
         WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(job_finished)
    .execute(pool)
    .await?;
    Ok(())
}
