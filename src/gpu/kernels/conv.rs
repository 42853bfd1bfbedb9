//! The conv kernels (conv2d.wgsl, conv2d_vec4.wgsl, conv2d_skinny.wgsl, sharing
//! conv_common.wgsl and conv_store.wgsl): 1x1 and 3x3 convs as implicit GEMM with fused
//! bias, edge-bias table, relu and additive coupling. `ConvLayout::new` is the one place
//! that decides a conv's variant, whether it runs through im2col, and its weight layout,
//! for the engine, the kernel benchmarks and the tests alike.

use super::{im2col::Im2col, params_of, read, uniform_struct, write, Binding, Kernel};

const CONV_COMMON: &str = include_str!("conv_common.wgsl");
const CONV_STORE: &str = include_str!("conv_store.wgsl");

/// How a conv's weights are stored on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WeightFormat {
    /// The folded weights as f32.
    #[default]
    F32,
    /// f16 values, two per u32 (read with WGSL's core `unpack2x16float`, no feature
    /// needed), with the per-output-channel factor divided out (`Conv::f16_split`) and
    /// stored as f32 after the bias: half the memory and bandwidth, arithmetic still f32.
    F16,
}

impl WeightFormat {
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
        }
    }
    fn code(self) -> &'static str {
        match self {
            WeightFormat::F32 => include_str!("conv_weights_f32.wgsl"),
            WeightFormat::F16 => include_str!("conv_weights_f16.wgsl"),
        }
    }
}

/// The bytes of a weight buffer in `format` (values already laid out by `weights`; for
/// F16 each must be an f16 value, as `Conv::f16_split` gives them, so the conversion is
/// exact), padded to whole 16 bytes: every variant reads weights as 4-value groups.
pub fn weight_bytes(format: WeightFormat, w: &[f32]) -> Vec<u8> {
    let mut out: Vec<u8> = match format {
        WeightFormat::F32 => bytemuck::cast_slice(w).to_vec(),
        WeightFormat::F16 => w.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
    };
    out.resize(out.len().max(16).div_ceil(16) * 16, 0);
    out
}

uniform_struct! {
    /// Shapes of one conv call (also used by im2col).
    pub struct Conv2dParams as "Conv2dParams" {
        pub batch: u32 => "u32",
        pub h: u32 => "u32",
        pub w: u32 => "u32",
        pub cin: u32 => "u32",
        pub cout: u32 => "u32",
        /// Floats between two pixels of the input, and the first input channel.
        pub in_stride: u32 => "u32",
        pub in_offset: u32 => "u32",
        /// Floats between two pixels of the output, and the first output channel.
        pub out_stride: u32 => "u32",
        pub out_offset: u32 => "u32",
        /// Output pixels: batch * h * w.
        pub m: u32 => "u32",
        pub _pad0: u32 => "u32",
        pub _pad1: u32 => "u32",
    }
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

/// Which conv kernel runs a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvVariant {
    /// Scalar loads everywhere: any shape.
    Scalar,
    /// vec4 inputs, weights and outputs: cout, strides and offsets multiples of 4.
    Vec4,
    /// vec4 along the inner dimension, transposed weights: any cout.
    Skinny,
}

/// One conv kernel variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvKernel {
    pub variant: ConvVariant,
    pub ksize: u32,
    pub relu: bool,
    pub edge: bool,
    pub combine: Combine,
    /// F16: weights as f16 pairs, and `bias` holds `[bias; cout]` then the per-output-channel
    /// factor `[scale; cout]` that the epilogue multiplies the sum by before adding the bias.
    pub format: WeightFormat,
}

