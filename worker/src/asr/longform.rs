//! A recording of any length, window by window, as faster-whisper walks it: each 30 s window decodes to
//! timestamped segments; the next window starts where the last finished segment ended (or after the window,
//! when it ended on a closed segment). Two guards keep invented text out: a window that is likely silence
//! (no-speech probability over 0.6 and an average log-probability under -1) is skipped, and so is a window
//! whose text repeats itself (its zlib compression ratio over 2.4), where Whisper loops on music and noise. A
//! segment of punctuation alone is dropped too. Up to these guards the walk is faster-whisper's: the same text
//! and segment times on the same samples and weights.

use super::features::{FRAME_S, Features, WINDOW_FRAMES};
use super::graphs::{Cross, Graphs};
use super::vocab::Vocabulary;
use super::{AsrError, Segment, greedy};
use std::io::Write;

/// Frames per timestamp step (the encoder halves the frame rate).
const FRAMES_PER_STEP: usize = 2;
/// Seconds per timestamp step.
const STEP_S: f64 = 0.02;
/// A window whose no-speech probability is above this ...
const NO_SPEECH: f32 = 0.6;
/// ... and whose average log-probability is below this is silence.
const LOW_LOGPROB: f64 = -1.0;
/// Text that compresses better than this is a loop, not speech.
const MAX_COMPRESSION: f64 = 2.4;

/// How a window's decoding was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Kept.
    Speech,
    /// Skipped as silence.
    Silence,
    /// Skipped as a repetition loop.
    Repetition,
}

/// A recording's windows, decoded.
pub struct Walk {
    /// The kept segments, in order.
    pub segments: Vec<Segment>,
    /// Each window's no-speech probability and verdict.
    pub windows: Vec<(f32, Verdict)>,
    /// Sum of the kept windows' token log-probabilities and their token count (with one end of text each).
    pub logprob: (f64, usize),
}

/// Decodes every window of `features` with the start-of-transcript sequence `sot`; `first` is the first window
/// already encoded (for language detection), if it was.
pub fn walk(
    graphs: &mut Graphs,
    vocab: &Vocabulary,
    features: &Features,
    sot: &[u32],
    mut first: Option<Cross>,
) -> Result<Walk, AsrError> {
    let content = features.content_frames();
    let mut out = Walk { segments: Vec::new(), windows: Vec::new(), logprob: (0.0, 0) };
    let mut seek = 0;
    while seek < content {
        let size = WINDOW_FRAMES.min(content - seek);
        let offset = seek as f64 * FRAME_S;
        let cross = match first.take() {
            Some(cross) if seek == 0 => cross,
            _ => graphs.encode(features.window(seek, size))?,
        };
        let decoded = greedy::decode(graphs, vocab, &cross, sot, 0)?;
        drop(cross);
        let avg = decoded.avg_logprob();
        let text = vocab.text(&decoded.tokens);
        let ratio = compression_ratio(text.trim());
        let verdict = if decoded.no_speech_prob > NO_SPEECH && avg < LOW_LOGPROB {
            Verdict::Silence
        } else if ratio > MAX_COMPRESSION {
            Verdict::Repetition
        } else {
            Verdict::Speech
        };
        out.windows.push((decoded.no_speech_prob, verdict));
        if verdict != Verdict::Speech {
            seek += size;
            continue;
        }
        out.logprob.0 += decoded.sum_logprob;
        out.logprob.1 += decoded.tokens.len() + 1;
        let (pieces, next) = split(&decoded.tokens, vocab.specials.timestamp_begin, seek, size);
        for (start, end, tokens) in pieces {
            let text = vocab.text(tokens);
            // Punctuation alone (" . . .") is what Whisper writes over hiss, never speech.
            if start == end || !text.chars().any(char::is_alphanumeric) {
                continue;
            }
            out.segments.push(Segment {
                start: offset + start,
                end: offset + end,
                text,
                avg_logprob: avg as f32,
                no_speech_prob: decoded.no_speech_prob,
                compression_ratio: ratio as f32,
            });
        }
        // A window must move the walk on, whatever the model said.
        seek = next.max(seek + 1);
    }
    Ok(out)
}

/// A segment of a window: start and end in seconds from the window's start, and its tokens.
type Piece<'a> = (f64, f64, &'a [u32]);

/// A window's tokens cut at its timestamps, and where the next window starts.
fn split(tokens: &[u32], begin: u32, seek: usize, size: usize) -> (Vec<Piece<'_>>, usize) {
    let is_time = |t: u32| t >= begin;
    let time = |t: u32| f64::from(t - begin) * STEP_S;
    let n = tokens.len();
    let single_ending = n >= 2 && !is_time(tokens[n - 2]) && is_time(tokens[n - 1]);
    let mut cuts: Vec<usize> = (1..n).filter(|&i| is_time(tokens[i]) && is_time(tokens[i - 1])).collect();
    if cuts.is_empty() {
        // No closed pair: the whole window is one segment, up to its last timestamp if there is one.
        let end = match tokens.iter().rev().find(|&&t| is_time(t)) {
            Some(&t) if t != begin => time(t),
            _ => size as f64 * FRAME_S,
        };
        return (vec![(0.0, end, tokens)], seek + size);
    }
    if single_ending {
        cuts.push(n);
    }
    let mut pieces = Vec::with_capacity(cuts.len());
    let mut from = 0;
    for &cut in &cuts {
        let slice = &tokens[from..cut];
        if let (Some(&first), Some(&last)) = (slice.first(), slice.last()) {
            pieces.push((time(first.max(begin)), time(last.max(begin)), slice));
        }
        from = cut;
    }
    let next = if single_ending {
        seek + size
    } else {
        seek + (tokens[from - 1].saturating_sub(begin) as usize) * FRAMES_PER_STEP
    };
    (pieces, next)
}

/// Bytes of `text` over bytes of its zlib compression (1 for an empty text).
pub fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 1.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = z.write_all(text.as_bytes()).and_then(|()| z.finish()).map(|v| v.len()).unwrap_or(0);
    if compressed == 0 { 1.0 } else { text.len() as f64 / compressed as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u32 = 50_363;

    #[test]
    fn closed_pairs_cut_segments_and_the_walk_moves_to_the_last_timestamp() {
        // <0.00> a b <1.00><1.00> c <2.40> d   (the last segment unfinished)
        let tokens = [T0, 10, 11, T0 + 50, T0 + 50, 12, T0 + 120, 13];
        let (pieces, next) = split(&tokens, T0, 0, 3000);
        assert_eq!(pieces.len(), 1);
        assert_eq!((pieces[0].0, pieces[0].1), (0.0, 1.0));
        assert_eq!(next, 100, "seeks to the end of the last closed segment (1.00 s = 100 frames)");
    }

    #[test]
    fn a_window_ending_on_a_closed_segment_moves_past_the_window() {
        let tokens = [T0 + 10, 10, T0 + 60, T0 + 60, 11, T0 + 200];
        let (pieces, next) = split(&tokens, T0, 500, 2000);
        assert_eq!(pieces.len(), 2);
        assert_eq!((pieces[1].0, pieces[1].1), (1.2, 4.0));
        assert_eq!(next, 2500);
    }

    #[test]
    fn repeated_text_compresses_far_better_than_speech() {
        let looped = "thank you. ".repeat(30);
        assert!(compression_ratio(&looped) > MAX_COMPRESSION);
        assert!(compression_ratio("Seven ships sailed to the northern harbour before dawn.") < MAX_COMPRESSION);
    }
}
