//! wasm-bindgen glue only: the `GlowModel` class the page and the `<glow-face>` widget
//! use. Every method returns a JS `Error` with a clear message instead of panicking.
//! Calls on one model are serialised: a second call while one is running is refused
//! with an error rather than racing for the same GPU buffers.

use crate::cpu::CpuGlow;
use crate::engine::Glow;
use crate::error::GlowError;
use crate::gpu::GpuContext;
use crate::model::{level_temperatures, Model};
use crate::reference;
use js_sys::{Array, Float32Array, Float64Array, Object, Reflect, Uint8ClampedArray};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

thread_local! {
    /// One GPU device for every model on the page (several widgets share it).
    static CONTEXT: RefCell<Option<Arc<GpuContext>>> = const { RefCell::new(None) };
}

async fn shared_context() -> Result<Arc<GpuContext>, GlowError> {
    if let Some(c) = CONTEXT.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    let ctx = Arc::new(GpuContext::new().await?);
    CONTEXT.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    Ok(ctx)
}

enum Backend {
    Gpu(Glow),
    /// The CPU engine, and why it was chosen.
    Cpu(CpuGlow, String),
}

struct Inner {
    model: Model,
    backend: Backend,
    busy: Cell<bool>,
}

fn js_err(e: GlowError) -> JsError {
    JsError::new(&e.to_string())
}

/// Marks the model busy for the lifetime of the guard.
struct Busy<'a>(&'a Cell<bool>);
impl<'a> Busy<'a> {
    fn take(c: &'a Cell<bool>) -> Result<Self, JsError> {
        if c.replace(true) {
            return Err(JsError::new("the model is busy with another call; await it first"));
        }
        Ok(Busy(c))
    }
}
impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

