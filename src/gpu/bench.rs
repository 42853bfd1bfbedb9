//! Kernel benchmarks shared by `glow bench --kernels` and the browser's `benchKernels`:
//! the adapter's matmul limit (the best large square f32 matmul our own kernels reach)
//! and each level-0 conv class of a model, timed the way the engine runs it.

use super::kernels::{conv_kernel, elementwise_groups, Conv2dParams, KernelKey};
use super::single::run_kernel_timed;
use super::GpuContext;
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
/// measured the same way (and as `Glow::profile` times the layers inside the model).
async fn time_kernel(ctx: &GpuContext, key: KernelKey, groups: (u32, u32, u32), storage: &[Vec<u8>], params: &[u8], reps: usize) -> Result<f64> {
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
/// whose input channels are not a multiple of 4 (and fit `width`), im2col + a 1x1 conv.
#[allow(clippy::too_many_arguments)]
pub async fn time_conv(ctx: &GpuContext, m: usize, h: usize, w: usize, cin: usize, in_stride: usize, cout: usize, ksize: u32, relu: bool, edge: bool, width: usize) -> Result<serde_json::Value> {
    let f = |n: usize| bytemuck::cast_slice::<f32, u8>(&vec![0.01f32; n]).to_vec();
    let k = (ksize * ksize) as usize * cin;
    let flop = 2.0 * (m * k * cout) as f64;
    let reps = ((2e9 / flop) as usize).clamp(1, 50);
    let p = Conv2dParams {
        batch: (m / (h * w)) as u32,
        h: h as u32,
        w: w as u32,
        cin: cin as u32,
        cout: cout as u32,
        in_stride: in_stride as u32,
        out_stride: cout as u32,
        m: m as u32,
        ..Default::default()
    };
    let kpad = (9 * cin).div_ceil(4) * 4;
    let (label, ms) = if ksize == 3 && cin % 4 != 0 && kpad <= width {
        let pi = Conv2dParams { out_stride: kpad as u32, cout: 0, ..p };
        let ms_i = time_kernel(ctx, KernelKey::Im2col3, elementwise_groups(m * kpad), &[f(m * in_stride), f(m * kpad)], bytemuck::bytes_of(&pi), reps).await?;
        let pc = Conv2dParams { cin: kpad as u32, in_stride: kpad as u32, ..p };
        let (key, groups) = conv_kernel(1, relu, edge, &pc);
        let storage = [f(m * kpad), f(kpad * cout), f(cout), f(16 * cout), f(m * cout)];
        let ms_c = time_kernel(ctx, key, groups, &storage, bytemuck::bytes_of(&pc), reps).await?;
        (format!("im2col3x3 + {}", key.label()), ms_i + ms_c)
    } else {
        let (key, groups) = conv_kernel(ksize, relu, edge, &p);
        let cin4 = cin.div_ceil(4) * 4;
        let storage = [f(m * in_stride), f((ksize * ksize) as usize * cin4 * cout), f(cout), f(16 * cout), f(m * cout)];
        (key.label(), time_kernel(ctx, key, groups, &storage, bytemuck::bytes_of(&p), reps).await?)
    };
    Ok(serde_json::json!({"kernel": label, "m": m, "k": k, "n": cout, "ms": ms, "gflop_per_s": flop / (ms * 1e-3) / 1e9}))
}

/// The 1024^3 matmul (through the 1x1 conv kernel) and the level-0 conv classes of
/// `model` at `batch` images, each with its fraction of the matmul's GFLOP/s.
pub async fn conv_classes(ctx: &GpuContext, model: &Model, batch: usize) -> Result<serde_json::Value> {
    let s = model.folded.levels[0].shape;
    let c = &model.config;
    let w = c.width as usize;
    let m = batch * s.pixels();
    let e = c.edge_bias;
    let matmul = time_conv(ctx, 1024, 32, 32, 1024, 1024, 1024, 1, false, false, 0).await?;
    let limit = matmul["gflop_per_s"].as_f64().unwrap_or(1.0);
    let mut classes = Vec::new();
    let shapes = [
        ("level0 f1 conv3x3 (C/2 -> width)", s.c / 2, s.c, w, 3, true, e),
        ("level0 f2 conv1x1 (width -> width)", w, w, w, 1, true, false),
        ("level0 f3 conv3x3 (width -> C/2 or C)", w, w, c.coupling_out(0), 3, false, e),
        ("level0 step affine (C -> C)", s.c, s.c, s.c, 1, false, false),
    ];
    for (name, cin, in_stride, cout, ksize, relu, edge) in shapes {
        let v = time_conv(ctx, m, s.h, s.w, cin, in_stride, cout, ksize, relu, edge, w).await?;
        let g = v["gflop_per_s"].as_f64().unwrap_or(0.0);
        classes.push(serde_json::json!({"class": name, "result": v, "fraction_of_matmul": g / limit}));
    }
    let timing = if ctx.timestamps { "GPU time (timestamp queries around a pass of repeated dispatches), best of 5 passes" } else { "wall time with readback, best of 5 passes" };
    Ok(serde_json::json!({"adapter": ctx.adapter_description(), "timing": timing, "matmul_1024": matmul, "conv_classes": classes}))
}
