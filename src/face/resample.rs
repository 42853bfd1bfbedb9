//! Pixels in, pixels out: the checked image view with its 2x pyramid, face-api's network
//! inputs (a window of the image, padded to a square, resized by TensorFlow's legacy
//! bilinear), and the antialiased resampler that cuts the aligned crop.
//!
//! Coordinates are continuous: pixel `(i, j)` covers `[i, i+1) x [j, j+1)`, its centre is at
//! `(i + 0.5, j + 0.5)`, and an image of width `w` spans `[0, w]`.

use crate::error::{GlowError, Result};

/// The longest side accepted, as in `image_io` (16384 pixels).
pub const MAX_SIDE: u32 = 16_384;
/// The most pixels accepted, as in `image_io` (64 Mi, 67.1 megapixels).
pub const MAX_PIXELS: u64 = 1 << 26;

/// One level of the pyramid: RGB values times 64 (6 fraction bits), rows packed.
struct Level {
    w: usize,
    h: usize,
    rgb: Vec<u16>,
}

/// An RGB or RGBA8 image (alpha ignored) with the 2x box-filtered levels under it that the
/// networks' inputs are read from when they shrink it by more than 2x.
pub struct Image<'a> {
    data: &'a [u8],
    w: usize,
    h: usize,
    channels: usize,
    /// Level k (k >= 1) is `levels[k - 1]`: the mean of 2x2 blocks of level k-1 (odd last
    /// rows and columns dropped).
    levels: Vec<Level>,
}

/// The smallest side the networks read a pyramid level at: the landmark net's input.
const SMALLEST_INPUT: usize = 112;

