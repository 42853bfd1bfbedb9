//! The GPU engine: a static plan for one model at one batch size. Every pipeline,
//! buffer and bind group is made in `GpuEngine::new`; a call only writes its inputs, records
//! one command buffer with one compute pass, and reads back once.

use crate::error::{GlowError, Result};
use crate::gpu::kernels::conv::{Combine, ConvLayout, WeightFormat};
use crate::gpu::kernels::coupling::{Coupling as CouplingKernel, CouplingParams};
use crate::gpu::kernels::image::{self, ImageIn, ImageOut, ImageParams};
use crate::gpu::kernels::prior::{Prior, PriorParams};
use crate::gpu::kernels::reduce::{Reduce, ReduceParams};
use crate::gpu::kernels::rng::Rng;
use crate::gpu::kernels::squeeze::{Squeeze, SqueezeParams};
use crate::gpu::kernels::{CallParams, Kernel, KernelCache};
use crate::gpu::GpuContext;
use crate::model::fold::{Conv, F16Loss};
use crate::model::flow::{finish, split_geometry, Encoded};
use crate::model::{Coupling, FoldedModel, Model};
use super::{Backend, Engine, GpuWeights, Job, Latents};
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// One recorded dispatch.
struct Op {
    label: String,
    /// The kernel variant's label and the multiply-adds x2 of a conv (0 otherwise), for
    /// the per-dispatch profile.
    kernel: String,
    flop: f64,
    pipeline: wgpu::ComputePipeline,
    storage: wgpu::BindGroup,
    uniforms: wgpu::BindGroup,
    groups: (u32, u32, u32),
}

/// A dispatch waiting for the uniform buffer to exist.
struct PendingOp {
    label: String,
    flop: f64,
    kernel: Box<dyn Kernel>,
    buffers: Vec<wgpu::Buffer>,
    params: (u64, u64),
    groups: (u32, u32, u32),
}

/// The folded weights of one conv on the GPU, laid out for the kernel that runs it.
struct ConvBuffers {
    layout: ConvLayout,
    relu: bool,
    has_edge: bool,
    /// Multiply-adds x2 per output pixel (an im2col'd conv's padding rows not counted).
    flop_per_pixel: f64,
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
    edge: wgpu::Buffer,
}

struct Buffers {
    image_in: wgpu::Buffer,
    image_out: wgpu::Buffer,
    x: wgpu::Buffer,
    state: [wgpu::Buffer; 2],
    h1: wgpu::Buffer,
    h2: wgpu::Buffer,
    h3: wgpu::Buffer,
    eps: wgpu::Buffer,
    terms: wgpu::Buffer,
    acc: wgpu::Buffer,
    top: wgpu::Buffer,
    call: wgpu::Buffer,
    staging: wgpu::Buffer,
}

/// What a decode reads back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Rgba,
    X,
}

/// One dispatch's GPU time from timestamp queries (`GpuEngine::profile`).
#[derive(Clone, Debug)]
pub struct DispatchTime {
    /// Where in the flow, e.g. "L0/S3/f1" (level 0, step 3, the coupling net's first conv).
    pub label: String,
    /// The kernel variant, e.g. "conv2d_vec4|k3|relu|edge".
    pub kernel: String,
    pub ms: f64,
    /// Floating-point operations (2 per multiply-add) of a conv; 0 for other kernels.
    pub flop: f64,
}

/// Sums a profile per level and layer ("L0 f1", "L0 im2col", ...), largest first, with
/// GFLOP/s for the convs and their fraction of the matmul `limit` when known. Used by
/// `glow bench --profile` and by the browser's `GlowModel.profile`.
pub fn profile_summary(times: &[DispatchTime], limit: Option<f64>, passes: usize) -> serde_json::Value {
    let total: f64 = times.iter().map(|t| t.ms).sum();
    // (layer, kernel, dispatches, ms, flop)
    let mut groups: Vec<(String, String, usize, f64, f64)> = Vec::new();
    for t in times {
        let level = t.label.split('/').next().unwrap_or("");
        let layer = t.label.rsplit('/').next().unwrap_or("");
        let name = format!("{level} {layer}");
        match groups.iter_mut().find(|g| g.0 == name) {
            Some(g) => {
                g.2 += 1;
                g.3 += t.ms;
                g.4 += t.flop;
            }
            None => groups.push((name, t.kernel.clone(), 1, t.ms, t.flop)),
        }
    }
    groups.sort_by(|a, b| b.3.total_cmp(&a.3));
    let rows: Vec<serde_json::Value> = groups
        .into_iter()
        .map(|(name, kernel, n, ms, flop)| {
            let mut v = serde_json::json!({"layer": name, "kernel": kernel, "dispatches": n, "ms": ms, "share": ms / total});
            if flop > 0.0 && ms > 0.0 {
                let g = flop / (ms * 1e-3) / 1e9;
                v["gflop_per_s"] = g.into();
                if let Some(l) = limit {
                    v["fraction_of_matmul"] = (g / l).into();
                }
            }
            v
        })
        .collect();
    serde_json::json!({"dispatches": times.len(), "gpu_ms": total, "layers": rows,
        "note": format!("one compute pass per dispatch, stamped at its start and end; each dispatch's best of {passes} calls")})
}

