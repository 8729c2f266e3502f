//! Reading recordings, in any container and codec symphonia supports (WAV, FLAC, MP3, Ogg Vorbis, AAC in
//! MP4/M4A, MKV/WebM with a supported codec, AIFF, CAF, ALAC). A recording is never loaded whole: the splitter
//! streams frame energies packet by packet, the worker seeks to one span. Multichannel input is mixed down to
//! mono by averaging the channels, since the enhancement models are single-channel and speech is what matters.

use crate::AudioError;
use std::fs::File;
use std::path::Path;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, CodecType, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::units::{Time, TimeBase};

/// What a recording holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: u16,
    /// Frames (samples per channel); from the header where it says, else counted by decoding.
    pub frames: u64,
}

impl AudioInfo {
    pub fn duration_s(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate)
    }
}

/// More packets than this failing to decode in one recording means the file is damaged, not merely glitched.
const MAX_BAD_PACKETS: usize = 16;
/// Sample rates accepted from headers; anything else is a corrupt or hostile header.
const RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

fn codec_name(codec: CodecType) -> String {
    use symphonia::core::codecs as c;
    let known: &[(CodecType, &str)] = &[
        (c::CODEC_TYPE_OPUS, "Opus"),
        (c::CODEC_TYPE_VORBIS, "Vorbis"),
        (c::CODEC_TYPE_AAC, "AAC"),
        (c::CODEC_TYPE_MP3, "MP3"),
        (c::CODEC_TYPE_FLAC, "FLAC"),
        (c::CODEC_TYPE_ALAC, "ALAC"),
        (c::CODEC_TYPE_AC4, "AC-4"),
        (c::CODEC_TYPE_WMA, "WMA"),
        (c::CODEC_TYPE_MP2, "MP2"),
        (c::CODEC_TYPE_EAC3, "E-AC-3"),
        (c::CODEC_TYPE_DCA, "DTS"),
        (c::CODEC_TYPE_WAVPACK, "WavPack"),
        (c::CODEC_TYPE_SPEEX, "Speex"),
        (c::CODEC_TYPE_ATRAC3, "ATRAC3"),
    ];
    known.iter().find(|(t, _)| *t == codec).map_or_else(|| format!("codec {codec}"), |(_, n)| n.to_string())
}

fn container(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).map_or_else(|| "file".into(), |e| format!(".{}", e.to_ascii_lowercase()))
}

/// An opened recording: the demuxer, the decoder of its first audio track, and what it holds.
struct Opened {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    time_base: Option<TimeBase>,
    sample_rate: u32,
    channels: u16,
    header_frames: Option<u64>,
}

fn open(path: &Path) -> Result<Opened, AudioError> {
    let unreadable = |reason: String| AudioError::Unreadable { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions { enable_gapless: true, ..Default::default() },
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymError::Unsupported(_) => AudioError::Unsupported {
                path: path.to_path_buf(),
                what: format!("{} is not a recognised audio container", container(path)),
            },
            other => unreadable(other.to_string()),
        })?;
    let format = probed.format;
    let Some(track) = format.tracks().iter().find(|t| t.codec_params.codec != CODEC_TYPE_NULL) else {
        return Err(AudioError::Unsupported {
            path: path.to_path_buf(),
            what: format!("{} has no audio track", container(path)),
        });
    };
    let params = track.codec_params.clone();
    let track_id = track.id;
    let decoder = symphonia::default::get_codecs().make(&params, &DecoderOptions::default()).map_err(|e| match e {
        SymError::Unsupported(_) => AudioError::Unsupported {
            path: path.to_path_buf(),
            what: format!("{} audio in a {} container is not supported", codec_name(params.codec), container(path)),
        },
        other => unreadable(other.to_string()),
    })?;
    let sample_rate = params.sample_rate.unwrap_or(0);
    if !RATES.contains(&sample_rate) {
        return Err(AudioError::Unsupported {
            path: path.to_path_buf(),
            what: format!("a sample rate of {sample_rate} Hz (header damaged?)"),
        });
    }
    let channels = params.channels.map_or(0, |c| c.count()) as u16;
    // Some codecs only know their channel count after the first packet; 0 here is settled while decoding.
    if channels > 64 {
        return Err(AudioError::Unsupported { path: path.to_path_buf(), what: format!("{channels} channels") });
    }
    // Containers count length in their own time base (Matroska in milliseconds): convert to frames.
    let header_frames = params.n_frames.map(|n| match params.time_base {
        Some(tb) => seconds(tb, n).mul_add(f64::from(sample_rate), 0.0).round() as u64,
        None => n,
    });
    Ok(Opened { format, decoder, track: track_id, time_base: params.time_base, sample_rate, channels, header_frames })
}

