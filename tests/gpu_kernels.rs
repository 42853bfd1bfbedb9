//! Every WGSL kernel against its CPU reference on awkward shapes (channels not a
//! multiple of 4, 1x1 spatial, sizes that do not divide the 32x32 tile), on the
//! native adapter (lavapipe in CI).
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{assert_close, Tol};
use glow_web::gpu::kernels::conv::{self, Combine, Conv2dParams, ConvKernel, ConvVariant, WeightFormat};
use glow_web::gpu::kernels::coupling::{Coupling, CouplingParams};
use glow_web::gpu::kernels::im2col::Im2col;
use glow_web::gpu::kernels::image::{ImageIn, ImageOut, ImageParams};
use glow_web::gpu::kernels::prior::{Prior, PriorParams};
use glow_web::gpu::kernels::reduce::{Reduce, ReduceParams};
use glow_web::gpu::kernels::rng::Rng;
use glow_web::gpu::kernels::squeeze::{Squeeze, SqueezeParams};
use glow_web::gpu::kernels::{elementwise_groups, CallParams, Kernel};
use glow_web::gpu::single::run_kernel;
use glow_web::gpu::GpuContext;
use glow_web::model::fold::{Conv, EDGE_CLASSES};
use glow_web::model::{flow, pixels, rng};
use glow_web::reference::ops;

/// A tiny seeded generator for test inputs (xorshift), values in [-1, 1).
struct Rand(u64);
impl Rand {
    fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

fn ctx() -> Option<GpuContext> {
    match pollster::block_on(GpuContext::new()) {
        Ok(c) => Some(c),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping GPU test: {e}");
            None
        }
        Err(e) => panic!("CI needs a GPU adapter (lavapipe): {e}"),
    }
}

fn bytes(v: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}
fn floats(b: &[u8]) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(b)
}

const CONV_TOL: Tol = Tol { abs: 1e-4, rel: 1e-4 };

#[test]
fn conv2d_matches_reference_on_awkward_shapes() {
    let Some(ctx) = ctx() else { return };
    let mut r = Rand(7);
    // (batch, h, w, cin, cout, ksize, relu, edge, in_stride, in_offset, out_stride, out_offset)
    let cases = [
        (1, 1, 1, 6, 12, 3, false, true, 12, 0, 12, 0),
        (2, 5, 7, 3, 5, 3, true, true, 3, 0, 5, 0),
        (1, 9, 11, 13, 37, 3, false, false, 20, 4, 40, 3),
        (3, 4, 4, 24, 24, 1, false, false, 24, 0, 24, 0),
        (2, 6, 3, 7, 33, 1, true, false, 9, 2, 33, 0),
        (1, 2, 1, 48, 96, 3, false, true, 48, 0, 96, 0),
        (1, 17, 17, 12, 12, 3, true, true, 12, 0, 12, 0),
        // aligned shapes, run by the vec4 variant too
        (2, 5, 7, 8, 12, 3, true, true, 16, 8, 12, 0),
        (1, 9, 10, 16, 4, 1, false, false, 16, 0, 8, 4),
        // a 1x1 conv over channels 4..12 of 16 (other channels untouched)
        (2, 3, 5, 8, 8, 1, true, false, 16, 4, 8, 0),
        (1, 1, 1, 4, 8, 3, false, true, 4, 0, 8, 0),
        (3, 6, 5, 12, 36, 3, false, false, 12, 0, 36, 0),
        // cin not a multiple of 4 inside a wider pixel (z1 of a state): masked vec4 reads
        (2, 4, 5, 6, 16, 3, true, true, 12, 0, 16, 0),
        (1, 3, 3, 2, 6, 3, false, true, 4, 0, 6, 0),
        (1, 8, 8, 128, 6, 3, false, true, 128, 0, 6, 0),
    ];
    for (batch, h, w, cin, cout, ksize, relu, edge, in_stride, in_offset, out_stride, out_offset) in cases {
        let m = batch * h * w;
        let input = r.vec(m * in_stride);
        let init_out = r.vec(m * out_stride);
        let weight = r.vec(ksize * ksize * cin * cout);
        let bias = r.vec(cout);
        let edge_table = edge.then(|| r.vec(EDGE_CLASSES * cout));
        // f16 storage: f16 values and a per-output-channel factor in [0.5, 1.5), applied by
        // the epilogue; the reference runs the same conv with the factor folded in (f32).
        let scale: Vec<f32> = (0..cout).map(|_| 1.0 + 0.5 * r.f()).collect();
        let halves: Vec<f32> = weight.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        for format in [WeightFormat::F32, WeightFormat::F16] {
            let (stored, folded, bias_buf) = match format {
                WeightFormat::F32 => (weight.clone(), weight.clone(), bias.clone()),
                WeightFormat::F16 => {
                    let folded = halves.iter().enumerate().map(|(i, &v)| v * scale[i % cout]).collect();
                    (halves.clone(), folded, [bias.as_slice(), &scale].concat())
                }
            };
            let conv = Conv { ksize, cin, cout, weight: folded, bias: bias.clone(), edge: edge_table.clone(), relu, out_scale: None };
            let g = ops::Geometry { batch, h, w, in_stride, in_offset, out_stride, out_offset };
            let mut want_stored = init_out.clone();
            ops::conv2d(&conv, g, &input, &mut want_stored);
            conv_variants_match(&ctx, &conv, &stored, &bias_buf, format, g, &input, &init_out, &want_stored);
        }
    }
}

