//! The ingest benchmark: a submission's per-recording work (hash, decode, cut) over a tree of recordings, done
//! the way a submission does it now (hashed while decoded: `ingest::cut_and_hash`) and the way it did before
//! (hashed, then decoded: `content_hash` then `cut`). Reported: seconds, and bytes read by this process (from
//! /proc/self/io) per byte of the tree. The files are in the page cache in both runs, so the time saved is what
//! the second read costs from memory; from a disk or a network share it costs a second transfer.

use anyhow::{Context, bail};
use scenequeue_scheduler::testing::{Entry, collect_inputs, content_hash, cut, cut_and_hash};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Where the tree is written (reused when present).
    #[arg(long, default_value = "bench-out/ingest")]
    dir: PathBuf,
    /// Copies of each format in the tree.
    #[arg(long, default_value_t = 60)]
    copies: usize,
    /// Length of each recording, seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
}

const RATE: u32 = 44_100;

fn bytes_read() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("rchar:"))?.trim().parse().ok()
}

fn make_tree(args: &Args) -> anyhow::Result<()> {
    let wav = args.dir.join("source.wav");
    let spec =
        hound::WavSpec { channels: 2, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&wav, spec)?;
    for s in crate::synth::speech_like(RATE, args.seconds, 5) {
        let v = (s.clamp(-1.0, 1.0) * 32767.0) as i16;
        w.write_sample(v)?;
        w.write_sample(v)?;
    }
    w.finalize()?;
    let tree = args.dir.join("tree");
    for (ext, codec) in
        [("wav", &[][..]), ("flac", &["-c:a", "flac"]), ("mp3", &["-c:a", "libmp3lame"]), ("m4a", &["-c:a", "aac"])]
    {
        let first = tree.join(format!("{ext}/0.{ext}"));
        std::fs::create_dir_all(tree.join(ext))?;
        if codec.is_empty() {
            std::fs::copy(&wav, &first)?;
        } else {
            let status = Command::new("ffmpeg")
                .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
                .arg(&wav)
                .args(codec)
                .arg(&first)
                .status()
                .context("running ffmpeg (install it: apt-get install ffmpeg)")?;
            if !status.success() {
                bail!("ffmpeg failed to write {}", first.display());
            }
        }
        for i in 1..args.copies {
            std::fs::copy(&first, tree.join(format!("{ext}/{i}.{ext}")))?;
        }
    }
    Ok(())
}

fn measure(files: &[PathBuf], total: u64, once: bool) -> anyhow::Result<(f64, f64)> {
    let before = bytes_read().context("/proc/self/io is not readable")?;
    let started = Instant::now();
    for path in files {
        if once {
            let (hash, cut) = cut_and_hash(path, &Default::default(), None);
            hash.context("hash")?;
            cut.map_err(anyhow::Error::msg)?;
        } else {
            content_hash(path).map_err(anyhow::Error::msg)?;
            cut(path, &Default::default(), None).map_err(anyhow::Error::msg)?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let read = bytes_read().context("/proc/self/io is not readable")? - before;
    Ok((seconds, read as f64 / total as f64))
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let tree = args.dir.join("tree");
    if !tree.exists() {
        make_tree(args)?;
    }
    let files: Vec<PathBuf> = collect_inputs(&[tree])?
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::Recording(path) => Some(path),
            Entry::Failed(..) => None,
        })
        .collect();
    let total: u64 = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    println!(
        "{} recordings, {:.0} MB, {:.1} h of audio:",
        files.len(),
        total as f64 / 1e6,
        files.len() as f64 * args.seconds / 3600.0
    );
    println!("| ingest | seconds | bytes read / bytes in the tree |");
    println!("|---|---|---|");
    // A warm-up pass so both runs find the tree in the page cache.
    measure(&files, total, true)?;
    for (name, once) in [("hash, then decode (before)", false), ("hash while decoding", true)] {
        let (seconds, ratio) = measure(&files, total, once)?;
        println!("| {name} | {seconds:.1} | {ratio:.2} |");
    }
    Ok(())
}
