//! Sample recordings for the demo: sentences spoken by espeak-ng, resampled to 48 kHz by sox, laid out with
//! pauses, and mixed with pink noise (sox, repeatable with -R) at an exact SNR. The clean track is kept as the
//! reference that the report measures against.

use anyhow::{Context, bail};
use scenequeue_audio::{decode, encode};
use std::path::Path;
use std::process::Command;

const RATE: u32 = 48_000;

/// (file stem, espeak-ng voice, words per minute, sentences)
const RECORDINGS: &[(&str, &str, u32, &[&str])] = &[
    (
        "interview-part-1",
        "en-us",
        150,
        &[
            "Thank you for joining us today to talk about the archive project.",
            "We started digitising the tapes three years ago.",
            "Most of the recordings were made in small rooms with a lot of background noise.",
            "The goal is to make every interview searchable by its words.",
        ],
    ),
    (
        "field-notes",
        "en-gb",
        165,
        &[
            "Recording number twelve, near the river crossing.",
            "The wind is strong this morning, so the levels may vary.",
            "We counted forty two birds before the rain began.",
            "Tomorrow we move north and repeat the survey.",
        ],
    ),
    (
        "lecture-excerpt",
        "en-us+m3",
        140,
        &[
            "Today we look at how signals are sampled and stored.",
            "A sample rate of forty eight kilohertz captures everything we can hear.",
            "Noise reduction works best when speech and noise differ in their spectra.",
            "Let us begin with a simple example.",
        ],
    ),
];

/// The words spoken in the recording named `stem`.
pub fn spoken(stem: &str) -> Option<String> {
    RECORDINGS.iter().find(|(s, ..)| *s == stem).map(|(.., sentences)| sentences.join(" "))
}

fn tool(name: &str) -> anyhow::Result<()> {
    match Command::new(name).arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!("`{name}` is not installed; install it with: sudo apt-get install -y espeak-ng sox"),
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn read_all(path: &Path) -> anyhow::Result<Vec<f32>> {
    let info = decode::probe(path)?;
    let (x, rate) = decode::read_span_mono(path, 0.0, info.duration_s())?;
    if rate != RATE {
        bail!("{}: expected {RATE} Hz, got {rate}", path.display());
    }
    Ok(x)
}

/// Writes `input/<stem>.wav` (noisy) and `reference/<stem>.wav` (clean) for each sample recording.
pub fn generate(input_dir: &Path, reference_dir: &Path, snr_db: f64) -> anyhow::Result<()> {
    tool("espeak-ng")?;
    tool("sox")?;
    std::fs::create_dir_all(input_dir)?;
    std::fs::create_dir_all(reference_dir)?;
    let scratch = tempdir(input_dir)?;
    for (k, (stem, voice, wpm, sentences)) in RECORDINGS.iter().enumerate() {
        let gap = vec![0.0f32; (RATE as f32 * 0.7) as usize];
        let mut clean = vec![0.0f32; (RATE / 2) as usize];
        for (i, sentence) in sentences.iter().enumerate() {
            let raw = scratch.join(format!("{stem}-{i}-raw.wav"));
            let at48 = scratch.join(format!("{stem}-{i}.wav"));
            run(Command::new("espeak-ng").args(["-v", voice, "-s", &wpm.to_string(), "-w"]).arg(&raw).arg(sentence))?;
            run(Command::new("sox").arg("-R").arg(&raw).args(["-r", "48000", "-c", "1", "-b", "16"]).arg(&at48))?;
            clean.extend(read_all(&at48)?.iter().map(|s| s * 0.5));
            clean.extend_from_slice(&gap);
        }
        let noise_path = scratch.join(format!("{stem}-noise.wav"));
        let secs = format!("{:.3}", clean.len() as f64 / f64::from(RATE) + 0.1);
        run(Command::new("sox").args(["-R", "-n", "-r", "48000", "-c", "1", "-b", "16"]).arg(&noise_path).args([
            "synth",
            &secs,
            if k % 2 == 0 { "pinknoise" } else { "brownnoise" },
        ]))?;
        let noise = read_all(&noise_path)?;
        let noisy = mix(&clean, &noise, snr_db);
        encode::write_wav_pcm16(&reference_dir.join(format!("{stem}.wav")), &clean, RATE)?;
        encode::write_wav_pcm16(&input_dir.join(format!("{stem}.wav")), &noisy, RATE)?;
    }
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}

/// clean + g * noise, with g chosen so that the clean-to-noise power ratio is `snr_db`.
fn mix(clean: &[f32], noise: &[f32], snr_db: f64) -> Vec<f32> {
    let power = |x: &[f32]| x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len().max(1) as f64;
    let n = &noise[..clean.len().min(noise.len())];
    let gain = (power(clean) / (power(n).max(1e-20) * 10f64.powf(snr_db / 10.0))).sqrt() as f32;
    clean.iter().zip(n.iter().chain(std::iter::repeat(&0.0))).map(|(&c, &v)| c + gain * v).collect()
}

fn tempdir(near: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = near.join(format!(".scratch-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
