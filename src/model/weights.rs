//! Reading `weights.safetensors` and `attributes.safetensors`: every tensor is checked
//! for presence, dtype, shape and finiteness against the config before anything else
//! happens. safetensors gives no alignment guarantee, so values are decoded with
//! `from_le_bytes` from the byte slice, never cast in place.

use super::config::ModelConfig;
use crate::error::{GlowError, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;

/// The model's natural parameters as f32, by name.
#[derive(Debug, Clone)]
pub struct Weights {
    tensors: HashMap<String, Vec<f32>>,
}

impl Weights {
    pub fn get(&self, name: &str) -> &[f32] {
        // Every expected name was checked at parse time, so a miss is a programming error.
        self.tensors.get(name).map(|v| v.as_slice()).unwrap_or_else(|| panic!("{name} checked at load"))
    }

    /// Parses and checks a weights file against the config.
    pub fn parse(config: &ModelConfig, bytes: &[u8]) -> Result<Self> {
        let st = open(bytes)?;
        let mut tensors = HashMap::new();
        for (name, shape) in config.expected_tensors() {
            let values = read_tensor(&st, &name, &shape)?;
            tensors.insert(name, values);
        }
        Ok(Weights { tensors })
    }

    /// Builds weights from already-decoded tensors (used by tests and converters);
    /// still checks names and shapes.
    pub fn from_map(config: &ModelConfig, mut map: HashMap<String, Vec<f32>>) -> Result<Self> {
        let mut tensors = HashMap::new();
        for (name, shape) in config.expected_tensors() {
            let v = map.remove(&name).ok_or_else(|| GlowError::tensor(&name, "missing"))?;
            let n: usize = shape.iter().product();
            if v.len() != n {
                return Err(GlowError::tensor(&name, format!("has {} values, expected {n}", v.len())));
            }
            tensors.insert(name, v);
        }
        Ok(Weights { tensors })
    }
}

fn open(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    if bytes.len() < 8 {
        return Err(GlowError::Weights(format!(
            "file is {} bytes long, too short to be safetensors",
            bytes.len()
        )));
    }
    SafeTensors::deserialize(bytes)
        .map_err(|e| GlowError::Weights(format!("not a valid safetensors file (truncated or corrupt?): {e}")))
}

fn dtype_name(d: Dtype) -> String {
    format!("{d:?}")
}

/// Reads one tensor as f32, checking dtype, shape and that every value is finite.
pub fn read_tensor(st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let view = st.tensor(name).map_err(|_| GlowError::tensor(name, "missing from the weights file"))?;
    if view.shape() != shape {
        return Err(GlowError::tensor(
            name,
            format!("has shape {:?}, expected {:?}", view.shape(), shape),
        ));
    }
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        d => {
            return Err(GlowError::tensor(
                name,
                format!("has dtype {}, expected F32 or F16", dtype_name(d)),
            ))
        }
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(GlowError::tensor(name, format!("value {} at index {i} is not finite", values[i])));
    }
    Ok(values)
}

/// Attribute directions in eps space: one row of length `dim` per name.
#[derive(Debug, Clone)]
pub struct Directions {
    pub names: Vec<String>,
    pub dim: usize,
    pub values: Vec<f32>,
}

impl Directions {
    pub fn parse(names: &[String], dim: usize, bytes: &[u8]) -> Result<Self> {
        let st = open(bytes)?;
        let values = read_tensor(&st, "directions", &[names.len(), dim])?;
        Ok(Directions { names: names.to_vec(), dim, values })
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}