/// Runs every conv variant that fits the shape (each with its own weight layout of
/// `stored`, in `format`) with store, add and subtract, against the reference's result.
#[allow(clippy::too_many_arguments)]
fn conv_variants_match(ctx: &GpuContext, conv: &Conv, stored: &[f32], bias: &[f32], format: WeightFormat, g: ops::Geometry, input: &[f32], init_out: &[f32], want_stored: &[f32]) {
    let ops::Geometry { batch, h, w, in_stride, in_offset, out_stride, out_offset } = g;
    let (ksize, cin, cout, relu) = (conv.ksize, conv.cin, conv.cout, conv.relu);
    let edge = conv.edge.is_some();
    let m = batch * h * w;
    let p = Conv2dParams {
        batch: batch as u32,
        h: h as u32,
        w: w as u32,
        cin: cin as u32,
        cout: cout as u32,
        in_stride: in_stride as u32,
        in_offset: in_offset as u32,
        out_stride: out_stride as u32,
        out_offset: out_offset as u32,
        m: m as u32,
        ..Default::default()
    };
    let edge_buf = conv.edge.clone().unwrap_or(vec![0.0; 4]);
    // Every variant that fits the shape, each with its own weight layout.
    let cin4 = cin.div_ceil(4) * 4;
    let vec_in = in_stride % 4 == 0 && in_offset % 4 == 0 && in_offset + cin4 <= in_stride;
    let vec_out = cout % 4 == 0 && out_stride % 4 == 0 && out_offset % 4 == 0;
    let mut variants = vec![ConvVariant::Scalar];
    if vec_in {
        variants.push(ConvVariant::Skinny);
        if vec_out {
            variants.push(ConvVariant::Vec4);
        }
    }
    assert_eq!(conv::variant(&p), *variants.last().unwrap(), "the engine picks the most specialised variant");
    for v in variants {
        let wl = conv::weights(v, ksize * ksize, cin, cout, stored);
        let storage = vec![bytes(input), conv::weight_bytes(format, &wl), bytes(bias), bytes(&edge_buf), bytes(init_out)];
        // Store, and the fused additive coupling: add to / subtract from what the
        // output holds (only the conv's own channels change).
        for (combine, sign) in [(Combine::Store, 0.0), (Combine::Add, 1.0), (Combine::Subtract, -1.0)] {
            let mut want = want_stored.to_vec();
            if sign != 0.0 {
                for p in 0..m {
                    for co in 0..cout {
                        let i = p * out_stride + out_offset + co;
                        want[i] = init_out[i] + sign * want_stored[i];
                    }
                }
            }
            let key = ConvKernel { variant: v, ksize: ksize as u32, relu, edge, combine, format };
            let got = floats(&pollster::block_on(run_kernel(ctx, &key, &storage, bytemuck::bytes_of(&p), None, key.groups(&p), 4)).unwrap());
            assert_close(&format!("{} {batch}x{h}x{w} {cin}->{cout}", key.label()), &got, &want, CONV_TOL);
        }
    }
}

