//! The engines that run a model: the GPU plan (`gpu::GpuEngine`, WGSL through wgpu) and
//! the fast CPU engine (`cpu::CpuEngine`). Both implement `Engine`; callers never hold
//! one directly but go through `Session`, which validates every input first, so an
//! engine may assume whole images, whole latents and one temperature per level.
//! `Backend::choose` is the only place a backend is picked.

pub mod cpu;
pub mod gpu;
pub mod kernel_bench;

use crate::error::Result;
use crate::model::flow::Encoded;
use std::future::Future;
use std::pin::Pin;

/// A call's result, awaited on the caller's executor (pollster natively, the browser's
/// event loop in wasm). Not `Send`: wgpu's browser objects are not.
pub type Job<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// The latents a decode starts from.
#[derive(Debug, Clone, Copy)]
pub enum Latents<'a> {
    /// `n * dim` given values (already checked by the session).
    Given(&'a [f32]),
    /// Standard normal values drawn from this seed by the counter-based generator (on the
    /// GPU by `src/gpu/kernels/rng.wgsl`, on the CPU by its twin `model::rng`).
    Seeded(u32),
}

/// One engine for one model. Inputs are already validated by the session.
pub trait Engine {
    fn backend(&self) -> Backend;
    /// The adapter or CPU it runs on, for figures and the page's footer.
    fn device(&self) -> String;
    /// Encodes `n` RGBA8 images of the model's size (bin-centre dequantization).
    fn encode_rgba<'a>(&'a self, rgba: &'a [u8], n: usize) -> Job<'a, Encoded>;
    /// Encodes `n` images given in model units (`[n, H, W, channels]`, in [-0.5, 0.5]).
    fn encode_x<'a>(&'a self, x: &'a [f32], n: usize) -> Job<'a, Encoded>;
    /// Decodes `n` latents at per-level temperatures to RGBA8; `quantize` applies OpenAI's
    /// postprocess (floor to n_bits levels) instead of the continuous value.
    fn decode_rgba<'a>(&'a self, eps: Latents<'a>, n: usize, temps: &'a [f32], quantize: bool) -> Job<'a, Vec<u8>>;
    /// Decodes `n` latents to the model's continuous output values.
    fn decode_x<'a>(&'a self, eps: Latents<'a>, n: usize, temps: &'a [f32]) -> Job<'a, Vec<f32>>;
    /// The GPU plan itself, for GPU-only tools (timestamp profiles, kernel benchmarks).
    fn gpu(&self) -> Option<&gpu::GpuEngine> {
        None
    }
}

/// Which engine runs a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Gpu,
    Cpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        }
    }

    /// Picks the backend for a preference, given what the GPU adapter probe found
    /// (`Err` with the reason when there is none), and says why. The one rule, used by
    /// the CLI and the page alike:
    /// - `Gpu` is taken when asked for (a session fails if there is no adapter);
    /// - `Cpu` when asked for;
    /// - `Auto`: the GPU on a hardware adapter; the CPU engine when there is no adapter
    ///   or only a software one (lavapipe, SwiftShader), where the CPU engine is several
    ///   times faster (README: 47.6 vs 234 ms per decode natively on lavapipe, 45 vs
    ///   1336 ms in Chromium on SwiftShader).
    pub fn choose(preference: Preference, adapter: std::result::Result<&AdapterSummary, &str>) -> (Backend, String) {
        match (preference, adapter) {
            (Preference::Cpu, _) => (Backend::Cpu, "CPU engine, as asked".into()),
            (Preference::Gpu, Ok(a)) => (Backend::Gpu, format!("GPU ({}), as asked", a.name)),
            (Preference::Gpu, Err(e)) => (Backend::Gpu, format!("GPU asked for, but there is no adapter: {e}")),
            (Preference::Auto, Ok(a)) if !a.software => (Backend::Gpu, format!("GPU: hardware adapter {}", a.name)),
            (Preference::Auto, Ok(a)) => (
                Backend::Cpu,
                format!("CPU engine: the only GPU adapter is a software one ({}), which is slower than the CPU engine", a.name),
            ),
            (Preference::Auto, Err(e)) => (Backend::Cpu, format!("CPU engine: no GPU adapter ({e})")),
        }
    }
}

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    #[default]
    Auto,
    Gpu,
    Cpu,
}

