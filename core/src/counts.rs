//! Counts per state of jobs and scenes, kept by triggers in the same transactions as the state changes
//! (migration `20261127000030_state_counts.sql`), so reading them costs a few rows per batch however many
//! scenes there are. Each count is the sum of its delta rows; [`compact`] folds them.

use crate::ids::BatchId;
use crate::states::{JobState, SceneState};
use serde::Serialize;
use sqlx::PgPool;

/// How many of something are in one state, and the audio they hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tally<S> {
    /// The state.
    pub state: S,
    /// How many jobs or scenes are in it.
    pub count: i64,
    /// Seconds of audio they hold.
    pub audio_s: f64,
}

/// Jobs and scenes per state, every state listed (0 where none is in it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateCounts {
    /// Jobs per state, in the order of [`JobState::ALL`].
    pub jobs: Vec<Tally<JobState>>,
    /// Scenes per state, in the order of [`SceneState::ALL`].
    pub scenes: Vec<Tally<SceneState>>,
}

impl StateCounts {
    /// Scenes in `state`.
    pub fn scenes_in(&self, state: SceneState) -> Tally<SceneState> {
        self.scenes.iter().copied().find(|t| t.state == state).unwrap_or(Tally { state, count: 0, audio_s: 0.0 })
    }

    /// Jobs in `state`.
    pub fn jobs_in(&self, state: JobState) -> Tally<JobState> {
        self.jobs.iter().copied().find(|t| t.state == state).unwrap_or(Tally { state, count: 0, audio_s: 0.0 })
    }

    /// Every scene, whatever its state.
    pub fn scenes_total(&self) -> Tally<()> {
        self.scenes.iter().fold(Tally { state: (), count: 0, audio_s: 0.0 }, |acc, t| Tally {
            state: (),
            count: acc.count + t.count,
            audio_s: acc.audio_s + t.audio_s,
        })
    }
}

fn fill<S: Copy + PartialEq>(all: &[S], rows: Vec<(S, i64, f64)>) -> Vec<Tally<S>> {
    all.iter()
        .map(|&state| {
            let (count, audio_s) = rows.iter().filter(|r| r.0 == state).fold((0, 0.0), |a, r| (a.0 + r.1, a.1 + r.2));
            Tally { state, count, audio_s }
        })
        .collect()
}

/// The kept counts of `batch`, or of every batch when `None`.
pub async fn read(pool: &PgPool, batch: Option<BatchId>) -> Result<StateCounts, sqlx::Error> {
    let jobs: Vec<(JobState, i64, f64)> = sqlx::query_as(
        "SELECT state, sum(jobs)::int8, sum(audio_s)::float8 FROM job_counts
         WHERE $1::uuid IS NULL OR batch_id = $1 GROUP BY state",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    let scenes: Vec<(SceneState, i64, f64)> = sqlx::query_as(
        "SELECT state, sum(scenes)::int8, sum(audio_s)::float8 FROM scene_counts
         WHERE $1::uuid IS NULL OR batch_id = $1 GROUP BY state",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    Ok(StateCounts { jobs: fill(JobState::ALL, jobs), scenes: fill(SceneState::ALL, scenes) })
}

/// Scene counts of several batches at once: (batch, state, scenes, audio seconds) rows, only non-zero ones.
pub async fn scenes_of(
    pool: &PgPool,
    batches: &[BatchId],
) -> Result<Vec<(BatchId, SceneState, i64, f64)>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = batches.iter().map(|b| b.0).collect();
    sqlx::query_as(
        "SELECT batch_id, state, sum(scenes)::int8, sum(audio_s)::float8 FROM scene_counts
         WHERE batch_id = ANY($1) GROUP BY batch_id, state HAVING sum(scenes) <> 0",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
}

/// Folds the delta rows into one row per (batch, state); the scheduler runs it on every reaper pass.
pub async fn compact(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT compact_state_counts()").execute(pool).await?;
    Ok(())
}
