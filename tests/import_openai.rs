//! The OpenAI graph importer against a tiny model frozen by OpenAI's own Glow code
//! (`shared/openai_glow_tiny`, beside the checkout): its weights, OpenAI's golden eps,
//! bits/dim and decoded images, a synthetic constant-folded variant, the other
//! permutations, class conditioning, `z_manipulate.npy`, and refusals that name the node.
#![cfg(not(target_arch = "wasm32"))]

use bytes::Bytes;
use glow_web::import::graphdef::{
    attr_value, dtype, AttrValue, ConstTensor, GraphDef, NodeDef, TensorProto, TensorShapeProto,
};
use glow_web::import::{self, ImportOptions, Imported};
use glow_web::model::Coupling;
use glow_web::{reference, Model};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/openai_glow_tiny");
    assert!(d.is_dir(), "{} is missing: shared/ must sit beside the checkout", d.display());
    d
}

fn graph_bytes() -> Vec<u8> {
    std::fs::read(dir().join("glow_tiny_unoptimized.pb")).unwrap()
}

fn graph_def() -> GraphDef {
    GraphDef::decode(Bytes::from(graph_bytes())).unwrap()
}

fn import_def(g: &GraphDef, opts: &ImportOptions) -> glow_web::Result<Imported> {
    import::import_openai_bytes(Bytes::from(g.encode_to_vec()), opts)
}

fn load(imp: &Imported) -> Model {
    Model::from_bytes(&imp.config_json(), &imp.weights, imp.attributes.as_deref()).unwrap()
}

// ---- .npz (a zip of .npy files) ------------------------------------------------------

enum Arr {
    F32(Vec<f32>),
    U8(Vec<u8>),
    Other,
}

impl Arr {
    fn f32(&self) -> &[f32] {
        match self {
            Arr::F32(v) => v,
            _ => panic!("not float32"),
        }
    }
    fn u8(&self) -> &[u8] {
        match self {
            Arr::U8(v) => v,
            _ => panic!("not uint8"),
        }
    }
}

fn u16le(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}
fn u32le(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize
}

/// Reads every member of an .npz through the zip central directory.
fn npz(name: &str) -> HashMap<String, Arr> {
    let z = std::fs::read(dir().join(name)).unwrap();
    let eocd = (0..z.len() - 21).rev().find(|&i| z[i..i + 4] == [0x50, 0x4b, 0x05, 0x06]).expect("zip end record");
    let (count, mut p) = (u16le(&z, eocd + 10), u32le(&z, eocd + 16));
    let mut out = HashMap::new();
    for _ in 0..count {
        assert_eq!(z[p..p + 4], [0x50, 0x4b, 0x01, 0x02]);
        let method = u16le(&z, p + 10);
        let csize = u32le(&z, p + 20);
        let (nlen, elen, clen) = (u16le(&z, p + 28), u16le(&z, p + 30), u16le(&z, p + 32));
        let local = u32le(&z, p + 42);
        let fname = String::from_utf8(z[p + 46..p + 46 + nlen].to_vec()).unwrap();
        p += 46 + nlen + elen + clen;
        let data = local + 30 + u16le(&z, local + 26) + u16le(&z, local + 28);
        let raw = &z[data..data + csize];
        let bytes = match method {
            0 => raw.to_vec(),
            8 => {
                let mut v = Vec::new();
                flate2::read::DeflateDecoder::new(raw).read_to_end(&mut v).unwrap();
                v
            }
            m => panic!("zip method {m}"),
        };
        out.insert(fname.trim_end_matches(".npy").to_string(), npy(&bytes));
    }
    out
}

fn npy(b: &[u8]) -> Arr {
    let hlen = u16le(b, 8);
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    if header.contains("'<f4'") {
        Arr::F32(glow_web::npy::read_f32(b).unwrap().1)
    } else if header.contains("'|u1'") {
        Arr::U8(b[10 + hlen..].to_vec())
    } else {
        Arr::Other
    }
}

// ---- graph editing -------------------------------------------------------------------

fn tensor_f32(shape: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        dtype: dtype::FLOAT,
        tensor_shape: Some(TensorShapeProto::from_dims(shape)),
        tensor_content: Bytes::from(values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()),
        ..Default::default()
    }
}

fn tensor_i32(shape: &[usize], values: &[i32]) -> TensorProto {
    TensorProto {
        dtype: dtype::INT32,
        tensor_shape: Some(TensorShapeProto::from_dims(shape)),
        tensor_content: Bytes::from(values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()),
        ..Default::default()
    }
}