impl Preference {
    /// "auto" (or ""), "gpu" (or "webgpu"), "cpu".
    pub fn parse(s: &str) -> Result<Preference> {
        match s {
            "auto" | "" => Ok(Preference::Auto),
            "gpu" | "webgpu" => Ok(Preference::Gpu),
            "cpu" => Ok(Preference::Cpu),
            other => Err(crate::error::GlowError::Input(format!("unknown backend '{other}': use auto, gpu or cpu"))),
        }
    }
}

/// How the GPU engine stores the convs' weights (the coupling nets' and the split priors':
/// all but a few percent of a model's parameters). The per-step affine maps stay f32 in
/// every case: encode runs `A` and decode `A^-1`, both folded in f64, and rounding each to
/// f16 separately would leave them about 2^-11 from inverse to each other, so
/// decode(encode(x)) would no longer give x back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpuWeights {
    /// f16 when that loses nothing: the model's file stores its weights in f16 (as the
    /// shipped models do), so the f16 values plus the per-output-channel factors kept in f32
    /// are the file's own values; f32 otherwise, so a model stored in f32 keeps its precision
    /// unless f16 is asked for.
    #[default]
    Auto,
    /// f16 whatever the file holds (f32 weights are rounded to f16).
    F16,
    /// The folded weights in f32 (twice the memory).
    F32,
}

impl GpuWeights {
    /// "auto" (or ""), "f16", "f32".
    pub fn parse(s: &str) -> Result<GpuWeights> {
        match s {
            "auto" | "" => Ok(GpuWeights::Auto),
            "f16" => Ok(GpuWeights::F16),
            "f32" => Ok(GpuWeights::F32),
            other => Err(crate::error::GlowError::Input(format!("unknown GPU weight format '{other}': use auto, f16 or f32"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            GpuWeights::Auto => "auto",
            GpuWeights::F16 => "f16",
            GpuWeights::F32 => "f32",
        }
    }
}

/// What `Backend::choose` needs to know of an adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    /// A CPU-emulated adapter (wgpu reports `DeviceType::Cpu`: lavapipe, SwiftShader).
    pub software: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_backend_rule() {
        let hw = AdapterSummary { name: "RTX".into(), software: false };
        let sw = AdapterSummary { name: "llvmpipe".into(), software: true };
        assert_eq!(Backend::choose(Preference::Auto, Ok(&hw)).0, Backend::Gpu);
        assert_eq!(Backend::choose(Preference::Auto, Ok(&sw)).0, Backend::Cpu);
        assert_eq!(Backend::choose(Preference::Auto, Err("no WebGPU")).0, Backend::Cpu);
        assert_eq!(Backend::choose(Preference::Gpu, Ok(&sw)).0, Backend::Gpu);
        assert_eq!(Backend::choose(Preference::Cpu, Ok(&hw)).0, Backend::Cpu);
        let (_, why) = Backend::choose(Preference::Auto, Ok(&sw));
        assert!(why.contains("software") && why.contains("llvmpipe"), "{why}");
        assert!(!Backend::choose(Preference::Auto, Ok(&sw)).1.contains("as asked"));
        assert!(Preference::parse("metal").is_err());
        assert_eq!(Preference::parse("webgpu").unwrap(), Preference::Gpu);
        assert_eq!(GpuWeights::parse("f16").unwrap(), GpuWeights::F16);
        assert_eq!(GpuWeights::parse("").unwrap(), GpuWeights::Auto);
        assert!(GpuWeights::parse("bf16").is_err());
    }
}
