//! The fast CPU engine: the same computation as the reference, with f32 accumulation and
//! convs as a register-blocked GEMM (4 pixels x 8 output channels per micro-tile, weights
//! packed once at load so the inner loop reads 8 contiguous weights per 32 multiply-adds).
//! LLVM vectorises the micro-kernel (SSE/AVX natively, simd128 in wasm). Used in the
//! browser where there is no WebGPU or only a software fallback adapter; tested against
//! the reference and the PyTorch goldens.

use super::{Backend, Engine, Job, Latents};
use crate::model::flow::{self as ops, finish, split_geometry, Encoded};
use crate::model::fold::{edge_class, Conv};
use crate::model::{pixels, rng, Coupling, FoldedModel, Model};

const NR: usize = 8; // output channels per micro-tile
const MR: usize = 4; // pixels per micro-tile

/// A conv with its weights packed as `[ceil(cout/8)][taps*cin][8]` (zero padded).
struct PackedConv {
    conv: Conv,
    packed: Vec<f32>,
}

impl PackedConv {
    fn new(conv: &Conv) -> Self {
        let k = conv.ksize * conv.ksize * conv.cin;
        let blocks = conv.cout.div_ceil(NR);
        let mut packed = vec![0f32; blocks * k * NR];
        for nb in 0..blocks {
            for kk in 0..k {
                for j in 0..NR {
                    let co = nb * NR + j;
                    if co < conv.cout {
                        packed[(nb * k + kk) * NR + j] = conv.weight[kk * conv.cout + co];
                    }
                }
            }
        }
        PackedConv { conv: conv.clone(), packed }
    }

    /// `out[p, out_offset + co]` for a `[batch, h, w, in_stride]` input (channels at
    /// `in_offset`), same semantics as `reference::ops::conv2d`.
    fn run(&self, g: ops::Geometry, input: &[f32], out: &mut [f32]) {
        let c = &self.conv;
        let (h, w) = (g.h, g.w);
        let ks = c.ksize;
        let rad = (ks / 2) as isize;
        let k = ks * ks * c.cin;
        let blocks = c.cout.div_ceil(NR);
        // im2col of MR pixels per tile, interleaved: a[kk * MR + r], so the micro-kernel
        // reads MR inputs and NR weights contiguously for each kk. Tiles are packed in
        // chunks of about 64 KB, and each block of NR output channels runs over the whole
        // chunk, so its packed weights stay in L1 while the chunk streams from L2.
        let total = g.batch * h * w;
        let tiles_total = total.div_ceil(MR);
        let chunk = (16384 / (MR * k)).clamp(1, 64);
        let mut a = vec![0f32; chunk * MR * k];
        let mut row = vec![0f32; k];
        let mut classes = vec![0usize; chunk * MR];
        for t0 in (0..tiles_total).step_by(chunk) {
            let nt = chunk.min(tiles_total - t0);
            for t in 0..nt {
                let m0 = (t0 + t) * MR;
                let at = &mut a[t * MR * k..(t + 1) * MR * k];
                for r in 0..MR {
                    let m = m0 + r;
                    if m >= total {
                        row.fill(0.0);
                    } else {
                        let (b, y, x) = (m / (h * w), (m / w) % h, m % w);
                        classes[t * MR + r] = edge_class(y, x, h, w);
                        // Gather the pixel's receptive field (zeros outside the image).
                        for ky in 0..ks {
                            for kx in 0..ks {
                                let tap = (ky * ks + kx) * c.cin;
                                let yy = y as isize + ky as isize - rad;
                                let xx = x as isize + kx as isize - rad;
                                let dst = &mut row[tap..tap + c.cin];
                                if yy < 0 || yy >= h as isize || xx < 0 || xx >= w as isize {
                                    dst.fill(0.0);
                                } else {
                                    let pix = (b * h + yy as usize) * w + xx as usize;
                                    let src = pix * g.in_stride + g.in_offset;
                                    dst.copy_from_slice(&input[src..src + c.cin]);
                                }
                            }
                        }
                    }
                    for (kk, v) in row.iter().enumerate() {
                        at[kk * MR + r] = *v;
                    }
                }
            }
            for nb in 0..blocks {
                let wp = &self.packed[nb * k * NR..(nb + 1) * k * NR];
                let (c0, c1) = (nb * NR, (nb * NR + NR).min(c.cout));
                let bias = &c.bias[c0..c1];
                for t in 0..nt {
                    let m0 = (t0 + t) * MR;
                    let acc = micro_kernel(&a[t * MR * k..(t + 1) * MR * k], wp);
                    for (r, accr) in acc.iter().enumerate().take(MR.min(total - m0)) {
                        let o = (m0 + r) * g.out_stride + g.out_offset;
                        let dst = &mut out[o + c0..o + c1];
                        for ((d, v), b) in dst.iter_mut().zip(accr).zip(bias) {
                            *d = v + b;
                        }
                        if let Some(e) = &c.edge {
                            let row = classes[t * MR + r] * c.cout;
                            dst.iter_mut().zip(&e[row + c0..row + c1]).for_each(|(d, e)| *d += e);
                        }
                        if c.relu {
                            // Not f32::max: in wasm that is a call to libm's fmaxf (NaN
                            // rules), which cost a quarter of the whole decode.
                            dst.iter_mut().for_each(|d| *d = if *d > 0.0 { *d } else { 0.0 });
                        }
                    }
                }
            }
        }
    }
}

