//! Greedy decoding of one window with Whisper's rules on the logits: no blank or end of text first, the
//! suppressed tokens never, and timestamps in pairs that never go back, the first within a second of the window's
//! start, forced whenever the timestamps together are likelier than any text token.

use super::AsrError;
use super::graphs::{Cross, Graphs};
use super::vocab::Vocabulary;

/// The latest first timestamp, in 20 ms steps (1 s, as Whisper and faster-whisper default to).
const MAX_INITIAL_TIMESTAMP: u32 = 50;

/// What one window decoded to.
pub struct Decoded {
    /// The generated tokens, without the end of text.
    pub tokens: Vec<u32>,
    /// Sum of the chosen tokens' log-probabilities, the end of text included.
    pub sum_logprob: f64,
    /// Probability of the no-speech token right after the start of the transcript.
    pub no_speech_prob: f32,
}

impl Decoded {
    /// The average log-probability per token, counted as faster-whisper counts it (the end of text as one more).
    pub fn avg_logprob(&self) -> f64 {
        self.sum_logprob / (self.tokens.len() + 1) as f64
    }
}

/// Decodes greedily after `prompt`, whose token at `sot_index` is the start of the transcript.
pub fn decode(
    graphs: &mut Graphs,
    vocab: &Vocabulary,
    cross: &Cross,
    prompt: &[u32],
    sot_index: usize,
) -> Result<Decoded, AsrError> {
    let width = graphs.shape.vocabulary;
    let budget = graphs.shape.max_tokens.saturating_sub(prompt.len());
    let mut past = graphs.start()?;
    let mut feed = prompt.to_vec();
    let mut tokens = Vec::new();
    let mut sum_logprob = 0.0;
    let mut no_speech_prob = 0.0;
    while tokens.len() < budget {
        let (logits, next) = graphs.step(cross, past, &feed)?;
        past = next;
        if tokens.is_empty() {
            let at_sot = &logits[sot_index * width..(sot_index + 1) * width];
            no_speech_prob = softmax_at(at_sot, vocab.specials.no_speech as usize);
        }
        let mut last = logits[(feed.len() - 1) * width..feed.len() * width].to_vec();
        apply_rules(&mut last, &tokens, vocab);
        let logprobs = log_softmax(&last);
        let (best, &logprob) = logprobs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .ok_or_else(|| AsrError::Shape("empty logits".into()))?;
        sum_logprob += f64::from(logprob);
        let best = best as u32;
        if best == vocab.specials.eot {
            break;
        }
        tokens.push(best);
        feed = vec![best];
    }
    Ok(Decoded { tokens, sum_logprob, no_speech_prob })
}

/// Masks the logits of the next token after `generated` (the tokens after the prompt).
fn apply_rules(logits: &mut [f32], generated: &[u32], vocab: &Vocabulary) {
    let s = &vocab.specials;
    let (eot, begin) = (s.eot as usize, s.timestamp_begin as usize);
    if generated.is_empty() {
        ban(logits, vocab.suppress_begin.iter().map(|&t| t as usize));
    }
    ban(logits, vocab.suppress.iter().map(|&t| t as usize));
    ban(logits, std::iter::once(s.no_timestamps as usize));

    let is_time = |t: u32| t >= s.timestamp_begin;
    let n = generated.len();
    let last_was_time = n >= 1 && is_time(generated[n - 1]);
    let penultimate_was_time = n < 2 || is_time(generated[n - 2]);
    if last_was_time {
        if penultimate_was_time {
            // A pair is closed: text next.
            ban(logits, begin..usize::MAX);
        } else {
            // A segment's end: another timestamp or the end of text, no text.
            ban(logits, 0..eot);
        }
    }
    if let Some(&last_time) = generated.iter().rev().find(|&&t| is_time(t)) {
        // Timestamps never go back; the closing one of a segment may repeat its start.
        let floor = if last_was_time && !penultimate_was_time { last_time } else { last_time + 1 };
        ban(logits, begin..floor as usize);
    }
    if generated.is_empty() {
        ban(logits, 0..begin);
        ban(logits, begin + MAX_INITIAL_TIMESTAMP as usize + 1..usize::MAX);
    }
    let logprobs = log_softmax(logits);
    let (text, times) = logprobs.split_at(begin.min(logprobs.len()));
    let time_mass = log_sum_exp(times);
    let best_text = text.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if time_mass > best_text {
        ban(logits, 0..begin);
    }
}

