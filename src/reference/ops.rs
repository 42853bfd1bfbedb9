//! The CPU reference of every kernel: plain loops over NHWC buffers, f32 storage with
//! f64 accumulation. Each function mirrors one WGSL kernel and takes the same strides
//! and offsets, so the GPU tests can compare them one to one.

use crate::model::fold::{edge_class, Conv};

/// Where a conv reads its input: a `[batch, h, w, stride]` buffer, channels
/// `offset..offset + conv.cin`.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub in_stride: usize,
    pub in_offset: usize,
    pub out_stride: usize,
    pub out_offset: usize,
}

/// `out[p, co] = relu?(bias + edge[class(p)] + sum_{tap, ci} in[p + tap, ci] · W)`,
/// zero padding (the edge channel lives in the table).
pub fn conv2d(conv: &Conv, g: Geometry, input: &[f32], out: &mut [f32]) {
    let (h, w, k) = (g.h as isize, g.w as isize, conv.ksize as isize);
    let r = k / 2;
    let mut acc = vec![0f64; conv.cout];
    for b in 0..g.batch {
        for y in 0..h {
            for x in 0..w {
                for (co, a) in acc.iter_mut().enumerate() {
                    *a = conv.bias[co] as f64;
                    if let Some(t) = &conv.edge {
                        *a += t[edge_class(y as usize, x as usize, g.h, g.w) * conv.cout + co] as f64;
                    }
                }
                for ky in 0..k {
                    for kx in 0..k {
                        let (yy, xx) = (y + ky - r, x + kx - r);
                        if yy < 0 || yy >= h || xx < 0 || xx >= w {
                            continue;
                        }
                        let pix = (b * g.h + yy as usize) * g.w + xx as usize;
                        let tap = (ky * k + kx) as usize;
                        for ci in 0..conv.cin {
                            let v = input[pix * g.in_stride + g.in_offset + ci] as f64;
                            let row = &conv.weight[(tap * conv.cin + ci) * conv.cout..][..conv.cout];
                            for (a, wv) in acc.iter_mut().zip(row) {
                                *a += v * *wv as f64;
                            }
                        }
                    }
                }
                let pix = (b * g.h + y as usize) * g.w + x as usize;
                for (co, a) in acc.iter().enumerate() {
                    let v = if conv.relu { a.max(0.0) } else { *a };
                    out[pix * g.out_stride + g.out_offset + co] = v as f32;
                }
            }
        }
    }
}

/// Squeeze: `[b, 2h, 2w, (stride, offset, c)]` -> dense `[b, h, w, 4c]`, output channel
/// `c*4 + dy*2 + dx`.
pub fn squeeze(input: &[f32], batch: usize, h_out: usize, w_out: usize, c: usize, in_stride: usize, in_offset: usize, out: &mut [f32]) {
    let (hi, wi) = (2 * h_out, 2 * w_out);
    for b in 0..batch {
        for y in 0..h_out {
            for x in 0..w_out {
                for ch in 0..c {
                    for dy in 0..2 {
                        for dx in 0..2 {
                            let src = ((b * hi + 2 * y + dy) * wi + 2 * x + dx) * in_stride + in_offset + ch;
                            let dst = ((b * h_out + y) * w_out + x) * 4 * c + ch * 4 + dy * 2 + dx;
                            out[dst] = input[src];
                        }
                    }
                }
            }
        }
    }
}

/// The exact inverse of `squeeze`: dense `[b, h, w, 4c]` -> `[b, 2h, 2w, (stride, offset, c)]`.
pub fn unsqueeze(input: &[f32], batch: usize, h_in: usize, w_in: usize, c: usize, out_stride: usize, out_offset: usize, out: &mut [f32]) {
    let (ho, wo) = (2 * h_in, 2 * w_in);
    for b in 0..batch {
        for y in 0..h_in {
            for x in 0..w_in {
                for ch in 0..c {
                    for dy in 0..2 {
                        for dx in 0..2 {
                            let dst = ((b * ho + 2 * y + dy) * wo + 2 * x + dx) * out_stride + out_offset + ch;
                            let src = ((b * h_in + y) * w_in + x) * 4 * c + ch * 4 + dy * 2 + dx;
                            out[dst] = input[src];
                        }
                    }
                }
            }
        }
    }
}