/// The GEMM micro-kernel: `acc[r][j] = sum_kk a[kk][r] * w[kk][j]` over MR x NR outputs,
/// written with fixed-size chunks so the compiler drops bounds checks and keeps the
/// 32 accumulators in vector registers. LLVM vectorises it (SSE/AVX natively, simd128 in wasm)
/// as well as hand-written simd128 intrinsics did (measured: same speed in V8).
#[inline(always)]
fn micro_kernel(a: &[f32], w: &[f32]) -> [[f32; NR]; MR] {
    let mut acc = [[0f32; NR]; MR];
    for (av, wv) in a.chunks_exact(MR).zip(w.chunks_exact(NR)) {
        let av: &[f32; MR] = av.try_into().unwrap_or(&[0.0; MR]);
        let wv: &[f32; NR] = wv.try_into().unwrap_or(&[0.0; NR]);
        for r in 0..MR {
            for j in 0..NR {
                acc[r][j] += av[r] * wv[j];
            }
        }
    }
    acc
}

struct Step {
    forward: PackedConv,
    inverse: PackedConv,
    f: [PackedConv; 3],
}

/// The fast CPU engine for one model.
pub struct CpuEngine {
    model: FoldedModel,
    steps: Vec<Vec<Step>>,
    priors: Vec<Option<PackedConv>>,
}

fn dense(batch: usize, h: usize, w: usize, c: usize) -> ops::Geometry {
    ops::Geometry { batch, h, w, in_stride: c, in_offset: 0, out_stride: c, out_offset: 0 }
}

impl CpuEngine {
    pub fn new(model: &Model) -> Self {
        let fm = model.folded.clone();
        let steps = fm
            .levels
            .iter()
            .map(|l| {
                l.steps
                    .iter()
                    .map(|s| Step {
                        forward: PackedConv::new(&s.forward),
                        inverse: PackedConv::new(&s.inverse),
                        f: [PackedConv::new(&s.f1), PackedConv::new(&s.f2), PackedConv::new(&s.f3)],
                    })
                    .collect()
            })
            .collect();
        let priors = fm.levels.iter().map(|l| l.prior.as_ref().map(PackedConv::new)).collect();
        CpuEngine { model: fm, steps, priors }
    }

    fn coupling_net(&self, l: usize, k: usize, batch: usize, state: &[f32]) -> Vec<f32> {
        let s = self.model.levels[l].shape;
        let width = self.model.config.width as usize;
        let m = batch * s.pixels();
        let f = &self.steps[l][k].f;
        let mut h1 = vec![0f32; m * width];
        f[0].run(ops::Geometry { in_stride: s.c, out_stride: width, ..dense(batch, s.h, s.w, 0) }, state, &mut h1);
        let mut h2 = vec![0f32; m * width];
        f[1].run(dense(batch, s.h, s.w, width), &h1, &mut h2);
        let cf = f[2].conv.cout;
        let mut h3 = vec![0f32; m * cf];
        f[2].run(ops::Geometry { in_stride: width, out_stride: cf, ..dense(batch, s.h, s.w, 0) }, &h2, &mut h3);
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
    /// was measured 25% slower per image).
    pub fn encode_x(&self, x: &[f32], batch: usize) -> Encoded {
        let d = self.model.dim();
        let mut all = Encoded { eps: Vec::with_capacity(batch * d), logdet: vec![], logp: vec![], objective: vec![], bits_per_dim: vec![] };
        for img in x.chunks_exact(d).take(batch) {
            let e = self.encode_one(img);
            all.eps.extend(e.eps);
            all.logdet.extend(e.logdet);
            all.logp.extend(e.logp);
            all.objective.extend(e.objective);
            all.bits_per_dim.extend(e.bits_per_dim);
        }
        all
    }

    fn encode_one(&self, x: &[f32]) -> Encoded {
        let batch = 1;
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
                self.steps[l][k].forward.run(dense(batch, s.h, s.w, s.c), &state, &mut next);
                std::mem::swap(&mut state, &mut next);
                let h = self.coupling_net(l, k, batch, &state);
                let ls = ops::coupling(&mut state, &h, batch, s.pixels(), s.c, affine, false);
                logdet.iter_mut().zip(ls).for_each(|(a, b)| *a += b);
            }
            let g = self.prior_geometry(l, batch);
            let lp = match &self.priors[l] {
                Some(p) => {
                    let mut h = vec![0f32; m * s.c];
                    p.run(dense(batch, s.h, s.w, s.c), &state, &mut h);
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
        eps.chunks_exact(d).take(batch).flat_map(|e| self.decode_one(e, temps)).collect()
    }

    fn decode_one(&self, eps: &[f32], temps: &[f32]) -> Vec<f32> {
        let batch = 1;
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
                    p.run(dense(batch, s.h, s.w, s.c), &state, &mut h);
                    ops::prior_sample(g, eps, &h, temps[l], &mut state);
                }
            }
            let mut next = vec![0f32; m * s.c];
            for k in (0..lev.steps.len()).rev() {
                let h = self.coupling_net(l, k, batch, &state);
                ops::coupling(&mut state, &h, batch, s.pixels(), s.c, affine, true);
                self.steps[l][k].inverse.run(dense(batch, s.h, s.w, s.c), &state, &mut next);
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
        format!("CPU engine, 1 thread ({} {})", std::env::consts::ARCH, std::env::consts::OS)
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