/// How a GPU plan stores its weights, for `glow bench` and the tests.
#[derive(Debug, Clone)]
pub struct WeightInfo {
    /// The format of the coupling nets' and priors' conv weights (the step affine maps are
    /// always f32: see `GpuWeights`).
    pub format: WeightFormat,
    /// Why this format (what was asked for, and for `auto` what decided it).
    pub reason: String,
    /// Bytes of every parameter buffer on the GPU: conv weights, biases (and the f16
    /// path's per-channel factors), edge tables, the top prior.
    pub bytes: u64,
    /// Of which the weight matrices of the coupling nets' and priors' convs (stored in
    /// `format`)...
    pub conv_weight_bytes: u64,
    /// ... and those of the step affine maps and their inverses (always f32).
    pub affine_weight_bytes: u64,
    /// What storing the convs' weights in f16 loses (against the folded f32 weights),
    /// whether or not f16 was used.
    pub f16_loss: F16Loss,
}

pub struct GpuEngine {
    ctx: Arc<GpuContext>,
    weights: WeightInfo,
    model: FoldedModel,
    batch: usize,
    buffers: Buffers,
    encode_ops: Vec<Op>,
    decode_ops: Vec<Op>,
    rng_op: Op,
    /// The first encode dispatch (RGBA8 -> model values), skipped when values are given.
    image_in_op: Op,
}

struct Builder<'a> {
    ctx: &'a GpuContext,
    /// Scratch for im2col rows (the h2 buffer, free while f1 and the priors run).
    cols: wgpu::Buffer,
    kernels: KernelCache,
    params: Vec<u8>,
    align: usize,
    pending: Vec<PendingOp>,
}

impl<'a> Builder<'a> {
    fn push<K: Kernel + 'static, P: bytemuck::Pod>(&mut self, label: String, kernel: K, buffers: Vec<wgpu::Buffer>, p: P, groups: (u32, u32, u32)) {
        let off = self.params.len();
        let bytes = if kernel.params().is_some() { bytemuck::bytes_of(&p) } else { &[] };
        self.params.extend_from_slice(bytes);
        let padded = self.params.len().div_ceil(self.align) * self.align;
        self.params.resize(padded, 0);
        self.pending.push(PendingOp { label, flop: 0.0, kernel: Box::new(kernel), buffers, params: (off as u64, bytes.len() as u64), groups });
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(&mut self, label: String, cb: &ConvBuffers, batch: usize, h: usize, w: usize, input: &wgpu::Buffer, in_stride: usize, output: &wgpu::Buffer, out_stride: usize) {
        self.conv_into(label, cb, batch, h, w, input, in_stride, output, out_stride, 0, Combine::Store);
    }

    /// A conv writing (or adding / subtracting) its result at channel `out_offset` of pixels
    /// `out_stride` floats apart.
    #[allow(clippy::too_many_arguments)]
    fn conv_into(&mut self, label: String, cb: &ConvBuffers, batch: usize, h: usize, w: usize, input: &wgpu::Buffer, in_stride: usize, output: &wgpu::Buffer, out_stride: usize, out_offset: usize, combine: Combine) {
        let (pre, p) = cb.layout.params(batch, h, w, in_stride, out_stride, out_offset);
        let mut input = input.clone();
        if let Some((k, pi)) = pre {
            let cols = self.cols.clone();
            self.push(format!("{label}/im2col"), k, vec![input, cols.clone()], pi, k.groups(&pi));
            input = cols;
        }
        let kernel = cb.layout.kernel(cb.relu, cb.has_edge, combine);
        let bufs = vec![input, cb.weight.clone(), cb.bias.clone(), cb.edge.clone(), output.clone()];
        self.push(label, kernel, bufs, p, kernel.groups(&p));
        if let Some(op) = self.pending.last_mut() {
            op.flop = cb.flop_per_pixel * (batch * h * w) as f64;
        }
    }

