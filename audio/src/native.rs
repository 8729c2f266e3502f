//! The Rust route: containers and codecs read in process by symphonia (WAV, FLAC, MP3, Ogg, MP4/M4A/MOV,
//! Matroska/WebM, AIFF, CAF, ALAC, Vorbis, AAC, PCM), plus Opus through libopus (`symphonia-adapter-libopus`,
//! linked against the system's libopus). A stream yields mono chunks (channels averaged) with the position of
//! their first frame, packet by packet, so nothing is ever loaded whole.

use crate::AudioError;
use crate::mixdown::Mixdown;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{
    CODEC_TYPE_AAC, CODEC_TYPE_FLAC, CODEC_TYPE_NULL, CODEC_TYPE_OPUS, CodecRegistry, CodecType, Decoder,
    DecoderOptions,
};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::units::{Time, TimeBase};

/// More packets than this failing to decode in one recording means the file is damaged, not merely glitched.
const MAX_BAD_PACKETS: usize = 16;
/// How far before a span a seek lands, seconds.
pub(crate) const SEEK_PREROLL_S: f64 = 0.5;
/// Sample rates accepted from headers; anything else is a corrupt or hostile header.
pub(crate) const RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// symphonia's decoders and libopus.
fn codecs() -> &'static CodecRegistry {
    static REGISTRY: OnceLock<CodecRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_all::<symphonia_adapter_libopus::OpusDecoder>();
        registry
    })
}

pub(crate) fn codec_name(codec: CodecType) -> String {
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

/// The codec a file named like `path` usually holds, for containers only ffmpeg reads (raw AC-3, DTS, ASF...).
pub(crate) fn codec_by_extension(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "ac3" => "AC-3",
        "eac3" | "ec3" => "E-AC-3",
        "dts" => "DTS",
        "wma" | "asf" | "wmv" => "WMA",
        "amr" | "3ga" => "AMR",
        "mp2" | "mpa" => "MP2",
        "ape" => "Monkey's Audio",
        "wv" => "WavPack",
        "tta" => "TTA",
        "mpc" => "Musepack",
        "ra" | "rm" => "RealAudio",
        _ => return None,
    })
}

pub(crate) fn container(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).map_or_else(|| "file".into(), |e| format!(".{}", e.to_ascii_lowercase()))
}

/// Why symphonia cannot read a recording.
pub(crate) enum Refusal {
    /// The container is readable but symphonia has no decoder for its codec (named): another route may.
    Codec(String),
    /// The container is not one symphonia knows (with the reason, when probing failed otherwise): another route
    /// may know it.
    Container(Option<String>),
    /// The container holds no track in a codec symphonia knows (or no audio at all).
    NoTrack,
    /// Anything else: the file itself is at fault.
    Error(AudioError),
}

/// An opened recording: the demuxer, the decoder of its first audio track, and the decoding state.
pub(crate) struct Native {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    time_base: Option<TimeBase>,
    pub(crate) sample_rate: u32,
    pub(crate) channels: u16,
    pub(crate) header_frames: Option<u64>,
    buffer: Option<SampleBuffer<f32>>,
    mono: Vec<f32>,
    /// Mono mixing, with its tally of non-finite samples and channel energies.
    pub(crate) mixdown: Mixdown,
    /// Position of the next decoded frame; None right after a seek, until a packet's timestamp says.
    position: Option<u64>,
    /// Frames by which packet timestamps run ahead of the audio after a seek: Opus's pre-skip, which the
    /// decoder drops from the start of the stream but the timestamps of later packets still count.
    seek_shift: u64,
    /// Whether a position taken from a timestamp is snapped to the grid of the codec's fixed packet length:
    /// for codecs whose packets all hold the same number of frames (FLAC as muxed by common tools, AAC, Opus)
    /// in a container whose timestamps are coarser than a sample (Matroska's milliseconds).
    snap: bool,
    decoded_any: bool,
    bad: usize,
}

/// The pre-skip of an Opus stream, from its identification header (`OpusHead`, in Ogg and in Matroska's
/// CodecPrivate), in samples at 48 kHz.
fn opus_pre_skip(params: &symphonia::core::codecs::CodecParameters) -> Option<u16> {
    if params.codec != symphonia::core::codecs::CODEC_TYPE_OPUS {
        return None;
    }
    let head = params.extra_data.as_deref()?;
    (head.len() >= 12 && head.starts_with(b"OpusHead")).then(|| u16::from_le_bytes([head[10], head[11]]))
}

fn seconds(tb: TimeBase, ts: u64) -> f64 {
    let t = tb.calc_time(ts);
    t.seconds as f64 + t.frac
}

