//! Native image files <-> RGBA8 at the model's size. Wrong sizes are refused with a
//! message, unless `fit` is asked for: then the largest centred crop with the model's
//! aspect ratio is taken and resized with a triangle (bilinear) filter.

use crate::error::{GlowError, Result};
use image::imageops::FilterType;

/// Reads an image file as RGBA8 of exactly `width` x `height`.
pub fn load_rgba(path: &std::path::Path, width: u32, height: u32, fit: bool) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| GlowError::Io(format!("{}: {e}", path.display())))?;
    decode_rgba(&bytes, width, height, fit).map_err(|e| match e {
        GlowError::Image(m) => GlowError::Image(format!("{}: {m}", path.display())),
        e => e,
    })
}

pub fn decode_rgba(bytes: &[u8], width: u32, height: u32, fit: bool) -> Result<Vec<u8>> {
    let img = image::load_from_memory(bytes).map_err(|e| GlowError::Image(format!("cannot decode the image: {e}")))?;
    let (w, h) = (img.width(), img.height());
    if (w, h) == (width, height) {
        return Ok(img.to_rgba8().into_raw());
    }
    if !fit {
        return Err(GlowError::Image(format!(
            "image is {w}x{h}, the model takes {width}x{height} (use --fit to centre-crop and resize, or --preprocess for raw CelebA files)"
        )));
    }
    // Largest centred crop with the model's aspect ratio.
    let (cw, ch) = if w as u64 * height as u64 > h as u64 * width as u64 {
        ((h as u64 * width as u64 / height as u64) as u32, h)
    } else {
        (w, (w as u64 * height as u64 / width as u64) as u32)
    };
    let crop = img.crop_imm((w - cw) / 2, (h - ch) / 2, cw.max(1), ch.max(1));
    Ok(crop.resize_exact(width, height, FilterType::Triangle).to_rgba8().into_raw())
}

/// Writes `n` RGBA images of `w` x `h` as one PNG grid with `cols` columns.
pub fn save_grid(path: &std::path::Path, rgba: &[u8], n: usize, w: usize, h: usize, cols: usize) -> Result<()> {
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let (gw, gh) = (cols * w, rows * h);
    let mut out = vec![255u8; gw * gh * 4];
    for i in 0..n {
        let (r, c) = (i / cols, i % cols);
        for y in 0..h {
            let src = &rgba[(i * h + y) * w * 4..][..w * 4];
            let dst = ((r * h + y) * gw + c * w) * 4;
            out[dst..dst + w * 4].copy_from_slice(src);
        }
    }
    image::save_buffer(path, &out, gw as u32, gh as u32, image::ExtendedColorType::Rgba8)
        .map_err(|e| GlowError::Io(format!("{}: {e}", path.display())))
}

/// Applies a model's recorded `preprocess` (model.json) to a raw source image: crop box
/// `[x, y, w, h]` in `source_size` pixels, then `pad` `[top, bottom, left, right]` with
/// `pad_value`, giving `output`. A source image k times larger than `source_size` (the
/// full-resolution CelebA files are 2x the 89x109 ones) has its crop box scaled by k and
/// is downscaled by k with a box filter (the mean of each k x k block).
pub fn preprocess(bytes: &[u8], spec: &serde_json::Value, width: u32, height: u32) -> Result<Vec<u8>> {
    let bad = |m: String| GlowError::Config(format!("preprocess: {m}"));
    let nums = |key: &str, n: usize| -> Result<Vec<u32>> {
        let v = spec.get(key).and_then(|v| v.as_array()).ok_or_else(|| bad(format!("'{key}' missing")))?;
        let out: Vec<u32> = v.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect();
        if out.len() != n {
            return Err(bad(format!("'{key}' must hold {n} integers")));
        }
        Ok(out)
    };
    let src = nums("source_size", 2)?;
    let crop = nums("crop", 4)?;
    let pad = if spec.get("pad").is_some() { nums("pad", 4)? } else { vec![0; 4] };
    let pad_value = spec.get("pad_value").and_then(|v| v.as_u64()).unwrap_or(0).min(255) as u8;
    let img = image::load_from_memory(bytes).map_err(|e| GlowError::Image(format!("cannot decode the image: {e}")))?;
    let (w, h) = (img.width(), img.height());
    let k = w / src[0].max(1);
    if k == 0 || w != src[0] * k || h != src[1] * k {
        return Err(GlowError::Image(format!(
            "image is {w}x{h}; --preprocess takes raw {}x{} source images (or an integer multiple)",
            src[0], src[1]
        )));
    }
    let rgba = img.to_rgba8();
    let (cx, cy, cw, ch) = (crop[0] * k, crop[1] * k, crop[2] * k, crop[3] * k);
    if cx + cw > w || cy + ch > h {
        return Err(bad(format!("crop box {crop:?} does not fit a {}x{} image", src[0], src[1])));
    }
    let (ow, oh) = (crop[2] + pad[2] + pad[3], crop[3] + pad[0] + pad[1]);
    if (ow, oh) != (width, height) {
        return Err(bad(format!("gives {ow}x{oh} images, the model takes {width}x{height}")));
    }
    let mut out = vec![0u8; (ow * oh * 4) as usize];
    for y in 0..oh {
        for x in 0..ow {
            let o = ((y * ow + x) * 4) as usize;
            let inside = y >= pad[0] && y < pad[0] + crop[3] && x >= pad[2] && x < pad[2] + crop[2];
            if !inside {
                out[o..o + 4].copy_from_slice(&[pad_value, pad_value, pad_value, 255]);
                continue;
            }
            let (sx, sy) = (cx + (x - pad[2]) * k, cy + (y - pad[0]) * k);
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..k {
                    for dx in 0..k {
                        sum += rgba.get_pixel(sx + dx, sy + dy)[c] as u32;
                    }
                }
                // Round half up, as a 2x2 mean of integers is usually stored.
                out[o + c] = ((sum + k * k / 2) / (k * k)) as u8;
            }
            out[o + 3] = 255;
        }
    }
    Ok(out)
}