fn const_node(name: &str, t: TensorProto) -> NodeDef {
    let mut attr = BTreeMap::new();
    attr.insert("dtype".into(), AttrValue { value: Some(attr_value::Value::Type(t.dtype)) });
    attr.insert("value".into(), AttrValue { value: Some(attr_value::Value::Tensor(t)) });
    NodeDef { name: name.into(), op: "Const".into(), attr, ..Default::default() }
}

fn op_node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef { name: name.into(), op: op.into(), input: inputs.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

fn find<'a>(g: &'a GraphDef, name: &str) -> &'a NodeDef {
    g.node.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
}

fn floats(g: &GraphDef, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = ConstTensor::of(find(g, name)).unwrap();
    (t.shape.clone(), t.floats().unwrap().iter().map(|&v| v as f32).collect())
}

fn remove(g: &mut GraphDef, names: &[String]) {
    g.node.retain(|n| !names.contains(&n.name));
}

fn rewire(g: &mut GraphDef, from: &str, to: &str) {
    for n in &mut g.node {
        for i in &mut n.input {
            if i == from {
                *i = to.to_string();
            }
        }
    }
}

fn tensor_of(m: &Imported, name: &str) -> Vec<f32> {
    let st = safetensors::SafeTensors::deserialize(&m.weights).unwrap();
    let shape = st.tensor(name).unwrap().shape().to_vec();
    glow_web::model::weights::read_tensor(&st, name, &shape).unwrap()
}

// ---- the goldens ---------------------------------------------------------------------

/// OpenAI's input: `floor(x / 8) / 32 - 0.5 + noise`.
fn model_input(x: &[u8], noise: &[f32]) -> Vec<f32> {
    x.iter().zip(noise).map(|(&p, &u)| (p as f32 / 8.0).floor() / 32.0 - 0.5 + u).collect()
}

/// Per image, the level latents flattened and concatenated (OpenAI's `flatten_eps`).
fn flatten(levels: &[&[f32]], batch: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for b in 0..batch {
        for l in levels {
            let n = l.len() / batch;
            out.extend_from_slice(&l[b * n..(b + 1) * n]);
        }
    }
    out
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max)
}

/// OpenAI's postprocess: `clip(floor((x + 0.5) * 32) * 8, 0, 255)`.
fn postprocess(x: &[f32]) -> Vec<u8> {
    x.iter().map(|v| (((v + 0.5) * 32.0).floor() * 8.0).clamp(0.0, 255.0) as u8).collect()
}

/// Checks a model against every golden in golden.npz.
fn check_goldens(model: &Model, eps_tol: f64) {
    let g = npz("golden.npz");
    let batch = 4;
    let x8 = g["x_uint8"].u8();
    for which in ["mid", "rand"] {
        let x = model_input(x8, g[&format!("noise_{which}")].f32());
        let enc = reference::encode(&model.folded, &x, batch);
        let want = flatten(
            &[g[&format!("eps_{which}_0")].f32(), g[&format!("eps_{which}_1")].f32(), g[&format!("eps_{which}_2")].f32()],
            batch,
        );
        let d = max_abs_diff(&enc.eps, &want);
        eprintln!("eps ({which} noise): max |ours - OpenAI's| = {d:e}");
        assert!(d <= eps_tol, "eps ({which} noise) differ from OpenAI's by {d}");
        let bits = g[&format!("bits_x_{which}")].f32();
        for (b, (ours, theirs)) in enc.bits_per_dim.iter().zip(bits).enumerate() {
            let diff = (ours - *theirs as f64).abs();
            eprintln!("bits/dim ({which}) image {b}: ours {ours:.9} OpenAI {theirs:.9} (diff {diff:e})");
            assert!(diff <= 1e-6, "bits/dim of image {b} ({which}): ours {ours} OpenAI {theirs} (diff {diff})");
        }
    }
    for which in ["rt", "t07"] {
        let eps = flatten(
            &[g[&format!("dec_in_{which}_0")].f32(), g[&format!("dec_in_{which}_1")].f32(), g[&format!("dec_in_{which}_2")].f32()],
            batch,
        );
        let x = reference::decode(&model.folded, &eps, batch, &[1.0; 3]);
        let d = max_abs_diff(&x, g[&format!("x_float_{which}")].f32());
        eprintln!("decoded floats ({which}): max |ours - OpenAI's| = {d:e}");
        assert!(d <= 1e-5, "decoded floats ({which}) differ from OpenAI's by {d}");
        assert_eq!(postprocess(&x), g[&format!("x_uint8_{which}")].u8(), "decoded uint8 images ({which})");
    }
}

