//! wasm-bindgen glue over the `Session` and the face module, and nothing else: the
//! `GlowModel` class the page and the `<glow-face>` widget use, and `FaceAligner` (face
//! detection, landmarks and alignment to a model's template). Every method returns a JS
//! `Error` whose `name` is the error's kind (`BadModelFile`, `BadImage`, `BadInput`,
//! `NoAdapter`, `DeviceLost`, `OutOfMemory`, `GpuError`, `Busy`), never a panic.

use crate::error::GlowError;
use crate::face::{FaceModels, FoundFace, Image, Similarity, Template};
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
    /// "webgpu") or "cpu". `batch` is the GPU plan's images per dispatch.
    pub async fn load(config_json: String, weights: Vec<u8>, attributes: Option<Vec<u8>>, backend: String, batch: u32) -> Result<GlowModel, JsValue> {
        let model = Model::from_bytes(&config_json, &weights, attributes.as_deref()).map_err(js_err)?;
        let pref = Preference::parse(&backend).map_err(js_err)?;
        let opts = Options { backend: pref, batch: batch.clamp(1, 64) as usize };
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

    /// Where this model wants the eyes and the mouth (model.json `align`): `{leftEye: [x, y],
    /// rightEye, mouth, width, height, measuredOn}` in its image frame (pixels), or null when
    /// the model has no template (then the page's manual crop box is the way in). Pass it to
    /// `FaceAligner.alignedCrop` / `alignFace`.
    #[wasm_bindgen(getter, js_name = alignTemplate)]
    pub fn align_template(&self) -> Result<JsValue, JsValue> {
        let c = &self.session.model().config;
        let Some(a) = &c.align else { return Ok(JsValue::NULL) };
        let o = Object::new();
        set(&o, "leftEye", &pair(a.left_eye))?;
        set(&o, "rightEye", &pair(a.right_eye))?;
        set(&o, "mouth", &pair(a.mouth))?;
        set(&o, "width", &JsValue::from(c.image.width))?;
        set(&o, "height", &JsValue::from(c.image.height))?;
        set(&o, "measuredOn", &a.measured_on.map_or(JsValue::NULL, |n| JsValue::from(n as f64)))?;
        Ok(o.into())
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
        let v = crate::engine::kernel_bench::conv_classes(g.context(), s.model(), batch.clamp(1, 64) as usize).await.map_err(js_err)?;
        Ok(JsValue::from_str(&v.to_string()))
    }
}

// ---- faces ----

fn pair(p: [f64; 2]) -> Array {
    [p[0], p[1]].iter().map(|&v| JsValue::from(v)).collect()
}

/// `o[key]` as a number.
fn number(o: &JsValue, key: &str) -> Result<f64, JsValue> {
    Reflect::get(o, &key.into())
        .ok()
        .and_then(|v| v.as_f64())
        .ok_or_else(|| js_err(GlowError::Input(format!("'{key}' must be a number"))))
}

/// `o[key]` as `[x, y]` (an array or typed array of two numbers).
fn point(o: &JsValue, key: &str) -> Result<[f64; 2], JsValue> {
    let v = Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let x = Reflect::get(&v, &0.into()).ok().and_then(|x| x.as_f64());
    let y = Reflect::get(&v, &1.into()).ok().and_then(|y| y.as_f64());
    match (x, y) {
        (Some(x), Some(y)) if !v.is_undefined() && !v.is_null() => Ok([x, y]),
        _ => Err(js_err(GlowError::Input(format!("'{key}' must be [x, y]")))),
    }
}

/// A template object (as `GlowModel.alignTemplate` gives it), checked.
fn template_from(v: &JsValue) -> Result<Template, JsValue> {
    if !v.is_object() {
        return Err(js_err(GlowError::Input("the template must be an object like GlowModel.alignTemplate (this model has none?)".into())));
    }
    let size = |key: &str| -> Result<usize, JsValue> {
        let n = number(v, key)?;
        if n.fract() != 0.0 || !(1.0..=4096.0).contains(&n) {
            return Err(js_err(GlowError::Input(format!("template {key} {n} must be a whole number of pixels, 1 to 4096"))));
        }
        Ok(n as usize)
    };
    let t = Template { left_eye: point(v, "leftEye")?, right_eye: point(v, "rightEye")?, mouth: point(v, "mouth")?, width: size("width")?, height: size("height")? };
    t.check().map_err(js_err)?;
    Ok(t)
}

fn face_object(f: &FoundFace) -> Result<Object, JsValue> {
    let o = Object::new();
    let b = f.face.bbox;
    set(&o, "box", &[b[0], b[1], b[2], b[3]].iter().map(|&v| JsValue::from(v)).collect::<Array>())?;
    set(&o, "score", &JsValue::from(f.face.score))?;
    let l = &f.landmarks;
    set(&o, "leftEye", &pair(l.left_eye()))?;
    set(&o, "rightEye", &pair(l.right_eye()))?;
    set(&o, "mouth", &pair(l.mouth()))?;
    let flat: Vec<f32> = l.points.iter().flat_map(|p| [p[0] as f32, p[1] as f32]).collect();
    set(&o, "landmarks", &Float32Array::from(flat.as_slice()))?;
    Ok(o)
}

