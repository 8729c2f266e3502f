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
    "The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden gate.",
    "Please call the office before noon if the train is late, and leave a short message for the manager.",
    "We need more time to finish the report, so the meeting will move to Thursday afternoon.",
    "Heavy rain fell across the northern valley last night, and several roads were closed until morning.",
    "She opened the window, looked at the quiet street below, and decided to walk to the market.",
    "The doctor asked the patient to take the medicine twice a day with a glass of warm water.",
];

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
}

impl std::str::FromStr for Noise {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "white" => Ok(Self::White),
            "pink" => Ok(Self::Pink),
            "babble" => Ok(Self::Babble),
            "music" => Ok(Self::Music),
            _ => bail!("unknown noise {s:?}: expected white, pink, babble or music"),
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

/// `len` samples of `kind` noise, drawn from `seed` (babble: from `babble`, at an offset drawn from it).
pub fn noise(kind: Noise, len: usize, seed: u64, babble: &[f32]) -> Vec<f32> {
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
    }
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
