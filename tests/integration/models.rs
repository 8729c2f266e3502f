//! The real models through the real ONNX Runtime: quality on real speech, and clear errors for bad model
//! directories.

use crate::common::{mix_at, model_dir, ort_library, speak};
use scenequeue_audio::level;
use scenequeue_worker::testing::model::{self, ModelError};
use scenequeue_worker::{Device, Runtime};
use std::path::Path;

fn runtime() -> Runtime {
    Runtime::init(&ort_library(), Device::Cpu, 1).expect("ONNX Runtime loads (run scripts/fetch-models.sh)")
}

/// Real speech from espeak-ng at `rate` Hz.
fn speech(dir: &Path, rate: u32) -> Vec<f32> {
    let text = "The quick brown fox jumps over the lazy dog. Enhancement should keep every word of this sentence.";
    speak(dir, text, 150, rate).iter().map(|s| s * 0.5).collect()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sq-models-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn nsnet2_48k_raises_the_snr_of_noisy_speech() {
    let dir = scratch("48k");
    let clean = speech(&dir, 48_000);
    let noisy = mix_at(&clean, 5.0, 11);
    let mut enhancer = model::load(&runtime(), &model_dir(), "nsnet2-48k").unwrap();
    assert_eq!(enhancer.sample_rate(), 48_000);
    let out = enhancer.enhance(&noisy).unwrap();
    assert_eq!(out.len(), noisy.len());
    let (before, after) = (level::snr_db(&clean, &noisy), level::snr_db(&clean, &out));
    assert!((before - 5.0).abs() < 0.1);
    assert!(after > before + 5.0, "SNR {before:.1} dB -> {after:.1} dB");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn nsnet2_16k_raises_the_snr_of_noisy_speech() {
    let dir = scratch("16k");
    let clean = speech(&dir, 16_000);
    let noisy = mix_at(&clean, 5.0, 12);
    let mut enhancer = model::load(&runtime(), &model_dir(), "nsnet2-16k").unwrap();
    let out = enhancer.enhance(&noisy).unwrap();
    let (before, after) = (level::snr_db(&clean, &noisy), level::snr_db(&clean, &out));
    assert!(after > before + 3.0, "SNR {before:.1} dB -> {after:.1} dB");
    std::fs::remove_dir_all(dir).ok();
}

fn fake_model_dir(name: &str, manifest: &str, file: &str, bytes: &[u8]) -> std::path::PathBuf {
    let root = scratch(name);
    std::fs::create_dir_all(root.join(name)).unwrap();
    std::fs::write(root.join(name).join("manifest.toml"), manifest).unwrap();
    std::fs::write(root.join(name).join(file), bytes).unwrap();
    root
}

#[test]
fn a_file_that_is_not_onnx_is_named_in_the_error() {
    let root = fake_model_dir(
        "broken",
        "name = \"broken\"\nadapter = \"nsnet2\"\nsample_rate = 48000\nmodel = \"model.onnx\"\n",
        "model.onnx",
        b"this is not a protobuf",
    );
    let err = model::load(&runtime(), &root, "broken").err().expect("loading fails");
    assert!(matches!(err, ModelError::Load { .. }), "{err}");
    assert!(err.to_string().contains("model.onnx"), "{err}");
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn a_model_that_does_not_fit_its_adapter_is_refused() {
    // The 16 kHz network (161 bins) declared as 48 kHz (513 bins).
    let bytes = std::fs::read(model_dir().join("nsnet2-16k/nsnet2-20ms-baseline.onnx")).unwrap();
    let root = fake_model_dir(
        "mislabelled",
        "name = \"mislabelled\"\nadapter = \"nsnet2\"\nsample_rate = 48000\nmodel = \"m.onnx\"\n",
        "m.onnx",
        &bytes,
    );
    let err = model::load(&runtime(), &root, "mislabelled").err().expect("loading fails");
    assert!(matches!(err, ModelError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("513"), "{err}");
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn manifest_problems_are_specific() {
    let root = fake_model_dir("typo", "name = \"typo\"\nadaptor = \"nsnet2\"\n", "x", b"");
    let err = model::manifest(&root, "typo").expect_err("bad manifest");
    assert!(err.to_string().contains("manifest.toml") && err.to_string().contains("adaptor"), "{err}");
    let missing = model::manifest(&root, "absent").expect_err("unknown model");
    assert!(missing.to_string().contains("typo"), "lists the available models: {missing}");
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn a_missing_runtime_library_is_a_clear_error() {
    // Whether or not another test of this process loaded the library first, the path asked for is named.
    let err = Runtime::init(Path::new("/nonexistent/libonnxruntime.so"), Device::Cpu, 1).expect_err("an error");
    assert!(err.to_string().contains("/nonexistent/libonnxruntime.so"), "{err}");
}

#[test]
fn deepfilternet3_names_a_broken_or_missing_graph() {
    let manifest = "name = \"dfn\"\nadapter = \"deepfilternet3\"\nsample_rate = 48000\nmodel = \"enc.onnx\"\n";
    let root = fake_model_dir("dfn", manifest, "enc.onnx", b"this is not a protobuf");
    let err = model::load(&runtime(), &root, "dfn").err().expect("loading fails");
    assert!(matches!(err, ModelError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("enc.onnx") && err.to_string().contains("cannot load as ONNX"), "{err}");

    // The encoder is fine, but the decoders beside it are missing.
    std::fs::copy(model_dir().join("deepfilternet3/enc.onnx"), root.join("dfn/enc.onnx")).unwrap();
    let err = model::load(&runtime(), &root, "dfn").err().expect("loading fails");
    assert!(matches!(err, ModelError::FileMissing { .. }), "{err}");
    assert!(err.to_string().contains("erb_dec.onnx"), "{err}");
    std::fs::remove_dir_all(root).ok();
}
