//! The shipped models (`models/*/`) against the goldens that tools/export.py computed with
//! the float64 PyTorch oracle from the exported f16 weights: engine == exporter.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use glow_web::model::pixels;
use glow_web::reference;
use glow_web::Model;
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};

/// Every directory under `models/` that holds a `model.json`, sorted.
fn model_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("model.json").is_file()).collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    dirs
}

/// `golden.safetensors` of a model directory (same tensors as tests/fixtures/*/).
struct ModelGolden {
    bytes: Vec<u8>,
}

impl ModelGolden {
    fn load(dir: &Path) -> ModelGolden {
        let path = dir.join("golden.safetensors");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        ModelGolden { bytes }
    }
    fn view(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }
    fn shape(&self, name: &str) -> Vec<usize> {
        self.view().tensor(name).unwrap().shape().to_vec()
    }
    fn f32(&self, name: &str) -> Vec<f32> {
        let st = self.view();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }
    fn f64(&self, name: &str) -> Vec<f64> {
        let st = self.view();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F64, "{name}");
        t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
    }
    /// The golden images (u8 `[N, H, W, c0]`) as RGBA8; one-channel images go to R, G and B.
    fn rgba(&self) -> (usize, Vec<u8>) {
        let st = self.view();
        let t = st.tensor("images").unwrap();
        assert_eq!(t.dtype(), Dtype::U8);
        let c = t.shape()[3];
        let mut out = Vec::new();
        for p in t.data().chunks_exact(c) {
            let (r, g, b) = if c == 3 { (p[0], p[1], p[2]) } else { (p[0], p[0], p[0]) };
            out.extend_from_slice(&[r, g, b, 255]);
        }
        (t.shape()[0], out)
    }
}

fn name_of(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

fn load(dir: &Path) -> Model {
    Model::load_dir(dir).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

#[test]
fn every_shipped_model_has_a_golden() {
    let dirs = model_dirs();
    assert!(!dirs.is_empty(), "no model directory under models/");
    for dir in dirs {
        assert!(dir.join("golden.safetensors").is_file(), "{} has no golden.safetensors", dir.display());
    }
}

#[test]
fn shipped_models_encode_like_the_exporter() {
    for dir in model_dirs() {
        let name = name_of(&dir);
        let model = load(&dir);
        let g = ModelGolden::load(&dir);
        let (n, rgba) = g.rgba();
        let c = model.config.image.channels as usize;
        let x = pixels::image_to_x(&rgba, c, model.config.n_bits);
        assert_close(&format!("{name} x"), &x, &g.f32("x"), Tol { abs: 0.0, rel: 0.0 });
        let enc = reference::encode(&model.folded, &x, n);
        assert_eq!(g.shape("eps"), vec![n, model.dim()], "{name} eps shape");
        let want_eps = g.f32("eps");
        let max_eps = enc.eps.iter().zip(&want_eps).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let max_bpd = enc.bits_per_dim.iter().zip(g.f64("bpd")).map(|(a, b)| (a - b).abs()).fold(0f64, f64::max);
        eprintln!("{name}: max |d eps| {max_eps:.2e}, max |d bpd| {max_bpd:.2e}");
        assert_close(&format!("{name} eps"), &enc.eps, &want_eps, Tol { abs: 2e-4, rel: 1e-3 });
        for (i, (got, want)) in enc.bits_per_dim.iter().zip(g.f64("bpd")).enumerate() {
            assert!((got - want).abs() < 1e-4, "{name} bpd[{i}]: got {got}, want {want}");
        }
    }
}

#[test]
fn shipped_models_decode_like_the_exporter() {
    for dir in model_dirs() {
        let name = name_of(&dir);
        let model = load(&dir);
        let g = ModelGolden::load(&dir);
        let eps = g.f32("sample_eps");
        let t = g.f32("sample_temperature")[0];
        let m = g.shape("sample_eps")[0];
        let temps = vec![t; model.config.levels as usize];
        let x = reference::decode(&model.folded, &eps, m, &temps);
        let want = g.f32("sample_x");
        let max_d = x.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        eprintln!("{name}: decode max |d x| {max_d:.2e}");
        assert_close(&format!("{name} sample_x"), &x, &want, Tol { abs: 1e-4, rel: 1e-4 });
    }
}

/// The GPU engine (the plan the page runs: im2col for f1, fused additive coupling, the
/// vec4/skinny kernels at the real widths) on the shipped models, against the same goldens.
#[test]
fn shipped_models_on_the_gpu_match_the_exporter() {
    let ctx = match pollster::block_on(glow_web::GpuContext::new()) {
        Ok(c) => std::sync::Arc::new(c),
        Err(e) if std::env::var_os("CI").is_none() => return eprintln!("skipping GPU test: {e}"),
        Err(e) => panic!("CI needs a GPU adapter (lavapipe): {e}"),
    };
    for dir in model_dirs() {
        let name = name_of(&dir);
        let model = load(&dir);
        let g = ModelGolden::load(&dir);
        let (n, rgba) = g.rgba();
        let session = |batch| {
            let opts = glow_web::Options { backend: glow_web::Preference::Gpu, batch, ..Default::default() };
            pollster::block_on(glow_web::Session::with_context(model.clone(), opts, Ok(ctx.clone()))).unwrap()
        };
        let gpu = session(n);
        let enc = pollster::block_on(gpu.encode(&rgba, n)).unwrap();
        assert_close(&format!("{name} gpu eps"), &enc.eps, &g.f32("eps"), Tol { abs: 2e-4, rel: 1e-3 });
        for (i, (got, want)) in enc.bits_per_dim.iter().zip(g.f64("bpd")).enumerate() {
            assert!((got - want).abs() < 1e-4, "{name} gpu bpd[{i}]: got {got}, want {want}");
        }
        let eps = g.f32("sample_eps");
        let m = g.shape("sample_eps")[0];
        let temps = vec![g.f32("sample_temperature")[0]; model.config.levels as usize];
        let x = pollster::block_on(session(m).decode_x(&eps, m, &temps)).unwrap();
        assert_close(&format!("{name} gpu sample_x"), &x, &g.f32("sample_x"), Tol { abs: 1e-4, rel: 1e-4 });
    }
}
