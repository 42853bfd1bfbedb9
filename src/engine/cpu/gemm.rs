//! The GEMM micro-kernels: one tile of MR output pixels times one block of NR output
//! channels, `acc[r][j] = sum over (tap, ci) of x_r,tap[ci] * w[(tap * cin + ci) * NR + j]`.
//! A tile's inputs come as an indirection list (`rows[tap * MR + r]`: the `cin` input values
//! that tap `tap` of pixel `r` reads, a zero row outside the image), so no im2col copy is made:
//! the kernels read the activations where they are.
//!
//! Two implementations, picked once per engine:
//! - portable Rust that LLVM vectorises (SSE natively, simd128 in wasm): `acc += x * w`; in
//!   the wasm builds with relaxed SIMD (`pkg-relaxed/`, `pkg-mt-relaxed/`) the same tile with
//!   `f32x4.relaxed_madd` instead, which may round once (FMA) or twice, as the CPU does;
//! - natively on x86_64 CPUs that have them, AVX2 + FMA intrinsics: `acc = fma(x, w, acc)`,
//!   and two outputs per call (two blocks, or two tiles when a conv has one block, as the
//!   coupling's last conv does) so that 8 independent accumulators hide the FMA latency.
//!
//! Either way every output value is one chain over (tap, ci) in order from zero, so which
//! variant or which thread computes it does not change it. FMA rounds once per step instead
//! of twice, so the two implementations differ in the last bits (see the test below).

pub const NR: usize = 8; // output channels per micro-tile
pub const MR: usize = 4; // pixels per micro-tile

/// The accumulators of one micro-tile: `[pixel][output channel]`.
pub type Tile = [[f32; NR]; MR];

/// Which micro-kernel an engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    // Private, so the only way to get `true` is `available` on a CPU that has the features:
    // that is what makes calling the `target_feature` code sound.
    avx2_fma: bool,
    /// AVX-512F as well (only with `avx2_fma`).
    avx512: bool,
}

impl Kernel {
    /// The fastest this CPU runs; `GLOW_CPU_KERNEL=avx2` or `=portable` caps it (for
    /// benchmarks that compare the kernels).
    pub fn detect() -> Kernel {
        let cap = std::env::var("GLOW_CPU_KERNEL").unwrap_or_default();
        Kernel::available().into_iter().rev().find(|k| cap.is_empty() || k.id() == cap).unwrap_or(Kernel::portable())
    }

