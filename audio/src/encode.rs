//! Writing enhanced scenes: mono WAV, 16-bit PCM or 32-bit float. The file appears under its final name only
//! once complete (written to a temporary name, then renamed), so a crash never leaves a truncated scene that
//! looks finished.

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
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wav" | "wav16" => Ok(Self::Wav16),
            "wav-float" => Ok(Self::WavFloat),
            _ => Err(format!("unknown output format {s:?}: expected wav or wav-float")),
        }
    }
}

fn pcm16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Writes mono `samples` to `path` in `format` (the path's extension is the caller's choice).
pub fn write(path: &Path, samples: &[f32], sample_rate: u32, format: OutputFormat) -> Result<(), AudioError> {
    let err = |reason: String| AudioError::Write { path: path.to_path_buf(), reason };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".partial");
    let float = format == OutputFormat::WavFloat;
    let spec = WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float { SampleFormat::Float } else { SampleFormat::Int },
    };
    let mut writer = WavWriter::create(&tmp, spec).map_err(|e| err(e.to_string()))?;
    for &s in samples {
        let r = if float { writer.write_sample(s) } else { writer.write_sample(pcm16(s)) };
        r.map_err(|e| err(e.to_string()))?;
    }
    writer.finalize().map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
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
        for format in [OutputFormat::Wav16, OutputFormat::WavFloat] {
            let path = dir.join(format!("{format:?}.wav"));
            write(&path, &x, 24_000, format).unwrap();
            let (y, rate) = crate::decode::read_span_mono(&path, 0.0, 1.0).unwrap();
            assert_eq!((y.len(), rate), (24_000, 24_000), "{format:?}");
            let tolerance = if format == OutputFormat::WavFloat { 1e-7 } else { 1.0 / 32767.0 };
            assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= tolerance), "{format:?}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
