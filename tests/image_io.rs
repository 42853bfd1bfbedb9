//! The model's recorded preprocessing of raw source images (`--preprocess`).
#![cfg(not(target_arch = "wasm32"))]

use glow_web::image_io::preprocess;

fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

#[test]
fn crop_box_at_source_size_and_box_filter_at_twice_the_size() {
    let spec = serde_json::json!({"source_size": [89, 109], "crop": [12, 26, 64, 64], "output": [64, 64]});
    let small = png(89, 109, |x, y| [x as u8, y as u8, 7]);
    let out = preprocess(&small, &spec, 64, 64).unwrap();
    assert_eq!(&out[..4], &[12, 26, 7, 255]);
    let last = (63 * 64 + 63) * 4;
    assert_eq!(&out[last..last + 4], &[75, 89, 7, 255]);
    // The full-resolution file: each output pixel is the mean of a 2x2 block.
    let big = png(178, 218, |x, y| [(x / 2) as u8 + (x % 2) as u8 * 2, (y / 2) as u8, 7]);
    let out2 = preprocess(&big, &spec, 64, 64).unwrap();
    assert_eq!(&out2[..4], &[13, 26, 7, 255]);
    // Wrong sizes are refused with the expected size named.
    let e = preprocess(&png(100, 100, |_, _| [0; 3]), &spec, 64, 64).unwrap_err().to_string();
    assert!(e.contains("89x109"), "{e}");
    let e = preprocess(&small, &spec, 32, 32).unwrap_err().to_string();
    assert!(e.contains("64x64") && e.contains("32x32"), "{e}");
}

#[test]
fn padding_for_mnist() {
    let spec = serde_json::json!({"source_size": [28, 28], "crop": [0, 0, 28, 28], "pad": [2, 2, 2, 2], "pad_value": 0, "output": [32, 32]});
    let out = preprocess(&png(28, 28, |_, _| [200, 200, 200]), &spec, 32, 32).unwrap();
    assert_eq!(&out[..4], &[0, 0, 0, 255]);
    let centre = (16 * 32 + 16) * 4;
    assert_eq!(&out[centre..centre + 4], &[200, 200, 200, 255]);
}
