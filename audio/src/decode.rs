//! Reading recordings, in any container and codec the Rust route reads (WAV, FLAC, MP3, Ogg Vorbis and Opus,
//! AAC in MP4/M4A, MKV/WebM with a supported codec, AIFF, CAF, ALAC) or, for the rest, an ffmpeg program (see
//! [`stream`](crate::stream)). A recording is never loaded whole: the splitter streams frame energies packet
//! by packet, the worker reads spans in one forward pass ([`spans`](crate::spans)). Multichannel input is mixed
//! down to mono by averaging the channels, since the enhancement models are single-channel and speech is what
//! matters.

use crate::AudioError;
use crate::hashing::FileHash;
use crate::spans::SpanReader;
use crate::stream::{Decoder, Stream};
use std::path::Path;

/// What a recording holds, and which decoder read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioInfo {
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Channel count (averaged to mono when read).
    pub channels: u16,
    /// Frames (samples per channel); from the header where it says, else counted by decoding.
    pub frames: u64,
    /// The decoder that read it.
    pub decoder: Decoder,
    /// Samples that were not finite (NaN, infinity) and were replaced by 0 while decoding.
    pub non_finite: u64,
}

impl AudioInfo {
    /// Length, seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate)
    }
}

fn info(stream: &Stream, frames: u64) -> AudioInfo {
    AudioInfo {
        sample_rate: stream.sample_rate(),
        channels: stream.channels(),
        frames,
        decoder: stream.decoder(),
        non_finite: stream.mixdown().non_finite,
    }
}

/// Refuses a recording whose channels cancel when averaged to mono (one is the other inverted): its mix would
/// look silent, which is not what is wrong with it.
fn refuse_cancelling(path: &Path, stream: &Stream) -> Result<(), AudioError> {
    match stream.mixdown().cancellation() {
        Some((loudest, mix)) => Err(AudioError::Unsupported {
            path: path.to_path_buf(),
            what: format!(
                "its {} channels cancel when averaged to mono (the loudest is at {loudest:.1} dBFS, their mix at \
                 {mix:.1} dBFS): one channel is the other inverted, a wiring or phase fault; invert one channel \
                 (e.g. sox IN OUT remix 1 2i) or keep one (sox IN OUT remix 1) and submit it again",
                stream.channels()
            ),
        }),
        None => Ok(()),
    }
}

/// Feeds every mono frame of the stream to `sink` until it returns false or the stream ends; returns the
/// frames fed.
fn drain(stream: &mut Stream, mut sink: impl FnMut(&[f32]) -> bool) -> Result<u64, AudioError> {
    let mut fed = 0u64;
    while let Some((_, chunk)) = stream.next_chunk()? {
        fed += chunk.len() as u64;
        if !sink(chunk) {
            break;
        }
    }
    Ok(fed)
}

/// Reads the header; decodes the whole stream only when the header does not say how long it is.
pub fn probe(path: &Path) -> Result<AudioInfo, AudioError> {
    let mut stream = Stream::open(path, None, None)?;
    let frames = match stream.header_frames() {
        Some(n) => n,
        None => drain(&mut stream, |_| true)?,
    };
    if frames == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    Ok(info(&stream, frames))
}

/// Streams the recording once and returns the energy (mean square of the mono mix, in dBFS) of consecutive
/// frames of `frame_s` seconds. Memory is one float per frame: 1.4 MB for ten hours at 10 ms.
pub fn frame_energies_db(path: &Path, frame_s: f64) -> Result<(AudioInfo, Vec<f32>), AudioError> {
    frame_energies_hashed(path, frame_s, None)
}

/// [`frame_energies_db`], extending `hash` with the bytes read (see [`hashing`](crate::hashing)).
pub fn frame_energies_hashed(
    path: &Path,
    frame_s: f64,
    hash: Option<&FileHash>,
) -> Result<(AudioInfo, Vec<f32>), AudioError> {
    let mut stream = Stream::open(path, None, hash)?;
    let frame_len = ((frame_s * f64::from(stream.sample_rate())).round() as usize).max(1);
    let expected = stream.header_frames().unwrap_or(0);
    // Reserve from the header only within reason: a hostile header must not allocate gigabytes.
    let mut energies = Vec::with_capacity(((expected as usize) / frame_len + 1).min(1 << 24));
    let (mut acc, mut n) = (0.0f64, 0usize);
    let frames = drain(&mut stream, |chunk| {
        for &s in chunk {
            acc += f64::from(s) * f64::from(s);
            n += 1;
            if n == frame_len {
                energies.push(crate::level::power_to_db(acc / frame_len as f64));
                acc = 0.0;
                n = 0;
            }
        }
        true
    })?;
    if n > 0 {
        energies.push(crate::level::power_to_db(acc / n as f64));
    }
    if frames == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    refuse_cancelling(path, &stream)?;
    // Encoders pad the last packet, so only a clear shortfall (over 0.1 s) counts as truncation.
    if expected > frames + u64::from(stream.sample_rate()) / 10 {
        return Err(AudioError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("truncated: header promises {expected} frames, the file holds {frames}"),
        });
    }
    Ok((info(&stream, frames), energies))
}

/// Streams the whole recording as mono chunks (of at most `chunk` frames) at its own rate to `sink`, extending
/// `hash` with the bytes read; a sink error stops the stream and is returned as the reason the recording is
/// unreadable.
pub(crate) fn for_each_chunk_hashed(
    path: &Path,
    chunk: usize,
    hash: Option<&FileHash>,
    mut sink: impl FnMut(&[f32], u32) -> Result<(), String>,
) -> Result<AudioInfo, AudioError> {
    let mut stream = Stream::open(path, None, hash)?;
    let rate = stream.sample_rate();
    let chunk = chunk.max(1);
    let mut buf = Vec::with_capacity(chunk);
    let mut failed: Option<String> = None;
    let frames = drain(&mut stream, |frames| {
        for &s in frames {
            buf.push(s);
            if buf.len() == chunk {
                if let Err(e) = sink(&buf, rate) {
                    failed = Some(e);
                    return false;
                }
                buf.clear();
            }
        }
        true
    })?;
    if failed.is_none() && !buf.is_empty() {
        failed = sink(&buf, rate).err();
    }
    if let Some(reason) = failed {
        return Err(AudioError::Unreadable { path: path.to_path_buf(), reason });
    }
    if frames == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    refuse_cancelling(path, &stream)?;
    Ok(info(&stream, frames))
}

/// Reads `[start_s, end_s)` of the recording as mono f32 at its own sample rate (seeking to it). For many spans
/// of one recording, a [`SpanReader`] reads them all in one pass.
pub fn read_span_mono(path: &Path, start_s: f64, end_s: f64) -> Result<(Vec<f32>, u32), AudioError> {
    SpanReader::new().read(path, None, start_s, end_s)
}

/// Reads the whole recording as mono f32 at `rate` (resampled when its own rate differs).
pub fn read_all_at(path: &Path, rate: u32) -> Result<Vec<f32>, AudioError> {
    let (x, own) = read_span_mono(path, 0.0, probe(path)?.duration_s())?;
    if own == rate { Ok(x) } else { crate::resample::resample(&x, own, rate) }
}