impl Native {
    pub(crate) fn open(path: &Path, source: Box<dyn MediaSource>) -> Result<Self, Refusal> {
        let unreadable = |reason: String| Refusal::Error(AudioError::Unreadable { path: path.to_path_buf(), reason });
        let unsupported = |what: String| Refusal::Error(AudioError::Unsupported { path: path.to_path_buf(), what });
        let stream = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let options = FormatOptions { enable_gapless: true, ..Default::default() };
        let probed = symphonia::default::get_probe()
            .format(&hint, stream, &options, &MetadataOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(_) => Refusal::Container(None),
                // A container symphonia does not know may send its probe to the end of the file.
                other => Refusal::Container(Some(other.to_string())),
            })?;
        let format = probed.format;
        let Some(track) = format.tracks().iter().find(|t| t.codec_params.codec != CODEC_TYPE_NULL) else {
            return Err(Refusal::NoTrack);
        };
        let params = track.codec_params.clone();
        let track_id = track.id;
        let decoder = codecs().make(&params, &DecoderOptions::default()).map_err(|e| match e {
            SymError::Unsupported(_) => Refusal::Codec(codec_name(params.codec)),
            other => unreadable(other.to_string()),
        })?;
        let sample_rate = params.sample_rate.unwrap_or(0);
        if !RATES.contains(&sample_rate) {
            return Err(unsupported(format!("a sample rate of {sample_rate} Hz (header damaged?)")));
        }
        let channels = params.channels.map_or(0, |c| c.count()) as u16;
        // Some codecs only know their channel count after the first packet; 0 here is settled while decoding.
        if channels > 64 {
            return Err(unsupported(format!("{channels} channels")));
        }
        // Containers count length in their own time base (Matroska in milliseconds): convert to frames.
        let header_frames = params.n_frames.map(|n| match params.time_base {
            Some(tb) => (seconds(tb, n) * f64::from(sample_rate)).round() as u64,
            None => n,
        });
        Ok(Self {
            path: path.to_path_buf(),
            format,
            decoder,
            track: track_id,
            time_base: params.time_base,
            sample_rate,
            channels,
            header_frames,
            buffer: None,
            mono: Vec::new(),
            mixdown: Mixdown::default(),
            position: Some(0),
            seek_shift: opus_pre_skip(&params).map_or(0, |n| u64::from(n) * u64::from(sample_rate) / 48_000),
            snap: params.time_base.is_some_and(|tb| tb.numer != 1 || tb.denom != sample_rate)
                && [CODEC_TYPE_FLAC, CODEC_TYPE_AAC, CODEC_TYPE_OPUS].contains(&params.codec),
            decoded_any: false,
            bad: 0,
        })
    }

    /// Seeks to just before `start_s`; the position is then taken from the next packet's timestamp. False when
    /// the container cannot seek (the stream is then where it was).
    pub(crate) fn seek(&mut self, start_s: f64) -> bool {
        // Some demuxers land on the first packet at or after the time asked (Matroska), and some codecs need a
        // packet or two before the span to warm up: ask for a little earlier and decode forward from there.
        let time = Time::from((start_s - SEEK_PREROLL_S).max(0.0));
        let to = SeekTo::Time { time, track_id: Some(self.track) };
        // The Opus decoder drops its pre-skip from the first packet it ever decodes: let that be the stream's
        // first, not the first after the seek.
        if !self.decoded_any && self.next_chunk().is_err() {
            return false;
        }
        if self.format.seek(SeekMode::Accurate, to).is_err() {
            return false;
        }
        self.decoder.reset();
        self.position = None;
        true
    }

    /// The next packet's audio, mono, with the position of its first frame; None at the end of the stream. A
    /// few undecodable packets are skipped; many mean the file is damaged.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<(u64, &[f32])>, AudioError> {
        let unreadable = |path: &Path, reason: String| AudioError::Unreadable { path: path.to_path_buf(), reason };
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(SymError::ResetRequired) => return Ok(None),
                Err(e) => return Err(unreadable(&self.path, e.to_string())),
            };
            if packet.track_id() != self.track {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymError::DecodeError(e)) => {
                    self.bad += 1;
                    if self.bad > MAX_BAD_PACKETS {
                        let reason = format!("damaged: more than {MAX_BAD_PACKETS} undecodable packets ({e})");
                        return Err(unreadable(&self.path, reason));
                    }
                    continue;
                }
                Err(e) => return Err(unreadable(&self.path, e.to_string())),
            };
            let spec = *decoded.spec();
            let channels = spec.channels.count().max(1);
            if self.buffer.as_ref().is_none_or(|b| b.capacity() < decoded.capacity() * channels) {
                self.buffer = Some(SampleBuffer::new(decoded.capacity() as u64, spec));
            }
            let Some(buf) = self.buffer.as_mut() else { continue };
            buf.copy_interleaved_ref(decoded);
            self.mono.clear();
            self.mixdown.mix(buf.samples(), channels, &mut self.mono);
            // A packet that only primes the decoder (the first after a seek, for Vorbis) does not fix the position.
            if self.mono.is_empty() {
                continue;
            }
            let sr = f64::from(self.sample_rate);
            let time_base = self.time_base;
            let (shift, frames, snap) = (self.seek_shift, self.mono.len() as u64, self.snap);
            self.decoded_any = true;
            let at = *self.position.get_or_insert_with(|| {
                let ts = match time_base {
                    Some(tb) => (seconds(tb, packet.ts()) * sr).round() as u64,
                    None => packet.ts(),
                };
                // Millisecond timestamps (Matroska) of a codec whose packets all hold the same number of frames:
                // the packet starts on that grid, so the nearest point of it is exact.
                let ts = if snap && frames > 0 { (ts as f64 / frames as f64).round() as u64 * frames } else { ts };
                ts.saturating_sub(shift)
            });
            self.position = Some(at + self.mono.len() as u64);
            return Ok(Some((at, &self.mono)));
        }
    }
}
