//! Writing enhanced scenes: mono WAV (16-bit PCM or 32-bit float) or FLAC (16-bit, lossless, about half the
//! size). The file appears under its final name only once complete (written to a temporary name, then
//! renamed), so a crash never leaves a truncated scene that looks finished.

use crate::AudioError;
use hound::{SampleFormat, WavSpec, WavWriter};
use std::path::{Path, PathBuf};

/// How enhanced scenes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum OutputFormat {
    /// 16-bit PCM WAV (what transcription front ends expect).
    #[default]
    Wav16,
    /// 32-bit float WAV (no quantisation, no clipping of overs).
    WavFloat,
    /// 16-bit FLAC: the samples of `Wav16`, losslessly compressed.
    Flac,
}

impl OutputFormat {
    /// The file extension outputs in this format get.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Wav16 | Self::WavFloat => "wav",
            Self::Flac => "flac",
        }
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Wav16 => "wav",
            Self::WavFloat => "wav-float",
            Self::Flac => "flac",
        })
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wav" | "wav16" => Ok(Self::Wav16),
            "wav-float" => Ok(Self::WavFloat),
            "flac" => Ok(Self::Flac),
            _ => Err(format!("unknown output format {s:?}: expected wav, wav-float or flac")),
        }
    }
}

fn pcm16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Writes mono `samples` to `path` in `format` (the path's extension is the caller's choice). The file appears
/// whole or not at all: it is written under a `.partial` name, moved into place, and removed if either fails (a
/// full disk keeps no half-written file that would hold its space).
pub fn write(path: &Path, samples: &[f32], sample_rate: u32, format: OutputFormat) -> Result<(), AudioError> {
    let err = |reason: String| AudioError::Write { path: path.to_path_buf(), reason };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".partial");
    let written = match format {
        OutputFormat::Flac => write_flac(&tmp, samples, sample_rate),
        OutputFormat::Wav16 | OutputFormat::WavFloat => write_wav(&tmp, samples, sample_rate, format),
    }
    .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

fn write_wav(path: &Path, samples: &[f32], sample_rate: u32, format: OutputFormat) -> Result<(), String> {
    let float = format == OutputFormat::WavFloat;
    let spec = WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float { SampleFormat::Float } else { SampleFormat::Int },
    };
    let mut writer = WavWriter::create(path, spec).map_err(|e| e.to_string())?;
    for &s in samples {
        let r = if float { writer.write_sample(s) } else { writer.write_sample(pcm16(s)) };
        r.map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())
}

fn write_flac(path: &Path, samples: &[f32], sample_rate: u32) -> Result<(), String> {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let pcm: Vec<i32> = samples.iter().map(|&s| i32::from(pcm16(s))).collect();
    let config = flacenc::config::Encoder::default().into_verified().map_err(|(_, e)| e.to_string())?;
    let source = flacenc::source::MemSource::from_samples(&pcm, 1, 16, sample_rate as usize);
    let mut stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .map_err(|e| format!("FLAC encoding failed: {e:?}"))?;
    // The encoder records the shorter last block as the minimum block size; the format counts the minimum
    // without the last block, and readers that take a smaller minimum to mean variable-size blocks (Symphonia)
    // then fail on the file. A fixed-block stream states one size.
    let block = config.block_size;
    stream.stream_info_mut().set_block_sizes(block, block).map_err(|e| e.to_string())?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).map_err(|e| format!("FLAC encoding failed: {e:?}"))?;
    std::fs::write(path, sink.as_slice()).map_err(|e| e.to_string())
}

/// Writes mono 16-bit PCM WAV.
pub fn write_wav_pcm16(path: &Path, samples: &[f32], sample_rate: u32) -> Result<(), AudioError> {
    write(path, samples, sample_rate, OutputFormat::Wav16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_reads_back() {
        let dir = std::env::temp_dir().join(format!("sq-encode-{}", std::process::id()));
        let x: Vec<f32> = (0..24_000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        for format in [OutputFormat::Wav16, OutputFormat::WavFloat, OutputFormat::Flac] {
            let path = dir.join(format!("{format:?}.{}", format.extension()));
            write(&path, &x, 24_000, format).unwrap();
            let (y, rate) = crate::decode::read_span_mono(&path, 0.0, 1.0).unwrap();
            assert_eq!((y.len(), rate), (24_000, 24_000), "{format:?}");
            let tolerance = if format == OutputFormat::WavFloat { 1e-7 } else { 1.0 / 32767.0 };
            assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= tolerance), "{format:?}");
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_write_that_fails_leaves_no_file_behind() {
        let dir = std::env::temp_dir().join(format!("sq-encode-fail-{}", std::process::id()));
        // A directory stands where the file must go: the samples are written, the move into place fails.
        let path = dir.join("scene.wav");
        std::fs::create_dir_all(path.join("in-the-way")).unwrap();
        let x = vec![0.1f32; 4800];
        let e = write(&path, &x, 48_000, OutputFormat::Wav16).unwrap_err();
        assert!(matches!(e, AudioError::Write { .. }), "{e}");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["scene.wav"], "no partial file is left: {left:?}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn flac_of_any_length_reads_back_exactly() {
        let dir = std::env::temp_dir().join(format!("sq-encode-flac-{}", std::process::id()));
        for n in [1, 100, 4096, 8192, 50_001] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.01).sin() * 0.8).collect();
            let path = dir.join(format!("{n}.flac"));
            write(&path, &x, 48_000, OutputFormat::Flac).unwrap();
            let info = crate::decode::probe(&path).unwrap();
            let (y, rate) = crate::decode::read_span_mono(&path, 0.0, info.duration_s()).unwrap();
            assert_eq!((y.len(), rate), (n, 48_000));
            let pcm = |v: f32| f32::from(pcm16(v)) / 32768.0;
            assert!(x.iter().zip(&y).all(|(&a, &b)| (pcm(a) - b).abs() < 1e-6), "{n} samples");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
