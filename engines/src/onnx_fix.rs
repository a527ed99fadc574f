//! Repairs applied to upstream ONNX files at install time, done on the protobuf wire format so
//! no ONNX library is needed: fields are copied byte for byte except the ones removed.
//!
//! `drop-initializer-inputs`: older exporters list every weight both as an initializer and as a
//! graph input. ONNX Runtime must then treat the weights as overridable inputs and cannot fold
//! constants; dropping those inputs makes the detector about 3.5 times faster.
//!
//! [`conversion_fingerprint`]: what two conversions of the same model by the same converter
//! have in common when their bytes differ (tf2onnx numbers the names it makes up in an order
//! that changes from run to run, orders commutative inputs and independent nodes differently,
//! and shares equal constants or not).

use std::collections::{BTreeSet, HashSet};

use sha2::{Digest, Sha256};

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum FixError {
    #[error("not an ONNX model: {0}")]
    Malformed(&'static str),
    #[error("the model has no graph")]
    NoGraph,
}

// ModelProto.graph = 7; GraphProto.node = 1, .initializer = 5, .input = 11, .output = 12;
// NodeProto.op_type = 4, .attribute = 5, .domain = 7; TensorProto.name = 8;
// ValueInfoProto.name = 1.
const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_INITIALIZER: u64 = 5;
const GRAPH_INPUT: u64 = 11;
const GRAPH_OUTPUT: u64 = 12;
const NODE_OP_TYPE: u64 = 4;
const NODE_ATTRIBUTE: u64 = 5;
const NODE_DOMAIN: u64 = 7;
const TENSOR_NAME: u64 = 8;
const VALUE_INFO_NAME: u64 = 1;

struct Field<'a> {
    number: u64,
    /// The whole field: key, length prefix (if any) and payload.
    raw: &'a [u8],
    /// For length-delimited fields, the payload.
    payload: Option<&'a [u8]>,
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, FixError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf
            .get(*pos)
            .ok_or(FixError::Malformed("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(FixError::Malformed("varint too long"))
}

fn write_varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, FixError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = read_varint(buf, &mut pos)?;
        let number = key >> 3;
        let payload = match key & 7 {
            0 => {
                read_varint(buf, &mut pos)?;
                None
            }
            1 => {
                pos += 8;
                None
            }
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)?)
                    .map_err(|_| FixError::Malformed("length"))?;
                let end = pos.checked_add(len).ok_or(FixError::Malformed("length"))?;
                let p = buf
                    .get(pos..end)
                    .ok_or(FixError::Malformed("truncated field"))?;
                pos = end;
                Some(p)
            }
            5 => {
                pos += 4;
                None
            }
            _ => return Err(FixError::Malformed("unsupported wire type")),
        };
        if pos > buf.len() {
            return Err(FixError::Malformed("truncated field"));
        }
        out.push(Field {
            number,
            raw: &buf[start..pos],
            payload,
        });
    }
    Ok(out)
}

fn string_field(msg: &[u8], number: u64) -> Result<Option<&[u8]>, FixError> {
    Ok(fields(msg)?
        .into_iter()
        .find(|f| f.number == number)
        .and_then(|f| f.payload))
}

