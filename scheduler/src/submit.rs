//! A submission: recordings in, a stored batch with its scenes and jobs, jobs published.
//!
//! Everything is stored in one transaction before anything is published, so a crash leaves either nothing or
//! a complete batch whose unpublished (`pending`) jobs the reaper publishes later.

use crate::SchedulerError;
use crate::ingest::{CutRecording, collect_inputs, cut};
use crate::packing::pack;
use crate::publish::publish_pending;
use futures_util::{StreamExt, stream};
use scenequeue_audio::scenes::SplitParams;
use scenequeue_core::ids::{BatchId, JobId, MediaId, SceneId};
use scenequeue_core::mq::Publisher;
use scenequeue_core::states::BatchState;
use sqlx::PgPool;
use std::path::PathBuf;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct SubmitRequest {
    pub inputs: Vec<PathBuf>,
    pub output_dir: PathBuf,
    pub model: String,
    pub split: SplitParams,
    /// Seconds of audio per job.
    pub job_budget_s: f64,
    pub max_attempts: i32,
    /// Recordings decoded at once.
    pub decode_concurrency: usize,
}

/// The outcome for one recording.
#[derive(Debug, Clone)]
pub struct MediaReport {
    pub id: MediaId,
    pub path: PathBuf,
    pub outcome: Result<(usize, f64), String>,
}

#[derive(Debug, Clone)]
pub struct SubmitReport {
    pub batch: BatchId,
    pub media: Vec<MediaReport>,
    pub scenes: usize,
    pub jobs: usize,
    pub published: usize,
}

fn valid_model_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub async fn submit(pool: &PgPool, publisher: &Publisher, req: &SubmitRequest) -> Result<SubmitReport, SchedulerError> {
    if !valid_model_name(&req.model) {
        return Err(SchedulerError::BadModelName(req.model.clone()));
    }
    std::fs::create_dir_all(&req.output_dir)
        .map_err(|e| SchedulerError::Input { path: req.output_dir.clone(), reason: e.to_string() })?;
    let output_dir = std::fs::canonicalize(&req.output_dir)
        .map_err(|e| SchedulerError::Input { path: req.output_dir.clone(), reason: e.to_string() })?;
    let paths = collect_inputs(&req.inputs)?;
    if paths.is_empty() {
        return Err(SchedulerError::NothingToSubmit("no recordings found in the given paths".into()));
    }

    // Decode on the blocking pool, a bounded number at a time, keeping submission order.
    let cuts: Vec<(PathBuf, Result<CutRecording, String>)> = stream::iter(paths)
        .map(|path| {
            let params = req.split.clone();
            async move {
                let p = path.clone();
                let r = tokio::task::spawn_blocking(move || cut(&p, &params)).await;
                (path, r)
            }
        })
        .buffered(req.decode_concurrency.max(1))
        .map(|(path, r)| r.map(|cut| (path, cut)))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;

    let batch = BatchId::new();
    let plan = Plan::build(&cuts, req.job_budget_s);
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO batches (id, state, model, output_dir) VALUES ($1, $2, $3, $4)")
        .bind(batch)
        .bind(if plan.jobs.is_empty() { BatchState::Finished } else { BatchState::Active })
        .bind(&req.model)
        .bind(output_dir.to_string_lossy().as_ref())
        .execute(&mut *tx)
        .await?;
    if plan.jobs.is_empty() {
        sqlx::query("UPDATE batches SET finished_at = now() WHERE id = $1").bind(batch).execute(&mut *tx).await?;
    }
    plan.insert(&mut tx, batch, &cuts, req.max_attempts).await?;
    tx.commit().await?;

    let published = publish_pending(pool, publisher, Some(batch)).await?;
    Ok(SubmitReport {
        batch,
        media: plan.media_reports(&cuts),
        scenes: plan.scene_ids.len(),
        jobs: plan.jobs.len(),
        published,
    })
}

/// Ids and job assignment for everything a batch stores.
struct Plan {
    media_ids: Vec<MediaId>,
    /// Per scene: (media index, scene index within the media).
    scene_refs: Vec<(usize, usize)>,
    scene_ids: Vec<SceneId>,
    scene_job: Vec<usize>,
    jobs: Vec<(JobId, f64)>,
}

