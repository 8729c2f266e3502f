//! Scene detection with the Silero VAD model on real speech, through the same `cut` the scheduler uses.

use crate::common::{Noise, model_dir, ort_library, speak, write_wav};
use scenequeue_audio::scenes::SplitParams;
use scenequeue_scheduler::testing::cut;
use scenequeue_worker::SileroVad;
use scenequeue_worker::{Device, Runtime};

fn vad() -> SileroVad {
    let runtime = Runtime::init(&ort_library(), Device::Cpu, 1).unwrap();
    SileroVad::load(&runtime, &model_dir()).expect("Silero VAD model (scripts/fetch-models.sh)")
}

#[test]
fn silero_finds_each_sentence_and_ignores_a_loud_tone() {
    let dir = std::env::temp_dir().join(format!("sq-vad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sentences =
        ["The first sentence is short.", "Then a second one follows after a pause.", "And a third ends it."];
    let mut noise = Noise::new(3);
    let mut audio: Vec<f32> = Vec::new();
    let mut truth = Vec::new();
    for s in sentences {
        audio.extend((0..66_150).map(|_| 0.003 * noise.next()));
        let speech = speak(&dir, s, 175, 44_100);
        truth.push((audio.len() as f64 / 44_100.0, (audio.len() + speech.len()) as f64 / 44_100.0));
        audio.extend(speech.iter().map(|v| v * 0.5 + 0.003 * noise.next()));
    }
    audio.extend((0..66_150).map(|_| 0.003 * noise.next()));
    let tone_start = audio.len() as f64 / 44_100.0;
    // A steady loud tone after the speech: energy calls it voiced, a speech detector must not.
    audio.extend((0..44_100 * 4).map(|i| 0.3 * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / 44_100.0).sin()));
    let path = dir.join("talk.wav");
    write_wav(&path, &audio, 44_100, 1);

    let vad = vad();
    let by_vad = cut(&path, &SplitParams::default(), Some(&vad)).unwrap();
    assert_eq!(by_vad.scenes.len(), sentences.len(), "{:?} vs truth {truth:?}", by_vad.scenes);
    for (scene, (start, end)) in by_vad.scenes.iter().zip(&truth) {
        // Each scene holds its sentence (espeak-ng pads each with up to 0.3 s of silence) and none of the tone.
        assert!(scene.start_s <= start + 0.3 && scene.end_s >= end - 0.3, "{scene:?} vs {start}-{end}");
        // The tone's onset click may be scored as speech for a frame or two (and padded by 0.1 s); the 4 s of
        // tone itself must not.
        assert!(scene.end_s <= tone_start + 0.3, "{scene:?} reaches into the tone at {tone_start}");
    }
    let by_energy = cut(&path, &SplitParams::default(), None).unwrap();
    assert!(
        by_energy.scenes.iter().any(|s| s.end_s > tone_start + 1.0),
        "energy alone takes the tone for speech: {:?}",
        by_energy.scenes
    );

    // Only the tone: no speech at all.
    let tone = dir.join("tone.wav");
    write_wav(&tone, &audio[audio.len() - 44_100 * 4..], 44_100, 1);
    let err = cut(&tone, &SplitParams::default(), Some(&vad)).unwrap_err();
    assert!(err.contains("tone.wav") && err.contains("no speech found"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
