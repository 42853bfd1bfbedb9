//! Convs with few output channels (the coupling's last conv: 6 channels at level 0, 12 at
//! level 1; a quarter of a decode) with pixels across the vector lanes instead of channels.
//!
//! The GEMM kernels put 8 or 16 output channels in a register, so a conv with 6 fills 6 of
//! 8 lanes and, on AVX-512, runs at half width (a lone 8-channel block): it ran at a third
//! of the 1x1 convs' GFLOP/s. Here a register holds 16 neighbouring pixels of one channel
//! instead: the input is copied once per call into rows of one channel each, zero-padded
//! (`Planes`), so a tap's 16 pixels are one unaligned load, and each weight is broadcast.
//! Every output is still the chain `acc = fma(x, w, acc)` over (tap, ci) in order from zero,
//! with zeros outside the image, so the results are the GEMM kernels' bits exactly (tested).
//!
//! The same kernel runs the coupling's first conv (3x3 from 6 input channels to 128 at level 0,
//! from 12 at level 1), which the GEMM kernels ran at 0.56 of the 1x1 conv's GFLOP/s: its
//! 54 multiply-adds per output come in 9 taps of 6, each with its own row pointers. Here it is
//! 8 output channels at a time, and the sums go to the output rows by the same 8x8 transpose.
//!
//! With AVX-512, 16 pixels per register; with AVX2 (`Kernel::has_avx2`), 8, and half the
//! accumulators (16 registers instead of 32), for the few-outputs shape only (`few_inputs`
//! says why). For images whose width is a multiple of that.

use super::gemm::Kernel;
use crate::model::flow::Geometry;

/// Pixels per register at most (AVX-512).
pub const MAX_LANES: usize = 16;
/// The kernel's accumulators at most: 24 of AVX-512's 32 registers (12 of AVX2's 16), the rest
/// for the inputs and the broadcast weight.
pub const MAX_ACC: usize = 24;

/// How a conv is cut into calls of the kernel: `v` registers of `lanes` pixels (`v * lanes`
/// pixels in raster order) x `group` output channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub lanes: usize,
    pub v: usize,
    pub group: usize,
}

/// The shape for convs with few output channels (at most `2 * group`) that `kernel` runs, if
/// any: 6 channels x two rows of a 32-wide image (AVX-512) or a 16-pixel half row (AVX2).
pub fn few_outputs(kernel: Kernel) -> Option<Shape> {
    if kernel.has_avx512() {
        Some(Shape { lanes: 16, v: 4, group: 6 })
    } else if kernel.has_avx2() {
        Some(Shape { lanes: 8, v: 2, group: 6 })
    } else {
        None
    }
}

/// The shape for 3x3 convs with few input channels and output channels in 8s, if `kernel`
/// runs one: 8 channels (whole 8x8 blocks for the transpose to the output rows) x one row of a
/// 32-wide image. AVX-512 only: with AVX2's 16 registers it would be 8 channels x 8 pixels,
/// one load and 8 broadcasts per 8 FMAs, and it measured slower than the GEMM kernel there
/// (0.60-0.74 of the 1x1 conv's time against 0.65).
pub fn few_inputs(kernel: Kernel) -> Option<Shape> {
    kernel.has_avx512().then_some(Shape { lanes: 16, v: 2, group: 8 })
}

impl Shape {
    /// Pixels per call.
    pub fn pixels(self) -> usize {
        self.v * self.lanes
    }

    /// Whether `run` can do a conv of this geometry with this shape.
    pub fn fits(self, g: Geometry) -> bool {
        g.w.is_multiple_of(self.lanes) && (g.h * g.w).is_multiple_of(self.pixels())
    }
}

/// The sums of one call: `[channel][pixel]`, `shape.pixels()` pixels per channel.
pub type Sums = [f32; MAX_ACC * MAX_LANES];