    /// Every kernel this CPU can run, slowest first.
    pub fn available() -> Vec<Kernel> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            let avx2 = Kernel { avx2_fma: true, avx512: false };
            if is_x86_feature_detected!("avx512f") {
                return vec![Kernel::portable(), avx2, Kernel { avx2_fma: true, avx512: true }];
            }
            return vec![Kernel::portable(), avx2];
        }
        vec![Kernel::portable()]
    }

    /// The portable kernel (what wasm32 always runs).
    pub fn portable() -> Kernel {
        Kernel { avx2_fma: false, avx512: false }
    }

    /// Whether this kernel may run AVX-512F code (only true where the CPU has it).
    pub fn has_avx512(self) -> bool {
        self.avx512
    }

    /// Whether this kernel may run AVX2 and FMA code (only true where the CPU has them).
    pub fn has_avx2(self) -> bool {
        self.avx2_fma
    }

    /// The kernel's name in `GLOW_CPU_KERNEL`.
    fn id(self) -> &'static str {
        match (self.avx2_fma, self.avx512) {
            (_, true) => "avx512",
            (true, false) => "avx2",
            _ => "portable",
        }
    }

    /// A conv's weights `w[kk * cout + co]` (`k` rows of `cout`) packed as this kernel reads
    /// them: blocks of NR output channels, zero-padded, `[block][kk][NR]`; for AVX-512 each
    /// pair of consecutive blocks interleaved, `[pair][kk][2 * NR]` (one 512-bit load), and
    /// an odd last block as `[kk][NR]`.
    pub fn pack(self, w: &[f32], k: usize, cout: usize) -> Vec<f32> {
        let blocks = cout.div_ceil(NR);
        let mut packed = vec![0f32; blocks * k * NR];
        for co in 0..cout {
            let nb = co / NR;
            // The channel's group (a pair of blocks, or one block): its first channel and width.
            let (first, wide) = if self.avx512 && nb < blocks / 2 * 2 { (nb / 2 * 2 * NR, 2 * NR) } else { (nb * NR, NR) };
            for kk in 0..k {
                packed[first * k + kk * wide + (co - first)] = w[kk * cout + co];
            }
        }
        packed
    }

    pub fn name(self) -> &'static str {
        if self.avx512 {
            "AVX-512"
        } else if self.avx2_fma {
            "AVX2+FMA"
        } else if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
            "simd128 + relaxed FMA"
        } else if cfg!(target_arch = "wasm32") {
            "simd128"
        } else {
            "portable SIMD"
        }
    }

    /// For each block `nb` of NR output channels and each of the `nt` tiles whose rows are
    /// in `rows` (`taps * MR` rows of `cin` values per tile), computes the tile and hands it
    /// to `store(t, nb, acc)`. Blocks are the outer loop so that a block's packed weights
    /// stay in L1 while the tiles' activations stream from L2.
    pub fn chunk(self, rows: &[&[f32]], nt: usize, cin: usize, packed: &[f32], blocks: usize, mut store: impl FnMut(usize, usize, &Tile)) {
        let per_tile = rows.len() / nt.max(1);
        let k = per_tile / MR * cin;
        debug_assert!(rows.len() == nt * per_tile && per_tile.is_multiple_of(MR) && packed.len() >= blocks * k * NR);
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            // SAFETY: `avx512` is only true when `available` found AVX-512F, AVX2 and FMA.
            return unsafe { avx512::chunk(rows, nt, cin, packed, blocks, store) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2_fma {
            // SAFETY: `avx2_fma` is only true when `available` found AVX2 and FMA on this CPU.
            return unsafe { avx2::chunk(rows, nt, cin, packed, blocks, store) };
        }
        for nb in 0..blocks {
            let w = &packed[nb * k * NR..(nb + 1) * k * NR];
            for t in 0..nt {
                store(t, nb, &micro_kernel(&rows[t * per_tile..(t + 1) * per_tile], w, cin));
            }
        }
    }
}

/// The portable micro-kernel, written with fixed-size chunks so the compiler drops bounds
/// checks and keeps the 32 accumulators in vector registers. LLVM vectorises it (SSE
/// natively, simd128 in wasm) as well as hand-written simd128 intrinsics did (measured:
/// same speed in V8).
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
#[inline(always)]
fn micro_kernel(rows: &[&[f32]], w: &[f32], cin: usize) -> Tile {
    let mut acc = [[0f32; NR]; MR];
    for (tap, wt) in rows.chunks_exact(MR).zip(w.chunks_exact(cin * NR)) {
        let [x0, x1, x2, x3] = [tap[0], tap[1], tap[2], tap[3]];
        let xs = x0.iter().zip(x1).zip(x2.iter().zip(x3));
        for (((a0, a1), (a2, a3)), wv) in xs.zip(wt.chunks_exact(NR)) {
            let wv: &[f32; NR] = wv.try_into().unwrap_or(&[0.0; NR]);
            for (r, a) in [a0, a1, a2, a3].into_iter().enumerate() {
                for j in 0..NR {
                    acc[r][j] += a * wv[j];
                }
            }
        }
    }
    acc
}