    fn finish(mut self, call: &wgpu::Buffer) -> (Vec<Op>, wgpu::Buffer, KernelCache) {
        let device = &self.ctx.device;
        if self.params.is_empty() {
            self.params.resize(self.align, 0);
        }
        let uniforms = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: &self.params,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut ops = Vec::new();
        for p in self.pending {
            let k = self.kernels.get(device, p.kernel.as_ref());
            let entries: Vec<wgpu::BindGroupEntry> = p
                .buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
                .collect();
            let storage = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("{}/storage", p.label)),
                layout: &k.storage_layout,
                entries: &entries,
            });
            // Group 1: the kernel's params (if it has any), then the call values (if used).
            let mut u = Vec::new();
            if p.kernel.params().is_some() {
                u.push(wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &uniforms,
                        offset: p.params.0,
                        size: wgpu::BufferSize::new(p.params.1),
                    }),
                });
            }
            if p.kernel.uses_call() {
                u.push(wgpu::BindGroupEntry { binding: u.len() as u32, resource: call.as_entire_binding() });
            }
            let ub = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("{}/uniforms", p.label)),
                layout: &k.uniform_layout,
                entries: &u,
            });
            ops.push(Op { label: p.label, kernel: p.kernel.label(), flop: p.flop, pipeline: k.pipeline.clone(), storage, uniforms: ub, groups: p.groups });
        }
        (ops, uniforms, self.kernels)
    }
}

/// The prior kernel's parameters for level `l`: the same geometry as the CPU engine's
/// (`model::flow::split_geometry`), so the two cannot drift apart.
fn prior_params(model: &FoldedModel, l: usize, batch: usize) -> PriorParams {
    let g = split_geometry(model, l, batch);
    PriorParams {
        count: (batch * g.pixels * g.cz) as u32,
        pixels: g.pixels as u32,
        cz: g.cz as u32,
        z_stride: g.z_stride as u32,
        z_offset: g.z_offset as u32,
        h_image_stride: g.h_image_stride as u32,
        eps_offset: g.eps_offset as u32,
        eps_image_stride: g.eps_image_stride as u32,
        level: l as u32,
        ..Default::default()
    }
}

fn storage(device: &wgpu::Device, label: &str, floats: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (floats.max(4) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

fn init(device: &wgpu::Device, label: &str, data: &[f32]) -> wgpu::Buffer {
    let mut v = data.to_vec();
    if v.is_empty() {
        v.push(0.0);
    }
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(&v),
        usage: wgpu::BufferUsages::STORAGE,
    })
}

impl GpuEngine {
    /// Builds the static plan for `model` at `batch` images per dispatch, with the weight
    /// format `GpuWeights::Auto` picks.
    pub async fn new(ctx: Arc<GpuContext>, model: &Model, batch: usize) -> Result<Self> {
        Self::with_weights(ctx, model, batch, GpuWeights::Auto).await
    }

