//! The fast CPU engine: the same computation as the reference, with f32 accumulation and
//! convs as a register-blocked GEMM (`gemm`: 4 pixels x 8 output channels per micro-tile,
//! weights packed once at load so the inner loop reads 8 contiguous weights per 32
//! multiply-adds; AVX2 + FMA or AVX-512 where the CPU has them; `narrow` for convs with few
//! output or input channels). Natively each conv is split by output pixels over a pool of
//! threads (`threads`), with bit-identical results for any thread count; in wasm on one
//! thread, or on several in the threaded build. Used in the browser where there is no WebGPU or
//! only a software fallback adapter; tested against the reference and the PyTorch goldens.

mod conv;
mod gemm;
mod narrow;
pub(crate) mod threads;

use super::{Backend, Engine, Job, Latents};
use crate::model::flow::{self as ops, finish, split_geometry, Encoded};
use crate::model::{pixels, rng, Coupling, FoldedModel, Model};
use conv::{Ctx, PackedConv};
use gemm::Kernel;
use threads::Threads;

struct Step {
    forward: PackedConv,
    inverse: PackedConv,
    f: [PackedConv; 3],
}

/// The fast CPU engine for one model.
pub struct CpuEngine {
    model: FoldedModel,
    threads: Threads,
    kernel: Kernel,
    steps: Vec<Vec<Step>>,
    priors: Vec<Option<PackedConv>>,
}

/// The coupling net's activations, kept across the steps of one image: allocating and
/// zeroing them per step (1 MB at level 0) was serial time between the split convs.
#[derive(Default)]
struct Net {
    h1: Vec<f32>,
    h2: Vec<f32>,
    h3: Vec<f32>,
}

/// The first `n` values of a buffer (grown with zeros once; every conv writes all of its
/// output, so what a previous step left there is never read).
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

fn dense(batch: usize, h: usize, w: usize, c: usize) -> ops::Geometry {
    ops::Geometry { batch, h, w, in_stride: c, in_offset: 0, out_stride: c, out_offset: 0 }
}

impl CpuEngine {
    /// An engine on every core (`available_parallelism`).
    pub fn new(model: &Model) -> Self {
        CpuEngine::with_threads(model, 0)
    }

    /// An engine on `threads` threads (0: one per core; always one in wasm32).
    pub fn with_threads(model: &Model, threads: usize) -> Self {
        let (threads, kernel) = (Threads::new(threads), Kernel::detect());
        let fm = model.folded.clone();
        let steps = fm
            .levels
            .iter()
            .map(|l| {
                l.steps
                    .iter()
                    .map(|s| Step {
                        forward: PackedConv::new(&s.forward, kernel),
                        inverse: PackedConv::new(&s.inverse, kernel),
                        f: [PackedConv::new(&s.f1, kernel), PackedConv::new(&s.f2, kernel), PackedConv::new(&s.f3, kernel)],
                    })
                    .collect()
            })
            .collect();
        let priors = fm.levels.iter().map(|l| l.prior.as_ref().map(|c| PackedConv::new(c, kernel))).collect();
        CpuEngine { model: fm, threads, kernel, steps, priors }
    }

