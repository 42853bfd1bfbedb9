//! Maps a frozen graph made by OpenAI's Glow code (openai/glow `model.py`, `tfops.py`)
//! onto our model directory: infers the configuration from the graph, checks it for
//! consistency, and finds every model variable, either as the `Const` that
//! `convert_variables_to_constants` leaves under the variable's own name, or as a
//! constant that TensorFlow's constant folding derived from it (`<op>/_N__cf__M`), which
//! is inverted when the op is one this importer knows. Everything else is refused with
//! the node's name.
//!
//! Only the encoder (name scope `model/`) is read: it uses every variable, and the
//! decoder (`model_1/`) reads the same ones. Op names under `model/` are those OpenAI's
//! code gives them (`actnorm_scale/mul` = 3 * logs, `actnorm_scale/Exp` = exp(3 * logs),
//! `invconv/Reshape` = W as [1, 1, C, C], ...); in the decoder the same names mean other
//! things (`Exp` there is exp(-3 * logs)), so folded decoder constants are never used.

use super::graphdef::{dtype, ConstTensor, Graph, NodeDef};
use super::writer::{Sink, TensorWriter};
use super::{ImportOptions, ImportReport};
use crate::error::{GlowError, Result};
use crate::model::config::{Coupling, ImageSpec, ModelConfig};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

const SCOPE: &str = "model";
const IMAGE_INPUT: &str = "input/image";
const DOWNSAMPLED_INPUT: &str = "input/downsampled_image";
/// OpenAI's `logscale_factor`: stored log-scales are multiplied by 3 before `exp`.
const LOGSCALE: f64 = 3.0;
/// Leaf names of the variables OpenAI's code creates (tfops.py, model.py).
/// The LU-decomposed invconv's variables (model.py's `invertible_1x1_conv`, else-branch).
const LU_VARIABLES: [&str; 5] = ["P", "L", "U", "sign_S", "log_S"];
const VARIABLE_LEAVES: &[&str] =
    &["W", "b", "logs", "indices", "indices_inverse", "P", "L", "U", "sign_S", "log_S", "s", "embedding"];

fn refuse(node: &str, problem: impl Into<String>) -> GlowError {
    GlowError::tensor(node, problem)
}

/// A problem with a node that is not a weight.
fn node_err(node: &str, problem: impl Into<String>) -> GlowError {
    GlowError::Input(format!("graph: node '{node}': {}", problem.into()))
}

fn graph_err(msg: String) -> GlowError {
    GlowError::Input(format!("graph: {msg}"))
}

/// What a tensor found in the graph is, relative to the variable wanted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Inverse {
    /// The variable's values (the variable, its `/read`, or a reshape of it).
    Same,
    /// `LOGSCALE * v`: divide by the factor.
    Scaled,
    /// `exp(LOGSCALE * v)`: `ln(x) / LOGSCALE`.
    ExpScaled,
}

impl Inverse {
    fn describe(self) -> &'static str {
        match self {
            Inverse::Same => "the values themselves",
            Inverse::Scaled => "3 * logs, divided by 3",
            Inverse::ExpScaled => "exp(3 * logs), inverted as ln(v) / 3",
        }
    }
}

/// How a variable is used in the encoder, which decides the folded forms it can take.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Plain,
    /// A log-scale applied as `exp(3 * logs)` (actnorm_scale, conv2d_zeros, linear_zeros).
    LogScale,
    /// `invconv/W`, reshaped to `[1, 1, C, C]` for the conv.
    InvconvW,
}

/// A variable located in the graph.
struct Found<'g> {
    tensor: ConstTensor<'g>,
    inverse: Inverse,
    /// A folded `invconv/Reshape`: shape `[1, 1, C, C]`.
    reshaped: bool,
}

impl Found<'_> {
    /// Streams the variable's values (after inversion) into `out(i, v)`.
    fn for_each(&self, var: &str, mut out: impl FnMut(usize, f64)) -> Result<()> {
        let mut bad: Option<(usize, f64)> = None;
        let inv = self.inverse;
        self.tensor.for_each_float(|i, x| {
            let v = match inv {
                Inverse::Same => x,
                Inverse::Scaled => x / LOGSCALE,
                Inverse::ExpScaled => x.ln() / LOGSCALE,
            };
            if !v.is_finite() && bad.is_none() {
                bad = Some((i, x));
            }
            out(i, v);
        })?;
        if let Some((i, x)) = bad {
            return Err(refuse(
                self.tensor.node,
                format!("value {x} at index {i} gives a non-finite value for '{var}' ({})", inv.describe()),
            ));
        }
        Ok(())
    }

    fn values(&self, var: &str) -> Result<Vec<f64>> {
        let mut v = vec![0f64; self.tensor.len()];
        self.for_each(var, |i, x| v[i] = x)?;
        Ok(v)
    }
}

/// `<op>/_N__cf__M` -> `<op>`.
pub fn folded_op(name: &str) -> Option<&str> {
    let (op, tail) = name.rsplit_once('/')?;
    let rest = tail.strip_prefix('_')?;
    let (n, m) = rest.split_once("__cf__")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(n) && digits(m)).then_some(op)
}

fn parent(name: &str) -> &str {
    name.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn leaf(name: &str) -> &str {
    name.rsplit_once('/').map(|(_, l)| l).unwrap_or(name)
}

/// The graph with the lookups the mapping needs.
pub struct OpenAiGraph<'g> {
    g: &'g Graph,
    /// Folded constants by the op they replaced.
    folded: HashMap<&'g str, Vec<&'g NodeDef>>,
    /// Const nodes that supplied a variable.
    used: HashSet<String>,
    report: ImportReport,
}

