//! The WGSL kernels: one file each in `shaders/`, specialised by a generated const
//! header, compiled once per `KernelKey` and cached. Knows nothing of Glow beyond the
//! kernels' own parameter structs.

use bytemuck::{Pod, Zeroable};
use std::collections::HashMap;

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const CONV_COMMON: &str = include_str!("../../shaders/conv_common.wgsl");
const CONV_STORE: &str = include_str!("../../shaders/conv_store.wgsl");

/// Everything that changes a kernel's code (never shapes: those are uniforms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelKey {
    Conv2d { ksize: u32, relu: bool, edge: bool, combine: Combine },
    /// conv2d for output channels, strides and offsets that are multiples of 4.
    Conv2dVec4 { ksize: u32, relu: bool, edge: bool, combine: Combine },
    /// conv2d for few output channels, vec4 along the inner dimension.
    Conv2dSkinny { ksize: u32, relu: bool, edge: bool, combine: Combine },
    /// im2col of a 3x3 conv's input, for the 1x1 conv that replaces a 3x3 conv with few
    /// input channels.
    Im2col3,
    Coupling { affine: bool, reverse: bool },
    Squeeze { unsqueeze: bool },
    Prior { reverse: bool },
    Reduce,
    ImageIn,
    ImageOut,
    Rng,
}

/// What a conv does with its result: store it, or add it to / subtract it from what the
/// output buffer holds. Add and Subtract fuse the additive coupling's combine
/// (z2 +- NN(z1)) into the coupling net's last conv, which then writes into the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Combine {
    Store,
    Add,
    Subtract,
}

impl Combine {
    fn sign(self) -> i32 {
        match self {
            Combine::Store => 0,
            Combine::Add => 1,
            Combine::Subtract => -1,
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Combine::Store => "",
            Combine::Add => "|add",
            Combine::Subtract => "|sub",
        }
    }
}

/// How a binding is used: a read-only or read-write storage buffer, or a uniform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
    Uniform,
}

