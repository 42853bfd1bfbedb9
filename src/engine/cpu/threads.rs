//! How the CPU engine spreads its work over the cores: for the length of one engine call, a
//! team of threads (the caller's and `n - 1` helpers) takes parts of each job as they come
//! (`ticket`). Natively the helpers are scoped threads that live for the call (`native`); in
//! wasm built with shared memory (`pkg-mt/`) they are Web Workers started once per engine
//! worker (`wasm`); in the plain wasm build (`pkg/`) everything runs on the caller's thread.
//!
//! Why not a general pool (rayon was tried): a conv of the default model takes 20-200 us, and
//! a decode has 259 of them in a row with short serial gaps between. A pool whose idle
//! workers go to sleep must wake one for each conv; on these machines that often took longer
//! than the conv, and 2 threads ran a batch-1 decode barely faster than 1. Helpers that spin
//! while a call runs pick up each split at once.
//!
//! Work is split by output rows (pixels) or by images, never along a reduction: every output
//! value is computed by the same code from the same inputs in the same order whichever thread
//! holds it, so results are bit-identical for any thread count.

use std::sync::Mutex;

#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
mod ticket;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
type Link = native::Crew;

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
mod wasm;
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub(crate) use wasm::{help as wasm_help, helpers as wasm_helpers, lost as wasm_helper_lost};
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
type Link = &'static wasm::Pool;

/// The plain wasm build has no helpers: a team there is always one thread.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
enum Link {}
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
impl Link {
    fn run(&self, _parts: usize, _job: &(dyn Fn(usize) + Sync)) {
        match *self {}
    }
}

/// The engine's thread count.
pub struct Threads {
    n: usize,
}

impl Threads {
    /// `n` threads; 0 means one per core (`available_parallelism`). In wasm: at most one
    /// more than the helper workers started (`pkg-mt/`), 0 meaning all of them; so always
    /// one in the plain build.
    pub fn new(n: usize) -> Threads {
        #[cfg(not(target_arch = "wasm32"))]
        let n = if n == 0 { std::thread::available_parallelism().map_or(1, |c| c.get()) } else { n };
        #[cfg(target_arch = "wasm32")]
        let n = if n == 0 { Threads::available() } else { n.min(Threads::available()) };
        Threads { n }
    }

    /// The caller's thread and the helpers that are running.
    #[cfg(target_arch = "wasm32")]
    fn available() -> usize {
        #[cfg(target_feature = "atomics")]
        return 1 + wasm::helpers();
        #[cfg(not(target_feature = "atomics"))]
        1
    }

    pub fn count(&self) -> usize {
        self.n
    }

    /// Runs one engine call `f` with a team of this many threads (the caller's and `n - 1`
    /// helpers that exist until `f` returns).
    pub fn call<R>(&self, f: impl FnOnce(&Team) -> R) -> R {
        #[cfg(not(target_arch = "wasm32"))]
        if self.n > 1 {
            return native::with_helpers(self.n, f);
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
        if self.n > 1 {
            // Fewer if a helper was lost since the engine was made.
            let n = self.n.min(Threads::available());
            if let (true, Some(_held)) = (n > 1, wasm::POOL.take()) {
                return f(&Team { n, link: Some(&wasm::POOL) });
            }
        }
        f(&Team::single())
    }
}

/// The threads of one call. `run` hands out parts of a job to them.
pub struct Team {
    n: usize,
    link: Option<Link>,
}

impl Team {
    fn single() -> Team {
        Team { n: 1, link: None }
    }

    pub fn count(&self) -> usize {
        self.n
    }

    /// Calls `job(0), ..., job(parts - 1)`, each exactly once, spread over the team's
    /// threads; returns when all have returned.
    pub fn run(&self, parts: usize, job: &(dyn Fn(usize) + Sync)) {
        if let (Some(link), true) = (&self.link, parts > 1) {
            return link.run(parts, job);
        }
        (0..parts).for_each(job)
    }

    /// Calls `f(first_row, part)` for consecutive parts of `out` of `rows_per_part` rows of
    /// `row_len` values each (the last part may be shorter).
    pub fn split_rows(&self, out: &mut [f32], row_len: usize, rows_per_part: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
        let part_len = (rows_per_part * row_len).max(1);
        if self.n == 1 || out.len() <= part_len {
            return out.chunks_mut(part_len).enumerate().for_each(|(i, part)| f(i * rows_per_part, part));
        }
        // Each part behind its own (never contended) lock: a safe way to hand disjoint
        // `&mut` slices to whichever thread takes the part.
        let parts: Vec<Mutex<&mut [f32]>> = out.chunks_mut(part_len).map(Mutex::new).collect();
        self.run(parts.len(), &|i| {
            let mut part = parts[i].lock().unwrap_or_else(|e| e.into_inner());
            f(i * rows_per_part, &mut part)
        });
    }

    /// `f(0), ..., f(n - 1)` in order, computed by the team's threads at once in groups of
    /// `count()` (the images of a batch, each on one thread, with `Team::single` for its
    /// convs); what is left over after the last whole group runs with the whole team.
    pub fn map<T: Send>(&self, n: usize, f: impl Fn(usize, &Team) -> T + Sync) -> Vec<T> {
        let whole = n - n % self.n;
        let slots: Vec<Mutex<Option<T>>> = (0..whole).map(|_| Mutex::new(None)).collect();
        if whole > 0 {
            let single = Team::single();
            self.run(whole, &|i| *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(f(i, &single)));
        }
        let mut out: Vec<T> = slots.into_iter().filter_map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner())).collect();
        out.extend((whole..n).map(|i| f(i, self)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn parts_cover_every_row_once() {
        for n in [1, 3] {
            let t = Threads::new(n);
            assert_eq!(t.count(), n);
            t.call(|team| {
                assert_eq!(team.count(), n);
                for _ in 0..50 {
                    // 10 rows of 3, in parts of 4 rows: rows 0-3, 4-7, 8-9.
                    let mut out = vec![0f32; 30];
                    team.split_rows(&mut out, 3, 4, |first, part| {
                        for (i, v) in part.iter_mut().enumerate() {
                            *v += (first * 3 + i) as f32;
                        }
                    });
                    assert_eq!(out, (0..30).map(|i| i as f32).collect::<Vec<_>>(), "{n} threads");
                    // Every part exactly once, many parts.
                    let hits: Vec<AtomicUsize> = (0..97).map(|_| AtomicUsize::new(0)).collect();
                    team.run(97, &|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "{n} threads");
                }
                // In order, with a leftover after the whole groups.
                assert_eq!(team.map(7, |i, _| i * i), (0..7).map(|i| i * i).collect::<Vec<_>>());
            });
        }
        assert!(Threads::new(0).count() >= 1);
    }
}
