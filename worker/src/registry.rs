//! This worker's row in `workers`: who it is, where it runs, what it is doing, when it was last seen.

use crate::runtime::Device;
use crate::sessions::SessionPolicy;
use scenequeue_core::ids::WorkerId;
use scenequeue_core::states::WorkerState;
use sqlx::PgPool;

pub async fn register(
    pool: &PgPool,
    id: WorkerId,
    device: Device,
    policy: SessionPolicy,
    gpu: Option<(String, f32)>,
) -> Result<(), sqlx::Error> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let (gpu_name, gpu_total_mb) = gpu.unzip();
    sqlx::query(
        "INSERT INTO workers (id, hostname, pid, device, session_policy, gpu_name, gpu_total_mb)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(hostname)
    .bind(std::process::id() as i32)
    .bind(device.to_string())
    .bind(policy.to_string())
    .bind(gpu_name)
    .bind(gpu_total_mb)
    .execute(pool)
    .await?;
    Ok(())
}

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
