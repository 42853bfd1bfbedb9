//! The model tests in headless Chromium through `wasm-pack test --headless --chrome`:
//! the same `tests/cases` bodies as the native tests/session.rs, on both backends (WebGPU
//! on SwiftShader in CI, and the CPU engine compiled to wasm), against the same PyTorch
//! goldens, and the exported JS API.
#![cfg(target_arch = "wasm32")]

mod cases;
use glow_web::Backend;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        #[wasm_bindgen_test]
        async fn $name() {
            cases::$name(Backend::Cpu).await;
            cases::$name(Backend::Gpu).await;
        }
    )*};
}

both_backends!(encode_matches_golden, decode_matches_golden, round_trip, sampling_is_deterministic, dequantized_bits_per_dim, bad_inputs_are_refused);

#[wasm_bindgen_test]
#[allow(clippy::arc_with_non_send_sync)] // the browser runs one thread
async fn backends_agree() {
    let ctx = std::sync::Arc::new(glow_web::GpuContext::new().await.expect("WebGPU"));
    web_sys::console::log_1(&format!("adapter: {}", ctx.adapter_description()).into());
    cases::backends_agree(ctx).await;
}

/// f16 weights on SwiftShader (unpack2x16float, no shader-f16 feature there).
#[wasm_bindgen_test]
#[allow(clippy::arc_with_non_send_sync)] // the browser runs one thread
async fn gpu_weight_formats() {
    let ctx = std::sync::Arc::new(glow_web::GpuContext::new().await.expect("WebGPU"));
    assert!(ctx.f16_weights, "WebGPU has unpack2x16float in core WGSL");
    // Whether this adapter would have offered `enable f16` instead (README: SwiftShader has not).
    let native = ctx.device.features().contains(wgpu::Features::SHADER_F16);
    web_sys::console::log_1(&format!("f16 weights via unpack2x16float; shader-f16 on this device: {native}").into());
    cases::gpu_weight_formats(ctx).await;
}

/// The `name` of the JS `Error` a call threw.
fn name(e: JsValue) -> String {
    js_sys::Error::from(e).name().into()
}

/// The exported JS API: load, sample, encode, decode, the latent helpers, and errors as
/// JS `Error`s whose `name` is the kind.
#[wasm_bindgen_test]
async fn js_api_round_trip_and_errors() {
    use glow_web::web::GlowModel;
    let f = &cases::fixtures()[1];
    for backend in ["webgpu", "cpu"] {
        let m = GlowModel::load(f.json.to_string(), f.weights.to_vec(), None, backend.into(), 2, None).await.unwrap_or_else(|_| panic!("load {backend}"));
        assert_eq!(m.backend(), backend);
        assert!(m.backend_reason().contains("as asked"), "{}", m.backend_reason());
        // This fixture stores f32 weights: `auto` keeps them f32 on the GPU.
        let weights = m.gpu_weights();
        assert!(if backend == "cpu" { weights.is_none() } else { weights.as_deref().is_some_and(|w| w.starts_with("f32 (")) }, "{backend}: {weights:?}");
        assert_eq!((m.width(), m.height(), m.dim()), (16, 16, 768));
        assert_eq!(m.level_layout().to_vec(), vec![0, 384, 384, 192, 576, 192]);
        let img = m.sample(2, 0.7, 5, None).await.unwrap_or_else(|_| panic!("sample"));
        assert_eq!(img.length(), 2 * 16 * 16 * 4);
        // sampleEps is what sample decodes: decoding it at T = 1 gives the same bytes.
        let eps = m.sample_eps(2, 5, 0.7, None).unwrap().to_vec();
        assert_eq!(m.decode(eps, 2, 1.0, None, None).await.unwrap().to_vec(), img.to_vec(), "{backend}: sampleEps vs sample");
        let (_, rgba) = f.rgba();
        let one = rgba[..16 * 16 * 4].to_vec();
        let enc = m.encode(one.clone(), 1).await.unwrap_or_else(|_| panic!("encode"));
        let eps = js_sys::Float32Array::from(js_sys::Reflect::get(&enc, &"eps".into()).unwrap()).to_vec();
        let bpd = js_sys::Float64Array::from(js_sys::Reflect::get(&enc, &"bitsPerDim".into()).unwrap()).to_vec();
        assert!((bpd[0] - f.f64("bpd")[0]).abs() < 2e-5, "{backend} bpd {}", bpd[0]);
        let both = m.bits_per_dim(one.clone(), 1, Some(2), Some(3)).await.unwrap();
        let deq = js_sys::Float64Array::from(js_sys::Reflect::get(&both, &"dequantized".into()).unwrap()).to_vec();
        assert!(deq[0].is_finite() && (deq[0] - bpd[0]).abs() < 1.0, "{backend} dequantized {}", deq[0]);
        let back = m.decode(eps.clone(), 1, 1.0, None, Some(true)).await.unwrap_or_else(|_| panic!("decode")).to_vec();
        assert_eq!(back, m.quantize_input(one.clone()).to_vec().iter().enumerate().map(|(i, &v)| if i % 4 == 3 { 255 } else { v & !7 }).collect::<Vec<u8>>(), "{backend}: quantized round trip");
        assert_eq!(name(m.encode(vec![0; 10], 1).await.err().unwrap()), "BadImage");
        assert_eq!(name(m.decode(vec![0.0; 5], 1, 1.0, None, None).await.err().unwrap()), "BadInput");
        assert_eq!(name(m.decode(vec![1e30; 768], 1, 1.0, None, None).await.err().unwrap()), "BadInput");
        assert_eq!(name(m.manipulate(vec![0.0; 768], vec![1.0]).err().unwrap()), "BadInput");
        // A taught direction joins the attributes and moves eps by the amount asked.
        let i = m.teach_direction("mine".into(), eps.clone(), vec![0.0; 768]).unwrap();
        assert_eq!(i, 0);
        let moved = m.manipulate(vec![0.0; 768], vec![1.0]).unwrap().to_vec();
        assert!(moved.iter().any(|v| *v != 0.0));
        m.forget_direction("mine".into()).unwrap();
        assert_eq!(m.attribute_names().length(), 0);
        let mid = m.mix(eps.clone(), vec![0.0; 768], 0.5, Some("linear".into())).unwrap().to_vec();
        assert!((mid[3] - eps[3] / 2.0).abs() < 1e-6);
    }
    let e = GlowModel::load("{}".into(), vec![1, 2, 3], None, "auto".into(), 1, None).await.err().unwrap();
    assert_eq!(name(e), "BadModelFile");
    let e = GlowModel::load(f.json.to_string(), f.weights.to_vec(), None, "metal".into(), 1, None).await.err().unwrap();
    assert_eq!(name(e), "BadInput");
}