    /// Builds the static plan, storing the convs' weights as `weights` asks.
    pub async fn with_weights(ctx: Arc<GpuContext>, model: &Model, batch: usize, want: GpuWeights) -> Result<Self> {
        if batch == 0 || batch > 1024 {
            return Err(GlowError::Input(format!("batch {batch} must be 1..=1024")));
        }
        let fm = model.folded.clone();
        let cfg = &fm.config;
        let d = fm.dim();
        let hw = (cfg.image.height * cfg.image.width) as usize;
        let width = cfg.width as usize;
        let s0 = fm.levels[0].shape;
        let hmax = batch * s0.pixels() * width;
        let largest = (batch * d).max(hmax) as u64 * 4;
        let limit = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
        if largest > limit {
            return Err(GlowError::OutOfMemory(format!(
                "batch {batch} needs a {largest}-byte buffer, the adapter allows {limit}: use a smaller batch"
            )));
        }
        let device = &ctx.device;
        let call = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("call"),
            size: std::mem::size_of::<CallParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let buffers = Buffers {
            image_in: storage(device, "image_in", batch * hw),
            image_out: storage(device, "image_out", batch * hw),
            x: storage(device, "x", batch * d),
            state: [storage(device, "state0", batch * d), storage(device, "state1", batch * d)],
            h1: storage(device, "h1", hmax),
            h2: storage(device, "h2", hmax),
            h3: storage(device, "h3", batch * d),
            eps: storage(device, "eps", batch * d),
            terms: storage(device, "terms", batch * d),
            acc: storage(device, "acc", batch),
            top: init(device, "top_prior", &fm.top),
            call: call.clone(),
            staging: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: ((batch * d).max(batch * hw) * 4 + 256) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let dummy = init(device, "no_edge", &[0.0; 4]);
        // The convs that may be stored in f16: every one but the step affine maps.
        let mut f16_loss = F16Loss::default();
        for lev in &fm.levels {
            for s in &lev.steps {
                for c in [&s.f1, &s.f2, &s.f3] {
                    f16_loss.add(c.f16_loss());
                }
            }
            if let Some(p) = &lev.prior {
                f16_loss.add(p.f16_loss());
            }
        }
        let (format, reason) = match want {
            GpuWeights::F32 => (WeightFormat::F32, "f32, as asked".to_string()),
            GpuWeights::F16 if !ctx.f16_weights => {
                return Err(GlowError::Gpu("f16 weights asked for, but the adapter cannot unpack f16 in shaders (no SHADER_F16_IN_F32)".into()));
            }
            GpuWeights::Auto if !ctx.f16_weights => (WeightFormat::F32, "f32: the adapter cannot unpack f16 in shaders".to_string()),
            GpuWeights::F16 if f16_loss.max_rel_change.is_infinite() => {
                return Err(GlowError::Input("f16 weights asked for, but some weights are beyond f16's range (65504)".into()));
            }
            GpuWeights::F16 => (WeightFormat::F16, format!("f16, as asked ({} weights rounded to f16)", f16_loss.inexact)),
            GpuWeights::Auto if f16_loss.inexact == 0 => (WeightFormat::F16, "f16: the model's weights are f16 values, so f16 storage loses nothing".to_string()),
            GpuWeights::Auto => (
                WeightFormat::F32,
                format!("f32: {} of the model's weights are not f16 values (stored in f32); --gpu-weights f16 would round them", f16_loss.inexact),
            ),
        };
        // Weights are laid out for the kernel variant that will read them, which depends
        // on the strides of the buffers the conv reads and writes.
        // `cols_ok`: the conv may use the h2 buffer as im2col scratch (it neither reads nor
        // writes h2); then a 3x3 conv whose input channels are not a multiple of 4 becomes
        // im2col + a 1x1 conv over ceil(9 cin / 4) * 4 channels (no masked vec4 lanes).
        // `format` applies to every conv but the step affine maps (`affine: true`).
        let upload = |label: &str, c: &Conv, in_stride: usize, out_stride: usize, out_offset: usize, cols_ok: bool, affine: bool| {
            let scratch = cols_ok.then_some(width);
            let (layout, bias) = match format {
                WeightFormat::F16 if !affine => {
                    // f16 values with the per-output-channel factor apart, after the bias.
                    let split = c.f16_split();
                    let layout = ConvLayout::new(c.ksize as u32, c.cin, c.cout, &split.weight, format, in_stride, out_stride, out_offset, scratch);
                    (layout, [c.bias.as_slice(), &split.scale].concat())
                }
                _ => (ConvLayout::new(c.ksize as u32, c.cin, c.cout, &c.weight, WeightFormat::F32, in_stride, out_stride, out_offset, scratch), c.bias.clone()),
            };
            let weight = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(&format!("{label}.weight")),
                contents: &layout.weight_bytes(),
                usage: wgpu::BufferUsages::STORAGE,
            });
            ConvBuffers {
                weight,
                layout,
                relu: c.relu,
                has_edge: c.edge.is_some(),
                flop_per_pixel: 2.0 * (c.ksize * c.ksize * c.cin * c.cout) as f64,
                bias: init(device, &format!("{label}.bias"), &bias),
                edge: c.edge.as_ref().map_or_else(|| dummy.clone(), |e| init(device, &format!("{label}.edge"), e)),
            }
        };
        // Weights on the GPU, per level: per step (forward, inverse, f1, f2, f3), and the prior.
        let mut steps = Vec::new();
        let mut priors = Vec::new();
        for (l, lev) in fm.levels.iter().enumerate() {
            let mut v = Vec::new();
            let c = lev.shape.c;
            for (k, s) in lev.steps.iter().enumerate() {
                let p = format!("L{l}/S{k}");
                v.push([
                    upload(&format!("{p}/affine"), &s.forward, c, c, 0, false, true),
                    upload(&format!("{p}/affine_inv"), &s.inverse, c, c, 0, false, true),
                    upload(&format!("{p}/f1"), &s.f1, c, width, 0, true, false),
                    upload(&format!("{p}/f2"), &s.f2, width, width, 0, false, false),
                    // Additive: f3 adds into z2 of the state itself (coupling_ops).
                    if fm.config.coupling == Coupling::Affine { upload(&format!("{p}/f3"), &s.f3, width, s.f3.cout, 0, false, false) } else { upload(&format!("{p}/f3"), &s.f3, width, c, c / 2, false, false) },
                ]);
            }
            steps.push(v);
            priors.push(lev.prior.as_ref().map(|p| upload(&format!("L{l}/prior"), p, c, c, 0, true, false)));
        }
        let all = || steps.iter().flatten().flatten().chain(priors.iter().flatten());
        let affine_weight_bytes: u64 = steps.iter().flatten().map(|w| w[0].weight.size() + w[1].weight.size()).sum();
        let conv_weight_bytes = all().map(|cb| cb.weight.size()).sum::<u64>() - affine_weight_bytes;
        let bytes = all().map(|cb| cb.weight.size() + cb.bias.size() + if cb.has_edge { cb.edge.size() } else { 0 }).sum::<u64>() + buffers.top.size();
        let weights = WeightInfo { format, reason, bytes, conv_weight_bytes, affine_weight_bytes, f16_loss };

