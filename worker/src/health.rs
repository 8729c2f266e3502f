//! The self-check of an unhealthy worker: the job it handed back failed because of the worker itself (its model,
//! its device, its output directory), so it takes no jobs until the same things work again.

use crate::inference::InferenceHandle;
use std::path::{Path, PathBuf};

/// What must work again before the worker takes jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfCheck {
    /// A session of this model can be created.
    pub model: String,
    /// Files can be written in this directory (the output directory the failure was met in).
    pub output_dir: Option<PathBuf>,
}

/// Runs the check; the error says what still fails.
pub async fn run(inference: &InferenceHandle, check: &SelfCheck) -> Result<(), String> {
    inference.warm(&check.model).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    if let Some(dir) = check.output_dir.clone() {
        tokio::task::spawn_blocking(move || writable(&dir)).await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".scenequeue-probe-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("{} is not writable: {e}", dir.display()))
}
