//! Finding and cutting the recordings of a submission. Each recording is decoded on the blocking pool; a bad
//! one yields an error for that recording alone.

use crate::SchedulerError;
use scenequeue_audio::decode::{AudioInfo, frame_energies_hashed};
use scenequeue_audio::hashing::FileHash;
use scenequeue_audio::scenes::{Span, SplitParams, split};
use scenequeue_audio::vad::{SpeechDetector, split_with};
use std::collections::HashSet;
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

/// One entry of a submission: a recording to decode, or one that failed before decoding, with the reason
/// stored for it (the rest of the submission goes on).
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A regular file to decode (absolute path).
    Recording(PathBuf),
    /// A path that cannot be a recording: a dangling link, a special file, an unreadable directory...
    Failed(PathBuf, String),
}

impl Entry {
    /// The entry's path.
    pub fn path(&self) -> &Path {
        match self {
            Self::Recording(p) | Self::Failed(p, _) => p,
        }
    }
}

/// Expands the submitted paths into entries, in a stable order. Explicitly named files are always kept (and
/// refused later if unsupported); directories are walked recursively for recognised audio files. A submitted
/// path that does not exist is an error before anything is written; inside a directory, every fault (dangling
/// link, special file, unreadable directory) becomes that entry's failure.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<Entry>, SchedulerError> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| SchedulerError::Input {
            path: input.clone(),
            reason: format!("{e} (give recordings or directories that exist)"),
        })?;
        if meta.is_dir() {
            let dir = std::fs::canonicalize(input)
                .map_err(|e| SchedulerError::Input { path: input.clone(), reason: e.to_string() })?;
            walk(&dir, &mut out, &mut HashSet::new());
        } else {
            out.push(entry(input));
        }
    }
    Ok(out)
}

/// What a path found in a submission is: a regular file (canonical path), or why it is not one. Never opens the
/// file: opening a FIFO would block.
fn entry(path: &Path) -> Entry {
    let failed = |reason: String| Entry::Failed(path.to_path_buf(), reason);
    let link = std::fs::symlink_metadata(path).map(|m| m.file_type().is_symlink()).unwrap_or(false);
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if link && e.kind() == std::io::ErrorKind::NotFound => {
            return failed("dangling symbolic link: its target does not exist".into());
        }
        Err(e) => return failed(format!("cannot read: {e}")),
    };
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_block_device() || kind.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return failed(format!("{what}, not a recording: skipped without opening it"));
    }
    match std::fs::canonicalize(path) {
        Ok(p) => Entry::Recording(p),
        Err(e) => failed(format!("cannot resolve the path: {e}")),
    }
}

/// Walks `dir` recursively; `seen` holds the directories already walked, so a link back to a parent is
/// followed once.
fn walk(dir: &Path, out: &mut Vec<Entry>, seen: &mut HashSet<PathBuf>) {
    if !seen.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())) {
        return;
    }
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) => {
            out.push(Entry::Failed(dir.to_path_buf(), format!("cannot list the directory: {e}")));
            return;
        }
    };
    let mut entries = Vec::new();
    for item in read {
        match item {
            Ok(item) => entries.push(item.path()),
            Err(e) => out.push(Entry::Failed(dir.to_path_buf(), format!("cannot list the directory: {e}"))),
        }
    }
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out, seen);
        } else if extension(&path).is_some_and(|e| MEDIA.contains(&e.as_str())) {
            out.push(entry(&path));
        }
    }
}

/// A recording cut into scenes.
#[derive(Debug, Clone)]
pub struct CutRecording {
    /// What the recording holds.
    pub info: AudioInfo,
    /// Its scenes, in time order.
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
    let hash = hash
        .finish(path)
        .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "cannot hash; duplicate detection skips it"))
        .ok();
    (hash, cut)
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
