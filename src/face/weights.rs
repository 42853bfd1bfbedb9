//! Reading the face networks' safetensors files (made by tools/convert_faceapi.py from
//! face-api's weights). A tensor is U8 codes with a `<name>.quant` F64 [2] tensor holding
//! tfjs's (scale, min), dequantized as tfjs does (`f32(code * scale + min)`, the product and
//! sum in f64), or plain F32 or F16. Every tensor is checked for presence, shape and
//! finiteness; errors name the file and the tensor.

use crate::error::{GlowError, Result};
use safetensors::{Dtype, SafeTensors};

pub(crate) struct FaceWeights<'a> {
    st: SafeTensors<'a>,
    file: &'static str,
}

impl<'a> FaceWeights<'a> {
    pub fn parse(bytes: &'a [u8], file: &'static str) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(GlowError::Weights(format!("{file}: {} bytes, too short to be safetensors", bytes.len())));
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| GlowError::Weights(format!("{file}: not a valid safetensors file (truncated or corrupt?): {e}")))?;
        Ok(FaceWeights { st, file })
    }

    fn err(&self, name: &str, problem: impl Into<String>) -> GlowError {
        GlowError::tensor(&format!("{}: {name}", self.file), problem)
    }

    /// The tensor `name` as f32, checked against `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.st.tensor(name).map_err(|_| self.err(name, "missing"))?;
        if view.shape() != shape {
            return Err(self.err(name, format!("has shape {:?}, expected {shape:?}", view.shape())));
        }
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::U8 => {
                let q = self.get_f64(&format!("{name}.quant"), 2)?;
                let (scale, min) = (q[0], q[1]);
                data.iter().map(|&c| (c as f64 * scale + min) as f32).collect()
            }
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            d => return Err(self.err(name, format!("has dtype {d:?}, expected U8 (quantized), F32 or F16"))),
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.err(name, format!("value at index {i} is not finite")));
        }
        Ok(values)
    }

    fn get_f64(&self, name: &str, n: usize) -> Result<Vec<f64>> {
        let view = self.st.tensor(name).map_err(|_| self.err(name, "missing (a U8 tensor needs its (scale, min))"))?;
        if view.dtype() != Dtype::F64 || view.shape() != [n] {
            return Err(self.err(name, format!("is {:?} {:?}, expected F64 [{n}]", view.dtype(), view.shape())));
        }
        let v: Vec<f64> = view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(self.err(name, "is not finite"));
        }
        Ok(v)
    }
}
