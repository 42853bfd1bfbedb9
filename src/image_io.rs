//! Native image files <-> RGBA8 at the model's size.
//!
//! * Every file's dimensions are read from its header and checked against [`MAX_SIDE`] and
//!   [`MAX_PIXELS`] before anything is decoded, so a small file that claims a huge image (a
//!   solid-colour 12000x12000 PNG is 420 KB) is refused at once, without allocating it.
//! * JPEG files are decoded by libjpeg-turbo's own decoder (the `mozjpeg` crate builds the
//!   mozjpeg fork of it from source; its decoder is libjpeg-turbo's): slow-integer IDCT and
//!   fancy (triangle) chroma upsampling, the defaults of PIL and Chromium, so the pixels are
//!   bit-identical to what the trainer (PIL) saw and to what the browser page decodes. Other
//!   formats (PNG) are decoded by the `image` crate.
//! * Wrong sizes are refused with a message, unless `fit` is asked for: then the largest centred
//!   crop with the model's aspect ratio is resampled to the model's size straight from the 8-bit
//!   rows as they are decoded (an area average when shrinking, linear when enlarging); a JPEG is
//!   never held whole in memory, and no float copy of the image is ever made.

use crate::error::{GlowError, Result};
use std::io::Cursor;

/// The longest side accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;

/// The most pixels accepted: 64 Mi (67.1 megapixels). That takes the photos of phones' 48, 50
/// and 64 megapixel modes (8000x6000, 8160x6120, 9248x6936) and every ordinary 12 megapixel
/// one; 108 and 200 megapixel photos (12000x9000, 16320x12240) are refused: scale them down
/// first. Decoding the largest accepted one whole takes about 200 MB as RGB8 (JPEG) or 270 MB
/// as RGBA8 (PNG); `fit` on a JPEG holds only a few rows of it.
pub const MAX_PIXELS: u64 = 1 << 26;

/// Checks a size read from an image header against [`MAX_SIDE`] and [`MAX_PIXELS`].
pub fn check_size(w: u32, h: u32) -> Result<()> {
    let pixels = w as u64 * h as u64;
    if w == 0 || h == 0 {
        return Err(GlowError::Image(format!("image is {w}x{h}: it has no pixels")));
    }
    if w > MAX_SIDE || h > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(GlowError::Image(format!(
            "image is {w}x{h} ({:.1} megapixels), larger than the largest accepted: {MAX_SIDE} pixels a side \
             and {:.1} megapixels; scale it down first",
            pixels as f64 / 1e6,
            MAX_PIXELS as f64 / 1e6
        )));
    }
    Ok(())
}

/// The format and size an image file's header declares, checked with [`check_size`]; nothing
/// is decoded.
pub fn header(bytes: &[u8]) -> Result<(image::ImageFormat, u32, u32)> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| GlowError::Image(format!("cannot decode the image: {e}")))?;
    let format = reader
        .format()
        .ok_or_else(|| GlowError::Image("cannot decode the image: not a PNG or JPEG file".into()))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| GlowError::Image(format!("cannot decode the image: bad {format:?} header: {e}")))?;
    check_size(w, h)?;
    Ok((format, w, h))
}

/// Reads an image file as RGBA8 of exactly `width` x `height`.
pub fn load_rgba(path: &std::path::Path, width: u32, height: u32, fit: bool) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| GlowError::Io(format!("{}: {e}", path.display())))?;
    decode_rgba(&bytes, width, height, fit).map_err(|e| match e {
        GlowError::Image(m) => GlowError::Image(format!("{}: {m}", path.display())),
        e => e,
    })
}