#[test]
fn tiny_graph_imports_and_reproduces_openai_goldens() {
    let imp = import::import_openai(&graph_bytes(), &ImportOptions::default()).unwrap();
    let c = &imp.config;
    assert_eq!((c.image.height, c.image.width, c.image.channels), (16, 16, 3));
    assert_eq!((c.levels, c.steps, c.width, c.n_bits), (3, 2, 16, 5));
    assert_eq!(c.coupling, Coupling::Additive);
    assert!(c.edge_bias && c.learn_top);
    assert_eq!(imp.report.permutation, "invconv");
    assert!(imp.report.from_folded.is_empty());
    // Every variable is copied bit for bit (reshaped: [1,1,1,C] -> [C], [1,C] -> [C]).
    let reference_weights = npz("weights_reference.npz");
    assert_eq!(reference_weights.len(), 81);
    let ours = |tf: &str| -> String {
        let p: Vec<&str> = tf.split('/').collect();
        match p.as_slice() {
            ["model", "prior", "p", v] => format!("top.{v}"),
            ["model", pool, "conv", v] if pool.starts_with("pool") => format!("L{}.prior.{v}", &pool[4..]),
            ["model", l, k, rest @ ..] => {
                let r = rest.join("/");
                let r = r
                    .replace("actnorm_center/b", "actnorm.b")
                    .replace("actnorm_scale/logs", "actnorm.logs")
                    .replace("f1/l_1/", "f.l1.")
                    .replace("f1/l_2/", "f.l2.")
                    .replace("f1/l_last/", "f.last.")
                    .replace("invconv/W", "invconv.W");
                format!("L{l}.S{k}.{r}")
            }
            _ => panic!("{tf}"),
        }
    };
    for (name, arr) in &reference_weights {
        assert_eq!(tensor_of(&imp, &ours(name)), arr.f32(), "{name}");
    }
    let model = load(&imp);
    check_goldens(&model, 1e-5);
}

#[test]
fn f16_weights_are_half_the_size_and_still_close() {
    let imp32 = import::import_openai(&graph_bytes(), &ImportOptions::default()).unwrap();
    let imp16 = import::import_openai(&graph_bytes(), &ImportOptions { f16: true, ..Default::default() }).unwrap();
    assert_eq!(imp16.report.dtype, "F16");
        // Two bytes less per value (the headers differ only in the offsets' digits).
    let saved = imp32.weights.len() - imp16.weights.len();
    assert!(saved.abs_diff(2 * imp32.report.values) < 1024, "{saved}");
    let (m32, m16) = (load(&imp32), load(&imp16));
    let g = npz("golden.npz");
    let x = model_input(g["x_uint8"].u8(), g["noise_mid"].f32());
    let (a, b) = (reference::encode(&m32.folded, &x, 4), reference::encode(&m16.folded, &x, 4));
    let d = max_abs_diff(&a.eps, &b.eps);
    assert!(d < 0.05, "f16 eps differ by {d}");
}

