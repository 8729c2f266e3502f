//! Which decoder reads a recording, and an opened recording on either route as one stream of mono chunks.
//!
//! A submission opens a recording with no decoder named: the Rust route ([`native`](crate::native)) first, and
//! when it has no decoder for the codec (or does not know the container), ffmpeg ([`ffmpeg`](crate::ffmpeg)) if
//! one can be started. Which one read it is stored with the recording, and workers open it with that one, so a
//! scene is cut from the same samples it was planned on.

use crate::AudioError;
use crate::ffmpeg::{self, FfmpegStream, ProbeError, StreamInfo};
use crate::hashing::{FileHash, HashingFile};
use crate::mixdown::Mixdown;
use crate::native::{Native, Refusal, SEEK_PREROLL_S, codec_by_extension, container};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The decoder that reads a recording (stored in `media.decoder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// In process, in Rust (symphonia; Opus through libopus).
    #[default]
    Symphonia,
    /// An ffmpeg program, through a pipe.
    Ffmpeg,
}

impl Decoder {
    /// Its name, as stored in `media.decoder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Symphonia => "symphonia",
            Self::Ffmpeg => "ffmpeg",
        }
    }
}

impl std::fmt::Display for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Decoder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "symphonia" => Ok(Self::Symphonia),
            "ffmpeg" => Ok(Self::Ffmpeg),
            other => Err(format!("unknown decoder {other:?} (expected symphonia or ffmpeg)")),
        }
    }
}

/// An opened recording on either route.
pub(crate) enum Stream {
    Native(Box<Native>),
    Ffmpeg(Box<FfmpegStream>),
}

fn unsupported(path: &Path, what: String) -> AudioError {
    AudioError::Unsupported { path: path.to_path_buf(), what }
}

fn open_ffmpeg(path: &Path) -> Result<FfmpegStream, AudioError> {
    match ffmpeg::probe(path) {
        Ok(info) => FfmpegStream::start(path, info, 0),
        Err(ProbeError::Missing(e)) => Err(unsupported(
            path,
            format!("read with ffmpeg, but ffmpeg cannot be started ({e}): {}", ffmpeg::HOW_TO_ENABLE),
        )),
        Err(ProbeError::Refused(e)) => Err(unsupported(path, format!("ffmpeg finds no audio in it ({e})"))),
    }
}

