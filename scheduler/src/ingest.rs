//! Finding and cutting the recordings of a submission. Each recording is decoded on the blocking pool; a bad
//! one yields an error for that recording alone.

use crate::SchedulerError;
use scenequeue_audio::decode::{AudioInfo, frame_energies_hashed};
use scenequeue_audio::hashing::FileHash;
use scenequeue_audio::scenes::{Span, SplitParams, split};
use scenequeue_audio::vad::{SpeechDetector, split_with};
use std::path::{Path, PathBuf};

/// Extensions picked up when a directory is walked: audio files and the video containers whose soundtrack can
/// be decoded. Files named explicitly are always tried, whatever their name.
const MEDIA: &[&str] = &[
    "wav", "wave", "flac", "mp3", "ogg", "oga", "opus", "m4a", "m4b", "mp4", "mov", "aac", "mkv", "mka", "webm", "aif",
    "aiff", "aifc", "caf", "wma", "asf", "wmv", "ac3", "eac3", "ec3", "dts", "amr", "mp2", "ape", "wv", "avi", "ts",
    "mts", "m2ts", "vob", "mpg", "mpeg", "flv", "3gp",
];

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
        } else if extension(&path).is_some_and(|e| MEDIA.contains(&e.as_str())) {
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

/// BLAKE3 of the file's bytes, hex: how a recording is recognised when submitted again. Reads the file; a new
/// recording is hashed while it is decoded instead ([`cut_hashed`]).
pub fn content_hash(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Decodes and cuts one recording, by energy or with a voice-activity `detector`. The error is the message
/// stored for it.
pub fn cut(path: &Path, params: &SplitParams, detector: Option<&dyn SpeechDetector>) -> Result<CutRecording, String> {
    cut_hashed(path, params, detector, None)
}

/// Decodes, cuts and hashes one recording, reading it once: the hash (hex BLAKE3 of its bytes, `None` when the
/// file cannot be read at all) and the cut or the message stored for it.
pub fn cut_and_hash(
    path: &Path,
    params: &SplitParams,
    detector: Option<&dyn SpeechDetector>,
) -> (Option<String>, Result<CutRecording, String>) {
    let hash = FileHash::new();
    let cut = cut_hashed(path, params, detector, Some(&hash));
    (hash.finish(path).ok(), cut)
}

/// [`cut`], extending `hash` with the bytes read.
pub fn cut_hashed(
    path: &Path,
    params: &SplitParams,
    detector: Option<&dyn SpeechDetector>,
    hash: Option<&FileHash>,
) -> Result<CutRecording, String> {
    let (info, scenes) = match detector {
        Some(detector) => split_with(path, detector, params, hash).map_err(|e| e.to_string())?,
        None => {
            let (info, energies) = frame_energies_hashed(path, params.frame_s, hash).map_err(|e| e.to_string())?;
            (info, split(&energies, info.duration_s(), params))
        }
    };
    if scenes.is_empty() {
        let what = match detector {
            Some(_) => "no speech found".to_string(),
            None => format!("no audio above {} dBFS", params.floor_db),
        };
        return Err(format!("{}: silent: {what} in {:.1} s", path.display(), info.duration_s()));
    }
    Ok(CutRecording { info, scenes })
}