/// im2col rows (tap-major, then channel, zero outside the image and in the padding) as the
/// 1x1 conv that replaces a 3x3 conv with few input channels reads them.
#[test]
fn im2col_matches_reference() {
    let Some(ctx) = ctx() else { return };
    let mut r = Rand(11);
    // (batch, h, w, cin, in_stride, in_offset)
    for (batch, h, w, cin, in_stride, in_offset) in [(1usize, 1usize, 1usize, 6usize, 12usize, 0usize), (2, 5, 7, 6, 12, 0), (1, 4, 3, 2, 4, 2), (3, 3, 5, 3, 3, 0)] {
        let m = batch * h * w;
        let row = (9 * cin).div_ceil(4) * 4;
        let input = r.vec(m * in_stride);
        let mut want = vec![0f32; m * row];
        for b in 0..batch {
            for y in 0..h {
                for x in 0..w {
                    let p = (b * h + y) * w + x;
                    for tap in 0..9 {
                        let (yy, xx) = (y as isize + tap as isize / 3 - 1, x as isize + tap as isize % 3 - 1);
                        if yy < 0 || yy >= h as isize || xx < 0 || xx >= w as isize {
                            continue;
                        }
                        let q = (b * h + yy as usize) * w + xx as usize;
                        for ci in 0..cin {
                            want[p * row + tap * cin + ci] = input[q * in_stride + in_offset + ci];
                        }
                    }
                }
            }
        }
        let p = Conv2dParams {
            batch: batch as u32,
            h: h as u32,
            w: w as u32,
            cin: cin as u32,
            in_stride: in_stride as u32,
            in_offset: in_offset as u32,
            out_stride: row as u32,
            m: m as u32,
            ..Default::default()
        };
        let storage = vec![bytes(&input), bytes(&r.vec(m * row))];
        let got = floats(&pollster::block_on(run_kernel(&ctx, &Im2col, &storage, bytemuck::bytes_of(&p), None, Im2col.groups(&p), 1)).unwrap());
        assert_close(&format!("im2col {batch}x{h}x{w} cin {cin}"), &got, &want, Tol { abs: 0.0, rel: 0.0 });
    }
}

#[test]
fn coupling_matches_reference_both_ways() {
    let Some(ctx) = ctx() else { return };
    let mut r = Rand(11);
    for (batch, pixels, c) in [(1, 1, 2), (2, 7, 6), (3, 5, 24)] {
        for affine in [false, true] {
            for reverse in [false, true] {
                let half = c / 2;
                let state = r.vec(batch * pixels * c);
                let h = r.vec(batch * pixels * if affine { c } else { half });
                let mut want = state.clone();
                let logs = flow::coupling(&mut want, &h, batch, pixels, c, affine, reverse);
                let count = batch * pixels * half;
                let p = CouplingParams { count: count as u32, c: c as u32, half: half as u32, _pad0: 0 };
                let key = Coupling { affine, reverse };
                let storage = vec![bytes(&state), bytes(&h), bytes(&vec![0.0; count])];
                let got = pollster::block_on(run_kernel(&ctx, &key, &storage, bytemuck::bytes_of(&p), None, key.groups(&p), 0)).unwrap();
                assert_close(&key.label(), &floats(&got), &want, Tol { abs: 1e-5, rel: 1e-5 });
                if affine && !reverse {
                    let terms = floats(&pollster::block_on(run_kernel(&ctx, &key, &storage, bytemuck::bytes_of(&p), None, key.groups(&p), 2)).unwrap());
                    for b in 0..batch {
                        let s: f64 = terms[b * pixels * half..(b + 1) * pixels * half].iter().map(|&v| v as f64).sum();
                        assert!((s - logs[b]).abs() < 1e-4, "affine ln scale sum {s} vs {}", logs[b]);
                    }
                }
            }
        }
    }
}

