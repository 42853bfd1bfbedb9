//! The model tests in headless Chromium's WebGPU (SwiftShader in CI), through
//! `wasm-pack test --headless --chrome`. Same bodies as the native tests/gpu_model.rs,
//! against the same PyTorch goldens, so the browser agrees with native within the
//! same tolerances.
#![cfg(target_arch = "wasm32")]

mod cases;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn browser_encode_matches_golden() {
    let ctx = cases::context().await;
    web_sys::console::log_1(&format!("adapter: {}", ctx.adapter_description()).into());
    cases::encode_matches_golden(ctx).await;
}

#[wasm_bindgen_test]
async fn browser_decode_matches_golden() {
    cases::decode_matches_golden(cases::context().await).await;
}

#[wasm_bindgen_test]
async fn browser_round_trip() {
    cases::round_trip(cases::context().await).await;
}

#[wasm_bindgen_test]
async fn browser_sampling_is_deterministic() {
    cases::sampling_is_deterministic(cases::context().await).await;
}

/// The exported JS API: load, sample, encode, decode and errors as JS exceptions.
#[wasm_bindgen_test]
async fn js_api_round_trip_and_errors() {
    use glow_web::web::GlowModel;
    let f = &cases::fixtures()[1];
    for backend in ["webgpu", "cpu"] {
        let m = GlowModel::load(f.json.to_string(), f.weights.to_vec(), None, backend.into(), 2).await.unwrap_or_else(|_| panic!("load {backend}"));
        assert_eq!(m.backend(), backend);
        assert_eq!((m.width(), m.height(), m.dim()), (16, 16, 768));
        let img = m.sample(2, 0.7, 5, None).await.unwrap_or_else(|_| panic!("sample"));
        assert_eq!(img.length(), 2 * 16 * 16 * 4);
        let (_, rgba) = f.rgba();
        let one = rgba[..16 * 16 * 4].to_vec();
        let enc = m.encode(one.clone(), 1).await.unwrap_or_else(|_| panic!("encode"));
        let eps = js_sys::Float32Array::from(js_sys::Reflect::get(&enc, &"eps".into()).unwrap()).to_vec();
        let bpd = js_sys::Float64Array::from(js_sys::Reflect::get(&enc, &"bitsPerDim".into()).unwrap()).to_vec();
        assert!((bpd[0] - f.f64("bpd")[0]).abs() < 1e-4, "{backend} bpd {}", bpd[0]);
        let back = m.decode(eps, 1, 1.0).await.unwrap_or_else(|_| panic!("decode")).to_vec();
        // Continuous output of an exact round trip lands in the input's n_bits bin.
        for (i, (a, b)) in back.iter().zip(&one).enumerate() {
            if i % 4 != 3 {
                assert_eq!(a >> 3, b >> 3, "{backend} pixel byte {i}");
            }
        }
        assert!(m.encode(vec![0; 10], 1).await.is_err(), "wrong image size accepted");
        assert!(m.decode(vec![0.0; 5], 1, 1.0).await.is_err(), "wrong eps size accepted");
        assert!(m.manipulate(vec![0.0; 768], vec![1.0]).is_err(), "no attributes, yet manipulate worked");
    }
    assert!(GlowModel::load("{}".into(), vec![1, 2, 3], None, "auto".into(), 1).await.is_err());
}