/// What each flow step permutes its channels with.
#[derive(Clone, Debug, PartialEq)]
enum Permutation {
    Invconv,
    /// model.py's LU-decomposed invconv: `W = P (L + I) (U + diag(sign_S * exp(log_S)))`.
    Lu,
    Shuffle(Vec<usize>),
    Reverse,
}

impl Permutation {
    fn kind(&self) -> &'static str {
        match self {
            Permutation::Invconv => "invconv",
            Permutation::Lu => "invconv-lu",
            Permutation::Shuffle(_) => "shuffle",
            Permutation::Reverse => "reverse",
        }
    }
}

/// The top prior's class embedding (ycond), folded for one label.
struct LabelEmbedding {
    values: Vec<f64>,
}

/// Everything inferred from the graph before any weight is copied.
struct Plan {
    config: ModelConfig,
    permutations: Vec<Vec<Permutation>>,
    /// OpenAI's `learntop`: `model/prior/p/*` exist.
    has_top_conv: bool,
    label: Option<LabelEmbedding>,
}

impl<'g> OpenAiGraph<'g> {
    pub fn new(g: &'g Graph) -> Self {
        let mut folded: HashMap<&str, Vec<&NodeDef>> = HashMap::new();
        for n in g.nodes() {
            if n.op == "Const" {
                if let Some(op) = folded_op(&n.name) {
                    folded.entry(op).or_default().push(n);
                }
            }
        }
        let report = ImportReport {
            graph_nodes: g.nodes().len(),
            tf_producer: g.def.versions.as_ref().map(|v| v.producer),
            ..Default::default()
        };
        OpenAiGraph { g, folded, used: HashSet::new(), report }
    }

    /// Finds variable `var` (a TF variable name) or a folded tensor it can be recovered
    /// from. `Ok(None)` when there is no trace of it.
    fn find(&self, var: &str, kind: Kind) -> Result<Option<(Found<'g>, String)>> {
        if let Some(n) = self.g.node(var) {
            if n.op != "Const" {
                return Err(refuse(
                    var,
                    format!(
                        "is a '{}' op, not a Const: the graph is not frozen (run convert_variables_to_constants first)",
                        n.op
                    ),
                ));
            }
            let found = Found { tensor: ConstTensor::of(n)?, inverse: Inverse::Same, reshaped: false };
            return Ok(Some((found, var.to_string())));
        }
        let scope = parent(var);
        let mut candidates = vec![(format!("{var}/read"), Inverse::Same, false)];
        match kind {
            Kind::Plain => {}
            Kind::LogScale => {
                candidates.push((format!("{scope}/mul"), Inverse::Scaled, false));
                candidates.push((format!("{scope}/Exp"), Inverse::ExpScaled, false));
            }
            Kind::InvconvW => candidates.push((format!("{scope}/Reshape"), Inverse::Same, true)),
        }
        for (op, inverse, reshaped) in candidates {
            if let Some(nodes) = self.folded.get(op.as_str()) {
                if nodes.len() > 1 {
                    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                    return Err(refuse(
                        &nodes[0].name,
                        format!("'{op}' was folded into {} constants ({}); which one holds '{var}' is ambiguous", nodes.len(), names.join(", ")),
                    ));
                }
                let n = nodes[0];
                let how = format!("{var} <- {} ({})", n.name, inverse.describe());
                return Ok(Some((Found { tensor: ConstTensor::of(n)?, inverse, reshaped }, how)));
            }
        }
        Ok(None)
    }

