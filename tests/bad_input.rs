//! Bad input gets a clear error that names the problem, never a panic or a hang.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::fixture_dir;
use glow_web::{GlowError, Model};
use safetensors::SafeTensors;

fn fixture_bytes() -> (String, Vec<u8>) {
    let dir = fixture_dir("tiny_affine");
    (std::fs::read_to_string(dir.join("model.json")).unwrap(), std::fs::read(dir.join("weights.safetensors")).unwrap())
}

/// (name, dtype, shape, raw bytes) of every tensor in a safetensors file.
fn tensors(bytes: &[u8]) -> Vec<(String, String, Vec<usize>, Vec<u8>)> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut v: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n.to_string(), format!("{:?}", t.dtype()), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Writes a safetensors file by hand (so tests can make files the crate would refuse to write).
fn write(ts: &[(String, String, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (n, d, s, b) in ts {
        header.insert(n.clone(), serde_json::json!({"dtype": d, "shape": s, "data_offsets": [data.len(), data.len() + b.len()]}));
        data.extend_from_slice(b);
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

fn load_err(json: &str, weights: &[u8]) -> String {
    match Model::from_bytes(json, weights, None) {
        Ok(_) => panic!("bad input was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_unmodified_file_loads() {
    let (json, w) = fixture_bytes();
    assert!(Model::from_bytes(&json, &write(&tensors(&w)), None).is_ok());
}

#[test]
fn truncated_and_non_safetensors_files_are_refused() {
    let (json, w) = fixture_bytes();
    for cut in [0, 5, 100, w.len() / 2, w.len() - 1] {
        let e = load_err(&json, &w[..cut]);
        assert!(e.starts_with("weights:"), "cut at {cut}: {e}");
    }
    let e = load_err(&json, b"<html>this is a 404 page, not weights</html>");
    assert!(e.contains("safetensors"), "{e}");
}

#[test]
fn a_missing_tensor_is_named() {
    let (json, w) = fixture_bytes();
    let ts: Vec<_> = tensors(&w).into_iter().filter(|t| t.0 != "L1.S0.f.l2.W").collect();
    let e = load_err(&json, &write(&ts));
    assert!(e.contains("'L1.S0.f.l2.W'") && e.contains("missing"), "{e}");
}

#[test]
fn a_wrong_dtype_is_named() {
    let (json, w) = fixture_bytes();
    let mut ts = tensors(&w);
    let t = ts.iter_mut().find(|t| t.0 == "top.b").unwrap();
    t.1 = "I32".into();
    let e = load_err(&json, &write(&ts));
    assert!(e.contains("'top.b'") && e.contains("I32"), "{e}");
}

#[test]
fn a_wrong_shape_is_named() {
    let (json, w) = fixture_bytes();
    let mut ts = tensors(&w);
    let t = ts.iter_mut().find(|t| t.0 == "L0.S1.invconv.W").unwrap();
    t.2 = vec![t.2[0] * t.2[1]];
    let e = load_err(&json, &write(&ts));
    assert!(e.contains("'L0.S1.invconv.W'") && e.contains("shape"), "{e}");
}

#[test]
fn nan_and_inf_weights_are_named() {
    let (json, w) = fixture_bytes();
    for bad in [f32::NAN, f32::INFINITY] {
        let mut ts = tensors(&w);
        let t = ts.iter_mut().find(|t| t.0 == "L2.S0.actnorm.logs").unwrap();
        t.3[8..12].copy_from_slice(&bad.to_le_bytes());
        let e = load_err(&json, &write(&ts));
        assert!(e.contains("'L2.S0.actnorm.logs'") && e.contains("not finite"), "{e}");
    }
}

#[test]
fn a_singular_invconv_is_named() {
    let (json, w) = fixture_bytes();
    let mut ts = tensors(&w);
    let t = ts.iter_mut().find(|t| t.0 == "L0.S0.invconv.W").unwrap();
    let c = t.2[1] * 4;
    let row0 = t.3[..c].to_vec();
    t.3[c..2 * c].copy_from_slice(&row0); // two equal rows
    let e = load_err(&json, &write(&ts));
    assert!(e.contains("'L0.S0.invconv.W'") && e.contains("singular"), "{e}");
}

#[test]
fn absurd_configs_are_refused() {
    let (json, w) = fixture_bytes();
    for (from, to, expect) in [
        ("\"levels\": 3", "\"levels\": 30", "levels"),
        ("\"height\": 16", "\"height\": 1000000", "side"),
        ("\"width\": 12", "\"width\": 100000000", "width"),
        ("\"n_bits\": 5", "\"n_bits\": 0", "n_bits"),
        ("\"channels\": 3", "\"channels\": 7", "channels"),
        ("\"coupling\": \"affine\"", "\"coupling\": \"magic\"", "expected `additive` or `affine`"),
    ] {
        assert!(json.contains(from), "fixture json lacks {from}");
        let e = load_err(&json.replace(from, to), &w);
        assert!(e.starts_with("model.json") && e.contains(expect), "{to}: {e}");
    }
    let e = load_err("not json at all", &w);
    assert!(e.starts_with("model.json"), "{e}");
}

#[test]
fn a_config_that_does_not_match_the_weights_names_a_tensor() {
    let (json, w) = fixture_bytes();
    // Same file, but the config claims another width: every coupling conv mismatches.
    let e = load_err(&json.replace("\"width\": 12", "\"width\": 16"), &w);
    assert!(e.contains("'L0.S0.f.l1.W'") && e.contains("expected [3, 3, 7, 16]"), "{e}");
}

#[test]
fn wrong_and_undecodable_images_are_refused() {
    let e = glow_web::image_io::decode_rgba(b"definitely not an image", 16, 16, false).unwrap_err();
    assert!(matches!(e, GlowError::Image(_)) && e.to_string().contains("cannot decode"), "{e}");
    let mut png = Vec::new();
    let img = image::RgbaImage::from_pixel(20, 10, image::Rgba([1, 2, 3, 255]));
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let e = glow_web::image_io::decode_rgba(&png, 16, 16, false).unwrap_err();
    assert!(e.to_string().contains("20x10") && e.to_string().contains("16x16"), "{e}");
    let fitted = glow_web::image_io::decode_rgba(&png, 16, 16, true).unwrap();
    assert_eq!(fitted.len(), 16 * 16 * 4);
}

#[test]
fn model_json_has_no_silent_defaults() {
    let (json, w) = fixture_bytes();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v.as_object_mut().unwrap().remove("learn_top");
    let e = load_err(&v.to_string(), &w);
    assert!(e.starts_with("model.json:") && e.contains("learn_top"), "{e}");
}
