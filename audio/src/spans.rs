//! Reading many spans of one recording in a single forward pass. A worker reads a job's scenes in source order;
//! [`SpanReader`] keeps the recording open between them, so each scene continues the decoding where the last one
//! stopped instead of opening and seeking (or, worse, decoding from the start) again. Gaps between spans longer
//! than [`SEEK_GAP_S`] ([`SEEK_GAP_FFMPEG_S`] through ffmpeg) are skipped by seeking; shorter ones are decoded
//! through. The cost of a job is therefore
//! linear in the audio it covers, whatever the container.
//!
//! Positions come from the stream: after a seek, from the timestamp of the first packet (exact where the
//! container counts samples: WAV, FLAC, MP3, Ogg, MP4; to the millisecond in Matroska/WebM, whose timestamps
//! are milliseconds), or from ffmpeg's own accurate input seeking.

use crate::AudioError;
use crate::stream::{Decoder, FileId, Stream};
use std::path::Path;

/// A gap between two spans longer than this is skipped by seeking rather than decoded through, seconds: in
/// process a seek costs half a second of preroll; through ffmpeg it costs a new ffmpeg process.
pub(crate) const SEEK_GAP_S: f64 = 1.0;
/// The same through ffmpeg, where a seek starts a new ffmpeg process, seconds.
pub(crate) const SEEK_GAP_FFMPEG_S: f64 = 30.0;

struct Open {
    id: FileId,
    decoder: Option<Decoder>,
    stream: Stream,
    /// Decoded frames not yet returned, the first at `pending_at`.
    pending: Vec<f32>,
    pending_at: u64,
    /// Position of the next frame the stream yields; None right after a seek.
    next: Option<u64>,
}

impl Open {
    /// Where the next unread frame lies, when known.
    fn cursor(&self) -> Option<u64> {
        if self.pending.is_empty() { self.next } else { Some(self.pending_at) }
    }
}

/// Reads spans of recordings, keeping the last recording open for the next span.
#[derive(Default)]
pub struct SpanReader {
    open: Option<Open>,
}

impl SpanReader {
    /// A reader with no recording open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Closes the recording kept open (ends an ffmpeg process, releases the file).
    pub fn close(&mut self) {
        self.open = None;
    }

    /// Reads `[start_s, end_s)` of `path` as mono f32 at its own rate, with `decoder` (None: the first that
    /// reads it). Continues from the previous span when this one starts at or after where it ended.
    pub fn read(
        &mut self,
        path: &Path,
        decoder: Option<Decoder>,
        start_s: f64,
        end_s: f64,
    ) -> Result<(Vec<f32>, u32), AudioError> {
        let result = self.read_inner(path, decoder, start_s, end_s);
        if result.is_err() {
            self.open = None;
        }
        result
    }

    fn read_inner(
        &mut self,
        path: &Path,
        decoder: Option<Decoder>,
        start_s: f64,
        end_s: f64,
    ) -> Result<(Vec<f32>, u32), AudioError> {
        let id = FileId::of(path);
        let reuse = self.open.as_ref().is_some_and(|o| Some(&o.id) == id.as_ref() && o.decoder == decoder);
        let open = match (reuse, self.open.take()) {
            (true, Some(open)) => open,
            _ => {
                let stream = Stream::open(path, decoder, None)?;
                let Some(id) = id else {
                    return Err(AudioError::Unreadable { path: path.to_path_buf(), reason: "vanished".into() });
                };
                Open { id, decoder, stream, pending: Vec::new(), pending_at: 0, next: Some(0) }
            }
        };
        let open = self.open.insert(open);
        let rate = open.stream.sample_rate();
        let sr = f64::from(rate);
        let start = (start_s.max(0.0) * sr).round() as u64;
        let end = (end_s * sr).round() as u64;
        let header = open.stream.header_frames();
        let out_of_range = || AudioError::SpanOutOfRange {
            path: path.to_path_buf(),
            start_s,
            end_s,
            duration_s: header.unwrap_or(0) as f64 / sr,
        };
        if end <= start || header.is_some_and(|n| start >= n) {
            return Err(out_of_range());
        }
        // Behind the span already, or far before it: seek (reopening when the stream cannot seek back).
        let gap_s = if open.stream.decoder() == Decoder::Ffmpeg { SEEK_GAP_FFMPEG_S } else { SEEK_GAP_S };
        let gap = (gap_s * sr) as u64;
        let behind = open.cursor().is_none_or(|c| c > start);
        if behind || open.cursor().is_some_and(|c| start - c > gap) {
            let seeked = start > 0 && open.stream.seek(path, start)?;
            if seeked {
                open.pending.clear();
                open.next = None;
            } else if behind {
                open.stream = Stream::open(path, decoder, None)?;
                open.pending.clear();
                open.next = Some(0);
            }
        }
        let wanted = (end - start) as usize;
        let mut out = Vec::with_capacity(wanted.min(1 << 28));
        let pending = std::mem::take(&mut open.pending);
        let mut rest = take(&mut out, open.pending_at, &pending, start, end).map(|(at, tail)| (at, tail.to_vec()));
        while rest.is_none() && out.len() < wanted {
            let Some((at, chunk)) = open.stream.next_chunk()? else { break };
            open.next = Some(at + chunk.len() as u64);
            rest = take(&mut out, at, chunk, start, end).map(|(at, tail)| (at, tail.to_vec()));
        }
        match rest {
            Some((at, tail)) => {
                open.pending_at = at;
                open.pending = tail;
            }
            None => open.pending.clear(),
        }
        if out.is_empty() {
            return Err(out_of_range());
        }
        // A span ending within a packet of the end of the stream may come up a little short: pad with silence.
        if out.len() + (sr as usize) / 10 < wanted {
            return Err(AudioError::Unreadable {
                path: path.to_path_buf(),
                reason: format!(
                    "truncated: span needs {wanted} frames from frame {start}, the file holds {}",
                    out.len()
                ),
            });
        }
        out.resize(wanted, 0.0);
        Ok((out, rate))
    }
}

/// Appends the part of `chunk` (first frame at `at`) that falls in `[start, end)` to `out`, which holds the span
/// from `start` on. Returns what lies past `end`, with its position, once the span is complete.
fn take<'a>(out: &mut Vec<f32>, at: u64, chunk: &'a [f32], start: u64, end: u64) -> Option<(u64, &'a [f32])> {
    let chunk_end = at + chunk.len() as u64;
    let have = start + out.len() as u64;
    if chunk.is_empty() || chunk_end <= have {
        return None;
    }
    // A stream that resumes after the frame wanted next (a packet lost to damage) leaves silence in between.
    if at > have {
        out.resize(out.len() + (at.min(end) - have) as usize, 0.0);
    }
    let from = (out.len() as u64 + start).max(at);
    let to = chunk_end.min(end);
    if from < to {
        out.extend_from_slice(&chunk[(from - at) as usize..(to - at) as usize]);
    }
    (chunk_end > end).then(|| (end.max(at), &chunk[(end.max(at) - at) as usize..]))
}
