//! Writing enhanced scenes. The file appears under its final name only once complete (write to a temporary
//! name, then rename), so a crash never leaves a truncated scene that looks finished.

use crate::AudioError;
use hound::{SampleFormat, WavSpec, WavWriter};
use std::path::Path;

/// Writes mono 16-bit PCM (the format transcription front ends expect); samples are clipped to [-1, 1].
pub fn write_wav_pcm16(path: &Path, samples: &[f32], sample_rate: u32) -> Result<(), AudioError> {
    let err = |reason: String| AudioError::Write { path: path.to_path_buf(), reason };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let tmp = path.with_extension("wav.partial");
    let spec = WavSpec { channels: 1, sample_rate, bits_per_sample: 16, sample_format: SampleFormat::Int };
    let mut writer = WavWriter::create(&tmp, spec).map_err(|e| err(e.to_string()))?;
    for &s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        writer.write_sample(v).map_err(|e| err(e.to_string()))?;
    }
    writer.finalize().map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}