impl KernelKey {
    pub fn file(&self) -> &'static str {
        match self {
            KernelKey::Conv2d { .. } => include_str!("../../shaders/conv2d.wgsl"),
            KernelKey::Conv2dVec4 { .. } => include_str!("../../shaders/conv2d_vec4.wgsl"),
            KernelKey::Conv2dSkinny { .. } => include_str!("../../shaders/conv2d_skinny.wgsl"),
            KernelKey::Im2col3 => include_str!("../../shaders/im2col.wgsl"),
            KernelKey::Coupling { .. } => include_str!("../../shaders/coupling.wgsl"),
            KernelKey::Squeeze { .. } => include_str!("../../shaders/squeeze.wgsl"),
            KernelKey::Prior { .. } => include_str!("../../shaders/prior.wgsl"),
            KernelKey::Reduce => include_str!("../../shaders/reduce.wgsl"),
            KernelKey::ImageIn => include_str!("../../shaders/image_in.wgsl"),
            KernelKey::ImageOut => include_str!("../../shaders/image_out.wgsl"),
            KernelKey::Rng => include_str!("../../shaders/rng.wgsl"),
        }
    }

    /// The generated const lines that specialise the kernel.
    pub fn header(&self) -> String {
        match *self {
            KernelKey::Conv2d { ksize, relu, edge, combine }
            | KernelKey::Conv2dVec4 { ksize, relu, edge, combine }
            | KernelKey::Conv2dSkinny { ksize, relu, edge, combine } => format!(
                "const KSIZE: u32 = {ksize}u;\nconst RELU: bool = {relu};\nconst EDGE: bool = {edge};\nconst COMBINE: i32 = {};\n",
                combine.sign()
            ),
            KernelKey::Coupling { affine, reverse } => {
                format!("const AFFINE: bool = {affine};\nconst REVERSE: bool = {reverse};\n")
            }
            KernelKey::Squeeze { unsqueeze } => format!("const UNSQUEEZE: bool = {unsqueeze};\n"),
            KernelKey::Prior { reverse } => format!("const REVERSE: bool = {reverse};\n"),
            _ => String::new(),
        }
    }

    /// The full WGSL source: const header, common helpers (and the conv kernels' shared
    /// part), kernel file.
    pub fn source(&self) -> String {
        let conv = match self {
            KernelKey::Conv2d { .. } | KernelKey::Conv2dSkinny { .. } => format!("{CONV_COMMON}\n{CONV_STORE}"),
            KernelKey::Conv2dVec4 { .. } | KernelKey::Im2col3 => CONV_COMMON.to_string(),
            _ => String::new(),
        };
        format!("// {}\n{}{}\n{}\n{}", self.label(), self.header(), COMMON, conv, self.file())
    }

    /// Group 0 bindings (storage) then group 1 bindings (uniforms), in binding order.
    pub fn bindings(&self) -> (&'static [Access], &'static [Access]) {
        use Access::*;
        match self {
            KernelKey::Conv2d { .. } | KernelKey::Conv2dVec4 { .. } | KernelKey::Conv2dSkinny { .. } => (&[Read, Read, Read, Read, ReadWrite], &[Uniform]),
            KernelKey::Im2col3 => (&[Read, ReadWrite], &[Uniform]),
            KernelKey::Coupling { .. } => (&[ReadWrite, Read, ReadWrite], &[Uniform]),
            KernelKey::Squeeze { .. } => (&[Read, ReadWrite], &[Uniform]),
            KernelKey::Prior { .. } => (&[ReadWrite, Read, ReadWrite, ReadWrite], &[Uniform, Uniform]),
            KernelKey::Reduce => (&[Read, ReadWrite], &[Uniform]),
            KernelKey::ImageIn => (&[Read, ReadWrite], &[Uniform]),
            KernelKey::ImageOut => (&[Read, ReadWrite], &[Uniform, Uniform]),
            KernelKey::Rng => (&[ReadWrite], &[Uniform]),
        }
    }

    /// `conv2d|k3|relu|edge`, used in labels and error messages.
    pub fn label(&self) -> String {
        match *self {
            KernelKey::Conv2dSkinny { ksize, relu, edge, combine } => {
                format!("conv2d_skinny|k{ksize}{}{}{}", if relu { "|relu" } else { "" }, if edge { "|edge" } else { "" }, combine.suffix())
            }
            KernelKey::Conv2dVec4 { ksize, relu, edge, combine } => {
                format!("conv2d_vec4|k{ksize}{}{}{}", if relu { "|relu" } else { "" }, if edge { "|edge" } else { "" }, combine.suffix())
            }
            KernelKey::Conv2d { ksize, relu, edge, combine } => {
                format!("conv2d|k{ksize}{}{}{}", if relu { "|relu" } else { "" }, if edge { "|edge" } else { "" }, combine.suffix())
            }
            KernelKey::Coupling { affine, reverse } => format!(
                "coupling|{}|{}",
                if affine { "affine" } else { "additive" },
                if reverse { "reverse" } else { "forward" }
            ),
            KernelKey::Squeeze { unsqueeze } => if unsqueeze { "unsqueeze" } else { "squeeze" }.into(),
            KernelKey::Prior { reverse } => if reverse { "prior|sample" } else { "prior|standardize" }.into(),
            KernelKey::Im2col3 => "im2col3x3".into(),
            KernelKey::Reduce => "reduce".into(),
            KernelKey::ImageIn => "image_in".into(),
            KernelKey::ImageOut => "image_out".into(),
            KernelKey::Rng => "rng".into(),
        }
    }

    pub fn all_variants() -> Vec<KernelKey> {
        let mut v = Vec::new();
        for ksize in [1, 3] {
            for relu in [false, true] {
                for edge in [false, true] {
                    for combine in [Combine::Store, Combine::Add, Combine::Subtract] {
                        v.push(KernelKey::Conv2d { ksize, relu, edge, combine });
                        v.push(KernelKey::Conv2dVec4 { ksize, relu, edge, combine });
                        v.push(KernelKey::Conv2dSkinny { ksize, relu, edge, combine });
                    }
                }
            }
        }
        v.push(KernelKey::Im2col3);
        for affine in [false, true] {
            for reverse in [false, true] {
                v.push(KernelKey::Coupling { affine, reverse });
            }
        }
        for b in [false, true] {
            v.push(KernelKey::Squeeze { unsqueeze: b });
            v.push(KernelKey::Prior { reverse: b });
        }
        v.extend([KernelKey::Reduce, KernelKey::ImageIn, KernelKey::ImageOut, KernelKey::Rng]);
        v
    }
}