/// The input of one conv as `[b][yy][ci][xx]`: each padded row of the image (`rad` zero
/// rows above and below) as one row of `w + 2 rad` values per input channel (zeros at the
/// sides), so that a tap of 8 or 16 neighbouring pixels of one channel is contiguous.
pub struct Planes<'a> {
    pub data: &'a [f32],
    /// Values per channel row: `w + 2 rad`.
    pub pw: usize,
    /// Padded rows per image: `h + 2 rad`.
    pub ph: usize,
}

impl<'a> Planes<'a> {
    /// Padded rows per part when the copy is split over threads.
    const ROWS_PER_PART: usize = 8;

    /// The planes of `input` (`cin` channels at `g.in_offset`), in `buf` (grown as needed:
    /// a buffer kept from call to call, as a fresh one cost page faults and a memset).
    pub fn new(team: &super::threads::Team, g: Geometry, input: &[f32], cin: usize, rad: usize, buf: &'a mut Vec<f32>) -> Planes<'a> {
        let (pw, ph) = (g.w + 2 * rad, g.h + 2 * rad);
        let row_len = cin * pw;
        let len = g.batch * ph * row_len;
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        team.split_rows(&mut buf[..len], row_len, Self::ROWS_PER_PART, |first, part| {
            for (i, row) in part.chunks_exact_mut(row_len).enumerate() {
                let (b, yy) = ((first + i) / ph, (first + i) % ph);
                if yy < rad || yy >= g.h + rad {
                    row.fill(0.0);
                    continue;
                }
                // The side columns (a loop, not `fill`: slices this short became memset calls).
                for ci in 0..cin {
                    for i in 0..rad {
                        row[ci * pw + i] = 0.0;
                        row[ci * pw + rad + g.w + i] = 0.0;
                    }
                }
                let src = &input[(b * g.h + yy - rad) * g.w * g.in_stride..][..g.w * g.in_stride];
                transpose(src, g.in_stride, g.in_offset, g.w, cin, &mut row[rad..], pw);
            }
        });
        Planes { data: &buf[..len], pw, ph }
    }
}

/// `dst[ci * dst_stride + x] = src[x * src_stride + offset + ci]` for `x < w`, `ci < cin`:
/// one image row's pixels (channels contiguous) into one row per channel.
fn transpose(src: &[f32], src_stride: usize, offset: usize, w: usize, cin: usize, dst: &mut [f32], dst_stride: usize) {
    assert!(w >= 1 && cin >= 1 && src.len() >= (w - 1) * src_stride + offset + cin && dst.len() >= (cin - 1) * dst_stride + w);
    #[cfg(target_arch = "x86_64")]
    if w.is_multiple_of(8) && cin.is_multiple_of(8) && is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected; the `assert!` above bounds every 8 x 8 block.
        return unsafe { avx2::transpose(src.as_ptr().add(offset), src_stride, w, cin, dst.as_mut_ptr(), dst_stride) };
    }
    for x in 0..w {
        for ci in 0..cin {
            dst[ci * dst_stride + x] = src[x * src_stride + offset + ci];
        }
    }
}

