//! The model through the `Session` on both backends natively: the GPU engine on the
//! Vulkan adapter (lavapipe in CI) and the CPU engine, against the PyTorch goldens and
//! the CPU reference. The bodies live in tests/cases and also run in the browser
//! (tests/web.rs).
#![cfg(not(target_arch = "wasm32"))]

mod cases;
use glow_web::engine::gpu::GpuEngine;
use glow_web::{Backend, GpuContext};
use std::sync::Arc;

/// Whether the GPU half of a test can run: CI must have an adapter (lavapipe); a
/// developer machine without one skips it with a note.
fn gpu() -> bool {
    match pollster::block_on(GpuContext::new()) {
        Ok(c) => {
            eprintln!("adapter: {}", c.adapter_description());
            true
        }
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping the GPU half: {e}");
            false
        }
        Err(e) => panic!("CI needs a GPU adapter (lavapipe): {e}"),
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            pollster::block_on(cases::$name(Backend::Cpu));
            if gpu() {
                pollster::block_on(cases::$name(Backend::Gpu));
            }
        }
    )*};
}

both_backends!(encode_matches_golden, decode_matches_golden, round_trip, sampling_is_deterministic, dequantized_bits_per_dim, bad_inputs_are_refused);

#[test]
fn backends_agree() {
    if gpu() {
        let ctx = Arc::new(pollster::block_on(GpuContext::new()).unwrap());
        pollster::block_on(cases::backends_agree(ctx));
    }
}

#[test]
fn gpu_weight_formats() {
    if gpu() {
        let ctx = Arc::new(pollster::block_on(GpuContext::new()).unwrap());
        assert!(ctx.f16_weights || std::env::var_os("CI").is_none(), "lavapipe in CI unpacks f16");
        eprintln!("shader-f16 on this device: {}", ctx.device.features().contains(wgpu::Features::SHADER_F16));
        pollster::block_on(cases::gpu_weight_formats(ctx));
    }
}

/// The timestamp profile covers every dispatch once, and its convs add up to the model's
/// FLOP count (so the per-layer GFLOP/s that `glow bench --profile` prints are sound).
/// lavapipe has timestamp queries, so in CI this cannot pass by returning early.
#[test]
fn profile_covers_every_dispatch() {
    if !gpu() {
        return;
    }
    let c = Arc::new(pollster::block_on(GpuContext::new()).unwrap());
    if !c.timestamps {
        assert!(std::env::var_os("CI").is_none(), "CI's adapter (lavapipe) must have timestamp queries");
        return eprintln!("skipping: the adapter has no timestamp queries");
    }
    for f in cases::fixtures() {
        let model = f.model();
        let g = pollster::block_on(GpuEngine::new(c.clone(), &model, 2)).unwrap();
        let (enc_n, dec_n) = g.dispatch_counts();
        for (decode, n) in [(false, enc_n), (true, dec_n + 1)] {
            let times = pollster::block_on(g.profile(decode, 2)).unwrap().expect("timestamps were reported available");
            assert_eq!(times.len(), n, "{}: one entry per dispatch (decode {decode})", f.name);
            assert!(times.iter().all(|t| t.ms.is_finite() && t.ms >= 0.0), "{}: times", f.name);
            let flop: f64 = times.iter().map(|t| t.flop).sum();
            let want = 2.0 * model.config.flops_per_image();
            assert!((flop - want).abs() < 1e-6 * want, "{}: profile flop {flop} vs model {want}", f.name);
        }
    }
}

/// Every attribute direction of the shipped face model, and a taught one, moves a latent
/// by the same distance per unit of slider, so a slider's range means the same for each
/// (the file's raw class-mean differences range over 3x in length).
#[test]
fn directions_share_one_length() {
    use glow_web::{Options, Preference, Session};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/celeba-64x64-additive");
    let s = Session::open(&dir, Options { backend: Preference::Cpu, batch: 1, ..Options::default() }).unwrap();
    let d = s.dim();
    let names = s.attribute_names();
    assert_eq!(names.len(), 40);
    let length = |amounts: &[f32]| {
        let moved = s.manipulate(&vec![0.0; d], amounts).unwrap();
        moved.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
    };
    let unit = |n: usize, i: usize| (0..n).map(|j| if j == i { 1.0 } else { 0.0 }).collect::<Vec<f32>>();
    let first = length(&unit(40, 0));
    assert!(first > 1.0, "direction length {first}");
    for i in 0..40 {
        let l = length(&unit(40, i));
        assert!((l - first).abs() < 1e-3 * first, "{}: length {l}, {} has {first}", names[i], names[0]);
    }
    // A direction taught from two samples (their difference is ~30x longer than a shipped
    // direction) gets the same length.
    let eps = s.sample_eps(2, 7, &s.temperatures(1.0, &[]).unwrap()).unwrap();
    s.teach("mine", &eps[..d], &eps[d..]).unwrap();
    let l = length(&unit(41, 40));
    assert!((l - first).abs() < 1e-3 * first, "taught direction length {l}, shipped {first}");
}
