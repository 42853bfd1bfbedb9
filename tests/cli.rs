//! The command-line tool as a user runs it: the built `glow` binary on the shipped MNIST
//! model (small, so each command takes well under a second), its JSON read back, and a bad
//! argument refused with a message and a failing exit status.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/mnist-32x32-small")
}

fn glow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glow")).args(args).output().expect("the glow binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\nstdout: {text}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn info_describes_the_model() {
    let m = model();
    let j = json(&glow(&["info", "--model", m.to_str().unwrap()]));
    assert_eq!(j["name"], "mnist-32x32-small", "{j}");
}

#[test]
fn compare_threads_times_both_engines_and_finds_the_same_results() {
    let m = model();
    let j = json(&glow(&["bench", "--model", m.to_str().unwrap(), "--batch", "3", "--compare-threads", "2", "--runs", "2"]));
    assert_eq!(j["identical_results"], true, "{j}");
    assert_eq!(j["batch"], 3);
    for (side, threads) in [("one_thread", "1 thread"), ("threads", "2 threads")] {
        assert!(j[side]["adapter"].as_str().unwrap_or("").contains(threads), "{side}: {j}");
        for dir in ["decode_ms_per_image", "encode_ms_per_image"] {
            let s = &j[side][dir];
            assert_eq!(s["runs"], 2, "{side} {dir}: {s}");
            assert!(s["median_ms"].as_f64().is_some_and(|v| v > 0.0), "{side} {dir}: {s}");
        }
    }
    for dir in ["decode", "encode"] {
        assert!(j["speed_up"][dir].as_f64().is_some_and(|v| v.is_finite() && v > 0.0), "{j}");
    }
}

#[test]
fn sample_writes_a_png_grid_of_the_models_size() {
    let dir = std::env::temp_dir().join(format!("glow-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("grid.png");
    let m = model();
    let out = glow(&["sample", "--model", m.to_str().unwrap(), "--n", "4", "--backend", "cpu", "--out", png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&png).expect("a PNG was written");
    // Four 32x32 digits: a 2x2 grid at least 64 pixels a side (with any gaps between).
    assert!(img.width() >= 64 && img.height() >= 64, "{}x{}", img.width(), img.height());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_model_directory_is_refused_with_its_path() {
    let out = glow(&["info", "--model", "/nonexistent/model-dir"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model-dir"), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
}
