//! The generic waveform adapter with small models this test writes itself (ONNX protobuf, encoded by hand):
//! `y = gain * x` with input shapes [T], [1, T] and [B, T], and models that do not fit.

use crate::common::{ort_library, speech_like};
use scenequeue_worker::testing::model::{self, ModelError};
use scenequeue_worker::{Device, Runtime};
use std::path::{Path, PathBuf};

/// Minimal protobuf writer: just what an ONNX model needs.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) -> &mut Self {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
    fn int(&mut self, field: u64, v: u64) -> &mut Self {
        self.varint(field << 3).varint(v)
    }
    fn bytes(&mut self, field: u64, b: &[u8]) -> &mut Self {
        self.varint((field << 3) | 2).varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn msg(&mut self, field: u64, m: &Pb) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// A float tensor type; `dims` are names (symbolic) or sizes.
fn value_info(name: &str, dims: &[Result<&str, u64>]) -> Pb {
    let mut shape = Pb::default();
    for d in dims {
        let mut dim = Pb::default();
        match d {
            Ok(param) => dim.bytes(2, param.as_bytes()),
            Err(size) => dim.int(1, *size),
        };
        shape.msg(1, &dim);
    }
    let mut tensor = Pb::default();
    tensor.int(1, 1).msg(2, &shape);
    let mut ty = Pb::default();
    ty.msg(1, &tensor);
    let mut vi = Pb::default();
    vi.bytes(1, name.as_bytes()).msg(2, &ty);
    vi
}

/// `out = gain * in`, with the given input and output shapes; `extra_input` adds a second graph input.
fn gain_model(shape: &[Result<&str, u64>], gain: f32, extra_input: bool) -> Vec<u8> {
    let mut node = Pb::default();
    node.bytes(1, b"wav").bytes(1, b"gain").bytes(2, b"enhanced").bytes(3, b"scale").bytes(4, b"Mul");
    let mut init = Pb::default();
    init.int(2, 1).bytes(8, b"gain").bytes(9, &gain.to_le_bytes());
    let mut graph = Pb::default();
    graph.msg(1, &node).bytes(2, b"gain-model").msg(5, &init).msg(11, &value_info("wav", shape));
    if extra_input {
        graph.msg(11, &value_info("speaker", &[Err(1)]));
    }
    graph.msg(12, &value_info("enhanced", shape));
    let mut opset = Pb::default();
    opset.bytes(1, b"").int(2, 13);
    let mut model = Pb::default();
    model.int(1, 8).msg(8, &opset).bytes(2, b"scenequeue-test").msg(7, &graph);
    model.0
}

fn model_dir(name: &str, onnx: &[u8]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("sq-waveform-{name}-{}", std::process::id()));
    std::fs::create_dir_all(root.join(name)).unwrap();
    let manifest = format!("name = \"{name}\"\nadapter = \"waveform\"\nsample_rate = 16000\nmodel = \"model.onnx\"\n");
    std::fs::write(root.join(name).join("manifest.toml"), manifest).unwrap();
    std::fs::write(root.join(name).join("model.onnx"), onnx).unwrap();
    root
}

fn runtime() -> Runtime {
    Runtime::init(&ort_library(), Device::Cpu, 1).unwrap()
}

fn check_gain(root: &Path, name: &str) {
    let mut enhancer = model::load(&runtime(), root, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(enhancer.sample_rate(), 16_000);
    let x = speech_like(16_000, 2.0, 4);
    let y = enhancer.enhance(&x).unwrap();
    assert_eq!(y.len(), x.len());
    assert!(x.iter().zip(&y).all(|(a, b)| (a * 0.5 - b).abs() < 1e-6));
}

#[test]
fn waveform_models_of_every_accepted_shape_run() {
    for (name, shape) in
        [("flat", vec![Ok("T")]), ("single", vec![Err(1), Ok("T")]), ("batched", vec![Ok("B"), Ok("T")])]
    {
        let root = model_dir(name, &gain_model(&shape, 0.5, false));
        check_gain(&root, name);
        std::fs::remove_dir_all(root).ok();
    }
}

#[test]
fn models_that_do_not_fit_the_adapter_are_refused_at_load() {
    for (name, onnx, says) in [
        ("two-inputs", gain_model(&[Err(1), Ok("T")], 0.5, true), "2 inputs"),
        ("images", gain_model(&[Err(1), Err(3), Ok("H"), Ok("W")], 0.5, false), "[1, 3, -1, -1]"),
    ] {
        let root = model_dir(name, &onnx);
        let err = model::load(&runtime(), &root, name).err().expect("refused");
        assert!(matches!(err, ModelError::Mismatch { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("model.onnx") && text.contains(says), "{text}");
        std::fs::remove_dir_all(root).ok();
    }
}