/// `ln(sigmoid(a))`, computed without overflow.
pub fn log_sigmoid(a: f64) -> f64 {
    if a >= 0.0 {
        -(-a).exp().ln_1p()
    } else {
        a - a.exp().ln_1p()
    }
}

/// Coupling combine on a dense `[batch * pixels, c]` state whose second half is z2.
/// `h` is `[batch * pixels, c/2]` (additive) or `[batch * pixels, c]` interleaved
/// (shift, raw scale) (affine). Returns the per-image sum of ln(scale) (zero for
/// additive; for the reverse direction, the same quantity, not negated).
pub fn coupling(state: &mut [f32], h: &[f32], batch: usize, pixels: usize, c: usize, affine: bool, reverse: bool) -> Vec<f64> {
    let half = c / 2;
    let mut logs = vec![0f64; batch];
    for b in 0..batch {
        for p in 0..pixels {
            let m = b * pixels + p;
            for i in 0..half {
                let z = &mut state[m * c + half + i];
                if affine {
                    let shift = h[m * c + 2 * i] as f64;
                    let a = h[m * c + 2 * i + 1] as f64 + 2.0;
                    let scale = 1.0 / (1.0 + (-a).exp());
                    logs[b] += log_sigmoid(a);
                    *z = if reverse { (*z as f64 / scale - shift) as f32 } else { ((*z as f64 + shift) * scale) as f32 };
                } else {
                    let d = h[m * half + i];
                    *z = if reverse { *z - d } else { *z + d };
                }
            }
        }
    }
    logs
}

/// Where a prior reads z2 and writes eps. `h` holds interleaved (mean, logs) pairs for
/// `cz` channels at each of `pixels` positions; `h_image_stride` is 0 for the constant
/// top prior, `pixels * 2 * cz` for a split prior.
#[derive(Debug, Clone, Copy)]
pub struct PriorGeometry {
    pub batch: usize,
    pub pixels: usize,
    pub cz: usize,
    pub z_stride: usize,
    pub z_offset: usize,
    pub h_image_stride: usize,
    pub eps_offset: usize,
    pub eps_image_stride: usize,
}

const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// eps = (z - mean) / exp(logs); returns the per-image Gaussian log-density of z.
pub fn prior_standardize(g: PriorGeometry, state: &[f32], h: &[f32], eps: &mut [f32]) -> Vec<f64> {
    let mut logp = vec![0f64; g.batch];
    for b in 0..g.batch {
        for p in 0..g.pixels {
            for i in 0..g.cz {
                let hi = b * g.h_image_stride + p * 2 * g.cz + 2 * i;
                let (mean, ls) = (h[hi] as f64, h[hi + 1] as f64);
                let z = state[(b * g.pixels + p) * g.z_stride + g.z_offset + i] as f64;
                let e = (z - mean) * (-ls).exp();
                logp[b] += -0.5 * (LN_2PI + e * e) - ls;
                eps[b * g.eps_image_stride + g.eps_offset + p * g.cz + i] = e as f32;
            }
        }
    }
    logp
}

/// z = mean + exp(logs) * temperature * eps.
pub fn prior_sample(g: PriorGeometry, eps: &[f32], h: &[f32], temperature: f32, state: &mut [f32]) {
    for b in 0..g.batch {
        for p in 0..g.pixels {
            for i in 0..g.cz {
                let hi = b * g.h_image_stride + p * 2 * g.cz + 2 * i;
                let (mean, ls) = (h[hi] as f64, h[hi + 1] as f64);
                let e = eps[b * g.eps_image_stride + g.eps_offset + p * g.cz + i] as f64;
                state[(b * g.pixels + p) * g.z_stride + g.z_offset + i] = (mean + ls.exp() * temperature as f64 * e) as f32;
            }
        }
    }
}