    /// Like `find`, but a missing variable is an error naming it (and any folded
    /// constants in its scope that could not be inverted). Checks the shape the graph
    /// holds against `shape` (the variable's shape; `[1, 1, C, C]` for a folded reshape).
    fn require(&mut self, var: &str, kind: Kind, shape: &[usize], ours: &str) -> Result<Found<'g>> {
        let Some((found, how)) = self.find(var, kind)? else {
            return Err(self.missing(var, ours));
        };
        let want: Vec<usize> = if found.reshaped { [&[1, 1][..], shape].concat() } else { shape.to_vec() };
        if found.tensor.shape != want {
            return Err(refuse(
                found.tensor.node,
                format!("has shape {:?}, expected {want:?} (for {ours}, from the other tensors of the graph)", found.tensor.shape),
            ));
        }
        if !matches!(found.tensor.dtype, dtype::FLOAT | dtype::DOUBLE | dtype::HALF) {
            return Err(refuse(found.tensor.node, format!("has dtype {}, expected float32", dtype::name(found.tensor.dtype))));
        }
        if found.tensor.node != var {
            self.report.from_folded.push(how);
        }
        self.used.insert(found.tensor.node.to_string());
        Ok(found)
    }

    fn missing(&self, var: &str, ours: &str) -> GlowError {
        let scope = parent(var);
        let mut near: Vec<&str> = self
            .folded
            .iter()
            .filter(|(op, _)| op.starts_with(&format!("{scope}/")))
            .flat_map(|(_, ns)| ns.iter().map(|n| n.name.as_str()))
            .collect();
        near.sort_unstable();
        let mut msg = format!("missing (needed for {ours}): no Const node of that name and no constant folded from it");
        if !near.is_empty() {
            msg += &format!(
                "; constant folding left only {} in its scope, which this importer cannot invert to the variable",
                near.join(", ")
            );
        }
        refuse(var, msg)
    }

    fn exists(&self, var: &str, kind: Kind) -> Result<bool> {
        Ok(self.find(var, kind)?.is_some())
    }

    /// The int values of a Const (through Identity nodes).
    fn const_ints(&self, name: &str) -> Option<Vec<i64>> {
        let n = self.g.through_identities(self.g.node(name)?);
        ConstTensor::of(n).ok()?.ints().ok()
    }

    fn consumer_op(&self, name: &str, op: &str) -> Option<&'g NodeDef> {
        let g = self.g;
        g.consumers(name).find(|c| c.op == op)
    }

    fn const_scalar(&self, name: &str) -> Option<f64> {
        let n = self.g.through_identities(self.g.node(name)?);
        ConstTensor::of(n).ok()?.scalar().ok()
    }

    // ---- configuration -------------------------------------------------------------

    /// `input/image`: uint8 `[?, H, W, C]`.
    fn image(&self) -> Result<ImageSpec> {
        let n = self.g.node(IMAGE_INPUT).ok_or_else(|| {
            graph_err(format!("no '{IMAGE_INPUT}' placeholder: not a graph frozen from OpenAI's Glow code (model.py names its input so)"))
        })?;
        if n.op != "Placeholder" {
            return Err(node_err(IMAGE_INPUT, format!("is a '{}' op, expected a Placeholder", n.op)));
        }
        if let Some(t) = n.attr_type("dtype") {
            if t != dtype::UINT8 {
                return Err(node_err(IMAGE_INPUT, format!("has dtype {}, expected uint8", dtype::name(t))));
            }
        }
        let dims = n
            .attr_shape("shape")
            .and_then(|s| s.partial_dims())
            .ok_or_else(|| node_err(IMAGE_INPUT, "has no shape attribute, so the image size is unknown"))?;
        match dims.as_slice() {
            [_, Some(h), Some(w), Some(c)] if *c == 1 || *c == 3 => {
                Ok(ImageSpec { height: *h as u32, width: *w as u32, channels: *c as u32 })
            }
            _ => Err(node_err(IMAGE_INPUT, format!("has shape {dims:?}, expected [?, H, W, 1 or 3]"))),
        }
    }

    /// `n_bits`, read off the preprocessing `floor(x / 2^(8 - n_bits)) / 2^n_bits - 0.5`
    /// that follows the image's Cast (OpenAI's `preprocess`).
    fn n_bits(&self) -> Result<u32> {
        let cast = self
            .g
            .consumers(IMAGE_INPUT)
            .find(|n| n.op == "Cast" && n.name.starts_with(&format!("{SCOPE}/")))
            .ok_or_else(|| node_err(IMAGE_INPUT, format!("no Cast of it under '{SCOPE}/': cannot find OpenAI's preprocessing")))?;
        let divisor = |n: &NodeDef| -> Option<f64> {
            if n.op != "RealDiv" {
                return None;
            }
            let (y, _) = n.data_inputs().nth(1)?;
            self.const_scalar(y)
        };
        let div1 = self
            .consumer_op(&cast.name, "RealDiv")
            .ok_or_else(|| node_err(&cast.name, "is not followed by a division: unknown preprocessing"))?;
        let d1 = divisor(div1).ok_or_else(|| node_err(&div1.name, "does not divide by a constant: unknown preprocessing"))?;
        let (n_bins, step) = match self.consumer_op(&div1.name, "Floor") {
            Some(floor) => {
                let div2 = self
                    .consumer_op(&floor.name, "RealDiv")
                    .ok_or_else(|| node_err(&floor.name, "is not followed by a division by 2^n_bits: unknown preprocessing"))?;
                let d2 = divisor(div2).ok_or_else(|| node_err(&div2.name, "does not divide by a constant"))?;
                (d2, d1)
            }
            None => (d1, 1.0),
        };
        let n_bits = n_bins.log2().round();
        if !(1.0..=8.0).contains(&n_bits) || 2f64.powf(n_bits) != n_bins || step * n_bins != 256.0 {
            return Err(node_err(
                &div1.name,
                format!("preprocessing divides by {step} and then by {n_bins}: not floor(x / 2^(8-n)) / 2^n for any n_bits in 1..=8"),
            ));
        }
        if let Some(max) = self.const_scalar(&format!("{SCOPE}/random_uniform/max")) {
            if (max - 1.0 / n_bins).abs() > 1e-9 {
                return Err(node_err(
                    &format!("{SCOPE}/random_uniform/max"),
                    format!("dequantization noise is U(0, {max}), expected U(0, 1/{n_bins}) for n_bits = {n_bits}"),
                ));
            }
        }
        Ok(n_bits as u32)
    }

    /// Levels and steps: the `model/{level}/{step}/` scopes.
    fn levels_and_steps(&self) -> Result<(u32, u32)> {
        let mut found: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for n in self.g.nodes() {
            let mut parts = n.name.split('/');
            if parts.next() != Some(SCOPE) {
                continue;
            }
            let (Some(l), Some(k), Some(_)) = (parts.next(), parts.next(), parts.next()) else { continue };
            if let (Ok(l), Ok(k)) = (l.parse::<usize>(), k.parse::<usize>()) {
                found.entry(l).or_default().insert(k);
            }
        }
        let levels = found.len();
        if levels == 0 {
            return Err(graph_err(format!(
                "no flow steps under '{SCOPE}/<level>/<step>/': not a graph frozen from OpenAI's Glow code"
            )));
        }
        if found.keys().copied().ne(0..levels) {
            let ls: Vec<usize> = found.keys().copied().collect();
            return Err(graph_err(format!("the levels under '{SCOPE}/' are {ls:?}, not 0..{levels}: truncated or edited graph?")));
        }
        let steps = found[&0].len();
        for (l, ks) in &found {
            if ks.iter().copied().ne(0..steps) {
                let ks: Vec<usize> = ks.iter().copied().collect();
                return Err(graph_err(format!(
                    "level {l} has steps {ks:?} under '{SCOPE}/{l}/', level 0 has 0..{steps}: every level must have the same depth"
                )));
            }
        }
        Ok((levels as u32, steps as u32))
    }

    fn permutation(&self, l: usize, k: usize, c: usize) -> Result<Permutation> {
        let s = format!("{SCOPE}/{l}/{k}");
        // A W (or its folded reshape, which the LU form also ends in) is taken as it is.
        if self.exists(&format!("{s}/invconv/W"), Kind::InvconvW)? {
            return Ok(Permutation::Invconv);
        }
        let mut lu_missing = Vec::new();
        for v in LU_VARIABLES {
            if !self.exists(&format!("{s}/invconv/{v}"), Kind::Plain)? {
                lu_missing.push(v);
            }
        }
        match lu_missing.len() {
            0 => return Ok(Permutation::Lu),
            n if n < LU_VARIABLES.len() => {
                let present = LU_VARIABLES.iter().find(|v| !lu_missing.contains(*v)).expect("one is present");
                return Err(refuse(
                    &format!("{s}/invconv/{present}"),
                    format!("an LU-decomposed invconv needs P, L, U, sign_S and log_S; {} missing", lu_missing.join(", ")),
                ));
            }
            _ => {}
        }
        let iv = format!("{s}/shuffle/indices");
        if let Some((found, _)) = self.find(&iv, Kind::Plain)? {
            let idx = found.tensor.ints()?;
            let mut seen = vec![false; c];
            let ok = idx.len() == c
                && idx.iter().all(|&i| (0..c as i64).contains(&i) && !std::mem::replace(&mut seen[i as usize], true));
            if !ok {
                return Err(refuse(found.tensor.node, format!("is not a permutation of 0..{c}: {idx:?}")));
            }
            let idx: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
            let inv_name = format!("{s}/shuffle/indices_inverse");
            if let Some((inv, _)) = self.find(&inv_name, Kind::Plain)? {
                let inv_v = inv.tensor.ints()?;
                if inv_v.len() != c || (0..c).any(|j| inv_v[idx[j]] != j as i64) {
                    return Err(refuse(inv.tensor.node, format!("is not the inverse of {iv}: the decoder would not invert the encoder")));
                }
            }
            return Ok(Permutation::Shuffle(idx));
        }
        // reverse_features: h[:, :, :, ::-1], a StridedSlice in the step's scope with
        // stride -1 on the channel axis.
        for n in self.g.nodes() {
            if n.op == "StridedSlice" && parent(&n.name) == s {
                let strides = n.data_inputs().nth(3).and_then(|(st, _)| self.const_ints(st));
                if let Some(st) = strides {
                    if st.last() == Some(&-1) {
                        if st.len() != 4 || st[..3] != [1, 1, 1] {
                            return Err(node_err(&n.name, format!("slices with strides {st:?}; only a reversal of the channels is supported")));
                        }
                        return Ok(Permutation::Reverse);
                    }
                }
            }
        }
        Err(graph_err(format!(
            "step '{s}' has no invconv/W, no shuffle/indices and no channel reversal: unknown permutation"
        )))
    }

    fn plan(&mut self, opts: &ImportOptions) -> Result<Plan> {
        let image = self.image()?;
        let n_bits = self.n_bits()?;
        let (levels, steps) = self.levels_and_steps()?;
        let c0 = 4 * image.channels as usize;
        // Width and edge channel from the first coupling net.
        let l1 = format!("{SCOPE}/0/0/f1/l_1/W");
        let (f, _) = self.find(&l1, Kind::Plain)?.ok_or_else(|| self.missing(&l1, "L0.S0.f.l1.W"))?;
        let sh = f.tensor.shape.clone();
        if sh.len() != 4 || sh[0] != 3 || sh[1] != 3 {
            return Err(refuse(f.tensor.node, format!("has shape {sh:?}, expected a 3x3 conv [3, 3, C/2 (+1), width]")));
        }
        let edge = match sh[2].checked_sub(c0 / 2) {
            Some(e @ (0 | 1)) => e,
            _ => {
                return Err(refuse(
                    f.tensor.node,
                    format!("has {} input channels; level 0 has C/2 = {} (plus 1 with OpenAI's edge bias)", sh[2], c0 / 2),
                ))
            }
        };
        let width = sh[3];
        let last = format!("{SCOPE}/0/0/f1/l_last/W");
        let (f, _) = self.find(&last, Kind::Plain)?.ok_or_else(|| self.missing(&last, "L0.S0.f.last.W"))?;
        let cf = f.tensor.shape.last().copied().unwrap_or(0);
        let coupling = if cf == c0 / 2 {
            Coupling::Additive
        } else if cf == c0 {
            Coupling::Affine
        } else {
            return Err(refuse(
                f.tensor.node,
                format!("has {cf} output channels: neither C/2 = {} (additive) nor C = {c0} (affine coupling)", c0 / 2),
            ));
        };
        let prior = format!("{SCOPE}/prior/p/W");
        let has_top_conv = self.exists(&prior, Kind::Plain)?;
        let yw = format!("{SCOPE}/prior/y_emb/W");
        let has_label = self.exists(&yw, Kind::Plain)?;
        let name = opts.name.clone().unwrap_or_else(|| format!("openai-glow-{}x{}", image.width, image.height));
        let config = ModelConfig {
            format: "glow-model/1".into(),
            name,
            image,
            n_bits,
            levels,
            steps,
            width: width as u32,
            coupling,
            edge_bias: edge == 1,
            learn_top: has_top_conv || has_label,
            weights: "weights.safetensors".into(),
            attributes: None,
            preprocess: None,
            align: None,
            data: Some(serde_json::json!({
                "source": "imported from a TensorFlow graph frozen by OpenAI's Glow code (glow import-openai)",
                "licence": "not recorded in the graph: the terms under which the graph was published apply (OpenAI's released face model was trained on CelebA-HQ, whose images are for non-commercial research only)"
            })),
        };
        config.validate().map_err(|e| graph_err(format!("the configuration read off the graph is not usable: {e}")))?;
        // Coupling type against the graph's ops: the affine coupling has a Sigmoid.
        let shapes = config.level_shapes();
        let mut permutations = Vec::new();
        for (l, s) in shapes.iter().enumerate() {
            let mut row = Vec::new();
            for k in 0..steps as usize {
                let scope = format!("{SCOPE}/{l}/{k}/");
                let sigmoid = self.g.nodes().iter().find(|n| n.op == "Sigmoid" && parent(&n.name).len() + 1 == scope.len() && n.name.starts_with(&scope));
                match (coupling, sigmoid) {
                    (Coupling::Additive, Some(n)) => {
                        return Err(node_err(&n.name, "a Sigmoid in a step of an additive-coupling graph (f1/l_last has C/2 outputs): inconsistent graph"))
                    }
                    (Coupling::Affine, None) => {
                        return Err(refuse(
                            &format!("{scope}f1/l_last/W"),
                            "has C outputs (affine coupling) but the step has no Sigmoid: inconsistent graph",
                        ))
                    }
                    _ => {}
                }
                row.push(self.permutation(l, k, s.c)?);
            }
            permutations.push(row);
        }
        let kinds: BTreeSet<&str> = permutations.iter().flatten().map(|p| p.kind()).collect();
        self.report.permutation = kinds.into_iter().collect::<Vec<_>>().join("+");
        // The split priors: one per level but the last, none after.
        for l in 0..levels as usize {
            let w = format!("{SCOPE}/pool{l}/conv/W");
            let here = self.exists(&w, Kind::Plain)?;
            if l + 1 == levels as usize && here {
                return Err(refuse(&w, format!("a split prior after the last level ({levels} levels found under '{SCOPE}/')")));
            }
        }
        // Class conditioning: fold the embedding of the chosen label into the top prior.
        let label = if has_label { Some(self.label_embedding(&config, opts)?) } else { None };
        Ok(Plan { config, permutations, has_top_conv, label })
    }

    /// `h += (onehot(y) · W + b) * exp(3 * logs)` with `W: [n_y, 2*Ct]`, evaluated for
    /// the one label this import is for.
    fn label_embedding(&mut self, cfg: &ModelConfig, opts: &ImportOptions) -> Result<LabelEmbedding> {
        let ct = cfg.level_shapes().last().map(|s| s.c).unwrap_or(0);
        let s = format!("{SCOPE}/prior/y_emb");
        let (w, _) = self.find(&format!("{s}/W"), Kind::Plain)?.expect("checked");
        let n_y = w.tensor.shape.first().copied().unwrap_or(0);
        let label = match (opts.label, n_y) {
            (Some(y), _) if (y as usize) < n_y => y as usize,
            (Some(y), _) => {
                return Err(refuse(&format!("{s}/W"), format!("label {y} asked for, the graph has {n_y} classes")))
            }
            (None, 1) => 0,
            (None, _) => {
                return Err(refuse(
                    &format!("{s}/W"),
                    format!("the top prior is class-conditional with {n_y} classes: choose the label to fold in (ImportOptions::label)"),
                ))
            }
        };
        let w = self.require(&format!("{s}/W"), Kind::Plain, &[n_y, 2 * ct], "the top prior's class embedding")?;
        let w = w.values(&format!("{s}/W"))?;
        let b = self.require(&format!("{s}/b"), Kind::Plain, &[1, 2 * ct], "the top prior's class embedding")?;
        let b = b.values(&format!("{s}/b"))?;
        let logs = self.require(&format!("{s}/logs"), Kind::LogScale, &[1, 2 * ct], "the top prior's class embedding")?;
        let logs = logs.values(&format!("{s}/logs"))?;
        let values: Vec<f64> =
            (0..2 * ct).map(|c| (w[label * 2 * ct + c] + b[c]) * (LOGSCALE * logs[c]).exp()).collect();
        self.report.label = Some(label as u32);
        self.report.notes.push(format!(
            "class-conditional top prior ({n_y} classes): the embedding of label {label} was folded into top.b"
        ));
        Ok(LabelEmbedding { values })
    }

    // ---- weights -------------------------------------------------------------------

    /// Copies one variable straight into its slot of the output.
    fn copy(&mut self, out: &mut TensorWriter, ours: &str, var: &str, kind: Kind, shape: &[usize]) -> Result<()> {
        let found = self.require(var, kind, shape, ours)?;
        let mut sink = out.sink(ours)?;
        found.for_each(var, |i, v| sink.put(i, v))?;
        sink.finish(var)
    }

    fn write_weights(&mut self, plan: &Plan, out: &mut TensorWriter) -> Result<()> {
        let cfg = &plan.config;
        let e = cfg.edge_channels();
        let w = cfg.width as usize;
        let shapes = cfg.level_shapes();
        for (l, s) in shapes.iter().enumerate() {
            let c = s.c;
            let cf = cfg.coupling_out(l);
            for k in 0..cfg.steps as usize {
                let p = format!("L{l}.S{k}.");
                let v = format!("{SCOPE}/{l}/{k}/");
                let an = |x: &str| format!("{v}{x}");
                self.copy(out, &format!("{p}actnorm.b"), &an("actnorm_center/b"), Kind::Plain, &[1, 1, 1, c])?;
                self.copy(out, &format!("{p}actnorm.logs"), &an("actnorm_scale/logs"), Kind::LogScale, &[1, 1, 1, c])?;
                let wname = format!("{p}invconv.W");
                match &plan.permutations[l][k] {
                    Permutation::Invconv => {
                        self.copy(out, &wname, &an("invconv/W"), Kind::InvconvW, &[c, c])?;
                        // A folded LU graph may keep its factors (for the decoder) beside the
                        // folded W: all five, or they count as unknown weights.
                        let lu: Vec<String> = LU_VARIABLES.iter().map(|x| an(&format!("invconv/{x}"))).collect();
                        if lu.iter().all(|x| self.g.node(x).is_some()) {
                            self.used.extend(lu);
                        }
                    }
                    Permutation::Lu => {
                        let w = self.lu_matrix(&v, c, &wname)?;
                        let mut sink = out.sink(&wname)?;
                        for (i, x) in w.iter().enumerate() {
                            sink.put(i, *x);
                        }
                        sink.finish(&an("invconv"))?;
                    }
                    perm => {
                        // A permutation as a matrix: y_j = x_{src(j)}, so W[src(j), j] = 1.
                        let src: Vec<usize> = match perm {
                            Permutation::Shuffle(idx) => {
                                self.used.insert(an("shuffle/indices"));
                                self.used.insert(an("shuffle/indices_inverse"));
                                idx.clone()
                            }
                            _ => (0..c).rev().collect(),
                        };
                        let mut sink = out.sink(&wname)?;
                        for (j, &i) in src.iter().enumerate() {
                            sink.put(i * c + j, 1.0);
                        }
                        sink.finish(&an(perm.kind()))?;
                    }
                }
                self.copy(out, &format!("{p}f.l1.W"), &an("f1/l_1/W"), Kind::Plain, &[3, 3, c / 2 + e, w])?;
                for (ours, tf) in [("l1", "l_1"), ("l2", "l_2")] {
                    let b = an(&format!("f1/{tf}/actnorm_center/b"));
                    let logs = an(&format!("f1/{tf}/actnorm_scale/logs"));
                    self.copy(out, &format!("{p}f.{ours}.actnorm.b"), &b, Kind::Plain, &[1, 1, 1, w])?;
                    self.copy(out, &format!("{p}f.{ours}.actnorm.logs"), &logs, Kind::LogScale, &[1, 1, 1, w])?;
                }
                self.copy(out, &format!("{p}f.l2.W"), &an("f1/l_2/W"), Kind::Plain, &[1, 1, w, w])?;
                self.copy(out, &format!("{p}f.last.W"), &an("f1/l_last/W"), Kind::Plain, &[3, 3, w + e, cf])?;
                self.copy(out, &format!("{p}f.last.b"), &an("f1/l_last/b"), Kind::Plain, &[1, 1, 1, cf])?;
                self.copy(out, &format!("{p}f.last.logs"), &an("f1/l_last/logs"), Kind::LogScale, &[1, cf])?;
            }
            if l + 1 < shapes.len() {
                let v = format!("{SCOPE}/pool{l}/conv/");
                self.copy(out, &format!("L{l}.prior.W"), &format!("{v}W"), Kind::Plain, &[3, 3, c / 2 + e, c])?;
                self.copy(out, &format!("L{l}.prior.b"), &format!("{v}b"), Kind::Plain, &[1, 1, 1, c])?;
                self.copy(out, &format!("L{l}.prior.logs"), &format!("{v}logs"), Kind::LogScale, &[1, c])?;
            }
        }
        if cfg.learn_top {
            let ct = shapes.last().map(|s| s.c).unwrap_or(0);
            let v = format!("{SCOPE}/prior/p/");
            match (&plan.label, plan.has_top_conv) {
                (None, _) => {
                    self.copy(out, "top.W", &format!("{v}W"), Kind::Plain, &[3, 3, 2 * ct + e, 2 * ct])?;
                    self.copy(out, "top.b", &format!("{v}b"), Kind::Plain, &[1, 1, 1, 2 * ct])?;
                    self.copy(out, "top.logs", &format!("{v}logs"), Kind::LogScale, &[1, 2 * ct])?;
                }
                (Some(emb), true) => {
                    // h = (conv + b) * exp(3 logs) + y  =  (conv + b + y / exp(3 logs)) * exp(3 logs)
                    self.copy(out, "top.W", &format!("{v}W"), Kind::Plain, &[3, 3, 2 * ct + e, 2 * ct])?;
                    self.copy(out, "top.logs", &format!("{v}logs"), Kind::LogScale, &[1, 2 * ct])?;
                    let logs = self.require(&format!("{v}logs"), Kind::LogScale, &[1, 2 * ct], "top.b")?;
                    let logs = logs.values(&format!("{v}logs"))?;
                    let b = self.require(&format!("{v}b"), Kind::Plain, &[1, 1, 1, 2 * ct], "top.b")?;
                    let b = b.values(&format!("{v}b"))?;
                    let mut sink = out.sink("top.b")?;
                    for c in 0..2 * ct {
                        sink.put(c, b[c] + emb.values[c] / (LOGSCALE * logs[c]).exp());
                    }
                    sink.finish(&format!("{v}b"))?;
                }
                (Some(emb), false) => {
                    // No learned top conv: h = y. top.W and top.logs stay zero.
                    let mut sink = out.sink("top.b")?;
                    for (c, y) in emb.values.iter().enumerate() {
                        sink.put(c, *y);
                    }
                    sink.finish(&format!("{SCOPE}/prior/y_emb"))?;
                    out.sink("top.W")?.finish("top.W")?;
                    out.sink("top.logs")?.finish("top.logs")?;
                }
            }
        }
        Ok(())
    }

    /// `W = P · (L ∘ tril(-1) + I) · (U ∘ triu(1) + diag(sign_S · exp(log_S)))` in f64,
    /// as model.py builds it (masks applied, whatever the stored triangles hold).
    fn lu_matrix(&mut self, step: &str, c: usize, ours: &str) -> Result<Vec<f64>> {
        let mut get = |v: &str, shape: &[usize]| -> Result<Vec<f64>> {
            let name = format!("{step}invconv/{v}");
            self.require(&name, Kind::Plain, shape, ours)?.values(&name)
        };
        let (p, l, u) = (get("P", &[c, c])?, get("L", &[c, c])?, get("U", &[c, c])?);
        let (sign, log_s) = (get("sign_S", &[c])?, get("log_S", &[c])?);
        let lower = |i: usize, j: usize| match i.cmp(&j) {
            std::cmp::Ordering::Greater => l[i * c + j],
            std::cmp::Ordering::Equal => 1.0,
            std::cmp::Ordering::Less => 0.0,
        };
        let upper = |i: usize, j: usize| match i.cmp(&j) {
            std::cmp::Ordering::Less => u[i * c + j],
            std::cmp::Ordering::Equal => sign[i] * log_s[i].exp(),
            std::cmp::Ordering::Greater => 0.0,
        };
        let mut lu = vec![0f64; c * c];
        for i in 0..c {
            for j in 0..c {
                lu[i * c + j] = (0..=i.min(j)).map(|m| lower(i, m) * upper(m, j)).sum();
            }
        }
        let mut w = vec![0f64; c * c];
        for i in 0..c {
            for m in 0..c {
                let pm = p[i * c + m];
                if pm != 0.0 {
                    for j in 0..c {
                        w[i * c + j] += pm * lu[m * c + j];
                    }
                }
            }
        }
        Ok(w)
    }

    // ---- consistency checks --------------------------------------------------------

    /// OpenAI's edge-bias constant (1 on the padded border, 0 inside) for each level.
    fn check_edge_pads(&mut self, cfg: &ModelConfig) -> Result<()> {
        if !cfg.edge_bias {
            return Ok(());
        }
        for (l, s) in cfg.level_shapes().iter().enumerate() {
            let name = format!("{SCOPE}/{l}/0/f1/l_1/Const");
            let Some(n) = self.g.node(&name) else {
                self.report.notes.push(format!("edge-bias constant '{name}' not found by name; its pattern was not checked"));
                continue;
            };
            let t = ConstTensor::of(n)?;
            let (h, w) = (s.h + 2, s.w + 2);
            if t.shape != [1, h, w, 1] {
                return Err(node_err(&name, format!("has shape {:?}; level {l} needs the edge pad [1, {h}, {w}, 1]", t.shape)));
            }
            let v = t.floats()?;
            for y in 0..h {
                for x in 0..w {
                    let border = y == 0 || x == 0 || y == h - 1 || x == w - 1;
                    if v[y * w + x] != border as u8 as f64 {
                        return Err(node_err(&name, format!("is not OpenAI's edge pad (value {} at y={y}, x={x})", v[y * w + x])));
                    }
                }
            }
            self.used.insert(name);
        }
        Ok(())
    }

    /// Whether any non-Identity op consumes `name` (directly or through Identities).
    fn is_live(&self, name: &str, depth: usize) -> bool {
        depth < 16
            && self.g.consumers(name).any(|c| c.op != "Identity" || self.is_live(&c.name, depth + 1))
    }

    /// Every weight-like constant under `model/` must have been used, be dead, or be
    /// known to be irrelevant to eps (the classifier head).
    fn check_leftovers(&mut self) -> Result<()> {
        let known_scopes = [
            "actnorm_center", "actnorm_scale", "invconv", "shuffle", "f1/l_1", "f1/l_2", "f1/l_last", "conv", "p", "y_emb",
        ];
        let mut folded_unused = 0;
        for n in self.g.nodes() {
            if n.op != "Const" || !n.name.starts_with(&format!("{SCOPE}/")) || self.used.contains(&n.name) {
                continue;
            }
            if n.name.starts_with(&format!("{SCOPE}/classifier/")) {
                self.report.ignored.push(format!("{} (class predictor head, not part of the flow)", n.name));
                continue;
            }
            let is_float = matches!(n.attr_tensor().map(|t| t.dtype), Some(dtype::FLOAT | dtype::DOUBLE | dtype::HALF));
            if let Some(op) = folded_op(&n.name) {
                // A folded constant: fine when it is a by-product (logdets) of a scope this
                // importer knows; from an unknown scope it may hide a weight.
                let rel = op.strip_prefix(&format!("{SCOPE}/")).unwrap_or(op);
                let parts: Vec<&str> = rel.split('/').collect();
                let in_known = |from: usize| {
                    let tail = parts[from..].join("/");
                    known_scopes.iter().any(|s| tail.starts_with(&format!("{s}/")))
                };
                let known = match parts.as_slice() {
                    [l, k, ..] if l.parse::<usize>().is_ok() && k.parse::<usize>().is_ok() => in_known(2),
                    [p, ..] if p.starts_with("pool") || *p == "prior" => in_known(1),
                    _ => false,
                };
                if is_float && !known && self.is_live(&n.name, 0) {
                    return Err(refuse(
                        &n.name,
                        format!("a constant-folded tensor (from op '{op}') that this importer cannot attribute to a known weight"),
                    ));
                }
                folded_unused += 1;
                continue;
            }
            let var_like = VARIABLE_LEAVES.contains(&leaf(&n.name)) || self.g.node(&format!("{}/read", n.name)).is_some();
            if !var_like {
                continue;
            }
            if self.is_live(&n.name, 0) {
                return Err(refuse(
                    &n.name,
                    "a weight this importer does not know (not part of OpenAI's Glow as model.py builds it); refusing rather than ignoring it",
                ));
            }
            self.report.ignored.push(format!("{} (no op reads it)", n.name));
        }
        if folded_unused > 0 {
            self.report.notes.push(format!(
                "{folded_unused} constant-folded tensors under '{SCOPE}/' were not needed (log-determinants and the like)"
            ));
        }
        Ok(())
    }

    /// `input/downsampled_image` (in OpenAI's released graph) is accepted only if
    /// nothing the flow computes depends on it.
    fn check_downsampled(&mut self) -> Result<()> {
        if self.g.node(DOWNSAMPLED_INPUT).is_none() {
            return Ok(());
        }
        let mut seen = HashSet::new();
        let mut stack = vec![DOWNSAMPLED_INPUT.to_string()];
        while let Some(name) = stack.pop() {
            for c in self.g.consumers(&name) {
                if c.name.starts_with(&format!("{SCOPE}/")) || c.name.starts_with(&format!("{SCOPE}_1/")) {
                    return Err(node_err(
                        DOWNSAMPLED_INPUT,
                        format!(
                            "feeds '{}': this graph conditions the flow on a downsampled image, which the model format cannot express",
                            c.name
                        ),
                    ));
                }
                if seen.insert(c.name.clone()) {
                    stack.push(c.name.clone());
                }
            }
        }
        self.report.notes.push(format!("'{DOWNSAMPLED_INPUT}' is present but nothing in the flow reads it; ignored"));
        Ok(())
    }

    /// Every input names a node of the graph.
    fn check_inputs(&self) -> Result<()> {
        for n in self.g.nodes() {
            for inp in &n.input {
                let (src, _) = super::graphdef::split_input(inp);
                if self.g.node(src).is_none() {
                    return Err(graph_err(format!(
                        "node '{}' takes input '{inp}', which is not in the graph (truncated or edited graph?)",
                        n.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The whole import: plan, copy, check.
    pub fn run(mut self, opts: &ImportOptions) -> Result<(ModelConfig, Vec<u8>, ImportReport)> {
        let plan = self.plan(opts)?;
        let cfg = plan.config.clone();
        let tensors = cfg.expected_tensors();
        let metadata = [("source".to_string(), "openai-glow frozen graph".to_string())];
        let mut out = TensorWriter::new(&tensors, opts.f16, &metadata)?;
        self.write_weights(&plan, &mut out)?;
        let consts_read = self.used.len();
        self.check_edge_pads(&cfg)?;
        self.check_leftovers()?;
        self.check_downsampled()?;
        self.check_inputs()?;
        let bytes = out.finish()?;
        let r = &mut self.report;
        r.tensors = tensors.len();
        r.values = tensors.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        r.dtype = if opts.f16 { "F16" } else { "F32" }.into();
        r.config = Some(serde_json::to_value(&cfg).map_err(|e| GlowError::Config(e.to_string()))?);
        if let Some(m) = r.config.as_mut().and_then(|v| v.as_object_mut()) {
            m.retain(|_, x| !x.is_null());
        }
        r.from_folded.sort();
        r.from_folded.dedup();
        r.tf_tensors_read = consts_read;
        Ok((cfg, bytes, self.report))
    }
}

impl Sink<'_> {
    /// Ends a tensor; `what` names the graph node it came from, for errors.
    pub fn finish(self, what: &str) -> Result<()> {
        self.done().map_err(|p| refuse(what, p))
    }
}