    /// The coupling's net on z1 (the first half of `state`'s channels), into `net.h3`.
    fn coupling_net<'n>(&self, cx: Ctx, l: usize, k: usize, batch: usize, state: &[f32], net: &'n mut Net) -> &'n [f32] {
        let s = self.model.levels[l].shape;
        let width = self.model.config.width as usize;
        let m = batch * s.pixels();
        let f = &self.steps[l][k].f;
        let cf = f[2].conv.cout;
        let (h1, h2, h3) = (sized(&mut net.h1, m * width), sized(&mut net.h2, m * width), sized(&mut net.h3, m * cf));
        f[0].run(cx, ops::Geometry { in_stride: s.c, out_stride: width, ..dense(batch, s.h, s.w, 0) }, state, h1);
        f[1].run(cx, dense(batch, s.h, s.w, width), h1, h2);
        f[2].run(cx, ops::Geometry { in_stride: width, out_stride: cf, ..dense(batch, s.h, s.w, 0) }, h2, h3);
        h3
    }

    fn prior_geometry(&self, l: usize, batch: usize) -> ops::PriorGeometry {
        split_geometry(&self.model, l, batch)
    }

    /// Encodes RGBA8 images.
    pub fn encode(&self, rgba: &[u8], batch: usize) -> Encoded {
        let cfg = &self.model.config;
        let x = pixels::image_to_x(rgba, cfg.image.channels as usize, cfg.n_bits);
        self.encode_x(&x, batch)
    }

    /// Encodes model values `[batch, H, W, channels]`, one image at a time: images are
    /// independent, and one image's activations stay in the cache (a batch of 16 at once
    /// was measured 25% slower per image). On several threads, the images of a batch run in
    /// parallel, and the threads share each conv of an image when they are idle (so one
    /// image uses every core).
    pub fn encode_x(&self, x: &[f32], batch: usize) -> Encoded {
        let d = self.model.dim();
        let mut all = Encoded { eps: Vec::with_capacity(batch * d), logdet: vec![], logp: vec![], objective: vec![], bits_per_dim: vec![] };
        let all_images = self.threads.call(|team| team.map(batch, |i, team| self.encode_one(Ctx { team }, &x[i * d..(i + 1) * d])));
        for e in all_images {
            all.eps.extend(e.eps);
            all.logdet.extend(e.logdet);
            all.logp.extend(e.logp);
            all.objective.extend(e.objective);
            all.bits_per_dim.extend(e.bits_per_dim);
        }
        all
    }

    fn encode_one(&self, cx: Ctx, x: &[f32]) -> Encoded {
        let batch = 1;
        let mut net = Net::default();
        let fm = &self.model;
        let cfg = &fm.config;
        let affine = cfg.coupling == Coupling::Affine;
        let mut eps = vec![0f32; batch * fm.dim()];
        let mut logdet = vec![fm.logdet_const; batch];
        let mut logp = vec![0f64; batch];
        let mut prev = x.to_vec();
        let (mut prev_stride, mut prev_c) = (cfg.image.channels as usize, cfg.image.channels as usize);
        for (l, lev) in fm.levels.iter().enumerate() {
            let s = lev.shape;
            let m = batch * s.pixels();
            let mut state = vec![0f32; m * s.c];
            ops::squeeze(&prev, batch, s.h, s.w, prev_c, prev_stride, 0, &mut state);
            let mut next = vec![0f32; m * s.c];
            for k in 0..lev.steps.len() {
                self.steps[l][k].forward.run(cx, dense(batch, s.h, s.w, s.c), &state, &mut next);
                std::mem::swap(&mut state, &mut next);
                let h = self.coupling_net(cx, l, k, batch, &state, &mut net);
                let ls = ops::coupling(&mut state, h, batch, s.pixels(), s.c, affine, false);
                logdet.iter_mut().zip(ls).for_each(|(a, b)| *a += b);
            }
            let g = self.prior_geometry(l, batch);
            let lp = match &self.priors[l] {
                Some(p) => {
                    let mut h = vec![0f32; m * s.c];
                    p.run(cx, dense(batch, s.h, s.w, s.c), &state, &mut h);
                    ops::prior_standardize(g, &state, &h, &mut eps)
                }
                None => ops::prior_standardize(g, &state, &fm.top, &mut eps),
            };
            logp.iter_mut().zip(lp).for_each(|(a, b)| *a += b);
            prev = state;
            prev_stride = s.c;
            prev_c = s.c / 2;
        }
        finish(fm, logdet, logp, eps)
    }

    /// Decodes eps at per-level temperatures to model values `[batch, H, W, channels]`.
    /// (One image at a time, as `encode_x`.)
    pub fn decode_x(&self, eps: &[f32], batch: usize, temps: &[f32]) -> Vec<f32> {
        let d = self.model.dim();
        self.threads.call(|team| team.map(batch, |i, team| self.decode_one(Ctx { team }, &eps[i * d..(i + 1) * d], temps))).concat()
    }

    fn decode_one(&self, cx: Ctx, eps: &[f32], temps: &[f32]) -> Vec<f32> {
        let batch = 1;
        let mut net = Net::default();
        let fm = &self.model;
        let cfg = &fm.config;
        let affine = cfg.coupling == Coupling::Affine;
        let nl = fm.levels.len();
        let mut below: Vec<f32> = Vec::new();
        for l in (0..nl).rev() {
            let lev = &fm.levels[l];
            let s = lev.shape;
            let m = batch * s.pixels();
            let mut state = vec![0f32; m * s.c];
            let g = self.prior_geometry(l, batch);
            match &self.priors[l] {
                None => ops::prior_sample(g, eps, &fm.top, temps[l], &mut state),
                Some(p) => {
                    let sb = fm.levels[l + 1].shape;
                    ops::unsqueeze(&below, batch, sb.h, sb.w, sb.c / 4, s.c, 0, &mut state);
                    let mut h = vec![0f32; m * s.c];
                    p.run(cx, dense(batch, s.h, s.w, s.c), &state, &mut h);
                    ops::prior_sample(g, eps, &h, temps[l], &mut state);
                }
            }
            let mut next = vec![0f32; m * s.c];
            for k in (0..lev.steps.len()).rev() {
                let h = self.coupling_net(cx, l, k, batch, &state, &mut net);
                ops::coupling(&mut state, h, batch, s.pixels(), s.c, affine, true);
                self.steps[l][k].inverse.run(cx, dense(batch, s.h, s.w, s.c), &state, &mut next);
                std::mem::swap(&mut state, &mut next);
            }
            below = state;
        }
        let s0 = fm.levels[0].shape;
        let c0 = cfg.image.channels as usize;
        let mut x = vec![0f32; batch * fm.dim()];
        ops::unsqueeze(&below, batch, s0.h, s0.w, c0, c0, 0, &mut x);
        x
    }

    /// Decodes to RGBA8.
    pub fn decode(&self, eps: &[f32], batch: usize, temps: &[f32], quantize: bool) -> Vec<u8> {
        let cfg = &self.model.config;
        pixels::x_to_rgba(&self.decode_x(eps, batch, temps), cfg.image.channels as usize, cfg.n_bits, quantize)
    }

    /// The given latents, or the CPU twin of the GPU generator's draw for a seed.
    fn latents<'a>(&self, eps: Latents<'a>, n: usize) -> std::borrow::Cow<'a, [f32]> {
        match eps {
            Latents::Given(e) => std::borrow::Cow::Borrowed(e),
            Latents::Seeded(seed) => std::borrow::Cow::Owned(rng::random_eps(seed, n, self.model.dim())),
        }
    }
}