/// The model's top-level fields with the graph replaced by `graph` (a length-delimited field).
fn with_graph(top: &[Field<'_>], graph: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(graph.len() + 1024);
    for f in top {
        if f.number == MODEL_GRAPH {
            write_len_field(MODEL_GRAPH, graph, &mut out);
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    out
}

fn write_len_field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
    write_varint((number << 3) | 2, out);
    write_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Removes every graph input whose name is also an initializer. Returns the new model bytes and
/// how many inputs were dropped; a model with nothing to drop comes back unchanged.
pub fn drop_initializer_inputs(model: &[u8]) -> Result<(Vec<u8>, usize), FixError> {
    let top = fields(model)?;
    let graph = top
        .iter()
        .find(|f| f.number == MODEL_GRAPH)
        .ok_or(FixError::NoGraph)?;
    let graph_bytes = graph
        .payload
        .ok_or(FixError::Malformed("graph is not a message"))?;
    let gfields = fields(graph_bytes)?;
    let mut inits: HashSet<&[u8]> = HashSet::new();
    for f in gfields.iter().filter(|f| f.number == GRAPH_INITIALIZER) {
        if let Some(name) = string_field(f.payload.unwrap_or_default(), TENSOR_NAME)? {
            inits.insert(name);
        }
    }
    let mut new_graph = Vec::with_capacity(graph_bytes.len());
    let mut dropped = 0;
    for f in &gfields {
        if f.number == GRAPH_INPUT
            && let Some(name) = string_field(f.payload.unwrap_or_default(), VALUE_INFO_NAME)?
            && inits.contains(name)
        {
            dropped += 1;
            continue;
        }
        new_graph.extend_from_slice(f.raw);
    }
    if dropped == 0 {
        return Ok((model.to_vec(), 0));
    }
    Ok((with_graph(&top, &new_graph), dropped))
}

/// A sha256 (hex) of what a converted model is, independent of the names its converter made
/// up and of the order it wrote things in: the multiset of its nodes (operator, domain and
/// attributes; not their names or wiring), the set of its weights (each initializer's type,
/// shape and data; not its name) and the names of the graph's inputs and outputs. Changing a
/// weight, an operator or an attribute changes it; how nodes are connected is not covered.
pub fn conversion_fingerprint(model: &[u8]) -> Result<String, FixError> {
    let top = fields(model)?;
    let graph = top
        .iter()
        .find(|f| f.number == MODEL_GRAPH)
        .ok_or(FixError::NoGraph)?
        .payload
        .ok_or(FixError::Malformed("graph is not a message"))?;
    let mut nodes = Vec::new();
    let mut tensors = BTreeSet::new();
    let mut io = Vec::new();
    // An empty string field is the same as an absent one (tf2onnx writes `domain: ""` on some
    // nodes of one run and leaves it out in another).
    let digest_of = |msg: &[u8], keep: &dyn Fn(u64) -> bool| -> Result<[u8; 32], FixError> {
        let mut h = Sha256::new();
        for f in fields(msg)?.iter().filter(|f| keep(f.number)) {
            if f.payload.is_some_and(<[u8]>::is_empty) {
                continue;
            }
            h.update(f.raw);
        }
        Ok(h.finalize().into())
    };
    for f in fields(graph)? {
        let p = f.payload.unwrap_or_default();
        match f.number {
            GRAPH_NODE => nodes.push(digest_of(p, &|n| {
                matches!(n, NODE_OP_TYPE | NODE_ATTRIBUTE | NODE_DOMAIN)
            })?),
            GRAPH_INITIALIZER => {
                tensors.insert(digest_of(p, &|n| n != TENSOR_NAME)?);
            }
            GRAPH_INPUT | GRAPH_OUTPUT => {
                let name = string_field(p, VALUE_INFO_NAME)?.unwrap_or_default();
                io.push((f.number, name.to_vec()));
            }
            _ => {}
        }
    }
    nodes.sort_unstable();
    io.sort();
    let mut h = Sha256::new();
    h.update(b"nodes");
    h.update((nodes.len() as u64).to_le_bytes());
    for n in &nodes {
        h.update(n);
    }
    h.update(b"weights");
    h.update((tensors.len() as u64).to_le_bytes());
    for t in &tensors {
        h.update(t);
    }
    h.update(b"io");
    for (kind, name) in &io {
        h.update(kind.to_le_bytes());
        h.update((name.len() as u64).to_le_bytes());
        h.update(name);
    }
    Ok(hex::encode(h.finalize()))
}

/// The inverse, for tests: re-lists every initializer as a graph input (name only), right after
/// the existing inputs, as old exporters wrote them.
pub fn list_initializers_as_inputs(model: &[u8]) -> Result<Vec<u8>, FixError> {
    let top = fields(model)?;
    let graph = top
        .iter()
        .find(|f| f.number == MODEL_GRAPH)
        .ok_or(FixError::NoGraph)?;
    let gfields = fields(
        graph
            .payload
            .ok_or(FixError::Malformed("graph is not a message"))?,
    )?;
    let mut names = Vec::new();
    for f in gfields.iter().filter(|f| f.number == GRAPH_INITIALIZER) {
        if let Some(name) = string_field(f.payload.unwrap_or_default(), TENSOR_NAME)? {
            names.push(name);
        }
    }
    let last_input = gfields
        .iter()
        .rposition(|f| f.number == GRAPH_INPUT)
        .ok_or(FixError::Malformed("no input"))?;
    let mut new_graph = Vec::new();
    for (i, f) in gfields.iter().enumerate() {
        new_graph.extend_from_slice(f.raw);
        if i == last_input {
            for name in &names {
                let mut vi = Vec::new();
                write_len_field(VALUE_INFO_NAME, name, &mut vi);
                write_len_field(GRAPH_INPUT, &vi, &mut new_graph);
            }
        }
    }
    Ok(with_graph(&top, &new_graph))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bytes_that_are_not_protobuf() {
        assert!(drop_initializer_inputs(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        assert_eq!(drop_initializer_inputs(b""), Err(FixError::NoGraph));
    }

    /// A model with two initializers and two nodes, named and ordered as given.
    fn tiny_model(names: [&str; 2], swap_nodes: bool, weight: u8, empty_domain: bool) -> Vec<u8> {
        let tensor = |name: &str, data: &[u8]| {
            let mut t = Vec::new();
            write_varint(1 << 3, &mut t); // dims = 2
            write_varint(2, &mut t);
            write_len_field(TENSOR_NAME, name.as_bytes(), &mut t);
            write_len_field(9, data, &mut t); // raw_data
            t
        };
        let node = |op: &str, input: &str| {
            let mut n = Vec::new();
            write_len_field(1, input.as_bytes(), &mut n);
            write_len_field(2, format!("{op}_out").as_bytes(), &mut n);
            write_len_field(NODE_OP_TYPE, op.as_bytes(), &mut n);
            if empty_domain {
                write_len_field(NODE_DOMAIN, b"", &mut n);
            }
            n
        };
        let mut nodes = vec![node("Mul", names[0]), node("Add", names[1])];
        if swap_nodes {
            nodes.reverse();
        }
        let mut g = Vec::new();
        for n in &nodes {
            write_len_field(GRAPH_NODE, n, &mut g);
        }
        write_len_field(GRAPH_INITIALIZER, &tensor(names[0], &[1, weight]), &mut g);
        write_len_field(GRAPH_INITIALIZER, &tensor(names[1], &[3, 4]), &mut g);
        let mut io = Vec::new();
        write_len_field(VALUE_INFO_NAME, b"input_1", &mut io);
        write_len_field(GRAPH_INPUT, &io, &mut g);
        let mut m = Vec::new();
        write_len_field(MODEL_GRAPH, &g, &mut m);
        m
    }

    #[test]
    fn the_fingerprint_ignores_made_up_names_and_order_but_not_weights() {
        let a = conversion_fingerprint(&tiny_model(["c__12", "c__40"], false, 2, false)).unwrap();
        let renamed = tiny_model(["c__977", "c__3"], true, 2, true);
        assert_eq!(conversion_fingerprint(&renamed).unwrap(), a);
        let other_weight = tiny_model(["c__12", "c__40"], false, 9, false);
        assert_ne!(conversion_fingerprint(&other_weight).unwrap(), a);
        assert!(conversion_fingerprint(b"\x0a\xff").is_err());
    }

    #[test]
    fn varint_round_trips() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            write_varint(v, &mut b);
            let mut pos = 0;
            assert_eq!(read_varint(&b, &mut pos).unwrap(), v);
            assert_eq!(pos, b.len());
        }
    }
}
