//! Word error rate: text normalised to lower-case words, word-level edit distance (substitutions, deletions and
//! insertions) against the reference, summed over utterances before dividing (so long and short ones weigh by
//! their words).

/// Lower-case words of `text`: letters and apostrophes kept, everything else separates words.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_alphabetic() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word-level Levenshtein distance between `reference` and `hypothesis`.
pub fn edits(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = diagonal + usize::from(r != h);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[hypothesis.len()]
}

/// Edits and reference words summed over utterances.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Word edits summed.
    pub edits: usize,
    /// Reference words summed.
    pub words: usize,
}

impl Tally {
    /// Adds one utterance: its reference text and what was recognised.
    pub fn add(&mut self, reference: &str, hypothesis: &str) {
        let reference = words(reference);
        self.edits += edits(&reference, &words(hypothesis));
        self.words += reference.len();
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: Tally) {
        self.edits += other.edits;
        self.words += other.words;
    }

    /// Word error rate in percent.
    pub fn wer(&self) -> f64 {
        100.0 * self.edits as f64 / self.words.max(1) as f64
    }
}

/// The share (percent) of the word errors that noise added which a chain took back: (noisy - chain) /
/// (noisy - clean); None when noise added none.
pub fn recovered(clean: f64, noisy: f64, chain: f64) -> Option<f64> {
    (noisy - clean > 0.5).then(|| 100.0 * (noisy - chain) / (noisy - clean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_errors_count_substitutions_deletions_and_insertions() {
        let r = words("The cat, sat on the mat.");
        assert_eq!(r, ["the", "cat", "sat", "on", "the", "mat"]);
        assert_eq!(edits(&r, &words("the cat sat on the mat")), 0);
        assert_eq!(edits(&r, &words("the bat sat on mat")), 2);
        assert_eq!(edits(&r, &words("the cat sat on the mat today")), 1);
        assert_eq!(edits(&r, &[]), 6);
        let mut t = Tally::default();
        t.add("a b c d", "a x c d");
        assert!((t.wer() - 25.0).abs() < 1e-9);
        assert_eq!(recovered(20.0, 60.0, 30.0), Some(75.0));
        assert_eq!(recovered(20.0, 20.0, 30.0), None);
    }
}