#[wasm_bindgen]
pub struct GlowModel {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl GlowModel {
    /// Loads a model from the bytes of its directory's files. `backend` is "webgpu",
    /// "cpu" or "auto": WebGPU on a hardware adapter; the CPU engine when there is no
    /// WebGPU or only a software fallback adapter (SwiftShader), where it is several
    /// times faster (measured by www/bench.html: see README).
    /// `batch` is the GPU plan's batch size (images per dispatch).
    pub async fn load(config_json: String, weights: Vec<u8>, attributes: Option<Vec<u8>>, backend: String, batch: u32) -> Result<GlowModel, JsError> {
        let model = Model::from_bytes(&config_json, &weights, attributes.as_deref()).map_err(js_err)?;
        let batch = batch.clamp(1, 64) as usize;
        let backend = match backend.as_str() {
            "cpu" => Backend::Cpu(CpuGlow::new(&model), "CPU engine (wasm simd128), as asked".into()),
            "webgpu" => {
                let ctx = shared_context().await.map_err(js_err)?;
                Backend::Gpu(Glow::new(ctx, &model, batch).await.map_err(js_err)?)
            }
            "auto" | "" => match shared_context().await {
                Ok(ctx) if ctx.info.device_type != wgpu::DeviceType::Cpu => {
                    Backend::Gpu(Glow::new(ctx, &model, batch).await.map_err(js_err)?)
                }
                Ok(ctx) => Backend::Cpu(
                    CpuGlow::new(&model),
                    format!("CPU engine (wasm simd128): faster than the software WebGPU adapter ({})", ctx.adapter_description()),
                ),
                Err(e) => Backend::Cpu(CpuGlow::new(&model), format!("CPU engine (wasm simd128): no WebGPU ({e})")),
            },
            other => return Err(JsError::new(&format!("unknown backend '{other}': use auto, webgpu or cpu"))),
        };
        Ok(GlowModel { inner: Rc::new(Inner { model, backend, busy: Cell::new(false) }) })
    }

    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        self.inner.model.config.image.width
    }
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        self.inner.model.config.image.height
    }
    #[wasm_bindgen(getter)]
    pub fn channels(&self) -> u32 {
        self.inner.model.config.image.channels
    }
    /// Values per image in eps (H * W * channels).
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> u32 {
        self.inner.model.dim() as u32
    }
    #[wasm_bindgen(getter)]
    pub fn levels(&self) -> u32 {
        self.inner.model.config.levels
    }
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.model.config.name.clone()
    }
    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.inner.backend {
            Backend::Gpu(_) => "webgpu".into(),
            Backend::Cpu(..) => "cpu".into(),
        }
    }
    #[wasm_bindgen(getter, js_name = adapterInfo)]
    pub fn adapter_info(&self) -> String {
        match &self.inner.backend {
            Backend::Gpu(g) => g.adapter_info(),
            Backend::Cpu(_, why) => why.clone(),
        }
    }
    /// Names of the attribute directions shipped with the model (may be empty).
    #[wasm_bindgen(getter, js_name = attributeNames)]
    pub fn attribute_names(&self) -> Array {
        let a = Array::new();
        if let Some(d) = &self.inner.model.directions {
            for n in &d.names {
                a.push(&JsValue::from_str(n));
            }
        }
        a
    }

    /// Standard normal eps for `n` images from `seed`: exactly the values the GPU
    /// sampler draws (up to the rounding of log and cos).
    #[wasm_bindgen(js_name = sampleEps)]
    pub fn sample_eps(&self, n: u32, seed: u32) -> Float32Array {
        Float32Array::from(reference::random_eps(seed, n as usize, self.inner.model.dim()).as_slice())
    }

    /// Samples `n` images (RGBA, n * H * W * 4 bytes). `perLevel`, if given, holds one
    /// temperature per level and overrides `temperature`.
    pub async fn sample(&self, n: u32, temperature: f32, seed: u32, per_level: Option<Vec<f32>>) -> Result<Uint8ClampedArray, JsError> {
        let inner = self.inner.clone();
        let _busy = Busy::take(&inner.busy)?;
        let temps = level_temperatures(&inner.model.config, temperature, per_level.as_deref().unwrap_or(&[])).map_err(js_err)?;
        let n = check_n(n)?;
        let rgba = match &inner.backend {
            Backend::Gpu(g) => g.sample(n, &temps, seed).await.map_err(js_err)?,
            Backend::Cpu(c, _) => {
                let eps = reference::random_eps(seed, n, inner.model.dim());
                c.decode(&eps, n, &temps, false)
            }
        };
        Ok(Uint8ClampedArray::from(rgba.as_slice()))
    }

    /// Decodes eps (n * dim values) to RGBA images; `temperature` multiplies eps.
    pub async fn decode(&self, eps: Vec<f32>, n: u32, temperature: f32) -> Result<Uint8ClampedArray, JsError> {
        let inner = self.inner.clone();
        let _busy = Busy::take(&inner.busy)?;
        let temps = level_temperatures(&inner.model.config, temperature, &[]).map_err(js_err)?;
        let n = check_n(n)?;
        if eps.len() != n * inner.model.dim() {
            return Err(JsError::new(&format!("eps has {} values, expected {n} x {}", eps.len(), inner.model.dim())));
        }
        let rgba = match &inner.backend {
            Backend::Gpu(g) => g.decode(&eps, n, &temps).await.map_err(js_err)?,
            Backend::Cpu(c, _) => c.decode(&eps, n, &temps, false),
        };
        Ok(Uint8ClampedArray::from(rgba.as_slice()))
    }

    /// Encodes `n` RGBA images of the model's size: `{eps: Float32Array, bitsPerDim: Float64Array}`.
    pub async fn encode(&self, rgba: Vec<u8>, n: u32) -> Result<Object, JsError> {
        let inner = self.inner.clone();
        let _busy = Busy::take(&inner.busy)?;
        let n = check_n(n)?;
        let m = &inner.model;
        let expect = n * m.width() * m.height() * 4;
        if rgba.len() != expect {
            return Err(JsError::new(&format!(
                "image: expected {n} RGBA image(s) of {}x{} ({expect} bytes), got {} bytes",
                m.width(),
                m.height(),
                rgba.len()
            )));
        }
        let enc = match &inner.backend {
            Backend::Gpu(g) => g.encode(&rgba, n).await.map_err(js_err)?,
            Backend::Cpu(c, _) => c.encode(&rgba, n),
        };
        let o = Object::new();
        Reflect::set(&o, &"eps".into(), &Float32Array::from(enc.eps.as_slice())).map_err(|_| JsError::new("could not build the result"))?;
        Reflect::set(&o, &"bitsPerDim".into(), &Float64Array::from(enc.bits_per_dim.as_slice())).map_err(|_| JsError::new("could not build the result"))?;
        Ok(o)
    }

    /// Times every dispatch of a decode (`decode` true: random latents at T = 0.7) or an
    /// encode with WebGPU timestamp queries, one compute pass per dispatch, each dispatch's
    /// best of `passes` calls, and returns the JSON text of their sum per level and layer
    /// (as `glow bench --profile` prints it), or null on the CPU engine or where the adapter
    /// has no `timestamp-query` feature. Browsers may coarsen these timestamps (Chrome
    /// rounds them to 100 us by default).
    pub async fn profile(&self, decode: bool, passes: u32) -> Result<JsValue, JsError> {
        let inner = self.inner.clone();
        let _busy = Busy::take(&inner.busy)?;
        let Backend::Gpu(g) = &inner.backend else { return Ok(JsValue::NULL) };
        let passes = passes.clamp(1, 10) as usize;
        let Some(times) = g.profile(decode, passes).await.map_err(js_err)? else { return Ok(JsValue::NULL) };
        Ok(JsValue::from_str(&crate::engine::profile_summary(&times, None, passes).to_string()))
    }

    /// Times the adapter's matmul limit (1024^3 through our 1x1 conv kernel) and this
    /// model's level-0 conv classes at `batch` images, as `glow bench --kernels` does
    /// natively. Returns the JSON text, or null on the CPU engine. Takes seconds to
    /// minutes on a software adapter.
    #[wasm_bindgen(js_name = benchKernels)]
    pub async fn bench_kernels(&self, batch: u32) -> Result<JsValue, JsError> {
        let inner = self.inner.clone();
        let _busy = Busy::take(&inner.busy)?;
        let Backend::Gpu(g) = &inner.backend else { return Ok(JsValue::NULL) };
        let v = crate::gpu::bench::conv_classes(g.context(), &inner.model, batch.clamp(1, 64) as usize).await.map_err(js_err)?;
        Ok(JsValue::from_str(&v.to_string()))
    }

    /// Exact bits/dim of `n` RGBA images.
    #[wasm_bindgen(js_name = bitsPerDim)]
    pub async fn bits_per_dim(&self, rgba: Vec<u8>, n: u32) -> Result<Float64Array, JsError> {
        let o = self.encode(rgba, n).await?;
        Reflect::get(&o, &"bitsPerDim".into()).map(Float64Array::from).map_err(|_| JsError::new("no bitsPerDim"))
    }

    /// eps + sum_i amounts[i] * direction_i, for one image's eps.
    pub fn manipulate(&self, eps: Vec<f32>, amounts: Vec<f32>) -> Result<Float32Array, JsError> {
        let m = &self.inner.model;
        let dirs = m.directions.as_ref().ok_or_else(|| JsError::new("this model has no attribute directions"))?;
        if eps.len() != m.dim() {
            return Err(JsError::new(&format!("eps has {} values, expected {}", eps.len(), m.dim())));
        }
        if amounts.len() != dirs.names.len() {
            return Err(JsError::new(&format!("{} amounts for {} attributes", amounts.len(), dirs.names.len())));
        }
        let mut out = eps;
        for (i, a) in amounts.iter().enumerate() {
            if *a != 0.0 {
                for (o, d) in out.iter_mut().zip(dirs.row(i)) {
                    *o += a * d;
                }
            }
        }
        Ok(Float32Array::from(out.as_slice()))
    }

    /// `steps` eps vectors evenly spaced from `a` to `b` (both ends included).
    pub fn interpolate(&self, a: Vec<f32>, b: Vec<f32>, steps: u32) -> Result<Float32Array, JsError> {
        let d = self.inner.model.dim();
        if a.len() != d || b.len() != d {
            return Err(JsError::new(&format!("interpolate needs two eps of {d} values")));
        }
        let steps = steps.clamp(2, 64) as usize;
        let mut out = Vec::with_capacity(steps * d);
        for s in 0..steps {
            let t = s as f32 / (steps - 1) as f32;
            out.extend(a.iter().zip(&b).map(|(x, y)| x + t * (y - x)));
        }
        Ok(Float32Array::from(out.as_slice()))
    }

    /// A new direction from examples: mean eps of `with` minus mean eps of `without`
    /// (each a concatenation of whole eps vectors), OpenAI's attribute method.
    pub fn direction(&self, with: Vec<f32>, without: Vec<f32>) -> Result<Float32Array, JsError> {
        let d = self.inner.model.dim();
        if with.is_empty() || without.is_empty() || with.len() % d != 0 || without.len() % d != 0 {
            return Err(JsError::new("direction needs at least one eps with and one without the attribute"));
        }
        let mean = |v: &[f32]| {
            let n = (v.len() / d) as f32;
            let mut m = vec![0f32; d];
            for row in v.chunks_exact(d) {
                for (a, b) in m.iter_mut().zip(row) {
                    *a += b / n;
                }
            }
            m
        };
        let (a, b) = (mean(&with), mean(&without));
        Ok(Float32Array::from(a.iter().zip(&b).map(|(x, y)| x - y).collect::<Vec<_>>().as_slice()))
    }
}

fn check_n(n: u32) -> Result<usize, JsError> {
    if n == 0 || n > 1024 {
        return Err(JsError::new(&format!("n = {n}: ask for 1 to 1024 images")));
    }
    Ok(n as usize)
}
