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

/// Checks `output` (at `rate` Hz) against an input whose speech-band level is `speech_in_db` and applies
/// `action`: `output` is what gets written afterwards. `original` appends the input to the vector it is given,
/// for `Original` (the input may no longer be held: a long scene is enhanced over it; an error there fails the
/// scene as a bad output, saying why). Err (with `Fail`) says what the check found.
pub fn settle_measured(
    speech_in_db: f32,
    output: &mut Vec<f32>,
    rate: u32,
    action: OnBadOutput,
    original: impl FnOnce(&mut Vec<f32>) -> Result<(), String>,
) -> Result<Checked, String> {
    let (problems, speech_out_db) = check::problems(speech_in_db, output, rate);
    if problems.is_empty() {
        return Ok(Checked { flags: Vec::new(), speech_in_db, speech_out_db });
    }
    let mut flags: Vec<OutputFlag> = problems.iter().copied().map(flag).collect();
    let found = || flags_text(&flags);
    match action {
        OnBadOutput::Fail => Err(format!(
            "the enhanced output failed its checks ({}): input speech band {speech_in_db:.1} dBFS, output \
             {speech_out_db:.1} dBFS",
            found()
        )),
        OnBadOutput::Flag => {
            check::replace_non_finite(output);
            Ok(Checked { flags, speech_in_db, speech_out_db })
        }
        OnBadOutput::Original => {
            output.clear();
            original(output).map_err(|why| {
                format!("the enhanced output failed its checks ({}) and the original: {why}", found())
            })?;
            check::replace_non_finite(output);
            flags.push(OutputFlag::Original);
            Ok(Checked { flags, speech_in_db, speech_out_db: speech_in_db })
        }
    }
}

fn flags_text(flags: &[OutputFlag]) -> String {
    flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(input: &[f32], output: &mut Vec<f32>, rate: u32, action: OnBadOutput) -> Result<Checked, String> {
        settle_measured(check::speech_band_db(input, rate), output, rate, action, |out| {
            out.extend_from_slice(input);
            Ok(())
        })
    }

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
