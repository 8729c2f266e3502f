//! Result rows: what a worker measured of each enhanced scene, recorded with the scene `succeeded` (one row per
//! scene, whatever the attempt: a retry overwrites, never duplicates), fenced by the job's lease.
//!
//! A scene's measurements are one struct, [`Measurements`], carried unchanged from the model's side (the worker's
//! scene output) to the row: its fields are the `results` table's columns by name, and rows are written from
//! their JSON, so a new measurement is a field here and a column in a migration.

use crate::fence::Fence;
use crate::ids::{JobId, SceneId, WorkerId};
use crate::states::{OutputFlag, RecoveryStep, SceneState};
use crate::transcripts::Transcript;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// What was measured of one enhanced scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    /// Sample rate of the output (the model's), Hz.
    pub sample_rate: u32,
    /// Length of the output, seconds.
    pub duration_s: f64,
    /// Input level, dBFS RMS.
    pub rms_in_db: f32,
    /// Output level, dBFS RMS.
    pub rms_out_db: f32,
    /// Time the scene cost (its share of a batched call included), milliseconds.
    pub processing_ms: f64,
    /// The out-of-memory recovery step that produced the output.
    pub recovery: RecoveryStep,
    /// Out-of-memory errors met on the way.
    pub oom_count: u32,
    /// GPU memory held by the worker right after the scene, MiB (None without a GPU).
    pub gpu_mem_mb: Option<f32>,
    /// What the output checks found (empty: it passed).
    #[serde(default)]
    pub flags: Vec<OutputFlag>,
    /// Speech-band level of the input, dBFS.
    #[serde(default)]
    pub speech_in_db: f32,
    /// Speech-band level of what was written, dBFS.
    #[serde(default)]
    pub speech_out_db: f32,
    /// What the recogniser heard, when the batch asked for transcription.
    #[serde(default)]
    pub transcript: Option<Transcript>,
}

/// Everything a result row records about one enhanced scene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneResult {
    /// The scene.
    #[serde(rename = "scene_id")]
    pub scene: SceneId,
    /// The job it ran in.
    #[serde(rename = "job_id")]
    pub job: JobId,
    /// The worker that ran it.
    #[serde(rename = "worker_id")]
    pub worker: WorkerId,
    /// The job attempt that produced it.
    pub attempt: i32,
    /// The enhanced file.
    pub output_path: String,
    /// What was measured.
    #[serde(flatten)]
    pub measured: Measurements,
}

/// The `results` columns a row is written with: [`SceneResult`]'s JSON names (a unit test holds them equal).
const COLUMNS: &[&str] = &[
    "scene_id",
    "job_id",
    "worker_id",
    "attempt",
    "output_path",
    "sample_rate",
    "duration_s",
    "rms_in_db",
    "rms_out_db",
    "processing_ms",
    "recovery",
    "oom_count",
    "gpu_mem_mb",
    "flags",
    "speech_in_db",
    "speech_out_db",
    "transcript",
];

/// Upserts the rows given as a JSON array (`$1`) and marks their scenes succeeded (`$2`), in one statement.
static RECORD: LazyLock<String> = LazyLock::new(|| {
    let columns = COLUMNS.join(", ");
    let updated: Vec<String> = COLUMNS[1..].iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
    format!(
        "WITH recorded AS (
             INSERT INTO results ({columns})
             SELECT {columns} FROM jsonb_populate_recordset(NULL::results, $1)
             ON CONFLICT (scene_id) DO UPDATE SET {}, created_at = now()
             RETURNING scene_id)
         UPDATE scenes SET state = $2, error = NULL WHERE id IN (SELECT scene_id FROM recorded)",
        updated.join(", ")
    )
});

/// Why results could not be recorded: the database, or the disk the attempt's files are moved on.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A query failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// An attempt's file could not be moved into place (the output disk is full, read-only or gone).
    #[error("cannot move {} into place: {source}", from.display())]
    Move {
        /// The attempt's file.
        from: PathBuf,
        /// The file system's error.
        source: std::io::Error,
    },
}

/// Records the results of several scenes of one job and marks them succeeded, in one transaction (one
/// statement for their result rows and states, whatever their number), after moving each attempt's
/// file (written under a name of its own) to its result's `output_path`, all while the lease is held. False if
/// the lease was lost: nothing is recorded and every attempt file is removed. A file that cannot be moved fails
/// the whole call (nothing recorded; the files already moved are where a later attempt writes them again).
pub async fn record_successes(
    pool: &PgPool,
    fence: &Fence,
    results: &[(SceneResult, PathBuf)],
) -> Result<bool, RecordError> {
    if results.is_empty() {
        return Ok(true);
    }
    let mut tx = pool.begin().await?;
    if !fence.hold(&mut tx).await? {
        drop(tx);
        for (_, attempt_file) in results {
            let _ = tokio::fs::remove_file(attempt_file).await;
        }
        return Ok(false);
    }
    for (r, attempt_file) in results {
        if attempt_file != Path::new(&r.output_path) {
            tokio::fs::rename(attempt_file, &r.output_path)
                .await
                .map_err(|source| RecordError::Move { from: attempt_file.clone(), source })?;
        }
    }
    let rows: Vec<&SceneResult> = results.iter().map(|(r, _)| r).collect();
    sqlx::query(&RECORD).bind(sqlx::types::Json(rows)).bind(SceneState::Succeeded).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_written_by_the_names_of_its_columns() {
        let result = SceneResult {
            scene: SceneId::new(),
            job: JobId::new(),
            worker: WorkerId::new(),
            attempt: 1,
            output_path: "out.wav".into(),
            measured: Measurements {
                sample_rate: 48_000,
                duration_s: 1.0,
                rms_in_db: -20.0,
                rms_out_db: -22.0,
                processing_ms: 3.0,
                recovery: RecoveryStep::None,
                oom_count: 0,
                gpu_mem_mb: None,
                flags: vec![OutputFlag::Silent],
                speech_in_db: -21.0,
                speech_out_db: -23.0,
                transcript: None,
            },
        };
        let json = serde_json::to_value(&result).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut columns = COLUMNS.to_vec();
        keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(keys, columns);
    }
}
