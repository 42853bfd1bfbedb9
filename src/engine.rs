//! The GPU engine: a static plan for one model at one batch size. Every pipeline,
//! buffer and bind group is made in `Glow::new`; a call only writes its inputs, records
//! one command buffer with one compute pass, and reads back once.

use crate::error::{GlowError, Result};
use crate::gpu::kernels::*;
use crate::gpu::GpuContext;
use crate::model::fold::Conv;
use crate::model::{Coupling, FoldedModel, Model};
use crate::reference::{self, Encoded};
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
    key: KernelKey,
    buffers: Vec<wgpu::Buffer>,
    params: (u64, u64),
    uses_call: bool,
    groups: (u32, u32, u32),
}

/// The folded weights of one conv on the GPU.
struct ConvBuffers {
    conv: Conv,
    variant: ConvVariant,
    /// `Some(cin)` for a 3x3 conv with few input channels that runs as an im2col of its
    /// input into the `cols` buffer (rows of `conv.cin` = ceil(9 cin / 4) * 4 values) and
    /// `conv`, a 1x1 conv over those rows (see shaders/im2col.wgsl).
    im2col: Option<usize>,
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

/// One dispatch's GPU time from timestamp queries (`Glow::profile`).
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

pub struct Glow {
    ctx: Arc<GpuContext>,
    model: FoldedModel,
    batch: usize,
    buffers: Buffers,
    encode_ops: Vec<Op>,
    decode_ops: Vec<Op>,
    rng_op: Op,
    /// Display output floors to n_bits levels when set (OpenAI's bit-exact images).
    pub quantize_output: bool,
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
    fn push<P: bytemuck::Pod>(&mut self, label: String, key: KernelKey, buffers: Vec<wgpu::Buffer>, p: P, uses_call: bool, groups: (u32, u32, u32)) {
        let off = self.params.len();
        let bytes = bytemuck::bytes_of(&p);
        self.params.extend_from_slice(bytes);
        let padded = self.params.len().div_ceil(self.align) * self.align;
        self.params.resize(padded, 0);
        self.pending.push(PendingOp { label, flop: 0.0, key, buffers, params: (off as u64, bytes.len() as u64), uses_call, groups });
    }

    fn conv(&mut self, label: String, cb: &ConvBuffers, batch: usize, h: usize, w: usize, input: &wgpu::Buffer, in_stride: usize, output: &wgpu::Buffer, out_stride: usize) {
        self.conv_into(label, cb, batch, h, w, input, in_stride, output, out_stride, 0, Combine::Store);
    }

    /// A conv writing (or adding / subtracting) its result at channel `out_offset` of pixels
    /// `out_stride` floats apart.
    #[allow(clippy::too_many_arguments)]
    fn conv_into(&mut self, label: String, cb: &ConvBuffers, batch: usize, h: usize, w: usize, input: &wgpu::Buffer, in_stride: usize, output: &wgpu::Buffer, out_stride: usize, out_offset: usize, combine: Combine) {
        let c = &cb.conv;
        let m = batch * h * w;
        let (mut input, mut in_stride) = (input.clone(), in_stride);
        if let Some(cin) = cb.im2col {
            let p = Conv2dParams {
                batch: batch as u32,
                h: h as u32,
                w: w as u32,
                cin: cin as u32,
                in_stride: in_stride as u32,
                out_stride: c.cin as u32,
                m: m as u32,
                ..Default::default()
            };
            let cols = self.cols.clone();
            self.push(format!("{label}/im2col"), KernelKey::Im2col3, vec![input, cols.clone()], p, false, elementwise_groups(m * c.cin));
            (input, in_stride) = (cols, c.cin);
        }
        let p = Conv2dParams {
            batch: batch as u32,
            h: h as u32,
            w: w as u32,
            cin: c.cin as u32,
            cout: c.cout as u32,
            in_stride: in_stride as u32,
            in_offset: 0,
            out_stride: out_stride as u32,
            out_offset: out_offset as u32,
            m: m as u32,
            _pad: [0; 2],
        };
        debug_assert_eq!(conv_variant(&p), cb.variant, "{label}: uploaded for another layout");
        let (key, groups) = conv_dispatch(cb.variant, c.ksize as u32, c.relu, c.edge.is_some(), combine, &p);
        let bufs = vec![input, cb.weight.clone(), cb.bias.clone(), cb.edge.clone(), output.clone()];
        self.push(label, key, bufs, p, false, groups);
        if let Some(op) = self.pending.last_mut() {
            // The conv's own multiply-adds (an im2col'd conv's padding rows not counted).
            let k = cb.im2col.map_or(c.ksize * c.ksize * c.cin, |cin| 9 * cin);
            op.flop = 2.0 * (m * k * c.cout) as f64;
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
            let k = self.kernels.get(device, p.key);
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
            // The rng kernel's only uniform is the call values.
            let mut u = if p.key == KernelKey::Rng { Vec::new() } else { vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &uniforms,
                    offset: p.params.0,
                    size: wgpu::BufferSize::new(p.params.1),
                }),
            }] };
            if p.uses_call {
                u.push(wgpu::BindGroupEntry { binding: u.len() as u32, resource: call.as_entire_binding() });
            }
            let ub = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("{}/uniforms", p.label)),
                layout: &k.uniform_layout,
                entries: &u,
            });
            ops.push(Op { label: p.label, kernel: p.key.label(), flop: p.flop, pipeline: k.pipeline.clone(), storage, uniforms: ub, groups: p.groups });
        }
        (ops, uniforms, self.kernels)
    }
}