        let align = ctx.limits.min_uniform_buffer_offset_alignment as usize;
        let affine = cfg.coupling == Coupling::Affine;
        let c0 = cfg.image.channels as usize;
        let b = &buffers;
        let nl = fm.levels.len();

        // ---- encode ----
        let mut eb = Builder { ctx: &ctx, cols: buffers.h2.clone(), kernels: KernelCache::default(), params: Vec::new(), align, pending: Vec::new() };
        let img = ImageParams { pixels: (batch * hw) as u32, channels: c0 as u32, n_bits: cfg.n_bits, _pad0: 0 };
        eb.push("image_in".into(), ImageIn, vec![b.image_in.clone(), b.x.clone()], img, image::groups(&img));
        let mut prev = b.x.clone();
        let (mut prev_stride, mut prev_c) = (c0, c0);
        let mut cur = 0;
        for (l, lev) in fm.levels.iter().enumerate() {
            let s = lev.shape;
            let (p, c) = (s.pixels(), s.c);
            let dst = b.state[cur].clone();
            let sq = SqueezeParams {
                count: (batch * p * c) as u32,
                h: s.h as u32,
                w: s.w as u32,
                c: prev_c as u32,
                stride: prev_stride as u32,
                offset: 0,
                ..Default::default()
            };
            eb.push(format!("L{l}/squeeze"), Squeeze { unsqueeze: false }, vec![prev.clone(), dst], sq, Squeeze { unsqueeze: false }.groups(&sq));
            for (k, w) in steps[l].iter().enumerate() {
                let n = format!("L{l}/S{k}");
                eb.conv(format!("{n}/affine"), &w[0], batch, s.h, s.w, &b.state[cur], c, &b.state[1 - cur], c);
                cur = 1 - cur;
                Self::coupling_ops(&mut eb, &n, w, batch, s.h, s.w, c, width, &b.state[cur], b, affine, false);
            }
            let hbuf = match &priors[l] {
                Some(pw) => {
                    eb.conv(format!("L{l}/prior"), pw, batch, s.h, s.w, &b.state[cur], c, &b.h3, c);
                    b.h3.clone()
                }
                None => b.top.clone(),
            };
            let pp = prior_params(&fm, l, batch);
            let cz = pp.cz as usize;
            let prior = Prior { reverse: false };
            eb.push(format!("L{l}/prior_standardize"), prior, vec![b.state[cur].clone(), hbuf, b.eps.clone(), b.terms.clone()], pp, prior.groups(&pp));
            eb.push(format!("L{l}/prior_sum"), Reduce, vec![b.terms.clone(), b.acc.clone()], ReduceParams { n: (p * cz) as u32, ..Default::default() }, Reduce.groups(batch));
            prev = b.state[cur].clone();
            prev_stride = c;
            prev_c = c / 2;
            cur = 1 - cur;
        }
        let (mut encode_ops, _u1, kernels) = eb.finish(&call);
        let image_in_op = encode_ops.remove(0);

