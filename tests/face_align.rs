//! Alignment end to end on synthetic photos: 48 training faces of the default model
//! (tests/fixtures/face/train_sample.txt), each rotated by up to +-25 degrees, scaled 0.5x to
//! 3x (log-uniform), moved, and pasted (bicubic, 4x4 supersampled) into a photo-like
//! background about three times the face's size (at least 320x240), then found and aligned
//! to the model's template (model.json "align").
//!
//! * Eyes: the true eye centres (measured by the detector on the clean 89x109 source image,
//!   pushed through the synthetic transform) are mapped into the 64x64 frame by the alignment
//!   found in the photo; >= 95% of faces must have both within 2 px of the template's eyes.
//! * Bits/dim, where the photo holds the face at the crop's resolution or more (scale >= 1):
//!   - what alignment is responsible for: the aligned crop against the crop that the true
//!     transform (perfect detection) cuts from the same photo with the same resampler:
//!     >= 95% of faces within 0.05;
//!   - against the original training crop (preprocess: the 64x64 box at (12, 26)), in the
//!     headline figure (uniform dequantization, one seeded draw): mean difference within
//!     0.03, >= 70% within 0.05, none beyond 0.15 (why not 95%, and why not the bin-centre
//!     figure: the numbers below the asserts); faces at scale < 1 are reported (their crops
//!     are enlargements, lower by what the photo lost).
//! * The resampler gives the training crop back exactly for a whole-pixel shift.
//! * The faces are found in the photos as `glow bpd --align` finds them (`FaceModels::align`).
//!
//! Runs in about 60-100 s under `cargo test` (the crate is built with opt-level 3 for tests,
//! Cargo.toml [profile.test]; at opt-level 1 it took over 2 minutes).
//!
//! Needs ../shared/data (CI has it); passes with a SKIPPED message without it.
#![cfg(not(target_arch = "wasm32"))]

use glow_web::face::{aligned_crop, FaceModels, Image, Similarity, Template};
use glow_web::image_io::decode_rgb8;
use glow_web::model::random::SplitMix;
use glow_web::{Model, Options, Preference, Session};
use std::path::Path;

const CROP: [usize; 2] = [12, 26];

/// Uniform draws from the crate's splitmix64 generator.
struct Rng(SplitMix);
impl Rng {
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.0.uniform()
    }
}

/// A photo-like background: a few smooth colour waves over a gradient, plus grain.
fn background(rng: &mut Rng) -> impl Fn(f64, f64) -> [f64; 3] {
    let waves: Vec<[f64; 6]> = (0..4)
        .map(|_| [rng.range(0.002, 0.02), rng.range(0.002, 0.02), rng.range(0.0, 6.3), rng.range(20.0, 50.0), rng.range(-1.0, 1.0), rng.range(-1.0, 1.0)])
        .collect();
    let base = [rng.range(60.0, 180.0), rng.range(60.0, 180.0), rng.range(60.0, 180.0)];
    move |x, y| {
        let mut c = [base[0] + 0.05 * x, base[1] + 0.04 * y, base[2] - 0.03 * x];
        for w in &waves {
            let v = (w[0] * x + w[1] * y + w[2]).sin() * w[3];
            c[0] += v;
            c[1] += v * w[4];
            c[2] += v * w[5];
        }
        let grain = ((x * 12.9898 + y * 78.233).sin() * 43758.5453).fract() * 12.0;
        c.map(|v| v + grain)
    }
}