impl Stream {
    /// Opens `path` with `decoder`, or, with none named, with the first that reads it. With `hash`, the bytes
    /// the Rust route reads extend it.
    pub(crate) fn open(path: &Path, decoder: Option<Decoder>, hash: Option<&FileHash>) -> Result<Self, AudioError> {
        let unreadable = |e: std::io::Error| AudioError::Unreadable { path: path.to_path_buf(), reason: e.to_string() };
        let file = File::open(path).map_err(unreadable)?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(AudioError::Empty { path: path.to_path_buf() });
        }
        if decoder == Some(Decoder::Ffmpeg) {
            return open_ffmpeg(path).map(|f| Self::Ffmpeg(Box::new(f)));
        }
        let source: Box<dyn symphonia::core::io::MediaSource> = match hash {
            Some(hash) => Box::new(HashingFile::new(file, hash.clone()).map_err(unreadable)?),
            None => Box::new(file),
        };
        let refusal = match Native::open(path, source) {
            Ok(native) => return Ok(Self::Native(Box::new(native))),
            Err(Refusal::Error(e)) => return Err(e),
            Err(refusal) => refusal,
        };
        let ext = container(path);
        let not_recognised = || format!("{ext} is not a recognised audio container");
        let codec = match &refusal {
            Refusal::Codec(codec) => Some(codec.clone()),
            _ => codec_by_extension(path).map(str::to_string),
        };
        if decoder == Some(Decoder::Symphonia) {
            return Err(unsupported(
                path,
                match (codec, refusal) {
                    (Some(codec), _) => format!("{codec} audio has no Rust decoder"),
                    (None, Refusal::NoTrack) => format!("{ext} has no audio track with a Rust decoder"),
                    _ => not_recognised(),
                },
            ));
        }
        match (ffmpeg::probe(path), codec, refusal) {
            (Ok(info), _, _) => FfmpegStream::start(path, info, 0).map(|f| Self::Ffmpeg(Box::new(f))),
            (Err(ProbeError::Missing(_)), Some(codec), _) => Err(unsupported(
                path,
                format!(
                    "{codec} audio in a {ext} container is not supported without ffmpeg: {} to decode it",
                    ffmpeg::HOW_TO_ENABLE
                ),
            )),
            (Err(ProbeError::Missing(_)), None, Refusal::NoTrack) => Err(unsupported(
                path,
                format!(
                    "{ext} has no audio track in a codec read without ffmpeg: {} to decode it",
                    ffmpeg::HOW_TO_ENABLE
                ),
            )),
            (Err(ProbeError::Refused(e)), Some(codec), _) => {
                Err(unsupported(path, format!("{codec} audio in a {ext} container is not supported (ffmpeg: {e})")))
            }
            (Err(_), None, Refusal::NoTrack) => Err(unsupported(path, format!("{ext} has no audio track"))),
            (Err(_), _, Refusal::Container(Some(reason))) => {
                Err(AudioError::Unreadable { path: path.to_path_buf(), reason })
            }
            (Err(_), _, _) => Err(unsupported(path, not_recognised())),
        }
    }

    pub(crate) fn decoder(&self) -> Decoder {
        match self {
            Self::Native(_) => Decoder::Symphonia,
            Self::Ffmpeg(_) => Decoder::Ffmpeg,
        }
    }

    pub(crate) fn sample_rate(&self) -> u32 {
        match self {
            Self::Native(n) => n.sample_rate,
            Self::Ffmpeg(f) => f.info.sample_rate,
        }
    }

    pub(crate) fn channels(&self) -> u16 {
        match self {
            Self::Native(n) => n.channels.max(1),
            Self::Ffmpeg(f) => f.info.channels.max(1),
        }
    }

    /// The mixdown so far: non-finite samples replaced, channel energies.
    pub(crate) fn mixdown(&self) -> &Mixdown {
        match self {
            Self::Native(n) => &n.mixdown,
            Self::Ffmpeg(f) => &f.mixdown,
        }
    }

    /// Frames the header promises, where it says.
    pub(crate) fn header_frames(&self) -> Option<u64> {
        match self {
            Self::Native(n) => n.header_frames,
            Self::Ffmpeg(_) => None,
        }
    }

    /// The next mono chunk and the position of its first frame; None at the end.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<(u64, &[f32])>, AudioError> {
        match self {
            Self::Native(n) => n.next_chunk(),
            Self::Ffmpeg(f) => f.next_chunk(),
        }
    }

    /// Moves to just before frame `start` (the chunks that follow may begin before it). False when the
    /// container cannot seek; the stream is then where it was.
    pub(crate) fn seek(&mut self, path: &Path, start: u64) -> Result<bool, AudioError> {
        let rate = f64::from(self.sample_rate());
        match self {
            Self::Native(n) => Ok(n.seek(start as f64 / rate)),
            Self::Ffmpeg(f) => {
                // From a little earlier, so the codec's overlap is warm at the span (as on the Rust route).
                let info: StreamInfo = f.info.clone();
                **f = FfmpegStream::start(path, info, start.saturating_sub((rate * SEEK_PREROLL_S) as u64))?;
                Ok(true)
            }
        }
    }
}

/// The path a stream was opened on, with the file's identity, to tell whether a kept stream is still good.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileId {
    pub path: PathBuf,
    pub len: u64,
    pub modified: Option<std::time::SystemTime>,
}

impl FileId {
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self { path: path.to_path_buf(), len: meta.len(), modified: meta.modified().ok() })
    }
}