        // ---- decode ----
        let mut db = Builder { ctx: &ctx, cols: buffers.h2.clone(), kernels, params: Vec::new(), align, pending: Vec::new() };
        db.push("rng".into(), Rng, vec![b.eps.clone()], (), Rng.groups(batch * d));
        let mut cur = 0;
        for l in (0..nl).rev() {
            let lev = &fm.levels[l];
            let s = lev.shape;
            let c = s.c;
            let hbuf = match &priors[l] {
                None => b.top.clone(),
                Some(pw) => {
                    let sb = fm.levels[l + 1].shape;
                    let un = SqueezeParams {
                        count: (batch * sb.pixels() * sb.c) as u32,
                        h: sb.h as u32,
                        w: sb.w as u32,
                        c: (sb.c / 4) as u32,
                        stride: c as u32,
                        offset: 0,
                        ..Default::default()
                    };
                    db.push(format!("L{l}/unsqueeze"), Squeeze { unsqueeze: true }, vec![b.state[cur].clone(), b.state[1 - cur].clone()], un, Squeeze { unsqueeze: true }.groups(&un));
                    cur = 1 - cur;
                    db.conv(format!("L{l}/prior"), pw, batch, s.h, s.w, &b.state[cur], c, &b.h3, c);
                    b.h3.clone()
                }
            };
            let pp = prior_params(&fm, l, batch);
            let prior = Prior { reverse: true };
            db.push(format!("L{l}/prior_sample"), prior, vec![b.state[cur].clone(), hbuf, b.eps.clone(), b.terms.clone()], pp, prior.groups(&pp));
            for (k, w) in steps[l].iter().enumerate().rev() {
                let n = format!("L{l}/S{k}");
                Self::coupling_ops(&mut db, &n, w, batch, s.h, s.w, c, width, &b.state[cur], b, affine, true);
                db.conv(format!("{n}/affine_inv"), &w[1], batch, s.h, s.w, &b.state[cur], c, &b.state[1 - cur], c);
                cur = 1 - cur;
            }
        }
        let un = SqueezeParams {
            count: (batch * s0.pixels() * s0.c) as u32,
            h: s0.h as u32,
            w: s0.w as u32,
            c: c0 as u32,
            stride: c0 as u32,
            offset: 0,
            ..Default::default()
        };
        db.push("L0/unsqueeze_image".into(), Squeeze { unsqueeze: true }, vec![b.state[cur].clone(), b.x.clone()], un, Squeeze { unsqueeze: true }.groups(&un));
        db.push("image_out".into(), ImageOut, vec![b.x.clone(), b.image_out.clone()], img, image::groups(&img));
        let (mut decode_ops, _u2, _k) = db.finish(&call);
        let rng_op = decode_ops.remove(0);
        Ok(GpuEngine { ctx: ctx.clone(), weights, model: fm, batch, buffers, encode_ops, decode_ops, rng_op, image_in_op })
    }
}