fn seconds(tb: TimeBase, ts: u64) -> f64 {
    let t = tb.calc_time(ts);
    t.seconds as f64 + t.frac
}

impl Opened {
    /// Decodes packets in order and feeds each mono frame from frame `from` on to `sink`, until it returns false
    /// or the stream ends. Returns the frames fed. After a seek (`after_seek`), the position is taken from the
    /// first packet's timestamp, since demuxers land on a packet boundary before the requested time. A few
    /// undecodable packets are skipped; many mean the file is damaged.
    fn decode_mono(
        &mut self,
        path: &Path,
        from: u64,
        after_seek: bool,
        mut sink: impl FnMut(f32) -> bool,
    ) -> Result<u64, AudioError> {
        let unreadable = |reason: String| AudioError::Unreadable { path: path.to_path_buf(), reason };
        let mut buffer: Option<SampleBuffer<f32>> = None;
        let (mut fed, mut bad) = (0u64, 0usize);
        let mut position: Option<u64> = if after_seek { None } else { Some(0) };
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(fed),
                Err(SymError::ResetRequired) => return Ok(fed),
                Err(e) => return Err(unreadable(e.to_string())),
            };
            if packet.track_id() != self.track {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymError::DecodeError(e)) => {
                    bad += 1;
                    if bad > MAX_BAD_PACKETS {
                        return Err(unreadable(format!(
                            "damaged: more than {MAX_BAD_PACKETS} undecodable packets ({e})"
                        )));
                    }
                    continue;
                }
                Err(e) => return Err(unreadable(e.to_string())),
            };
            let spec = *decoded.spec();
            let channels = spec.channels.count().max(1);
            if buffer.as_ref().is_none_or(|b| b.capacity() < decoded.capacity() * channels) {
                buffer = Some(SampleBuffer::new(decoded.capacity() as u64, spec));
            }
            let Some(buf) = buffer.as_mut() else { continue };
            buf.copy_interleaved_ref(decoded);
            let sr = f64::from(self.sample_rate);
            let mut at = *position.get_or_insert_with(|| match self.time_base {
                Some(tb) => (seconds(tb, packet.ts()) * sr).round() as u64,
                None => packet.ts(),
            });
            let frames = buf.samples().len() / channels;
            position = Some(at + frames as u64);
            for frame in buf.samples().chunks_exact(channels) {
                at += 1;
                if at <= from {
                    continue;
                }
                let mono = frame.iter().sum::<f32>() / channels as f32;
                fed += 1;
                if !sink(mono) {
                    return Ok(fed);
                }
            }
        }
    }

    fn info(&self, frames: u64) -> AudioInfo {
        AudioInfo { sample_rate: self.sample_rate, channels: self.channels.max(1), frames }
    }
}

/// Reads the header; decodes the whole stream only when the header does not say how long it is.
pub fn probe(path: &Path) -> Result<AudioInfo, AudioError> {
    let mut opened = open(path)?;
    let frames = match opened.header_frames {
        Some(n) => n,
        None => opened.decode_mono(path, 0, false, |_| true)?,
    };
    if frames == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    Ok(opened.info(frames))
}