fn crop_object(rgba: &[u8], t: &Similarity, template: &Template) -> Result<Object, JsValue> {
    let o = Object::new();
    set(&o, "rgba", &Uint8ClampedArray::from(rgba))?;
    set(&o, "width", &JsValue::from(template.width as u32))?;
    set(&o, "height", &JsValue::from(template.height as u32))?;
    set(&o, "transform", &Float64Array::from(t.to_array().as_slice()))?;
    set(&o, "rotation", &JsValue::from(t.degrees()))?;
    set(&o, "scale", &JsValue::from(t.scale()))?;
    Ok(o)
}

/// Face detection, 68 landmarks and alignment to a model's template, on the CPU (face-api's
/// tiny detector and tiny landmark net, ported; about 0.2 MB of weights). Images are RGBA
/// (an `ImageData`'s `data`), any size up to 16384 a side and 67 megapixels; points are in
/// the image's pixels, continuous (the image spans `[0, width] x [0, height]`).
#[wasm_bindgen]
pub struct FaceAligner {
    models: FaceModels,
}

#[wasm_bindgen]
impl FaceAligner {
    /// From the bytes of models/face/tiny_face_detector.safetensors and
    /// models/face/face_landmark_68_tiny.safetensors.
    pub fn load(detector: Vec<u8>, landmarks: Vec<u8>) -> Result<FaceAligner, JsValue> {
        Ok(FaceAligner { models: FaceModels::from_bytes(&detector, &landmarks).map_err(js_err)? })
    }

    /// Every face found, highest score first: `[{box: [x, y, w, h], score, leftEye: [x, y],
    /// rightEye, mouth, landmarks: Float32Array(136)}]` (`landmarks`: dlib's 68 points, x
    /// and y interleaved; the eyes and mouth are the means of points 36-41, 42-47, 48-67).
    /// An empty array when there is no face.
    #[wasm_bindgen(js_name = detectFaces)]
    pub fn detect_faces(&self, rgba: Vec<u8>, width: u32, height: u32) -> Result<Array, JsValue> {
        let img = Image::new(&rgba, width, height, 4).map_err(js_err)?;
        self.models.find_faces(&img).iter().map(|f| face_object(f).map(JsValue::from)).collect()
    }

    /// The crop a model takes, cut from the full-resolution image: `face` is one of
    /// `detectFaces`'s faces (its `leftEye`, `rightEye` and `mouth` are fitted to the
    /// template), or `{transform: [a, b, tx, ty]}` (image -> template frame: `x' = a x - b y +
    /// tx`, `y' = b x + a y + ty`, as returned before). `template`: `GlowModel.alignTemplate`.
    /// Returns `{rgba: Uint8ClampedArray, width, height, transform: Float64Array(4), rotation
    /// (degrees), scale}`.
    #[wasm_bindgen(js_name = alignedCrop)]
    pub fn aligned_crop(&self, rgba: Vec<u8>, width: u32, height: u32, face: JsValue, template: JsValue) -> Result<Object, JsValue> {
        let template = template_from(&template)?;
        let img = Image::new(&rgba, width, height, 4).map_err(js_err)?;
        let given = Reflect::get(&face, &"transform".into()).unwrap_or(JsValue::UNDEFINED);
        let t = if !given.is_undefined() && !given.is_null() {
            let v: Vec<f64> = (0..4).map(|i| Reflect::get(&given, &i.into()).ok().and_then(|x| x.as_f64()).unwrap_or(f64::NAN)).collect();
            Similarity::from_array([v[0], v[1], v[2], v[3]]).map_err(js_err)?
        } else {
            template.transform_for_points(&[point(&face, "leftEye")?, point(&face, "rightEye")?, point(&face, "mouth")?]).map_err(js_err)?
        };
        let crop = crate::face::aligned_crop(&img, &t, template.width, template.height);
        crop_object(&crop, &t, &template)
    }

    /// Both in one call (one copy of the photo): the faces, and the best one aligned:
    /// `{faces: [...as detectFaces], crop: {...as alignedCrop} or null when there is no face}`.
    #[wasm_bindgen(js_name = alignFace)]
    pub fn align_face(&self, rgba: Vec<u8>, width: u32, height: u32, template: JsValue) -> Result<Object, JsValue> {
        let template = template_from(&template)?;
        let img = Image::new(&rgba, width, height, 4).map_err(js_err)?;
        let found = self.models.find_faces(&img);
        let o = Object::new();
        let faces: Array = found.iter().map(|f| face_object(f).map(JsValue::from)).collect::<Result<_, _>>()?;
        set(&o, "faces", &faces)?;
        let crop = match found.first() {
            Some(f) => {
                let a = crate::face::align_found(&img, f, &template).map_err(js_err)?;
                crop_object(&a.rgba, &a.transform, &template)?.into()
            }
            None => JsValue::NULL,
        };
        set(&o, "crop", &crop)?;
        Ok(o)
    }
}
