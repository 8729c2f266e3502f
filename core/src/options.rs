//! Enhancement settings chosen per submission, stored on the batch (columns of `batches`) and applied by the
//! worker over its own defaults; and the presets that name a tested set of them.

use crate::ids::BatchId;
use crate::transcripts::AsrInput;
use serde::{Deserialize, Serialize};

/// A batch's enhancement settings; `None` leaves the worker's own default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct BatchOptions {
    /// At most this many dB of noise removed (DeepFilterNet's attenuation limit): the enhanced signal is mixed
    /// with the input so that what the model removes is attenuated by at most this much. 100 or more: no limit.
    pub atten_lim_db: Option<f32>,
    /// Strength of DeepFilterNet's post-filter (its `beta`, e.g. 0.02), which deepens the attenuation of bins
    /// the model already attenuates; 0 turns it off. DeepFilterNet models only.
    pub post_filter_beta: Option<f32>,
    /// Rumble high-pass cut-off, Hz; 0 turns it off.
    pub highpass_hz: Option<f32>,
    /// Loudness every output is normalised to, LUFS.
    pub loudness_lufs: Option<f32>,
}

/// A batch's transcription: the recognition model its scenes are transcribed with after enhancement, and the
/// language spoken (`auto`: detected per scene).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsrOptions {
    /// The recognition model (a directory under the workers' `models/asr/`).
    pub model: String,
    /// `auto`, or a language code (`en`, `de`, `ja`, ...).
    pub language: String,
    /// Which audio the recogniser gets.
    #[serde(default)]
    pub input: AsrInput,
}

impl AsrOptions {
    /// The options stored in a batch row's columns (all set, or none).
    pub fn from_columns(model: Option<String>, language: Option<String>, input: Option<String>) -> Option<Self> {
        Some(Self {
            model: model?,
            language: language.unwrap_or_else(|| "auto".to_string()),
            input: input.and_then(|i| i.parse().ok()).unwrap_or_default(),
        })
    }
}

/// A named set of options, chosen by a benchmark (docs/BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The settings that gave the lowest word error rate in `scenequeue-bench transcription`.
    Transcription,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "transcription" => Ok(Self::Transcription),
            _ => Err(format!("unknown preset {s:?}: expected transcription")),
        }
    }
}

impl Preset {
    /// The options this preset pins (e.g. [`TRANSCRIPTION`]).
    pub fn options(self) -> BatchOptions {
        match self {
            Self::Transcription => TRANSCRIPTION,
        }
    }
}

/// The transcription preset (see `Preset::Transcription`): the chain with the lowest word error rate over every
/// noise and SNR of `scenequeue-bench transcription` (docs/BENCHMARKS.md): no attenuation limit (every limit
/// tried, 6 to 30 dB, raised the WER), no post-filter (raised it too), the 70 Hz high-pass. These are also the
/// defaults; the preset pins them whatever a worker's own defaults are. Loudness is left to the worker (the
/// recogniser normalises levels itself).
pub const TRANSCRIPTION: BatchOptions = BatchOptions {
    atten_lim_db: Some(100.0),
    post_filter_beta: Some(0.0),
    highpass_hz: Some(70.0),
    loudness_lufs: None,
};

impl BatchOptions {
    /// Each option of `self` that is set, else `base`'s.
    pub fn over(self, base: BatchOptions) -> BatchOptions {
        BatchOptions {
            atten_lim_db: self.atten_lim_db.or(base.atten_lim_db),
            post_filter_beta: self.post_filter_beta.or(base.post_filter_beta),
            highpass_hz: self.highpass_hz.or(base.highpass_hz),
            loudness_lufs: self.loudness_lufs.or(base.loudness_lufs),
        }
    }

    /// Checks every option that is set against its range, naming the first one out of it.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            ("attenuation limit (dB)", self.atten_lim_db, 0.0, f32::MAX, false),
            ("post-filter beta", self.post_filter_beta, 0.0, 1.0, true),
            ("high-pass cut-off (Hz)", self.highpass_hz, 0.0, 1000.0, true),
            ("loudness target (LUFS)", self.loudness_lufs, -70.0, 0.0, true),
        ];
        for (name, value, min, max, min_allowed) in checks {
            if let Some(v) = value
                && (!v.is_finite() || v > max || v < min || (v == min && !min_allowed))
            {
                let low = if min_allowed { "from" } else { "above" };
                let high = if max == f32::MAX { String::new() } else { format!(" up to {max}") };
                return Err(format!("{name} {v} is out of range: {low} {min}{high}"));
            }
        }
        Ok(())
    }

    /// The options stored on `batch`.
    pub async fn load(pool: &sqlx::PgPool, batch: BatchId) -> Result<Self, sqlx::Error> {
        sqlx::query_as("SELECT atten_lim_db, post_filter_beta, highpass_hz, loudness_lufs FROM batches WHERE id = $1")
            .bind(batch)
            .fetch_one(pool)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_layered() {
        assert!(BatchOptions::default().validate().is_ok());
        assert!(TRANSCRIPTION.validate().is_ok());
        let bad = BatchOptions { atten_lim_db: Some(0.0), ..BatchOptions::default() };
        assert!(bad.validate().is_err_and(|e| e.contains("attenuation limit")));
        let bad = BatchOptions { loudness_lufs: Some(3.0), ..BatchOptions::default() };
        assert!(bad.validate().is_err_and(|e| e.contains("loudness")));
        let bad = BatchOptions { post_filter_beta: Some(f32::NAN), ..BatchOptions::default() };
        assert!(bad.validate().is_err());
        let mine = BatchOptions { highpass_hz: Some(0.0), ..BatchOptions::default() };
        let layered = mine.over(TRANSCRIPTION);
        assert_eq!(layered.highpass_hz, Some(0.0));
        assert_eq!(layered.atten_lim_db, TRANSCRIPTION.atten_lim_db);
        assert_eq!("transcription".parse::<Preset>(), Ok(Preset::Transcription));
    }
}
