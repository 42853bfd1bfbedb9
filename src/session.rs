//! `Session`: what every caller uses (the CLI, the wasm API, the tests). It holds one
//! checked model and one engine, chosen once by `Backend::choose`; it validates every
//! input before an engine sees it, and it owns the latent math of `model::latent`
//! (temperatures, sampling, edits, interpolation, taught directions), so no caller
//! recomputes any of it.

use crate::engine::cpu::CpuEngine;
use crate::engine::gpu::GpuEngine;
use crate::engine::{AdapterSummary, Backend, Engine, GpuWeights, Latents, Preference};
use crate::error::{GlowError, Result};
use crate::gpu::GpuContext;
use crate::model::flow::Encoded;
use crate::model::latent::{self, Path};
use crate::model::weights::Directions;
use crate::model::{pixels, Model};
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// The most images one call takes.
pub const MAX_IMAGES: usize = 1024;

/// How a session is made.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub backend: Preference,
    /// Images per GPU dispatch (the GPU plan's batch; the CPU engine runs one at a time).
    pub batch: usize,
    /// The CPU engine's threads (0: one per core), over which it spreads a call's images and
    /// each image's convs. Ignored by the GPU engine, and in wasm32 (one thread).
    pub threads: usize,
    /// How the GPU engine stores the convs' weights (f16 or f32; `auto`: f16 when the
    /// model's weights are f16 values). Ignored by the CPU engine.
    pub gpu_weights: GpuWeights,
}

impl Default for Options {
    fn default() -> Self {
        Options { backend: Preference::Auto, batch: 4, threads: 0, gpu_weights: GpuWeights::Auto }
    }
}

/// Bits per dimension of some images, both ways (see docs/FORMAT.md).
#[derive(Debug, Clone)]
pub struct BitsPerDim {
    /// Each value at the centre of its bin: deterministic, what the page shows live. Not
    /// a bound on the discrete likelihood; a flat image can score below zero.
    pub bin_centre: Vec<f64>,
    /// OpenAI's figure: uniform dequantization noise, the mean over `draws` seeded draws
    /// (an upper bound on the discrete model's bits/dim, in expectation).
    pub dequantized: Vec<f64>,
    pub draws: u32,
}

pub struct Session {
    model: Model,
    engine: Box<dyn Engine>,
    reason: String,
    /// The shipped directions followed by those taught in this session.
    directions: RefCell<Option<Directions>>,
    /// The length every direction, shipped or taught, is scaled to (`latent::direction_length`).
    direction_length: f64,
    /// Set while an engine call runs: a second call (from JS, which can interleave
    /// awaits) is refused instead of racing for the same GPU buffers.
    busy: Cell<bool>,
}

struct Busy<'a>(&'a Cell<bool>);
impl<'a> Busy<'a> {
    fn take(c: &'a Cell<bool>) -> Result<Self> {
        if c.replace(true) {
            return Err(GlowError::Busy);
        }
        Ok(Busy(c))
    }
}
impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// What the adapter probe tells `Backend::choose`.
pub fn adapter_summary(ctx: &GpuContext) -> AdapterSummary {
    AdapterSummary { name: ctx.adapter_description(), software: ctx.info.device_type == wgpu::DeviceType::Cpu }
}

impl Session {
    /// Opens a session: probes the GPU unless the CPU is asked for, picks the backend and
    /// builds its engine.
    pub async fn new(model: Model, opts: Options) -> Result<Session> {
        Session::with_probe(model, opts, async { GpuContext::new().await.map(Arc::new) }).await
    }

    /// As `new`, with the caller's own adapter probe (the page shares one device between
    /// its sessions). The probe is awaited only when the CPU engine was not asked for.
    pub async fn with_probe(model: Model, opts: Options, probe: impl std::future::Future<Output = Result<Arc<GpuContext>>>) -> Result<Session> {
        let ctx = match opts.backend {
            Preference::Cpu => Err(GlowError::NoAdapter("not probed: the CPU engine was asked for".into())),
            _ => probe.await,
        };
        Session::with_context(model, opts, ctx).await
    }

