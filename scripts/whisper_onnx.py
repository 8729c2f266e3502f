#!/usr/bin/env python3
"""Converts a Whisper model in CTranslate2 form (model.bin) into two ONNX graphs that scenequeue's worker runs
through the same ONNX Runtime sessions as its enhancers.

    whisper_onnx.py MODEL_DIR OUT_DIR

encoder.onnx
    in   mel      float32 [batch, 80 or 128, 3000]  log-mel features of one 30 s window
    out  cross_k  float32 [layers, batch, 1500, width]  each decoder layer's cross-attention keys
         cross_v  float32 [layers, batch, 1500, width]  and values, projected once per window
decoder.onnx
    in   tokens   int64   [batch, new]                 tokens not yet seen by the decoder
         self_k   float32 [layers, batch, past, width] self-attention keys of the tokens seen so far
         self_v   float32 [layers, batch, past, width] and values (past = 0 on the first call)
         cross_k, cross_v                              as the encoder returned them
    out  logits   float32 [batch, new, vocabulary]
         next_k, next_v   float32 [layers, batch, past + new, width]

The weights are read from CTranslate2's binary layout (a versioned header, then named tensors) and stored as
float32. Nothing here needs CTranslate2 or PyTorch: only numpy and onnx.
"""

import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
DTYPES = ["float32", "int8", "int16", "int32", "float16", "bfloat16"]


def read_ct2(path):
    """The named tensors of a CTranslate2 model.bin, aliases resolved."""
    data = Path(path).read_bytes()
    pos = 0

    def unpack(fmt):
        nonlocal pos
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value

    def string():
        nonlocal pos
        n = unpack("H")
        value = data[pos : pos + n - 1].decode()
        pos += n
        return value

    version = unpack("I")
    if version < 5:
        sys.exit(f"{path}: CTranslate2 binary version {version} is older than this converter reads (5 or later)")
    spec = string()
    if spec != "WhisperSpec":
        sys.exit(f"{path}: a {spec}, not a Whisper model")
    unpack("I")  # the spec's revision
    tensors = {}
    for _ in range(unpack("I")):
        name = string()
        shape = [unpack("I") for _ in range(unpack("B"))]
        kind = unpack("B")
        if kind >= len(DTYPES) or DTYPES[kind] == "bfloat16":
            sys.exit(f"{path}: tensor {name} has a type this converter does not read (id {kind})")
        dtype = np.dtype(DTYPES[kind])
        size = unpack("I")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=size // dtype.itemsize, offset=pos).reshape(shape)
        pos += size
    for _ in range(unpack("I")):
        alias, target = string(), string()
        tensors[alias] = tensors[target]
    return tensors


