//! The CPU reference implementation of the whole model, built from the same folded
//! parameters the engines run, with plain f64-accumulating convolutions. It is the
//! oracle for the GPU kernels and both engines, and only that: tests and the CLI's
//! `--reference` check use it; no engine imports it.

pub mod ops;

use crate::model::{Coupling, FoldedModel};
use crate::model::flow::{self as flow, finish, split_geometry, Encoded, Geometry};

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
        flow::squeeze(&prev, batch, s.h, s.w, prev_c, prev_stride, 0, &mut state);
        for (k, step) in lev.steps.iter().enumerate() {
            let mut next = vec![0f32; m * s.c];
            let g = Geometry { batch, h: s.h, w: s.w, in_stride: s.c, in_offset: 0, out_stride: s.c, out_offset: 0 };
            ops::conv2d(&step.forward, g, &state, &mut next);
            state = next;
            let h = coupling_net(model, l, k, batch, &state);
            let ls = flow::coupling(&mut state, &h, batch, s.pixels(), s.c, affine, false);
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
                flow::prior_standardize(g, &state, &h, &mut eps)
            }
            None => flow::prior_standardize(g, &state, &model.top, &mut eps),
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
            None => flow::prior_sample(g, eps, &model.top, temperatures[l], &mut state),
            Some(prior) => {
                let sb = model.levels[l + 1].shape;
                flow::unsqueeze(&below, batch, sb.h, sb.w, sb.c / 4, s.c, 0, &mut state);
                let mut h = vec![0f32; m * s.c];
                let cg = Geometry { batch, h: s.h, w: s.w, in_stride: s.c, in_offset: 0, out_stride: s.c, out_offset: 0 };
                ops::conv2d(prior, cg, &state, &mut h);
                flow::prior_sample(g, eps, &h, temperatures[l], &mut state);
            }
        }
        for (k, step) in lev.steps.iter().enumerate().rev() {
            let h = coupling_net(model, l, k, batch, &state);
            flow::coupling(&mut state, &h, batch, s.pixels(), s.c, affine, true);
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
    flow::unsqueeze(&below, batch, s0.h, s0.w, c0, c0, 0, &mut x);
    x
}

