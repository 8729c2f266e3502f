//! Decoding what a backlog holds, through the same calls the scheduler and workers use, and a clear error for
//! each kind of bad input. Fixtures are made with sox and ffmpeg (installed by scripts/test.sh).

use crate::common::{TempDir, run};

use crate::common::{TestEnv, speech_like, submit_request, write_wav};
use scenequeue_audio::decode::{frame_energies_db, probe, read_span_mono};
use scenequeue_audio::level::{rms_db, snr_db};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory of this suite, removed when dropped.
fn scratch(name: &str) -> TempDir {
    TempDir::new("formats", name)
}

/// A 12 s stereo 44.1 kHz source and the mono mix it should decode to.
fn source(dir: &Path) -> (PathBuf, Vec<f32>) {
    let mono = speech_like(44_100, 12.0, 9);
    let path = dir.join("source.wav");
    write_wav(&path, &mono, 44_100, 2);
    (path, mono)
}

fn ffmpeg(src: &Path, dst: &Path, args: &[&str]) {
    run(Command::new("ffmpeg").args(["-nostdin", "-loglevel", "error", "-y", "-i"]).arg(src).args(args).arg(dst));
}

fn sox(src: &Path, dst: &Path, args: &[&str]) {
    run(Command::new("sox").arg("-R").arg(src).args(args).arg(dst));
}

/// Checks duration, streaming energies and a span read after a seek, against the original.
fn check(path: &Path, original: &[f32], lossless: bool) {
    let (info, energies) = frame_energies_db(path, 0.01).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(info.sample_rate, 44_100, "{}", path.display());
    assert!((info.duration_s() - 12.0).abs() < 0.1, "{}: {} s", path.display(), info.duration_s());
    assert!((energies.len() as f64 - 1200.0).abs() < 10.0, "{}: {} frames", path.display(), energies.len());
    let (span, rate) = read_span_mono(path, 5.0, 7.5).unwrap();
    assert_eq!((span.len(), rate), (110_250, 44_100));
    let reference = &original[5 * 44_100..5 * 44_100 + 110_250];
    if lossless {
        assert!(snr_db(reference, &span) > 60.0, "{}: SNR {}", path.display(), snr_db(reference, &span));
    } else {
        assert!((rms_db(reference) - rms_db(&span)).abs() < 1.0, "{}", path.display());
    }
}

#[test]
fn common_containers_and_codecs_decode_with_seeking() {
    let dir = scratch("ok");
    let (wav, mono) = source(&dir.0);
    check(&wav, &mono, true);
    for (name, lossless) in [("a.flac", true), ("a.ogg", false), ("a.mp3", false)] {
        let out = dir.0.join(name);
        sox(&wav, &out, &[]);
        check(&out, &mono, lossless);
    }
    for (name, args, lossless) in [
        ("a.m4a", &["-c:a", "aac", "-b:a", "128k"][..], false),
        ("a.mp4", &["-c:a", "aac", "-b:a", "96k"][..], false),
        ("a.mkv", &["-c:a", "flac"][..], true),
        ("a.mka", &["-c:a", "libvorbis"][..], false),
    ] {
        let out = dir.0.join(name);
        ffmpeg(&wav, &out, args);
        check(&out, &mono, lossless);
    }
}

/// Writes one file of each kind of bad input into `dir`.
fn bad_inputs(dir: &Path, wav: &Path) {
    let bytes = std::fs::read(wav).unwrap();
    std::fs::write(dir.join("empty.wav"), b"").unwrap();
    std::fs::write(dir.join("truncated.wav"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(dir.join("notes.mp3"), "just some text, not audio at all\n".repeat(50)).unwrap();
    let mut absurd = bytes.clone();
    absurd[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(dir.join("absurd.wav"), &absurd).unwrap();
    write_wav(&dir.join("silent.wav"), &vec![0.0; 44_100 * 3], 44_100, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_every_kind_of_bad_input_stores_each_reason_and_enhances_the_rest() {
    let env = TestEnv::new().await;
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let (wav, _) = source(&env.dir);
    bad_inputs(&input, &wav);
    sox(&wav, &input.join("good.flac"), &[]);
    let (connection, publisher) = env.publisher().await;
    let req = submit_request(&env, vec![input], 300.0);
    let report = scenequeue_scheduler::submit(&env.pool, &publisher, &req).await.unwrap();
    connection.close(200, "ok").await.ok();
    assert_eq!(report.media.len(), 6);
    let worker = scenequeue_worker::run(env.worker_config(), env.services.clone(), Default::default()).await.unwrap();
    assert!(worker.scenes_succeeded > 0 && worker.scenes_failed == 0);

    let status = scenequeue_scheduler::status(&env.pool, Some(report.batch)).await.unwrap();
    let failed: Vec<String> = status.failed_media.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(failed.len(), 5, "{failed:#?}");
    for (file, says) in [
        ("empty.wav", "holds no audio"),
        ("truncated.wav", "truncated"),
        ("notes.mp3", "notes.mp3"),
        ("absurd.wav", "absurd.wav"),
        ("silent.wav", "silent"),
    ] {
        assert!(failed.iter().any(|e| e.contains(file) && e.contains(says)), "{file}: {failed:#?}");
    }
    assert_eq!(status.media.iter().find(|(s, _)| s == "split").map(|(_, n)| *n), Some(1));
    assert_eq!(
        scenequeue_core::db::batch_state(&env.pool, report.batch).await.unwrap(),
        Some(scenequeue_core::states::BatchState::Finished)
    );
    env.cleanup().await;
}

fn error_of(path: &Path) -> String {
    frame_energies_db(path, 0.01).err().unwrap_or_else(|| panic!("{} decoded", path.display())).to_string()
}

#[test]
fn bad_inputs_get_specific_errors() {
    let dir = scratch("bad");
    let (wav, _) = source(&dir.0);
    let bytes = std::fs::read(&wav).unwrap();

    let empty = dir.0.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert!(error_of(&empty).contains("holds no audio"), "{}", error_of(&empty));

    let truncated = dir.0.join("truncated.wav");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let e = error_of(&truncated);
    assert!(e.contains("truncated.wav") && e.contains("truncated"), "{e}");

    let text = dir.0.join("notes.mp3");
    std::fs::write(&text, "just some text, not audio at all\n".repeat(50)).unwrap();
    let e = error_of(&text);
    assert!(
        e.contains("notes.mp3") && (e.contains("not a recognised audio container") || e.contains("not readable")),
        "{e}"
    );

    // A WAV header claiming 4 billion samples per second.
    let mut absurd = bytes.clone();
    absurd[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    let absurd_path = dir.0.join("absurd.wav");
    std::fs::write(&absurd_path, &absurd).unwrap();
    let e = error_of(&absurd_path);
    assert!(e.contains("absurd.wav"), "{e}");

    let silent = dir.0.join("silent.flac");
    write_wav(&dir.0.join("silent.wav"), &vec![0.0; 44_100 * 3], 44_100, 1);
    sox(&dir.0.join("silent.wav"), &silent, &[]);
    let (info, _) = frame_energies_db(&silent, 0.01).unwrap();
    assert!((info.duration_s() - 3.0).abs() < 0.01);
    let cut = scenequeue_scheduler::testing::cut(&silent, &Default::default(), None).unwrap_err();
    assert!(cut.contains("silent.flac") && cut.contains("silent"), "{cut}");

    // The good file still decodes: nothing above is sticky.
    assert!(probe(&wav).is_ok());
}