/// The wasm kernel where the build has relaxed SIMD: `f32x4.relaxed_madd`, which V8 compiles
/// to one FMA instruction where the CPU has one (and to a multiply and an add where not).
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
#[inline(always)]
fn micro_kernel(rows: &[&[f32]], w: &[f32], cin: usize) -> Tile {
    use core::arch::wasm32::*;
    let mut acc = [[f32x4_splat(0.0); 2]; MR];
    for (tap, wt) in rows.chunks_exact(MR).zip(w.chunks_exact(cin * NR)) {
        let [x0, x1, x2, x3] = [tap[0], tap[1], tap[2], tap[3]];
        let xs = x0.iter().zip(x1).zip(x2.iter().zip(x3));
        for (((a0, a1), (a2, a3)), wv) in xs.zip(wt.chunks_exact(NR)) {
            // SAFETY: `chunks_exact(NR)` gives 8 floats: two unaligned 128-bit loads.
            let (w0, w1) = unsafe { (v128_load(wv.as_ptr() as *const v128), v128_load(wv.as_ptr().add(4) as *const v128)) };
            for (r, a) in [a0, a1, a2, a3].into_iter().enumerate() {
                let s = f32x4_splat(*a);
                acc[r][0] = f32x4_relaxed_madd(s, w0, acc[r][0]);
                acc[r][1] = f32x4_relaxed_madd(s, w1, acc[r][1]);
            }
        }
    }
    let mut t = [[0f32; NR]; MR];
    for (row, a) in t.iter_mut().zip(acc) {
        // SAFETY: a row is NR = 8 floats: two unaligned 128-bit stores.
        unsafe {
            v128_store(row.as_mut_ptr() as *mut v128, a[0]);
            v128_store(row.as_mut_ptr().add(4) as *mut v128, a[1]);
        }
    }
    t
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Tile, MR, NR};
    use std::arch::x86_64::*;

    /// As the portable loop in `Kernel::chunk`, with AVX2 + FMA: pairs of blocks, then the
    /// odd block (if any) two tiles at a time.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn chunk(rows: &[&[f32]], nt: usize, cin: usize, packed: &[f32], blocks: usize, mut store: impl FnMut(usize, usize, &Tile)) {
        let per_tile = rows.len() / nt.max(1);
        let k = per_tile / MR * cin;
        let tile = |t: usize| &rows[t * per_tile..(t + 1) * per_tile];
        let block = |nb: usize| &packed[nb * k * NR..(nb + 1) * k * NR];
        let mut nb = 0;
        while nb + 2 <= blocks {
            let (w0, w1) = (block(nb), block(nb + 1));
            for t in 0..nt {
                let [x, y] = two(tile(t), tile(t), w0, w1, cin);
                store(t, nb, &x);
                store(t, nb + 1, &y);
            }
            nb += 2;
        }
        if nb < blocks {
            lone_block(rows, nt, cin, block(nb), nb, &mut store);
        }
    }

    /// The last block when the blocks are odd (its weights `w`, `[kk][NR]`): two tiles at
    /// a time, then the odd tile.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn lone_block(rows: &[&[f32]], nt: usize, cin: usize, w: &[f32], nb: usize, store: &mut impl FnMut(usize, usize, &Tile)) {
        let per_tile = rows.len() / nt.max(1);
        let tile = |t: usize| &rows[t * per_tile..(t + 1) * per_tile];
        let mut t = 0;
        while t + 2 <= nt {
            let [x, y] = two(tile(t), tile(t + 1), w, w, cin);
            store(t, nb, &x);
            store(t + 1, nb, &y);
            t += 2;
        }
        if t < nt {
            store(t, nb, &one(tile(t), w, cin));
        }
    }

    /// Two micro-tiles at once: tile `a` x block `w0` and tile `b` x block `w1` (the same
    /// tile against two blocks, or two tiles against the same block).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn two(a: &[&[f32]], b: &[&[f32]], w0: &[f32], w1: &[f32], cin: usize) -> [Tile; 2] {
        let mut c0 = [_mm256_setzero_ps(); MR];
        let mut c1 = [_mm256_setzero_ps(); MR];
        let taps = a.chunks_exact(MR).zip(b.chunks_exact(MR)).zip(w0.chunks_exact(cin * NR).zip(w1.chunks_exact(cin * NR)));
        for ((ta, tb), (v0, v1)) in taps {
            // The rows' pointers, read once per tap (indexing the slices in the loop reloaded
            // each pointer from memory and checked its bounds at every step).
            let (xa, xb) = (rows_of(ta, cin), rows_of(tb, cin));
            for (ci, (v0, v1)) in v0.chunks_exact(NR).zip(v1.chunks_exact(NR)).enumerate() {
                // SAFETY: `chunks_exact(NR)` gives exactly 8 floats, one unaligned 256-bit
                // load; every row has at least `cin` values (`rows_of`).
                unsafe {
                    let (v0, v1) = (_mm256_loadu_ps(v0.as_ptr()), _mm256_loadu_ps(v1.as_ptr()));
                    for r in 0..MR {
                        c0[r] = _mm256_fmadd_ps(_mm256_set1_ps(*xa[r].add(ci)), v0, c0[r]);
                        c1[r] = _mm256_fmadd_ps(_mm256_set1_ps(*xb[r].add(ci)), v1, c1[r]);
                    }
                }
            }
        }
        [unpack(c0), unpack(c1)]
    }

    /// One micro-tile (the last tile of an odd block).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn one(a: &[&[f32]], w: &[f32], cin: usize) -> Tile {
        let mut c = [_mm256_setzero_ps(); MR];
        for (ta, v) in a.chunks_exact(MR).zip(w.chunks_exact(cin * NR)) {
            let xa = rows_of(ta, cin);
            for (ci, v) in v.chunks_exact(NR).enumerate() {
                // SAFETY: as in `two`.
                unsafe {
                    let v = _mm256_loadu_ps(v.as_ptr());
                    for r in 0..MR {
                        c[r] = _mm256_fmadd_ps(_mm256_set1_ps(*xa[r].add(ci)), v, c[r]);
                    }
                }
            }
        }
        unpack(c)
    }

    /// The MR rows of one tap, as pointers to at least `cin` values each.
    #[inline(always)]
    pub(super) fn rows_of(tap: &[&[f32]], cin: usize) -> [*const f32; MR] {
        std::array::from_fn(|r| {
            assert!(tap[r].len() >= cin, "a row shorter than the conv's input channels");
            tap[r].as_ptr()
        })
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{avx2, Tile, MR, NR};
    use std::arch::x86_64::*;

    /// As `avx2::chunk`, on weights packed in pairs of blocks (`Kernel::pack`): one 512-bit
    /// register holds a pixel's 16 outputs of a pair. Two pairs against two tiles at once
    /// (16 accumulators of AVX-512's 32 registers), then what is left in smaller groups; an
    /// odd last block as AVX2 does it. Each output is the same chain of FMAs as in the AVX2
    /// kernel, so the two agree bit for bit.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn chunk(rows: &[&[f32]], nt: usize, cin: usize, packed: &[f32], blocks: usize, mut store: impl FnMut(usize, usize, &Tile)) {
        let per_tile = rows.len() / nt.max(1);
        let k = per_tile / MR * cin;
        let tile = |t: usize| &rows[t * per_tile..(t + 1) * per_tile];
        let pair = |p: usize| &packed[p * 2 * NR * k..(p + 1) * 2 * NR * k];
        let pairs = blocks / 2;
        let mut put = |t: usize, p: usize, out: &[Tile; 2]| {
            store(t, 2 * p, &out[0]);
            store(t, 2 * p + 1, &out[1]);
        };
        let mut p = 0;
        while p < pairs {
            let two_pairs = p + 2 <= pairs;
            let mut t = 0;
            while t < nt {
                match (two_pairs, t + 2 <= nt) {
                    (true, true) => {
                        let out = group::<2, 2>([tile(t), tile(t + 1)], [pair(p), pair(p + 1)], cin);
                        (0..2).for_each(|i| (0..2).for_each(|j| put(t + i, p + j, &out[i][j])));
                        t += 2;
                    }
                    (true, false) => {
                        let [out] = group::<1, 2>([tile(t)], [pair(p), pair(p + 1)], cin);
                        (0..2).for_each(|j| put(t, p + j, &out[j]));
                        t += 1;
                    }
                    (false, true) => {
                        let out = group::<2, 1>([tile(t), tile(t + 1)], [pair(p)], cin);
                        (0..2).for_each(|i| put(t + i, p, &out[i][0]));
                        t += 2;
                    }
                    (false, false) => {
                        let [[out]] = group::<1, 1>([tile(t)], [pair(p)], cin);
                        put(t, p, &out);
                        t += 1;
                    }
                }
            }
            p += if two_pairs { 2 } else { 1 };
        }
        if blocks % 2 == 1 {
            let nb = blocks - 1;
            avx2::lone_block(rows, nt, cin, &packed[nb * NR * k..(nb + 1) * NR * k], nb, &mut store);
        }
    }

    /// `T` tiles against `P` pairs of blocks: for each tile and pair, its two micro-tiles.
    /// The accumulators are one flat array and the row pointers are read once per tap, so
    /// that the compiler keeps both in registers (nested arrays of vectors spilled).
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    fn group<const T: usize, const P: usize>(tiles: [&[&[f32]]; T], pairs: [&[f32]; P], cin: usize) -> [[[Tile; 2]; P]; T] {
        let mut c = [_mm512_setzero_ps(); 16];
        debug_assert!(T * P * MR <= c.len());
        let taps = tiles[0].len() / MR;
        for tap in 0..taps {
            let mut xs = [std::ptr::null::<f32>(); 8];
            for i in 0..T {
                xs[i * MR..(i + 1) * MR].copy_from_slice(&avx2::rows_of(&tiles[i][tap * MR..(tap + 1) * MR], cin));
            }
            let mut ws = [std::ptr::null::<f32>(); 2];
            for j in 0..P {
                let w = &pairs[j][tap * cin * 2 * NR..(tap + 1) * cin * 2 * NR];
                ws[j] = w.as_ptr();
            }
            for ci in 0..cin {
                // SAFETY: every row has at least `cin` values (`rows_of`) and every weight
                // slice `cin` steps of 16.
                unsafe {
                    let w0 = _mm512_loadu_ps(ws[0].add(ci * 2 * NR));
                    let w1 = if P == 2 { _mm512_loadu_ps(ws[1].add(ci * 2 * NR)) } else { w0 };
                    for i in 0..T {
                        for r in 0..MR {
                            let v = _mm512_set1_ps(*xs[i * MR + r].add(ci));
                            let a = (i * P) * MR + r;
                            c[a] = _mm512_fmadd_ps(v, w0, c[a]);
                            if P == 2 {
                                c[a + MR] = _mm512_fmadd_ps(v, w1, c[a + MR]);
                            }
                        }
                    }
                }
            }
        }
        // Out of the registers by plain loops, not closures: a closure that borrowed `c` was
        // once compiled out of line (after an unrelated change in its caller), which kept the
        // accumulators in memory through the whole loop above: the kernel ran 2x slower.
        let mut sums = [[0f32; 2 * NR]; 16];
        for (s, v) in sums.iter_mut().zip(c).take(T * P * MR) {
            // SAFETY: `s` is 16 floats, one unaligned 512-bit store.
            unsafe { _mm512_storeu_ps(s.as_mut_ptr(), v) };
        }
        let mut out = [[[[[0f32; NR]; MR]; 2]; P]; T];
        for (i, out_i) in out.iter_mut().enumerate() {
            for (j, out_ij) in out_i.iter_mut().enumerate() {
                for r in 0..MR {
                    let s = &sums[(i * P + j) * MR + r];
                    out_ij[0][r].copy_from_slice(&s[..NR]);
                    out_ij[1][r].copy_from_slice(&s[NR..]);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (tile, block) of a chunk with 5 tiles and 53 output channels (7 blocks, the last
    /// partly padding: 3 pairs and an odd block, with an odd tile, so every AVX2 and AVX-512
    /// variant runs), 3 taps of 13 channels with a zero row among them, weights packed by
    /// each kernel's `pack`: stored once each, equal to a plain f64 sum within f32 rounding,
    /// and equal bit for bit to a scalar chain over (tap, ci) in order (`s + x * w`, or
    /// `mul_add` for AVX2 and AVX-512): the sequence of operations the bit-identity across
    /// threads (and between the two x86 kernels) relies on.
    #[test]
    fn kernels_compute_the_tiles() {
        let (nt, taps, cin, cout): (usize, usize, usize, usize) = (5, 3, 13, 53);
        let (k, blocks) = (taps * cin, cout.div_ceil(NR));
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.9;
        let data: Vec<f32> = (0..nt * taps * MR * cin).map(val).collect();
        let zeros = vec![0f32; cin];
        let mut rows: Vec<&[f32]> = data.chunks_exact(cin).collect();
        rows[7] = &zeros;
        let w: Vec<f32> = (0..k * cout).map(|i| val(i + 13)).collect();
        for kernel in Kernel::available() {
            let packed = kernel.pack(&w, k, cout);
            let mut seen = vec![0u32; nt * blocks];
            kernel.chunk(&rows, nt, cin, &packed, blocks, |t, nb, acc| {
                seen[t * blocks + nb] += 1;
                for (r, acc_r) in acc.iter().enumerate() {
                    for (j, &got) in acc_r.iter().enumerate() {
                        let co = nb * NR + j;
                        let x = |kk: usize| rows[(t * taps + kk / cin) * MR + r][kk % cin];
                        let terms = (0..k).map(|kk| (x(kk), if co < cout { w[kk * cout + co] } else { 0.0 }));
                        let exact: f64 = terms.clone().map(|(x, w)| x as f64 * w as f64).sum();
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