// Weights bind as groups of 4 in every variant: vec4<f32>, or 4 f16 in a vec2<u32>.
const W32: &str = "array<vec4<f32>>";
const W16: &str = "array<vec2<u32>>";
const fn scalar(w: &'static str) -> [Binding; 5] {
    [read("input", "array<f32>"), read("weight", w), read("bias", "array<f32>"), read("edge", "array<f32>"), write("output", "array<f32>")]
}
const fn vec4(w: &'static str) -> [Binding; 5] {
    [read("input", "array<vec4<f32>>"), read("weight", w), read("bias", "array<vec4<f32>>"), read("edge", "array<vec4<f32>>"), write("output", "array<vec4<f32>>")]
}
const fn skinny(w: &'static str) -> [Binding; 5] {
    [read("input", "array<vec4<f32>>"), read("weight", w), read("bias", "array<f32>"), read("edge", "array<f32>"), write("output", "array<f32>")]
}
const SCALAR_F32: [Binding; 5] = scalar(W32);
const SCALAR_F16: [Binding; 5] = scalar(W16);
const VEC4_F32: [Binding; 5] = vec4(W32);
const VEC4_F16: [Binding; 5] = vec4(W16);
const SKINNY_F32: [Binding; 5] = skinny(W32);
const SKINNY_F16: [Binding; 5] = skinny(W16);

impl Kernel for ConvKernel {
    fn label(&self) -> String {
        let name = match self.variant {
            ConvVariant::Scalar => "conv2d",
            ConvVariant::Vec4 => "conv2d_vec4",
            ConvVariant::Skinny => "conv2d_skinny",
        };
        let f16 = if self.format == WeightFormat::F16 { "|f16" } else { "" };
        format!("{name}|k{}{}{}{}{f16}", self.ksize, if self.relu { "|relu" } else { "" }, if self.edge { "|edge" } else { "" }, self.combine.suffix())
    }
    fn consts(&self) -> String {
        format!(
            "const KSIZE: u32 = {}u;\nconst RELU: bool = {};\nconst EDGE: bool = {};\nconst COMBINE: i32 = {};\nconst SCALED: bool = {};\n",
            self.ksize,
            self.relu,
            self.edge,
            self.combine.sign(),
            self.format == WeightFormat::F16
        )
    }
    fn code(&self) -> String {
        let w = self.format.code();
        match self.variant {
            ConvVariant::Scalar => format!("{CONV_COMMON}\n{w}\n{CONV_STORE}\n{}", include_str!("conv2d.wgsl")),
            ConvVariant::Vec4 => format!("{CONV_COMMON}\n{w}\n{}", include_str!("conv2d_vec4.wgsl")),
            ConvVariant::Skinny => format!("{CONV_COMMON}\n{w}\n{CONV_STORE}\n{}", include_str!("conv2d_skinny.wgsl")),
        }
    }
    fn storage(&self) -> &'static [Binding] {
        match (self.variant, self.format) {
            (ConvVariant::Scalar, WeightFormat::F32) => &SCALAR_F32,
            (ConvVariant::Scalar, WeightFormat::F16) => &SCALAR_F16,
            (ConvVariant::Vec4, WeightFormat::F32) => &VEC4_F32,
            (ConvVariant::Vec4, WeightFormat::F16) => &VEC4_F16,
            (ConvVariant::Skinny, WeightFormat::F32) => &SKINNY_F32,
            (ConvVariant::Skinny, WeightFormat::F16) => &SKINNY_F16,
        }
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        params_of::<Conv2dParams>()
    }
}

impl ConvKernel {
    /// Workgroup counts for a call with these shapes.
    pub fn groups(&self, p: &Conv2dParams) -> (u32, u32, u32) {
        match self.variant {
            ConvVariant::Scalar => (p.cout.div_ceil(32), p.m.div_ceil(32), 1),
            // One thread per 4 pixels x 8 output channels (vec4) or 8 pixels x 3 (skinny),
            // tiled by conv_tile.
            ConvVariant::Vec4 => conv_tile_groups((p.cout / 4).div_ceil(2), p.m.div_ceil(4)),
            ConvVariant::Skinny => conv_tile_groups(p.cout.div_ceil(3), p.m.div_ceil(8)),
        }
    }