/// `FaceFinder` and `alignedCrop`: the face weights load, a photo without a face gives no
/// faces, the identity transform cuts the image back out of itself, and errors are JS
/// `Error`s named by kind. (The port's numbers against face-api are checked natively,
/// tests/face.rs and tests/face_align.rs: the same Rust code.)
#[wasm_bindgen_test]
fn face_finder_js_api() {
    use glow_web::web::{aligned_crop, FaceFinder};
    let det = include_bytes!("../models/face/tiny_face_detector.safetensors").to_vec();
    let lm = include_bytes!("../models/face/face_landmark_68_tiny.safetensors").to_vec();
    let f = FaceFinder::load(det.clone(), lm.clone()).unwrap_or_else(|_| panic!("load"));
    let (w, h) = (160u32, 120u32);
    let noise: Vec<u8> = (0..w * h * 4).map(|i| if i % 4 == 3 { 255 } else { (i.wrapping_mul(2_654_435_761) >> 13) as u8 }).collect();
    let template = vec![22.5, 29.8, 41.8, 29.9, 32.2, 51.2, 64.0, 64.0];
    assert_eq!(f.find(noise.clone(), w, h, Some(template.clone())).unwrap_or_else(|_| panic!("find")).length(), 0);
    let ramp: Vec<u8> = (0..64 * 64).flat_map(|i| [(i % 64 * 4) as u8, (i / 64 * 4) as u8, 77, 255]).collect();
    let crop = aligned_crop(ramp.clone(), 64, 64, vec![1.0, 0.0, 0.0, 0.0], 64, 64).unwrap_or_else(|_| panic!("crop"));
    assert_eq!(crop.to_vec(), ramp);
    assert_eq!(name(f.find(vec![0; 10], w, h, None).err().unwrap()), "BadImage");
    assert_eq!(name(f.find(noise, w, h, Some(vec![1.0, 2.0])).err().unwrap()), "BadInput");
    assert_eq!(name(aligned_crop(ramp.clone(), 64, 64, vec![1.0, 0.0], 64, 64).err().unwrap()), "BadInput");
    assert_eq!(name(aligned_crop(ramp, 64, 64, vec![1.0, 0.0, 0.0, 0.0], 0, 64).err().unwrap()), "BadInput");
    assert_eq!(name(FaceFinder::load(lm, det).err().unwrap()), "BadModelFile");
}