#[test]
fn squeeze_and_unsqueeze_match_reference() {
    let Some(ctx) = ctx() else { return };
    let mut r = Rand(3);
    for (batch, h, w, c, stride, offset) in [(1, 1, 1, 3, 3, 0), (2, 3, 5, 6, 12, 0), (1, 4, 2, 5, 11, 6)] {
        let big = r.vec(batch * 4 * h * w * stride);
        let mut want = vec![0f32; batch * h * w * 4 * c];
        flow::squeeze(&big, batch, h, w, c, stride, offset, &mut want);
        let p = SqueezeParams { count: (batch * h * w * 4 * c) as u32, h: h as u32, w: w as u32, c: c as u32, stride: stride as u32, offset: offset as u32, ..Default::default() };
        let n = want.len();
        let got = pollster::block_on(run_kernel(&ctx, &Squeeze { unsqueeze: false }, &[bytes(&big), bytes(&vec![0.0; n])], bytemuck::bytes_of(&p), None, Squeeze { unsqueeze: false }.groups(&p), 1)).unwrap();
        assert_close("squeeze", &floats(&got), &want, Tol { abs: 0.0, rel: 0.0 });
        let base = r.vec(big.len());
        let mut want_big = base.clone();
        flow::unsqueeze(&want, batch, h, w, c, stride, offset, &mut want_big);
        let got = pollster::block_on(run_kernel(&ctx, &Squeeze { unsqueeze: true }, &[bytes(&want), bytes(&base)], bytemuck::bytes_of(&p), None, Squeeze { unsqueeze: true }.groups(&p), 1)).unwrap();
        assert_close("unsqueeze", &floats(&got), &want_big, Tol { abs: 0.0, rel: 0.0 });
    }
}

#[test]
fn prior_matches_reference_both_ways() {
    let Some(ctx) = ctx() else { return };
    let mut r = Rand(5);
    for (batch, pixels, cz, z_stride, top) in [(1, 1, 3, 6, false), (2, 9, 5, 10, false), (3, 4, 7, 7, true)] {
        let dim = pixels * cz + 13;
        let g = flow::PriorGeometry {
            batch,
            pixels,
            cz,
            z_stride,
            z_offset: z_stride - cz,
            h_image_stride: if top { 0 } else { pixels * 2 * cz },
            eps_offset: 5,
            eps_image_stride: dim,
        };
        let state = r.vec(batch * pixels * z_stride);
        let h: Vec<f32> = r.vec(if top { pixels * 2 * cz } else { batch * pixels * 2 * cz }).iter().map(|v| v * 0.5).collect();
        let mut want_eps = vec![0f32; batch * dim];
        let logp = flow::prior_standardize(g, &state, &h, &mut want_eps);
        let count = batch * pixels * cz;
        let p = PriorParams {
            count: count as u32,
            pixels: pixels as u32,
            cz: cz as u32,
            z_stride: z_stride as u32,
            z_offset: g.z_offset as u32,
            h_image_stride: g.h_image_stride as u32,
            eps_offset: 5,
            eps_image_stride: dim as u32,
            level: 1,
            ..Default::default()
        };
        let storage = vec![bytes(&state), bytes(&h), bytes(&vec![0.0; batch * dim]), bytes(&vec![0.0; count])];
        let run = |read| floats(&pollster::block_on(run_kernel(&ctx, &Prior { reverse: false }, &storage, bytemuck::bytes_of(&p), Some(CallParams::default()), Prior { reverse: false }.groups(&p), read)).unwrap());
        assert_close("prior standardize eps", &run(2), &want_eps, Tol { abs: 1e-5, rel: 1e-5 });
        let terms = run(3);
        for b in 0..batch {
            let s: f64 = terms[b * pixels * cz..(b + 1) * pixels * cz].iter().map(|&v| v as f64).sum();
            assert!((s - logp[b]).abs() < 1e-4 * logp[b].abs().max(1.0), "logp {s} vs {}", logp[b]);
        }
        // Reverse at temperature 0.6 on level 1.
        let mut want_state = state.clone();
        flow::prior_sample(g, &want_eps, &h, 0.6, &mut want_state);
        let call = CallParams { temps: [1.0, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], ..Default::default() };
        let storage = vec![bytes(&state), bytes(&h), bytes(&want_eps), bytes(&vec![0.0; count])];
        let got = floats(&pollster::block_on(run_kernel(&ctx, &Prior { reverse: true }, &storage, bytemuck::bytes_of(&p), Some(call), Prior { reverse: true }.groups(&p), 0)).unwrap());
        assert_close("prior sample", &got, &want_state, Tol { abs: 1e-5, rel: 1e-5 });
    }
}