/// **Synthetic** constant folding. TensorFlow is not installed here, so no real
/// constant-folded graph can be made; this rewrites the tiny graph the way TensorFlow's
/// constant folding names things (`<op>/_N__cf__N`, replacing the op's output):
/// every actnorm's `exp(3 * logs)` (and its log-determinant), every invconv's reshaped
/// W (and its log-determinant), the coupling nets' output `exp(3 * logs)`, the split
/// priors' `3 * logs` and level 1's first conv weights (their `W/read`). The decoder
/// (`model_1/` and its placeholders) is dropped so that the folded variables are gone
/// from the graph entirely. The import must give the same model.
fn synthetic_folded_graph() -> GraphDef {
    let mut g = graph_def();
    g.node.retain(|n| !n.name.starts_with("model_1/") && !n.name.starts_with("Placeholder"));
    let mut counter = 0;
    let mut cf = |op: &str| {
        counter += 1;
        format!("{op}/_{counter}__cf__{counter}")
    };
    let names: Vec<String> = g.node.iter().map(|n| n.name.clone()).collect();
    let s = |scope: &str, rest: &[&str]| rest.iter().map(|r| format!("{scope}/{r}")).collect::<Vec<_>>();
    for name in &names {
        if let Some(scope) = name.strip_suffix("/actnorm_scale/logs").map(|p| format!("{p}/actnorm_scale")) {
            let (shape, logs) = floats(&g, name);
            let exp: Vec<f32> = logs.iter().map(|l| (3.0 * l).exp()).collect();
            let e = cf(&format!("{scope}/Exp"));
            g.node.push(const_node(&e, tensor_f32(&shape, &exp)));
            rewire(&mut g, &format!("{scope}/Exp"), &e);
            remove(&mut g, &s(&scope, &["logs", "logs/read", "mul/y", "mul", "Exp"]));
            // The flow's actnorms also add their log-determinant (the coupling nets' do not).
            if g.node.iter().any(|n| n.name == format!("{scope}/mul_2/y")) {
                let hw = floats(&g, &format!("{scope}/mul_2/y")).1[0];
                let ld = logs.iter().map(|l| 3.0 * l).sum::<f32>() * hw;
                let d = cf(&format!("{scope}/mul_2"));
                g.node.push(const_node(&d, tensor_f32(&[], &[ld])));
                rewire(&mut g, &format!("{scope}/mul_2"), &d);
                remove(&mut g, &s(&scope, &["Const", "Sum", "mul_2/y", "mul_2"]));
            }
        } else if let Some(scope) = name.strip_suffix("/invconv/W").map(|p| format!("{p}/invconv")) {
            let (shape, w) = floats(&g, name);
            let c = shape[0];
            let hw = floats(&g, &format!("{scope}/mul/y")).1[0] * floats(&g, &format!("{scope}/mul_1/y")).1[0];
            let ld = log_abs_det(&w, c) as f32 * hw;
            let (r, d) = (cf(&format!("{scope}/Reshape")), cf(&format!("{scope}/mul_1")));
            g.node.push(const_node(&r, tensor_f32(&[1, 1, c, c], &w)));
            g.node.push(const_node(&d, tensor_f32(&[], &[ld])));
            rewire(&mut g, &format!("{scope}/Reshape"), &r);
            rewire(&mut g, &format!("{scope}/mul_1"), &d);
            let gone = [
                "W", "W/read", "Cast", "MatrixDeterminant", "Abs", "Log", "Cast_1", "mul/y", "mul", "mul_1/y", "mul_1",
                "Reshape/shape", "Reshape",
            ];
            remove(&mut g, &s(&scope, &gone));
        } else if let Some(scope) = name.strip_suffix("/l_last/logs").map(|p| format!("{p}/l_last")) {
            let (shape, logs) = floats(&g, name);
            let exp: Vec<f32> = logs.iter().map(|l| (3.0 * l).exp()).collect();
            let e = cf(&format!("{scope}/Exp"));
            g.node.push(const_node(&e, tensor_f32(&shape, &exp)));
            rewire(&mut g, &format!("{scope}/Exp"), &e);
            remove(&mut g, &s(&scope, &["logs", "logs/read", "mul/y", "mul", "Exp"]));
        } else if name.starts_with("model/pool") && name.ends_with("/conv/logs") {
            let scope = name.strip_suffix("/logs").unwrap().to_string();
            let (shape, logs) = floats(&g, name);
            let m = cf(&format!("{scope}/mul"));
            let scaled: Vec<f32> = logs.iter().map(|l| 3.0 * l).collect();
            g.node.push(const_node(&m, tensor_f32(&shape, &scaled)));
            rewire(&mut g, &format!("{scope}/mul"), &m);
            remove(&mut g, &s(&scope, &["logs", "logs/read", "mul/y", "mul"]));
        } else if name.starts_with("model/1/") && name.ends_with("/f1/l_1/W") {
            let (shape, w) = floats(&g, name);
            let r = cf(&format!("{name}/read"));
            g.node.push(const_node(&r, tensor_f32(&shape, &w)));
            rewire(&mut g, &format!("{name}/read"), &r);
            remove(&mut g, &[name.clone(), format!("{name}/read")]);
        }
    }
    g
}

fn log_abs_det(w: &[f32], n: usize) -> f64 {
    let mut a: Vec<f64> = w.iter().map(|&v| v as f64).collect();
    let mut ld = 0.0;
    for col in 0..n {
        let p = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs())).unwrap();
        for k in 0..n {
            a.swap(col * n + k, p * n + k);
        }
        let d = a[col * n + col];
        ld += d.abs().ln();
        for r in col + 1..n {
            let f = a[r * n + col] / d;
            for k in col..n {
                a[r * n + k] -= f * a[col * n + k];
            }
        }
    }
    ld
}

#[test]
fn synthetic_constant_folded_graph_gives_the_same_model() {
    let g = synthetic_folded_graph();
    assert!(g.node.iter().all(|n| !n.name.ends_with("/actnorm_scale/logs") && !n.name.ends_with("/invconv/W")));
    let folded = import_def(&g, &ImportOptions::default()).unwrap();
    let plain = import::import_openai(&graph_bytes(), &ImportOptions::default()).unwrap();
    let r = &folded.report.from_folded;
    assert!(r.iter().any(|s| s.starts_with("model/0/0/actnorm_scale/logs <- model/0/0/actnorm_scale/Exp/_")), "{r:?}");
    assert!(r.iter().any(|s| s.starts_with("model/2/1/invconv/W <- model/2/1/invconv/Reshape/_")), "{r:?}");
    assert!(r.iter().any(|s| s.starts_with("model/pool1/conv/logs <- model/pool1/conv/mul/_")), "{r:?}");
    assert!(r.iter().any(|s| s.starts_with("model/1/0/f1/l_1/W <- model/1/0/f1/l_1/W/read/_")), "{r:?}");
    assert_eq!(folded.config_json(), plain.config_json());
    for (name, _) in plain.config.expected_tensors() {
        let (a, b) = (tensor_of(&folded, &name), tensor_of(&plain, &name));
        let d = max_abs_diff(&a, &b);
        assert!(d <= 1e-6, "{name}: folded import differs by {d}");
    }
    check_goldens(&load(&folded), 1e-5);
}