/// Streams the recording once and returns the energy (mean square of the mono mix, in dBFS) of consecutive
/// frames of `frame_s` seconds. Memory is one float per frame: 1.4 MB for ten hours at 10 ms.
pub fn frame_energies_db(path: &Path, frame_s: f64) -> Result<(AudioInfo, Vec<f32>), AudioError> {
    let mut opened = open(path)?;
    let frame_len = ((frame_s * f64::from(opened.sample_rate)).round() as usize).max(1);
    let expected = opened.header_frames.unwrap_or(0);
    // Reserve from the header only within reason: a hostile header must not allocate gigabytes.
    let mut energies = Vec::with_capacity(((expected as usize) / frame_len + 1).min(1 << 24));
    let (mut acc, mut n) = (0.0f64, 0usize);
    let frames = opened.decode_mono(path, 0, false, |s| {
        acc += f64::from(s) * f64::from(s);
        n += 1;
        if n == frame_len {
            energies.push(crate::level::power_to_db(acc / frame_len as f64));
            acc = 0.0;
            n = 0;
        }
        true
    })?;
    if n > 0 {
        energies.push(crate::level::power_to_db(acc / n as f64));
    }
    if frames == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    // Encoders pad the last packet, so only a clear shortfall (over 0.1 s) counts as truncation.
    if expected > frames + u64::from(opened.sample_rate) / 10 {
        return Err(AudioError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("truncated: header promises {expected} frames, the file holds {frames}"),
        });
    }
    Ok((opened.info(frames), energies))
}

/// Streams the whole recording as mono chunks (of at most `chunk` frames) at its own rate to `sink`; a sink
/// error stops the stream and is returned as the reason the recording is unreadable.
pub fn for_each_chunk(
    path: &Path,
    chunk: usize,
    mut sink: impl FnMut(&[f32], u32) -> Result<(), String>,
) -> Result<AudioInfo, AudioError> {
    let mut opened = open(path)?;
    let rate = opened.sample_rate;
    let mut buf = Vec::with_capacity(chunk.max(1));
    let mut failed: Option<String> = None;
    let frames = opened.decode_mono(path, 0, false, |s| {
        buf.push(s);
        if buf.len() == chunk.max(1) {
            if let Err(e) = sink(&buf, rate) {
                failed = Some(e);
                return false;
            }
            buf.clear();
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
    Ok(opened.info(frames))
}

/// Reads `[start_s, end_s)` of the recording as mono f32 at its own sample rate, seeking where the container
/// allows it and decoding from the start where it does not.
pub fn read_span_mono(path: &Path, start_s: f64, end_s: f64) -> Result<(Vec<f32>, u32), AudioError> {
    let mut opened = open(path)?;
    let sr = f64::from(opened.sample_rate);
    let start = (start_s.max(0.0) * sr).round() as u64;
    let end = (end_s * sr).round() as u64;
    let out_of_range =
        |duration_s: f64| AudioError::SpanOutOfRange { path: path.to_path_buf(), start_s, end_s, duration_s };
    if end <= start || opened.header_frames.is_some_and(|n| start >= n) {
        return Err(out_of_range(opened.header_frames.unwrap_or(0) as f64 / sr));
    }
    // Seek to just before the span, then skip to its first frame exactly. Only where timestamps count samples
    // (WAV, FLAC, MP3, Ogg, MP4): with coarser ones (Matroska counts milliseconds) the position after a seek
    // was measured 15 ms off, so those recordings are decoded from the start instead: slower, never misaligned.
    let track = opened.track;
    let sample_exact = opened.time_base.is_none_or(|tb| tb.numer == 1 && tb.denom == opened.sample_rate);
    let seeked = start > 0
        && sample_exact
        && opened
            .format
            .seek(SeekMode::Accurate, SeekTo::Time { time: Time::from(start_s), track_id: Some(track) })
            .is_ok();
    if seeked {
        opened.decoder.reset();
    }
    let wanted = (end - start) as usize;
    let mut out = Vec::with_capacity(wanted.min(1 << 28));
    opened.decode_mono(path, start, seeked, |s| {
        out.push(s);
        out.len() < wanted
    })?;
    if out.is_empty() {
        return Err(out_of_range(opened.header_frames.unwrap_or(0) as f64 / sr));
    }
    // A span ending within a packet of the end of the stream may come up a little short: pad with silence.
    if out.len() + (sr as usize) / 10 < wanted {
        return Err(AudioError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("truncated: span needs {wanted} frames from frame {start}, the file holds {}", out.len()),
        });
    }
    out.resize(wanted, 0.0);
    Ok((out, opened.sample_rate))
}
