//! Importing OpenAI's released Glow: a TensorFlow frozen `GraphDef` (binary protobuf)
//! becomes one of our model directories (docs/FORMAT.md, "Importing OpenAI's frozen
//! graphs"), and OpenAI's `z_manipulate.npy` becomes its attribute directions.
//!
//! * [`import_openai`] / [`import_openai_bytes`]: graph bytes -> config + weights file +
//!   a report of what was found and how.
//! * [`Imported::add_z_manipulate`]: attach OpenAI's attribute directions.
//! * [`write_model_dir`], [`check_model_dir`] (native): write the directory, then load it
//!   back with the ordinary loader and run the model on a few synthetic images.
//!
//! Memory: with [`import_openai_bytes`] the graph is held once (every tensor is a view
//! into it) and each weight is decoded straight into its slot of the output file, so a
//! 700 MB graph needs about 1.4 GB, not several copies.

pub mod graphdef;
mod openai;
mod writer;

pub use openai::folded_op;

use crate::error::{GlowError, Result};
use crate::model::config::{AttributeSpec, ModelConfig};
use bytes::Bytes;
use serde::Serialize;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Store the weights (and directions) as float16 instead of float32.
    pub f16: bool,
    /// `model.json`'s name; default `openai-glow-<W>x<H>`.
    pub name: Option<String>,
    /// For a class-conditional top prior (`ycond`): the label whose embedding is folded
    /// into the top prior. Not needed when the graph has one class.
    pub label: Option<u32>,
}

/// What the importer found, for the user (printed as JSON by the CLI).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub graph_nodes: usize,
    /// The `GraphDef`'s producer version (TensorFlow's graph version, not its release).
    pub tf_producer: Option<i32>,
    /// The `model.json` written.
    pub config: Option<serde_json::Value>,
    /// `invconv`, `invconv-lu`, `shuffle` or `reverse` (joined with `+` if steps differ).
    pub permutation: String,
    /// Our tensors written, and their total number of values.
    pub tensors: usize,
    pub values: usize,
    pub dtype: String,
    /// Const nodes of the graph that supplied values.
    pub tf_tensors_read: usize,
    /// Variables recovered from constant-folded tensors: `variable <- node (how)`.
    pub from_folded: Vec<String>,
    /// The class label folded into the top prior, for a class-conditional graph.
    pub label: Option<u32>,
    /// Weight-like constants deliberately not used, with the reason.
    pub ignored: Vec<String>,
    pub notes: Vec<String>,
    /// Number of attribute directions attached.
    pub attributes: Option<usize>,
}

/// An imported model, in memory.
pub struct Imported {
    pub config: ModelConfig,
    /// `weights.safetensors`.
    pub weights: Vec<u8>,
    /// `attributes.safetensors`, once directions are attached.
    pub attributes: Option<Vec<u8>>,
    pub report: ImportReport,
}

/// CelebA's 40 attributes in OpenAI's order (`_TAGS` in openai/glow `demo/model.py` and
/// `demo/get_manipulators.py`): the rows of their `z_manipulate.npy`.
pub const CELEBA_ATTRIBUTES: [&str; 40] = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
];

/// Imports a frozen graph from a byte slice. This copies the slice once; use
/// [`import_openai_bytes`] with an owned buffer to avoid that for large graphs.
pub fn import_openai(graph: &[u8], opts: &ImportOptions) -> Result<Imported> {
    import_openai_bytes(Bytes::copy_from_slice(graph), opts)
}

/// Imports a frozen graph; tensor contents stay views into `graph`.
pub fn import_openai_bytes(graph: Bytes, opts: &ImportOptions) -> Result<Imported> {
    let g = graphdef::Graph::decode(graph)?;
    let (config, weights, report) = openai::OpenAiGraph::new(&g).run(opts)?;
    Ok(Imported { config, weights, attributes: None, report })
}

impl Imported {
    /// `model.json`'s text.
    pub fn config_json(&self) -> String {
        let mut v = serde_json::to_value(&self.config).expect("a config always serializes");
        if let Some(m) = v.as_object_mut() {
            m.retain(|_, x| !x.is_null());
        }
        serde_json::to_string_pretty(&v).expect("a value always serializes") + "\n"
    }

