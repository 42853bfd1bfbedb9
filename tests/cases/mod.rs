//! Model tests written once and run both natively (tests/gpu_model.rs, lavapipe) and
//! in headless Chromium's WebGPU (tests/web.rs). Fixtures are compiled in with
//! `include_bytes!` so the browser needs no file system.
#![allow(dead_code)]

use glow_web::reference;
use glow_web::{GpuContext, Glow, Model};
use safetensors::SafeTensors;
use std::sync::Arc;

pub struct Fixture {
    pub name: &'static str,
    pub json: &'static str,
    pub weights: &'static [u8],
    pub golden: &'static [u8],
}

macro_rules! fixture {
    ($name:literal) => {
        Fixture {
            name: $name,
            json: include_str!(concat!("../fixtures/", $name, "/model.json")),
            weights: include_bytes!(concat!("../fixtures/", $name, "/weights.safetensors")),
            golden: include_bytes!(concat!("../fixtures/", $name, "/golden.safetensors")),
        }
    };
}

pub fn fixtures() -> Vec<Fixture> {
    vec![fixture!("tiny_additive"), fixture!("tiny_affine"), fixture!("tiny_affine_f16"), fixture!("tiny_gray")]
}

impl Fixture {
    pub fn model(&self) -> Model {
        Model::from_bytes(self.json, self.weights, None).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
    fn tensor(&self, name: &str) -> (Vec<usize>, Vec<u8>) {
        let st = SafeTensors::deserialize(self.golden).unwrap();
        let t = st.tensor(name).unwrap();
        (t.shape().to_vec(), t.data().to_vec())
    }
    pub fn f32(&self, name: &str) -> Vec<f32> {
        bytemuck::pod_collect_to_vec(&self.tensor(name).1)
    }
    pub fn f64(&self, name: &str) -> Vec<f64> {
        bytemuck::pod_collect_to_vec(&self.tensor(name).1)
    }
    /// Golden images as RGBA8 and their count.
    pub fn rgba(&self) -> (usize, Vec<u8>) {
        let (shape, px) = self.tensor("images");
        let c = shape[3];
        let mut out = Vec::new();
        for p in px.chunks_exact(c) {
            let (r, g, b) = if c == 3 { (p[0], p[1], p[2]) } else { (p[0], p[0], p[0]) };
            out.extend_from_slice(&[r, g, b, 255]);
        }
        (shape[0], out)
    }
}

/// Panics with a mismatch report unless |got - want| <= abs + rel * |want| everywhere.
pub fn close(what: &str, got: &[f32], want: &[f32], abs: f64, rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut bad = Vec::new();
    let mut max = 0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w as f64).abs();
        max = max.max(d);
        if !(d <= abs + rel * (w as f64).abs()) {
            bad.push(format!("[{i}] {g} vs {w}"));
        }
    }
    assert!(bad.is_empty(), "{what}: {} of {} outside abs {abs} rel {rel}, max |d| {max:.3e}; first: {:?}", bad.len(), got.len(), &bad[..bad.len().min(8)]);
}

pub async fn context() -> Arc<GpuContext> {
    Arc::new(GpuContext::new().await.expect("a WebGPU/Vulkan adapter"))
}

/// GPU encode: eps and bits/dim against the PyTorch goldens.
pub async fn encode_matches_golden(ctx: Arc<GpuContext>) {
    for f in fixtures() {
        let model = f.model();
        let glow = Glow::new(ctx.clone(), &model, 2).await.unwrap();
        let (n, rgba) = f.rgba();
        let enc = glow.encode(&rgba, n).await.unwrap();
        close(&format!("{} gpu eps", f.name), &enc.eps, &f.f32("eps"), 1e-4, 1e-4);
        for (i, (got, want)) in enc.bits_per_dim.iter().zip(f.f64("bpd")).enumerate() {
            assert!((got - want).abs() < 2e-5, "{} gpu bpd[{i}]: {got} vs {want}", f.name);
        }
    }
}

/// GPU decode at temperature 0.7 against the PyTorch goldens.
pub async fn decode_matches_golden(ctx: Arc<GpuContext>) {
    for f in fixtures() {
        let model = f.model();
        let glow = Glow::new(ctx.clone(), &model, 4).await.unwrap();
        let eps = f.f32("sample_eps");
        let t = f.f32("sample_temperature")[0];
        let m = eps.len() / model.dim();
        let temps = vec![t; model.config.levels as usize];
        let x = glow.decode_x(&eps, m, &temps).await.unwrap();
        close(&format!("{} gpu sample_x", f.name), &x, &f.f32("sample_x"), 2e-4, 2e-4);
    }
}

/// decode(encode(x)) == x within 1e-4, for f32 and f16 stored weights.
pub async fn round_trip(ctx: Arc<GpuContext>) {
    for f in fixtures() {
        let model = f.model();
        let glow = Glow::new(ctx.clone(), &model, 3).await.unwrap();
        let (n, rgba) = f.rgba();
        let enc = glow.encode(&rgba, n).await.unwrap();
        let temps = vec![1.0; model.config.levels as usize];
        let back = glow.decode_x(&enc.eps, n, &temps).await.unwrap();
        close(&format!("{} gpu round trip", f.name), &back, &f.f32("x"), 1e-4, 0.0);
        // And the displayed image is the input, quantized to n_bits, exactly.
        let mut q = Glow::new(ctx.clone(), &model, 3).await.unwrap();
        q.quantize_output = true;
        let shown = q.decode(&enc.eps, n, &temps).await.unwrap();
        let nb = model.config.n_bits;
        let want: Vec<u8> = rgba.iter().enumerate().map(|(i, &v)| if i % 4 == 3 { 255 } else { (v >> (8 - nb)) << (8 - nb) }).collect();
        assert_eq!(shown, want, "{}: quantized display of the round trip", f.name);
    }
}

/// Same seed, same bytes; another seed, other bytes; and the GPU sample equals the CPU
/// reference decode of the reference generator's eps.
pub async fn sampling_is_deterministic(ctx: Arc<GpuContext>) {
    let f = &fixtures()[1];
    let model = f.model();
    let glow = Glow::new(ctx.clone(), &model, 2).await.unwrap();
    let temps = vec![0.7; model.config.levels as usize];
    let a = glow.sample(3, &temps, 1234).await.unwrap();
    let b = glow.sample(3, &temps, 1234).await.unwrap();
    assert_eq!(a, b, "same seed gave different bytes");
    let c = glow.sample(3, &temps, 1235).await.unwrap();
    assert_ne!(a, c, "another seed gave the same image");
    let x = glow.sample_x(3, &temps, 1234).await.unwrap();
    let eps = reference::random_eps(1234, 3, model.dim());
    let want = reference::decode(&model.folded, &eps, 3, &temps);
    close("gpu sample vs cpu sample", &x, &want, 2e-4, 2e-4);
    // A batch of 3 on a plan of batch 2 (two chunks) equals one plan of batch 3.
    let g3 = Glow::new(ctx, &model, 3).await.unwrap();
    assert_eq!(g3.sample(3, &temps, 1234).await.unwrap(), a, "chunked batch differs");
}
