//! Kernel benchmarks shared by `glow bench --kernels` and the browser's `benchKernels`:
//! the adapter's matmul limit (the best large square matmul our own kernels reach, with f32
//! or f16 weights) and each level-0 conv class of a model, timed the way the engine runs it.

use crate::gpu::kernels::conv::{Combine, ConvLayout, WeightFormat};
use crate::gpu::kernels::Kernel;
use crate::gpu::single::run_kernel_timed;
use crate::gpu::GpuContext;
use crate::error::Result;
use crate::model::Model;

/// Milliseconds from a monotonic clock (performance.now() in the browser).
fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

/// Best ms per dispatch of one kernel over five passes of `reps` dispatches (after one
/// untimed pass): GPU time from timestamp queries around the pass where the adapter has
/// them, else wall time with readback. The best pass, not the median: on a shared machine
/// a pass is only ever slowed down by others; the matmul limit and every conv class are
/// measured the same way (and as `GpuEngine::profile` times the layers inside the model).
async fn time_kernel(ctx: &GpuContext, key: &dyn Kernel, groups: (u32, u32, u32), storage: &[Vec<u8>], params: &[u8], reps: usize) -> Result<f64> {
    let read = storage.len() - 1;
    run_kernel_timed(ctx, key, storage, params, None, groups, read, 1).await?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = now_ms();
        let (_, gpu_ms) = run_kernel_timed(ctx, key, storage, params, None, groups, read, reps).await?;
        best = best.min(gpu_ms.unwrap_or(now_ms() - t) / reps as f64);
    }
    Ok(best)
}

/// Times one conv shape the way the engine runs it: one conv kernel, or for a 3x3 conv
/// whose input channels are not a multiple of 4 (and fit `width`), im2col + a 1x1 conv;
/// weights stored in `format`.
#[allow(clippy::too_many_arguments)]
pub async fn time_conv(ctx: &GpuContext, m: usize, h: usize, w: usize, cin: usize, in_stride: usize, cout: usize, ksize: u32, relu: bool, edge: bool, width: usize, format: WeightFormat) -> Result<serde_json::Value> {
    let f = |n: usize| bytemuck::cast_slice::<f32, u8>(&vec![0.01f32; n]).to_vec();
    let k = (ksize * ksize) as usize * cin;
    let flop = 2.0 * (m * k * cout) as f64;
    let reps = ((2e9 / flop) as usize).clamp(1, 50);
    let batch = m / (h * w);
    // The same layout decision as the engine's (ConvLayout), with placeholder weights.
    let layout = ConvLayout::new(ksize, cin, cout, &vec![0.01; k * cout], format, in_stride, cout, 0, (width > 0).then_some(width));
    let (pre, p) = layout.params(batch, h, w, in_stride, cout, 0);
    let kernel = layout.kernel(relu, edge, Combine::Store);
    // The bias buffer has room for the f16 format's per-channel factors after the bias.
    let storage = [f(m * p.in_stride as usize), layout.weight_bytes(), f(2 * cout), f(16 * cout), f(m * cout)];
    let ms_c = time_kernel(ctx, &kernel, kernel.groups(&p), &storage, bytemuck::bytes_of(&p), reps).await?;
    let (label, ms, ms_im2col) = match pre {
        Some((im2col, pi)) => {
            let ms_i = time_kernel(ctx, &im2col, im2col.groups(&pi), &[f(m * in_stride), f(m * layout.cin)], bytemuck::bytes_of(&pi), reps).await?;
            (format!("{} + {}", im2col.label(), kernel.label()), ms_i + ms_c, Some(ms_i))
        }
        None => (kernel.label(), ms_c, None),
    };
    Ok(serde_json::json!({"kernel": label, "m": m, "k": k, "n": cout, "ms": ms, "ms_im2col": ms_im2col, "gflop_per_s": flop / (ms * 1e-3) / 1e9}))
}

