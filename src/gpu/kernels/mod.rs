//! The WGSL kernels: one Rust module per kernel next to its `.wgsl` file. A module holds
//! its kernel's parameters (a `#[repr(C)]` struct whose WGSL text is generated from the
//! same definition), its bindings (the WGSL declarations are generated from them too),
//! its specialisation constants and its dispatch sizing. Adding a kernel means its .wgsl,
//! its module (one `Kernel` impl) and its test; the cache and the engines take any
//! `Kernel`. Knows nothing of Glow beyond the kernels' own parameters.

pub mod conv;
pub mod coupling;
pub mod image;
pub mod im2col;
pub mod prior;
pub mod reduce;
pub mod rng;
pub mod squeeze;

use std::collections::HashMap;

const COMMON: &str = include_str!("common.wgsl");

/// Defines a uniform struct once: the Rust `#[repr(C)]` type and, from the same field
/// list, its WGSL text and its member offsets (checked against naga's layout in tests).
macro_rules! uniform_struct {
    ($(#[$m:meta])* pub struct $name:ident as $wgsl:literal { $($(#[$fm:meta])* pub $f:ident: $t:ty => $wt:literal,)* }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
        impl $crate::gpu::kernels::Uniform for $name {
            const WGSL_NAME: &'static str = $wgsl;
            const WGSL: &'static str = concat!("struct ", $wgsl, " {\n", $("    ", stringify!($f), ": ", $wt, ",\n",)* "}\n");
            fn offsets() -> Vec<(&'static str, usize)> {
                vec![$((stringify!($f), std::mem::offset_of!($name, $f)),)*]
            }
        }
    };
}
pub(crate) use uniform_struct;

/// A uniform struct shared by Rust and WGSL (made by `uniform_struct!`).
pub trait Uniform: bytemuck::Pod {
    const WGSL_NAME: &'static str;
    const WGSL: &'static str;
    /// (member, byte offset) of every member, in order.
    fn offsets() -> Vec<(&'static str, usize)>;
}

uniform_struct! {
    /// Values the host writes once per call: the random seed, how many values to draw and
    /// from which index, whether output is quantized, and one temperature per level (up to
    /// 8 levels). `Call` in WGSL.
    pub struct CallParams as "Call" {
        pub seed: u32 => "u32",
        pub count: u32 => "u32",
        /// Index of the first value, so a batch split in chunks draws the same values.
        pub base: u32 => "u32",
        /// image_out: OpenAI's postprocess to n_bits levels.
        pub quantize: u32 => "u32",
        pub temps: [f32; 8] => "array<vec4<f32>, 2>",
    }
}

/// How a storage binding is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One storage binding of group 0: WGSL name, access and element type.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub name: &'static str,
    pub access: Access,
    pub ty: &'static str,
}

pub const fn read(name: &'static str, ty: &'static str) -> Binding {
    Binding { name, access: Access::Read, ty }
}
pub const fn write(name: &'static str, ty: &'static str) -> Binding {
    Binding { name, access: Access::ReadWrite, ty }
}

/// One kernel variant. Group 0 holds the storage bindings in order; group 1 holds the
/// kernel's parameters as `params` (binding 0, when it has any) and then the per-call
/// values as `call` (when it uses them).
pub trait Kernel {
    /// Unique per variant: the cache key and the label of pipelines and dispatches,
    /// e.g. `conv2d_vec4|k3|relu|edge|add`.
    fn label(&self) -> String;
    /// The kernel's code: its .wgsl file (and any shared WGSL it needs after COMMON).
    fn code(&self) -> String;
    /// Generated `const` lines that specialise the code.
    fn consts(&self) -> String {
        String::new()
    }
    /// The storage bindings of group 0.
    fn storage(&self) -> &'static [Binding];
    /// WGSL name and text of the parameter struct, if the kernel has one.
    fn params(&self) -> Option<(&'static str, &'static str)>;
    fn uses_call(&self) -> bool {
        false
    }
}

/// The parameter struct of a kernel, for `Kernel::params`.
pub fn params_of<P: Uniform>() -> Option<(&'static str, &'static str)> {
    Some((P::WGSL_NAME, P::WGSL))
}

/// The full WGSL source: const header, common helpers and the Call struct, the parameter
/// struct, the generated binding declarations, then the kernel's code.
pub fn source(k: &dyn Kernel) -> String {
    let mut s = format!("// {}\n{}{}\n{}", k.label(), k.consts(), COMMON, CallParams::WGSL);
    let mut uniform = 0;
    if let Some((name, text)) = k.params() {
        s += text;
        s += &format!("@group(1) @binding(0) var<uniform> params: {name};\n");
        uniform = 1;
    }
    if k.uses_call() {
        s += &format!("@group(1) @binding({uniform}) var<uniform> call: Call;\n");
    }
    for (i, b) in k.storage().iter().enumerate() {
        let access = match b.access {
            Access::Read => "read",
            Access::ReadWrite => "read_write",
        };
        s += &format!("@group(0) @binding({i}) var<storage, {access}> {}: {};\n", b.name, b.ty);
    }
    s + "\n" + &k.code()
}

/// A compiled kernel with its explicit bind group layouts.
pub struct Compiled {
    pub pipeline: wgpu::ComputePipeline,
    pub storage_layout: wgpu::BindGroupLayout,
    pub uniform_layout: wgpu::BindGroupLayout,
}

/// Pipelines deduplicated by label.
#[derive(Default)]
pub struct KernelCache {
    kernels: HashMap<String, Compiled>,
}

fn layout(device: &wgpu::Device, label: &str, entries: Vec<wgpu::BufferBindingType>) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = entries
        .into_iter()
        .enumerate()
        .map(|(i, ty)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries })
}