/// Makes the tokens `ids` impossible.
fn ban(logits: &mut [f32], ids: impl IntoIterator<Item = usize>) {
    let len = logits.len();
    for id in ids.into_iter().take_while(|&id| id < len) {
        logits[id] = f32::NEG_INFINITY;
    }
}

fn log_sum_exp(x: &[f32]) -> f32 {
    let top = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if top == f32::NEG_INFINITY {
        return top;
    }
    top + x.iter().map(|&v| (v - top).exp()).sum::<f32>().ln()
}

fn log_softmax(x: &[f32]) -> Vec<f32> {
    let total = log_sum_exp(x);
    x.iter().map(|&v| v - total).collect()
}

fn softmax_at(x: &[f32], index: usize) -> f32 {
    x.get(index).map_or(0.0, |&v| (v - log_sum_exp(x)).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: u32 = 10;
    const TIMES: u32 = 100;

    /// The tokens the rules leave possible after `generated`, from logits that favour text and the end of text
    /// (so that timestamps are not forced by their mass).
    fn allowed(generated: &[u32]) -> Vec<u32> {
        let vocab = Vocabulary::for_tests(TEXT, TIMES);
        let mut logits: Vec<f32> = (0..vocab.size() as u32).map(|t| if t <= TEXT { 10.0 } else { 0.0 }).collect();
        apply_rules(&mut logits, generated, &vocab);
        (0..logits.len() as u32).filter(|&t| logits[t as usize].is_finite()).collect()
    }

    #[test]
    fn a_window_starts_with_a_timestamp_within_its_first_second() {
        let begin = TEXT + 6;
        assert_eq!(allowed(&[]), (begin..=begin + MAX_INITIAL_TIMESTAMP).collect::<Vec<_>>());
    }

    #[test]
    fn timestamps_come_in_pairs_and_never_go_back() {
        let begin = TEXT + 6;
        // After the opening timestamp: text or the end, no timestamp.
        let after_open = allowed(&[begin + 3]);
        assert_eq!(after_open, (0..=TEXT).collect::<Vec<_>>());
        // After text then a timestamp: a closing pair's second timestamp (not before it) or the end, no text.
        let closing = allowed(&[begin + 3, 5, begin + 40]);
        assert!(closing.contains(&TEXT) && closing.contains(&(begin + 40)) && !closing.contains(&(begin + 39)));
        assert!(closing.iter().all(|&t| t == TEXT || t >= begin + 40), "{closing:?}");
        // After a closed pair: text or the end; no timestamp may come.
        let after_pair = allowed(&[begin + 3, 5, begin + 40, begin + 40]);
        assert_eq!(after_pair, (0..=TEXT).collect::<Vec<_>>());
    }

    #[test]
    fn timestamps_are_forced_when_together_they_are_likelier_than_any_text() {
        let vocab = Vocabulary::for_tests(TEXT, TIMES);
        let begin = TEXT + 6;
        let mut logits = vec![0.0f32; vocab.size()];
        apply_rules(&mut logits, &[begin + 1, 5], &vocab);
        let open: Vec<u32> = (0..logits.len() as u32).filter(|&t| logits[t as usize].is_finite()).collect();
        assert!(open.iter().all(|&t| t >= begin + 2), "{open:?}");
    }

    #[test]
    fn suppressed_tokens_never_come() {
        let begin = TEXT + 6;
        let later = allowed(&[begin + 1, 5]);
        assert!((TEXT + 1..begin).all(|t| !later.contains(&t)), "{later:?}");
        // The begin-only suppression (a blank first) is lifted once text came.
        assert!(later.contains(&0));
    }

    #[test]
    fn log_softmax_sums_to_one_and_keeps_masked_tokens_impossible() {
        let lp = log_softmax(&[1.0, 2.0, f32::NEG_INFINITY, 0.5]);
        let total: f32 = lp.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(lp[2], f32::NEG_INFINITY);
        assert!((softmax_at(&[0.0, 0.0], 1) - 0.5).abs() < 1e-6);
    }
}
