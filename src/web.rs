//! wasm-bindgen glue over the `Session`, and nothing else: the `GlowModel` class the page
//! and the `<glow-face>` widget use. Every method returns a JS `Error` whose `name` is
//! the error's kind (`BadModelFile`, `BadImage`, `BadInput`, `NoAdapter`, `DeviceLost`,
//! `OutOfMemory`, `GpuError`, `Busy`), never a panic.

use crate::error::GlowError;
use crate::gpu::GpuContext;
use crate::model::latent::Path;
use crate::model::Model;
use crate::session::{Options, Session};
use crate::{Backend, Preference};
use js_sys::{Array, Float32Array, Float64Array, Object, Reflect, Uint32Array, Uint8ClampedArray};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

thread_local! {
    /// One GPU device for every model in this JS realm (several widgets share it).
    static CONTEXT: RefCell<Option<Arc<GpuContext>>> = const { RefCell::new(None) };
}

// `Arc` because the Session API is shared with native code, where the context is Send and
// Sync; in the browser everything runs on one thread.
#[allow(clippy::arc_with_non_send_sync)]
async fn shared_context() -> Result<Arc<GpuContext>, GlowError> {
    if let Some(c) = CONTEXT.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    if !webgpu_present() {
        return Err(GlowError::NoAdapter("this browser has no WebGPU (navigator.gpu is missing)".into()));
    }
    let ctx = Arc::new(GpuContext::new().await?);
    CONTEXT.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    Ok(ctx)
}

/// Whether `navigator.gpu` exists (in a page or a worker), checked before wgpu is asked.
fn webgpu_present() -> bool {
    let nav = Reflect::get(&js_sys::global(), &"navigator".into()).ok();
    let gpu = nav.and_then(|n| Reflect::get(&n, &"gpu".into()).ok());
    gpu.is_some_and(|g| !g.is_undefined() && !g.is_null())
}

/// A `GlowError` as a JS `Error` whose `name` says which kind.
fn js_err(e: GlowError) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name(e.kind());
    err.into()
}

fn set(o: &Object, key: &str, v: &JsValue) -> Result<(), JsValue> {
    Reflect::set(o, &key.into(), v).map(|_| ())
}

fn temps(s: &Session, t: f32, per_level: Option<Vec<f32>>) -> Result<Vec<f32>, JsValue> {
    s.temperatures(t, per_level.as_deref().unwrap_or(&[])).map_err(js_err)
}

#[wasm_bindgen]
pub struct GlowModel {
    session: Rc<Session>,
}