/// Decodes an image file to RGBA8 of exactly `width` x `height` (alpha 255 unless the file has
/// an alpha channel). A file of another size is refused, from its header, unless `fit`: then
/// the largest centred crop with the model's aspect ratio is resampled to the model's size.
pub fn decode_rgba(bytes: &[u8], width: u32, height: u32, fit: bool) -> Result<Vec<u8>> {
    let (format, w, h) = header(bytes)?;
    if (w, h) == (width, height) {
        let img = decode(bytes, format, w, h)?;
        return Ok(img.into_rgba());
    }
    if !fit {
        return Err(GlowError::Image(format!(
            "image is {w}x{h}, the model takes {width}x{height} (use --fit to centre-crop and resize, or --preprocess for raw CelebA files)"
        )));
    }
    if width == 0 || height == 0 {
        return Err(GlowError::Image(format!("cannot fit an image to {width}x{height}")));
    }
    // Largest centred crop with the model's aspect ratio.
    let (cw, ch) = if w as u64 * height as u64 > h as u64 * width as u64 {
        ((h as u64 * width as u64 / height as u64) as u32, h)
    } else {
        (w, (w as u64 * height as u64 / width as u64) as u32)
    };
    let (cw, ch) = (cw.max(1), ch.max(1));
    let mut fit = Resampler::new([(w - cw) / 2, (h - ch) / 2, cw, ch], width, height);
    rows(bytes, format, w, h, |y, row, channels| fit.push_row(y, row, channels))?;
    Ok(fit.finish())
}

/// The whole image as 8-bit RGB, the bytes PIL's `Image.open(f).convert("RGB").tobytes()`
/// gives (bit-identical for JPEG): `(width, height, rgb)`. Checks the size from the header
/// first, as everything here does.
pub fn decode_rgb8(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>)> {
    let (format, w, h) = header(bytes)?;
    let img = decode(bytes, format, w, h)?;
    let rgb = match img.channels {
        3 => img.data,
        _ => img.data.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
    };
    Ok((w, h, rgb))
}

/// A decoded image: 8-bit RGB (`channels` 3) or RGBA (4), rows packed.
struct Pixels {
    w: u32,
    channels: usize,
    data: Vec<u8>,
}

impl Pixels {
    fn into_rgba(self) -> Vec<u8> {
        match self.channels {
            4 => self.data,
            _ => self.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        }
    }

    fn at(&self, x: u32, y: u32, c: usize) -> u8 {
        self.data[(y as usize * self.w as usize + x as usize) * self.channels + c]
    }
}

/// Decodes the whole image (already size-checked by [`header`] as `w` x `h`).
fn decode(bytes: &[u8], format: image::ImageFormat, w: u32, h: u32) -> Result<Pixels> {
    let mut data = Vec::new();
    let mut channels = 3;
    rows(bytes, format, w, h, |_, row, c| {
        if data.is_empty() {
            data.reserve_exact(w as usize * h as usize * c);
        }
        channels = c;
        data.extend_from_slice(row);
    })?;
    Ok(Pixels { w, channels, data })
}

/// Decodes the image and hands each row, top to bottom, to `row(y, bytes, channels)` with 3
/// (RGB) or 4 (RGBA) channels of 8 bits. A JPEG comes from libjpeg-turbo's decoder one row at a
/// time; anything else is decoded whole by the `image` crate under limits that repeat
/// [`MAX_SIDE`] and [`MAX_PIXELS`].
fn rows(
    bytes: &[u8],
    format: image::ImageFormat,
    w: u32,
    h: u32,
    mut row: impl FnMut(u32, &[u8], usize),
) -> Result<(u32, u32)> {
    if format == image::ImageFormat::Jpeg {
        if let Some(size) = jpeg_rows(bytes, w, h, &mut row)? {
            return Ok(size);
        }
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // 16-bit RGBA is the widest pixel a PNG decodes to.
    limits.max_alloc = Some(MAX_PIXELS * 8);
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| GlowError::Image(format!("cannot decode the image: {e}")))?;
    if (img.width(), img.height()) != (w, h) {
        return Err(GlowError::Image(format!(
            "the header says {w}x{h} but the image decodes to {}x{}",
            img.width(),
            img.height()
        )));
    }
    let (channels, data) = match img {
        image::DynamicImage::ImageRgb8(b) => (3, b.into_raw()),
        image::DynamicImage::ImageRgba8(b) => (4, b.into_raw()),
        img if img.color().has_alpha() => (4, img.to_rgba8().into_raw()),
        img => (3, img.to_rgb8().into_raw()),
    };
    for (y, r) in data.chunks_exact(w as usize * channels).enumerate() {
        row(y as u32, r, channels);
    }
    Ok((w, h))
}