    /// Every variant, for the tests.
    pub fn all() -> Vec<ConvKernel> {
        let mut v = Vec::new();
        for variant in [ConvVariant::Scalar, ConvVariant::Vec4, ConvVariant::Skinny] {
            for ksize in [1, 3] {
                for relu in [false, true] {
                    for edge in [false, true] {
                        for combine in [Combine::Store, Combine::Add, Combine::Subtract] {
                            for format in [WeightFormat::F32, WeightFormat::F16] {
                                v.push(ConvKernel { variant, ksize, relu, edge, combine, format });
                            }
                        }
                    }
                }
            }
        }
        v
    }
}

/// Workgroups of 64 threads for `blocks` channel blocks x `pixel_blocks` pixel blocks,
/// as `conv_tile` in conv_common.wgsl lays them out.
fn conv_tile_groups(blocks: u32, pixel_blocks: u32) -> (u32, u32, u32) {
    let tx = blocks.clamp(1, 8);
    let ty = 64 / tx;
    super::groups_1d(blocks.div_ceil(tx) * pixel_blocks.div_ceil(ty), 1)
}

/// Picks the conv kernel for a shape. vec4 input reads need the input stride and offset
/// to be multiples of 4 and room for ceil(cin/4)*4 channels in each pixel (the extra
/// lanes are masked). `GLOW_CONV=scalar|skinny` forces a variant where it fits (for
/// benchmarks and tests).
pub fn variant(p: &Conv2dParams) -> ConvVariant {
    let cin4 = p.cin.div_ceil(4) * 4;
    let vec_in = p.in_stride.is_multiple_of(4) && p.in_offset.is_multiple_of(4) && p.in_offset + cin4 <= p.in_stride;
    let vec_out = p.cout.is_multiple_of(4) && p.out_stride.is_multiple_of(4) && p.out_offset.is_multiple_of(4);
    #[cfg(not(target_arch = "wasm32"))]
    match std::env::var("GLOW_CONV").ok().as_deref() {
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

/// Lays out a `[taps * cin, cout]` weight matrix the way a variant reads it: as is
/// (scalar), with ceil(cin/4)*4 zero-padded rows per tap (vec4), or transposed to
/// `[cout][taps][ceil(cin/4)*4]` (skinny).
pub fn weights(variant: ConvVariant, taps: usize, cin: usize, cout: usize, w: &[f32]) -> Vec<f32> {
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

/// How one conv of a model runs: the one decision shared by the engine, the kernel
/// benchmarks and the tests.
#[derive(Debug, Clone)]
pub struct ConvLayout {
    /// The kernel's ksize and input channels as it runs (1 and the padded row length when
    /// the conv goes through im2col).
    pub ksize: u32,
    pub cin: usize,
    pub cout: usize,
    /// `Some(cin)`: a 3x3 conv with few input channels runs as an im2col of its input into
    /// rows of `self.cin` = ceil(9 cin / 4) * 4 values, then a 1x1 conv over those rows
    /// (no masked vec4 lanes; see im2col.wgsl).
    pub im2col: Option<usize>,
    pub variant: ConvVariant,
    /// How the weights are stored (`weight_bytes`).
    pub format: WeightFormat,
    /// The weights laid out for `variant` (for F16: f16 values with the factor divided
    /// out, `Conv::f16_split`).
    pub weights: Vec<f32>,
}

impl ConvLayout {
    /// Decides the layout of a `ksize` x `ksize` conv with `[taps * cin, cout]` weights
    /// that reads pixels `in_stride` floats apart and writes channel `out_offset` of pixels
    /// `out_stride` apart. `scratch` is the longest im2col row a scratch buffer can hold
    /// (`None`: no scratch buffer free for this conv). `weight` is in `format`: the folded
    /// weights for F32, `Conv::f16_split`'s for F16 (whose factor then goes after the bias).
    #[allow(clippy::too_many_arguments)]
    pub fn new(ksize: u32, cin: usize, cout: usize, weight: &[f32], format: WeightFormat, in_stride: usize, out_stride: usize, out_offset: usize, scratch: Option<usize>) -> ConvLayout {
        let kpad = (9 * cin).div_ceil(4) * 4;
        let (ksize, cin, weight, in_stride, im2col) = match scratch {
            Some(room) if ksize == 3 && !cin.is_multiple_of(4) && kpad <= room => {
                let mut w = weight.to_vec();
                w.resize(kpad * cout, 0.0);
                (1, kpad, w, kpad, Some(cin))
            }
            _ => (ksize, cin, weight.to_vec(), in_stride, None),
        };
        let shape = Conv2dParams { cin: cin as u32, cout: cout as u32, in_stride: in_stride as u32, out_stride: out_stride as u32, out_offset: out_offset as u32, ..Default::default() };
        let variant = variant(&shape);
        let weights = weights(variant, (ksize * ksize) as usize, cin, cout, &weight);
        ConvLayout { ksize, cin, cout, im2col, variant, format, weights }
    }

    /// The weight buffer's contents.
    pub fn weight_bytes(&self) -> Vec<u8> {
        weight_bytes(self.format, &self.weights)
    }

    /// The kernel that runs the conv (after im2col, when there is one).
    pub fn kernel(&self, relu: bool, edge: bool, combine: Combine) -> ConvKernel {
        ConvKernel { variant: self.variant, ksize: self.ksize, relu, edge, combine, format: self.format }
    }

    /// The im2col step's kernel and parameters for a call (`input` read at `in_stride`),
    /// and the conv's own parameters.
    pub fn params(&self, batch: usize, h: usize, w: usize, in_stride: usize, out_stride: usize, out_offset: usize) -> (Option<(Im2col, Conv2dParams)>, Conv2dParams) {
        let m = batch * h * w;
        let base = Conv2dParams { batch: batch as u32, h: h as u32, w: w as u32, m: m as u32, ..Default::default() };
        let pre = self.im2col.map(|cin| (Im2col, Conv2dParams { cin: cin as u32, in_stride: in_stride as u32, out_stride: self.cin as u32, ..base }));
        let in_stride = if self.im2col.is_some() { self.cin } else { in_stride };
        let conv = Conv2dParams {
            cin: self.cin as u32,
            cout: self.cout as u32,
            in_stride: in_stride as u32,
            out_stride: out_stride as u32,
            out_offset: out_offset as u32,
            ..base
        };
        debug_assert_eq!(variant(&conv), self.variant, "conv called with other strides than it was laid out for");
        (pre, conv)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::gpu::kernels::testing;

    #[test]
    fn every_variant_validates_and_params_match() {
        for k in ConvKernel::all() {
            testing::validate(&k);
        }
        testing::layout_matches::<Conv2dParams>(&ConvKernel::all()[0]);
    }

    #[test]
    fn layout_decisions() {
        // z1 of a face model's level 0: 6 channels in a 12-channel state, 3x3 -> im2col.
        let l = ConvLayout::new(3, 6, 128, &vec![0.5; 54 * 128], WeightFormat::F32, 12, 128, 0, Some(128));
        assert_eq!((l.im2col, l.ksize, l.cin, l.variant), (Some(6), 1, 56, ConvVariant::Vec4));
        // Without scratch room it reads z1 directly with masked vec4 lanes.
        let l = ConvLayout::new(3, 6, 128, &vec![0.5; 54 * 128], WeightFormat::F16, 12, 128, 0, None);
        assert_eq!((l.im2col, l.variant), (None, ConvVariant::Vec4));
        // f16 storage: half the bytes (8 per 4 weights), the kernel variant says so.
        assert_eq!(l.weight_bytes().len(), 9 * 8 * 128 * 2);
        assert_eq!(l.kernel(true, true, Combine::Store).label(), "conv2d_vec4|k3|relu|edge|f16");
        // Six output channels: skinny; odd strides: scalar.
        assert_eq!(ConvLayout::new(3, 128, 6, &vec![0.5; 9 * 128 * 6], WeightFormat::F32, 128, 12, 6, None).variant, ConvVariant::Skinny);
        let l = ConvLayout::new(1, 3, 3, &[0.5; 9], WeightFormat::F32, 3, 3, 0, None);
        assert_eq!(l.variant, ConvVariant::Scalar);
        // The scalar kernel reads weights in groups of 4 too: padded to whole 16 bytes.
        assert_eq!(l.weight_bytes().len(), 48);
    }
}
