//! The transcription benchmark's material, made here and the same on every run: espeak-ng reading texts whose
//! words are known, noises of several kinds, and mixtures at a chosen SNR. Everything at 48 kHz.

use crate::synth::Rng;
use anyhow::{Context, bail};
use scenequeue_audio::{decode, resample};
use std::path::Path;
use std::process::Command;

pub const RATE: u32 = 48_000;

/// What is read, one text per recording: everyday sentences in common words (all in the recogniser's
/// dictionary).
pub const TEXTS: [&str; 6] = [
    "The brown horse walked past the lazy dog while the farmer watched from the old wooden gate.",
    "Please call the office before noon if the train is late, and leave a short message for the manager.",
    "We need more time to finish the report, so the meeting will move to Thursday afternoon.",
    "Heavy rain fell across the northern valley last night, and several roads were closed until morning.",
    "She opened the window, looked at the quiet street below, and decided to walk to the market.",
    "The doctor asked the patient to take the medicine twice a day with a glass of warm water.",
];

/// Sentences no recogniser can have seen: `n` of them drawn from `seed` by a small grammar (determiner,
/// adjective, noun, verb, preposition, ...), grammatical but with word sequences of their own, so a recogniser's
/// language model cannot fill in what it did not hear.
pub fn generated(n: usize, seed: u64) -> Vec<String> {
    const DET: [&str; 4] = ["the", "a", "every", "one"];
    const ADJ: [&str; 12] = [
        "silver", "quiet", "narrow", "heavy", "yellow", "patient", "hollow", "careful", "distant", "broken", "gentle",
        "bitter",
    ];
    const NOUN: [&str; 16] = [
        "lantern", "harbour", "teacher", "basket", "engine", "garden", "window", "soldier", "letter", "mountain",
        "kitchen", "pilot", "ribbon", "carpet", "village", "merchant",
    ];
    const VERB: [&str; 10] = [
        "carried", "painted", "followed", "opened", "forgot", "measured", "borrowed", "repaired", "watched", "counted",
    ];
    const PREP: [&str; 6] = ["beside", "under", "behind", "across", "near", "above"];
    let mut rng = Rng::new(seed);
    let mut pick = |words: &[&'static str]| words[(rng.next_f64() * words.len() as f64) as usize % words.len()];
    (0..n)
        .map(|_| {
            let sentence = format!(
                "{} {} {} {} {} {} {} {} {} {} {}.",
                pick(&DET),
                pick(&ADJ),
                pick(&NOUN),
                pick(&VERB),
                pick(&DET),
                pick(&NOUN),
                pick(&PREP),
                pick(&DET),
                pick(&ADJ),
                pick(&NOUN),
                if pick(&["and", "while"]) == "and" { "and then left" } else { "while it rained" },
            );
            let mut chars = sentence.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
        })
        .collect()
}

/// Other voices reading other sentences: the babble noise.
const BABBLE: [(&str, &str); 4] = [
    ("en-us+m3", "Our team will present the new design to the board next week and then ask for more funding."),
    ("en-us+f2", "I think the children would enjoy a trip to the museum more than another afternoon at home."),
    ("en-gb", "The committee reviewed every proposal carefully but could not agree on a single winner."),
    ("en-us+m7", "Turn left at the second light, drive past the bakery, and park behind the blue building."),
];

/// Kinds of noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// Flat spectrum.
    White,
    /// -3 dB per octave, like much room and machine noise.
    Pink,
    /// Four other talkers at once.
    Babble,
    /// Music-like: a tune of decaying harmonic notes, with a chord under it.
    Music,
    /// The speech's own reverberation (a Schroeder reverberator, about 0.7 s): its level against the dry speech
    /// is the "SNR".
    Reverb,
}

impl std::str::FromStr for Noise {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "white" => Ok(Self::White),
            "pink" => Ok(Self::Pink),
            "babble" => Ok(Self::Babble),
            "music" => Ok(Self::Music),
            "reverb" => Ok(Self::Reverb),
            _ => bail!("unknown noise {s:?}: expected white, pink, babble, music or reverb"),
        }
    }
}

impl std::fmt::Display for Noise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::White => "white",
            Self::Pink => "pink",
            Self::Babble => "babble",
            Self::Music => "music",
            Self::Reverb => "reverb",
        })
    }
}

/// espeak-ng reading `text` with `voice` at 140 words per minute, at 48 kHz.
pub fn speak(dir: &Path, name: &str, voice: &str, text: &str) -> anyhow::Result<Vec<f32>> {
    let path = dir.join(format!("{name}.espeak.wav"));
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "140", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .context("cannot run espeak-ng (scripts/fetch-recogniser.sh installs it)")?;
    if !status.success() {
        bail!("espeak-ng failed ({status}) reading {text:?}");
    }
    let info = decode::probe(&path)?;
    let (x, rate) = decode::read_span_mono(&path, 0.0, info.duration_s())?;
    Ok(resample::resample(&x, rate, RATE)?)
}

/// The babble track: the four other talkers, each from its own offset, summed (looped to `len`).
pub fn babble_track(dir: &Path) -> anyhow::Result<Vec<f32>> {
    let voices: Vec<Vec<f32>> = BABBLE
        .iter()
        .enumerate()
        .map(|(i, (v, t))| speak(dir, &format!("babble-{i}"), v, t))
        .collect::<Result<_, _>>()?;
    let len = voices.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..len).map(|n| voices.iter().enumerate().map(|(i, v)| v[(n + i * len / 4) % v.len().max(1)]).sum()).collect())
}