    /// As `new`, with the result of a probe already made (tests share one context).
    pub async fn with_context(model: Model, opts: Options, ctx: Result<Arc<GpuContext>>) -> Result<Session> {
        if opts.batch == 0 || opts.batch > MAX_IMAGES {
            return Err(GlowError::Input(format!("batch {} must be 1..={MAX_IMAGES}", opts.batch)));
        }
        let summary = ctx.as_ref().map(|c| adapter_summary(c)).map_err(|e| e.to_string());
        let (backend, mut reason) = Backend::choose(opts.backend, summary.as_ref().map_err(|e| e.as_str()));
        let engine: Box<dyn Engine> = match backend {
            Backend::Cpu => Box::new(CpuEngine::with_threads(&model, opts.threads)),
            Backend::Gpu => match GpuEngine::with_weights(ctx?, &model, opts.batch, opts.gpu_weights).await {
                Ok(g) => Box::new(g),
                // Auto picked a hardware GPU that cannot hold this model: the CPU engine
                // still can, and the reason says so.
                Err(e) if opts.backend == Preference::Auto => {
                    reason = format!("CPU engine: the GPU could not run this model ({e})");
                    Box::new(CpuEngine::with_threads(&model, opts.threads))
                }
                Err(e) => return Err(e),
            },
        };
        // Every direction, shipped or taught, gets the same length, so that a slider's
        // amount means the same distance in latent space for each attribute (raw class-mean
        // differences range over 3x in length on the face model).
        let direction_length = latent::direction_length(model.directions.as_ref(), model.dim());
        let mut shipped = model.directions.clone();
        if let Some(d) = shipped.as_mut() {
            let dim = d.dim;
            d.values.chunks_exact_mut(dim).for_each(|row| latent::normalise(row, direction_length));
        }
        let directions = RefCell::new(shipped);
        Ok(Session { model, engine, reason, directions, direction_length, busy: Cell::new(false) })
    }