/// The prior kernel's parameters for level `l`: the same geometry as the CPU
/// reference's (`reference::split_geometry`), so the two cannot drift apart.
fn prior_params(model: &FoldedModel, l: usize, batch: usize) -> PriorParams {
    let g = reference::split_geometry(model, l, batch);
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
        _pad: [0; 3],
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

impl Glow {
    /// Builds the static plan for `model` at `batch` images per dispatch.
    pub async fn new(ctx: Arc<GpuContext>, model: &Model, batch: usize) -> Result<Self> {
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
            return Err(GlowError::Gpu(format!(
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
        // Weights are laid out for the kernel variant that will read them, which depends
        // on the strides of the buffers the conv reads and writes.
        // `cols_ok`: the conv may use the h2 buffer as im2col scratch (it neither reads nor
        // writes h2); then a 3x3 conv whose input channels are not a multiple of 4 becomes
        // im2col + a 1x1 conv over ceil(9 cin / 4) * 4 channels (no masked vec4 lanes).
        let upload = |label: &str, c: &Conv, in_stride: usize, out_stride: usize, out_offset: usize, cols_ok: bool| {
            let kpad = (9 * c.cin).div_ceil(4) * 4;
            let (c, in_stride, im2col) = if cols_ok && c.ksize == 3 && c.cin % 4 != 0 && kpad <= width {
                let mut weight = c.weight.clone();
                weight.resize(kpad * c.cout, 0.0);
                (Conv { ksize: 1, cin: kpad, weight, ..c.clone() }, kpad, Some(c.cin))
            } else {
                (c.clone(), in_stride, None)
            };
            let c = &c;
            let shape = Conv2dParams {
                cin: c.cin as u32,
                cout: c.cout as u32,
                in_stride: in_stride as u32,
                out_stride: out_stride as u32,
                out_offset: out_offset as u32,
                ..Default::default()
            };
            let variant = conv_variant(&shape);
            let w = conv_weights(variant, c.ksize * c.ksize, c.cin, c.cout, &c.weight);
            ConvBuffers {
            conv: c.clone(),
            variant,
            im2col,
            weight: init(device, &format!("{label}.weight"), &w),
            bias: init(device, &format!("{label}.bias"), &c.bias),
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
                    upload(&format!("{p}/affine"), &s.forward, c, c, 0, false),
                    upload(&format!("{p}/affine_inv"), &s.inverse, c, c, 0, false),
                    upload(&format!("{p}/f1"), &s.f1, c, width, 0, true),
                    upload(&format!("{p}/f2"), &s.f2, width, width, 0, false),
                    // Additive: f3 adds into z2 of the state itself (coupling_ops).
                    if fm.config.coupling == Coupling::Affine { upload(&format!("{p}/f3"), &s.f3, width, s.f3.cout, 0, false) } else { upload(&format!("{p}/f3"), &s.f3, width, c, c / 2, false) },
                ]);
            }
            steps.push(v);
            priors.push(lev.prior.as_ref().map(|p| upload(&format!("L{l}/prior"), p, c, c, 0, true)));
        }

        let align = ctx.limits.min_uniform_buffer_offset_alignment as usize;
        let affine = cfg.coupling == Coupling::Affine;
        let c0 = cfg.image.channels as usize;
        let b = &buffers;
        let nl = fm.levels.len();

        // ---- encode ----
        let mut eb = Builder { ctx: &ctx, cols: buffers.h2.clone(), kernels: KernelCache::default(), params: Vec::new(), align, pending: Vec::new() };
        let img = ImageParams { pixels: (batch * hw) as u32, channels: c0 as u32, n_bits: cfg.n_bits, _pad: 0 };
        eb.push("image_in".into(), KernelKey::ImageIn, vec![b.image_in.clone(), b.x.clone()], img, false, elementwise_groups(batch * hw));
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
                _pad: [0; 2],
            };
            eb.push(format!("L{l}/squeeze"), KernelKey::Squeeze { unsqueeze: false }, vec![prev.clone(), dst], sq, false, elementwise_groups(batch * p * c));
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
            eb.push(format!("L{l}/prior_standardize"), KernelKey::Prior { reverse: false }, vec![b.state[cur].clone(), hbuf, b.eps.clone(), b.terms.clone()], pp, true, elementwise_groups(batch * p * cz));
            eb.push(format!("L{l}/prior_sum"), KernelKey::Reduce, vec![b.terms.clone(), b.acc.clone()], ReduceParams { n: (p * cz) as u32, _pad: [0; 3] }, false, (batch as u32, 1, 1));
            prev = b.state[cur].clone();
            prev_stride = c;
            prev_c = c / 2;
            cur = 1 - cur;
        }
        let (encode_ops, _u1, kernels) = eb.finish(&call);

        // ---- decode ----
        let mut db = Builder { ctx: &ctx, cols: buffers.h2.clone(), kernels, params: Vec::new(), align, pending: Vec::new() };
        db.push("rng".into(), KernelKey::Rng, vec![b.eps.clone()], ReduceParams::default(), true, elementwise_groups(batch * d));
        let mut cur = 0;
        for l in (0..nl).rev() {
            let lev = &fm.levels[l];
            let s = lev.shape;
            let (p, c) = (s.pixels(), s.c);
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
                        _pad: [0; 2],
                    };
                    db.push(format!("L{l}/unsqueeze"), KernelKey::Squeeze { unsqueeze: true }, vec![b.state[cur].clone(), b.state[1 - cur].clone()], un, false, elementwise_groups(batch * sb.pixels() * sb.c));
                    cur = 1 - cur;
                    db.conv(format!("L{l}/prior"), pw, batch, s.h, s.w, &b.state[cur], c, &b.h3, c);
                    b.h3.clone()
                }
            };
            let pp = prior_params(&fm, l, batch);
            let cz = pp.cz as usize;
            db.push(format!("L{l}/prior_sample"), KernelKey::Prior { reverse: true }, vec![b.state[cur].clone(), hbuf, b.eps.clone(), b.terms.clone()], pp, true, elementwise_groups(batch * p * cz));
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
            _pad: [0; 2],
        };
        db.push("L0/unsqueeze_image".into(), KernelKey::Squeeze { unsqueeze: true }, vec![b.state[cur].clone(), b.x.clone()], un, false, elementwise_groups(batch * s0.pixels() * s0.c));
        db.push("image_out".into(), KernelKey::ImageOut, vec![b.x.clone(), b.image_out.clone()], img, true, elementwise_groups(batch * hw));
        let (mut decode_ops, _u2, _k) = db.finish(&call);
        let rng_op = decode_ops.remove(0);
        Ok(Glow { ctx: ctx.clone(), model: fm, batch, buffers, encode_ops, decode_ops, rng_op, quantize_output: false })
    }
}

