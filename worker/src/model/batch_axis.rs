//! Opening the batch axis of an ONNX model: graphs exported with a batch of one declare their inputs as
//! `[1, ...]`, which ONNX Runtime enforces, though the operators inside take any batch. This rewrites the first
//! dimension of the named graph inputs from the value 1 to a symbolic `batch`, editing the protobuf encoding
//! directly (ModelProto.graph = 7, GraphProto.input = 11, ValueInfoProto.type = 2, TypeProto.tensor_type = 1,
//! TypeProto.Tensor.shape = 2, TensorShapeProto.dim = 1, Dimension.dim_value = 1 / dim_param = 2); every other
//! byte is copied as it is.

const LEN: u8 = 2;

#[derive(Debug, thiserror::Error)]
#[error("not a valid ONNX protobuf: {0}")]
pub struct ProtoError(&'static str);

/// One field of a message: its number, wire type, the whole encoding (key included) and, for length-delimited
/// fields, the payload.
struct Field<'a> {
    number: u64,
    wire: u8,
    raw: &'a [u8],
    payload: &'a [u8],
    /// The value of a varint field.
    value: u64,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ProtoError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or(ProtoError("truncated varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ProtoError("varint longer than 10 bytes"))
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, ProtoError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = varint(buf, &mut pos)?;
        let wire = (key & 7) as u8;
        let mut payload: &[u8] = &[];
        let mut value = 0;
        match wire {
            0 => value = varint(buf, &mut pos)?,
            1 => pos += 8,
            5 => pos += 4,
            LEN => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| ProtoError("length overflow"))?;
                let end = pos.checked_add(len).ok_or(ProtoError("length overflow"))?;
                payload = buf.get(pos..end).ok_or(ProtoError("truncated field"))?;
                pos = end;
            }
            _ => return Err(ProtoError("unsupported wire type")),
        }
        let raw = buf.get(start..pos).ok_or(ProtoError("truncated field"))?;
        out.push(Field { number: key >> 3, wire, raw, payload, value });
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_message(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
    put_varint(out, (number << 3) | u64::from(LEN));
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Copies `message`, passing the payload of each length-delimited field numbered `number` through `edit`.
fn rewrite(
    message: &[u8],
    number: u64,
    mut edit: impl FnMut(&[u8]) -> Result<Vec<u8>, ProtoError>,
) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::with_capacity(message.len() + 16);
    for field in fields(message)? {
        if field.number == number && field.wire == LEN {
            put_message(&mut out, number, &edit(field.payload)?);
        } else {
            out.extend_from_slice(field.raw);
        }
    }
    Ok(out)
}

/// The first `dim` of a TensorShapeProto becomes `dim_param: "batch"` when it is `dim_value: 1`.
fn open_first_dim(shape: &[u8]) -> Result<Vec<u8>, ProtoError> {
    let mut first = true;
    rewrite(shape, 1, |dim| {
        let is_first = std::mem::take(&mut first);
        let fixed_one = fields(dim)?.iter().any(|f| f.number == 1 && f.wire == 0 && f.value == 1);
        if !(is_first && fixed_one) {
            return Ok(dim.to_vec());
        }
        let mut symbolic = Vec::new();
        put_message(&mut symbolic, 2, b"batch");
        Ok(symbolic)
    })
}

fn name_of(value_info: &[u8]) -> Result<Option<&[u8]>, ProtoError> {
    Ok(fields(value_info)?.into_iter().find(|f| f.number == 1 && f.wire == LEN).map(|f| f.payload))
}

/// Returns `model` with the batch axis of the graph inputs named in `inputs` made symbolic.
pub fn open_batch_axis(model: &[u8], inputs: &[&str]) -> Result<Vec<u8>, ProtoError> {
    rewrite(model, 7, |graph| {
        rewrite(graph, 11, |input| {
            if !name_of(input)?.is_some_and(|n| inputs.iter().any(|i| i.as_bytes() == n)) {
                return Ok(input.to_vec());
            }
            rewrite(input, 2, |ty| rewrite(ty, 1, |tensor| rewrite(tensor, 2, open_first_dim)))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_message(&mut out, number, payload);
        out
    }

    fn dim_value(v: u64) -> Vec<u8> {
        let mut d = Vec::new();
        put_varint(&mut d, 1 << 3);
        put_varint(&mut d, v);
        message(1, &d)
    }

    fn input(name: &str, dims: &[u64]) -> Vec<u8> {
        let shape: Vec<u8> = dims.iter().flat_map(|&d| dim_value(d)).collect();
        let tensor = [vec![8, 1], message(2, &shape)].concat(); // elem_type FLOAT, shape
        [message(1, name.as_bytes()), message(2, &message(1, &tensor))].concat()
    }

    fn model(inputs: &[Vec<u8>]) -> Vec<u8> {
        let graph: Vec<u8> = [message(2, b"g"), inputs.iter().flat_map(|i| message(11, i)).collect()].concat();
        [vec![8, 9], message(7, &graph)].concat() // ir_version 9, graph
    }

    #[test]
    fn named_inputs_get_a_symbolic_batch_and_nothing_else_changes() {
        let original = model(&[input("x", &[1, 2, 5]), input("y", &[1, 3]), input("w", &[4, 4])]);
        let patched = open_batch_axis(&original, &["x", "w"]).unwrap();
        let batch = message(1, &message(2, b"batch"));
        let x = [
            message(1, b"x"),
            message(2, &message(1, &[vec![8, 1], message(2, &[batch, dim_value(2), dim_value(5)].concat())].concat())),
        ]
        .concat();
        // x opened; y not named; w named but its first dimension is not 1.
        assert_eq!(patched, model(&[x, input("y", &[1, 3]), input("w", &[4, 4])]));
        assert_eq!(open_batch_axis(&original, &[]).unwrap(), original);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(open_batch_axis(&[0x3a, 0xff, 0xff, 0xff], &["x"]).is_err());
        assert!(open_batch_axis(&[0x0f], &["x"]).is_err());
    }
}