impl<'a> Image<'a> {
    /// Checks the view (`channels` 3 or 4, the byte count, the size limits) and builds the
    /// pyramid levels a network input could need: halving while the longer side is at least
    /// 224 (so the last level is under 2x the landmark net's 112).
    pub fn new(data: &'a [u8], width: u32, height: u32, channels: u32) -> Result<Self> {
        if channels != 3 && channels != 4 {
            return Err(GlowError::Image(format!("{channels} channels: expected RGB (3) or RGBA (4)")));
        }
        let pixels = width as u64 * height as u64;
        if width == 0 || height == 0 {
            return Err(GlowError::Image(format!("image is {width}x{height}: it has no pixels")));
        }
        if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
            return Err(GlowError::Image(format!(
                "image is {width}x{height}, larger than the largest accepted ({MAX_SIDE} a side, {:.1} megapixels)",
                MAX_PIXELS as f64 / 1e6
            )));
        }
        if data.len() as u64 != pixels * channels as u64 {
            return Err(GlowError::Image(format!(
                "a {width}x{height} image with {channels} channels has {} bytes, got {}",
                pixels * channels as u64,
                data.len()
            )));
        }
        let mut img = Image { data, w: width as usize, h: height as usize, channels: channels as usize, levels: Vec::new() };
        while img.level_size(img.levels.len()).0.max(img.level_size(img.levels.len()).1) >= 2 * SMALLEST_INPUT {
            let next = img.halve(img.levels.len());
            img.levels.push(next);
        }
        Ok(img)
    }

    pub fn width(&self) -> usize {
        self.w
    }
    pub fn height(&self) -> usize {
        self.h
    }

    fn level_size(&self, k: usize) -> (usize, usize) {
        match k {
            0 => (self.w, self.h),
            _ => (self.levels[k - 1].w, self.levels[k - 1].h),
        }
    }

    /// Channel `c` of pixel (x, y) at level k, in 0..255.
    #[inline]
    fn px(&self, k: usize, x: usize, y: usize, c: usize) -> f32 {
        match k {
            0 => self.data[(y * self.w + x) * self.channels + c] as f32,
            _ => {
                let l = &self.levels[k - 1];
                l.rgb[(y * l.w + x) * 3 + c] as f32 * (1.0 / 64.0)
            }
        }
    }

    fn halve(&self, k: usize) -> Level {
        let (w, h) = self.level_size(k);
        let (nw, nh) = (w / 2, h / 2);
        let mut rgb = vec![0u16; nw * nh * 3];
        for y in 0..nh {
            for x in 0..nw {
                for c in 0..3 {
                    let o = &mut rgb[(y * nw + x) * 3 + c];
                    *o = match k {
                        // Four 8-bit values sum to at most 1020; times 16 is the mean times 64.
                        0 => {
                            let p = |xx: usize, yy: usize| self.data[(yy * w + xx) * self.channels + c] as u16;
                            (p(2 * x, 2 * y) + p(2 * x + 1, 2 * y) + p(2 * x, 2 * y + 1) + p(2 * x + 1, 2 * y + 1)) * 16
                        }
                        _ => {
                            let l = &self.levels[k - 1];
                            let p = |xx: usize, yy: usize| l.rgb[(yy * w + xx) * 3 + c] as u32;
                            ((p(2 * x, 2 * y) + p(2 * x + 1, 2 * y) + p(2 * x, 2 * y + 1) + p(2 * x + 1, 2 * y + 1) + 2) / 4) as u16
                        }
                    };
                }
            }
        }
        Level { w: nw, h: nh, rgb }
    }

    /// The deepest level at most `shrink` times smaller than the image (0 when `shrink` < 2).
    fn level_for(&self, shrink: f64) -> usize {
        let mut k = 0;
        while k < self.levels.len() && (1u64 << (k + 1)) as f64 <= shrink {
            k += 1;
        }
        k
    }

    /// A network's input as face-api makes it from a tensor: the window `[x0, x0+ww) x [y0,
    /// y0+wh)` of the image placed at `(ox, oy)` in a zero square of side `s`, resized to `n` x
    /// `n` by TensorFlow's legacy bilinear (`align_corners` and `half_pixel_centers` false:
    /// output row `i` reads source row `i * s / n`). RGB values 0..255, HWC.
    ///
    /// When the square shrinks by 2x or more, the same sample positions are read from the
    /// pyramid level that leaves less than 2x to go, so that a large photo is not aliased;
    /// below 2x it is face-api's arithmetic exactly.
    pub fn square_input(&self, window: [usize; 4], offset: [usize; 2], s: usize, n: usize) -> Vec<f32> {
        let [x0, y0, ww, wh] = window;
        let k = self.level_for(s as f64 / n as f64);
        let (lw, lh) = self.level_size(k);
        let xs = axis_taps(n, s, offset[0], x0, ww, k, lw);
        let ys = axis_taps(n, s, offset[1], y0, wh, k, lh);
        let mut out = vec![0f32; n * n * 3];
        for (i, ty) in ys.iter().enumerate() {
            for (j, tx) in xs.iter().enumerate() {
                for c in 0..3 {
                    let v = |yy: Option<usize>, xx: Option<usize>| match (yy, xx) {
                        (Some(y), Some(x)) => self.px(k, x, y, c) as f64,
                        _ => 0.0,
                    };
                    let top = v(ty.0, tx.0) + (v(ty.0, tx.1) - v(ty.0, tx.0)) * tx.2;
                    let bottom = v(ty.1, tx.0) + (v(ty.1, tx.1) - v(ty.1, tx.0)) * tx.2;
                    out[(i * n + j) * 3 + c] = (top + (bottom - top) * ty.2) as f32;
                }
            }
        }
        out
    }

    /// A network's input read along a map: input pixel `(j, i)` is the image at `map(j, i)`
    /// (continuous coordinates), bilinear, from the pyramid level that leaves under 2x of
    /// `shrink` (image pixels per input pixel); 0 where `keep(j, i)` is false (padding) or the
    /// point is outside the image. RGB values 0..255, HWC.
    pub fn warped_input(&self, n: usize, shrink: f64, map: impl Fn(f64, f64) -> [f64; 2], keep: impl Fn(f64, f64) -> bool) -> Vec<f32> {
        let k = self.level_for(shrink);
        let (lw, lh) = self.level_size(k);
        let f = (1u64 << k) as f64;
        let mut out = vec![0f32; n * n * 3];
        for i in 0..n {
            for j in 0..n {
                let (jf, iff) = (j as f64, i as f64);
                let [x, y] = map(jf, iff);
                if !keep(jf, iff) || !(0.0..=self.w as f64).contains(&x) || !(0.0..=self.h as f64).contains(&y) {
                    continue;
                }
                let (a, b) = (x / f - 0.5, y / f - 0.5);
                let (a0, b0) = (a.floor(), b.floor());
                let (fa, fb) = (a - a0, b - b0);
                let cx = |v: f64| v.clamp(0.0, (lw - 1) as f64) as usize;
                let cy = |v: f64| v.clamp(0.0, (lh - 1) as f64) as usize;
                let (x0, x1, y0, y1) = (cx(a0), cx(a0 + 1.0), cy(b0), cy(b0 + 1.0));
                for c in 0..3 {
                    let top = self.px(k, x0, y0, c) as f64 * (1.0 - fa) + self.px(k, x1, y0, c) as f64 * fa;
                    let bottom = self.px(k, x0, y1, c) as f64 * (1.0 - fa) + self.px(k, x1, y1, c) as f64 * fa;
                    out[(i * n + j) * 3 + c] = (top * (1.0 - fb) + bottom * fb) as f32;
                }
            }
        }
        out
    }

    /// RGBA8 of `out_w` x `out_h`: output pixel centre `q` shows the image around `inv(q)`
    /// (`inv` maps output coordinates to image coordinates and enlarges by `1 / scale`, the
    /// image pixels per output pixel). Lanczos-3, stretched by that factor when shrinking
    /// (so it is an antialiasing filter), along the image's axes; edge pixels repeat outside
    /// the image. Shrinking by more than 8x, it reads the pyramid level that leaves 4x to 8x,
    /// so a 12-megapixel photo costs the same as a small one.
    pub fn resample(&self, inv: impl Fn(f64, f64) -> (f64, f64), scale: f64, out_w: usize, out_h: usize) -> Vec<u8> {
        let side = 1.0 / scale;
        let mut k = 0;
        while side / (1u64 << k) as f64 >= 8.0 && k < self.levels.len() {
            k += 1;
        }
        let f = (1u64 << k) as f64;
        let (lw, lh) = self.level_size(k);
        // Capped at 16 (96 taps a side): beyond the last level that only happens when the
        // whole image shrinks to a few output pixels.
        let stretch = (side / f).clamp(1.0, 16.0);
        let mut out = vec![255u8; out_w * out_h * 4];
        let (mut wx, mut wy) = (Vec::new(), Vec::new());
        for i in 0..out_h {
            for j in 0..out_w {
                let (x, y) = inv(j as f64 + 0.5, i as f64 + 0.5);
                lanczos_taps(x / f, stretch, lw, &mut wx);
                lanczos_taps(y / f, stretch, lh, &mut wy);
                let mut acc = [0f64; 3];
                for &(yy, fy) in &wy {
                    for &(xx, fx) in &wx {
                        let w = fy * fx;
                        for (c, a) in acc.iter_mut().enumerate() {
                            *a += w * self.px(k, xx, yy, c) as f64;
                        }
                    }
                }
                let o = &mut out[(i * out_w + j) * 4..][..3];
                for c in 0..3 {
                    o[c] = acc[c].round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    }
}

/// Lanczos-3 weights (normalised to sum 1) of the pixels around continuous position `c` along
/// an axis of `len` pixels, the kernel stretched by `stretch` (>= 1); indices clamped to the
/// edges.
fn lanczos_taps(c: f64, stretch: f64, len: usize, out: &mut Vec<(usize, f64)>) {
    out.clear();
    let x = c - 0.5; // in pixel-index units: pixel i's centre is at i
    let r = 3.0 * stretch;
    let (lo, hi) = ((x - r).ceil() as i64, (x + r).floor() as i64);
    let mut total = 0.0;
    for i in lo..=hi {
        let w = lanczos3((i as f64 - x) / stretch);
        // Zeros of the kernel come out as 1e-17; leave them out.
        if w.abs() > 1e-12 {
            out.push((i.clamp(0, len as i64 - 1) as usize, w));
            total += w;
        }
    }
    out.iter_mut().for_each(|p| p.1 /= total);
}

fn lanczos3(t: f64) -> f64 {
    let t = t.abs();
    if t < 1e-9 {
        1.0
    } else if t >= 3.0 {
        0.0
    } else {
        let p = std::f64::consts::PI * t;
        3.0 * p.sin() * (p / 3.0).sin() / (p * p)
    }
}

/// Along one axis of `square_input`: for each output index, the two level-k source indices
/// (None: the zero padding) and the fraction between them.
fn axis_taps(n: usize, s: usize, offset: usize, w0: usize, wlen: usize, k: usize, level_len: usize) -> Vec<(Option<usize>, Option<usize>, f64)> {
    let ratio = s as f64 / n as f64;
    // Is there padding after the window, or does the window end the square?
    let padded_after = offset + wlen < s;
    (0..n)
        .map(|o| {
            let t = ratio * o as f64;
            if k == 0 {
                // tfjs: floor, min(ceil, s - 1), the fraction from the floor.
                let t0 = t.floor();
                let t1 = t.ceil().min((s - 1) as f64);
                let map = |q: f64| -> Option<usize> {
                    let q = q as usize;
                    (q >= offset && q < offset + wlen).then(|| q - offset + w0)
                };
                (map(t0), map(t1), t - t0)
            } else {
                // The same position as a continuous image coordinate, read at level k.
                let f = (1u64 << k) as f64;
                let u = t + 0.5 - offset as f64 + w0 as f64;
                let a = u / f - 0.5;
                let a0 = a.floor();
                // Level pixels whose centres lie in the window.
                let lo = ((w0 as f64 / f - 0.5).ceil().max(0.0)) as i64;
                let hi = (((w0 + wlen) as f64 / f - 0.5).ceil() as i64 - 1).min(level_len as i64 - 1);
                let map = |a: i64| -> Option<usize> {
                    if a < lo {
                        (offset == 0 && lo <= hi).then_some(lo as usize)
                    } else if a > hi {
                        (!padded_after && lo <= hi).then_some(hi as usize)
                    } else {
                        Some(a as usize)
                    }
                };
                (map(a0 as i64), map(a0 as i64 + 1), a - a0)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanczos_weights_sum_to_one_and_interpolate_at_centres() {
        let mut v = Vec::new();
        lanczos_taps(10.5, 1.0, 100, &mut v); // exactly on pixel 10's centre
        assert_eq!(v, vec![(10, 1.0)]);
        lanczos_taps(10.25, 2.5, 100, &mut v);
        assert!((v.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(v.len() >= 14);
        lanczos_taps(0.2, 1.0, 100, &mut v);
        assert!(v.iter().all(|p| p.0 < 100));
    }

    #[test]
    fn legacy_bilinear_at_scale_one_copies_and_pads_with_zeros() {
        // A 2x3 image (w 3, h 2) in a 3x3 square: rows 0-1 are the image, row 2 is zero.
        let data: Vec<u8> = (0..18).map(|v| v as u8 * 10).collect();
        let img = Image::new(&data, 3, 2, 3).unwrap();
        let x = img.square_input([0, 0, 3, 2], [0, 0], 3, 3);
        assert_eq!(&x[..18], &data.iter().map(|&v| v as f32).collect::<Vec<_>>()[..]);
        assert!(x[18..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn pyramid_keeps_the_sample_positions() {
        // A horizontal ramp 0..255 over 1024 pixels read at n = 128 (8x): the pyramid level
        // 2 path must give the values the level-0 formula gives at the same positions
        // (the ramp is linear, so box filtering does not change it), within the pyramid's
        // rounding.
        let (w, h) = (1024usize, 512usize);
        let data: Vec<u8> = (0..w * h).flat_map(|i| [((i % w) / 4) as u8; 3]).collect();
        let img = Image::new(&data, w as u32, h as u32, 3).unwrap();
        assert_eq!(img.levels.len(), 3);
        let x = img.square_input([0, 0, w, h], [0, 0], w, 128);
        for j in 4..120 {
            // Level 0 would read column 8j, value floor(8j / 4) = 2j. The ramp steps every 4
            // columns, so level 3 (8x8 means) holds 2a + 0.5 at column a; the same position,
            // 8j + 0.5 in continuous coordinates, is (8j + 0.5) / 8 - 0.5 = j - 0.4375
            // there, where the levels' values interpolate to 2j - 0.375.
            let want = (2 * j) as f32 - 0.375;
            assert!((x[j * 3] - want).abs() < 0.6, "column {j}: {} vs {want}", x[j * 3]);
        }
    }
}
