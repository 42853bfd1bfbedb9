//! The model's elementwise steps, written once and run by the CPU engine and the
//! reference alike (the GPU kernels mirror them one to one and are tested against them):
//! squeeze, the coupling combine, the priors, where each level's latent lives, and how
//! log-densities become bits/dim. Plain loops over NHWC buffers.

use super::FoldedModel;

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

/// Squeeze: `[b, 2h, 2w, (stride, offset, c)]` -> dense `[b, h, w, 4c]`, output channel
/// `c*4 + dy*2 + dx`.
// Strides and offsets mirror the WGSL kernel one to one, hence the argument count.
#[allow(clippy::too_many_arguments)]
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
#[allow(clippy::too_many_arguments)]
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
    for (b, logs_b) in logs.iter_mut().enumerate() {
        for p in 0..pixels {
            let m = b * pixels + p;
            for i in 0..half {
                let z = &mut state[m * c + half + i];
                if affine {
                    let shift = h[m * c + 2 * i] as f64;
                    let a = h[m * c + 2 * i + 1] as f64 + 2.0;
                    let scale = 1.0 / (1.0 + (-a).exp());
                    *logs_b += log_sigmoid(a);
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

/// Where level `l`'s prior reads z2 and writes eps (the split's second half, or the
/// whole state at the top).
pub fn split_geometry(model: &FoldedModel, l: usize, batch: usize) -> PriorGeometry {
    let s = model.levels[l].shape;
    let last = l + 1 == model.levels.len();
    let cz = if last { s.c } else { s.c / 2 };
    PriorGeometry {
        batch,
        pixels: s.pixels(),
        cz,
        z_stride: s.c,
        z_offset: s.c - cz,
        h_image_stride: if last { 0 } else { s.pixels() * 2 * cz },
        eps_offset: s.eps_offset,
        eps_image_stride: model.dim(),
    }
}

/// The result of encoding a batch.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// `[batch, dim]`: every level's standardized latent, in level order.
    pub eps: Vec<f32>,
    pub logdet: Vec<f64>,
    pub logp: Vec<f64>,
    pub objective: Vec<f64>,
    pub bits_per_dim: Vec<f64>,
}

/// Turns per-image logdet and prior log-density into objective and bits/dim.
pub fn finish(model: &FoldedModel, logdet: Vec<f64>, logp: Vec<f64>, eps: Vec<f32>) -> Encoded {
    let d = model.dim() as f64;
    let n_bits = model.config.n_bits as f64;
    let objective: Vec<f64> = logdet
        .iter()
        .zip(&logp)
        .map(|(ld, lp)| ld + lp - d * n_bits * std::f64::consts::LN_2)
        .collect();
    let bits_per_dim = objective.iter().map(|o| -o / (d * std::f64::consts::LN_2)).collect();
    Encoded { eps, logdet, logp, objective, bits_per_dim }
}