/// Noise of `kind` for `clean` (as long as it), drawn from `seed` (babble: from `babble`, at an offset drawn from
/// it; reverb: `clean`'s own reverberation).
pub fn noise(kind: Noise, clean: &[f32], seed: u64, babble: &[f32]) -> Vec<f32> {
    let len = clean.len();
    let mut rng = Rng::new(seed);
    let mut white = move || (rng.next_f64() * 2.0 - 1.0) as f32;
    match kind {
        Noise::White => (0..len).map(|_| white()).collect(),
        Noise::Pink => {
            // Paul Kellet's economy filter: within 0.5 dB of -3 dB/octave above 10 Hz at 48 kHz.
            let (mut b0, mut b1, mut b2) = (0.0f32, 0.0f32, 0.0f32);
            (0..len)
                .map(|_| {
                    let w = white();
                    b0 = 0.99765 * b0 + w * 0.0990460;
                    b1 = 0.96300 * b1 + w * 0.2965164;
                    b2 = 0.57000 * b2 + w * 1.0526913;
                    b0 + b1 + b2 + w * 0.1848
                })
                .collect()
        }
        Noise::Babble => {
            let start = (Rng::new(seed).next_f64() * babble.len() as f64) as usize;
            (0..len).map(|n| babble.get((start + n) % babble.len().max(1)).copied().unwrap_or(0.0)).collect()
        }
        Noise::Music => music(len, seed),
        Noise::Reverb => reverb(clean),
    }
}

/// The late reverberation of `x`: four feedback combs in parallel (delays 29.7-43.7 ms, gains for a decay of
/// about 0.7 s to -60 dB), then two allpasses (5 and 1.7 ms), as in Schroeder's reverberator.
fn reverb(x: &[f32]) -> Vec<f32> {
    const RT60_S: f32 = 0.7;
    let delay = |ms: f32| (ms / 1000.0 * RATE as f32) as usize;
    let mut wet = vec![0f32; x.len()];
    for ms in [29.7f32, 37.1, 41.1, 43.7] {
        let d = delay(ms);
        let g = 10f32.powf(-3.0 * ms / 1000.0 / RT60_S);
        let mut y = vec![0f32; x.len()];
        for n in 0..x.len() {
            y[n] = x[n] + if n >= d { g * y[n - d] } else { 0.0 };
        }
        wet.iter_mut().zip(&y).for_each(|(w, v)| *w += v / 4.0);
    }
    for (ms, g) in [(5.0f32, 0.7f32), (1.7, 0.7)] {
        let d = delay(ms);
        let input = wet.clone();
        for n in 0..wet.len() {
            let (x_d, y_d) = if n >= d { (input[n - d], wet[n - d]) } else { (0.0, 0.0) };
            wet[n] = -g * input[n] + x_d + g * y_d;
        }
    }
    wet
}

/// A tune in A minor: notes of 0.2-0.6 s drawn from `seed`, three harmonics each, decaying, over a held chord.
fn music(len: usize, seed: u64) -> Vec<f32> {
    const SCALE: [f32; 8] = [220.0, 246.9, 261.6, 293.7, 329.6, 349.2, 392.0, 440.0];
    let mut rng = Rng::new(seed);
    let rate = RATE as f32;
    let mut out = vec![0f32; len];
    let mut at = 0;
    while at < len {
        let f = SCALE[(rng.next_f64() * SCALE.len() as f64) as usize % SCALE.len()] * 2.0;
        let n = ((0.2 + 0.4 * rng.next_f64()) * f64::from(RATE)) as usize;
        for (i, v) in out[at..(at + n).min(len)].iter_mut().enumerate() {
            let t = i as f32 / rate;
            let tone: f32 = (1..=3).map(|k| (std::f32::consts::TAU * f * k as f32 * t).sin() / k as f32).sum();
            *v += tone * (-4.0 * t).exp();
        }
        at += n;
    }
    for (i, v) in out.iter_mut().enumerate() {
        let t = i as f32 / rate;
        *v += 0.3 * [110.0f32, 130.8, 164.8].iter().map(|f| (std::f32::consts::TAU * f * t).sin()).sum::<f32>();
    }
    out
}

fn power(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64
}

/// `clean + g * noise` with g such that the SNR over the whole recording is `snr_db`.
pub fn mix(clean: &[f32], noise: &[f32], snr_db: f64) -> Vec<f32> {
    let g = (power(clean) / (power(noise).max(1e-20) * 10f64.powf(snr_db / 10.0))).sqrt() as f32;
    clean.iter().zip(noise).map(|(&c, &n)| c + g * n).collect()
}

/// Scales `x` so that its RMS is `db` dBFS.
pub fn set_level(x: &mut [f32], db: f64) {
    let g = (10f64.powf(db / 20.0) / power(x).sqrt().max(1e-10)) as f32;
    x.iter_mut().for_each(|v| *v *= g);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sentences_are_repeatable_and_differ() {
        let a = generated(6, 2026);
        assert_eq!(a, generated(6, 2026));
        assert_eq!(a.len(), 6);
        for s in &a {
            assert!(s.starts_with(char::is_uppercase) && s.ends_with('.') && s.split(' ').count() >= 12, "{s}");
        }
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), 6);
        println!("{a:#?}");
    }
}