impl Engine for CpuEngine {
    fn backend(&self) -> Backend {
        Backend::Cpu
    }
    fn device(&self) -> String {
        let n = self.threads.count();
        let arch = (std::env::consts::ARCH, std::env::consts::OS);
        format!("CPU engine, {n} thread{}, {} ({} {})", if n == 1 { "" } else { "s" }, self.kernel.name(), arch.0, arch.1)
    }
    fn encode_rgba<'a>(&'a self, rgba: &'a [u8], n: usize) -> Job<'a, Encoded> {
        Box::pin(async move { Ok(self.encode(rgba, n)) })
    }
    fn encode_x<'a>(&'a self, x: &'a [f32], n: usize) -> Job<'a, Encoded> {
        Box::pin(async move { Ok(CpuEngine::encode_x(self, x, n)) })
    }
    fn decode_rgba<'a>(&'a self, eps: Latents<'a>, n: usize, temps: &'a [f32], quantize: bool) -> Job<'a, Vec<u8>> {
        Box::pin(async move { Ok(self.decode(&self.latents(eps, n), n, temps, quantize)) })
    }
    fn decode_x<'a>(&'a self, eps: Latents<'a>, n: usize, temps: &'a [f32]) -> Job<'a, Vec<f32>> {
        Box::pin(async move { Ok(CpuEngine::decode_x(self, &self.latents(eps, n), n, temps)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    fn model(coupling: &str) -> Model {
        let json = format!(
            r#"{{"format": "glow-model/1", "name": "t", "image": {{"height": 32, "width": 32, "channels": 3}}, "n_bits": 5,
            "levels": 3, "steps": 2, "width": 32, "coupling": "{coupling}", "edge_bias": true, "learn_top": true}}"#
        );
        Model::random(&ModelConfig::from_json(&json).unwrap(), 7).unwrap()
    }

    /// Encode and decode of one image and of two give the same bits on 1, 2 and 3 threads
    /// (the level-0 convs of this 32x32 model, 256 pixels, are big enough to be split).
    #[test]
    fn any_thread_count_gives_the_same_bits() {
        for coupling in ["additive", "affine"] {
            let m = model(coupling);
            let d = m.dim();
            let eps = rng::random_eps(3, 2, d);
            let temps = vec![0.8; 3];
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let one = CpuEngine::with_threads(&m, 1);
            assert_eq!(one.threads.count(), 1);
            let x = one.decode_x(&eps, 2, &temps);
            let e = one.encode_x(&x, 2);
            assert!(x.iter().any(|v| *v != 0.0) && e.logdet.iter().all(|l| l.is_finite()));
            for n in [2, 3] {
                let many = CpuEngine::with_threads(&m, n);
                assert_eq!(many.threads.count(), n);
                assert!(many.device().contains(&format!("{n} threads")), "{}", many.device());
                assert_eq!(bits(&many.decode_x(&eps, 2, &temps)), bits(&x), "{coupling}: decode on {n} threads");
                let en = many.encode_x(&x, 2);
                assert_eq!(bits(&en.eps), bits(&e.eps), "{coupling}: encode on {n} threads");
                assert_eq!(en.logdet, e.logdet, "{coupling}: logdet on {n} threads");
                assert_eq!(en.bits_per_dim, e.bits_per_dim, "{coupling}: bits/dim on {n} threads");
                // One image alone: the threads share its convs.
                assert_eq!(bits(&many.decode_x(&eps[..d], 1, &temps)), bits(&x[..d]), "{coupling}: one image on {n} threads");
                assert_eq!(bits(&many.encode_x(&x[..d], 1).eps), bits(&e.eps[..d]), "{coupling}: one encode on {n} threads");
            }
        }
    }
}