impl KernelCache {
    pub fn get(&mut self, device: &wgpu::Device, k: &dyn Kernel) -> &Compiled {
        let label = k.label();
        self.kernels.entry(label.clone()).or_insert_with(|| {
            let source = source(k);
            #[cfg(not(target_arch = "wasm32"))]
            if std::env::var_os("GLOW_DUMP_WGSL").is_some() {
                eprintln!("==== {label}\n{source}");
            }
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let storage: Vec<_> = k.storage().iter().map(|b| wgpu::BufferBindingType::Storage { read_only: b.access == Access::Read }).collect();
            let n_uniforms = k.params().is_some() as usize + k.uses_call() as usize;
            let storage_layout = layout(device, &format!("{label}/storage"), storage);
            let uniform_layout = layout(device, &format!("{label}/uniforms"), vec![wgpu::BufferBindingType::Uniform; n_uniforms]);
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
            Compiled { pipeline, storage_layout, uniform_layout }
        })
    }

    pub fn len(&self) -> usize {
        self.kernels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.kernels.is_empty()
    }
}

/// Workgroup counts for an elementwise kernel of 256 threads over `n` values, on a 2D
/// grid so that large counts stay under the 65535-per-dimension limit (`linear_id` in
/// common.wgsl numbers threads `x + y * nwg.x * 256`).
pub fn elementwise_groups(n: usize) -> (u32, u32, u32) {
    groups_1d(n as u32, 256)
}

/// Workgroups for `threads` threads in 1-D workgroups of `size`, on a 2-D grid when there
/// are more than 65535 workgroups.
pub(crate) fn groups_1d(threads: u32, size: u32) -> (u32, u32, u32) {
    let groups = threads.div_ceil(size).max(1);
    let x = groups.min(65535);
    (x, groups.div_ceil(x), 1)
}

/// Checks shared by every kernel module's tests: the source of each variant parses and
/// validates with naga, and the parameter struct's WGSL layout equals the Rust one.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod testing {
    use super::*;

    pub fn validate(k: &dyn Kernel) -> naga::Module {
        let src = source(k);
        let m = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}: {}", k.label(), e.emit_to_string(&src)));
        // unpack2x16float (f16 weights) needs SHADER_FLOAT16_IN_FLOAT32; the engine uses those
        // kernels only where the adapter has it (GpuContext::f16_weights).
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32)
            .validate(&m)
            .unwrap_or_else(|e| panic!("{}: {e:?}", k.label()));
        m
    }

    /// Every member's offset and the struct's size in WGSL (naga) equal Rust's.
    pub fn layout_matches<P: Uniform>(k: &dyn Kernel) {
        let m = validate(k);
        let (span, members) = m
            .types
            .iter()
            .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
                (Some(n), naga::TypeInner::Struct { members, span }) if n == P::WGSL_NAME => Some((*span, members.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no struct {} in {}", P::WGSL_NAME, k.label()));
        assert_eq!(span as usize, std::mem::size_of::<P>(), "{} size", P::WGSL_NAME);
        let rust = P::offsets();
        assert_eq!(members.len(), rust.len(), "{} members", P::WGSL_NAME);
        for (mm, (name, off)) in members.iter().zip(rust) {
            assert_eq!(mm.name.as_deref(), Some(name), "{} member order", P::WGSL_NAME);
            assert_eq!(mm.offset as usize, off, "{}.{name} offset", P::WGSL_NAME);
        }
    }
}