/// RGBA8 pixels -> model input in [-0.5, 0.5]: quantized to `n_bits`, plus the bin
/// centre. One channel models read the red channel.
pub fn image_to_x(rgba: &[u8], channels: usize, n_bits: u32) -> Vec<f32> {
    let bins = (1u32 << n_bits) as f32;
    let shift = 8 - n_bits;
    let mut x = Vec::with_capacity(rgba.len() / 4 * channels);
    for px in rgba.chunks_exact(4) {
        for &v in &px[..channels] {
            let q = (v >> shift) as f32;
            x.push(q / bins - 0.5 + 0.5 / bins);
        }
    }
    x
}

/// Model output -> RGBA8. `quantize` floors to `n_bits` levels (OpenAI's bit-exact
/// output); otherwise the continuous value is scaled to 0..255 and rounded down.
pub fn x_to_rgba(x: &[f32], channels: usize, n_bits: u32, quantize: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / channels * 4);
    for px in x.chunks_exact(channels) {
        let mut rgb = [0u8; 3];
        for (k, v) in rgb.iter_mut().enumerate() {
            *v = to_u8(px[k.min(channels - 1)], n_bits, quantize);
        }
        out.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
    }
    out
}

pub fn to_u8(v: f32, n_bits: u32, quantize: bool) -> u8 {
    let u = v + 0.5;
    if quantize {
        let bins = (1u32 << n_bits) as f32;
        let q = (u * bins).floor().clamp(0.0, bins - 1.0);
        (q * (256.0 / bins)) as u8
    } else {
        (u * 256.0).floor().clamp(0.0, 255.0) as u8
    }
}

/// The counter-based generator shared with `shaders/rng.wgsl`: a 32-bit integer hash
/// (lowbias32) of (seed, index), two uniforms, Box-Muller. Integer-exact on every
/// platform, so a seed gives the same eps natively and in the browser up to the
/// rounding of `log` and `cos`.
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

pub fn normal(seed: u32, index: u32) -> f32 {
    let key = hash32(seed ^ 0x85eb_ca6b);
    let a = hash32(key ^ hash32(index.wrapping_mul(2)));
    let b = hash32(key ^ hash32(index.wrapping_mul(2).wrapping_add(1)));
    let u1 = ((a >> 8) + 1) as f32 / 16_777_216.0; // (0, 1]
    let u2 = (b >> 8) as f32 / 16_777_216.0; // [0, 1)
    (-2.0 * ln_poly(u1)).sqrt() * cos_2pi_poly(u2)
}

/// ln(u) for u in (0, 1] with plain f32 operations, the twin of `ln_poly` in rng.wgsl.
pub fn ln_poly(u: f32) -> f32 {
    let bits = u.to_bits();
    let e = (((bits >> 23) & 255) as i32 - 127) as f32;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0))))));
    e * std::f32::consts::LN_2 + 2.0 * s * series
}

/// cos(2 pi u) for u in [0, 1) with plain f32 operations, the twin of `cos_2pi_poly`.
pub fn cos_2pi_poly(u: f32) -> f32 {
    let t = u - (u + 0.5).floor();
    let a = t.abs();
    let flip = a > 0.25;
    let r = if flip { 0.5 - a } else { a };
    let x = std::f32::consts::TAU * r;
    let x2 = x * x;
    let c = 1.0 - x2 * (1.0 / 2.0 - x2 * (1.0 / 24.0 - x2 * (1.0 / 720.0 - x2 * (1.0 / 40320.0 - x2 * (1.0 / 3628800.0 - x2 * (1.0 / 479001600.0))))));
    if flip {
        -c
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn polynomial_log_and_cos_are_accurate() {
        for i in 1..=4096u32 {
            let u = i as f32 / 4096.0;
            assert!((super::ln_poly(u) as f64 - (u as f64).ln()).abs() < 2e-6, "ln {u}");
            let v = (i - 1) as f32 / 4096.0;
            assert!((super::cos_2pi_poly(v) as f64 - (std::f64::consts::TAU * v as f64).cos()).abs() < 2e-6, "cos {v}");
        }
        assert!((super::ln_poly(1.0 / 16_777_216.0) as f64 - (1.0f64 / 16_777_216.0).ln()).abs() < 1e-5);
    }
}
