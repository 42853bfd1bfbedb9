//! The few TensorFlow protobuf messages a frozen `GraphDef` needs, written by hand with
//! `prost` derives (field numbers from TensorFlow's `graph.proto`, `node_def.proto`,
//! `attr_value.proto`, `tensor.proto`, `tensor_shape.proto`, `versions.proto`), plus an
//! index over the nodes and typed readers for `Const` tensors.
//!
//! Fields this importer never reads (the function library, debug info, resource handles,
//! variants, complex values) are left out: prost skips unknown fields when decoding, so a
//! graph that has them still parses, and re-encoding (only the tests do) drops them.
//!
//! Byte fields are `bytes::Bytes`: decoding from a `Bytes` buffer makes every tensor's
//! `tensor_content` a view into that buffer, not a copy, so a 700 MB graph is held once.

use crate::error::{GlowError, Result};
use bytes::Bytes;
use prost::Message;
use std::collections::{BTreeMap, HashMap};

/// `GraphDef`: the nodes (field 1) and the producer version (field 4).
#[derive(Clone, PartialEq, Message)]
pub struct GraphDef {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
    #[prost(message, optional, tag = "4")]
    pub versions: Option<VersionDef>,
}

#[derive(Clone, PartialEq, Message)]
pub struct VersionDef {
    #[prost(int32, tag = "1")]
    pub producer: i32,
    #[prost(int32, tag = "2")]
    pub min_consumer: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeDef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub op: String,
    /// `"node"`, `"node:1"` (output 1) or `"^node"` (control dependency).
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    #[prost(string, tag = "4")]
    pub device: String,
    #[prost(btree_map = "string, message", tag = "5")]
    pub attr: BTreeMap<String, AttrValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AttrValue {
    #[prost(oneof = "attr_value::Value", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9")]
    pub value: Option<attr_value::Value>,
}

pub mod attr_value {
    use super::{ListValue, TensorProto, TensorShapeProto};
    use bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        List(ListValue),
        #[prost(bytes = "bytes", tag = "2")]
        S(Bytes),
        #[prost(int64, tag = "3")]
        I(i64),
        #[prost(float, tag = "4")]
        F(f32),
        #[prost(bool, tag = "5")]
        B(bool),
        /// A `DataType` enum value.
        #[prost(int32, tag = "6")]
        Type(i32),
        #[prost(message, tag = "7")]
        Shape(TensorShapeProto),
        #[prost(message, tag = "8")]
        Tensor(TensorProto),
        #[prost(string, tag = "9")]
        Placeholder(String),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct ListValue {
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub s: Vec<Bytes>,
    #[prost(int64, repeated, tag = "3")]
    pub i: Vec<i64>,
    #[prost(float, repeated, tag = "4")]
    pub f: Vec<f32>,
    #[prost(bool, repeated, tag = "5")]
    pub b: Vec<bool>,
    #[prost(int32, repeated, tag = "6")]
    pub r#type: Vec<i32>,
    #[prost(message, repeated, tag = "7")]
    pub shape: Vec<TensorShapeProto>,
    #[prost(message, repeated, tag = "8")]
    pub tensor: Vec<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<tensor_shape_proto::Dim>,
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

pub mod tensor_shape_proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dim {
        /// -1 for an unknown size.
        #[prost(int64, tag = "1")]
        pub size: i64,
        #[prost(string, tag = "2")]
        pub name: String,
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(int32, tag = "3")]
    pub version_number: i32,
    /// Raw little-endian values, when present (the usual case for arrays).
    #[prost(bytes = "bytes", tag = "4")]
    pub tensor_content: Bytes,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    /// int32, int16, int8, uint8 and uint16 values.
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(bytes = "bytes", repeated, tag = "8")]
    pub string_val: Vec<Bytes>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
    /// float16 bit patterns, one per int32.
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
}

/// The `DataType` values this importer reads.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const DOUBLE: i32 = 2;
    pub const INT32: i32 = 3;
    pub const UINT8: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT8: i32 = 6;
    pub const INT64: i32 = 9;
    pub const HALF: i32 = 19;

    pub fn name(d: i32) -> String {
        match d {
            FLOAT => "float32".into(),
            DOUBLE => "float64".into(),
            INT32 => "int32".into(),
            UINT8 => "uint8".into(),
            INT16 => "int16".into(),
            INT8 => "int8".into(),
            7 => "string".into(),
            INT64 => "int64".into(),
            10 => "bool".into(),
            HALF => "float16".into(),
            d => format!("DataType {d}"),
        }
    }
}

