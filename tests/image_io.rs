//! Image files: the model's recorded preprocessing of raw source images (`--preprocess`), the
//! size limits read from headers, `--fit`'s resampling and its memory, and JPEG decoding that
//! matches PIL's (libjpeg-turbo's) bit for bit.
#![cfg(not(target_arch = "wasm32"))]

use glow_web::image_io::{decode_rgb8, decode_rgba, preprocess, MAX_PIXELS, MAX_SIDE};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn jpeg(w: u32, h: u32, quality: u8, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(&img).unwrap();
    out
}

/// A solid-colour RGB PNG of any size, written a row at a time (never the whole image).
fn huge_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row: Vec<u8> = (0..w).flat_map(|_| [200u8, 120, 40]).collect();
    for _ in 0..h {
        stream.write_all(&row).unwrap();
    }
    stream.finish().unwrap();
    writer.finish().unwrap();
    out
}

/// A smooth picture with some texture, for the resampling tests.
fn picture(x: u32, y: u32) -> [u8; 3] {
    [(x * 255 / 3999) as u8, (y * 255 / 2999) as u8, ((x / 7 + y / 5) % 64 * 4) as u8]
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

// ---- size limits, from the header -------------------------------------------------------

#[test]
fn limits_are_a_phone_photo() {
    // A 64 MP phone photo (9248x6936) is taken; 108 MP (12000x9000) is not.
    assert!(glow_web::image_io::check_size(9248, 6936).is_ok());
    assert!(glow_web::image_io::check_size(6936, 9248).is_ok());
    assert!(glow_web::image_io::check_size(12000, 9000).is_err(), "108 MP is over {MAX_PIXELS} pixels");
    let e = glow_web::image_io::check_size(MAX_SIDE + 1, 100).unwrap_err().to_string();
    assert!(e.contains(&format!("{}x100", MAX_SIDE + 1)) && e.contains(&MAX_SIDE.to_string()), "{e}");
    let e = glow_web::image_io::check_size(0, 5).unwrap_err().to_string();
    assert!(e.contains("0x5"), "{e}");
}

#[test]
fn a_huge_png_is_refused_from_its_header() {
    let bytes = huge_png(12000, 12000);
    assert!(bytes.len() < 4 << 20, "the test PNG should be small: {} bytes", bytes.len());
    let spec = serde_json::json!({"source_size": [89, 109], "crop": [12, 26, 64, 64], "output": [64, 64]});
    let t = std::time::Instant::now();
    let errors = [
        decode_rgba(&bytes, 64, 64, false).unwrap_err().to_string(),
        decode_rgba(&bytes, 64, 64, true).unwrap_err().to_string(),
        decode_rgb8(&bytes).unwrap_err().to_string(),
        preprocess(&bytes, &spec, 64, 64).unwrap_err().to_string(),
    ];
    for e in &errors {
        assert!(e.contains("12000x12000") && e.contains("144.0 megapixels"), "{e}");
        assert!(e.contains("16384 pixels a side") && e.contains("67.1 megapixels"), "{e}");
    }
    // Decoding it would take seconds; reading four headers takes microseconds.
    assert!(t.elapsed().as_millis() < 500, "refusals took {:?}", t.elapsed());
    // A JPEG that claims a huge size (its header alone) is refused the same way.
    let mut small = jpeg(16, 16, 90, |_, _| [1, 2, 3]);
    let sof = small.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    small[sof + 5..sof + 9].copy_from_slice(&[0x4E, 0x20, 0x4E, 0x20]); // 20000x20000
    let e = decode_rgba(&small, 64, 64, true).unwrap_err().to_string();
    assert!(e.contains("20000x20000"), "{e}");
}

// ---- peak memory, measured in a child process -----------------------------------------

const CHILD_ENV: &str = "GLOW_IMAGE_IO_MEMORY_CHILD";

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs only when the parent test below starts this binary with CHILD_ENV = "<case> <file>":
/// reads the file, then prints how much the peak resident memory grew while `case` ran.
#[test]
fn memory_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else { return };
    let (case, path) = arg.split_once(' ').unwrap();
    let bytes = std::fs::read(path).unwrap();
    let before = vm_hwm_kib();
    let result = match case {
        "refuse" => decode_rgba(&bytes, 64, 64, true).map(|_| ()).map_err(|e| e.to_string()),
        "fit" => decode_rgba(&bytes, 64, 64, true).map(|v| assert_eq!(v.len(), 64 * 64 * 4)).map_err(|e| e.to_string()),
        _ => panic!("unknown case {case}"),
    };
    println!("CHILD_RESULT {:?}", result);
    println!("CHILD_PEAK_GROWTH_KIB {}", vm_hwm_kib().saturating_sub(before));
}

