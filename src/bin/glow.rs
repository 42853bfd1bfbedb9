//! `glow`: the native command-line tool. Runs the same engine as the browser, through
//! wgpu (Vulkan; lavapipe on machines without a GPU).

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = cli::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use clap::{Parser, Subcommand};
    use glow_web::error::{GlowError, Result};
    use glow_web::model::{pixels, rng};
    use glow_web::face::{FaceModels, FoundFace, Image, Template};
    use glow_web::{image_io, npy, reference, GpuWeights, Model, Options, Preference, Session};
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    #[derive(Parser)]
    #[command(name = "glow", about = "Glow normalizing flow: sample, encode, decode, bits/dim, benchmark")]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(clap::Args, Clone)]
    struct ModelArgs {
        /// Model directory (model.json + weights.safetensors), or with --random a model.json
        #[arg(long)]
        model: PathBuf,
        /// Treat --model as a config file and use random weights (for benchmarks)
        #[arg(long)]
        random: bool,
        /// auto: the GPU on a hardware adapter, else the CPU engine (faster than a
        /// software adapter such as lavapipe); gpu; cpu. The choice and its reason are
        /// printed on stderr.
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Also run the CPU reference (plain f64 loops) on the same input and report how
        /// far the engine's result is from it
        #[arg(long)]
        reference: bool,
        /// Images per GPU dispatch
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Threads of the CPU engine, over which it spreads the images and each image's convs
        /// (0: one per core)
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// How the GPU engine stores conv weights: f16 (half the memory; arithmetic stays f32),
        /// f32, or auto (f16 when the model's weights are f16 values, as in the shipped models)
        #[arg(long, default_value = "auto")]
        gpu_weights: String,
    }

    #[derive(clap::Args, Clone)]
    struct ImageArgs {
        /// Centre-crop images to the model's aspect ratio and resize them to its size (area average
        /// when shrinking, linear when enlarging, straight from the 8-bit rows)
        #[arg(long)]
        fit: bool,
        /// Apply the model's recorded crop/pad (model.json "preprocess") to raw source images,
        /// e.g. CelebA's aligned 89x109 (or 178x218) files
        #[arg(long, conflicts_with = "fit")]
        preprocess: bool,
        /// Find the face (face-api's tiny detector and 68 landmarks, ported) and align it to
        /// the model's template (model.json "align"): eyes and mouth where the training
        /// crops have them, resampled from full resolution. The detection goes to stderr
        #[arg(long, conflicts_with_all = ["fit", "preprocess"])]
        align: bool,
        /// The face networks' folder (tiny_face_detector.safetensors, face_landmark_68_tiny.safetensors)
        #[arg(long, default_value = "models/face")]
        face_models: PathBuf,
    }

    #[derive(Subcommand)]
    enum Cmd {
        /// Sample N images into one PNG grid
        Sample {
            #[command(flatten)]
            m: ModelArgs,
            #[arg(long, default_value_t = 16)]
            n: usize,
            #[arg(long, default_value_t = 0.7)]
            temperature: f32,
            /// One temperature per level, comma separated (overrides --temperature)
            #[arg(long, value_delimiter = ',')]
            per_level: Vec<f32>,
            #[arg(long, default_value_t = 0)]
            seed: u32,
            /// Floor outputs to the model's n_bits levels (OpenAI's bit-exact images)
            #[arg(long)]
            quantize: bool,
            #[arg(long, default_value = "samples.png")]
            out: PathBuf,
        },
        /// Encode one image to its exact latent eps (.npy, shape [1, D])
        Encode {
            #[command(flatten)]
            m: ModelArgs,
            #[command(flatten)]
            i: ImageArgs,
            image: PathBuf,
            #[arg(long, default_value = "eps.npy")]
            out: PathBuf,
        },
        /// Decode eps (.npy, shape [N, D] or [D]) to a PNG grid
        Decode {
            #[command(flatten)]
            m: ModelArgs,
            eps: PathBuf,
            #[arg(long, default_value_t = 1.0)]
            temperature: f32,
            #[arg(long)]
            quantize: bool,
            #[arg(long, default_value = "decoded.png")]
            out: PathBuf,
        },
        /// Print one JSON line per image with its bits/dim, two ways:
        /// `bits_per_dim`, each value at the centre of its bin (deterministic; not a bound,
        /// and a flat image can score below zero), and `bits_per_dim_dequantized`, OpenAI's
        /// figure: the mean over --draws seeded uniform dequantization noise draws (what
        /// papers report; lower means the model finds the image more likely)
        Bpd {
            #[command(flatten)]
            m: ModelArgs,
            #[command(flatten)]
            i: ImageArgs,
            /// Noise draws averaged for the dequantized figure
            #[arg(long, default_value_t = 4)]
            draws: u32,
            /// Seed of the dequantization noise
            #[arg(long, default_value_t = 0)]
            seed: u32,
            #[arg(required = true)]
            images: Vec<PathBuf>,
        },
        /// Benchmark encode and decode; prints JSON
        Bench {
            #[command(flatten)]
            m: ModelArgs,
            /// Warm runs after two warm-ups
            #[arg(long, default_value_t = 10)]
            runs: usize,
            /// Also time each conv class of level 0 and a square matmul (the adapter's limit)
            #[arg(long)]
            kernels: bool,
            /// Also time every dispatch of one encode and one decode with timestamp queries
            /// (where the adapter has them), summed per level and layer
            #[arg(long)]
            profile: bool,
            /// Instead: the GPU engine with f16 and with f32 weights on one adapter, calls
            /// alternating between them (a fair comparison on a shared machine): weight
            /// bytes, ms per image, and how far f16's eps, bits/dim and decodes are from f32's
            #[arg(long)]
            compare_weights: bool,
            /// Instead: the CPU engine on 1 thread and on this many, calls alternating between
            /// them (so both see the same share of a busy or throttled machine): ms per
            /// image and the speed-up, at --batch, with identical results checked
            #[arg(long, conflicts_with = "compare_weights")]
            compare_threads: Option<usize>,
        },
        /// Move one sampled face along attribute directions: one row per attribute
        Manipulate {
            #[command(flatten)]
            m: ModelArgs,
            /// Attribute names (see `glow info`), comma separated
            #[arg(long, value_delimiter = ',', required = true)]
            attributes: Vec<String>,
            /// Amounts along each direction, comma separated
            #[arg(long, value_delimiter = ',', allow_hyphen_values = true, default_value = "-1.5,-0.75,0,0.75,1.5")]
            amounts: Vec<f32>,
            #[arg(long, default_value_t = 0.7)]
            temperature: f32,
            #[arg(long, default_value_t = 0)]
            seed: u32,
            #[arg(long, default_value = "manipulate.png")]
            out: PathBuf,
        },
        /// Write a model directory with random weights for a config (for benchmarks)
        RandomModel {
            /// A model.json to take the configuration from
            #[arg(long)]
            config: PathBuf,
            #[arg(long)]
            out: PathBuf,
            /// Store weights as f16
            #[arg(long)]
            f16: bool,
            #[arg(long, default_value_t = 1)]
            seed: u64,
        },
        /// Find faces in a photo and align the best one to the model's template: prints JSON
        /// (every face's box, score, eyes and mouth; the transform; times), writes the crop
        /// with --out. --bench N times N runs of detection + landmarks + crop after a warm-up
        Align {
            #[arg(long)]
            model: PathBuf,
            image: PathBuf,
            #[arg(long, default_value = "models/face")]
            face_models: PathBuf,
            /// Write the aligned crop (PNG, the model's size)
            #[arg(long)]
            out: Option<PathBuf>,
            /// Also print the 68 landmarks of each face
            #[arg(long)]
            landmarks: bool,
            #[arg(long, default_value_t = 0)]
            bench: usize,
        },
        /// Measure an alignment template for a model: the mean left eye, right eye and mouth
        /// centre of its training images, in its frame. Takes raw source images (the model's
        /// "preprocess" crop is applied to the landmarks; the face is found in the whole
        /// source image, zoomed out 2x into a border first) or images of the model's size.
        /// Prints the "align" block for model.json
        AlignTemplate {
            #[arg(long)]
            model: PathBuf,
            #[arg(long, default_value = "models/face")]
            face_models: PathBuf,
            /// A file listing images, one path a line (relative paths: to the list's folder)
            #[arg(long)]
            list: Option<PathBuf>,
            images: Vec<PathBuf>,
        },
        /// Print the model's configuration and sizes as JSON
        Info {
            #[arg(long)]
            model: PathBuf,
        },
        /// Convert OpenAI's frozen Glow graph (graph_unoptimized.pb) into a model directory,
        /// then reload it and check it on synthetic images (docs/FORMAT.md)
        ImportOpenai {
            graph: PathBuf,
            out: PathBuf,
            /// Store weights (and directions) as f16
            #[arg(long)]
            f16: bool,
            /// OpenAI's z_manipulate.npy: the 40 CelebA attribute directions
            #[arg(long)]
            z_manipulate: Option<PathBuf>,
        },
    }

    fn load_model(m: &ModelArgs) -> Result<Model> {
        if m.random {
            let text = std::fs::read_to_string(&m.model).map_err(|e| GlowError::Io(format!("{}: {e}", m.model.display())))?;
            return Model::random(&glow_web::model::ModelConfig::from_json(&text)?, 1);
        }
        Model::load_dir(&m.model)
    }

    /// Loads the model and opens a session on the chosen backend, saying which and why.
    fn open(m: &ModelArgs) -> Result<Session> {
        let opts = Options { backend: Preference::parse(&m.backend)?, batch: m.batch, threads: m.threads, gpu_weights: GpuWeights::parse(&m.gpu_weights)? };
        let s = pollster::block_on(Session::new(load_model(m)?, opts))?;
        eprintln!("glow: {} backend: {}", s.backend().name(), s.reason());
        if let Some(g) = s.engine().gpu() {
            eprintln!("glow: GPU weights: {}", g.weights().reason);
        }
        Ok(s)
    }

    /// The largest |engine - reference| over two arrays, for `--reference`.
    fn max_diff(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max)
    }

    /// `--reference` for decodes: the engine's continuous output vs the reference's.
    fn check_decode(s: &Session, eps: &[f32], n: usize, temps: &[f32]) -> Result<serde_json::Value> {
        let got = pollster::block_on(s.decode_x(eps, n, temps))?;
        let want = reference::decode(&s.model().folded, eps, n, temps);
        Ok(serde_json::json!({"decode_max_abs_diff": max_diff(&got, &want)}))
    }

    /// `--reference` for encodes: eps and bits/dim vs the reference's.
    fn check_encode(s: &Session, rgba: &[u8], n: usize, enc: &glow_web::model::flow::Encoded) -> serde_json::Value {
        let c = &s.model().config;
        let x = pixels::image_to_x(rgba, c.image.channels as usize, c.n_bits);
        let want = reference::encode(&s.model().folded, &x, n);
        let bpd = enc.bits_per_dim.iter().zip(&want.bits_per_dim).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        serde_json::json!({"eps_max_abs_diff": max_diff(&enc.eps, &want.eps), "bits_per_dim_max_abs_diff": bpd})
    }

    fn grid_cols(n: usize) -> usize {
        (n as f64).sqrt().ceil() as usize
    }

    /// The face networks and the model's template, when `--align` asks for them.
    fn aligner(model: &Model, i: &ImageArgs) -> Result<Option<(FaceModels, Template)>> {
        if !i.align {
            return Ok(None);
        }
        Ok(Some((FaceModels::load_dir(&i.face_models)?, template(model)?)))
    }

    fn template(model: &Model) -> Result<Template> {
        let spec = model.config.align.as_ref().ok_or_else(|| {
            GlowError::Config(format!(
                "model '{}' has no \"align\" template; measure one with `glow align-template`, or use --fit",
                model.config.name
            ))
        })?;
        Template::new(spec, model.width(), model.height())
    }

    /// To two decimals, for the JSON a person reads.
    fn round2<const N: usize>(p: [f64; N]) -> [f64; N] {
        p.map(|v| (v * 100.0).round() / 100.0)
    }

    fn face_json(f: &FoundFace, all_points: bool) -> serde_json::Value {
        let l = &f.landmarks;
        let mut j = serde_json::json!({"box": round2(f.face.bbox), "score": (f.face.score * 1e4).round() / 1e4,
            "left_eye": round2(l.left_eye()), "right_eye": round2(l.right_eye()), "mouth": round2(l.mouth())});
        if all_points {
            j["landmarks"] = l.points.iter().map(|&p| round2(p)).collect::<Vec<_>>().into();
        }
        j
    }

    /// Decodes a photo, finds its best face and aligns it: RGBA8 of the model's size. What was
    /// found goes to stderr.
    fn load_aligned(p: &Path, faces: &FaceModels, t: &Template) -> Result<Vec<u8>> {
        let bytes = std::fs::read(p).map_err(|e| GlowError::Io(format!("{}: {e}", p.display())))?;
        let named = |e: GlowError| match e {
            GlowError::Image(m) => GlowError::Image(format!("{}: {m}", p.display())),
            e => e,
        };
        let (w, h, rgb) = image_io::decode_rgb8(&bytes).map_err(named)?;
        let img = Image::new(&rgb, w, h, 3)?;
        let found = faces.find_faces(&img);
        let best = found.first().ok_or_else(|| named(GlowError::Image(format!("no face found in the {w}x{h} image"))))?;
        let a = glow_web::face::align_found(&img, best, t)?;
        eprintln!(
            "{}",
            serde_json::json!({"image": p, "faces": found.len(), "aligned": face_json(best, false),
                "rotation_deg": (a.transform.degrees() * 100.0).round() / 100.0, "scale": a.transform.scale()})
        );
        Ok(a.rgba)
    }

    fn load_images(model: &Model, paths: &[PathBuf], i: &ImageArgs, align: Option<&(FaceModels, Template)>) -> Result<Vec<u8>> {
        let (w, h) = (model.config.image.width, model.config.image.height);
        let mut all = Vec::new();
        for p in paths {
            if let Some((faces, t)) = align {
                all.extend(load_aligned(p, faces, t)?);
            } else if i.preprocess {
                let spec = model.config.preprocess.as_ref().ok_or_else(|| {
                    GlowError::Config(format!("model '{}' records no preprocess; use --fit", model.config.name))
                })?;
                let bytes = std::fs::read(p).map_err(|e| GlowError::Io(format!("{}: {e}", p.display())))?;
                all.extend(image_io::preprocess(&bytes, spec, w, h).map_err(|e| match e {
                    GlowError::Image(m) => GlowError::Image(format!("{}: {m}", p.display())),
                    e => e,
                })?);
            } else {
                all.extend(image_io::load_rgba(p, w, h, i.fit)?);
            }
        }
        Ok(all)
    }

    fn write(path: &Path, bytes: &[u8]) -> Result<()> {
        std::fs::write(path, bytes).map_err(|e| GlowError::Io(format!("{}: {e}", path.display())))
    }

    pub fn run() -> Result<()> {
        let cli = Cli::parse();
        match cli.cmd {
            Cmd::Sample { m, n, temperature, per_level, seed, quantize, out } => {
                let s = open(&m)?;
                let temps = s.temperatures(temperature, &per_level)?;
                let t0 = Instant::now();
                let rgba = pollster::block_on(s.sample(n, &temps, seed, quantize))?;
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                image_io::save_grid(&out, &rgba, n, s.model().width(), s.model().height(), grid_cols(n))?;
                let mut j = serde_json::json!({"out": out, "n": n, "temperatures": temps, "seed": seed, "ms": ms, "backend": s.backend().name(), "adapter": s.device()});
                if m.reference {
                    j["reference"] = check_decode(&s, &s.sample_eps(n, seed, &temps)?, n, &s.temperatures(1.0, &[])?)?;
                }
                println!("{j}");
            }
            Cmd::Encode { m, i, image, out } => {
                let s = open(&m)?;
                let align = aligner(s.model(), &i)?;
                let rgba = load_images(s.model(), std::slice::from_ref(&image), &i, align.as_ref())?;
                let enc = pollster::block_on(s.encode(&rgba, 1))?;
                write(&out, &npy::write_f32(&[1, s.dim()], &enc.eps))?;
                let mut j = serde_json::json!({"image": image, "out": out, "dim": s.dim(), "bits_per_dim": enc.bits_per_dim[0]});
                if m.reference {
                    j["reference"] = check_encode(&s, &rgba, 1, &enc);
                }
                println!("{j}");
            }
            Cmd::Decode { m, eps, temperature, quantize, out } => {
                let s = open(&m)?;
                let bytes = std::fs::read(&eps).map_err(|e| GlowError::Io(format!("{}: {e}", eps.display())))?;
                let (shape, values) = npy::read_f32(&bytes)?;
                let d = s.dim();
                if values.len() % d != 0 || values.is_empty() || shape.last() != Some(&d) {
                    return Err(GlowError::Input(format!("{}: shape {shape:?} is not [N, {d}] for this model", eps.display())));
                }
                let n = values.len() / d;
                let temps = s.temperatures(temperature, &[])?;
                let rgba = pollster::block_on(s.decode(&values, n, &temps, quantize)).map_err(|e| match e {
                    GlowError::Input(msg) => GlowError::Input(format!("{}: {msg}", eps.display())),
                    e => e,
                })?;
                image_io::save_grid(&out, &rgba, n, s.model().width(), s.model().height(), grid_cols(n))?;
                let mut j = serde_json::json!({"eps": eps, "out": out, "n": n});
                if m.reference {
                    j["reference"] = check_decode(&s, &values, n, &temps)?;
                }
                println!("{j}");
            }
            Cmd::Bpd { m, i, draws, seed, images } => {
                let s = open(&m)?;
                let align = aligner(s.model(), &i)?;
                for p in &images {
                    let rgba = load_images(s.model(), std::slice::from_ref(p), &i, align.as_ref())?;
                    let b = pollster::block_on(s.bits_per_dim(&rgba, 1, draws, seed))?;
                    let mut j = serde_json::json!({"image": p, "bits_per_dim": b.bin_centre[0], "bits_per_dim_dequantized": b.dequantized[0], "draws": draws});
                    if m.reference {
                        let enc = pollster::block_on(s.encode(&rgba, 1))?;
                        j["reference"] = check_encode(&s, &rgba, 1, &enc);
                    }
                    println!("{j}");
                }
            }
            Cmd::Bench { m, runs, compare_weights: true, .. } => bench_weights(&m, runs)?,
            Cmd::Bench { m, runs, compare_threads: Some(n), .. } => bench_threads(&m, runs, n)?,
            Cmd::Bench { m, runs, kernels, profile, .. } => bench(&m, runs, kernels, profile)?,
            Cmd::Manipulate { m, attributes, amounts, temperature, seed, out } => {
                let s = open(&m)?;
                let names = s.attribute_names();
                if names.is_empty() {
                    return Err(GlowError::Input(format!("model '{}' has no attribute directions", s.model().config.name)));
                }
                // The face is the sample at this seed and temperature (its eps already
                // scaled), moved along each attribute in turn and decoded at T = 1.
                let base = s.sample_eps(1, seed, &s.temperatures(temperature, &[])?)?;
                let mut eps = Vec::new();
                for a in &attributes {
                    let i = names.iter().position(|n| n == a).ok_or_else(|| GlowError::Input(format!("unknown attribute '{a}'; the model has: {}", names.join(", "))))?;
                    for t in &amounts {
                        let mut amt = vec![0.0; names.len()];
                        amt[i] = *t;
                        eps.extend(s.manipulate(&base, &amt)?);
                    }
                }
                let n = eps.len() / s.dim();
                let rgba = pollster::block_on(s.decode(&eps, n, &s.temperatures(1.0, &[])?, false))?;
                image_io::save_grid(&out, &rgba, n, s.model().width(), s.model().height(), amounts.len())?;
                println!("{}", serde_json::json!({"out": out, "rows": attributes, "amounts": amounts, "seed": seed}));
            }
            Cmd::RandomModel { config, out, f16, seed } => {
                let text = std::fs::read_to_string(&config).map_err(|e| GlowError::Io(format!("{}: {e}", config.display())))?;
                let cfg = glow_web::model::ModelConfig::from_json(&text)?;
                let map = glow_web::model::random::random_weights(&cfg, seed)?;
                std::fs::create_dir_all(&out).map_err(|e| GlowError::Io(format!("{}: {e}", out.display())))?;
                write(&out.join("weights.safetensors"), &glow_web::model::random::write_safetensors(&cfg, &map, f16))?;
                write(&out.join("model.json"), text.as_bytes())?;
                Model::load_dir(&out)?;
                println!("{}", serde_json::json!({"out": out, "f16": f16}));
            }
            Cmd::Info { model } => {
                let model = Model::load_dir(&model)?;
                let c = &model.config;
                let params: usize = c.expected_tensors().iter().map(|(_, s)| s.iter().product::<usize>()).sum();
                println!(
                    "{}",
                    serde_json::json!({"name": c.name, "image": [c.image.width, c.image.height, c.image.channels], "n_bits": c.n_bits,
                        "levels": c.levels, "steps": c.steps, "width": c.width, "coupling": c.coupling, "edge_bias": c.edge_bias,
                        "parameters": params, "dim": model.dim(), "gflop_per_image": c.flops_per_image() / 1e9,
                        "attributes": model.directions.as_ref().map(|d| d.names.clone()).unwrap_or_default()})
                );
            }
            Cmd::Align { model, image, face_models, out, landmarks, bench } => align_cmd(&model, &image, &face_models, out.as_deref(), landmarks, bench)?,
            Cmd::AlignTemplate { model, face_models, list, images } => align_template(&model, &face_models, list.as_deref(), images)?,
            Cmd::ImportOpenai { graph, out, f16, z_manipulate } => {
                let opts = glow_web::import::ImportOptions { f16, ..Default::default() };
                let report = glow_web::import::convert_file(&graph, &out, &opts, z_manipulate.as_deref())?;
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            }
        }
        Ok(())
    }

    /// The value at quantile `q` of `v` (nearest rank; for an even count the median is the
    /// upper of the middle two, one rule for every figure the CLI prints).
    fn quantile(v: &[f64], q: f64) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(((v.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN)
    }

    fn stats(v: Vec<f64>) -> serde_json::Value {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        serde_json::json!({"median_ms": quantile(&v, 0.5), "p90_ms": quantile(&v, 0.9), "min_ms": min, "runs": v.len()})
    }

    /// Times `decode` and `encode` (of `batch` images) on each session, after two warm-up
    /// calls each, with the calls alternating between the sessions so that all see the same
    /// share of a busy machine: `[session][decode, encode]` ms per image.
    fn alternate<T, U>(
        sessions: &[Session; 2],
        runs: usize,
        batch: usize,
        decode: &dyn Fn(&Session) -> Result<T>,
        encode: &dyn Fn(&Session) -> Result<U>,
    ) -> Result<[[Vec<f64>; 2]; 2]> {
        for s in sessions {
            for _ in 0..2 {
                decode(s)?;
                encode(s)?;
            }
        }
        let mut times = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        for _ in 0..runs.max(1) {
            for (i, s) in sessions.iter().enumerate() {
                let t = Instant::now();
                decode(s)?;
                times[i][0].push(t.elapsed().as_secs_f64() * 1e3 / batch as f64);
                let t = Instant::now();
                encode(s)?;
                times[i][1].push(t.elapsed().as_secs_f64() * 1e3 / batch as f64);
            }
        }
        Ok(times)
    }

    /// `glow bench --compare-threads N`: the CPU engine on 1 thread against N threads.
    fn bench_threads(m: &ModelArgs, runs: usize, n: usize) -> Result<()> {
        let model = load_model(m)?;
        let b = m.batch;
        let open = |threads| {
            let opts = Options { backend: Preference::Cpu, batch: b, threads, gpu_weights: GpuWeights::Auto };
            pollster::block_on(Session::new(model.clone(), opts))
        };
        let sessions = [open(1)?, open(n)?];
        let temps = sessions[0].temperatures(0.7, &[])?;
        let eps = rng::random_eps(1, b, model.dim());
        let rgba = pollster::block_on(sessions[0].decode(&eps, b, &temps, true))?;
        let decode = |s: &Session| pollster::block_on(s.decode_x(&eps, b, &temps));
        let encode = |s: &Session| pollster::block_on(s.encode(&rgba, b));
        // Work is split by rows and images, never along a sum: the bits must not differ.
        let same = decode(&sessions[0])? == decode(&sessions[1])? && encode(&sessions[0])?.eps == encode(&sessions[1])?.eps;
        let times = alternate(&sessions, runs, b, &decode, &encode)?;
        let median = |v: &[f64]| stats(v.to_vec())["median_ms"].as_f64().unwrap_or(f64::NAN);
        let row = |i: usize| serde_json::json!({"adapter": sessions[i].device(), "decode_ms_per_image": stats(times[i][0].clone()), "encode_ms_per_image": stats(times[i][1].clone())});
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": model.config.name,
                "batch": b,
                "one_thread": row(0),
                "threads": row(1),
                "speed_up": {"decode": median(&times[0][0]) / median(&times[1][0]), "encode": median(&times[0][1]) / median(&times[1][1])},
                "identical_results": same,
                "note": format!("ms per image over {} calls each, alternating 1 and {n} threads; speed-up = ratio of medians", runs.max(1)),
            }))
            .unwrap_or_default()
        );
        Ok(())
    }

    /// `glow bench --compare-weights`: f16 against f32 weights on the GPU engine.
    fn bench_weights(m: &ModelArgs, runs: usize) -> Result<()> {
        use std::sync::Arc;
        let model = load_model(m)?;
        let ctx = Arc::new(pollster::block_on(glow_web::GpuContext::new())?);
        let b = m.batch;
        let open = |w| {
            let opts = Options { backend: Preference::Gpu, batch: b, threads: m.threads, gpu_weights: w };
            pollster::block_on(Session::with_context(model.clone(), opts, Ok(ctx.clone())))
        };
        let sessions = [open(GpuWeights::F16)?, open(GpuWeights::F32)?];
        let d = model.dim();
        let temps = sessions[1].temperatures(0.7, &[])?;
        let ones = sessions[1].temperatures(1.0, &[])?;
        let eps = rng::random_eps(1, b, d);
        // Images to encode: the f32 engine's decodes of the latents, quantized.
        let rgba = pollster::block_on(sessions[1].decode(&eps, b, &temps, true))?;
        let decode = |s: &Session| pollster::block_on(s.decode_x(&eps, b, &temps));
        let encode = |s: &Session| pollster::block_on(s.encode(&rgba, b));
        let times = alternate(&sessions, runs, b, &decode, &encode)?;
        let (x16, x32) = (decode(&sessions[0])?, decode(&sessions[1])?);
        let (e16, e32) = (encode(&sessions[0])?, encode(&sessions[1])?);
        let back = pollster::block_on(sessions[0].decode_x(&e16.eps, b, &ones))?;
        let c = &model.config;
        let x_in = pixels::image_to_x(&rgba, c.image.channels as usize, c.n_bits);
        let bpd = e16.bits_per_dim.iter().zip(&e32.bits_per_dim).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let row = |i: usize| {
            let w = sessions[i].engine().gpu().map(|g| g.weights().clone());
            serde_json::json!({
                "format": w.as_ref().map(|w| w.format.name()),
                "parameter_bytes": w.as_ref().map(|w| w.bytes),
                "conv_weight_bytes": w.as_ref().map(|w| w.conv_weight_bytes),
                "affine_weight_bytes_f32": w.as_ref().map(|w| w.affine_weight_bytes),
                "decode_ms_per_image": stats(times[i][0].clone()),
                "encode_ms_per_image": stats(times[i][1].clone()),
            })
        };
        let f16_lossless = sessions[0].engine().gpu().map(|g| g.weights().f16_loss.inexact == 0);
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "adapter": ctx.adapter_description(),
                "model": c.name,
                "batch": b,
                "f16": row(0),
                "f32": row(1),
                "f16_weights_are_the_files_values": f16_lossless,
                "f16_vs_f32": {
                    "eps_max_abs_diff": max_diff(&e16.eps, &e32.eps),
                    "bits_per_dim_max_abs_diff": bpd,
                    "decode_max_abs_diff": max_diff(&x16, &x32),
                    "f16_round_trip_max_abs_diff": max_diff(&back, &x_in),
                },
                "note": format!("ms per image over {} calls each, alternating f16 and f32, readback included; diffs over the {b} images the f32 engine decodes from seed 1 at T = 0.7", runs.max(1)),
            }))
            .unwrap_or_default()
        );
        Ok(())
    }

    fn bench(m: &ModelArgs, runs: usize, kernels: bool, profile: bool) -> Result<()> {
        let t0 = Instant::now();
        let s = open(m)?;
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        let model = s.model();
        let b = m.batch;
        let flop = model.config.flops_per_image();
        let temps = s.temperatures(0.7, &[])?;
        let runs = runs.max(1);
        let time = |f: &dyn Fn() -> Result<()>| -> Result<(f64, Vec<f64>)> {
            let t = Instant::now();
            f()?;
            let cold = t.elapsed().as_secs_f64() * 1e3;
            f()?;
            f()?;
            let mut warm = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                f()?;
                warm.push(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok((cold, warm))
        };
        let eps = rng::random_eps(1, b, model.dim());
        let (dec_cold, dec) = time(&|| pollster::block_on(s.decode(&eps, b, &temps, false)).map(|_| ()))?;
        let rgba = pollster::block_on(s.decode(&eps, b, &temps, false))?;
        let (enc_cold, enc) = time(&|| pollster::block_on(s.encode(&rgba, b)).map(|_| ()))?;
        let med = |v: &[f64]| quantile(v, 0.5);
        let gflops = |ms: f64| flop * b as f64 / (ms * 1e-3) / 1e9;
        let gpu = s.engine().gpu();
        let (encode_dispatches, decode_dispatches) = gpu.map_or((0, 0), |g| g.dispatch_counts());
        let kernels_json = match (kernels, gpu) {
            (true, Some(g)) => pollster::block_on(glow_web::engine::kernel_bench::conv_classes(g.context(), model, b, g.weights().format))?,
            (true, None) => "kernel benchmarks need the GPU backend (--backend gpu)".into(),
            _ => serde_json::Value::Null,
        };
        let profile_json = match (profile, gpu) {
            (true, Some(g)) => {
                let limit = kernels_json["limit_gflop_per_s"].as_f64();
                let summary = |decode| -> Result<serde_json::Value> {
                    Ok(pollster::block_on(g.profile(decode, 3))?
                        .map_or_else(|| "the adapter has no timestamp queries".into(), |t| glow_web::engine::gpu::profile_summary(&t, limit, 3)))
                };
                serde_json::json!({"encode": summary(false)?, "decode": summary(true)?})
            }
            (true, None) => "profiles need the GPU backend (--backend gpu)".into(),
            _ => serde_json::Value::Null,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "adapter": s.device(),
                "backend": s.backend().name(),
                "backend_reason": s.reason(),
                "gpu_weights": gpu.map(|g| {
                    let w = g.weights();
                    serde_json::json!({"format": w.format.name(), "reason": w.reason, "bytes": w.bytes, "conv_weight_bytes": w.conv_weight_bytes, "affine_weight_bytes_f32": w.affine_weight_bytes,
                        "weights_not_f16_values": w.f16_loss.inexact, "f16_max_rel_change": w.f16_loss.max_rel_change,
                        "device_has_shader_f16": g.context().device.features().contains(wgpu::Features::SHADER_F16)})
                }),
                "model": model.config.name,
                "batch": b,
                "gflop_per_image": flop / 1e9,
                "load_ms": load_ms,
                "decode": {"cold_ms": dec_cold, "warm": stats(dec.clone()), "ms_per_image": med(&dec) / b as f64, "gflop_per_s": gflops(med(&dec)), "dispatches": decode_dispatches},
                "encode": {"cold_ms": enc_cold, "warm": stats(enc.clone()), "ms_per_image": med(&enc) / b as f64, "gflop_per_s": gflops(med(&enc)), "dispatches": encode_dispatches},
                "kernels": kernels_json,
                "profile": profile_json,
                "note": "warm times include readback (map_async awaited); cold = first call after the session is open; load_ms = model load + adapter probe + plan build"
            }))
            .unwrap_or_default()
        );
        Ok(())
    }


    fn ms_since(t: Instant) -> f64 {
        t.elapsed().as_secs_f64() * 1e3
    }

    fn align_cmd(model: &Path, image: &Path, face_models: &Path, out: Option<&Path>, all_points: bool, bench: usize) -> Result<()> {
        let model = Model::load_dir(model)?;
        let t = template(&model)?;
        let faces = FaceModels::load_dir(face_models)?;
        let t0 = Instant::now();
        let bytes = std::fs::read(image).map_err(|e| GlowError::Io(format!("{}: {e}", image.display())))?;
        let (w, h, rgb) = image_io::decode_rgb8(&bytes)?;
        let decode_ms = ms_since(t0);
        // One run: pyramid, detection, landmarks of every face, the crop of the best.
        let run = || -> Result<(Vec<FoundFace>, Option<glow_web::face::Aligned>, [f64; 4])> {
            let t0 = Instant::now();
            let img = Image::new(&rgb, w, h, 3)?;
            let t1 = Instant::now();
            let detected = faces.detect(&img);
            let t2 = Instant::now();
            let found: Vec<FoundFace> =
                detected.iter().filter_map(|f| faces.landmarks(&img, f).ok().map(|landmarks| FoundFace { face: *f, landmarks })).collect();
            let t3 = Instant::now();
            let aligned = found.first().map(|f| glow_web::face::align_found(&img, f, &t)).transpose()?;
            let times = [(t1 - t0).as_secs_f64() * 1e3, (t2 - t1).as_secs_f64() * 1e3, (t3 - t2).as_secs_f64() * 1e3, ms_since(t3)];
            Ok((found, aligned, times))
        };
        let (found, aligned, first) = run()?;
        let mut j = serde_json::json!({
            "image": image, "size": [w, h], "decode_ms": decode_ms,
            "faces": found.iter().map(|f| face_json(f, all_points)).collect::<Vec<_>>(),
            "template": {"left_eye": t.left_eye, "right_eye": t.right_eye, "mouth": t.mouth, "size": [t.width, t.height]},
            "detector_input": format!("{0}x{0}, from the pyramid level that leaves under 2x to shrink", glow_web::face::DETECTOR_INPUT),
            "first_run_ms": {"pyramid": first[0], "detect": first[1], "landmarks": first[2], "crop": first[3], "total": first.iter().sum::<f64>()},
        });
        if let Some(a) = &aligned {
            j["transform"] = serde_json::json!({"a_b_tx_ty": a.transform.to_array(), "rotation_deg": a.transform.degrees(), "scale": a.transform.scale()});
            if let Some(out) = out {
                image::save_buffer(out, &a.rgba, t.width as u32, t.height as u32, image::ExtendedColorType::Rgba8)
                    .map_err(|e| GlowError::Io(format!("{}: {e}", out.display())))?;
                j["out"] = serde_json::json!(out);
            }
        } else if out.is_some() {
            return Err(GlowError::Image(format!("{}: no face found, nothing to write", image.display())));
        }
        if bench > 0 {
            let mut runs: Vec<[f64; 4]> = Vec::new();
            for _ in 0..bench {
                runs.push(run()?.2);
            }
            let med = |k: Option<usize>| quantile(&runs.iter().map(|r| k.map_or(r.iter().sum(), |k| r[k])).collect::<Vec<f64>>(), 0.5);
            j["bench"] = serde_json::json!({"runs": bench, "median_ms": {"pyramid": med(Some(0)), "detect": med(Some(1)),
                "landmarks": med(Some(2)), "crop": med(Some(3)), "total": med(None)},
                "note": "one thread; decode not included; every face's landmarks, the best face's crop"});
        }
        println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
        Ok(())
    }

    /// Image coordinates of a raw source image -> the model's frame, per its "preprocess"
    /// (crop box, integer source multiple k, padding), or the identity for images of the
    /// model's size.
    fn frame_map(model: &Model, w: u32, h: u32) -> Result<(f64, [f64; 2])> {
        if (w as usize, h as usize) == (model.width(), model.height()) {
            return Ok((1.0, [0.0, 0.0]));
        }
        let spec = model.config.preprocess.as_ref().ok_or_else(|| {
            GlowError::Image(format!("a {w}x{h} image is not the model's size and the model records no preprocess"))
        })?;
        let nums = |key: &str| -> Vec<f64> { spec.get(key).and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default() };
        let (src, crop, pad) = (nums("source_size"), nums("crop"), nums("pad"));
        if src.len() != 2 || crop.len() != 4 {
            return Err(GlowError::Config("preprocess: source_size and crop are needed".into()));
        }
        let k = w as f64 / src[0];
        if k < 1.0 || k.fract() != 0.0 || h as f64 != src[1] * k {
            return Err(GlowError::Image(format!("image is {w}x{h}: not the model's size nor a multiple of its source size {}x{}", src[0], src[1])));
        }
        let (left, top) = if pad.len() == 4 { (pad[2], pad[0]) } else { (0.0, 0.0) };
        Ok((1.0 / k, [left - crop[0], top - crop[1]]))
    }

    fn align_template(model: &Path, face_models: &Path, list: Option<&Path>, mut images: Vec<PathBuf>) -> Result<()> {
        let model = Model::load_dir(model)?;
        let faces = FaceModels::load_dir(face_models)?;
        if let Some(list) = list {
            let text = std::fs::read_to_string(list).map_err(|e| GlowError::Io(format!("{}: {e}", list.display())))?;
            let base = list.parent().unwrap_or(Path::new("."));
            images.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| base.join(l)));
        }
        if images.is_empty() {
            return Err(GlowError::Input("no images: pass them or --list".into()));
        }
        let (mut sum, mut sq, mut n, mut missed) = ([0f64; 6], [0f64; 6], 0u64, Vec::new());
        let t0 = Instant::now();
        for p in &images {
            let bytes = std::fs::read(p).map_err(|e| GlowError::Io(format!("{}: {e}", p.display())))?;
            let (w, h, rgb) = image_io::decode_rgb8(&bytes)?;
            let (k, off) = frame_map(&model, w, h)?;
            let img = Image::new(&rgb, w, h, 3)?;
            let Some(f) = faces.find_faces_in_crop(&img).into_iter().next() else {
                missed.push(p.display().to_string());
                continue;
            };
            let pts = f.landmarks.alignment_points().map(|q| [q[0] * k + off[0], q[1] * k + off[1]]);
            for (i, v) in pts.iter().flatten().enumerate() {
                sum[i] += v;
                sq[i] += v * v;
            }
            n += 1;
        }
        if n == 0 {
            return Err(GlowError::Image("no face found in any image".into()));
        }
        let mean: Vec<f64> = sum.iter().map(|s| (s / n as f64 * 1000.0).round() / 1000.0).collect();
        let sd: Vec<f64> = sum.iter().zip(&sq).map(|(s, q)| ((q / n as f64 - (s / n as f64).powi(2)).max(0.0).sqrt() * 1000.0).round() / 1000.0).collect();
        let align = serde_json::json!({"left_eye": [mean[0], mean[1]], "right_eye": [mean[2], mean[3]], "mouth": [mean[4], mean[5]],
            "measured_on": n, "detector": "face-api tiny 1.7.15 (tiny_face_detector + face_landmark_68_tiny, ported)"});
        // The block must be a usable template for this model.
        let spec: glow_web::model::config::AlignSpec = serde_json::from_value(align.clone()).map_err(|e| GlowError::Input(e.to_string()))?;
        Template::new(&spec, model.width(), model.height())?;
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"align": align, "std_dev": {"left_eye": [sd[0], sd[1]], "right_eye": [sd[2], sd[3]], "mouth": [sd[4], sd[5]]},
                "images": images.len(), "no_face": missed.len(), "no_face_examples": missed.iter().take(10).collect::<Vec<_>>(), "seconds": t0.elapsed().as_secs_f64()}))
            .unwrap_or_default()
        );
        Ok(())
    }
}