    /// Loads a model directory and opens a session on it (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(dir: &std::path::Path, opts: Options) -> Result<Session> {
        pollster::block_on(Session::new(Model::load_dir(dir)?, opts))
    }

    pub fn model(&self) -> &Model {
        &self.model
    }
    pub fn dim(&self) -> usize {
        self.model.dim()
    }
    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }
    /// Why this backend runs the session.
    pub fn reason(&self) -> &str {
        &self.reason
    }
    /// The adapter or CPU the engine runs on.
    pub fn device(&self) -> String {
        self.engine.device()
    }
    /// The engine itself, for benchmarks and profiles of one engine.
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    // ---- checks ----

    fn check_n(&self, n: usize) -> Result<()> {
        if n == 0 || n > MAX_IMAGES {
            return Err(GlowError::Input(format!("{n} images: ask for 1 to {MAX_IMAGES}")));
        }
        Ok(())
    }

    fn check_rgba(&self, rgba: &[u8], n: usize) -> Result<()> {
        self.check_n(n)?;
        let (w, h) = (self.model.width(), self.model.height());
        if rgba.len() != n * w * h * 4 {
            return Err(GlowError::Image(format!(
                "expected {n} RGBA image(s) of {w}x{h} ({} bytes), got {} bytes",
                n * w * h * 4,
                rgba.len()
            )));
        }
        Ok(())
    }

    /// One temperature per level from a global one and an optional per-level list.
    pub fn temperatures(&self, t: f32, per_level: &[f32]) -> Result<Vec<f32>> {
        latent::temperatures(&self.model.config, t, per_level)
    }

    fn check_temps(&self, temps: &[f32]) -> Result<()> {
        let l = self.model.config.levels as usize;
        if temps.len() != l {
            return Err(GlowError::Input(format!("{} temperatures for {l} levels", temps.len())));
        }
        latent::temperatures(&self.model.config, 1.0, temps).map(|_| ())
    }

    // ---- engine calls ----

    /// Encodes `n` RGBA8 images of the model's size to eps and (bin-centre) bits/dim.
    pub async fn encode(&self, rgba: &[u8], n: usize) -> Result<Encoded> {
        self.check_rgba(rgba, n)?;
        let _b = Busy::take(&self.busy)?;
        self.engine.encode_rgba(rgba, n).await
    }

    /// Encodes `n` images given in model units (`[n, H, W, channels]`).
    pub async fn encode_x(&self, x: &[f32], n: usize) -> Result<Encoded> {
        self.check_n(n)?;
        if x.len() != n * self.dim() {
            return Err(GlowError::Input(format!("x has {} values, expected {n} x {}", x.len(), self.dim())));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(GlowError::Input(format!("x value at index {i} is not finite")));
        }
        let _b = Busy::take(&self.busy)?;
        self.engine.encode_x(x, n).await
    }

    /// Bits/dim of `n` RGBA8 images, at the bin centre and dequantized (the mean over
    /// `draws` noise draws from `seed`).
    pub async fn bits_per_dim(&self, rgba: &[u8], n: usize, draws: u32, seed: u32) -> Result<BitsPerDim> {
        self.check_rgba(rgba, n)?;
        if !(1..=64).contains(&draws) {
            return Err(GlowError::Input(format!("{draws} noise draws: ask for 1 to 64")));
        }
        let _b = Busy::take(&self.busy)?;
        let bin_centre = self.engine.encode_rgba(rgba, n).await?.bits_per_dim;
        let cfg = &self.model.config;
        let mut dequantized = vec![0f64; n];
        for draw in 0..draws {
            let x = pixels::image_to_x_dequantized(rgba, cfg.image.channels as usize, cfg.n_bits, seed, draw);
            let e = self.engine.encode_x(&x, n).await?;
            dequantized.iter_mut().zip(&e.bits_per_dim).for_each(|(a, b)| *a += b / draws as f64);
        }
        Ok(BitsPerDim { bin_centre, dequantized, draws })
    }

    /// Decodes `n` latents at per-level temperatures to RGBA8 (`quantize`: OpenAI's
    /// postprocess to n_bits levels).
    pub async fn decode(&self, eps: &[f32], n: usize, temps: &[f32], quantize: bool) -> Result<Vec<u8>> {
        latent::check(eps, n, self.dim())?;
        self.check_n(n)?;
        self.check_temps(temps)?;
        let _b = Busy::take(&self.busy)?;
        self.engine.decode_rgba(Latents::Given(eps), n, temps, quantize).await
    }

    /// Decodes to the model's continuous output values.
    pub async fn decode_x(&self, eps: &[f32], n: usize, temps: &[f32]) -> Result<Vec<f32>> {
        latent::check(eps, n, self.dim())?;
        self.check_n(n)?;
        self.check_temps(temps)?;
        let _b = Busy::take(&self.busy)?;
        self.engine.decode_x(Latents::Given(eps), n, temps).await
    }

    /// Samples `n` images from `seed` at per-level temperatures: eps drawn by the engine
    /// (on the GPU, or by its CPU twin), so both backends draw the same latents.
    pub async fn sample(&self, n: usize, temps: &[f32], seed: u32, quantize: bool) -> Result<Vec<u8>> {
        self.check_n(n)?;
        self.check_temps(temps)?;
        let _b = Busy::take(&self.busy)?;
        self.engine.decode_rgba(Latents::Seeded(seed), n, temps, quantize).await
    }

    /// As `sample`, to continuous values.
    pub async fn sample_x(&self, n: usize, temps: &[f32], seed: u32) -> Result<Vec<f32>> {
        self.check_n(n)?;
        self.check_temps(temps)?;
        let _b = Busy::take(&self.busy)?;
        self.engine.decode_x(Latents::Seeded(seed), n, temps).await
    }

    // ---- latent math (no engine) ----

    /// The latents `sample` decodes, already scaled by the temperatures: decoding them at
    /// temperature 1 shows the same faces. The page keeps these to edit and blend.
    pub fn sample_eps(&self, n: usize, seed: u32, temps: &[f32]) -> Result<Vec<f32>> {
        self.check_n(n)?;
        self.check_temps(temps)?;
        Ok(latent::sample(&self.model.config, n, seed, temps))
    }

    /// `(offset, length)` of each level's latent in one image's eps.
    pub fn layout(&self) -> Vec<(usize, usize)> {
        latent::layout(&self.model.config)
    }

    /// Shipped attribute names, then taught ones.
    pub fn attribute_names(&self) -> Vec<String> {
        self.directions.borrow().as_ref().map(|d| d.names.clone()).unwrap_or_default()
    }

    /// One face's eps moved by `amounts[i]` along direction `i` (shipped, then taught).
    pub fn manipulate(&self, eps: &[f32], amounts: &[f32]) -> Result<Vec<f32>> {
        latent::check(eps, 1, self.dim())?;
        let dirs = self.directions.borrow();
        let dirs = dirs.as_ref().ok_or_else(|| GlowError::Input("this model has no attribute directions".into()))?;
        latent::manipulate(dirs, eps, amounts)
    }

    /// `steps` latents from `a` to `b`, both included, along a line or a great circle.
    pub fn interpolate(&self, a: &[f32], b: &[f32], steps: usize, path: Path) -> Result<Vec<f32>> {
        latent::check(a, 1, self.dim())?;
        latent::check(b, 1, self.dim())?;
        latent::interpolate(a, b, steps, path)
    }

    /// The point at `t` (0 = a, 1 = b) on the path from `a` to `b`.
    pub fn mix(&self, a: &[f32], b: &[f32], t: f32, path: Path) -> Result<Vec<f32>> {
        latent::check(a, 1, self.dim())?;
        latent::check(b, 1, self.dim())?;
        if !t.is_finite() {
            return Err(GlowError::Input(format!("mix position {t} is not finite")));
        }
        Ok(latent::mix(a, b, t, path))
    }

    /// Teaches a direction from examples with and without an attribute (whole eps
    /// vectors, concatenated), scaled to the common length of the model's directions;
    /// it joins the attributes under `name`. Returns its index.
    pub fn teach(&self, name: &str, with: &[f32], without: &[f32]) -> Result<usize> {
        let name = name.trim();
        if name.is_empty() {
            return Err(GlowError::Input("a taught direction needs a name".into()));
        }
        if self.attribute_names().iter().any(|n| n == name) {
            return Err(GlowError::Input(format!("there is already an attribute named '{name}'")));
        }
        let d = self.dim();
        let v = latent::teach(with, without, d, self.direction_length)?;
        latent::check(with, with.len() / d, d)?;
        latent::check(without, without.len() / d, d)?;
        let mut dirs = self.directions.borrow_mut();
        let dirs = dirs.get_or_insert_with(|| Directions { names: Vec::new(), dim: d, values: Vec::new() });
        dirs.names.push(name.to_string());
        dirs.values.extend(v);
        Ok(dirs.names.len() - 1)
    }

    /// Forgets a taught direction (shipped ones stay).
    pub fn forget(&self, name: &str) -> Result<()> {
        let shipped = self.model.directions.as_ref().map_or(0, |d| d.names.len());
        let mut dirs = self.directions.borrow_mut();
        let Some(d) = dirs.as_mut() else { return Err(GlowError::Input(format!("no taught direction '{name}'"))) };
        match d.names.iter().position(|n| n == name) {
            Some(i) if i >= shipped => {
                d.names.remove(i);
                d.values.drain(i * d.dim..(i + 1) * d.dim);
                Ok(())
            }
            Some(_) => Err(GlowError::Input(format!("'{name}' ships with the model and cannot be forgotten"))),
            None => Err(GlowError::Input(format!("no taught direction '{name}'"))),
        }
    }

    /// What the model sees of an RGBA8 image: each value floored to n_bits and shown at
    /// its bin centre.
    pub fn quantize_input(&self, rgba: &[u8]) -> Vec<u8> {
        pixels::quantize_input(rgba, self.model.config.n_bits)
    }
}