class Graph:
    """A graph under construction: nodes, initializers and fresh names."""

    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value, hint="c"):
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, key, transpose=False):
        value = np.asarray(self.weights[key], dtype=np.float32)
        if transpose:
            value = np.ascontiguousarray(value.T)
        return self.const(value, key.replace("/", "."))

    def op(self, kind, inputs, outputs=1, **attrs):
        names = [self.name(kind.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(kind, inputs, names, **attrs))
        return names[0] if outputs == 1 else names

    def linear(self, x, prefix, rows=None):
        w = np.asarray(self.weights[f"{prefix}/weight"], dtype=np.float32)
        b = np.asarray(self.weights[f"{prefix}/bias"], dtype=np.float32) if f"{prefix}/bias" in self.weights else None
        if rows is not None:
            w = w[rows]
            b = b[rows] if b is not None else None
        y = self.op("MatMul", [x, self.const(np.ascontiguousarray(w.T), prefix.replace("/", ".") + ".w")])
        if b is not None:
            y = self.op("Add", [y, self.const(b, prefix.replace("/", ".") + ".b")])
        return y

    def norm(self, x, prefix):
        return self.op(
            "LayerNormalization", [x, self.weight(f"{prefix}/gamma"), self.weight(f"{prefix}/beta")], epsilon=1e-5
        )

    def gelu(self, x):
        inner = self.op("Erf", [self.op("Div", [x, self.const(np.float32(math.sqrt(2.0)))])])
        return self.op("Mul", [self.op("Mul", [x, self.op("Add", [inner, self.const(np.float32(1.0))])]),
                               self.const(np.float32(0.5))])

    def heads(self, x, heads, width):
        """[b, t, width] -> [b, heads, t, width / heads]"""
        shaped = self.op("Reshape", [x, self.const(np.array([0, 0, heads, width // heads], dtype=np.int64))])
        return self.op("Transpose", [shaped], perm=[0, 2, 1, 3])

    def attend(self, q, k, v, heads, width, mask=None):
        """Scaled dot-product attention over [b, t, width] queries, keys and values."""
        qh, kh, vh = self.heads(q, heads, width), self.heads(k, heads, width), self.heads(v, heads, width)
        kt = self.op("Transpose", [kh], perm=[0, 1, 3, 2])
        scores = self.op("Mul", [self.op("MatMul", [qh, kt]), self.const(np.float32(1.0 / math.sqrt(width // heads)))])
        if mask is not None:
            scores = self.op("Add", [scores, mask])
        mixed = self.op("MatMul", [self.op("Softmax", [scores], axis=-1), vh])
        back = self.op("Transpose", [mixed], perm=[0, 2, 1, 3])
        return self.op("Reshape", [back, self.const(np.array([0, 0, width], dtype=np.int64))])

    def ffn(self, x, prefix):
        h = self.norm(x, f"{prefix}/layer_norm")
        return self.op("Add", [x, self.linear(self.gelu(self.linear(h, f"{prefix}/linear_0")), f"{prefix}/linear_1")])

    def stack(self, tensors):
        """[b, t, width] tensors -> [n, b, t, width]"""
        axis0 = self.const(np.array([0], dtype=np.int64))
        return self.op("Concat", [self.op("Unsqueeze", [t, axis0]) for t in tensors], axis=0)

    def layer(self, stacked, index):
        """[n, b, t, width] -> the index-th [b, t, width]"""
        return self.op("Gather", [stacked, self.const(np.array(index, dtype=np.int64))], axis=0)

    def model(self, inputs, outputs, name):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="scenequeue")
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def split_rows(width):
    return [slice(i * width, (i + 1) * width) for i in range(3)]


def encoder(w, layers, heads, width, mels):
    g = Graph(w)
    x = g.gelu(g.op("Conv", ["mel", g.weight("encoder/conv1/weight"), g.weight("encoder/conv1/bias")], pads=[1, 1]))
    x = g.gelu(
        g.op("Conv", [x, g.weight("encoder/conv2/weight"), g.weight("encoder/conv2/bias")], pads=[1, 1], strides=[2])
    )
    x = g.op("Add", [g.op("Transpose", [x], perm=[0, 2, 1]), g.weight("encoder/position_encodings/encodings")])
    q_rows, k_rows, v_rows = split_rows(width)
    for i in range(layers[0]):
        p = f"encoder/layer_{i}/self_attention"
        h = g.norm(x, f"{p}/layer_norm")
        q, k, v = (g.linear(h, f"{p}/linear_0", rows) for rows in (q_rows, k_rows, v_rows))
        x = g.op("Add", [x, g.linear(g.attend(q, k, v, heads[0], width), f"{p}/linear_1")])
        x = g.ffn(x, f"encoder/layer_{i}/ffn")
    audio = g.norm(x, "encoder/layer_norm")
    keys, values = [], []
    for i in range(layers[1]):
        p = f"decoder/layer_{i}/attention/linear_1"
        keys.append(g.linear(audio, p, slice(0, width)))
        values.append(g.linear(audio, p, slice(width, 2 * width)))
    g.nodes.append(helper.make_node("Identity", [g.stack(keys)], ["cross_k"]))
    g.nodes.append(helper.make_node("Identity", [g.stack(values)], ["cross_v"]))
    cross = ["layers", "batch", "frames", width]
    return g.model(
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", mels, 3000])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, cross) for n in ("cross_k", "cross_v")],
        "whisper_encoder",
    )


def decoder(w, layers, heads, width):
    g = Graph(w)
    zero = g.const(np.array([0], dtype=np.int64))
    one = g.const(np.array([1], dtype=np.int64))
    # past: how many tokens the decoder has seen; new: how many arrive now.
    past = g.op("Squeeze", [g.op("Slice", [g.op("Shape", ["self_k"]), g.const(np.array([2], dtype=np.int64)),
                                           g.const(np.array([3], dtype=np.int64))]), zero])
    new = g.op("Squeeze", [g.op("Slice", [g.op("Shape", ["tokens"]), one,
                                          g.const(np.array([2], dtype=np.int64))]), zero])
    total = g.op("Add", [past, new])
    step = g.const(np.array(1, dtype=np.int64))
    positions = g.op("Range", [past, total, step])
    embedding = g.weight("decoder/embeddings/weight")
    x = g.op("Add", [g.op("Gather", [embedding, "tokens"], axis=0),
                     g.op("Gather", [g.weight("decoder/position_encodings/encodings"), positions], axis=0)])
    # Causal mask [new, past + new]: a token sees itself and what came before it.
    later = g.op("Greater", [g.op("Unsqueeze", [g.op("Range", [g.const(np.array(0, dtype=np.int64)), total, step]),
                                                zero]),
                             g.op("Unsqueeze", [positions, one])])
    mask = g.op("Where", [later, g.const(np.float32(-1e9)), g.const(np.float32(0.0))])
    q_rows, k_rows, v_rows = split_rows(width)
    next_k, next_v = [], []
    for i in range(layers):
        p = f"decoder/layer_{i}/self_attention"
        h = g.norm(x, f"{p}/layer_norm")
        q, k, v = (g.linear(h, f"{p}/linear_0", rows) for rows in (q_rows, k_rows, v_rows))
        k = g.op("Concat", [g.layer("self_k", i), k], axis=1)
        v = g.op("Concat", [g.layer("self_v", i), v], axis=1)
        next_k.append(k)
        next_v.append(v)
        x = g.op("Add", [x, g.linear(g.attend(q, k, v, heads, width, mask), f"{p}/linear_1")])
        p = f"decoder/layer_{i}/attention"
        h = g.norm(x, f"{p}/layer_norm")
        mixed = g.attend(g.linear(h, f"{p}/linear_0"), g.layer("cross_k", i), g.layer("cross_v", i), heads, width)
        x = g.op("Add", [x, g.linear(mixed, f"{p}/linear_2")])
        x = g.ffn(x, f"decoder/layer_{i}/ffn")
    x = g.norm(x, "decoder/layer_norm")
    g.nodes.append(helper.make_node("MatMul", [x, g.op("Transpose", [embedding], perm=[1, 0])], ["logits"]))
    g.nodes.append(helper.make_node("Identity", [g.stack(next_k)], ["next_k"]))
    g.nodes.append(helper.make_node("Identity", [g.stack(next_v)], ["next_v"]))
    vocabulary = w["decoder/embeddings/weight"].shape[0]
    state = ["layers", "batch", "past", width]
    return g.model(
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "new"]),
            helper.make_tensor_value_info("self_k", TensorProto.FLOAT, state),
            helper.make_tensor_value_info("self_v", TensorProto.FLOAT, state),
            helper.make_tensor_value_info("cross_k", TensorProto.FLOAT, ["layers", "batch", "frames", width]),
            helper.make_tensor_value_info("cross_v", TensorProto.FLOAT, ["layers", "batch", "frames", width]),
        ],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "new", vocabulary]),
            helper.make_tensor_value_info("next_k", TensorProto.FLOAT, ["layers", "batch", "total", width]),
            helper.make_tensor_value_info("next_v", TensorProto.FLOAT, ["layers", "batch", "total", width]),
        ],
        "whisper_decoder",
    )


def count_layers(w, side):
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in w:
        n += 1
    return n


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: whisper_onnx.py MODEL_DIR OUT_DIR")
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    w = read_ct2(source / "model.bin")
    width = w["encoder/conv1/weight"].shape[0]
    mels = w["encoder/conv1/weight"].shape[1]
    layers = (count_layers(w, "encoder"), count_layers(w, "decoder"))
    heads = (int(w["encoder/num_heads"]), int(w["decoder/num_heads"]))
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(encoder(w, layers, heads, width, mels), out / "encoder.onnx")
    onnx.save(decoder(w, layers[1], heads[1], width), out / "decoder.onnx")
    shape = {
        "width": width,
        "mels": mels,
        "encoder_layers": layers[0],
        "decoder_layers": layers[1],
        "heads": heads[1],
        "vocabulary": int(w["decoder/embeddings/weight"].shape[0]),
        "max_tokens": int(w["decoder/position_encodings/encodings"].shape[0]),
    }
    (out / "shape.json").write_text(json.dumps(shape, indent=2) + "\n")
    print(json.dumps(shape))


if __name__ == "__main__":
    main()
