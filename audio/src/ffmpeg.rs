//! The ffmpeg route, for codecs no Rust decoder covers (AC-3, E-AC-3, DTS, WMA, AMR, ...): `ffprobe` names the
//! first audio stream, then `ffmpeg` decodes it to 32-bit float PCM at the stream's own rate and channel count,
//! streamed through a pipe and read a block at a time (bounded memory whatever the length). Channels are
//! averaged to mono here, as on the Rust route. A span is reached with ffmpeg's input seeking, which decodes
//! from the preceding sync point and drops what lies before the requested time.
//!
//! The program is `ffmpeg` on PATH, or the one `SCENEQUEUE_FFMPEG` names (its `ffprobe` is taken from the same
//! directory).

use crate::AudioError;
use crate::mixdown::Mixdown;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// Bytes read from the pipe at a time.
const BLOCK_BYTES: usize = 1 << 16;
/// Bytes of ffmpeg's error output kept for the message.
const STDERR_KEEP: usize = 4096;

/// The ffmpeg program: `SCENEQUEUE_FFMPEG`, or `ffmpeg` on PATH.
pub(crate) fn program() -> PathBuf {
    std::env::var_os("SCENEQUEUE_FFMPEG")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("ffmpeg"), PathBuf::from)
}

fn ffprobe() -> PathBuf {
    let ffmpeg = program();
    match ffmpeg.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.join("ffprobe"),
        None => PathBuf::from("ffprobe"),
    }
}

/// How to enable this route, for refusals.
pub(crate) const HOW_TO_ENABLE: &str =
    "install ffmpeg (Debian: apt-get install ffmpeg) or set SCENEQUEUE_FFMPEG to an ffmpeg program";

/// What ffprobe says about the first audio stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamInfo {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
}

/// Why ffmpeg cannot read a recording.
pub(crate) enum ProbeError {
    /// No ffmpeg/ffprobe could be started.
    Missing(String),
    /// ffprobe ran and found no decodable audio.
    Refused(String),
}

pub(crate) fn probe(path: &Path) -> Result<StreamInfo, ProbeError> {
    let output = Command::new(ffprobe())
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name,sample_rate,channels"])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ProbeError::Missing(format!("{}: {e}", ffprobe().display())))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(ProbeError::Refused(err.trim().lines().last().unwrap_or("ffprobe failed").to_string()));
    }
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')).map(str::trim);
    let (Some(codec), Some(rate), Some(channels)) = (field("codec_name"), field("sample_rate"), field("channels"))
    else {
        return Err(ProbeError::Refused("no audio stream".into()));
    };
    Ok(StreamInfo {
        codec: codec.to_string(),
        sample_rate: rate.parse().unwrap_or(0),
        channels: channels.parse().unwrap_or(0),
    })
}

/// A running ffmpeg decoding one recording from a start frame on.
pub(crate) struct FfmpegStream {
    path: PathBuf,
    child: Child,
    stdout: ChildStdout,
    stderr: Option<std::thread::JoinHandle<String>>,
    pub(crate) info: StreamInfo,
    bytes: Vec<u8>,
    /// Bytes of an incomplete frame carried over from the last read.
    carry: usize,
    mono: Vec<f32>,
    /// Interleaved samples of the block being mixed.
    samples: Vec<f32>,
    /// Mono mixing, with its tally of non-finite samples and channel energies.
    pub(crate) mixdown: Mixdown,
    position: u64,
}

impl FfmpegStream {
    /// Starts decoding at `start` frames (0: the beginning).
    pub(crate) fn start(path: &Path, info: StreamInfo, start: u64) -> Result<Self, AudioError> {
        let unreadable = |reason: String| AudioError::Unreadable { path: path.to_path_buf(), reason };
        if info.channels == 0 || !crate::native::RATES.contains(&info.sample_rate) {
            return Err(AudioError::Unsupported {
                path: path.to_path_buf(),
                what: format!("{} audio with {} Hz and {} channels", info.codec, info.sample_rate, info.channels),
            });
        }
        let mut command = Command::new(program());
        command.args(["-nostdin", "-hide_banner", "-v", "error"]);
        if start > 0 {
            command.arg("-ss").arg(format!("{:.6}", start as f64 / f64::from(info.sample_rate)));
        }
        command
            .arg("-i")
            .arg(path)
            .args(["-map", "0:a:0", "-vn", "-sn", "-dn", "-f", "f32le", "-acodec", "pcm_f32le"])
            .args(["-ar", &info.sample_rate.to_string(), "-ac", &info.channels.to_string(), "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child =
            command.spawn().map_err(|e| unreadable(format!("cannot start {}: {e}", program().display())))?;
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(unreadable("ffmpeg's pipes were not opened".into()));
        };
        // Drained on a thread so ffmpeg never blocks on a full error pipe; only the tail is kept.
        let stderr = std::thread::Builder::new()
            .name("ffmpeg-stderr".into())
            .spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 1024];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > STDERR_KEEP {
                        kept.drain(..kept.len() - STDERR_KEEP);
                    }
                }
                String::from_utf8_lossy(&kept).trim().to_string()
            })
            .ok();
        Ok(Self {
            path: path.to_path_buf(),
            child,
            stdout,
            stderr,
            info,
            bytes: vec![0; BLOCK_BYTES],
            carry: 0,
            mono: Vec::new(),
            samples: Vec::new(),
            mixdown: Mixdown::default(),
            position: start,
        })
    }

    /// The next block of audio, mono, with the position of its first frame; None at the end of the stream. An
    /// ffmpeg that fails is reported with the end of its error output.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<(u64, &[f32])>, AudioError> {
        let frame_bytes = 4 * usize::from(self.info.channels);
        loop {
            let n = match self.stdout.read(&mut self.bytes[self.carry..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.failed(e.to_string())),
            };
            if n == 0 {
                return self.finish().map(|()| None);
            }
            let filled = self.carry + n;
            let whole = filled / frame_bytes * frame_bytes;
            if whole == 0 {
                self.carry = filled;
                continue;
            }
            self.mono.clear();
            self.samples.clear();
            self.samples
                .extend(self.bytes[..whole].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            self.mixdown.mix(&self.samples, usize::from(self.info.channels), &mut self.mono);
            self.bytes.copy_within(whole..filled, 0);
            self.carry = filled - whole;
            let at = self.position;
            self.position += self.mono.len() as u64;
            return Ok(Some((at, &self.mono)));
        }
    }

    fn failed(&mut self, reason: String) -> AudioError {
        let _ = self.child.kill();
        let _ = self.child.wait();
        AudioError::Unreadable { path: self.path.clone(), reason: format!("ffmpeg: {reason}") }
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        let status = self.child.wait().map_err(|e| self.failed(e.to_string()))?;
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let last = stderr.lines().last().unwrap_or("no message").to_string();
        Err(AudioError::Unreadable { path: self.path.clone(), reason: format!("ffmpeg failed ({status}): {last}") })
    }
}

impl Drop for FfmpegStream {
    fn drop(&mut self) {
        // A stream dropped before its end: stop ffmpeg rather than leave it blocked on a full pipe.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
