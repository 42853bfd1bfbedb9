//! The CPU reference implementation of the whole model, built from the same folded
//! parameters the GPU runs. It is the oracle for the GPU kernels and the fallback
//! engine when a browser has no WebGPU.

pub mod ops;

use crate::model::{Coupling, FoldedModel};
use ops::{Geometry, PriorGeometry};

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

fn coupling_net(model: &FoldedModel, l: usize, k: usize, batch: usize, state: &[f32]) -> Vec<f32> {
    let lev = &model.levels[l];
    let s = lev.shape;
    let step = &lev.steps[k];
    let m = batch * s.pixels();
    let width = model.config.width as usize;
    let geo = |in_stride, out_stride| Geometry {
        batch,
        h: s.h,
        w: s.w,
        in_stride,
        in_offset: 0,
        out_stride,
        out_offset: 0,
    };
    let mut h1 = vec![0f32; m * width];
    ops::conv2d(&step.f1, geo(s.c, width), state, &mut h1);
    let mut h2 = vec![0f32; m * width];
    ops::conv2d(&step.f2, geo(width, width), &h1, &mut h2);
    let mut h3 = vec![0f32; m * step.f3.cout];
    ops::conv2d(&step.f3, geo(width, step.f3.cout), &h2, &mut h3);
    h3
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

/// Encodes `x` (`[batch, H, W, channels]` in model units) to eps and bits/dim.
pub fn encode(model: &FoldedModel, x: &[f32], batch: usize) -> Encoded {
    let cfg = &model.config;
    let d = model.dim();
    let affine = cfg.coupling == Coupling::Affine;
    let mut eps = vec![0f32; batch * d];
    let mut logdet = vec![model.logdet_const; batch];
    let mut logp = vec![0f64; batch];
    // `prev` is the previous level's state (or the image) and which channels go on.
    let mut prev = x.to_vec();
    let (mut prev_stride, mut prev_c) = (cfg.image.channels as usize, cfg.image.channels as usize);
    for (l, lev) in model.levels.iter().enumerate() {
        let s = lev.shape;
        let m = batch * s.pixels();
        let mut state = vec![0f32; m * s.c];
        ops::squeeze(&prev, batch, s.h, s.w, prev_c, prev_stride, 0, &mut state);
        for (k, step) in lev.steps.iter().enumerate() {
            let mut next = vec![0f32; m * s.c];
            let g = Geometry { batch, h: s.h, w: s.w, in_stride: s.c, in_offset: 0, out_stride: s.c, out_offset: 0 };
            ops::conv2d(&step.forward, g, &state, &mut next);
            state = next;
            let h = coupling_net(model, l, k, batch, &state);
            let ls = ops::coupling(&mut state, &h, batch, s.pixels(), s.c, affine, false);
            for b in 0..batch {
                logdet[b] += ls[b];
            }
        }
        let g = split_geometry(model, l, batch);
        let lp = match &lev.prior {
            Some(prior) => {
                let mut h = vec![0f32; m * s.c];
                let cg = Geometry { batch, h: s.h, w: s.w, in_stride: s.c, in_offset: 0, out_stride: s.c, out_offset: 0 };
                ops::conv2d(prior, cg, &state, &mut h);
                ops::prior_standardize(g, &state, &h, &mut eps)
            }
            None => ops::prior_standardize(g, &state, &model.top, &mut eps),
        };
        for b in 0..batch {
            logp[b] += lp[b];
        }
        prev = state;
        prev_stride = s.c;
        prev_c = s.c / 2;
    }
    finish(model, logdet, logp, eps)
}

/// Decodes eps (`[batch, dim]`) at per-level temperatures to `[batch, H, W, channels]`.
pub fn decode(model: &FoldedModel, eps: &[f32], batch: usize, temperatures: &[f32]) -> Vec<f32> {
    let cfg = &model.config;
    let affine = cfg.coupling == Coupling::Affine;
    let nl = model.levels.len();
    let mut below: Vec<f32> = Vec::new(); // state of level l+1, dense
    for l in (0..nl).rev() {
        let lev = &model.levels[l];
        let s = lev.shape;
        let m = batch * s.pixels();
        let mut state = vec![0f32; m * s.c];
        let g = split_geometry(model, l, batch);
        match &lev.prior {
            None => ops::prior_sample(g, eps, &model.top, temperatures[l], &mut state),
            Some(prior) => {
                let sb = model.levels[l + 1].shape;
                ops::unsqueeze(&below, batch, sb.h, sb.w, sb.c / 4, s.c, 0, &mut state);
                let mut h = vec![0f32; m * s.c];
                let cg = Geometry { batch, h: s.h, w: s.w, in_stride: s.c, in_offset: 0, out_stride: s.c, out_offset: 0 };
                ops::conv2d(prior, cg, &state, &mut h);
                ops::prior_sample(g, eps, &h, temperatures[l], &mut state);
            }
        }
        for (k, step) in lev.steps.iter().enumerate().rev() {
            let h = coupling_net(model, l, k, batch, &state);
            ops::coupling(&mut state, &h, batch, s.pixels(), s.c, affine, true);
            let mut next = vec![0f32; m * s.c];
            let g = Geometry { batch, h: s.h, w: s.w, in_stride: s.c, in_offset: 0, out_stride: s.c, out_offset: 0 };
            ops::conv2d(&step.inverse, g, &state, &mut next);
            state = next;
        }
        below = state;
    }
    let s0 = model.levels[0].shape;
    let c0 = cfg.image.channels as usize;
    let mut x = vec![0f32; batch * model.dim()];
    ops::unsqueeze(&below, batch, s0.h, s0.w, c0, c0, 0, &mut x);
    x
}

/// Standard normal eps for `batch` images from `seed` (the GPU generator's twin).
pub fn random_eps(seed: u32, batch: usize, dim: usize) -> Vec<f32> {
    (0..batch * dim).map(|i| ops::normal(seed, i as u32)).collect()
}