#[wasm_bindgen]
impl GlowModel {
    /// Loads a model from the bytes of its directory's files. `backend`: "auto" (the GPU
    /// on a hardware adapter, else the CPU engine; `backendReason` says why), "gpu" (or
    /// "webgpu") or "cpu". `batch` is the GPU plan's images per dispatch. `threads`: the
    /// CPU engine's threads (default 0: all there are; only the threaded build, pkg-mt/,
    /// has more than one, once its helper workers run).
    pub async fn load(config_json: String, weights: Vec<u8>, attributes: Option<Vec<u8>>, backend: String, batch: u32, threads: Option<u32>) -> Result<GlowModel, JsValue> {
        let model = Model::from_bytes(&config_json, &weights, attributes.as_deref()).map_err(js_err)?;
        let pref = Preference::parse(&backend).map_err(js_err)?;
        let opts = Options { backend: pref, batch: batch.clamp(1, 64) as usize, threads: threads.unwrap_or(0) as usize, ..Options::default() };
        let session = Session::with_probe(model, opts, shared_context()).await.map_err(js_err)?;
        Ok(GlowModel { session: Rc::new(session) })
    }

    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        self.session.model().config.image.width
    }
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        self.session.model().config.image.height
    }
    #[wasm_bindgen(getter)]
    pub fn channels(&self) -> u32 {
        self.session.model().config.image.channels
    }
    /// Values per image in eps (H * W * channels).
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> u32 {
        self.session.dim() as u32
    }
    #[wasm_bindgen(getter)]
    pub fn levels(&self) -> u32 {
        self.session.model().config.levels
    }
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.session.model().config.name.clone()
    }
    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.session.backend() {
            Backend::Gpu => "webgpu".into(),
            Backend::Cpu => "cpu".into(),
        }
    }
    /// Why this backend runs the model (from `Backend::choose`).
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.session.reason().to_string()
    }
    /// How the GPU engine stores the convs' weights, "f16" or "f32" (`auto`: f16 when the
    /// model's weights are f16 values), with the bytes of its parameter buffers; null on the
    /// CPU engine.
    #[wasm_bindgen(getter, js_name = gpuWeights)]
    pub fn gpu_weights(&self) -> Option<String> {
        self.session.engine().gpu().map(|g| format!("{} ({} bytes)", g.weights().format.name(), g.weights().bytes))
    }
    /// The adapter or CPU the engine runs on.
    #[wasm_bindgen(getter, js_name = adapterInfo)]
    pub fn adapter_info(&self) -> String {
        self.session.device()
    }
    /// Attribute names: the shipped ones, then the taught ones.
    #[wasm_bindgen(getter, js_name = attributeNames)]
    pub fn attribute_names(&self) -> Array {
        self.session.attribute_names().iter().map(|n| JsValue::from_str(n)).collect()
    }
    /// `[offset0, length0, offset1, length1, ...]`: each level's latent in one eps.
    #[wasm_bindgen(getter, js_name = levelLayout)]
    pub fn level_layout(&self) -> Uint32Array {
        let v: Vec<u32> = self.session.layout().iter().flat_map(|&(o, l)| [o as u32, l as u32]).collect();
        Uint32Array::from(v.as_slice())
    }

    /// The latents `sample(n, temperature, seed, perLevel)` decodes, scaled by the
    /// temperatures: decode them at temperature 1 to show the same faces.
    #[wasm_bindgen(js_name = sampleEps)]
    pub fn sample_eps(&self, n: u32, seed: u32, temperature: f32, per_level: Option<Vec<f32>>) -> Result<Float32Array, JsValue> {
        let t = temps(&self.session, temperature, per_level)?;
        let eps = self.session.sample_eps(n as usize, seed, &t).map_err(js_err)?;
        Ok(Float32Array::from(eps.as_slice()))
    }

    /// Samples `n` images (RGBA, n * H * W * 4 bytes). `perLevel`, if given, holds one
    /// temperature per level and overrides `temperature`.
    pub async fn sample(&self, n: u32, temperature: f32, seed: u32, per_level: Option<Vec<f32>>) -> Result<Uint8ClampedArray, JsValue> {
        let s = self.session.clone();
        let t = temps(&s, temperature, per_level)?;
        let rgba = s.sample(n as usize, &t, seed, false).await.map_err(js_err)?;
        Ok(Uint8ClampedArray::from(rgba.as_slice()))
    }

    /// Decodes eps (n * dim values) to RGBA images at `temperature` (or per level);
    /// `quantize` floors to the model's n_bits levels (OpenAI's postprocess).
    pub async fn decode(&self, eps: Vec<f32>, n: u32, temperature: f32, per_level: Option<Vec<f32>>, quantize: Option<bool>) -> Result<Uint8ClampedArray, JsValue> {
        let s = self.session.clone();
        let t = temps(&s, temperature, per_level)?;
        let rgba = s.decode(&eps, n as usize, &t, quantize.unwrap_or(false)).await.map_err(js_err)?;
        Ok(Uint8ClampedArray::from(rgba.as_slice()))
    }

    /// Encodes `n` RGBA images of the model's size: `{eps: Float32Array, bitsPerDim:
    /// Float64Array}` (bits/dim at the bin centre).
    pub async fn encode(&self, rgba: Vec<u8>, n: u32) -> Result<Object, JsValue> {
        let s = self.session.clone();
        let enc = s.encode(&rgba, n as usize).await.map_err(js_err)?;
        let o = Object::new();
        set(&o, "eps", &Float32Array::from(enc.eps.as_slice()))?;
        set(&o, "bitsPerDim", &Float64Array::from(enc.bits_per_dim.as_slice()))?;
        Ok(o)
    }

    /// Bits/dim of `n` RGBA images both ways: `{binCentre, dequantized, draws}` (the
    /// dequantized figure is the mean over `draws` seeded noise draws, 4 by default).
    #[wasm_bindgen(js_name = bitsPerDim)]
    pub async fn bits_per_dim(&self, rgba: Vec<u8>, n: u32, draws: Option<u32>, seed: Option<u32>) -> Result<Object, JsValue> {
        let s = self.session.clone();
        let b = s.bits_per_dim(&rgba, n as usize, draws.unwrap_or(4), seed.unwrap_or(0)).await.map_err(js_err)?;
        let o = Object::new();
        set(&o, "binCentre", &Float64Array::from(b.bin_centre.as_slice()))?;
        set(&o, "dequantized", &Float64Array::from(b.dequantized.as_slice()))?;
        set(&o, "draws", &JsValue::from(b.draws))?;
        Ok(o)
    }

    /// One face's eps moved by `amounts[i]` along attribute `i` (shipped, then taught).
    pub fn manipulate(&self, eps: Vec<f32>, amounts: Vec<f32>) -> Result<Float32Array, JsValue> {
        Ok(Float32Array::from(self.session.manipulate(&eps, &amounts).map_err(js_err)?.as_slice()))
    }

    /// `steps` eps from `a` to `b`, both included; `path` "linear" (default) or
    /// "spherical" (keeps the latents' norm, so every frame looks like a sample).
    pub fn interpolate(&self, a: Vec<f32>, b: Vec<f32>, steps: u32, path: Option<String>) -> Result<Float32Array, JsValue> {
        let path = Path::parse(path.as_deref().unwrap_or("linear")).map_err(js_err)?;
        Ok(Float32Array::from(self.session.interpolate(&a, &b, steps as usize, path).map_err(js_err)?.as_slice()))
    }

    /// The point at `t` (0 = a, 1 = b) on the path from `a` to `b` ("linear" default, or
    /// "spherical").
    pub fn mix(&self, a: Vec<f32>, b: Vec<f32>, t: f32, path: Option<String>) -> Result<Float32Array, JsValue> {
        let path = Path::parse(path.as_deref().unwrap_or("linear")).map_err(js_err)?;
        Ok(Float32Array::from(self.session.mix(&a, &b, t, path).map_err(js_err)?.as_slice()))
    }

    /// Teaches a direction from eps with and without an attribute (whole eps vectors,
    /// concatenated): it joins `attributeNames` under `name`, scaled like the shipped
    /// directions. Returns its index in the amounts of `manipulate`.
    #[wasm_bindgen(js_name = teachDirection)]
    pub fn teach_direction(&self, name: String, with: Vec<f32>, without: Vec<f32>) -> Result<u32, JsValue> {
        self.session.teach(&name, &with, &without).map(|i| i as u32).map_err(js_err)
    }

    /// Forgets a taught direction.
    #[wasm_bindgen(js_name = forgetDirection)]
    pub fn forget_direction(&self, name: String) -> Result<(), JsValue> {
        self.session.forget(&name).map_err(js_err)
    }

    /// What the model sees of an RGBA image: each value floored to n_bits, shown at its
    /// bin centre.
    #[wasm_bindgen(js_name = quantizeInput)]
    pub fn quantize_input(&self, rgba: Vec<u8>) -> Uint8ClampedArray {
        Uint8ClampedArray::from(self.session.quantize_input(&rgba).as_slice())
    }

    /// Times every dispatch of a decode (`decode` true: random latents at T = 0.7) or an
    /// encode with WebGPU timestamp queries, one compute pass per dispatch, each dispatch's
    /// best of `passes` calls, and returns the JSON text of their sum per level and layer
    /// (as `glow bench --profile` prints it), or null on the CPU engine or where the adapter
    /// has no `timestamp-query` feature. Browsers may coarsen these timestamps.
    pub async fn profile(&self, decode: bool, passes: u32) -> Result<JsValue, JsValue> {
        let s = self.session.clone();
        let Some(g) = s.engine().gpu() else { return Ok(JsValue::NULL) };
        let passes = passes.clamp(1, 10) as usize;
        let Some(times) = g.profile(decode, passes).await.map_err(js_err)? else { return Ok(JsValue::NULL) };
        Ok(JsValue::from_str(&crate::engine::gpu::profile_summary(&times, None, passes).to_string()))
    }

    /// Times the adapter's matmul limit and this model's level-0 conv classes at `batch`
    /// images, as `glow bench --kernels` does natively. JSON text, or null on the CPU
    /// engine. Takes seconds to minutes on a software adapter.
    #[wasm_bindgen(js_name = benchKernels)]
    pub async fn bench_kernels(&self, batch: u32) -> Result<JsValue, JsValue> {
        let s = self.session.clone();
        let Some(g) = s.engine().gpu() else { return Ok(JsValue::NULL) };
        let v = crate::engine::kernel_bench::conv_classes(g.context(), s.model(), batch.clamp(1, 64) as usize, g.weights().format).await.map_err(js_err)?;
        Ok(JsValue::from_str(&v.to_string()))
    }
}

