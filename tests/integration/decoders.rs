//! Every route a recording can take, checked against the WAV original it was made from (by ffmpeg and sox):
//! Opus in Ogg, WebM and Matroska through libopus; AC-3, E-AC-3 and WMA through ffmpeg; spans read in one
//! forward pass equal spans read one by one; the sample alignment of every format; hashing while decoding; and
//! the refusal when ffmpeg is missing.

use crate::common::{TempDir, run};

use crate::common::{Noise, TestEnv, speech_like, submit_request, write_wav};
use scenequeue_audio::decode::{frame_energies_db, read_span_mono};
use scenequeue_audio::spans::SpanReader;
use scenequeue_audio::stream::Decoder;
use std::path::{Path, PathBuf};
use std::process::Command;

const RATE: u32 = 48_000;
const SECONDS: f64 = 12.0;

/// A scratch directory of this suite, removed when dropped.
fn scratch(name: &str) -> TempDir {
    TempDir::new("decoders", name)
}

fn ffmpeg(src: &Path, dst: &Path, args: &[&str]) {
    run(Command::new("ffmpeg").args(["-nostdin", "-loglevel", "error", "-y", "-i"]).arg(src).args(args).arg(dst));
}

/// Speech-like bursts plus a chirp repeating every 0.7 s (a sharp cross-correlation peak for lossy codecs), in
/// stereo at 48 kHz, and the mono mix it should decode to.
fn source(dir: &Path) -> (PathBuf, Vec<f32>) {
    let speech = speech_like(RATE, SECONDS, 3);
    let mut noise = Noise::new(11);
    let mono: Vec<f32> = speech
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let t = (i as f64 / f64::from(RATE)) % 0.7;
            let chirp = (2.0 * std::f64::consts::PI * (300.0 * t + 2500.0 * t * t)).sin() as f32;
            0.6 * s + 0.15 * chirp + 0.02 * noise.next()
        })
        .collect();
    let path = dir.join("source.wav");
    write_wav(&path, &mono, RATE, 2);
    // What the 16-bit file holds.
    let mono = mono.iter().map(|s| (s.clamp(-1.0, 1.0) * 32767.0).trunc() / 32768.0).collect();
    (path, mono)
}

/// Each format, the ffmpeg arguments that make it, whether it is lossless, and the decoder that must read it.
const FORMATS: &[(&str, &[&str], bool, Decoder)] = &[
    ("a.flac", &["-c:a", "flac"], true, Decoder::Symphonia),
    ("a.mkv", &["-c:a", "flac"], true, Decoder::Symphonia),
    ("a.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"], false, Decoder::Symphonia),
    ("a.ogg", &["-c:a", "libvorbis"], false, Decoder::Symphonia),
    ("a.m4a", &["-c:a", "aac", "-b:a", "128k"], false, Decoder::Symphonia),
    ("a.opus", &["-c:a", "libopus", "-b:a", "64k"], false, Decoder::Symphonia),
    ("a.webm", &["-c:a", "libopus", "-b:a", "64k"], false, Decoder::Symphonia),
    ("opus.mkv", &["-c:a", "libopus", "-b:a", "64k"], false, Decoder::Symphonia),
    ("a.ac3", &["-c:a", "ac3", "-b:a", "192k"], false, Decoder::Ffmpeg),
    ("eac3.mkv", &["-c:a", "eac3", "-b:a", "192k"], false, Decoder::Ffmpeg),
    ("a.wma", &["-c:a", "wmav2", "-b:a", "128k"], false, Decoder::Ffmpeg),
];

/// The delay (in samples, positive when `decoded` comes late) that best lines `decoded`, which should hold
/// `original` from `start` on, up with it, from the normalised cross-correlation over +-`max`; and that
/// correlation.
fn delay(original: &[f32], decoded: &[f32], start: usize, max: usize) -> (i64, f64) {
    let (offset, len) = (max, 24_000);
    let x = &decoded[offset..offset + len];
    let mut best = (0i64, f64::MIN);
    for d in -(max as i64)..=max as i64 {
        let from = (start + offset) as i64 - d;
        let y = &original[from as usize..from as usize + len];
        let (mut xy, mut yy) = (0.0f64, 0.0f64);
        for (a, b) in x.iter().zip(y) {
            xy += f64::from(*a) * f64::from(*b);
            yy += f64::from(*b) * f64::from(*b);
        }
        let score = xy / yy.sqrt().max(1e-9);
        if score > best.1 {
            best = (d, score);
        }
    }
    let xx: f64 = x.iter().map(|a| f64::from(*a) * f64::from(*a)).sum();
    (best.0, best.1 / xx.sqrt().max(1e-9))
}

