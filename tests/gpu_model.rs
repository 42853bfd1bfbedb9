//! The model on the native GPU (lavapipe in CI) against the PyTorch goldens and the
//! CPU reference. The bodies live in tests/cases and also run in the browser.
#![cfg(not(target_arch = "wasm32"))]

mod cases;

fn ctx() -> Option<std::sync::Arc<glow::GpuContext>> {
    match pollster::block_on(glow::GpuContext::new()) {
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
