//! Shared helpers for the integration tests: fixture loading and a mismatch report.
#![allow(dead_code)]

use glow_web::Model;
use safetensors::{Dtype, SafeTensors};
use std::path::PathBuf;

pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn load_model(name: &str) -> Model {
    Model::load_dir(&fixture_dir(name)).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// The golden tensors written by tools/oracle.py.
pub struct Golden {
    bytes: Vec<u8>,
}

impl Golden {
    pub fn load(name: &str) -> Golden {
        Golden { bytes: std::fs::read(fixture_dir(name).join("golden.safetensors")).unwrap() }
    }
    fn view(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }
    pub fn shape(&self, name: &str) -> Vec<usize> {
        self.view().tensor(name).unwrap().shape().to_vec()
    }
    pub fn f32(&self, name: &str) -> Vec<f32> {
        let st = self.view();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }
    pub fn f64(&self, name: &str) -> Vec<f64> {
        let st = self.view();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F64, "{name}");
        t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
    }
    pub fn u8(&self, name: &str) -> Vec<u8> {
        self.view().tensor(name).unwrap().data().to_vec()
    }
    /// The golden images as RGBA8, the engine's image interface.
    pub fn rgba(&self) -> (usize, Vec<u8>) {
        let shape = self.shape("images");
        let c = shape[3];
        let px = self.u8("images");
        let mut out = Vec::new();
        for p in px.chunks_exact(c) {
            let g = p[0];
            let (r, gg, b) = if c == 3 { (p[0], p[1], p[2]) } else { (g, g, g) };
            out.extend_from_slice(&[r, gg, b, 255]);
        }
        (shape[0], out)
    }
}

/// Named tolerance: |a - b| <= abs + rel * |b|.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub abs: f64,
    pub rel: f64,
}

/// Asserts two arrays agree within `tol`, reporting count, max and mean |diff|, the
/// worst index and the first mismatches.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tol) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut bad = Vec::new();
    let (mut max, mut sum, mut worst) = (0f64, 0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w as f64).abs();
        if !d.is_finite() || !g.is_finite() {
            bad.push(i);
            max = f64::INFINITY;
            worst = i;
            continue;
        }
        sum += d;
        if d > max {
            max = d;
            worst = i;
        }
        if d > tol.abs + tol.rel * (w as f64).abs() {
            bad.push(i);
        }
    }
    if !bad.is_empty() {
        let first: Vec<String> =
            bad.iter().take(8).map(|&i| format!("[{i}] got {} want {}", got[i], want[i])).collect();
        panic!(
            "{what}: {} of {} values outside {:?}; max |d| {:.3e} at {worst}, mean |d| {:.3e}; first: {}",
            bad.len(),
            got.len(),
            tol,
            max,
            sum / got.len() as f64,
            first.join(", ")
        );
    }
}

pub const FIXTURES: [&str; 4] = ["tiny_additive", "tiny_affine", "tiny_affine_f16", "tiny_gray"];
