//! Finding and cutting the recordings of a submission. Each recording is decoded on the blocking pool; a bad
//! one yields an error for that recording alone.

use crate::SchedulerError;
use scenequeue_audio::decode::{AudioInfo, frame_energies_db};
use scenequeue_audio::scenes::{Span, SplitParams, split};
use std::path::{Path, PathBuf};

/// Extensions of recordings this version decodes.
const DECODED: &[&str] = &["wav", "wave"];
/// Extensions recognised as audio or video that this version refuses with a clear message.
const RECOGNISED: &[&str] =
    &["flac", "mp3", "ogg", "oga", "opus", "m4a", "mp4", "aac", "mkv", "webm", "wma", "aiff", "aif"];

fn extension(path: &Path) -> Option<String> {
    path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase)
}

/// Expands the submitted paths into recordings, in a stable order. Explicitly named files are always kept
/// (and refused later if unsupported); directories are walked recursively for recognised audio files.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, SchedulerError> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input)
            .map_err(|e| SchedulerError::Input { path: input.clone(), reason: e.to_string() })?;
        if meta.is_dir() {
            walk(input, &mut out)?;
        } else {
            out.push(absolute(input)?);
        }
    }
    Ok(out)
}

fn absolute(path: &Path) -> Result<PathBuf, SchedulerError> {
    std::fs::canonicalize(path).map_err(|e| SchedulerError::Input { path: path.to_path_buf(), reason: e.to_string() })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SchedulerError> {
    let read =
        std::fs::read_dir(dir).map_err(|e| SchedulerError::Input { path: dir.to_path_buf(), reason: e.to_string() })?;
    let mut entries: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if extension(&path).is_some_and(|e| DECODED.contains(&e.as_str()) || RECOGNISED.contains(&e.as_str())) {
            out.push(absolute(&path)?);
        }
    }
    Ok(())
}

/// A recording cut into scenes.
#[derive(Debug, Clone)]
pub struct CutRecording {
    pub info: AudioInfo,
    pub scenes: Vec<Span>,
}

/// Decodes and cuts one recording. The error is the message stored for it.
pub fn cut(path: &Path, params: &SplitParams) -> Result<CutRecording, String> {
    match extension(path) {
        Some(e) if DECODED.contains(&e.as_str()) => {}
        Some(e) => {
            return Err(format!(
                "{}: .{e} files are not supported yet (this version decodes WAV only)",
                path.display()
            ));
        }
        None => {
            return Err(format!("{}: no file extension; expected a .wav recording", path.display()));
        }
    }
    let (info, energies) = frame_energies_db(path, params.frame_s).map_err(|e| e.to_string())?;
    let scenes = split(&energies, info.duration_s(), params);
    if scenes.is_empty() {
        return Err(format!(
            "{}: silent: no audio above {} dBFS in {:.1} s",
            path.display(),
            params.floor_db,
            info.duration_s()
        ));
    }
    Ok(CutRecording { info, scenes })
}
