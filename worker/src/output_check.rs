//! What a worker does with an enhanced scene that fails its checks (`audio::check`): fail the scene, keep the
//! output flagged, or write the original audio in its place, flagged. The default keeps the output, flagged:
//! the checks cannot tell speech the model removed from loud noise it rightly removed (a scene of applause), so
//! nothing is replaced unasked; `status` and the scene list name every flagged scene, and `original` is one
//! setting away for a farm that prefers the noisy speech to none.

use scenequeue_audio::check::{self, OutputProblem};
use scenequeue_core::states::OutputFlag;
use serde::{Deserialize, Serialize};

/// The setting (`--on-bad-output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnBadOutput {
    /// The scene fails with what the check found.
    Fail,
    /// The output is kept (non-finite samples replaced by silence) and flagged.
    #[default]
    Flag,
    /// The original audio is written instead, flagged.
    Original,
}

impl std::str::FromStr for OnBadOutput {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail" => Ok(Self::Fail),
            "flag" => Ok(Self::Flag),
            "original" => Ok(Self::Original),
            _ => Err(format!("unknown bad-output action {s:?}: expected fail, flag or original")),
        }
    }
}

impl std::fmt::Display for OnBadOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fail => "fail",
            Self::Flag => "flag",
            Self::Original => "original",
        })
    }
}

/// What the checks decided for one scene: its flags and the speech-band levels measured, dBFS.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Empty when the output passed.
    pub flags: Vec<OutputFlag>,
    /// Speech-band level of the input.
    pub speech_in_db: f32,
    /// Speech-band level of what is written.
    pub speech_out_db: f32,
}

fn flag(problem: OutputProblem) -> OutputFlag {
    match problem {
        OutputProblem::NonFinite => OutputFlag::NonFinite,
        OutputProblem::Silent => OutputFlag::Silent,
        OutputProblem::SpeechCollapsed => OutputFlag::SpeechCollapsed,
    }
}

/// Checks `output` against `input` (both at `rate` Hz) and applies `action`: `output` is what gets written
/// afterwards. Err (with `Fail`) says what the check found.
pub fn settle(input: &[f32], output: &mut Vec<f32>, rate: u32, action: OnBadOutput) -> Result<Checked, String> {
    let speech_in_db = check::speech_band_db(input, rate);
    let (problems, speech_out_db) = check::problems(speech_in_db, output, rate);
    if problems.is_empty() {
        return Ok(Checked { flags: Vec::new(), speech_in_db, speech_out_db });
    }
    let mut flags: Vec<OutputFlag> = problems.iter().copied().map(flag).collect();
    match action {
        OnBadOutput::Fail => Err(format!(
            "the enhanced output failed its checks ({}): input speech band {speech_in_db:.1} dBFS, output \
             {speech_out_db:.1} dBFS",
            flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
        )),
        OnBadOutput::Flag => {
            check::replace_non_finite(output);
            Ok(Checked { flags, speech_in_db, speech_out_db })
        }
        OnBadOutput::Original => {
            output.clear();
            output.extend(input.iter().map(|&s| if s.is_finite() { s } else { 0.0 }));
            flags.push(OutputFlag::Original);
            Ok(Checked { flags, speech_in_db, speech_out_db: speech_in_db })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech() -> Vec<f32> {
        (0..48_000).map(|i| 0.3 * (2.0 * std::f32::consts::PI * 700.0 * i as f32 / 48_000.0).sin()).collect()
    }

    #[test]
    fn a_good_output_passes_unchanged() {
        let input = speech();
        let mut out: Vec<f32> = input.iter().map(|s| s * 0.5).collect();
        let before = out.clone();
        let checked = settle(&input, &mut out, 48_000, OnBadOutput::Fail).unwrap();
        assert!(checked.flags.is_empty());
        assert_eq!(out, before);
    }

    #[test]
    fn each_action_does_what_it_says() {
        let input = speech();
        let silent = vec![0.0f32; input.len()];
        let err = settle(&input, &mut silent.clone(), 48_000, OnBadOutput::Fail).unwrap_err();
        assert!(err.contains("silent"), "{err}");
        let mut kept = silent.clone();
        let flagged = settle(&input, &mut kept, 48_000, OnBadOutput::Flag).unwrap();
        assert_eq!(flagged.flags, vec![OutputFlag::Silent]);
        assert_eq!(kept, silent);
        let mut replaced = silent.clone();
        let original = settle(&input, &mut replaced, 48_000, OnBadOutput::Original).unwrap();
        assert_eq!(original.flags, vec![OutputFlag::Silent, OutputFlag::Original]);
        assert_eq!(replaced, input);
        let mut nan = input.clone();
        nan[5] = f32::NAN;
        let flagged = settle(&input, &mut nan, 48_000, OnBadOutput::Flag).unwrap();
        assert_eq!(flagged.flags, vec![OutputFlag::NonFinite]);
        assert!(nan.iter().all(|s| s.is_finite()));
    }
}