#[test]
fn reduce_sums_per_image() {
    let Some(ctx) = ctx() else { return };
    let mut r = Rand(9);
    for (batch, n) in [(1, 1), (3, 257), (2, 5000)] {
        let terms = r.vec(batch * n);
        let acc0 = r.vec(batch);
        let p = ReduceParams { n: n as u32, ..Default::default() };
        let got = floats(&pollster::block_on(run_kernel(&ctx, &Reduce, &[bytes(&terms), bytes(&acc0)], bytemuck::bytes_of(&p), None, Reduce.groups(batch), 1)).unwrap());
        for b in 0..batch {
            let want: f64 = acc0[b] as f64 + terms[b * n..(b + 1) * n].iter().map(|&v| v as f64).sum::<f64>();
            assert!((got[b] as f64 - want).abs() < 1e-4 * (n as f64).sqrt(), "reduce {b}: {} vs {want}", got[b]);
        }
    }
}

#[test]
fn image_in_and_out_match_reference() {
    let Some(ctx) = ctx() else { return };
    let mut r = Rand(13);
    for (pixels, channels, n_bits) in [(1, 3, 5), (37, 1, 8), (300, 3, 3)] {
        let rgba: Vec<u8> = (0..pixels * 4).map(|_| ((r.f() + 1.0) * 127.9) as u8).collect();
        let want = pixels::image_to_x(&rgba, channels, n_bits);
        let p = ImageParams { pixels: pixels as u32, channels: channels as u32, n_bits, _pad0: 0 };
        let got = floats(&pollster::block_on(run_kernel(&ctx, &ImageIn, &[rgba.clone(), bytes(&vec![0.0; pixels * channels])], bytemuck::bytes_of(&p), None, glow_web::gpu::kernels::image::groups(&p), 1)).unwrap());
        assert_close("image_in", &got, &want, Tol { abs: 0.0, rel: 0.0 });
        let x: Vec<f32> = r.vec(pixels * channels).iter().map(|v| v * 0.7).collect();
        for quantize in [false, true] {
            let want = pixels::x_to_rgba(&x, channels, n_bits, quantize);
            let call = CallParams { quantize: quantize as u32, ..Default::default() };
            let got = pollster::block_on(run_kernel(&ctx, &ImageOut, &[bytes(&x), vec![0; pixels * 4]], bytemuck::bytes_of(&p), Some(call), glow_web::gpu::kernels::image::groups(&p), 1)).unwrap();
            assert_eq!(got, want, "image_out quantize={quantize}");
        }
    }
}

#[test]
fn rng_matches_reference_generator() {
    let Some(ctx) = ctx() else { return };
    // Large counts run on a 2-D grid of workgroups (x <= 65535): the sizing covers them...
    for n in [1usize, 256 * 65535, 256 * 65535 + 1, 20_000_000] {
        let (x, y, z) = elementwise_groups(n);
        assert!(x <= 65535 && z == 1 && x as u64 * y as u64 * 256 >= n as u64, "{n}: {x}x{y}");
        assert!((x as u64 * (y as u64 - 1)) * 256 < n as u64, "{n}: a whole idle row of workgroups");
    }
    assert!(elementwise_groups(20_000_000).1 > 1);
    // ...and the kernel numbers threads across rows: a 3 x 100 grid draws indices
    // 1000..1000+n, the same values as the CPU twin.
    let n = 3 * 100 * 256;
    let call = CallParams { seed: 42, count: n as u32, base: 1000, ..Default::default() };
    let got = floats(&pollster::block_on(run_kernel(&ctx, &Rng, &[bytes(&vec![0.0; n])], &[], Some(call), (3, 100, 1), 0)).unwrap());
    let want: Vec<f32> = (0..n).map(|i| rng::normal(42, (1000 + i) as u32)).collect();
    assert_close("rng", &got, &want, Tol { abs: 1e-5, rel: 1e-5 });
    let mean = got.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = got.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.03, "rng moments: mean {mean}, var {var}");
}