/// Catmull-Rom (bicubic) sample of an RGB image at continuous (x, y), edges clamped: a sharp
/// interpolation, standing in for the detail a camera would have recorded.
fn bicubic(rgb: &[u8], w: usize, h: usize, x: f64, y: f64) -> [f64; 3] {
    let (x, y) = (x - 0.5, y - 0.5);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let k = |t: f64| {
        let t = t.abs();
        if t < 1.0 {
            1.5 * t * t * t - 2.5 * t * t + 1.0
        } else if t < 2.0 {
            -0.5 * t * t * t + 2.5 * t * t - 4.0 * t + 2.0
        } else {
            0.0
        }
    };
    let mut acc = [0.0; 3];
    for dy in -1..=2 {
        let wy = k(dy as f64 - fy);
        let yy = (y0 + dy as f64).clamp(0.0, (h - 1) as f64) as usize;
        for dx in -1..=2 {
            let wx = k(dx as f64 - fx);
            let xx = (x0 + dx as f64).clamp(0.0, (w - 1) as f64) as usize;
            for (c, a) in acc.iter_mut().enumerate() {
                *a += wy * wx * rgb[(yy * w + xx) * 3 + c] as f64;
            }
        }
    }
    acc
}

/// The source face pasted into a `w` x `h` photo by `t` (source -> photo), 4x4 supersampled.
fn render(face: &[u8], fw: usize, fh: usize, t: &Similarity, (w, h): (usize, usize), bg: &dyn Fn(f64, f64) -> [f64; 3]) -> Vec<u8> {
    let inv = t.inverse();
    let corners = [[0.0, 0.0], [fw as f64, 0.0], [0.0, fh as f64], [fw as f64, fh as f64]].map(|p| t.apply(p));
    let (x0, x1) = corners.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
    let (y0, y1) = corners.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let inside = (x as f64 + 1.0) >= x0 && (x as f64) <= x1 && (y as f64 + 1.0) >= y0 && (y as f64) <= y1;
            let px = if !inside {
                bg(x as f64 + 0.5, y as f64 + 0.5)
            } else {
                let mut acc = [0.0; 3];
                for sy in 0..4 {
                    for sx in 0..4 {
                        let (px, py) = (x as f64 + (sx as f64 + 0.5) / 4.0, y as f64 + (sy as f64 + 0.5) / 4.0);
                        let u = inv.apply([px, py]);
                        let v = if u[0] >= 0.0 && u[1] >= 0.0 && u[0] < fw as f64 && u[1] < fh as f64 { bicubic(face, fw, fh, u[0], u[1]) } else { bg(px, py) };
                        (0..3).for_each(|c| acc[c] += v[c] / 16.0);
                    }
                }
                acc
            };
            for c in 0..3 {
                out[(y * w + x) * 3 + c] = px[c].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

#[test]
fn synthetic_misalignment_is_undone() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let images = repo.join("../shared/data/celeba_9k_89x109/images");
    if !images.is_dir() {
        eprintln!("SKIPPED: {} is absent (the CelebA files come with the project's shared data)", images.display());
        return;
    }
    let faces = FaceModels::load_dir(&repo.join("models/face")).unwrap();
    let model_dir = repo.join("models/celeba-64x64-additive");
    let model = Model::load_dir(&model_dir).unwrap();
    let template = Template::new(model.config.align.as_ref().expect("the default model has an align template"), 64, 64).unwrap();
    let names: Vec<String> = std::fs::read_to_string(repo.join("tests/fixtures/face/train_sample.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 40);
    let mut rng = Rng(SplitMix(20261129));
    let (mut originals, mut aligned, mut truecut) = (Vec::new(), Vec::new(), Vec::new());
    let (mut eyes_ok, mut eye_err, mut consistency, mut lines) = (0, Vec::new(), Vec::new(), Vec::new());
    let (mut missed, mut evaluated, mut scales) = (Vec::new(), 0usize, Vec::new());
    let mut times = [0f64; 4]; // truth, render, align, bits/dim (seconds)
    for name in &names {
        let (fw, fh, face) = decode_rgb8(&std::fs::read(images.join(name)).unwrap()).unwrap();
        let (fw, fh) = (fw as usize, fh as usize);
        // The truth: the eyes as the detector sees them in the clean source image (found as
        // `glow align-template` finds them).
        let src_img = Image::new(&face, fw as u32, fh as u32, 3).unwrap();
        let t_start = std::time::Instant::now();
        let Some(truth) = faces.find_faces_in_crop(&src_img).into_iter().next() else {
            // No truth to compare with (the detector misses about 3% of these tight crops).
            lines.push(format!("{name}: no face in the clean source image: left out"));
            continue;
        };
        evaluated += 1;
        let ideal = template.transform_for(&truth.landmarks).unwrap();
        times[0] += t_start.elapsed().as_secs_f64();
        let t_start = std::time::Instant::now();
        // The synthetic photo.
        let angle = rng.range(-25.0, 25.0).to_radians();
        let scale = (rng.range(0.5f64.ln(), 3.0f64.ln())).exp();
        let (a, b) = (scale * angle.cos(), scale * angle.sin());
        // A 4:3 photo about 3 times the face's size, at least 320 pixels wide (a portrait
        // photo, or a face cut out of a larger one at its own resolution).
        let radius = 0.5 * scale * (fw as f64).hypot(fh as f64);
        let photo = ((6.0 * radius).max(320.0).round() as usize, (4.5 * radius).max(240.0).round() as usize);
        let cx = rng.range(radius + 2.0, photo.0 as f64 - radius - 2.0);
        let cy = rng.range(radius + 2.0, photo.1 as f64 - radius - 2.0);
        let centre = [fw as f64 / 2.0, fh as f64 / 2.0];
        let t_syn = Similarity { a, b, tx: cx - (a * centre[0] - b * centre[1]), ty: cy - (b * centre[0] + a * centre[1]) };
        let bg = background(&mut rng);
        let pixels = render(&face, fw, fh, &t_syn, photo, &bg);
        let img = Image::new(&pixels, photo.0 as u32, photo.1 as u32, 3).unwrap();
        // FACE_DUMP=folder keeps the synthetic photos, to look at.
        if let Ok(dir) = std::env::var("FACE_DUMP") {
            image::save_buffer(Path::new(&dir).join(name.replace(".jpg", ".png")), &pixels, photo.0 as u32, photo.1 as u32, image::ExtendedColorType::Rgb8).unwrap();
        }
        times[1] += t_start.elapsed().as_secs_f64();
        let t_start = std::time::Instant::now();
        let al = match faces.align(&img, &template) {
            Ok(al) => al,
            Err(e) => {
                missed.push(format!("{name}: {e}"));
                lines.push(format!("{name}: angle {:+5.1} scale {scale:.2}: NOT FOUND", angle.to_degrees()));
                continue;
            }
        };
        times[2] += t_start.elapsed().as_secs_f64();
        // The true eyes through the synthetic transform, then the alignment found.
        let e = [truth.landmarks.left_eye(), truth.landmarks.right_eye()].map(|p| al.transform.apply(t_syn.apply(p)));
        let err = [dist(e[0], template.left_eye), dist(e[1], template.right_eye)];
        let cons = [dist(e[0], ideal.apply(truth.landmarks.left_eye())), dist(e[1], ideal.apply(truth.landmarks.right_eye()))];
        if err[0] <= 2.0 && err[1] <= 2.0 {
            eyes_ok += 1;
        }
        eye_err.extend(err);
        consistency.extend(cons);
        lines.push(format!(
            "{name}: angle {:+5.1} scale {scale:.2}: eyes {:.2} {:.2} px from the template, {:.2} {:.2} px from the clean image's alignment",
            angle.to_degrees(),
            err[0],
            err[1],
            cons[0],
            cons[1]
        ));
        // The original training crop, and the aligned one.
        let mut o = Vec::with_capacity(64 * 64 * 4);
        for y in 0..64 {
            for x in 0..64 {
                let p = &face[((y + CROP[1]) * fw + x + CROP[0]) * 3..][..3];
                o.extend_from_slice(&[p[0], p[1], p[2], 255]);
            }
        }
        aligned.extend(al.rgba);
        // The photo cropped by the true transform (what perfect detection would cut).
        truecut.extend(aligned_crop(&img, &t_syn.inverse().then(&ideal), 64, 64));
        // The clean source cut by a plain shift onto the training crop's grid, through the
        // same resampler, gives the training crop back exactly.
        let shifted = aligned_crop(&src_img, &Similarity { a: 1.0, b: 0.0, tx: -(CROP[0] as f64), ty: -(CROP[1] as f64) }, 64, 64);
        assert!(shifted == o, "{name}: a whole-pixel shift through the resampler changed the pixels");
        originals.extend(o);
        scales.push(scale);
    }
    let n = evaluated;
    assert!(n >= 40, "only {n} of {} faces found in their clean source images", names.len());
    let found = aligned.len() / (64 * 64 * 4);
    let t_start = std::time::Instant::now();
    let s = Session::open(&model_dir, Options { backend: Preference::Cpu, batch: 1, ..Options::default() }).unwrap();
    let bo = pollster::block_on(s.bits_per_dim(&originals, found, 1, 0)).unwrap();
    let ba = pollster::block_on(s.bits_per_dim(&aligned, found, 1, 0)).unwrap();
    let bt = pollster::block_on(s.bits_per_dim(&truecut, found, 1, 0)).unwrap();
    times[3] = t_start.elapsed().as_secs_f64();
    let diffs: Vec<f64> = bo.bin_centre.iter().zip(&ba.bin_centre).map(|(o, a)| a - o).collect();
    // What detection and landmarks cost: the aligned crop against the crop the true
    // transform cuts from the same photo (the same resampler, the same framing).
    let pipe: Vec<f64> = bt.bin_centre.iter().zip(&ba.bin_centre).zip(&scales).filter(|(_, &s)| s >= 1.0).map(|((c, a), _)| a - c).collect();
    let pipe_ok = pipe.iter().filter(|d| d.abs() <= 0.05).count();
    // Bits/dim is compared where the photo holds the face at the training crop's resolution
    // or more (scale >= 1): below that the photo has lost detail the crop had, the aligned
    // crop is an enlargement, and its bits/dim is lower by what was lost (reported).
    let sharp: Vec<f64> = diffs.iter().zip(&scales).filter(|(_, &s)| s >= 1.0).map(|(d, _)| *d).collect();
    let soft: Vec<f64> = diffs.iter().zip(&scales).filter(|(_, &s)| s < 1.0).map(|(d, _)| *d).collect();
    let bpd_ok = sharp.iter().filter(|d| d.abs() <= 0.05).count();
    // The same with the headline figure (uniform dequantization, one seeded draw).
    let sharp_deq: Vec<f64> = bo.dequantized.iter().zip(&ba.dequantized).zip(&scales).filter(|(_, &s)| s >= 1.0).map(|((o, a), _)| a - o).collect();
    let deq_ok = sharp_deq.iter().filter(|d| d.abs() <= 0.05).count();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let maxabs = |v: &[f64]| v.iter().map(|d| d.abs()).fold(0.0, f64::max);
    let mut sorted = eye_err.clone();
    sorted.sort_by(f64::total_cmp);
    for ((d, s), l) in diffs.iter().zip(&scales).zip(lines.iter_mut().filter(|l| l.contains(" eyes "))) {
        l.push_str(&format!("; bits/dim {d:+.4} (scale {s:.2})"));
    }
    eprintln!("{}", lines.join("\n"));
    eprintln!(
        "bits/dim aligned - cut by the true transform, scale >= 1: {pipe_ok}/{} within 0.05, mean {:+.4}, |max| {:.4}",
        pipe.len(),
        pipe.iter().sum::<f64>() / pipe.len().max(1) as f64,
        pipe.iter().map(|d| d.abs()).fold(0.0, f64::max)
    );
    eprintln!(
        "bits/dim (dequantized) aligned - original, scale >= 1: {deq_ok}/{} within 0.05, mean {:+.4}, |max| {:.4}",
        sharp_deq.len(),
        mean(&sharp_deq),
        maxabs(&sharp_deq)
    );
    eprintln!("seconds: truth {:.1}, photos {:.1}, alignment {:.1}, bits/dim {:.1}", times[0], times[1], times[2], times[3]);
    eprintln!(
        "{} faces, {n} with a face in the clean source, {found} found in their photos; eyes within 2 px of the template: {eyes_ok}/{n}; \
         eye error mean {:.2} px, median {:.2}, max {:.2}; from the clean image's own alignment: mean {:.2} px, max {:.2}\n\
         bits/dim (bin centre) aligned - original, scale >= 1: {bpd_ok}/{} within 0.05, mean {:+.4}, |max| {:.4}; \
         scale < 1: mean {:+.4}, |max| {:.4} ({} faces); originals mean {:.4}; dequantized diff mean {:+.4}",
        names.len(),
        mean(&eye_err),
        sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN),
        mean(&consistency),
        consistency.iter().cloned().fold(0.0, f64::max),
        sharp.len(),
        mean(&sharp),
        maxabs(&sharp),
        mean(&soft),
        maxabs(&soft),
        soft.len(),
        mean(&bo.bin_centre),
        mean(&ba.dequantized.iter().zip(&bo.dequantized).map(|(a, o)| a - o).collect::<Vec<_>>()),
    );
    assert!(eyes_ok as f64 >= 0.95 * n as f64, "eyes within 2 px for {eyes_ok} of {n}; not found: {missed:?}");
    // Measured 2026-11-29 (scale >= 1): aligned vs the true transform's crop: 28 of 28
    // within 0.05, mean +0.004, |max| 0.028: detection and landmarks cost almost nothing.
    // Against the original crop: mean -0.001, 22 of 28 within 0.05, |max| 0.093, as the sum
    // of two effects of about 0.04-0.09 each that have nothing to do with the pipeline:
    // (1) the synthetic photo is softer than the source (bicubic magnification, 4x4
    // supersampling): the true transform's crop is 0.039 below the original on average;
    // (2) the template frames each face a pixel or a degree differently from CelebA's own
    // alignment, so a clean 89x109 source aligned to the template (a resample at about 1:1,
    // turned and shifted by fractions of a pixel) is 0.086 *above* its original crop: the
    // model learned CelebA's exact pixel grid (JPEG blocks and its downscale included).
    // Effect (2) grows as the model learns that grid: after 55% more training steps (the
    // model shipped on 2026-11-29, 1.381 instead of 1.395 dequantized) the same faces gave,
    // against the true transform's crop, 28 of 28 within 0.05, mean +0.004 (unchanged), but
    // against the original crop, at the bin centre, 19 of 28 within 0.05, mean +0.023,
    // |max| 0.124 (the earlier model: 22, -0.001, 0.093), and in the dequantized figure 21
    // of 28, +0.015, 0.107 (the earlier model: 22, -0.006, 0.076). The uniform noise of the
    // dequantized figure hides some of the pixel grid the model learned, and it is the
    // headline figure (README, model.json, the page), so that is what is asserted.
    // Asserted: no bias, most faces close, none far.
    assert!(pipe_ok as f64 >= 0.95 * pipe.len() as f64, "aligned crop's bits/dim within 0.05 of the true transform's crop for {pipe_ok} of {}", pipe.len());
    assert!(sharp_deq.len() >= 20, "only {} faces at scale >= 1", sharp_deq.len());
    assert!(mean(&sharp_deq).abs() <= 0.03, "bits/dim (dequantized) biased by {:+.4} at scale >= 1", mean(&sharp_deq));
    assert!(deq_ok as f64 >= 0.7 * sharp_deq.len() as f64, "bits/dim (dequantized) within 0.05 for {deq_ok} of {}", sharp_deq.len());
    assert!(maxabs(&sharp_deq) <= 0.15, "a face's bits/dim (dequantized) moved by {:.4}", maxabs(&sharp_deq));
}
