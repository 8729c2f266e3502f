//! Examining one entry of a submission: a path already split for the model is hashed first, so a duplicate costs
//! one read and no decoding; anything else is hashed while it is decoded and cut (one read). Decoding runs on the
//! blocking pool, and a decoder that panics on a hostile file fails that recording alone.

use crate::SchedulerError;
use crate::ingest::{CutRecording, Entry, content_hash, cut, cut_and_hash};
use crate::steps::Steps;
use scenequeue_audio::scenes::SplitParams;
use scenequeue_audio::vad::SpeechDetector;
use scenequeue_core::ids::BatchId;
use scenequeue_core::media;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a recording is not planned.
pub(crate) enum Rejected {
    Failed(String),
    Duplicate(BatchId),
}

/// One recording after hashing and (unless a duplicate) decoding.
pub(crate) struct Examined {
    pub(crate) path: PathBuf,
    pub(crate) hash: Option<String>,
    pub(crate) outcome: Result<CutRecording, Rejected>,
}

/// Runs blocking work on the blocking pool; a panic in it (a decoder bug on a hostile file) becomes an error
/// naming `path`, never the end of the submission.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let message = scenequeue_core::panics::message(panic.as_ref());
            Err(format!("{}: the decoder crashed on this file: {message}", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// What examining a recording looks up in the database, and how patiently.
#[derive(Clone)]
pub(crate) struct Lookup {
    pub(crate) pool: PgPool,
    pub(crate) model: String,
    pub(crate) skip_duplicates: bool,
    pub(crate) steps: Steps,
}

/// Hashes `entry` and, unless it is a duplicate (by path first, then by hash), decodes and cuts it.
pub(crate) async fn examine(
    lookup: Lookup,
    entry: Entry,
    split: SplitParams,
    detector: Option<Arc<dyn SpeechDetector>>,
) -> Result<Examined, SchedulerError> {
    let Lookup { pool, model, skip_duplicates, steps } = lookup;
    let path = match entry {
        Entry::Recording(path) => path,
        Entry::Failed(path, reason) => {
            let outcome = Err(Rejected::Failed(format!("{}: {reason}", path.display())));
            return Ok(Examined { path, hash: None, outcome });
        }
    };
    let detect = move || detector.clone();
    // A path already split for this model is probably the same recording submitted again: hash it first, so a
    // duplicate costs one read and no decoding. Anything else is hashed while it is decoded: one read.
    let known =
        skip_duplicates && steps.run("looking up a recording", || media::split_at_path(&pool, &model, &path)).await?;
    if !known {
        let (p, detector) = (path.clone(), detect());
        let (hash, outcome) = match blocking(&path, move || Ok(cut_and_hash(&p, &split, detector.as_deref()))).await {
            Ok(done) => done,
            Err(crashed) => (None, Err(crashed)),
        };
        if let Some(hash) = &hash
            && let Some(batch) =
                steps.run("looking up a recording", || earlier_split(&pool, &model, hash, skip_duplicates)).await?
        {
            return Ok(Examined { path, hash: Some(hash.clone()), outcome: Err(Rejected::Duplicate(batch)) });
        }
        return Ok(Examined { path, hash, outcome: outcome.map_err(Rejected::Failed) });
    }
    let p = path.clone();
    let hash = match blocking(&path, move || content_hash(&p)).await {
        Ok(h) => h,
        Err(e) => return Ok(Examined { path, hash: None, outcome: Err(Rejected::Failed(e)) }),
    };
    if let Some(batch) =
        steps.run("looking up a recording", || earlier_split(&pool, &model, &hash, skip_duplicates)).await?
    {
        return Ok(Examined { path, hash: Some(hash), outcome: Err(Rejected::Duplicate(batch)) });
    }
    let (p, detector) = (path.clone(), detect());
    let outcome = blocking(&path, move || cut(&p, &split, detector.as_deref())).await.map_err(Rejected::Failed);
    Ok(Examined { path, hash: Some(hash), outcome })
}

/// The batch in which the recording with `hash` was already split for `model`, when duplicates are skipped.
async fn earlier_split(
    pool: &PgPool,
    model: &str,
    hash: &str,
    skip_duplicates: bool,
) -> Result<Option<BatchId>, sqlx::Error> {
    if !skip_duplicates {
        return Ok(None);
    }
    media::earlier_split(pool, hash, model).await
}
