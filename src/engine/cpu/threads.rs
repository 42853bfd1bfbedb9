//! How the CPU engine spreads one conv over the cores: natively a rayon pool owned by the
//! engine (so `--threads` means what it says, whatever else uses rayon's global pool); in
//! wasm32 no pool, one thread (wasm threads need nightly Rust and a cross-origin-isolated
//! page; the page runs one engine per Web Worker instead).
//!
//! Work is split by output rows (pixels), never along the reduction: every output value is
//! computed by the same code from the same inputs in the same order whichever part holds
//! it, so results are bit-identical for any thread count.

/// The engine's threads.
pub struct Threads {
    n: usize,
    #[cfg(not(target_arch = "wasm32"))]
    pool: Option<rayon::ThreadPool>,
}

impl Threads {
    /// `n` threads; 0 means one per core (`available_parallelism`). In wasm32 always one.
    pub fn new(n: usize) -> Threads {
        #[cfg(target_arch = "wasm32")]
        {
            let _ = n;
            Threads { n: 1 }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let n = if n == 0 { std::thread::available_parallelism().map_or(1, |c| c.get()) } else { n };
            // One thread runs on the caller's thread, without a pool, exactly as before.
            // A pool that cannot start (no threads allowed) falls back to that too.
            let pool = (n > 1)
                .then(|| rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(|i| format!("glow-cpu-{i}")).build().ok())
                .flatten();
            Threads { n: if pool.is_some() { n } else { 1 }, pool }
        }
    }

    pub fn count(&self) -> usize {
        self.n
    }

    /// `f(0), ..., f(n - 1)` in order, computed in parallel when there is a pool: the images
    /// of a batch, each on one thread (its convs are then split only when a thread is idle).
    /// Runs inside the pool, so that each conv's split below costs a work-stealing join
    /// between the pool's workers rather than a wake-up of the caller's thread.
    pub fn map<T: Send>(&self, n: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(p) = &self.pool {
            use rayon::prelude::*;
            return p.install(|| (0..n).into_par_iter().map(f).collect());
        }
        (0..n).map(f).collect()
    }

    /// Calls `f(first_row, part)` for consecutive parts of `out` of `rows_per_part` rows of
    /// `row_len` values each (the last part may be shorter), in parallel when there is a pool.
    pub fn split_rows(&self, out: &mut [f32], row_len: usize, rows_per_part: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
        let part_len = (rows_per_part * row_len).max(1);
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(p) = &self.pool {
            use rayon::prelude::*;
            if out.len() > part_len {
                return p.install(|| out.par_chunks_mut(part_len).enumerate().for_each(|(i, part)| f(i * rows_per_part, part)));
            }
        }
        out.chunks_mut(part_len).enumerate().for_each(|(i, part)| f(i * rows_per_part, part));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_row_once() {
        for n in [1, 3] {
            let t = Threads::new(n);
            assert_eq!(t.count(), n);
            // 10 rows of 3, in parts of 4 rows: rows 0-3, 4-7, 8-9.
            let mut out = vec![0f32; 30];
            t.split_rows(&mut out, 3, 4, |first, part| {
                for (i, v) in part.iter_mut().enumerate() {
                    *v += (first * 3 + i) as f32;
                }
            });
            assert_eq!(out, (0..30).map(|i| i as f32).collect::<Vec<_>>(), "{n} threads");
        }
        assert!(Threads::new(0).count() >= 1);
    }
}