/// Decodes a JPEG with libjpeg-turbo's decoder, row by row, as RGB. `Ok(None)` for the colour
/// spaces libjpeg does not convert to RGB (CMYK, YCCK): the caller decodes those otherwise.
fn jpeg_rows(bytes: &[u8], w: u32, h: u32, row: &mut dyn FnMut(u32, &[u8], usize)) -> Result<Option<(u32, u32)>> {
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    // libjpeg reports a fatal error by unwinding (the `mozjpeg` crate's error manager, with a
    // "libjpeg fatal error: ..." String payload and no panic message); it is caught here and
    // becomes an error. Its warnings are silent: a truncated file decodes with its missing rows
    // grey (PIL refuses one unless ImageFile.LOAD_TRUNCATED_IMAGES is set).
    let run = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Result<Option<(u32, u32)>>> {
        let mut d = mozjpeg::Decompress::new_mem(bytes)?;
        let (dw, dh) = (d.width() as u32, d.height() as u32);
        if (dw, dh) != (w, h) {
            return Ok(Err(GlowError::Image(format!("the header says {w}x{h} but libjpeg reads {dw}x{dh}"))));
        }
        if matches!(d.color_space(), mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK) {
            return Ok(Ok(None));
        }
        // libjpeg-turbo's defaults, and what PIL and Chromium use; set here so that they stay.
        d.dct_method(mozjpeg::DctMethod::IntegerSlow);
        d.do_fancy_upsampling(true);
        let mut d = d.rgb()?;
        let mut line = vec![0u8; w as usize * 3];
        for y in 0..h {
            d.read_scanlines_into(&mut line)?;
            row(y, &line, 3);
        }
        d.finish()?;
        Ok(Ok(Some((w, h))))
    }));
    match run {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(GlowError::Image(format!("cannot decode the JPEG: {e}"))),
        // Only libjpeg's own errors become errors; any other panic goes on unwinding.
        Err(payload) => match payload.downcast::<String>() {
            Ok(msg) if msg.starts_with("libjpeg") => Err(GlowError::Image(format!("cannot decode the JPEG: {msg}"))),
            Ok(msg) => resume_unwind(msg),
            Err(other) => resume_unwind(other),
        },
    }
}

/// Resamples the crop `[x, y, w, h]` of an image to `out_w` x `out_h` RGBA8 from rows handed
/// over one at a time, holding only the output's sums (never the image). Separable: along each
/// axis an output sample is the area average of the source samples it covers when shrinking,
/// and the linear interpolation of the two nearest when enlarging.
struct Resampler {
    out_w: usize,
    crop_y: u32,
    /// For each output column: (source column, weight), weights summing to 1.
    cols: Vec<Vec<(usize, f32)>>,
    /// For each crop row: (output row, weight).
    rows: Vec<Vec<(usize, f32)>>,
    /// Sums of the output's RGBA, row-major.
    acc: Vec<f64>,
    /// One source row resampled horizontally.
    line: Vec<f32>,
}

impl Resampler {
    fn new(crop: [u32; 4], out_w: u32, out_h: u32) -> Self {
        let [cx, cy, cw, ch] = crop;
        let cols: Vec<Vec<(usize, f32)>> = axis_weights(cw, out_w)
            .into_iter()
            .map(|ws| ws.into_iter().map(|(s, w)| ((cx + s) as usize, w)).collect())
            .collect();
        let mut rows = vec![Vec::new(); ch as usize];
        for (o, ws) in axis_weights(ch, out_h).into_iter().enumerate() {
            for (s, w) in ws {
                rows[s as usize].push((o, w));
            }
        }
        let (out_w, out_h) = (out_w as usize, out_h as usize);
        Resampler {
            out_w,
            crop_y: cy,
            cols,
            rows,
            acc: vec![0.0; out_w * out_h * 4],
            line: vec![0.0; out_w * 4],
        }
    }