/// The growth of peak resident memory (KiB) while `case` runs on `bytes`, in a fresh process,
/// and the case's result.
fn peak_growth(case: &str, bytes: &[u8], ext: &str) -> (u64, String) {
    let path = std::env::temp_dir().join(format!("glow-image-io-{}-{case}.{ext}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["memory_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{case} {}", path.display()))
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let field = |key: &str| {
        stdout.lines().find_map(|l| l.find(key).map(|i| &l[i + key.len()..])).unwrap_or_else(|| panic!("no {key} in: {stdout}")).trim().to_string()
    };
    (field("CHILD_PEAK_GROWTH_KIB").parse().unwrap(), field("CHILD_RESULT"))
}

#[test]
fn peak_memory_of_a_refusal_and_of_fit() {
    // Refusing a 12000x12000 PNG: decoding it would take 432 MB (494 MB before this check).
    let (kib, result) = peak_growth("refuse", &huge_png(12000, 12000), "png");
    println!("refusing a 12000x12000 PNG: peak grew {} KiB; {result}", kib);
    assert!(result.contains("12000x12000"), "{result}");
    assert!(kib < 8 << 10, "refusing a 12000x12000 PNG took {kib} KiB");

    // --fit of a 4000x3000 JPEG (12 MP phone photo): its RGB8 alone would be 36 MB. The rows
    // stream through the resampler, so only libjpeg's strip buffers are held.
    let photo = jpeg(4000, 3000, 90, picture);
    let (kib, result) = peak_growth("fit", &photo, "jpg");
    println!("--fit of a 4000x3000 JPEG: peak grew {} KiB; {result}", kib);
    assert_eq!(result, "Ok(())");
    assert!(kib < 12 << 10, "--fit of a 4000x3000 JPEG took {kib} KiB");

    // A PNG is decoded whole (36 MB as RGB8), but resampled from those bytes: no float copy.
    let photo = png(4000, 3000, picture);
    let (kib, result) = peak_growth("fit", &photo, "png");
    println!("--fit of a 4000x3000 PNG: peak grew {} KiB; {result}", kib);
    assert_eq!(result, "Ok(())");
    assert!(kib < 48 << 10, "--fit of a 4000x3000 PNG took {kib} KiB");
}

// ---- --fit's resampling -----------------------------------------------------------------

fn rgb_of(rgba: &[u8]) -> Vec<[u8; 3]> {
    rgba.chunks_exact(4).map(|p| {
        assert_eq!(p[3], 255);
        [p[0], p[1], p[2]]
    }).collect()
}

#[test]
fn fit_crops_the_centre_and_averages_the_area() {
    let f = |x: u32, y: u32| [(x * 3 % 256) as u8, (y * 5 % 256) as u8, ((x * y) % 251) as u8];
    // 128x64 -> 32x32: the centred 64x64 crop starts at x = 32; each output pixel is the
    // mean of a 2x2 block.
    let out = rgb_of(&decode_rgba(&png(128, 64, f), 32, 32, true).unwrap());
    for oy in 0..32 {
        for ox in 0..32 {
            for (c, got) in out[(oy * 32 + ox) as usize].iter().enumerate() {
                let sum: u32 = (0..4).map(|i| f(32 + 2 * ox + i % 2, 2 * oy + i / 2)[c] as u32).sum();
                let want = (sum as f64 / 4.0).round() as u8;
                assert_eq!(*got, want, "pixel {ox},{oy} channel {c}");
            }
        }
    }
    // 90x300 -> 30x30: the crop is 90x90 from y = 105, 3x3 blocks.
    let out = rgb_of(&decode_rgba(&png(90, 300, f), 30, 30, true).unwrap());
    for (oy, ox) in [(0, 0), (7, 29), (29, 13)] {
        let sum: u32 = (0..9).map(|i| f(3 * ox + i % 3, 105 + 3 * oy + i / 3)[1] as u32).sum();
        assert_eq!(out[(oy * 30 + ox) as usize][1], (sum as f64 / 9.0).round() as u8);
    }
    // 160 -> 64 (2.5x), on a ramp whose pixel x holds x: output 2m covers [5m, 5m + 2.5), so
    // (5m + (5m + 1) + (5m + 2) / 2) / 2.5 = 5m + 0.8; output 2m + 1 covers [5m + 2.5, 5m + 5),
    // so ((5m + 2) / 2 + (5m + 3) + (5m + 4)) / 2.5 = 5m + 3.2. A flat channel stays flat.
    let out = rgb_of(&decode_rgba(&png(160, 160, |x, _| [x as u8, 77, 0]), 64, 64, true).unwrap());
    for (i, p) in out.iter().enumerate() {
        let (ox, m) = (i % 64, (i % 64 / 2) as u8);
        assert_eq!(p[0], if ox % 2 == 0 { 5 * m + 1 } else { 5 * m + 3 }, "pixel {i}");
        assert_eq!(p[1], 77);
    }
}

#[test]
fn fit_enlarges_linearly() {
    // 2x2 -> 4x4: output centres sit at source -0.25, 0.25, 0.75, 1.25 (clamped to 0..1).
    let out = rgb_of(&decode_rgba(&png(2, 2, |x, _| [[0, 200][x as usize], 0, 0]), 4, 4, true).unwrap());
    assert_eq!(out[..4].iter().map(|p| p[0]).collect::<Vec<_>>(), vec![0, 50, 150, 200]);
}

#[test]
fn fit_of_a_jpeg_is_fit_of_its_decoded_pixels() {
    // The streamed JPEG rows and a whole decoded image give the same result.
    let photo = jpeg(300, 200, 85, |x, y| picture(x * 13, y * 15));
    let (w, h, rgb) = decode_rgb8(&photo).unwrap();
    let as_png = png(w, h, |x, y| {
        let i = ((y * w + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    });
    for (tw, th) in [(64, 64), (32, 48), (500, 300)] {
        assert_eq!(decode_rgba(&photo, tw, th, true).unwrap(), decode_rgba(&as_png, tw, th, true).unwrap(), "{tw}x{th}");
    }
    // At the model's size: the decoded pixels, opaque.
    let exact = decode_rgba(&photo, 300, 200, false).unwrap();
    assert_eq!(rgb_of(&exact).concat(), rgb);
    let e = decode_rgba(&photo, 64, 64, false).unwrap_err().to_string();
    assert!(e.contains("300x200") && e.contains("--fit"), "{e}");
}

#[test]
fn broken_jpegs_are_errors() {
    let e = decode_rgba(b"definitely not an image", 16, 16, true).unwrap_err().to_string();
    assert!(e.contains("cannot decode") && e.contains("PNG or JPEG"), "{e}");
    let good = jpeg(40, 30, 90, |x, y| [x as u8, y as u8, 9]);
    let e = decode_rgb8(&good[..20]).unwrap_err().to_string();
    assert!(e.contains("cannot decode"), "{e}");
    // A component that names a quantisation table the file never defines: libjpeg's fatal
    // error comes back as an error, not a crash.
    let mut bad = good.clone();
    let sof = bad.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    bad[sof + 12] = 3; // the first component's table number
    let e = decode_rgb8(&bad).unwrap_err().to_string();
    assert!(e.contains("cannot decode the JPEG: libjpeg") && e.contains("table"), "{e}");
}

// ---- JPEG pixels equal PIL's ------------------------------------------------------------

fn fixture() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg/pil_decoded.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Decodes each listed file and compares it with PIL's decoding (tools/jpeg_hashes.py): size,
/// sha256 of the RGB bytes and the per-channel sums (which say how far off a mismatch is).
fn check_against_pil(list: &str, dir: &Path) {
    let fx = fixture();
    let entries = fx[list].as_array().unwrap();
    assert!(!entries.is_empty());
    let mut failures = Vec::new();
    for e in entries {
        let name = e["name"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|err| panic!("{}: {err}", dir.join(name).display()));
        let (w, h, rgb) = decode_rgb8(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        let size = [e["size"][0].as_u64().unwrap() as u32, e["size"][1].as_u64().unwrap() as u32];
        let sums: Vec<u64> = (0..3).map(|c| rgb.iter().skip(c).step_by(3).map(|&v| v as u64).sum()).collect();
        let want_sums: Vec<u64> = e["channel_sums"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        let hash: String = Sha256::digest(&rgb).iter().map(|b| format!("{b:02x}")).collect();
        if [w, h] != size || hash != e["sha256"].as_str().unwrap() {
            failures.push(format!(
                "{name}: {w}x{h} (PIL {}x{}), RGB sha256 {hash} differs from PIL's; channel sums {sums:?}, PIL's {want_sums:?}",
                size[0], size[1]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files decode differently from PIL {} (libjpeg-turbo {}):\n{}",
        failures.len(),
        entries.len(),
        fx["pillow"],
        fx["libjpeg_turbo"],
        failures.join("\n")
    );
}

#[test]
fn jpeg_pixels_equal_pil_on_synthetic_files() {
    // 4:4:4, 4:2:2 and 4:2:0 chroma, odd sizes, progressive and greyscale files made by PIL.
    check_against_pil("synthetic", &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg"));
}

#[test]
fn jpeg_pixels_equal_pil_on_celeba_files() {
    // The shared data set beside the repo (never copied into it).
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/celeba_9k_89x109/images");
    assert!(dir.is_dir(), "{} is missing: the CelebA files come with the project's shared data", dir.display());
    check_against_pil("celeba", &dir);
}