#[test]
fn shuffle_and_reverse_permutations_become_permutation_matrices() {
    // Level 0 step 0 with shuffle indices, every other step reversed (a graph with mixed
    // permutations, which OpenAI's code never makes but which the format can hold).
    let mut g = graph_def();
    g.node.retain(|n| !n.name.starts_with("model_1/") && !n.name.starts_with("Placeholder"));
    let perm: Vec<i32> = vec![3, 7, 0, 11, 5, 1, 9, 2, 10, 4, 8, 6];
    let mut inv = vec![0i32; 12];
    for (j, &i) in perm.iter().enumerate() {
        inv[i as usize] = j as i32;
    }
    for (l, c) in [(0usize, 12usize), (1, 24), (2, 48)] {
        for k in 0..2 {
            let s = format!("model/{l}/{k}");
            let gone: Vec<String> = g
                .node
                .iter()
                .filter(|n| n.name.starts_with(&format!("{s}/invconv/")))
                .map(|n| n.name.clone())
                .collect();
            remove(&mut g, &gone);
            // The step's input now goes straight into the permutation, which feeds the
            // halves' slices; the logdet chain skips the invconv.
            if (l, k) == (0, 0) {
                g.node.push(const_node(&format!("{s}/shuffle/indices"), tensor_i32(&[c], &perm)));
                g.node.push(const_node(&format!("{s}/shuffle/indices_inverse"), tensor_i32(&[c], &inv)));
                g.node.push(op_node(&format!("{s}/shuffle/indices/read"), "Identity", &[&format!("{s}/shuffle/indices")]));
                g.node.push(op_node(&format!("{s}/shuffle/Gather"), "GatherV2", &[&format!("{s}/actnorm_scale/mul_1"), &format!("{s}/shuffle/indices/read")]));
                rewire(&mut g, &format!("{s}/invconv/Conv2D"), &format!("{s}/shuffle/Gather"));
            } else {
                g.node.push(const_node(&format!("{s}/rev/stack"), tensor_i32(&[4], &[0, 0, 0, 0])));
                g.node.push(const_node(&format!("{s}/rev/stack_1"), tensor_i32(&[4], &[0, 0, 0, 0])));
                g.node.push(const_node(&format!("{s}/rev/stack_2"), tensor_i32(&[4], &[1, 1, 1, -1])));
                let ins = [
                    format!("{s}/actnorm_scale/mul_1"),
                    format!("{s}/rev/stack"),
                    format!("{s}/rev/stack_1"),
                    format!("{s}/rev/stack_2"),
                ];
                let ins: Vec<&str> = ins.iter().map(|x| x.as_str()).collect();
                g.node.push(op_node(&format!("{s}/strided_slice_9"), "StridedSlice", &ins));
                rewire(&mut g, &format!("{s}/invconv/Conv2D"), &format!("{s}/strided_slice_9"));
            }
            rewire(&mut g, &format!("{s}/invconv/add"), &format!("{s}/actnorm_scale/add_1"));
        }
    }
    let imp = import_def(&g, &ImportOptions::default()).unwrap();
    assert_eq!(imp.report.permutation, "reverse+shuffle");
    let w = tensor_of(&imp, "L0.S0.invconv.W");
    for i in 0..12 {
        for j in 0..12 {
            assert_eq!(w[i * 12 + j], (perm[j] as usize == i) as u8 as f32, "shuffle W[{i},{j}]");
        }
    }
    let w = tensor_of(&imp, "L1.S1.invconv.W");
    for i in 0..24 {
        for j in 0..24 {
            assert_eq!(w[i * 24 + j], (i + j == 23) as u8 as f32, "reverse W[{i},{j}]");
        }
    }
    // The matrices load (invertible) and the model round-trips.
    let model = load(&imp);
    let x: Vec<f32> = (0..768).map(|i| ((i * 37) % 101) as f32 / 101.0 - 0.5).collect();
    let enc = reference::encode(&model.folded, &x, 1);
    let back = reference::decode(&model.folded, &enc.eps, 1, &[1.0; 3]);
    assert!(max_abs_diff(&x, &back) < 1e-4);

    // A shuffle whose inverse does not match is refused, naming the node.
    let mut bad = g.clone();
    let n = bad.node.iter_mut().find(|n| n.name == "model/0/0/shuffle/indices_inverse").unwrap();
    *n = const_node("model/0/0/shuffle/indices_inverse", tensor_i32(&[12], &perm));
    let e = import_def(&bad, &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.contains("model/0/0/shuffle/indices_inverse") && e.contains("inverse"), "{e}");
}