impl TensorShapeProto {
    /// The dimensions, or `None` when the rank or any size is unknown.
    pub fn dims(&self) -> Option<Vec<usize>> {
        if self.unknown_rank {
            return None;
        }
        self.dim.iter().map(|d| usize::try_from(d.size).ok()).collect()
    }

    /// The dimensions with unknown sizes as `None` (for placeholders' `[?, H, W, C]`).
    pub fn partial_dims(&self) -> Option<Vec<Option<usize>>> {
        if self.unknown_rank {
            return None;
        }
        Some(self.dim.iter().map(|d| usize::try_from(d.size).ok()).collect())
    }

    pub fn from_dims(dims: &[usize]) -> Self {
        TensorShapeProto {
            dim: dims.iter().map(|&d| tensor_shape_proto::Dim { size: d as i64, name: String::new() }).collect(),
            unknown_rank: false,
        }
    }
}

impl NodeDef {
    pub fn attr_tensor(&self) -> Option<&TensorProto> {
        match self.attr.get("value")?.value.as_ref()? {
            attr_value::Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    pub fn attr_type(&self, key: &str) -> Option<i32> {
        match self.attr.get(key)?.value.as_ref()? {
            attr_value::Value::Type(t) => Some(*t),
            _ => None,
        }
    }

    pub fn attr_shape(&self, key: &str) -> Option<&TensorShapeProto> {
        match self.attr.get(key)?.value.as_ref()? {
            attr_value::Value::Shape(s) => Some(s),
            _ => None,
        }
    }

    /// The non-control inputs, as node names with the output index split off.
    pub fn data_inputs(&self) -> impl Iterator<Item = (&str, usize)> {
        self.input.iter().filter(|i| !i.starts_with('^')).map(|i| split_input(i))
    }
}

/// `"node:2"` -> `("node", 2)`, `"node"` -> `("node", 0)`.
pub fn split_input(input: &str) -> (&str, usize) {
    let s = input.trim_start_matches('^');
    match s.rsplit_once(':') {
        Some((name, idx)) => match idx.parse() {
            Ok(i) => (name, i),
            Err(_) => (s, 0),
        },
        None => (s, 0),
    }
}

/// A decoded graph with lookups by name and by consumer.
pub struct Graph {
    pub def: GraphDef,
    by_name: HashMap<String, usize>,
    consumers: HashMap<String, Vec<usize>>,
}

impl Graph {
    /// Decodes a binary `GraphDef`. With a `Bytes` buffer the tensor contents are views
    /// into it (no copy).
    pub fn decode(bytes: Bytes) -> Result<Self> {
        let len = bytes.len();
        if len == 0 {
            return Err(GlowError::Input("graph: the file is empty".into()));
        }
        let def = GraphDef::decode(bytes).map_err(|e| {
            GlowError::Input(format!(
                "graph: not a valid TensorFlow GraphDef protobuf ({len} bytes; truncated or not a .pb?): {e}"
            ))
        })?;
        Self::new(def)
    }

    pub fn new(def: GraphDef) -> Result<Self> {
        if def.node.is_empty() {
            return Err(GlowError::Input("graph: the GraphDef has no nodes (not a frozen TensorFlow graph?)".into()));
        }
        let mut by_name = HashMap::with_capacity(def.node.len());
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in def.node.iter().enumerate() {
            if n.name.is_empty() {
                return Err(GlowError::Input(format!("graph: node #{i} (op '{}') has no name", n.op)));
            }
            if by_name.insert(n.name.clone(), i).is_some() {
                return Err(GlowError::Input(format!("graph: node '{}': the name appears twice", n.name)));
            }
            for inp in &n.input {
                let (src, _) = split_input(inp);
                consumers.entry(src.to_string()).or_default().push(i);
            }
        }
        Ok(Graph { def, by_name, consumers })
    }

    pub fn node(&self, name: &str) -> Option<&NodeDef> {
        self.by_name.get(name).map(|&i| &self.def.node[i])
    }

    pub fn nodes(&self) -> &[NodeDef] {
        &self.def.node
    }

    /// The nodes that take any output of `name` as an input (data or control).
    pub fn consumers(&self, name: &str) -> impl Iterator<Item = &NodeDef> {
        self.consumers.get(name).into_iter().flatten().map(move |&i| &self.def.node[i])
    }

    /// Follows `Identity` nodes back to their source.
    pub fn through_identities<'a>(&'a self, mut node: &'a NodeDef) -> &'a NodeDef {
        for _ in 0..64 {
            if node.op != "Identity" {
                break;
            }
            match node.data_inputs().next().and_then(|(src, _)| self.node(src)) {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }
}

/// A `Const` node's tensor, checked: its dtype, its (fully known) shape and the source
/// of its values.
pub struct ConstTensor<'a> {
    pub node: &'a str,
    pub dtype: i32,
    pub shape: Vec<usize>,
    proto: &'a TensorProto,
}

impl<'a> ConstTensor<'a> {
    /// The tensor of a `Const` node; refuses any other op.
    pub fn of(node: &'a NodeDef) -> Result<Self> {
        let name = node.name.as_str();
        if node.op != "Const" {
            return Err(GlowError::Input(format!("graph: node '{name}' is a '{}' op, expected a Const", node.op)));
        }
        let proto = node
            .attr_tensor()
            .ok_or_else(|| GlowError::Input(format!("graph: Const node '{name}' has no 'value' tensor")))?;
        let shape = proto
            .tensor_shape
            .as_ref()
            .map(|s| s.dims())
            .unwrap_or(Some(vec![]))
            .ok_or_else(|| GlowError::Input(format!("graph: Const node '{name}' has an unknown shape")))?;
        Ok(ConstTensor { node: name, dtype: proto.dtype, shape, proto })
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bad(&self, problem: String) -> GlowError {
        GlowError::Input(format!("graph: Const node '{}': {problem}", self.node))
    }

    /// Number of explicit values in the typed field that holds this dtype.
    fn typed_count(&self) -> usize {
        let p = self.proto;
        match self.dtype {
            dtype::FLOAT => p.float_val.len(),
            dtype::DOUBLE => p.double_val.len(),
            dtype::HALF => p.half_val.len(),
            dtype::INT32 | dtype::UINT8 | dtype::INT16 | dtype::INT8 => p.int_val.len(),
            dtype::INT64 => p.int64_val.len(),
            _ => 0,
        }
    }

    fn elem_size(&self) -> Result<usize> {
        Ok(match self.dtype {
            dtype::FLOAT | dtype::INT32 => 4,
            dtype::DOUBLE | dtype::INT64 => 8,
            dtype::HALF | dtype::INT16 => 2,
            dtype::UINT8 | dtype::INT8 => 1,
            d => return Err(self.bad(format!("has dtype {}, not a number type", dtype::name(d)))),
        })
    }

    /// Checks that the stored values match the shape. TensorFlow stores either the raw
    /// bytes, or a typed list that may be shorter than the tensor (its last value then
    /// repeats; an empty list means zeros).
    fn check_storage(&self) -> Result<()> {
        let n = self.len();
        let es = self.elem_size()?;
        let raw = self.proto.tensor_content.len();
        if raw > 0 {
            if raw != n * es {
                return Err(self.bad(format!(
                    "holds {raw} bytes of values, shape {:?} of {} needs {} (truncated or corrupt?)",
                    self.shape,
                    dtype::name(self.dtype),
                    n * es
                )));
            }
        } else if self.typed_count() > n {
            return Err(self.bad(format!("holds {} values for shape {:?}", self.typed_count(), self.shape)));
        }
        Ok(())
    }

    /// Writes every value, as f64, to `out(index, value)`. Floating dtypes only.
    pub fn for_each_float(&self, mut out: impl FnMut(usize, f64)) -> Result<()> {
        self.check_storage()?;
        let n = self.len();
        let raw = &self.proto.tensor_content;
        let p = self.proto;
        match self.dtype {
            dtype::FLOAT if !raw.is_empty() => {
                for (i, b) in raw.chunks_exact(4).enumerate() {
                    out(i, f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64);
                }
            }
            dtype::DOUBLE if !raw.is_empty() => {
                for (i, b) in raw.chunks_exact(8).enumerate() {
                    out(i, f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
                }
            }
            dtype::HALF if !raw.is_empty() => {
                for (i, b) in raw.chunks_exact(2).enumerate() {
                    out(i, half::f16::from_le_bytes([b[0], b[1]]).to_f64());
                }
            }
            dtype::FLOAT => fill(n, &p.float_val, |v| *v as f64, &mut out),
            dtype::DOUBLE => fill(n, &p.double_val, |v| *v, &mut out),
            dtype::HALF => fill(n, &p.half_val, |v| half::f16::from_bits(*v as u16).to_f64(), &mut out),
            d => return Err(self.bad(format!("has dtype {}, expected a floating-point tensor", dtype::name(d)))),
        }
        Ok(())
    }

    /// All values as f64 (for small tensors: derived constants, scalars).
    pub fn floats(&self) -> Result<Vec<f64>> {
        let mut v = vec![0f64; self.len()];
        self.for_each_float(|i, x| v[i] = x)?;
        Ok(v)
    }

    /// All values of an integer tensor.
    pub fn ints(&self) -> Result<Vec<i64>> {
        self.check_storage()?;
        let n = self.len();
        let raw = &self.proto.tensor_content;
        let mut v = vec![0i64; n];
        let p = self.proto;
        let mut put = |i: usize, x: i64| v[i] = x;
        match self.dtype {
            dtype::INT32 if !raw.is_empty() => {
                for (i, b) in raw.chunks_exact(4).enumerate() {
                    put(i, i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64);
                }
            }
            dtype::INT64 if !raw.is_empty() => {
                for (i, b) in raw.chunks_exact(8).enumerate() {
                    put(i, i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
                }
            }
            dtype::UINT8 if !raw.is_empty() => raw.iter().enumerate().for_each(|(i, b)| put(i, *b as i64)),
            dtype::INT8 if !raw.is_empty() => raw.iter().enumerate().for_each(|(i, b)| put(i, *b as i8 as i64)),
            dtype::INT16 if !raw.is_empty() => {
                for (i, b) in raw.chunks_exact(2).enumerate() {
                    put(i, i16::from_le_bytes([b[0], b[1]]) as i64);
                }
            }
            dtype::INT32 | dtype::UINT8 | dtype::INT16 | dtype::INT8 => {
                fill(n, &p.int_val, |x| *x as i64, &mut put)
            }
            dtype::INT64 => fill(n, &p.int64_val, |x| *x, &mut put),
            d => return Err(self.bad(format!("has dtype {}, expected an integer tensor", dtype::name(d)))),
        }
        Ok(v)
    }

    /// One scalar (or a one-element tensor) as f64, of any number type.
    pub fn scalar(&self) -> Result<f64> {
        if self.len() != 1 {
            return Err(self.bad(format!("has shape {:?}, expected a scalar", self.shape)));
        }
        match self.dtype {
            dtype::FLOAT | dtype::DOUBLE | dtype::HALF => Ok(self.floats()?[0]),
            _ => Ok(self.ints()?[0] as f64),
        }
    }
}

/// TensorFlow's short-list rule: `vals` may be shorter than `n`; the last value repeats,
/// and no values at all mean zeros.
fn fill<T, U: Copy + Default>(n: usize, vals: &[T], conv: impl Fn(&T) -> U, out: &mut impl FnMut(usize, U)) {
    let last = vals.last().map(&conv).unwrap_or_default();
    for i in 0..n {
        out(i, vals.get(i).map(&conv).unwrap_or(last));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn const_node(name: &str, t: TensorProto) -> NodeDef {
        let mut attr = BTreeMap::new();
        attr.insert("value".to_string(), AttrValue { value: Some(attr_value::Value::Tensor(t)) });
        attr.insert("dtype".to_string(), AttrValue { value: Some(attr_value::Value::Type(dtype::FLOAT)) });
        NodeDef { name: name.into(), op: "Const".into(), attr, ..Default::default() }
    }

    #[test]
    fn round_trips_and_reads_both_storages() {
        let raw: Vec<u8> = [1.5f32, -2.0, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = TensorProto {
            dtype: dtype::FLOAT,
            tensor_shape: Some(TensorShapeProto::from_dims(&[3])),
            tensor_content: Bytes::from(raw),
            ..Default::default()
        };
        let b = TensorProto {
            dtype: dtype::FLOAT,
            tensor_shape: Some(TensorShapeProto::from_dims(&[2, 2])),
            float_val: vec![7.0],
            ..Default::default()
        };
        let g = GraphDef { node: vec![const_node("a", a), const_node("b", b)], versions: None };
        let bytes = Bytes::from(g.encode_to_vec());
        let graph = Graph::decode(bytes.clone()).unwrap();
        let a = ConstTensor::of(graph.node("a").unwrap()).unwrap();
        assert_eq!(a.floats().unwrap(), vec![1.5, -2.0, 3.0]);
        // The raw content is a view into the input buffer, not a copy.
        let content = &a.proto.tensor_content;
        let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
        assert!(range.contains(&(content.as_ptr() as usize)));
        let b = ConstTensor::of(graph.node("b").unwrap()).unwrap();
        assert_eq!(b.floats().unwrap(), vec![7.0; 4]);
        assert!(Graph::decode(bytes.slice(..bytes.len() - 3)).is_err());
    }
}