impl Glow {
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
        let cf = w[4].conv.cout;
        bld.conv(format!("{name}/f3"), &w[4], batch, h, wd, &b.h2, width, &b.h3, cf);
        let count = batch * h * wd * half;
        let p = CouplingParams { count: count as u32, c: c as u32, half: half as u32, _pad: 0 };
        bld.push(format!("{name}/coupling"), KernelKey::Coupling { affine, reverse }, vec![state.clone(), b.h3.clone(), b.terms.clone()], p, false, elementwise_groups(count));
        if affine && !reverse {
            bld.push(format!("{name}/logdet_sum"), KernelKey::Reduce, vec![b.terms.clone(), b.acc.clone()], ReduceParams { n: (h * wd * half) as u32, _pad: [0; 3] }, false, (batch as u32, 1, 1));
        }
    }

    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn model(&self) -> &FoldedModel {
        &self.model
    }
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
    pub fn adapter_info(&self) -> String {
        self.ctx.adapter_description()
    }
    /// Number of dispatches in one encode and one decode (for benchmarks and tests).
    pub fn dispatch_counts(&self) -> (usize, usize) {
        (self.encode_ops.len(), self.decode_ops.len())
    }

    fn write_call(&self, seed: u32, base: u32, temps: &[f32]) {
        let mut t = [0f32; 8];
        for (d, s) in t.iter_mut().zip(temps) {
            *d = *s;
        }
        let call = CallParams {
            seed,
            count: (self.batch * self.model.dim()) as u32,
            base,
            quantize: self.quantize_output as u32,
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
            self.write_call(1, 0, &[0.7; 8]);
        } else {
            ops.extend(self.encode_ops.iter());
            self.write_call(0, 0, &[1.0; 8]);
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

    fn check_n(&self, n: usize, what: &str) -> Result<()> {
        if n == 0 {
            return Err(GlowError::Input(format!("{what}: no images given")));
        }
        Ok(())
    }

    /// Encodes RGBA8 images (`n * H * W * 4` bytes) to eps and bits/dim.
    pub async fn encode(&self, rgba: &[u8], n: usize) -> Result<Encoded> {
        self.check_n(n, "encode")?;
        let hw = self.model.config.image.height as usize * self.model.config.image.width as usize;
        if rgba.len() != n * hw * 4 {
            return Err(GlowError::Image(format!(
                "expected {n} RGBA images of {}x{} ({} bytes), got {} bytes",
                self.model.config.image.width,
                self.model.config.image.height,
                n * hw * 4,
                rgba.len()
            )));
        }
        let d = self.model.dim();
        let mut eps = Vec::with_capacity(n * d);
        let mut logp_plus = Vec::with_capacity(n);
        for start in (0..n).step_by(self.batch) {
            let k = (n - start).min(self.batch);
            let mut chunk = vec![0u8; self.batch * hw * 4];
            chunk[..k * hw * 4].copy_from_slice(&rgba[start * hw * 4..(start + k) * hw * 4]);
            self.ctx.queue.write_buffer(&self.buffers.image_in, 0, &chunk);
            self.write_call(0, 0, &[1.0; 8]);
            let eps_bytes = (k * d * 4) as u64;
            let acc_off = eps_bytes.div_ceil(256) * 256;
            let ops: Vec<&Op> = self.encode_ops.iter().collect();
            let cb = self.record(&ops, &[(&self.buffers.eps, 0, eps_bytes), (&self.buffers.acc, acc_off, (k * 4) as u64)], true);
            self.ctx.queue.submit([cb]);
            let bytes = self.ctx.read_back(&self.buffers.staging, acc_off + (k * 4) as u64).await?;
            eps.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[..eps_bytes as usize]));
            logp_plus.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[acc_off as usize..]).iter().map(|&v| v as f64));
        }
        // acc holds the prior log-density plus (affine) the data-dependent logdet. The
        // split between the two is not needed for bits/dim; report it as logp.
        let logdet = vec![self.model.logdet_const; n];
        Ok(reference::finish(&self.model, logdet, logp_plus, eps))
    }

    async fn run_decode(&self, eps: Option<&[f32]>, seed: u32, n: usize, temps: &[f32], out: Output) -> Result<Vec<u8>> {
        self.check_n(n, "decode")?;
        let cfg = &self.model.config;
        let d = self.model.dim();
        let hw = (cfg.image.height * cfg.image.width) as usize;
        if temps.len() != cfg.levels as usize {
            return Err(GlowError::Input(format!("{} temperatures for {} levels", temps.len(), cfg.levels)));
        }
        if let Some(e) = eps {
            if e.len() != n * d {
                return Err(GlowError::Input(format!("eps has {} values, expected {n} x {d}", e.len())));
            }
            if let Some(i) = e.iter().position(|v| !v.is_finite()) {
                return Err(GlowError::Input(format!("eps value at index {i} is not finite")));
            }
        }
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
            self.write_call(seed, (start * d) as u32, temps);
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

    /// Decodes eps (`n * dim` values) at per-level temperatures to RGBA8 images.
    pub async fn decode(&self, eps: &[f32], n: usize, temps: &[f32]) -> Result<Vec<u8>> {
        self.run_decode(Some(eps), 0, n, temps, Output::Rgba).await
    }

    /// Decodes to the model's continuous output values (`n * H * W * channels`).
    pub async fn decode_x(&self, eps: &[f32], n: usize, temps: &[f32]) -> Result<Vec<f32>> {
        let bytes = self.run_decode(Some(eps), 0, n, temps, Output::X).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Samples `n` images: eps drawn on the GPU from `seed`, then decoded.
    pub async fn sample(&self, n: usize, temps: &[f32], seed: u32) -> Result<Vec<u8>> {
        self.run_decode(None, seed, n, temps, Output::Rgba).await
    }

    pub async fn sample_x(&self, n: usize, temps: &[f32], seed: u32) -> Result<Vec<f32>> {
        let bytes = self.run_decode(None, seed, n, temps, Output::X).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}