/// `W = p @ l @ u` (scipy.linalg.lu's convention), with partial pivoting, in f64.
fn lu(w: &[f32], n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut a: Vec<f64> = w.iter().map(|&v| v as f64).collect();
    let mut perm: Vec<usize> = (0..n).collect();
    let mut l = vec![0f64; n * n];
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs())).unwrap();
        for k in 0..n {
            a.swap(col * n + k, piv * n + k);
            l.swap(col * n + k, piv * n + k);
        }
        perm.swap(col, piv);
        for r in col + 1..n {
            let f = a[r * n + col] / a[col * n + col];
            l[r * n + col] = f;
            for k in col..n {
                a[r * n + k] -= f * a[col * n + k];
            }
        }
    }
    for i in 0..n {
        l[i * n + i] = 1.0;
    }
    // Rows of W were permuted: P W = L U, so W = P^T L U and p = P^T.
    let mut p = vec![0f64; n * n];
    for (i, &src) in perm.iter().enumerate() {
        p[src * n + i] = 1.0;
    }
    (p, l, a)
}

/// model.py's other invconv: every `invconv/W` replaced by its LU factors as
/// `invertible_1x1_conv`'s LU branch stores them (P, L, U strictly upper, sign_S, log_S),
/// with W's readers fed by a MatMul of them.
#[test]
fn lu_decomposed_invconv_imports_to_the_same_model() {
    let mut g = graph_def();
    let names: Vec<String> = g.node.iter().map(|n| n.name.clone()).filter(|n| n.ends_with("/invconv/W")).collect();
    for name in &names {
        let scope = name.strip_suffix("/W").unwrap().to_string();
        let (shape, w) = floats(&g, name);
        let c = shape[0];
        let (p, l, u) = lu(&w, c);
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let strict_u: Vec<f64> = (0..c * c).map(|i| if i % c > i / c { u[i] } else { 0.0 }).collect();
        let diag: Vec<f64> = (0..c).map(|i| u[i * c + i]).collect();
        let sign: Vec<f64> = diag.iter().map(|d| d.signum()).collect();
        let log_s: Vec<f64> = diag.iter().map(|d| d.abs().ln()).collect();
        remove(&mut g, std::slice::from_ref(name));
        let factors = [
            ("P", vec![c, c], f(&p)),
            ("L", vec![c, c], f(&l)),
            ("U", vec![c, c], f(&strict_u)),
            ("sign_S", vec![c], f(&sign)),
            ("log_S", vec![c], f(&log_s)),
        ];
        for (v, shape, vals) in factors {
            g.node.push(const_node(&format!("{scope}/{v}"), tensor_f32(&shape, &vals)));
        }
        g.node.push(op_node(&format!("{scope}/MatMul"), "MatMul", &[&format!("{scope}/L"), &format!("{scope}/U")]));
        let read = g.node.iter_mut().find(|n| n.name == format!("{scope}/W/read")).unwrap();
        *read = op_node(&format!("{scope}/W/read"), "MatMul", &[&format!("{scope}/P"), &format!("{scope}/MatMul")]);
    }
    let imp = import_def(&g, &ImportOptions::default()).unwrap();
    assert_eq!(imp.report.permutation, "invconv-lu");
    let plain = import::import_openai(&graph_bytes(), &ImportOptions::default()).unwrap();
    for (l, k) in [(0, 0), (1, 1), (2, 0)] {
        let name = format!("L{l}.S{k}.invconv.W");
        let d = max_abs_diff(&tensor_of(&imp, &name), &tensor_of(&plain, &name));
        assert!(d < 1e-6, "{name}: W from its LU factors differs by {d}");
    }
    check_goldens(&load(&imp), 1e-5);
}

