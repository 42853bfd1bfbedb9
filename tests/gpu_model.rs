//! The model on the native GPU (lavapipe in CI) against the PyTorch goldens and the
//! CPU reference. The bodies live in tests/cases and also run in the browser.
#![cfg(not(target_arch = "wasm32"))]

mod cases;

fn ctx() -> Option<std::sync::Arc<glow_web::GpuContext>> {
    match pollster::block_on(glow_web::GpuContext::new()) {
        Ok(c) => Some(std::sync::Arc::new(c)),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping GPU test: {e}");
            None
        }
        Err(e) => panic!("CI needs a GPU adapter (lavapipe): {e}"),
    }
}

#[test]
fn encode_matches_golden() {
    if let Some(c) = ctx() {
        eprintln!("adapter: {}", c.adapter_description());
        pollster::block_on(cases::encode_matches_golden(c));
    }
}

#[test]
fn decode_matches_golden() {
    if let Some(c) = ctx() {
        pollster::block_on(cases::decode_matches_golden(c));
    }
}

#[test]
fn round_trip() {
    if let Some(c) = ctx() {
        pollster::block_on(cases::round_trip(c));
    }
}

#[test]
fn sampling_is_deterministic() {
    if let Some(c) = ctx() {
        pollster::block_on(cases::sampling_is_deterministic(c));
    }
}

/// The timestamp profile covers every dispatch once, and its convs add up to the model's
/// FLOP count (so the per-layer GFLOP/s that `glow bench --profile` prints are sound).
#[test]
fn profile_covers_every_dispatch() {
    let Some(c) = ctx() else { return };
    for f in cases::fixtures() {
        let model = f.model();
        let g = pollster::block_on(glow_web::Glow::new(c.clone(), &model, 2)).unwrap();
        let (enc_n, dec_n) = g.dispatch_counts();
        for (decode, n) in [(false, enc_n), (true, dec_n + 1)] {
            let Some(times) = pollster::block_on(g.profile(decode, 2)).unwrap() else {
                return eprintln!("skipping: the adapter has no timestamp queries");
            };
            assert_eq!(times.len(), n, "{}: one entry per dispatch (decode {decode})", f.name);
            assert!(times.iter().all(|t| t.ms.is_finite() && t.ms >= 0.0), "{}: times", f.name);
            let flop: f64 = times.iter().map(|t| t.flop).sum();
            let want = 2.0 * model.config.flops_per_image();
            assert!((flop - want).abs() < 1e-6 * want, "{}: profile flop {flop} vs model {want}", f.name);
        }
    }
}