impl Plan {
    fn build(cuts: &[(PathBuf, Result<CutRecording, String>)], budget_s: f64) -> Self {
        let media_ids: Vec<MediaId> = cuts.iter().map(|_| MediaId::new()).collect();
        let scene_refs: Vec<(usize, usize)> = cuts
            .iter()
            .enumerate()
            .filter_map(|(m, (_, r))| r.as_ref().ok().map(|c| (m, c.scenes.len())))
            .flat_map(|(m, n)| (0..n).map(move |s| (m, s)))
            .collect();
        let duration = |&(m, s): &(usize, usize)| match &cuts[m].1 {
            Ok(c) => c.scenes[s].duration_s(),
            Err(_) => 0.0,
        };
        let durations: Vec<f64> = scene_refs.iter().map(duration).collect();
        let groups = pack(&durations, budget_s);
        let mut scene_job = vec![0; scene_refs.len()];
        let mut jobs = Vec::with_capacity(groups.len());
        for (j, group) in groups.iter().enumerate() {
            for &s in group {
                scene_job[s] = j;
            }
            jobs.push((JobId::new(), group.iter().map(|&s| durations[s]).sum()));
        }
        Self { media_ids, scene_ids: scene_refs.iter().map(|_| SceneId::new()).collect(), scene_refs, scene_job, jobs }
    }

    async fn insert(
        &self,
        tx: &mut sqlx::PgConnection,
        batch: BatchId,
        cuts: &[(PathBuf, Result<CutRecording, String>)],
        max_attempts: i32,
    ) -> Result<(), sqlx::Error> {
        let ids = |v: &[MediaId]| v.iter().map(|i| i.0).collect::<Vec<Uuid>>();
        let mut sample_rate = Vec::with_capacity(cuts.len());
        let mut channels = Vec::with_capacity(cuts.len());
        let mut duration = Vec::with_capacity(cuts.len());
        let mut error = Vec::with_capacity(cuts.len());
        for (_, r) in cuts {
            match r {
                Ok(c) => {
                    sample_rate.push(Some(c.info.sample_rate as i32));
                    channels.push(Some(i16::try_from(c.info.channels).unwrap_or(i16::MAX)));
                    duration.push(Some(c.info.duration_s()));
                    error.push(None);
                }
                Err(e) => {
                    sample_rate.push(None);
                    channels.push(None);
                    duration.push(None);
                    error.push(Some(e.clone()));
                }
            }
        }
        let paths: Vec<String> = cuts.iter().map(|(p, _)| p.to_string_lossy().into_owned()).collect();
        sqlx::query(
            "INSERT INTO media (id, batch_id, path, state, sample_rate, channels, duration_s, error)
             SELECT id, $1, path, CASE WHEN error IS NULL THEN 'split' ELSE 'failed' END::media_state, sr, ch, dur, error
             FROM UNNEST($2::uuid[], $3::text[], $4::int4[], $5::int2[], $6::float8[], $7::text[])
                  AS t(id, path, sr, ch, dur, error)",
        )
        .bind(batch)
        .bind(ids(&self.media_ids))
        .bind(&paths)
        .bind(&sample_rate)
        .bind(&channels)
        .bind(&duration)
        .bind(&error)
        .execute(&mut *tx)
        .await?;

        sqlx::query(
            "INSERT INTO jobs (id, batch_id, audio_s, max_attempts)
             SELECT id, $1, audio_s, $4 FROM UNNEST($2::uuid[], $3::float8[]) AS t(id, audio_s)",
        )
        .bind(batch)
        .bind(self.jobs.iter().map(|(j, _)| j.0).collect::<Vec<Uuid>>())
        .bind(self.jobs.iter().map(|(_, d)| *d).collect::<Vec<f64>>())
        .bind(max_attempts)
        .execute(&mut *tx)
        .await?;

        let mut starts = Vec::with_capacity(self.scene_refs.len());
        let mut ends = Vec::with_capacity(self.scene_refs.len());
        for &(m, s) in &self.scene_refs {
            if let Ok(c) = &cuts[m].1 {
                starts.push(c.scenes[s].start_s);
                ends.push(c.scenes[s].end_s);
            }
        }
        sqlx::query(
            "INSERT INTO scenes (id, media_id, batch_id, job_id, idx, start_s, end_s)
             SELECT id, media_id, $1, job_id, idx, start_s, end_s
             FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::int4[], $6::float8[], $7::float8[])
                  AS t(id, media_id, job_id, idx, start_s, end_s)",
        )
        .bind(batch)
        .bind(self.scene_ids.iter().map(|i| i.0).collect::<Vec<Uuid>>())
        .bind(self.scene_refs.iter().map(|&(m, _)| self.media_ids[m].0).collect::<Vec<Uuid>>())
        .bind(self.scene_job.iter().map(|&j| self.jobs[j].0.0).collect::<Vec<Uuid>>())
        .bind(self.scene_refs.iter().map(|&(_, s)| s as i32).collect::<Vec<i32>>())
        .bind(&starts)
        .bind(&ends)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    fn media_reports(&self, cuts: &[(PathBuf, Result<CutRecording, String>)]) -> Vec<MediaReport> {
        cuts.iter()
            .zip(&self.media_ids)
            .map(|((path, r), &id)| MediaReport {
                id,
                path: path.clone(),
                outcome: r.as_ref().map(|c| (c.scenes.len(), c.info.duration_s())).map_err(Clone::clone),
            })
            .collect()
    }
}
