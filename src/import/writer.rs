//! A safetensors file built in place: the header is laid out first from the names and
//! shapes, the buffer is allocated once at its final size, and every tensor's values are
//! written straight into their slot (f32 or f16, little-endian). No per-tensor copies.

use crate::error::{GlowError, Result};
use std::collections::HashMap;

pub struct TensorWriter {
    buf: Vec<u8>,
    f16: bool,
    /// name -> (byte offset of the values in `buf`, element count)
    slots: HashMap<String, (usize, usize)>,
    written: HashMap<String, bool>,
    order: Vec<String>,
}

impl TensorWriter {
    pub fn new(tensors: &[(String, Vec<usize>)], f16: bool, metadata: &[(String, String)]) -> Result<Self> {
        let es = if f16 { 2 } else { 4 };
        let dt = if f16 { "F16" } else { "F32" };
        let mut header = serde_json::Map::new();
        let mut offset = 0usize;
        let mut rel = Vec::with_capacity(tensors.len());
        for (name, shape) in tensors {
            let n: usize = shape.iter().product();
            let end = offset + n * es;
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": dt, "shape": shape, "data_offsets": [offset, end]}),
            );
            rel.push((name.clone(), offset, n));
            offset = end;
        }
        if !metadata.is_empty() {
            let m: serde_json::Map<String, serde_json::Value> =
                metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
            header.insert("__metadata__".into(), serde_json::Value::Object(m));
        }
        let mut text = serde_json::to_string(&header).map_err(|e| GlowError::Weights(e.to_string()))?;
        // Pad the header with spaces so the values start 8-byte aligned in the file.
        while (8 + text.len()) % 8 != 0 {
            text.push(' ');
        }
        let start = 8 + text.len();
        let total = start + offset;
        let mut buf = Vec::new();
        buf.try_reserve_exact(total)
            .map_err(|_| GlowError::Weights(format!("cannot allocate {total} bytes for the weights file")))?;
        buf.extend_from_slice(&(text.len() as u64).to_le_bytes());
        buf.extend_from_slice(text.as_bytes());
        buf.resize(total, 0);
        let slots = rel.iter().map(|(n, o, c)| (n.clone(), (start + o, *c))).collect();
        let written = rel.iter().map(|(n, _, _)| (n.clone(), false)).collect();
        let order = rel.into_iter().map(|(n, _, _)| n).collect();
        Ok(TensorWriter { buf, f16, slots, written, order })
    }

    /// The slot of tensor `name`, to be filled with `put` (unset values stay 0).
    pub fn sink(&mut self, name: &str) -> Result<Sink<'_>> {
        let &(off, n) = self.slots.get(name).ok_or_else(|| GlowError::tensor(name, "not part of this model"))?;
        let w = self.written.get_mut(name).expect("same keys");
        if std::mem::replace(w, true) {
            return Err(GlowError::tensor(name, "written twice"));
        }
        let es = if self.f16 { 2 } else { 4 };
        Ok(Sink { bytes: &mut self.buf[off..off + n * es], f16: self.f16, bad: None })
    }

    /// The file's bytes; every tensor must have been written.
    pub fn finish(self) -> Result<Vec<u8>> {
        if let Some(n) = self.order.iter().find(|n| !self.written[*n]) {
            return Err(GlowError::tensor(n, "no value was written for it"));
        }
        Ok(self.buf)
    }
}

/// One tensor's slot.
pub struct Sink<'a> {
    bytes: &'a mut [u8],
    f16: bool,
    bad: Option<(usize, f64)>,
}

impl Sink<'_> {
    /// Sets element `i` (row-major) to `v`, rounded to the file's dtype.
    #[inline]
    pub fn put(&mut self, i: usize, v: f64) {
        if self.f16 {
            let h = half::f16::from_f64(v);
            if !h.is_finite() && self.bad.is_none() {
                self.bad = Some((i, v));
            }
            self.bytes[2 * i..2 * i + 2].copy_from_slice(&h.to_le_bytes());
        } else {
            let f = v as f32;
            if !f.is_finite() && self.bad.is_none() {
                self.bad = Some((i, v));
            }
            self.bytes[4 * i..4 * i + 4].copy_from_slice(&f.to_le_bytes());
        }
    }

    /// `Err(problem)` if a value was not finite in the file's dtype.
    pub fn done(self) -> std::result::Result<(), String> {
        match self.bad {
            None => Ok(()),
            Some((i, v)) => Err(format!(
                "value {v} at index {i} is not representable as a finite {}",
                if self.f16 { "float16 (try without --f16)" } else { "float32" }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_file_safetensors_reads_back() {
        let t = vec![("a".to_string(), vec![2, 3]), ("b".to_string(), vec![1])];
        for f16 in [false, true] {
            let mut w = TensorWriter::new(&t, f16, &[("k".into(), "v".into())]).unwrap();
            let mut s = w.sink("a").unwrap();
            for i in 0..6 {
                s.put(i, i as f64 * 0.5);
            }
            s.done().unwrap();
            assert!(w.sink("a").is_err());
            assert!(TensorWriter::new(&t, f16, &[]).unwrap().finish().is_err());
            w.sink("b").unwrap().put(0, -1.0);
            let bytes = w.finish().unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let v = crate::model::weights::read_tensor(&st, "a", &[2, 3]).unwrap();
            assert_eq!(v, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
            assert_eq!(crate::model::weights::read_tensor(&st, "b", &[1]).unwrap(), vec![-1.0]);
        }
        let mut w = TensorWriter::new(&t, true, &[]).unwrap();
        let mut s = w.sink("b").unwrap();
        s.put(0, 1e6);
        assert!(s.done().unwrap_err().contains("float16"));
    }
}
