//! Models with random but realistic weights, for benchmarks of configurations we have
//! no trained weights for (such as OpenAI's CelebA-HQ size). Deterministic per seed.

use super::config::ModelConfig;
use super::weights::Weights;
use super::{FoldedModel, Model};
use crate::error::Result;
use std::collections::HashMap;

/// A small deterministic generator of uniform numbers (splitmix64); not for statistics.
/// Also what the tests use to place synthetic faces (tests/face_align.rs).
pub struct SplitMix(pub u64);
impl SplitMix {
    /// The next number in [0, 1), from the top 53 bits.
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Normal numbers from `SplitMix` by Box-Muller.
struct Gauss(SplitMix);
impl Gauss {
    fn normal(&mut self, std: f64) -> f32 {
        let u1 = self.0.uniform().max(1e-300);
        let u2 = self.0.uniform();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
    }
}

/// A random rotation (Gram-Schmidt of a Gaussian matrix), as Glow initialises W.
fn rotation(g: &mut Gauss, c: usize) -> Vec<f32> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    while rows.len() < c {
        let mut v: Vec<f64> = (0..c).map(|_| g.normal(1.0) as f64).collect();
        for r in &rows {
            let d: f64 = v.iter().zip(r).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(r).for_each(|(a, b)| *a -= d * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if n > 1e-6 {
            rows.push(v.iter().map(|a| a / n).collect());
        }
    }
    rows.concat().iter().map(|&v| v as f32).collect()
}

impl Model {
    /// A model with the given config and random weights of a trained model's scale.
    pub fn random(config: &ModelConfig, seed: u64) -> Result<Model> {
        let map = random_weights(config, seed)?;
        let w = Weights::from_map(config, map)?;
        let folded = FoldedModel::new(config, &w)?;
        Ok(Model { config: config.clone(), folded, directions: None })
    }
}

/// Random natural parameters for a config, by tensor name.
pub fn random_weights(config: &ModelConfig, seed: u64) -> Result<HashMap<String, Vec<f32>>> {
        config.validate()?;
        let mut g = Gauss(SplitMix(seed));
        let mut map = HashMap::new();
        for (name, shape) in config.expected_tensors() {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = if name.ends_with("invconv.W") {
                rotation(&mut g, shape[0])
            } else if name.ends_with(".b") {
                (0..n).map(|_| g.normal(0.05)).collect()
            } else if name.ends_with(".logs") {
                (0..n).map(|_| g.normal(0.01)).collect()
            } else if name.contains("f.last") || name.contains("prior") || name.starts_with("top") {
                (0..n).map(|_| g.normal(0.01)).collect()
            } else {
                let fan_in = (n / shape[shape.len() - 1]) as f64;
                (0..n).map(|_| g.normal((1.0 / fan_in).sqrt())).collect()
            };
            map.insert(name, v);
        }
        Ok(map)
}

/// Serialises named tensors (shapes from the config) as safetensors, f16 or f32.
pub fn write_safetensors(config: &ModelConfig, map: &HashMap<String, Vec<f32>>, f16: bool) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape) in config.expected_tensors() {
        let v = &map[&name];
        let start = data.len();
        for x in v {
            if f16 {
                data.extend_from_slice(&half::f16::from_f32(*x).to_le_bytes());
            } else {
                data.extend_from_slice(&x.to_le_bytes());
            }
        }
        header.insert(
            name,
            serde_json::json!({"dtype": if f16 { "F16" } else { "F32" }, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&header).unwrap_or_default();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}