    /// Attaches OpenAI's `z_manipulate.npy` (float32 `[n_attributes, D]`, eps space,
    /// the same flattening as ours) as `attributes.safetensors`. `names` default to
    /// CelebA's 40 attributes in OpenAI's order when there are 40 rows. The rows are
    /// stored as in the file: OpenAI's demo page additionally negates `No_Beard` and
    /// `Young` and scales `Narrow_Eyes` by 1.2 for its sliders; that is not done here.
    pub fn add_z_manipulate(&mut self, npy: &[u8], names: Option<Vec<String>>, f16: bool) -> Result<()> {
        let (spec, bytes) = z_manipulate_directions(npy, &self.config, names, f16)?;
        self.report.attributes = Some(spec.names.len());
        self.config.attributes = Some(spec);
        self.attributes = Some(bytes);
        Ok(())
    }
}

/// Converts `z_manipulate.npy` into our attribute spec and `attributes.safetensors`.
pub fn z_manipulate_directions(
    npy: &[u8],
    config: &ModelConfig,
    names: Option<Vec<String>>,
    f16: bool,
) -> Result<(AttributeSpec, Vec<u8>)> {
    let (shape, values) = crate::npy::read_f32(npy).map_err(|e| GlowError::Input(format!("z_manipulate: {e}")))?;
    let d = config.dim();
    let [n, dim] = shape[..] else {
        return Err(GlowError::Input(format!("z_manipulate: shape {shape:?}, expected [n_attributes, {d}]")));
    };
    if dim != d || n == 0 {
        return Err(GlowError::Input(format!(
            "z_manipulate: shape {shape:?}, expected [n_attributes, {d}] (D = {}x{}x{} for this model)",
            config.image.height, config.image.width, config.image.channels
        )));
    }
    let names = match names {
        Some(v) if v.len() == n => v,
        Some(v) => {
            return Err(GlowError::Input(format!("z_manipulate: {n} rows, {} attribute names given", v.len())))
        }
        None if n == CELEBA_ATTRIBUTES.len() => CELEBA_ATTRIBUTES.iter().map(|s| s.to_string()).collect(),
        None => {
            return Err(GlowError::Input(format!(
                "z_manipulate: {n} rows; names are only known for OpenAI's 40 CelebA attributes, give them explicitly"
            )))
        }
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(GlowError::Input(format!("z_manipulate: value {} at row {}, column {} is not finite", values[i], i / d, i % d)));
    }
    let mut w = writer::TensorWriter::new(&[("directions".to_string(), vec![n, d])], f16, &[])?;
    let mut sink = w.sink("directions")?;
    for (i, v) in values.iter().enumerate() {
        sink.put(i, *v as f64);
    }
    sink.done().map_err(|p| GlowError::Input(format!("z_manipulate: {p}")))?;
    let spec = AttributeSpec { file: "attributes.safetensors".into(), names };
    Ok((spec, w.finish()?))
}

/// Writes `model.json`, the weights and (if attached) the attribute directions into
/// `dir`, creating it if needed; existing files of those names are replaced.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_model_dir(dir: &std::path::Path, imported: &Imported) -> Result<()> {
    let io = |p: &std::path::Path, e: std::io::Error| GlowError::Io(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let put = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| io(&p, e))
    };
    put(&imported.config.weights, &imported.weights)?;
    if let (Some(spec), Some(bytes)) = (&imported.config.attributes, &imported.attributes) {
        put(&spec.file, bytes)?;
    }
    put("model.json", imported.config_json().as_bytes())
}

/// What [`check_model_dir`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// What was checked, in words.
    pub checked: String,
    pub images: usize,
    pub bits_per_dim: Vec<f64>,
    /// Largest |decode(encode(x)) - x| over every value, in model units.
    pub max_roundtrip_error: f64,
}

