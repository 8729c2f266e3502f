//! Fencing: a worker's writes count only while it holds the job's lease. Every lease carries a fresh token;
//! every result, scene-state and job-state write of the holder first locks the job row on that token (in the
//! same transaction), so a worker whose lease expired and was taken over writes nothing, however late its
//! write arrives. While the lock is held, the lease cannot be taken over.

use crate::ids::JobId;
use crate::states::JobState;
use sqlx::PgConnection;
use uuid::Uuid;

/// The proof of a lease: the job and the token granted with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    /// The leased job.
    pub job: JobId,
    /// The token of this lease; a later lease of the same job gets another.
    pub token: Uuid,
}

impl Fence {
    /// A token's first 8 hex digits: names this attempt's temporary files.
    pub fn short(&self) -> String {
        self.token.simple().to_string()[..8].to_string()
    }

    /// Inside a transaction: locks the job row if this lease still holds it (running, same token), so nobody
    /// can take the lease over until the transaction ends. False: the lease was lost; write nothing.
    pub async fn hold(&self, tx: &mut PgConnection) -> Result<bool, sqlx::Error> {
        let held: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = $1 AND lease_token = $2 AND state = $3 FOR SHARE")
                .bind(self.job)
                .bind(self.token)
                .bind(JobState::Running)
                .fetch_optional(tx)
                .await?;
        Ok(held.is_some())
    }
}