impl GpuEngine {
    /// The coupling net f(z1) and the combine into z2, both directions.
    #[allow(clippy::too_many_arguments)]
    fn coupling_ops(bld: &mut Builder, name: &str, w: &[ConvBuffers; 5], batch: usize, h: usize, wd: usize, c: usize, width: usize, state: &wgpu::Buffer, b: &Buffers, affine: bool, reverse: bool) {
        bld.conv(format!("{name}/f1"), &w[2], batch, h, wd, state, c, &b.h1, width);
        bld.conv(format!("{name}/f2"), &w[3], batch, h, wd, &b.h1, width, &b.h2, width);
        let half = c / 2;
        if !affine {
            // Additive: z2 +-= NN(z1) fused into the last conv, which adds into (or
            // subtracts from) z2 in the state: no h3 round trip, one dispatch fewer.
            let combine = if reverse { Combine::Subtract } else { Combine::Add };
            bld.conv_into(format!("{name}/f3"), &w[4], batch, h, wd, &b.h2, width, state, c, half, combine);
            return;
        }
        let cf = w[4].layout.cout;
        bld.conv(format!("{name}/f3"), &w[4], batch, h, wd, &b.h2, width, &b.h3, cf);
        let count = batch * h * wd * half;
        let p = CouplingParams { count: count as u32, c: c as u32, half: half as u32, _pad0: 0 };
        let k = CouplingKernel { affine, reverse };
        bld.push(format!("{name}/coupling"), k, vec![state.clone(), b.h3.clone(), b.terms.clone()], p, k.groups(&p));
        if affine && !reverse {
            bld.push(format!("{name}/logdet_sum"), Reduce, vec![b.terms.clone(), b.acc.clone()], ReduceParams { n: (h * wd * half) as u32, ..Default::default() }, Reduce.groups(batch));
        }
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
    /// How the weights are stored, and how many bytes they take on the GPU.
    pub fn weights(&self) -> &WeightInfo {
        &self.weights
    }
    /// Number of dispatches in one encode and one decode of given latents (for
    /// benchmarks and tests).
    pub fn dispatch_counts(&self) -> (usize, usize) {
        (self.encode_ops.len() + 1, self.decode_ops.len())
    }

    fn write_call(&self, seed: u32, base: u32, temps: &[f32], quantize: bool) {
        let mut t = [0f32; 8];
        for (d, s) in t.iter_mut().zip(temps) {
            *d = *s;
        }
        let call = CallParams {
            seed,
            count: (self.batch * self.model.dim()) as u32,
            base,
            quantize: quantize as u32,
            temps: t,
        };
        self.ctx.queue.write_buffer(&self.buffers.call, 0, bytemuck::bytes_of(&call));
    }

    fn record(&self, ops: &[&Op], copies: &[(&wgpu::Buffer, u64, u64)], clear_acc: bool) -> wgpu::CommandBuffer {
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("glow") });
        if clear_acc {
            enc.clear_buffer(&self.buffers.acc, 0, None);
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("glow"), timestamp_writes: None });
            for op in ops {
                pass.set_pipeline(&op.pipeline);
                pass.set_bind_group(0, &op.storage, &[]);
                pass.set_bind_group(1, &op.uniforms, &[]);
                pass.dispatch_workgroups(op.groups.0, op.groups.1, op.groups.2);
            }
        }
        for (src, dst_off, size) in copies {
            enc.copy_buffer_to_buffer(src, 0, &self.buffers.staging, *dst_off, *size);
        }
        enc.finish()
    }

    /// Times every dispatch of an encode (`decode == false`) or a decode of random latents
    /// at temperature 0.7 with timestamp queries: one compute pass per dispatch, stamped at
    /// its start and end; each dispatch's best time over `passes` calls (a shared machine
    /// only ever slows a dispatch down). `None` when the adapter has no timestamp queries.
    pub async fn profile(&self, decode: bool, passes: usize) -> Result<Option<Vec<DispatchTime>>> {
        let mut best: Option<Vec<DispatchTime>> = None;
        for _ in 0..passes.max(1) {
            let Some(times) = self.profile_once(decode).await? else { return Ok(None) };
            best = Some(match best {
                None => times,
                Some(b) => b.into_iter().zip(times).map(|(b, t)| if t.ms < b.ms { t } else { b }).collect(),
            });
        }
        Ok(best)
    }

    async fn profile_once(&self, decode: bool) -> Result<Option<Vec<DispatchTime>>> {
        if !self.ctx.timestamps {
            return Ok(None);
        }
        let device = &self.ctx.device;
        let mut ops: Vec<&Op> = Vec::new();
        if decode {
            ops.push(&self.rng_op);
            ops.extend(self.decode_ops.iter());
            self.write_call(1, 0, &[0.7; 8], false);
        } else {
            ops.push(&self.image_in_op);
            ops.extend(self.encode_ops.iter());
            self.write_call(0, 0, &[1.0; 8], false);
        }
        let mut times = Vec::with_capacity(ops.len());
        // A query set holds at most 4096 queries: profile in chunks of 2048 dispatches.
        for chunk in ops.chunks(2048) {
            let n = 2 * chunk.len() as u32;
            let set = device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile"), ty: wgpu::QueryType::Timestamp, count: n });
            let size = 8 * n as u64;
            let resolve = device.create_buffer(&wgpu::BufferDescriptor { label: Some("profile/resolve"), size, usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC, mapped_at_creation: false });
            let read = device.create_buffer(&wgpu::BufferDescriptor { label: Some("profile/read"), size, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
            let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
            enc.clear_buffer(&self.buffers.acc, 0, None);
            for (i, op) in chunk.iter().enumerate() {
                let writes = wgpu::ComputePassTimestampWrites { query_set: &set, beginning_of_pass_write_index: Some(2 * i as u32), end_of_pass_write_index: Some(2 * i as u32 + 1) };
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(&op.label), timestamp_writes: Some(writes) });
                pass.set_pipeline(&op.pipeline);
                pass.set_bind_group(0, &op.storage, &[]);
                pass.set_bind_group(1, &op.uniforms, &[]);
                pass.dispatch_workgroups(op.groups.0, op.groups.1, op.groups.2);
            }
            enc.resolve_query_set(&set, 0..n, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &read, 0, size);
            self.ctx.queue.submit([enc.finish()]);
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.ctx.read_back(&read, size).await?);
            let period = self.ctx.queue.get_timestamp_period() as f64;
            for (op, t) in chunk.iter().zip(ticks.chunks_exact(2)) {
                let ms = t[1].saturating_sub(t[0]) as f64 * period * 1e-6;
                times.push(DispatchTime { label: op.label.clone(), kernel: op.kernel.clone(), ms, flop: op.flop });
            }
        }
        Ok(Some(times))
    }

    /// Encodes `n` images, given as RGBA8 (converted on the GPU) or as model values.
    async fn run_encode(&self, rgba: Option<&[u8]>, x: Option<&[f32]>, n: usize) -> Result<Encoded> {
        let hw = self.model.config.image.height as usize * self.model.config.image.width as usize;
        let d = self.model.dim();
        let mut eps = Vec::with_capacity(n * d);
        let mut logp_plus = Vec::with_capacity(n);
        for start in (0..n).step_by(self.batch) {
            let k = (n - start).min(self.batch);
            let mut ops: Vec<&Op> = Vec::new();
            if let Some(rgba) = rgba {
                let mut chunk = vec![0u8; self.batch * hw * 4];
                chunk[..k * hw * 4].copy_from_slice(&rgba[start * hw * 4..(start + k) * hw * 4]);
                self.ctx.queue.write_buffer(&self.buffers.image_in, 0, &chunk);
                ops.push(&self.image_in_op);
            } else if let Some(x) = x {
                let mut chunk = vec![0f32; self.batch * d];
                chunk[..k * d].copy_from_slice(&x[start * d..(start + k) * d]);
                self.ctx.queue.write_buffer(&self.buffers.x, 0, bytemuck::cast_slice(&chunk));
            }
            self.write_call(0, 0, &[1.0; 8], false);
            let eps_bytes = (k * d * 4) as u64;
            let acc_off = eps_bytes.div_ceil(256) * 256;
            ops.extend(self.encode_ops.iter());
            let cb = self.record(&ops, &[(&self.buffers.eps, 0, eps_bytes), (&self.buffers.acc, acc_off, (k * 4) as u64)], true);
            self.ctx.queue.submit([cb]);
            let bytes = self.ctx.read_back(&self.buffers.staging, acc_off + (k * 4) as u64).await?;
            eps.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[..eps_bytes as usize]));
            logp_plus.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[acc_off as usize..]).iter().map(|&v| v as f64));
        }
        // acc holds the prior log-density plus (affine) the data-dependent logdet. The
        // split between the two is not needed for bits/dim; report it as logp.
        let logdet = vec![self.model.logdet_const; n];
        Ok(finish(&self.model, logdet, logp_plus, eps))
    }

    async fn run_decode(&self, eps: Latents<'_>, n: usize, temps: &[f32], out: Output, quantize: bool) -> Result<Vec<u8>> {
        let cfg = &self.model.config;
        let d = self.model.dim();
        let hw = (cfg.image.height * cfg.image.width) as usize;
        let (eps, seed) = match eps {
            Latents::Given(e) => (Some(e), 0),
            Latents::Seeded(s) => (None, s),
        };
        let per_image = match out {
            Output::Rgba => hw * 4,
            Output::X => d * 4,
        };
        let mut result = Vec::with_capacity(n * per_image);
        for start in (0..n).step_by(self.batch) {
            let k = (n - start).min(self.batch);
            let mut ops: Vec<&Op> = Vec::new();
            match eps {
                Some(e) => {
                    let mut chunk = vec![0f32; self.batch * d];
                    chunk[..k * d].copy_from_slice(&e[start * d..(start + k) * d]);
                    self.ctx.queue.write_buffer(&self.buffers.eps, 0, bytemuck::cast_slice(&chunk));
                }
                None => ops.push(&self.rng_op),
            }
            self.write_call(seed, (start * d) as u32, temps, quantize);
            ops.extend(self.decode_ops.iter());
            let (src, size) = match out {
                Output::Rgba => (&self.buffers.image_out, (k * hw * 4) as u64),
                Output::X => (&self.buffers.x, (k * d * 4) as u64),
            };
            let cb = self.record(&ops, &[(src, 0, size)], false);
            self.ctx.queue.submit([cb]);
            result.extend(self.ctx.read_back(&self.buffers.staging, size).await?);
        }
        Ok(result)
    }

}

impl Engine for GpuEngine {
    fn backend(&self) -> Backend {
        Backend::Gpu
    }
    fn gpu(&self) -> Option<&GpuEngine> {
        Some(self)
    }
    fn device(&self) -> String {
        self.ctx.adapter_description()
    }
    fn encode_rgba<'a>(&'a self, rgba: &'a [u8], n: usize) -> Job<'a, Encoded> {
        Box::pin(self.run_encode(Some(rgba), None, n))
    }
    fn encode_x<'a>(&'a self, x: &'a [f32], n: usize) -> Job<'a, Encoded> {
        Box::pin(self.run_encode(None, Some(x), n))
    }
    fn decode_rgba<'a>(&'a self, eps: Latents<'a>, n: usize, temps: &'a [f32], quantize: bool) -> Job<'a, Vec<u8>> {
        Box::pin(self.run_decode(eps, n, temps, Output::Rgba, quantize))
    }
    fn decode_x<'a>(&'a self, eps: Latents<'a>, n: usize, temps: &'a [f32]) -> Job<'a, Vec<f32>> {
        Box::pin(async move {
            let bytes = self.run_decode(eps, n, temps, Output::X, false).await?;
            Ok(bytemuck::pod_collect_to_vec(&bytes))
        })
    }
}
