//! The GEMM micro-kernels: one tile of MR pixels (im2col rows, interleaved `a[kk * MR + r]`)
//! times one block of NR output channels (packed weights `w[kk * NR + j]`).
//!
//! Two implementations, picked once per engine:
//! - portable Rust that LLVM vectorises (SSE natively, simd128 in wasm): `acc += a * w`;
//! - natively on x86_64 CPUs that have them, AVX2 + FMA intrinsics: `acc = fma(a, w, acc)`,
//!   and two outputs per call (two blocks, or two tiles when a conv has one block, as the
//!   coupling's last conv does) so that 8 independent accumulators hide the FMA latency.
//!
//! Either way every output value is one chain over `kk` in order from zero, so which
//! variant or which thread computes it does not change it. FMA rounds once per step instead
//! of twice, so the two implementations differ in the last bits (see the test below).

pub const NR: usize = 8; // output channels per micro-tile
pub const MR: usize = 4; // pixels per micro-tile

/// The accumulators of one micro-tile: `[pixel][output channel]`.
pub type Tile = [[f32; NR]; MR];

/// Which micro-kernel an engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    // Private, so the only way to get `true` is `detect` on a CPU that has both features:
    // that is what makes calling the `target_feature` code sound.
    avx2_fma: bool,
}

impl Kernel {
    /// The fastest this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Kernel { avx2_fma: true };
        }
        Kernel::portable()
    }

    /// The portable kernel (what wasm32 always runs).
    pub fn portable() -> Kernel {
        Kernel { avx2_fma: false }
    }

    pub fn name(self) -> &'static str {
        if self.avx2_fma {
            "AVX2+FMA"
        } else if cfg!(target_arch = "wasm32") {
            "simd128"
        } else {
            "portable SIMD"
        }
    }

    /// For each block `nb` of NR output channels and each tile `t` of the `nt` tiles in
    /// `a` (each `MR * k` values), computes the tile and hands it to `store(t, nb, acc)`.
    /// Blocks are the outer loop so that a block's packed weights stay in L1 while the
    /// chunk of tiles streams from L2.
    pub fn chunk(self, a: &[f32], nt: usize, k: usize, packed: &[f32], blocks: usize, store: impl FnMut(usize, usize, &Tile)) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2_fma {
            // SAFETY: `avx2_fma` is only true when `detect` found AVX2 and FMA on this CPU.
            return unsafe { avx2::chunk(a, nt, k, packed, blocks, store) };
        }
        portable_chunk(a, nt, k, packed, blocks, store)
    }
}

fn portable_chunk(a: &[f32], nt: usize, k: usize, packed: &[f32], blocks: usize, mut store: impl FnMut(usize, usize, &Tile)) {
    for nb in 0..blocks {
        let w = &packed[nb * k * NR..(nb + 1) * k * NR];
        for t in 0..nt {
            store(t, nb, &micro_kernel(&a[t * MR * k..(t + 1) * MR * k], w));
        }
    }
}