    fn push_row(&mut self, y: u32, row: &[u8], channels: usize) {
        let Some(targets) = y.checked_sub(self.crop_y).and_then(|r| self.rows.get(r as usize)) else {
            return;
        };
        if targets.is_empty() {
            return;
        }
        for (ox, ws) in self.cols.iter().enumerate() {
            let mut px = [0f32; 4];
            for &(sx, w) in ws {
                let s = &row[sx * channels..sx * channels + channels];
                for c in 0..channels {
                    px[c] += w * s[c] as f32;
                }
            }
            if channels == 3 {
                px[3] = 255.0; // opaque
            }
            self.line[ox * 4..ox * 4 + 4].copy_from_slice(&px);
        }
        for &(oy, w) in targets {
            let acc = &mut self.acc[oy * self.out_w * 4..(oy + 1) * self.out_w * 4];
            for (a, v) in acc.iter_mut().zip(&self.line) {
                *a += w as f64 * *v as f64;
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        self.acc.iter().map(|&v| v.round().clamp(0.0, 255.0) as u8).collect()
    }
}

/// Along one axis: for each of `out` output samples, the source samples (0..`len`) it takes
/// and their weights (summing to 1). Shrinking: the output sample covers the interval
/// [o, o+1) * len/out of the source, and each source sample weighs the length it overlaps.
/// Enlarging: linear interpolation at the output sample's centre, clamped at the edges.
fn axis_weights(len: u32, out: u32) -> Vec<Vec<(u32, f32)>> {
    let scale = len as f64 / out as f64;
    (0..out)
        .map(|o| {
            let mut ws: Vec<(u32, f64)> = Vec::with_capacity(scale.ceil() as usize + 1);
            if scale >= 1.0 {
                let (a, b) = (o as f64 * scale, (o + 1) as f64 * scale);
                let last = (b.ceil() as u32).min(len);
                for s in (a.floor() as u32)..last {
                    let w = b.min(s as f64 + 1.0) - a.max(s as f64);
                    if w > 1e-9 {
                        ws.push((s, w));
                    }
                }
            } else {
                let c = ((o as f64 + 0.5) * scale - 0.5).clamp(0.0, (len - 1) as f64);
                let s = c.floor() as u32;
                let f = c - s as f64;
                ws.push((s, 1.0 - f));
                if f > 1e-9 {
                    ws.push((s + 1, f));
                }
            }
            let total: f64 = ws.iter().map(|&(_, w)| w).sum();
            ws.into_iter().map(|(s, w)| (s, (w / total) as f32)).collect()
        })
        .collect()
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
/// is downscaled by k with a box filter (the mean of each k x k block). JPEGs decode exactly
/// as PIL decodes them, so bits/dim here are comparable with the trainer's.
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
    let (format, w, h) = header(bytes)?;
    let k = w / src[0].max(1);
    if k == 0 || w != src[0] * k || h != src[1] * k {
        return Err(GlowError::Image(format!(
            "image is {w}x{h}; --preprocess takes raw {}x{} source images (or an integer multiple)",
            src[0], src[1]
        )));
    }
    let (cx, cy, cw, ch) = (crop[0] * k, crop[1] * k, crop[2] * k, crop[3] * k);
    if cx + cw > w || cy + ch > h {
        return Err(bad(format!("crop box {crop:?} does not fit a {}x{} image", src[0], src[1])));
    }
    let (ow, oh) = (crop[2] + pad[2] + pad[3], crop[3] + pad[0] + pad[1]);
    if (ow, oh) != (width, height) {
        return Err(bad(format!("gives {ow}x{oh} images, the model takes {width}x{height}")));
    }
    let img = decode(bytes, format, w, h)?;
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
                        sum += img.at(sx + dx, sy + dy, c) as u32;
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