/// Loads a model directory with the ordinary loader (which checks every tensor's
/// presence, dtype, shape and finiteness and folds the model), encodes three synthetic
/// images (a gradient, a checkerboard and seeded noise, at bin centres) on the fast CPU
/// engine, and checks that eps and bits/dim are finite and that decoding eps at T = 1
/// gives back every input value to within half a quantization bin, so the images
/// re-quantize exactly. There is no TensorFlow here to compare against; the golden
/// comparison with OpenAI's own outputs is in tests/import_openai.rs.
#[cfg(not(target_arch = "wasm32"))]
pub fn check_model_dir(dir: &std::path::Path) -> Result<CheckReport> {
    let model = crate::Model::load_dir(dir)?;
    let cfg = model.config.clone();
    let (h, w, c) = (cfg.image.height as usize, cfg.image.width as usize, cfg.image.channels as usize);
    let d = model.dim();
    let n = 3;
    let mut pixels = vec![0u8; n * d];
    let mut state = 0x9e37_79b9u32;
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let i = (y * w + x) * c + ch;
                pixels[i] = ((x * 255 / (w - 1).max(1) + ch * 40) % 256) as u8;
                pixels[d + i] = if (x / 2 + y / 2 + ch) % 2 == 0 { 255 } else { 0 };
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                pixels[2 * d + i] = (state >> 24) as u8;
            }
        }
    }
    let n_bins = (1u32 << cfg.n_bits) as f32;
    let step = (1u32 << (8 - cfg.n_bits)) as f32;
    let x: Vec<f32> = pixels.iter().map(|&p| (p as f32 / step).floor() / n_bins - 0.5 + 0.5 / n_bins).collect();
    let opts = crate::Options { backend: crate::Preference::Cpu, batch: 1, ..Default::default() };
    let session = pollster::block_on(crate::Session::new(model, opts))?;
    let enc = pollster::block_on(session.encode_x(&x, n))?;
    if let Some(i) = enc.eps.iter().position(|v| !v.is_finite()) {
        return Err(GlowError::Weights(format!("check: eps value {i} of the synthetic images is {}", enc.eps[i])));
    }
    if let Some(b) = enc.bits_per_dim.iter().find(|b| !b.is_finite()) {
        return Err(GlowError::Weights(format!("check: bits/dim of a synthetic image is {b}")));
    }
    let temps = vec![1.0; cfg.levels as usize];
    let back = pollster::block_on(session.decode_x(&enc.eps, n, &temps))?;
    let mut max_err = 0f64;
    for (i, (a, b)) in x.iter().zip(&back).enumerate() {
        let e = (*a as f64 - *b as f64).abs();
        if e.is_nan() || e >= 0.5 / n_bins as f64 {
            return Err(GlowError::Weights(format!(
                "check: decode(encode(x)) differs from x by {e} at value {i} of synthetic image {} (more than half a bin): the model is not invertible as imported",
                i / d
            )));
        }
        max_err = max_err.max(e);
    }
    Ok(CheckReport {
        checked: "reloaded with Model::load_dir (every tensor's presence, dtype, shape, finiteness; W invertible), encoded 3 synthetic images on the CPU engine: eps and bits/dim finite, decode(eps) at T=1 re-quantizes to the input".into(),
        images: n,
        bits_per_dim: enc.bits_per_dim,
        max_roundtrip_error: max_err,
    })
}

/// The whole conversion the CLI runs: read the graph (held once), import it, attach
/// `z_manipulate.npy` if given, write the directory, then [`check_model_dir`] it.
/// Returns the import report and the check as JSON.
#[cfg(not(target_arch = "wasm32"))]
pub fn convert_file(
    graph: &std::path::Path,
    out: &std::path::Path,
    opts: &ImportOptions,
    z_manipulate: Option<&std::path::Path>,
) -> Result<serde_json::Value> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| GlowError::Io(format!("{}: {e}", p.display())));
    let mut imported = import_openai_bytes(Bytes::from(read(graph)?), opts)?;
    if let Some(z) = z_manipulate {
        imported.add_z_manipulate(&read(z)?, None, opts.f16)?;
    }
    write_model_dir(out, &imported)?;
    let Imported { report, .. } = imported;
    let check = check_model_dir(out).map_err(|e| {
        GlowError::Weights(format!("{} was written, but checking it failed: {e}", out.display()))
    })?;
    Ok(serde_json::json!({"out": out, "import": report, "check": check}))
}