/// The delays (in samples at 48 kHz) accepted per format, as documented in docs/SCHEDULING.md. Containers that
/// record the encoder delay (MP3's LAME header, Opus's pre-skip, Vorbis) line up exactly, Matroska included.
/// AAC in MP4 keeps its 1024 samples of encoder priming (symphonia does not apply the edit list). ffmpeg leaves
/// AC-3's and E-AC-3's 256-sample decoder delay in, and WMA comes out 2048 samples early, its seeks landing
/// within 2048.
fn accepted(name: &str) -> std::ops::RangeInclusive<i64> {
    match name {
        "a.m4a" => 1024..=1024,
        "a.ac3" | "eac3.mkv" => 256..=256,
        "a.wma" => -2048..=2048,
        _ => 0..=0,
    }
}

#[test]
fn every_format_decodes_in_line_with_the_wav_original() {
    let dir = scratch("align");
    let (wav, original) = source(&dir.0);
    let (mut report, mut wrong) = (Vec::new(), Vec::new());
    for &(name, args, lossless, decoder) in FORMATS {
        let path = dir.0.join(name);
        ffmpeg(&wav, &path, args);
        let (info, energies) = frame_energies_db(&path, 0.01).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((info.sample_rate, info.decoder), (RATE, decoder), "{name}");
        assert!((info.duration_s() - SECONDS).abs() < 0.1, "{name}: {} s", info.duration_s());
        assert!((energies.len() as f64 - SECONDS * 100.0).abs() < 10.0, "{name}: {} frames", energies.len());
        // The same span reached by decoding forward from an earlier one, and by seeking back from a later one.
        let at = 5 * RATE as usize;
        for (how, before) in [("forward", (4.0, 4.5)), ("seeked", (9.0, 9.5))] {
            let mut reader = SpanReader::new();
            reader.read(&path, Some(decoder), before.0, before.1).unwrap();
            let (got, rate) = reader.read(&path, Some(decoder), 5.0, 7.5).unwrap();
            assert_eq!((got.len(), rate), (120_000, RATE), "{name}");
            let (d, corr) = delay(&original, &got, at, 2400);
            let line = format!("{name} {how}: delay {d} samples, correlation {corr:.3}");
            let in_line = if lossless {
                scenequeue_audio::level::snr_db(&original[at..at + got.len()], &got) > 60.0
            } else {
                corr > 0.9 && accepted(name).contains(&d)
            };
            if !in_line {
                wrong.push(line.clone());
            }
            report.push(line);
        }
    }
    println!("{}", report.join("\n"));
    assert!(wrong.is_empty(), "out of line: {wrong:#?}");
}

#[test]
fn spans_read_in_one_pass_equal_spans_read_one_by_one() {
    let dir = scratch("spans");
    let (wav, _) = source(&dir.0);
    let spans = [(0.0, 0.7), (0.65, 1.9), (2.5, 3.0), (3.0, 3.3), (8.0, 11.9), (1.0, 2.0), (11.5, 12.0)];
    // ffmpeg's own seeking in a raw AC-3 stream lands within a few samples, not exactly: 25 dB there.
    let formats = [("s.wav", &[][..], 60.0), ("s.mkv", &["-c:a", "flac"][..], 60.0), ("s.ac3", &["-c:a", "ac3"], 25.0)];
    for (name, args, min_snr) in formats {
        let path = dir.0.join(name);
        if args.is_empty() {
            std::fs::copy(&wav, &path).unwrap();
        } else {
            ffmpeg(&wav, &path, args);
        }
        let mut reader = SpanReader::new();
        for &(start, end) in &spans {
            let (one_pass, _) = reader.read(&path, None, start, end).unwrap();
            let (alone, _) = read_span_mono(&path, start, end).unwrap();
            assert_eq!(one_pass.len(), alone.len(), "{name} {start}-{end}");
            let snr = scenequeue_audio::level::snr_db(&alone, &one_pass);
            assert!(snr > min_snr || one_pass == alone, "{name} {start}-{end}: SNR {snr:.1} dB");
        }
    }
}