/// A compiled kernel with its explicit bind group layouts.
pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub storage_layout: wgpu::BindGroupLayout,
    pub uniform_layout: wgpu::BindGroupLayout,
}

/// Pipelines deduplicated by key.
#[derive(Default)]
pub struct KernelCache {
    kernels: HashMap<KernelKey, Kernel>,
}

fn layout(device: &wgpu::Device, label: &str, access: &[Access]) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = access
        .iter()
        .enumerate()
        .map(|(i, a)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match a {
                Access::Uniform => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                _ => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: *a == Access::Read },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries })
}

impl KernelCache {
    pub fn get(&mut self, device: &wgpu::Device, key: KernelKey) -> &Kernel {
        self.kernels.entry(key).or_insert_with(|| {
            let label = key.label();
            let source = key.source();
            #[cfg(not(target_arch = "wasm32"))]
            if std::env::var_os("GLOW_DUMP_WGSL").is_some() {
                eprintln!("==== {label}\n{source}");
            }
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let (storage, uniforms) = key.bindings();
            let storage_layout = layout(device, &format!("{label}/storage"), storage);
            let uniform_layout = layout(device, &format!("{label}/uniforms"), uniforms);
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(&storage_layout), Some(&uniform_layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(&pl),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            Kernel { pipeline, storage_layout, uniform_layout }
        })
    }

    pub fn len(&self) -> usize {
        self.kernels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.kernels.is_empty()
    }
}

// Uniform structs: the single source of truth for each kernel's `Params` layout. A test
// (tests/wgsl.rs) parses every shader with naga and checks sizes and member offsets.

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, Default)]
pub struct Conv2dParams {
    pub batch: u32,
    pub h: u32,
    pub w: u32,
    pub cin: u32,
    pub cout: u32,
    pub in_stride: u32,
    pub in_offset: u32,
    pub out_stride: u32,
    pub out_offset: u32,
    pub m: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, Default)]
pub struct CouplingParams {
    pub count: u32,
    pub c: u32,
    pub half: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, Default)]
pub struct SqueezeParams {
    pub count: u32,
    pub h: u32,
    pub w: u32,
    pub c: u32,
    pub stride: u32,
    pub offset: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, Default)]
pub struct PriorParams {
    pub count: u32,
    pub pixels: u32,
    pub cz: u32,
    pub z_stride: u32,
    pub z_offset: u32,
    pub h_image_stride: u32,
    pub eps_offset: u32,
    pub eps_image_stride: u32,
    pub level: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, Default)]
pub struct ReduceParams {
    pub n: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, Default)]
pub struct ImageParams {
    pub pixels: u32,
    pub channels: u32,
    pub n_bits: u32,
    pub _pad: u32,
}

/// Per-call values (seed, count, temperatures); `Call` in common.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, Default)]
pub struct CallParams {
    pub seed: u32,
    pub count: u32,
    pub base: u32,
    pub quantize: u32,
    pub temps: [f32; 8],
}

const _: () = assert!(std::mem::size_of::<Conv2dParams>() == 48);
const _: () = assert!(std::mem::size_of::<PriorParams>() == 48);
const _: () = assert!(std::mem::size_of::<CallParams>() == 48);

/// Which conv kernel runs a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvVariant {
    /// Scalar loads everywhere: any shape.
    Scalar,
    /// vec4 inputs, weights and outputs: cout, strides and offsets multiples of 4.
    Vec4,
    /// vec4 along the inner dimension, transposed weights: any cout.
    Skinny,
}

/// Picks the conv kernel for a shape. vec4 input reads need the input stride and offset
/// to be multiples of 4 and room for ceil(cin/4)*4 channels in each pixel (the extra
/// lanes are masked). `GLOW_CONV=scalar|vec4|skinny` forces a variant where it fits.
pub fn conv_variant(p: &Conv2dParams) -> ConvVariant {
    let cin4 = p.cin.div_ceil(4) * 4;
    let vec_in = p.in_stride % 4 == 0 && p.in_offset % 4 == 0 && p.in_offset + cin4 <= p.in_stride;
    let vec_out = p.cout % 4 == 0 && p.out_stride % 4 == 0 && p.out_offset % 4 == 0;
    let forced = std::env::var("GLOW_CONV").ok();
    match forced.as_deref() {
        Some("scalar") => return ConvVariant::Scalar,
        Some("skinny") if vec_in => return ConvVariant::Skinny,
        _ => {}
    }
    if !vec_in {
        ConvVariant::Scalar
    } else if vec_out {
        ConvVariant::Vec4
    } else {
        ConvVariant::Skinny
    }
}