/// Face detection and alignment for the page's photos (`crate::face`: face-api's tiny face
/// detector and 68-point landmark net, ported). Loaded once, on the first photo.
#[wasm_bindgen]
pub struct FaceFinder {
    models: crate::face::FaceModels,
}

fn point(p: [f64; 2]) -> Float64Array {
    Float64Array::from(&p[..])
}

#[wasm_bindgen]
impl FaceFinder {
    /// Loads the two nets from their safetensors files (models/face/).
    pub fn load(detector: Vec<u8>, landmarks: Vec<u8>) -> Result<FaceFinder, JsValue> {
        Ok(FaceFinder { models: crate::face::FaceModels::from_bytes(&detector, &landmarks).map_err(js_err)? })
    }

    /// The faces in an RGBA image, largest first: `{box: [x, y, w, h], score, leftEye,
    /// rightEye, mouth, transform}`. `template` is a model's `align` block and size,
    /// `[lx, ly, rx, ry, mx, my, width, height]`; with it, `transform` is the similarity
    /// `[a, b, tx, ty]` (`q = [a -b; b a] p + t`) taking image pixels onto it, else null.
    pub fn find(&self, rgba: Vec<u8>, width: u32, height: u32, template: Option<Vec<f64>>) -> Result<Array, JsValue> {
        use crate::face::{Image, Template};
        let img = Image::new(&rgba, width, height, 4).map_err(js_err)?;
        let template = match template.as_deref() {
            None => None,
            Some([lx, ly, rx, ry, mx, my, w, h]) => {
                let t = Template { left_eye: [*lx, *ly], right_eye: [*rx, *ry], mouth: [*mx, *my], width: *w as usize, height: *h as usize };
                t.check().map_err(js_err)?;
                Some(t)
            }
            Some(t) => return Err(js_err(GlowError::Input(format!("a template has 8 numbers, got {}", t.len())))),
        };
        let mut found = self.models.find_faces(&img);
        found.sort_by(|a, b| (b.face.bbox[2] * b.face.bbox[3]).total_cmp(&(a.face.bbox[2] * a.face.bbox[3])));
        let out = Array::new();
        for f in found {
            let o = Object::new();
            set(&o, "box", &Float64Array::from(&f.face.bbox[..]))?;
            set(&o, "score", &JsValue::from(f.face.score))?;
            set(&o, "leftEye", &point(f.landmarks.left_eye()))?;
            set(&o, "rightEye", &point(f.landmarks.right_eye()))?;
            set(&o, "mouth", &point(f.landmarks.mouth()))?;
            let t = match &template {
                Some(t) => JsValue::from(Float64Array::from(&t.transform_for(&f.landmarks).map_err(js_err)?.to_array()[..])),
                None => JsValue::NULL,
            };
            set(&o, "transform", &t)?;
            out.push(&o);
        }
        Ok(out)
    }
}