/// How many times the matmul and the conv classes are each timed, in turn: each keeps its
/// best. A fraction of the limit compares two figures taken at different moments, and on a
/// shared machine the matmul alone, timed once, came out anywhere from 7.6 to 13.4 GFLOP/s
/// within minutes on lavapipe (2026-11-29); taking each one's best over rounds spread across
/// the whole run lets both see the machine's fast spells.
const ROUNDS: usize = 3;

/// The 1024^3 matmul (through the 1x1 conv kernel, with f32 weights and, when `format` is
/// F16, with f16 weights too: the faster of the two is the limit) and the level-0 conv
/// classes of `model` at `batch` images with weights in `format`, each with its fraction of
/// the limit's GFLOP/s; each the best of `ROUNDS` rounds.
pub async fn conv_classes(ctx: &GpuContext, model: &Model, batch: usize, format: WeightFormat) -> Result<serde_json::Value> {
    let s = model.folded.levels[0].shape;
    let c = &model.config;
    let w = c.width as usize;
    let m = batch * s.pixels();
    let e = c.edge_bias;
    // (name, m, h, w, cin, in_stride, cout, ksize, relu, edge, im2col width, format)
    type Shape = (&'static str, usize, usize, usize, usize, usize, usize, u32, bool, bool, usize, WeightFormat);
    let mut shapes: Vec<Shape> = vec![("matmul_1024", 1024, 32, 32, 1024, 1024, 1024, 1, false, false, 0, WeightFormat::F32)];
    if format == WeightFormat::F16 {
        shapes.push(("matmul_1024_f16_weights", 1024, 32, 32, 1024, 1024, 1024, 1, false, false, 0, format));
    }
    // The step affine maps stay f32 in every format (GpuWeights), so they are timed so.
    shapes.extend([
        ("level0 f1 conv3x3 (C/2 -> width)", m, s.h, s.w, s.c / 2, s.c, w, 3, true, e, w, format),
        ("level0 f2 conv1x1 (width -> width)", m, s.h, s.w, w, w, w, 1, true, false, w, format),
        ("level0 f3 conv3x3 (width -> C/2 or C)", m, s.h, s.w, w, w, c.coupling_out(0), 3, false, e, w, format),
        ("level0 step affine (C -> C)", m, s.h, s.w, s.c, s.c, s.c, 1, false, false, w, WeightFormat::F32),
    ]);
    let mut best: Vec<serde_json::Value> = vec![serde_json::Value::Null; shapes.len()];
    for _ in 0..ROUNDS {
        for (i, &(_, m, h, wd, cin, in_stride, cout, ksize, relu, edge, width, format)) in shapes.iter().enumerate() {
            let v = time_conv(ctx, m, h, wd, cin, in_stride, cout, ksize, relu, edge, width, format).await?;
            if best[i].is_null() || v["ms"].as_f64() < best[i]["ms"].as_f64() {
                best[i] = v;
            }
        }
    }
    let gflops = |v: &serde_json::Value| v["gflop_per_s"].as_f64().unwrap_or(0.0);
    let mut best = shapes.iter().map(|s| s.0).zip(best);
    let matmul = best.next().map(|(_, v)| v).unwrap_or_default();
    let matmul_f16 = if format == WeightFormat::F16 { best.next().map(|(_, v)| v).unwrap_or_default() } else { serde_json::Value::Null };
    // The best our kernels reach on this adapter: with f16 weights (half the bytes to read)
    // the matmul can be faster, and a conv with f16 weights is held to that.
    let limit = gflops(&matmul).max(gflops(&matmul_f16)).max(1e-9);
    let classes: Vec<serde_json::Value> = best.map(|(name, v)| serde_json::json!({"class": name, "fraction_of_matmul": gflops(&v) / limit, "result": v})).collect();
    let passes = if ctx.timestamps { "GPU time (timestamp queries around a pass of repeated dispatches)" } else { "wall time with readback" };
    let timing = format!("{passes}, best of 5 passes in each of {ROUNDS} rounds");
    Ok(serde_json::json!({"adapter": ctx.adapter_description(), "timing": timing, "weights": format.name(), "matmul_1024": matmul, "matmul_1024_f16_weights": matmul_f16, "limit_gflop_per_s": limit, "conv_classes": classes}))
}