fn add_label_embedding(g: &mut GraphDef, n_y: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let c2 = 96;
    let w: Vec<f32> = (0..n_y * c2).map(|i| ((i * 29) % 17) as f32 * 0.01 - 0.08).collect();
    let b: Vec<f32> = (0..c2).map(|i| ((i * 13) % 7) as f32 * 0.02 - 0.06).collect();
    let logs: Vec<f32> = (0..c2).map(|i| ((i * 7) % 5) as f32 * 0.03 - 0.06).collect();
    let s = "model/prior/y_emb";
    g.node.push(const_node(&format!("{s}/W"), tensor_f32(&[n_y, c2], &w)));
    g.node.push(const_node(&format!("{s}/b"), tensor_f32(&[1, c2], &b)));
    g.node.push(const_node(&format!("{s}/logs"), tensor_f32(&[1, c2], &logs)));
    for v in ["W", "b", "logs"] {
        g.node.push(op_node(&format!("{s}/{v}/read"), "Identity", &[&format!("{s}/{v}")]));
    }
    g.node.push(op_node(&format!("{s}/MatMul"), "MatMul", &["model/Cast", &format!("{s}/W/read")]));
    (w, b, logs)
}

#[test]
fn a_class_embedding_is_folded_into_the_top_prior() {
    let plain = load(&import::import_openai(&graph_bytes(), &ImportOptions::default()).unwrap());
    let mut g = graph_def();
    let (w, b, logs) = add_label_embedding(&mut g, 1);
    let imp = import_def(&g, &ImportOptions::default()).unwrap();
    assert_eq!(imp.report.label, Some(0));
    let m = load(&imp);
    // The top prior gains y = (W[0] + b) * exp(3 logs): means from its first half, log-scales
    // from its second; the folded top interleaves (mean, logs) per channel.
    let ct = 48;
    for p in 0..4 {
        for c in 0..ct {
            for (half, o) in [(0, 0), (1, 1)] {
                let j = half * ct + c;
                let y = ((w[j] + b[j]) as f64 * (3.0 * logs[j] as f64).exp()) as f32;
                let (new, old) = (m.folded.top[p * 2 * ct + 2 * c + o], plain.folded.top[p * 2 * ct + 2 * c + o]);
                assert!((new - (old + y)).abs() < 1e-5, "top prior pixel {p} channel {c}: {new} vs {old} + {y}");
            }
        }
    }
    // Several classes: the label must be chosen.
    let mut g = graph_def();
    add_label_embedding(&mut g, 3);
    let e = import_def(&g, &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.contains("model/prior/y_emb/W") && e.contains("3 classes"), "{e}");
    let imp = import_def(&g, &ImportOptions { label: Some(2), ..Default::default() }).unwrap();
    assert_eq!(imp.report.label, Some(2));
}

fn refusal(g: &GraphDef) -> String {
    match import_def(g, &ImportOptions::default()) {
        Ok(_) => panic!("the import should have been refused"),
        Err(e) => {
            eprintln!("refused: {e}");
            e.to_string()
        }
    }
}