/// The kernel key and workgroup counts for a conv of a given variant.
pub fn conv_dispatch(variant: ConvVariant, ksize: u32, relu: bool, edge: bool, combine: Combine, p: &Conv2dParams) -> (KernelKey, (u32, u32, u32)) {
    let rows = p.m.div_ceil(32);
    match variant {
        ConvVariant::Scalar => (KernelKey::Conv2d { ksize, relu, edge, combine }, (p.cout.div_ceil(32), rows, 1)),
        // One thread per 4 pixels x 8 output channels (vec4) or 8 pixels x 4 (skinny), tiled by conv_tile.
        ConvVariant::Vec4 => (KernelKey::Conv2dVec4 { ksize, relu, edge, combine }, conv_tile_groups((p.cout / 4).div_ceil(2), p.m.div_ceil(4))),
        ConvVariant::Skinny => (KernelKey::Conv2dSkinny { ksize, relu, edge, combine }, conv_tile_groups(p.cout.div_ceil(4), p.m.div_ceil(8))),
    }
}

/// The conv kernel the engine uses for a shape (storing its result), and its workgroup counts.
pub fn conv_kernel(ksize: u32, relu: bool, edge: bool, p: &Conv2dParams) -> (KernelKey, (u32, u32, u32)) {
    conv_dispatch(conv_variant(p), ksize, relu, edge, Combine::Store, p)
}

/// Lays out a `[taps * cin, cout]` weight matrix the way a variant reads it: as is
/// (scalar), with ceil(cin/4)*4 zero-padded rows per tap (vec4), or transposed to
/// `[cout][taps][ceil(cin/4)*4]` (skinny).
pub fn conv_weights(variant: ConvVariant, taps: usize, cin: usize, cout: usize, w: &[f32]) -> Vec<f32> {
    let cin4 = cin.div_ceil(4) * 4;
    match variant {
        ConvVariant::Scalar => w.to_vec(),
        ConvVariant::Vec4 => {
            let mut out = vec![0f32; taps * cin4 * cout];
            for t in 0..taps {
                for ci in 0..cin {
                    out[(t * cin4 + ci) * cout..][..cout].copy_from_slice(&w[(t * cin + ci) * cout..][..cout]);
                }
            }
            out
        }
        ConvVariant::Skinny => {
            let mut out = vec![0f32; cout * taps * cin4];
            for co in 0..cout {
                for t in 0..taps {
                    for ci in 0..cin {
                        out[(co * taps + t) * cin4 + ci] = w[(t * cin + ci) * cout + co];
                    }
                }
            }
            out
        }
    }
}

/// Workgroup counts for an elementwise kernel of 256 threads over `n` values, on a 2D
/// grid so that large counts stay under the 65535-per-dimension limit.
pub fn elementwise_groups(n: usize) -> (u32, u32, u32) {
    groups_1d(n as u32, 256)
}

/// Workgroups of 64 threads for `blocks` channel blocks x `pixel_blocks` pixel blocks,
/// as `conv_tile` in conv_common.wgsl lays them out.
fn conv_tile_groups(blocks: u32, pixel_blocks: u32) -> (u32, u32, u32) {
    let tx = blocks.clamp(1, 8);
    let ty = 64 / tx;
    groups_1d(blocks.div_ceil(tx) * pixel_blocks.div_ceil(ty), 1)
}

/// Workgroups for `threads` threads in 1-D workgroups of `size`, on a 2-D grid when there
/// are more than 65535 workgroups (the kernels number threads `x + y * nwg.x * size`).
fn groups_1d(threads: u32, size: u32) -> (u32, u32, u32) {
    let groups = threads.div_ceil(size).max(1);
    let x = groups.min(65535);
    (x, groups.div_ceil(x), 1)
}
