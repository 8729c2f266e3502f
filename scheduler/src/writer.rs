//! Writing a batch: examined recordings planned into rows as they come (scenes wait until the packer closes
//! their job), then stored a chunk at a time, in one transaction that first checks the run still owns the batch.

use crate::SchedulerError;
use crate::examine::{Examined, Rejected};
use crate::packing::{PackMode, PackedJob, Packer};
use crate::report::{MediaOutcome, MediaReport};
use crate::steps::Steps;
use scenequeue_audio::scenes::Span;
use scenequeue_core::batches;
use scenequeue_core::ids::{BatchId, JobId, MediaId, SceneId};
use scenequeue_core::media::{self, Planned, PlannedJob, PlannedMedia, PlannedScene};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// Rows planned but not yet stored.
pub(crate) struct BatchWriter {
    batch: BatchId,
    /// The run that owns the batch: checked, under a row lock, in every chunk's transaction.
    owner: Uuid,
    packer: Packer,
    max_attempts: i32,
    next_recording: usize,
    /// Recordings with scenes not yet in a closed job: id and spans.
    open: HashMap<usize, (MediaId, Vec<Span>)>,
    /// Scenes assigned per recording so far (to know when a recording is complete).
    assigned: HashMap<usize, usize>,
    planned: Planned,
    /// Scenes cut since the last chunk was stored, in closed jobs or not.
    pub(crate) pending_scenes: usize,
}

impl BatchWriter {
    pub(crate) fn new((batch, owner): (BatchId, Uuid), budget_s: f64, mode: PackMode, max_attempts: i32) -> Self {
        Self {
            batch,
            owner,
            packer: Packer::new(budget_s, mode),
            max_attempts,
            next_recording: 0,
            open: HashMap::new(),
            assigned: HashMap::new(),
            planned: Planned::default(),
            pending_scenes: 0,
        }
    }

    /// Recordings planned since the last chunk was stored.
    pub(crate) fn pending_media(&self) -> usize {
        self.planned.media.len()
    }

    /// Plans one examined recording: a refusal is kept with its reason, a duplicate is only reported, a cut
    /// recording's scenes go to the packer.
    pub(crate) fn add(&mut self, item: Examined) -> MediaReport {
        let path = item.path.to_string_lossy().into_owned();
        let outcome = match item.outcome {
            Err(Rejected::Duplicate(batch)) => {
                return MediaReport { path: item.path, outcome: MediaOutcome::Duplicate { batch } };
            }
            Err(Rejected::Failed(error)) => {
                self.planned.media.push(PlannedMedia {
                    id: MediaId::new(),
                    path,
                    hash: item.hash,
                    read: None,
                    error: Some(error.clone()),
                    warning: None,
                });
                MediaOutcome::Failed(error)
            }
            Ok(cut) => {
                let id = MediaId::new();
                let recording = self.next_recording;
                self.next_recording += 1;
                let durations: Vec<f64> = cut.scenes.iter().map(Span::duration_s).collect();
                let warning = (cut.info.non_finite > 0).then(|| {
                    format!(
                        "{} non-finite samples (NaN or infinity) were replaced by silence while decoding",
                        cut.info.non_finite
                    )
                });
                let outcome = MediaOutcome::Split {
                    scenes: cut.scenes.len(),
                    duration_s: cut.info.duration_s(),
                    warning: warning.clone(),
                };
                self.planned.media.push(PlannedMedia {
                    id,
                    path,
                    hash: item.hash,
                    read: Some((
                        cut.info.sample_rate as i32,
                        i16::try_from(cut.info.channels).unwrap_or(i16::MAX),
                        cut.info.duration_s(),
                        cut.info.decoder.as_str(),
                    )),
                    error: None,
                    warning,
                });
                self.pending_scenes += cut.scenes.len();
                self.open.insert(recording, (id, cut.scenes));
                for job in self.packer.add_recording(recording, &durations) {
                    self.close(job);
                }
                outcome
            }
        };
        MediaReport { path: item.path, outcome }
    }

    /// Turns a closed job into rows and releases recordings whose scenes are all assigned.
    fn close(&mut self, job: PackedJob) {
        let job_id = JobId::new();
        for (recording, idx) in job.scenes {
            let Some((media, spans)) = self.open.get(&recording) else { continue };
            let span = spans[idx];
            self.planned.scenes.push(PlannedScene {
                id: SceneId::new(),
                media: *media,
                job: job_id,
                idx: idx as i32,
                start_s: span.start_s,
                end_s: span.end_s,
            });
            let done = self.assigned.entry(recording).or_default();
            *done += 1;
            if *done == spans.len() {
                self.open.remove(&recording);
                self.assigned.remove(&recording);
            }
        }
        self.planned.jobs.push(PlannedJob { id: job_id, audio_s: job.cost_s });
    }

    /// Closes the open job and stores everything planned, in one transaction (tried again while Postgres is away).
    /// Returns (scenes, jobs) stored.
    pub(crate) async fn flush(&mut self, pool: &PgPool, steps: &Steps) -> Result<(usize, usize), SchedulerError> {
        if let Some(job) = self.packer.flush() {
            self.close(job);
        }
        let this = &*self;
        if !steps.run("storing recordings", || this.commit(pool)).await? {
            return Err(SchedulerError::TakenOver(self.batch));
        }
        let stored = (self.planned.scenes.len(), self.planned.jobs.len());
        self.planned.media.clear();
        self.planned.jobs.clear();
        self.planned.scenes.clear();
        self.pending_scenes = 0;
        Ok(stored)
    }

    /// Stores the planned rows if this run still owns the batch (taking it back if it was marked interrupted while
    /// Postgres was away); false, with nothing stored, if another run took it. Rows already stored by a commit
    /// whose answer was lost are left as they are, so it can be run again.
    async fn commit(&self, pool: &PgPool) -> Result<bool, sqlx::Error> {
        let mut tx = pool.begin().await?;
        if !batches::owns(&mut tx, self.batch, self.owner).await?
            && !batches::reclaim(&mut tx, self.batch, self.owner).await?
        {
            return Ok(false);
        }
        media::store_planned(&mut tx, self.batch, &self.planned, self.max_attempts).await?;
        tx.commit().await?;
        Ok(true)
    }
}
