//! What a scene says: the recogniser's text and timed segments, and the subtitle and manifest formats a
//! recording's transcript is written in (SRT, WebVTT, plain text, JSON Lines).

use serde::{Deserialize, Serialize};

/// Which audio the recogniser gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AsrInput {
    /// Per scene, the enhanced or the untouched audio, whichever the recogniser is surer of (the higher average
    /// log-probability over the tokens it kept; a version heard as no speech counts as sure, 0; the untouched one
    /// on a tie, and whenever the enhanced output failed its speech checks): both are transcribed.
    #[default]
    Auto,
    /// The enhanced scene, as written.
    #[value(name = "always", alias = "enhanced")]
    Enhanced,
    /// The untouched scene (the enhanced file is still written).
    #[value(name = "never", alias = "original")]
    Original,
}

impl AsrInput {
    /// The name stored and shown (`auto`, `enhanced`, `original`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Enhanced => "enhanced",
            Self::Original => "original",
        }
    }
}

impl std::str::FromStr for AsrInput {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "enhanced" | "always" => Ok(Self::Enhanced),
            "original" | "never" => Ok(Self::Original),
            _ => Err(format!("unknown recogniser input {s:?}: expected auto, enhanced (always) or original (never)")),
        }
    }
}

/// `auto`'s rule: whether the enhanced version's transcript, with average log-probability `enhanced`, is to be
/// kept over the untouched one's (`original`): only when the recogniser is strictly surer of it. A version heard as
/// no speech has 0, the highest possible, and wins over text: on the benchmark corpus, every scene where one
/// version was heard as nothing and the other as text, the text was wrong (docs/TRANSCRIPTION.md).
pub fn surer(enhanced: f32, original: f32) -> bool {
    enhanced > original
}

/// A stretch of speech and its text, times in seconds from the start of what was transcribed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The text, as the recogniser wrote it (Whisper's has a leading space).
    pub text: String,
    /// Average log-probability of the tokens of the window it came from.
    pub avg_logprob: f32,
    /// Its window's no-speech probability.
    pub no_speech_prob: f32,
    /// Its window's text's zlib compression ratio (high: a repetition loop).
    pub compression_ratio: f32,
}

/// What a stretch of audio says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The segments' text, joined and trimmed; empty when nothing was said.
    pub text: String,
    /// The timed segments.
    pub segments: Vec<Segment>,
    /// The language, as the recogniser's code (`en`, `de`, ...).
    pub language: String,
    /// Average log-probability over the tokens of the windows kept; 0 when none was (the recogniser heard no
    /// speech: every window was silence or a loop).
    pub avg_logprob: f32,
    /// The lowest no-speech probability of any window: low when some window holds speech.
    pub no_speech_prob: f32,
    /// Which audio the text is from (`enhanced` or `original`; None where the recogniser ran outside the farm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard: Option<AsrInput>,
    /// With `auto`, the average log-probability of the audio not chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_logprob: Option<f32>,
}

/// A subtitle cue: a segment placed on the recording's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// Start in the recording, seconds.
    pub start: f64,
    /// End in the recording, seconds.
    pub end: f64,
    /// The text, trimmed.
    pub text: String,
}

impl Cue {
    /// `segment` of a scene that starts `offset` seconds into its recording.
    pub fn placed(segment: &Segment, offset: f64) -> Self {
        Self { start: offset + segment.start, end: offset + segment.end, text: segment.text.trim().to_string() }
    }
}

/// The formats a transcript is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormat {
    /// SubRip subtitles (`.srt`).
    Srt,
    /// WebVTT subtitles (`.vtt`).
    Vtt,
    /// Plain text, one cue per line (`.txt`).
    Txt,
    /// JSON Lines, one object per scene or file (`.jsonl`).
    Jsonl,
}

impl TextFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Srt => "srt",
            Self::Vtt => "vtt",
            Self::Txt => "txt",
            Self::Jsonl => "jsonl",
        }
    }
}

/// Cues as SubRip: numbered blocks, `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
pub fn srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!("{}\n{} --> {}\n{}\n\n", i + 1, clock(cue.start, ','), clock(cue.end, ','), cue.text));
    }
    out
}

/// Cues as WebVTT: a header, then `HH:MM:SS.mmm --> HH:MM:SS.mmm` blocks.
pub fn vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        out.push_str(&format!("{} --> {}\n{}\n\n", clock(cue.start, '.'), clock(cue.end, '.'), cue.text));
    }
    out
}

/// Cues as plain text, one per line.
pub fn txt(cues: &[Cue]) -> String {
    cues.iter().map(|c| format!("{}\n", c.text)).collect()
}

/// `seconds` as `HH:MM:SS` and milliseconds after `separator`.
fn clock(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{separator}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues() -> Vec<Cue> {
        vec![
            Cue { start: 1.5, end: 3.25, text: "Hello there.".into() },
            Cue { start: 3661.004, end: 3662.0, text: "An hour later.".into() },
        ]
    }

    #[test]
    fn srt_numbers_cues_and_uses_commas() {
        assert_eq!(
            srt(&cues()),
            "1\n00:00:01,500 --> 00:00:03,250\nHello there.\n\n2\n01:01:01,004 --> 01:01:02,000\nAn hour later.\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_and_uses_dots() {
        let text = vtt(&cues());
        assert!(text.starts_with("WEBVTT\n\n00:00:01.500 --> 00:00:03.250\nHello there.\n\n"));
    }

    #[test]
    fn a_segment_is_placed_at_its_scene_s_offset() {
        let segment = Segment {
            start: 0.5,
            end: 2.0,
            text: " Hi.".into(),
            avg_logprob: -0.2,
            no_speech_prob: 0.01,
            compression_ratio: 1.0,
        };
        assert_eq!(Cue::placed(&segment, 60.0), Cue { start: 60.5, end: 62.0, text: "Hi.".into() });
    }
}
