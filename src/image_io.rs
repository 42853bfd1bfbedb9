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