/// The sums of `shape.pixels()` output pixels (raster order from pixel `m0`, all in one image)
/// for output channels `co0..co0 + n` (`n <= shape.group`), for a `ks x ks` conv with weights
/// `w[(tap * cin + ci) * cout + co]`: `sums[j * shape.pixels() + p]` is pixel `m0 + p`,
/// channel `co0 + j`. `shape` must be `few_outputs(kernel)` or `few_inputs(kernel)`, and
/// `shape.fits(g)` must hold.
#[allow(clippy::too_many_arguments)] // the conv's shape, spelled out
pub fn sums(kernel: Kernel, shape: Shape, planes: &Planes, g: Geometry, ks: usize, cin: usize, w: &[f32], cout: usize, m0: usize, co0: usize, n: usize, sums: &mut Sums) {
    let ok = few_outputs(kernel) == Some(shape) || few_inputs(kernel) == Some(shape);
    assert!(ok && shape.fits(g), "narrow convs need AVX2 or AVX-512, one of their shapes and a width of whole registers");
    // The top-left tap of each register's first pixel, in `planes.data`.
    let x: [usize; 4] = std::array::from_fn(|v| {
        let m = m0 + v.min(shape.v - 1) * shape.lanes;
        let (b, y, x) = (m / (g.h * g.w), (m / g.w) % g.h, m % g.w);
        (b * planes.ph + y) * cin * planes.pw + x
    });
    let last = x.iter().max().copied().unwrap_or(0) + ((ks - 1) * cin + cin - 1) * planes.pw + ks - 1 + shape.lanes;
    assert!(last <= planes.data.len() && w.len() >= ks * ks * cin * cout && (1..=shape.group).contains(&n) && co0 + n <= cout);
    #[cfg(target_arch = "x86_64")]
    {
        let args = Args { data: planes.data.as_ptr(), x, pw: planes.pw, ks, cin, w: w[co0..].as_ptr(), cout };
        // SAFETY (all arms): the shape is one of `kernel`'s, so 16 lanes only where
        // `has_avx512` (the CPU has AVX-512F) and 8 only where `has_avx2` (AVX2 and FMA); the
        // `assert!` above bounds every read; every arm has at most MAX_ACC (AVX2: 12)
        // accumulators.
        unsafe {
            match (shape.lanes, shape.v, n) {
                (16, 4, 1) => avx512::group::<1, 4>(args, sums),
                (16, 4, 2) => avx512::group::<2, 4>(args, sums),
                (16, 4, 3) => avx512::group::<3, 4>(args, sums),
                (16, 4, 4) => avx512::group::<4, 4>(args, sums),
                (16, 4, 5) => avx512::group::<5, 4>(args, sums),
                (16, 4, 6) => avx512::group::<6, 4>(args, sums),
                (16, 2, 8) => avx512::group::<8, 2>(args, sums),
                (8, 2, 1) => avx2::group::<1, 2>(args, sums),
                (8, 2, 2) => avx2::group::<2, 2>(args, sums),
                (8, 2, 3) => avx2::group::<3, 2>(args, sums),
                (8, 2, 4) => avx2::group::<4, 2>(args, sums),
                (8, 2, 5) => avx2::group::<5, 2>(args, sums),
                (8, 2, 6) => avx2::group::<6, 2>(args, sums),
                _ => unreachable!("no kernel for {n} channels x {} registers of {}", shape.v, shape.lanes),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, sums);
        unreachable!("only x86_64 kernels have AVX2 or AVX-512");
    }
}

/// Writes the `n` channels of `sums` (as `sums` fills them for `shape`) to the rows of
/// `out`, one per pixel, `out_stride` apart, at `at` in each row.
pub fn store(shape: Shape, sums: &Sums, n: usize, out: &mut [f32], out_stride: usize, at: usize) {
    transpose(&sums[..n * shape.pixels()], shape.pixels(), 0, n, shape.pixels(), &mut out[at..], out_stride);
}

/// What the kernel reads, as pointers (bounds checked by `sums`).
#[cfg(target_arch = "x86_64")]
struct Args {
    data: *const f32,
    /// Per register of pixels (those past the shape's `v` unused).
    x: [usize; 4],
    pw: usize,
    ks: usize,
    cin: usize,
    /// The weight of (tap 0, ci 0, the group's first channel).
    w: *const f32,
    cout: usize,
}

/// The kernel, `group::<N, V>`, for one instruction set: its target features, vector type,
/// lanes, accumulators at most (of its 16 or 32 registers, the rest for the inputs and the
/// broadcast weight) and intrinsics. `N` channels x `V` registers of pixels: `N * V`
/// accumulators in one flat array (so that they stay in registers), the chain over (tap, ci)
/// in order; accumulator `j * V + v` to `sums[(j * V + v) * lanes..]`.
#[cfg(target_arch = "x86_64")]
macro_rules! kernel {
    ($features:literal, $vec:ty, $lanes:literal, $max_acc:literal, $zero:ident, $load:ident, $splat:ident, $fma:ident, $store:ident) => {
        #[target_feature(enable = $features)]
        pub(super) unsafe fn group<const N: usize, const V: usize>(a: Args, sums: &mut Sums) {
            debug_assert!(N * V <= $max_acc);
            let mut c = [$zero(); $max_acc];
            let row = a.cin * a.pw;
            for ky in 0..a.ks {
                for kx in 0..a.ks {
                    let tap = ky * a.ks + kx;
                    let at = ky * row + kx;
                    for ci in 0..a.cin {
                        let xs: [$vec; V] = std::array::from_fn(|v| $load(a.data.add(a.x[v] + at + ci * a.pw)));
                        let w = a.w.add((tap * a.cin + ci) * a.cout);
                        for j in 0..N {
                            let wj = $splat(*w.add(j));
                            for v in 0..V {
                                c[j * V + v] = $fma(xs[v], wj, c[j * V + v]);
                            }
                        }
                    }
                }
            }
            for (i, v) in c.iter().enumerate().take(N * V) {
                $store(sums.as_mut_ptr().add(i * $lanes), *v);
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Args, Sums};
    use std::arch::x86_64::*;

    kernel!("avx2,fma", __m256, 8, 12, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps);

    /// `transpose` in 8 x 8 blocks held in registers (unpack, shuffle, swap halves).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn transpose(src: *const f32, src_stride: usize, w: usize, cin: usize, dst: *mut f32, dst_stride: usize) {
        for x0 in (0..w).step_by(8) {
            for c0 in (0..cin).step_by(8) {
                let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add((x0 + i) * src_stride + c0)));
                let t: [__m256; 8] = std::array::from_fn(|i| {
                    let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
                    if i % 2 == 0 {
                        _mm256_unpacklo_ps(a, b)
                    } else {
                        _mm256_unpackhi_ps(a, b)
                    }
                });
                // t[0] = a0 b0 a1 b1 | a4 b4 a5 b5 (rows a = 0, b = 1), t[1] the 2, 3, 6, 7
                // columns; t[2], t[3] the same for rows 2 and 3; and so on.
                let u: [__m256; 8] = std::array::from_fn(|i| {
                    let (a, b) = (t[i / 4 * 4 + i % 4 / 2], t[i / 4 * 4 + i % 4 / 2 + 2]);
                    if i % 2 == 0 {
                        _mm256_shuffle_ps::<0x44>(a, b)
                    } else {
                        _mm256_shuffle_ps::<0xEE>(a, b)
                    }
                });
                // u[0..4]: columns 0, 1, 2, 3 (and 4..7 in the high half) of rows 0..3;
                // u[4..8] the same of rows 4..7.
                for j in 0..4 {
                    let lo = _mm256_permute2f128_ps::<0x20>(u[j], u[j + 4]);
                    let hi = _mm256_permute2f128_ps::<0x31>(u[j], u[j + 4]);
                    _mm256_storeu_ps(dst.add((c0 + j) * dst_stride + x0), lo);
                    _mm256_storeu_ps(dst.add((c0 + j + 4) * dst_stride + x0), hi);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Args, Sums};
    use std::arch::x86_64::*;

    kernel!("avx512f", __m512, 16, 24, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 8 x 8 block transpose against the plain loop, with strides and an offset.
    #[test]
    fn transpose_moves_every_value() {
        let (w, cin, stride, offset, dst_stride) = (16, 24, 29, 3, 19);
        let src: Vec<f32> = (0..w * stride).map(|i| i as f32).collect();
        let mut dst = vec![-1f32; cin * dst_stride];
        transpose(&src, stride, offset, w, cin, &mut dst, dst_stride);
        for ci in 0..cin {
            for x in 0..dst_stride {
                let want = if x < w { src[x * stride + offset + ci] } else { -1.0 };
                assert_eq!(dst[ci * dst_stride + x], want, "channel {ci}, pixel {x}");
            }
        }
    }
}