#[test]
fn broken_and_unsupported_graphs_are_refused_naming_the_node() {
    // Truncated file: cut inside the node list (cutting only the trailing version record
    // leaves a valid GraphDef: protobuf has no end marker).
    let bytes = graph_bytes();
    for cut in [bytes.len() / 2, bytes.len() * 9 / 10, 1000] {
        let e = import::import_openai(&bytes[..cut], &ImportOptions::default()).err().unwrap().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
    // Truncated exactly at a node boundary: decodes, but the missing part is named.
    let mut g = graph_def();
    g.node.truncate(900);
    let e = refusal(&g);
    assert!(e.contains("model/"), "{e}");
    assert!(import::import_openai(b"", &ImportOptions::default()).err().unwrap().to_string().contains("empty"));

    // One weight removed (its /read Identity left dangling, as a hand edit would).
    let mut g = graph_def();
    remove(&mut g, &["model/1/0/f1/l_2/W".to_string()]);
    let e = refusal(&g);
    assert!(e.contains("'model/1/0/f1/l_2/W'") && e.contains("missing") && e.contains("L1.S0.f.l2.W"), "{e}");

    // A wrong shape.
    let mut g = graph_def();
    let n = g.node.iter_mut().find(|n| n.name == "model/0/1/f1/l_last/b").unwrap();
    *n = const_node("model/0/1/f1/l_last/b", tensor_f32(&[1, 1, 1, 5], &[0.1; 5]));
    let e = refusal(&g);
    assert!(e.contains("'model/0/1/f1/l_last/b'") && e.contains("[1, 1, 1, 5]"), "{e}");

    // Content that does not fill the declared shape.
    let mut g = graph_def();
    let n = g.node.iter_mut().find(|n| n.name == "model/1/1/invconv/W").unwrap();
    *n = const_node("model/1/1/invconv/W", TensorProto { tensor_content: Bytes::from(vec![0u8; 40]), ..tensor_f32(&[24, 24], &[]) });
    let e = refusal(&g);
    assert!(e.contains("model/1/1/invconv/W") && e.contains("40 bytes"), "{e}");

    // An LU-decomposed invconv with a factor missing.
    let mut g = graph_def();
    remove(&mut g, &["model/0/0/invconv/W".to_string()]);
    g.node.push(const_node("model/0/0/invconv/log_S", tensor_f32(&[12], &[0.0; 12])));
    let e = refusal(&g);
    assert!(e.contains("model/0/0/invconv/log_S") && e.contains("LU") && e.contains("P, L, U, sign_S missing"), "{e}");
    // A stray LU factor beside a plain W is an unknown weight.
    let mut g = graph_def();
    g.node.push(const_node("model/0/0/invconv/log_S", tensor_f32(&[12], &[0.0; 12])));
    g.node.push(op_node("model/0/0/invconv/Exp_9", "Exp", &["model/0/0/invconv/log_S"]));
    let e = refusal(&g);
    assert!(e.contains("model/0/0/invconv/log_S") && e.contains("does not know"), "{e}");

    // Unsupported: a weight OpenAI's Glow does not have, read by an op.
    let mut g = graph_def();
    g.node.push(const_node("model/0/0/f1/extra/W", tensor_f32(&[16], &[1.0; 16])));
    g.node.push(op_node("model/0/0/f1/extra/mul", "Mul", &["model/0/0/f1/Relu", "model/0/0/f1/extra/W"]));
    let e = refusal(&g);
    assert!(e.contains("model/0/0/f1/extra/W") && e.contains("does not know"), "{e}");

    // Unsupported: a folded constant from an op this importer cannot attribute.
    let mut g = graph_def();
    g.node.push(const_node("model/0/0/gate/Exp/_7__cf__7", tensor_f32(&[12], &[1.0; 12])));
    g.node.push(op_node("model/0/0/gate/mul", "Mul", &["model/0/0/concat", "model/0/0/gate/Exp/_7__cf__7"]));
    let e = refusal(&g);
    assert!(e.contains("model/0/0/gate/Exp/_7__cf__7"), "{e}");

    // The released graph's extra input: fine when nothing in the flow reads it, refused
    // (naming it and its reader) when the flow depends on it.
    let mut g = graph_def();
    let mut ph = find(&g, "input/image").clone();
    ph.name = "input/downsampled_image".into();
    g.node.push(ph);
    let imp = import_def(&g, &ImportOptions::default()).unwrap();
    assert!(imp.report.notes.iter().any(|n| n.contains("input/downsampled_image")), "{:?}", imp.report.notes);
    g.node.push(op_node("input/Cast_ds", "Cast", &["input/downsampled_image"]));
    g.node.push(op_node("model/prior/ds_add", "AddV2", &["model/prior/zeros", "input/Cast_ds"]));
    let e = refusal(&g);
    assert!(e.contains("input/downsampled_image") && e.contains("model/prior/ds_add"), "{e}");

    // A graph that is not OpenAI's Glow at all.
    let mut g = graph_def();
    g.node.retain(|n| n.name != "input/image");
    assert!(refusal(&g).contains("input/image"));
    let g = GraphDef { node: vec![const_node("a", tensor_f32(&[1], &[1.0]))], versions: None };
    assert!(refusal(&g).contains("input/image"));
}

#[test]
fn z_manipulate_becomes_attribute_directions_and_the_directory_checks_out() {
    let mut imp = import::import_openai(&graph_bytes(), &ImportOptions::default()).unwrap();
    let d = 768;
    let rows: Vec<f32> = (0..40 * d).map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5).collect();
    let npy = glow_web::npy::write_f32(&[40, d], &rows);
    // Wrong shapes are refused.
    let bad = glow_web::npy::write_f32(&[40, d - 1], &rows[..40 * (d - 1)]);
    assert!(imp.add_z_manipulate(&bad, None, false).unwrap_err().to_string().contains("expected [n_attributes, 768]"));
    let five = glow_web::npy::write_f32(&[5, d], &rows[..5 * d]);
    assert!(imp.add_z_manipulate(&five, None, false).unwrap_err().to_string().contains("names"));
    imp.add_z_manipulate(&npy, None, false).unwrap();
    let out = std::env::temp_dir().join(format!("glow-import-test-{}", std::process::id()));
    import::write_model_dir(&out, &imp).unwrap();
    let model = Model::load_dir(&out).unwrap();
    let dirs = model.directions.as_ref().unwrap();
    assert_eq!(dirs.names.len(), 40);
    assert_eq!(dirs.names[31], "Smiling");
    assert_eq!(dirs.row(31), &rows[31 * d..32 * d]);
    let check = import::check_model_dir(&out).unwrap();
    assert_eq!(check.images, 3);
    assert!(check.bits_per_dim.iter().all(|b| b.is_finite()));
    assert!(check.max_roundtrip_error < 1e-4, "{}", check.max_roundtrip_error);
    std::fs::remove_dir_all(&out).unwrap();
}
