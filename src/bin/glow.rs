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
    use glow_web::model::level_temperatures;
    use glow_web::reference;
    use glow_web::{image_io, npy, CpuGlow, GpuContext, Glow, Model};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
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
        /// Run the fast CPU engine instead of the GPU
        #[arg(long)]
        cpu: bool,
        /// Images per GPU dispatch
        #[arg(long, default_value_t = 4)]
        batch: usize,
    }

    #[derive(clap::Args, Clone)]
    struct ImageArgs {
        /// Centre-crop images to the model's aspect ratio and resize them (bilinear) to its size
        #[arg(long)]
        fit: bool,
        /// Apply the model's recorded crop/pad (model.json "preprocess") to raw source images,
        /// e.g. CelebA's aligned 89x109 (or 178x218) files
        #[arg(long, conflicts_with = "fit")]
        preprocess: bool,
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
        /// Print one JSON line with bits_per_dim per image
        Bpd {
            #[command(flatten)]
            m: ModelArgs,
            #[command(flatten)]
            i: ImageArgs,
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

    enum Engine {
        Gpu(Glow),
        Cpu(CpuGlow),
    }

    impl Engine {
        fn open(m: &ModelArgs) -> Result<(Model, Engine)> {
            let model = load_model(m)?;
            if m.cpu {
                let cpu = CpuGlow::new(&model);
                return Ok((model, Engine::Cpu(cpu)));
            }
            let ctx = Arc::new(pollster::block_on(GpuContext::new())?);
            let glow = pollster::block_on(Glow::new(ctx, &model, m.batch))?;
            Ok((model, Engine::Gpu(glow)))
        }
        fn adapter(&self) -> String {
            match self {
                Engine::Gpu(g) => g.adapter_info(),
                Engine::Cpu(_) => format!("CPU ({} on {})", std::env::consts::ARCH, std::env::consts::OS),
            }
        }
        /// Decode on whichever engine is open (the GPU plan's quantize flag is set at open).
        fn decode(&self, eps: &[f32], n: usize, temps: &[f32], quantize: bool) -> Result<Vec<u8>> {
            match self {
                Engine::Gpu(g) => pollster::block_on(g.decode(eps, n, temps)),
                Engine::Cpu(c) => Ok(c.decode(eps, n, temps, quantize)),
            }
        }
        fn encode(&self, rgba: &[u8], n: usize) -> Result<reference::Encoded> {
            match self {
                Engine::Gpu(g) => pollster::block_on(g.encode(rgba, n)),
                Engine::Cpu(c) => Ok(c.encode(rgba, n)),
            }
        }
    }

    fn load_model(m: &ModelArgs) -> Result<Model> {
        if m.random {
            let text = std::fs::read_to_string(&m.model).map_err(|e| GlowError::Io(format!("{}: {e}", m.model.display())))?;
            return Model::random(&glow_web::model::ModelConfig::from_json(&text)?, 1);
        }
        Model::load_dir(&m.model)
    }

    fn grid_cols(n: usize) -> usize {
        (n as f64).sqrt().ceil() as usize
    }

    fn load_images(model: &Model, paths: &[PathBuf], i: &ImageArgs) -> Result<Vec<u8>> {
        let (w, h) = (model.config.image.width, model.config.image.height);
        let mut all = Vec::new();
        for p in paths {
            if i.preprocess {
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
                let (model, mut engine) = Engine::open(&m)?;
                if let Engine::Gpu(g) = &mut engine {
                    g.quantize_output = quantize;
                }
                let temps = level_temperatures(&model.config, temperature, &per_level)?;
                if n == 0 || n > 1024 {
                    return Err(GlowError::Input(format!("--n {n}: ask for 1 to 1024 images")));
                }
                let t0 = Instant::now();
                let rgba = match &engine {
                    Engine::Gpu(g) => pollster::block_on(g.sample(n, &temps, seed))?,
                    Engine::Cpu(_) => engine.decode(&reference::random_eps(seed, n, model.dim()), n, &temps, quantize)?,
                };
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                image_io::save_grid(&out, &rgba, n, model.width(), model.height(), grid_cols(n))?;
                println!(
                    "{}",
                    serde_json::json!({"out": out, "n": n, "temperatures": temps, "seed": seed, "ms": ms, "adapter": engine.adapter()})
                );
            }
            Cmd::Encode { m, i, image, out } => {
                let (model, engine) = Engine::open(&m)?;
                let rgba = load_images(&model, std::slice::from_ref(&image), &i)?;
                let enc = engine.encode(&rgba, 1)?;
                write(&out, &npy::write_f32(&[1, model.dim()], &enc.eps))?;
                println!("{}", serde_json::json!({"image": image, "out": out, "dim": model.dim(), "bits_per_dim": enc.bits_per_dim[0]}));
            }
            Cmd::Decode { m, eps, temperature, quantize, out } => {
                let (model, mut engine) = Engine::open(&m)?;
                if let Engine::Gpu(g) = &mut engine {
                    g.quantize_output = quantize;
                }
                let bytes = std::fs::read(&eps).map_err(|e| GlowError::Io(format!("{}: {e}", eps.display())))?;
                let (shape, values) = npy::read_f32(&bytes)?;
                let d = model.dim();
                if values.len() % d != 0 || values.is_empty() || shape.last() != Some(&d) {
                    return Err(GlowError::Input(format!("{}: shape {shape:?} is not [N, {d}] for this model", eps.display())));
                }
                let n = values.len() / d;
                let temps = level_temperatures(&model.config, temperature, &[])?;
                let rgba = engine.decode(&values, n, &temps, quantize)?;
                image_io::save_grid(&out, &rgba, n, model.width(), model.height(), grid_cols(n))?;
                println!("{}", serde_json::json!({"eps": eps, "out": out, "n": n}));
            }
            Cmd::Bpd { m, i, images } => {
                let (model, engine) = Engine::open(&m)?;
                for p in &images {
                    let rgba = load_images(&model, std::slice::from_ref(p), &i)?;
                    let enc = engine.encode(&rgba, 1)?;
                    println!("{}", serde_json::json!({"image": p, "bits_per_dim": enc.bits_per_dim[0]}));
                }
            }
            Cmd::Bench { m, runs, kernels, profile } => bench(&m, runs, kernels, profile)?,
            Cmd::Manipulate { m, attributes, amounts, temperature, seed, out } => {
                let (model, engine) = Engine::open(&m)?;
                let dirs = model.directions.as_ref().ok_or_else(|| GlowError::Input(format!("model '{}' has no attribute directions", model.config.name)))?;
                let d = model.dim();
                // The face is the sample at this seed and temperature; its eps is scaled
                // by T so that decoding at T = 1 shows exactly that sample.
                let base: Vec<f32> = reference::random_eps(seed, 1, d).iter().map(|v| v * temperature).collect();
                let mut eps = Vec::new();
                for a in &attributes {
                    let i = dirs.index(a).ok_or_else(|| GlowError::Input(format!("unknown attribute '{a}'; the model has: {}", dirs.names.join(", "))))?;
                    for t in &amounts {
                        eps.extend(base.iter().zip(dirs.row(i)).map(|(e, v)| e + t * v));
                    }
                }
                let n = eps.len() / d;
                let temps = level_temperatures(&model.config, 1.0, &[])?;
                let rgba = engine.decode(&eps, n, &temps, false)?;
                image_io::save_grid(&out, &rgba, n, model.width(), model.height(), amounts.len())?;
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
            Cmd::ImportOpenai { graph, out, f16, z_manipulate } => {
                let opts = glow_web::import::ImportOptions { f16, ..Default::default() };
                let report = glow_web::import::convert_file(&graph, &out, &opts, z_manipulate.as_deref())?;
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            }
        }
        Ok(())
    }

    fn stats(mut v: Vec<f64>) -> serde_json::Value {
        v.sort_by(f64::total_cmp);
        let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        serde_json::json!({"median_ms": pick(0.5), "p90_ms": pick(0.9), "min_ms": v[0], "runs": v.len()})
    }

    fn bench_cpu(model: &Model, b: usize, runs: usize) -> Result<()> {
        let flop = model.config.flops_per_image();
        let temps = vec![0.7; model.config.levels as usize];
        let cpu = CpuGlow::new(model);
        let eps = reference::random_eps(1, b, model.dim());
        let rgba = cpu.decode(&eps, b, &temps, false);
        let time = |f: &dyn Fn()| {
            f();
            let mut v = Vec::new();
            for _ in 0..runs.max(1) {
                let t = Instant::now();
                f();
                v.push(t.elapsed().as_secs_f64() * 1e3);
            }
            v
        };
        let dec = time(&|| {
            cpu.decode(&eps, b, &temps, false);
        });
        let enc = time(&|| {
            cpu.encode(&rgba, b);
        });
        let med = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "adapter": format!("CPU engine, 1 thread ({} {})", std::env::consts::ARCH, std::env::consts::OS),
                "model": model.config.name, "batch": b, "gflop_per_image": flop / 1e9,
                "decode": {"warm": stats(dec.clone()), "ms_per_image": med(&dec) / b as f64, "gflop_per_s": flop * b as f64 / (med(&dec) * 1e-3) / 1e9},
                "encode": {"warm": stats(enc.clone()), "ms_per_image": med(&enc) / b as f64, "gflop_per_s": flop * b as f64 / (med(&enc) * 1e-3) / 1e9},
            }))
            .unwrap_or_default()
        );
        Ok(())
    }

    fn bench(m: &ModelArgs, runs: usize, kernels: bool, profile: bool) -> Result<()> {
        let model = load_model(m)?;
        let b = m.batch;
        let flop = model.config.flops_per_image();
        let temps = vec![0.7; model.config.levels as usize];
        let runs = runs.max(1);
        if m.cpu {
            return bench_cpu(&model, b, runs);
        }
        let t0 = Instant::now();
        let ctx = Arc::new(pollster::block_on(GpuContext::new())?);
        let glow = pollster::block_on(Glow::new(ctx, &model, b))?;
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
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
        let eps = reference::random_eps(1, b, model.dim());
        let (dec_cold, dec) = time(&|| pollster::block_on(glow.decode(&eps, b, &temps)).map(|_| ()))?;
        let rgba = pollster::block_on(glow.decode(&eps, b, &temps))?;
        let (enc_cold, enc) = time(&|| pollster::block_on(glow.encode(&rgba, b)).map(|_| ()))?;
        let med = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let gflops = |ms: f64| flop * b as f64 / (ms * 1e-3) / 1e9;
        let (encode_dispatches, decode_dispatches) = glow.dispatch_counts();
        let kernels_json = if kernels { pollster::block_on(glow_web::gpu::bench::conv_classes(glow.context(), &model, b))? } else { serde_json::Value::Null };
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "adapter": glow.adapter_info(),
                "model": model.config.name,
                "batch": b,
                "gflop_per_image": flop / 1e9,
                "plan_build_ms": load_ms,
                "decode": {"cold_ms": dec_cold, "warm": stats(dec.clone()), "ms_per_image": med(&dec) / b as f64, "gflop_per_s": gflops(med(&dec)), "dispatches": decode_dispatches},
                "encode": {"cold_ms": enc_cold, "warm": stats(enc.clone()), "ms_per_image": med(&enc) / b as f64, "gflop_per_s": gflops(med(&enc)), "dispatches": encode_dispatches},
                "kernels": kernels_json,
                "profile": if profile {
                    let limit = kernels_json["matmul_1024"]["gflop_per_s"].as_f64();
                    serde_json::json!({
                        "encode": pollster::block_on(glow.profile(false, 3))?.map_or_else(|| "the adapter has no timestamp queries".into(), |t| glow_web::engine::profile_summary(&t, limit, 3)),
                        "decode": pollster::block_on(glow.profile(true, 3))?.map_or_else(|| "the adapter has no timestamp queries".into(), |t| glow_web::engine::profile_summary(&t, limit, 3)),
                    })
                } else { serde_json::Value::Null },
                "note": "warm times include readback (map_async awaited); cold = first call after the plan is built"
            }))
            .unwrap_or_default()
        );
        Ok(())
    }
}