/// `acc[r][j] = sum_kk a[kk][r] * w[kk][j]` over MR x NR outputs, written with fixed-size
/// chunks so the compiler drops bounds checks and keeps the 32 accumulators in vector
/// registers. LLVM vectorises it (SSE natively, simd128 in wasm) as well as hand-written
/// simd128 intrinsics did (measured: same speed in V8).
#[inline(always)]
fn micro_kernel(a: &[f32], w: &[f32]) -> Tile {
    let mut acc = [[0f32; NR]; MR];
    for (av, wv) in a.chunks_exact(MR).zip(w.chunks_exact(NR)) {
        let av: &[f32; MR] = av.try_into().unwrap_or(&[0.0; MR]);
        let wv: &[f32; NR] = wv.try_into().unwrap_or(&[0.0; NR]);
        for r in 0..MR {
            for j in 0..NR {
                acc[r][j] += av[r] * wv[j];
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Tile, MR, NR};
    use std::arch::x86_64::*;

    /// As `portable_chunk`, with AVX2 + FMA: pairs of blocks, then the odd block (if any)
    /// two tiles at a time.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn chunk(a: &[f32], nt: usize, k: usize, packed: &[f32], blocks: usize, mut store: impl FnMut(usize, usize, &Tile)) {
        let tile = |t: usize| &a[t * MR * k..(t + 1) * MR * k];
        let block = |nb: usize| &packed[nb * k * NR..(nb + 1) * k * NR];
        let mut nb = 0;
        while nb + 2 <= blocks {
            let (w0, w1) = (block(nb), block(nb + 1));
            for t in 0..nt {
                let [x, y] = two(tile(t), tile(t), w0, w1);
                store(t, nb, &x);
                store(t, nb + 1, &y);
            }
            nb += 2;
        }
        if nb < blocks {
            let w = block(nb);
            let mut t = 0;
            while t + 2 <= nt {
                let [x, y] = two(tile(t), tile(t + 1), w, w);
                store(t, nb, &x);
                store(t + 1, nb, &y);
                t += 2;
            }
            if t < nt {
                store(t, nb, &one(tile(t), w));
            }
        }
    }

    /// Two micro-tiles at once: `a0 x w0` and `a1 x w1` (the same tile against two blocks,
    /// or two tiles against the same block).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn two(a0: &[f32], a1: &[f32], w0: &[f32], w1: &[f32]) -> [Tile; 2] {
        let mut c0 = [_mm256_setzero_ps(); MR];
        let mut c1 = [_mm256_setzero_ps(); MR];
        let steps = a0.chunks_exact(MR).zip(a1.chunks_exact(MR)).zip(w0.chunks_exact(NR).zip(w1.chunks_exact(NR)));
        for ((x0, x1), (v0, v1)) in steps {
            // SAFETY: `chunks_exact(NR)` gives exactly 8 floats, one unaligned 256-bit load.
            let (v0, v1) = unsafe { (_mm256_loadu_ps(v0.as_ptr()), _mm256_loadu_ps(v1.as_ptr())) };
            for r in 0..MR {
                c0[r] = _mm256_fmadd_ps(_mm256_set1_ps(x0[r]), v0, c0[r]);
                c1[r] = _mm256_fmadd_ps(_mm256_set1_ps(x1[r]), v1, c1[r]);
            }
        }
        [unpack(c0), unpack(c1)]
    }

    /// One micro-tile (the last tile of an odd block).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn one(a: &[f32], w: &[f32]) -> Tile {
        let mut c = [_mm256_setzero_ps(); MR];
        for (x, v) in a.chunks_exact(MR).zip(w.chunks_exact(NR)) {
            // SAFETY: as in `two`.
            let v = unsafe { _mm256_loadu_ps(v.as_ptr()) };
            for r in 0..MR {
                c[r] = _mm256_fmadd_ps(_mm256_set1_ps(x[r]), v, c[r]);
            }
        }
        unpack(c)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn unpack(c: [__m256; MR]) -> Tile {
        let mut t = [[0f32; NR]; MR];
        for (row, v) in t.iter_mut().zip(c) {
            // SAFETY: a row is NR = 8 floats, one unaligned 256-bit store.
            unsafe { _mm256_storeu_ps(row.as_mut_ptr(), v) };
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (tile, block) of a chunk with 5 tiles and 3 blocks (an odd block and an odd
    /// tile, so every AVX2 variant runs): stored once each, equal to a plain f64 sum within
    /// f32 rounding, and equal bit for bit to a scalar chain over `kk` in order (`s + a * w`, or
    /// `mul_add` for AVX2): the sequence of operations the bit-identity across threads relies on.
    #[test]
    fn kernels_compute_the_tiles() {
        let (nt, k, blocks) = (5, 37, 3);
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.9;
        let a: Vec<f32> = (0..nt * MR * k).map(val).collect();
        let packed: Vec<f32> = (0..blocks * k * NR).map(|i| val(i + 13)).collect();
        for kernel in [Kernel::portable(), Kernel::detect()] {
            let mut seen = vec![0u32; nt * blocks];
            kernel.chunk(&a, nt, k, &packed, blocks, |t, nb, acc| {
                seen[t * blocks + nb] += 1;
                for r in 0..MR {
                    for j in 0..NR {
                        let terms = (0..k).map(|kk| (a[t * MR * k + kk * MR + r], packed[(nb * k + kk) * NR + j]));
                        let exact: f64 = terms.clone().map(|(x, w)| x as f64 * w as f64).sum();
                        let got = acc[r][j];
                        assert!((got as f64 - exact).abs() < 1e-5, "{}: tile {t} block {nb} [{r}][{j}]: {got} vs {exact}", kernel.name());
                        let chain = if kernel.avx2_fma {
                            terms.fold(0f32, |s, (x, w)| x.mul_add(w, s))
                        } else {
                            terms.fold(0f32, |s, (x, w)| s + x * w)
                        };
                        assert_eq!(got.to_bits(), chain.to_bits(), "{}: tile {t} block {nb} [{r}][{j}]", kernel.name());
                    }
                }
            });
            assert!(seen.iter().all(|&n| n == 1), "{}: each tile x block stored once: {seen:?}", kernel.name());
        }
    }
}