/// The crop a similarity `[a, b, tx, ty]` (image pixels -> crop pixels) defines, resampled
/// from an RGBA image with antialiasing (crate::face::aligned_crop): RGBA, out_width x
/// out_height; what lies outside the image is black.
#[wasm_bindgen(js_name = alignedCrop)]
pub fn aligned_crop(rgba: Vec<u8>, width: u32, height: u32, transform: Vec<f64>, out_width: u32, out_height: u32) -> Result<Uint8ClampedArray, JsValue> {
    use crate::face::{Image, Similarity};
    let img = Image::new(&rgba, width, height, 4).map_err(js_err)?;
    let t: [f64; 4] = transform
        .as_slice()
        .try_into()
        .map_err(|_| js_err(GlowError::Input(format!("a transform has 4 numbers, got {}", transform.len()))))?;
    let t = Similarity::from_array(t).map_err(js_err)?;
    if !(1..=4096).contains(&out_width) || !(1..=4096).contains(&out_height) {
        return Err(js_err(GlowError::Input(format!("crop {out_width}x{out_height} must be 1 to 4096 pixels a side"))));
    }
    let px = crate::face::aligned_crop(&img, &t, out_width as usize, out_height as usize);
    Ok(Uint8ClampedArray::from(px.as_slice()))
}

/// The threaded build (`pkg-mt/`, shared memory) only: what the engine worker needs to start
/// the CPU engine's helper workers (www/glow/engine-worker.js, thread-worker.js). Each
/// helper instantiates `threadModule()` on `threadMemory()` and calls `threadHelper()`,
/// which never returns; the engine made after that uses every helper that has started.
#[cfg(target_feature = "atomics")]
mod threads {
    use crate::engine::cpu::threads;
    use wasm_bindgen::prelude::*;

    /// This module, compiled (to instantiate in a helper worker).
    #[wasm_bindgen(js_name = threadModule)]
    pub fn thread_module() -> JsValue {
        wasm_bindgen::module()
    }

    /// The shared memory (a `WebAssembly.Memory` over a SharedArrayBuffer).
    #[wasm_bindgen(js_name = threadMemory)]
    pub fn thread_memory() -> JsValue {
        wasm_bindgen::memory()
    }

    /// A helper worker's whole life: waits for parts of the engine's work and does them.
    /// Never returns; only a trap ends it, and then the worker calls `threadHelperLost`.
    #[wasm_bindgen(js_name = threadHelper)]
    pub fn thread_helper() {
        threads::wasm_help()
    }

    /// How many helper workers are running.
    #[wasm_bindgen(js_name = threadHelpers)]
    pub fn thread_helpers() -> u32 {
        threads::wasm_helpers() as u32
    }

    /// A helper's `threadHelper` ended with an error: the engine stops counting on it (a
    /// call that waits for one of its parts fails instead of waiting forever).
    #[wasm_bindgen(js_name = threadHelperLost)]
    pub fn thread_helper_lost() {
        threads::wasm_helper_lost()
    }
}