#[test]
fn hashing_while_decoding_gives_the_hash_of_the_bytes() {
    let dir = scratch("hash");
    let (wav, _) = source(&dir.0);
    for (name, args) in [("h.mp3", &["-c:a", "libmp3lame"][..]), ("h.m4a", &["-c:a", "aac"][..]), ("h.ac3", &[][..])] {
        let path = dir.0.join(name);
        ffmpeg(&wav, &path, args);
        let (hash, cut) = scenequeue_scheduler::testing::cut_and_hash(&path, &Default::default(), None);
        assert!(cut.is_ok(), "{name}: {cut:?}");
        assert_eq!(hash.unwrap(), scenequeue_scheduler::testing::content_hash(&path).unwrap(), "{name}");
    }
    let text = dir.0.join("notes.mp3");
    std::fs::write(&text, "not audio\n".repeat(100)).unwrap();
    let (hash, cut) = scenequeue_scheduler::testing::cut_and_hash(&text, &Default::default(), None);
    assert!(cut.is_err());
    assert_eq!(hash.unwrap(), scenequeue_scheduler::testing::content_hash(&text).unwrap());
}

/// Runs this test binary's `test` again in a child process with `SCENEQUEUE_FFMPEG` pointing nowhere; the
/// child checks what it must see (`CHILD` set).
#[test]
fn without_ffmpeg_the_refusal_names_the_codec_and_how_to_enable_it() {
    const CHILD: &str = "SQ_DECODERS_NO_FFMPEG_DIR";
    if let Some(dir) = std::env::var_os(CHILD) {
        let dir = PathBuf::from(dir);
        let e = frame_energies_db(&dir.join("film.ac3"), 0.01).unwrap_err().to_string();
        assert!(e.contains("film.ac3") && e.contains("AC-3") && e.contains("without ffmpeg"), "{e}");
        assert!(e.contains("apt-get install ffmpeg") && e.contains("SCENEQUEUE_FFMPEG"), "{e}");
        // Opus needs no ffmpeg.
        assert!(frame_energies_db(&dir.join("talk.webm"), 0.01).is_ok());
        return;
    }
    let dir = scratch("noffmpeg");
    let (wav, _) = source(&dir.0);
    ffmpeg(&wav, &dir.0.join("film.ac3"), &["-c:a", "ac3"]);
    ffmpeg(&wav, &dir.0.join("talk.webm"), &["-c:a", "libopus"]);
    // This test's name as the harness knows it: its module path, less the crate's name.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let name = format!("{module}::without_ffmpeg_the_refusal_names_the_codec_and_how_to_enable_it");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--nocapture"])
        .env(CHILD, &dir.0)
        .env("SCENEQUEUE_FFMPEG", dir.0.join("no-such-dir/ffmpeg"))
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("1 passed"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_and_ffmpeg_recordings_are_enhanced_with_the_decoder_that_read_them() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let (wav, _) = source(&env.dir);
    ffmpeg(&wav, &input.join("talk.webm"), &["-c:a", "libopus"]);
    ffmpeg(&wav, &input.join("film.ac3"), &["-c:a", "ac3"]);
    ffmpeg(&wav, &input.join("song.mka"), &["-c:a", "flac"]);
    let (connection, publisher) = env.publisher().await;
    let req = submit_request(&env, vec![input], 300.0);
    let report = scenequeue_scheduler::submit(&env.pool, &publisher, &req).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert_eq!(report.media.len(), 3);
    let decoders: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT path, decoder, state::text FROM media WHERE batch_id = $1 ORDER BY path")
            .bind(report.batch)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let expected = [("film.ac3", "ffmpeg"), ("song.mka", "symphonia"), ("talk.webm", "symphonia")];
    for ((path, decoder, state), (name, want)) in decoders.iter().zip(expected) {
        assert!(path.ends_with(name) && decoder.as_deref() == Some(want) && state == "split", "{decoders:?}");
    }
    let worker = scenequeue_worker::run(env.worker_config(), env.services.clone(), Default::default()).await.unwrap();
    assert_eq!(worker.scenes_failed, 0);
    assert_eq!(worker.scenes_succeeded as usize, report.scenes);
    let per_file: Vec<(String, i64)> = sqlx::query_as(
        "SELECT m.path, count(r.scene_id) FROM media m JOIN scenes s ON s.media_id = m.id
         LEFT JOIN results r ON r.scene_id = s.id WHERE m.batch_id = $1 GROUP BY m.path ORDER BY m.path",
    )
    .bind(report.batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(per_file.len() == 3 && per_file.iter().all(|(_, n)| *n > 0), "{per_file:?}");
    env.cleanup().await;
}
