//! Whisper's tokens: `vocabulary.txt` (one token per line, in GPT-2's byte-level spelling, the line number its
//! id) and `config.json` (the tokens suppressed while decoding), as CTranslate2 model directories ship them.

use super::AsrError;
use std::collections::HashMap;
use std::path::Path;

/// The special tokens decoding needs, looked up by their spelling.
#[derive(Debug, Clone)]
pub struct Specials {
    /// End of text: decoding stops here; every id from here on is not text.
    pub eot: u32,
    /// Start of a transcript.
    pub sot: u32,
    /// Transcribe (rather than translate).
    pub transcribe: u32,
    /// The no-speech token, whose probability after `sot` says whether a window holds speech.
    pub no_speech: u32,
    /// Asks for text without timestamps (suppressed: scenequeue always asks for them).
    pub no_timestamps: u32,
    /// `<|0.00|>`: the first timestamp token; each next one is 20 ms later.
    pub timestamp_begin: u32,
    /// Language tokens (`en`, `de`, ...), empty for English-only models.
    pub languages: Vec<(String, u32)>,
}

/// Token ids to text, and the special ids.
pub struct Vocabulary {
    pieces: Vec<Vec<u8>>,
    /// The special tokens.
    pub specials: Specials,
    /// Tokens never generated (non-speech symbols and the control tokens).
    pub suppress: Vec<u32>,
    /// Tokens not generated first (a blank and the end of text).
    pub suppress_begin: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Config {
    suppress_ids: Vec<u32>,
    suppress_ids_begin: Vec<u32>,
}

impl Vocabulary {
    /// Reads `vocabulary.txt` and `config.json` from a model directory.
    pub fn load(dir: &Path) -> Result<Self, AsrError> {
        let path = dir.join("vocabulary.txt");
        let text = std::fs::read_to_string(&path).map_err(|e| AsrError::file(&path, e))?;
        let unbyte = byte_decoder();
        let lines: Vec<&str> = text.lines().collect();
        let ids: HashMap<&str, u32> = lines.iter().enumerate().map(|(id, &line)| (line, id as u32)).collect();
        let pieces =
            lines.iter().map(|line| line.chars().map(|c| unbyte.get(&c).copied().unwrap_or(b'?')).collect()).collect();
        let find = |token: &str| {
            ids.get(token)
                .copied()
                .ok_or_else(|| AsrError::Invalid { path: path.clone(), reason: format!("no {token} token") })
        };
        let translate = find("<|translate|>")?;
        let sot = find("<|startoftranscript|>")?;
        let specials = Specials {
            eot: find("<|endoftext|>")?,
            sot,
            transcribe: find("<|transcribe|>")?,
            no_speech: find("<|nospeech|>").or_else(|_| find("<|nocaptions|>"))?,
            no_timestamps: find("<|notimestamps|>")?,
            timestamp_begin: find("<|0.00|>")?,
            languages: (sot + 1..translate)
                .filter_map(|id| {
                    let line = lines.get(id as usize)?;
                    Some((line.strip_prefix("<|")?.strip_suffix("|>")?.to_string(), id))
                })
                .collect(),
        };
        let config_path = dir.join("config.json");
        let config_text = std::fs::read_to_string(&config_path).map_err(|e| AsrError::file(&config_path, e))?;
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|e| AsrError::Invalid { path: config_path, reason: e.to_string() })?;
        Ok(Self { pieces, specials, suppress: config.suppress_ids, suppress_begin: config.suppress_ids_begin })
    }

    /// How many tokens there are.
    pub fn size(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the model knows several languages (English-only models have no language to choose).
    pub fn multilingual(&self) -> bool {
        self.specials.eot > 50_256 || self.pieces.len() > 51_864
    }

    /// The text of `tokens`, special and timestamp tokens left out; invalid UTF-8 (a character cut between
    /// windows) becomes U+FFFD.
    pub fn text(&self, tokens: &[u32]) -> String {
        let bytes: Vec<u8> = tokens
            .iter()
            .filter(|&&t| t < self.specials.eot)
            .filter_map(|&t| self.pieces.get(t as usize))
            .flatten()
            .copied()
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The id of a language's token (`en`, `de`, ...).
    pub fn language(&self, code: &str) -> Option<u32> {
        self.specials.languages.iter().find(|(c, _)| c == code).map(|&(_, id)| id)
    }
}

#[cfg(test)]
impl Vocabulary {
    /// An English-only vocabulary of `text` plain tokens (ids from 0), then tiny.en's special tokens laid out as
    /// from `eot = text`, and `times` timestamp tokens.
    pub fn for_tests(text: u32, times: u32) -> Self {
        let eot = text;
        let specials = Specials {
            eot,
            sot: eot + 1,
            transcribe: eot + 3,
            no_speech: eot + 4,
            no_timestamps: eot + 5,
            timestamp_begin: eot + 6,
            languages: Vec::new(),
        };
        let pieces = (0..eot + 6 + times).map(|i| format!("t{i}").into_bytes()).collect();
        Self { pieces, specials, suppress: vec![eot + 1, eot + 2, eot + 3, eot + 4], suppress_begin: vec![0, eot] }
    }
}

/// GPT-2's byte-level spelling undone: the character that stands for each byte.
fn byte_decoder() -> HashMap<char, u8> {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut map = HashMap::new();
    let mut shifted = 0;
    for b in 0u32..256 {
        let c = if printable(b) {
            b
        } else {
            shifted += 1;
            255 + shifted
        };
        if let Some(c) = char::from_u32(c) {
            map.insert(c, b as u8);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_spelling_is_undone() {
        let unbyte = byte_decoder();
        assert_eq!(unbyte.len(), 256);
        assert_eq!(unbyte[&'Ġ'], b' ');
        assert_eq!(unbyte[&'Ċ'], b'\n');
        assert_eq!(unbyte[&'a'], b'a');
    }
}
