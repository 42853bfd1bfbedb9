//! How the CPU engine spreads its work over the cores. Natively: for the length of one engine
//! call, `n - 1` helper threads (scoped, so they borrow the call's data) wait for parts of
//! work by spinning, and the caller's thread works too; in wasm32 everything runs on the
//! caller's thread (wasm threads need nightly Rust and a cross-origin-isolated page; the page
//! runs one engine per Web Worker instead).
//!
//! Why not a general pool (rayon was tried): a conv of the default model takes 20-200 us, and
//! a decode has 259 of them in a row with short serial gaps between. A pool whose idle
//! workers go to sleep must wake one for each conv; on these machines that often took longer
//! than the conv, and 2 threads ran a batch-1 decode barely faster than 1. Spinning helpers
//! that live only while a call runs pick up each split at once.
//!
//! Work is split by output rows (pixels) or by images, never along a reduction: every output
//! value is computed by the same code from the same inputs in the same order whichever thread
//! holds it, so results are bit-identical for any thread count.

use std::sync::Mutex;

/// The engine's thread count.
pub struct Threads {
    n: usize,
}

impl Threads {
    /// `n` threads; 0 means one per core (`available_parallelism`). In wasm32 always one.
    pub fn new(n: usize) -> Threads {
        if cfg!(target_arch = "wasm32") {
            return Threads { n: 1 };
        }
        let n = if n == 0 { std::thread::available_parallelism().map_or(1, |c| c.get()) } else { n };
        Threads { n }
    }

    pub fn count(&self) -> usize {
        self.n
    }

    /// Runs one engine call `f` with a team of this many threads (the caller's and `n - 1`
    /// helpers that exist until `f` returns).
    pub fn call<R>(&self, f: impl FnOnce(&Team) -> R) -> R {
        #[cfg(not(target_arch = "wasm32"))]
        if self.n > 1 {
            return team::with_helpers(self.n, f);
        }
        f(&Team::single())
    }
}

/// The threads of one call. `run` hands out parts of a job to them.
pub struct Team {
    n: usize,
    #[cfg(not(target_arch = "wasm32"))]
    shared: Option<team::Shared>,
}

impl Team {
    fn single() -> Team {
        Team {
            n: 1,
            #[cfg(not(target_arch = "wasm32"))]
            shared: None,
        }
    }

    pub fn count(&self) -> usize {
        self.n
    }

    /// Calls `job(0), ..., job(parts - 1)`, each exactly once, spread over the team's
    /// threads; returns when all have returned.
    pub fn run(&self, parts: usize, job: &(dyn Fn(usize) + Sync)) {
        #[cfg(not(target_arch = "wasm32"))]
        if let (Some(s), true) = (&self.shared, parts > 1) {
            return s.run(parts, job);
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

#[cfg(not(target_arch = "wasm32"))]
mod team {
    use super::Team;
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    /// A spinning helper yields its core after this many idle polls (about 50 us), so that
    /// on a busy machine it does not hold a core the caller's thread may need.
    const SPINS_BEFORE_YIELD: u32 = 2000;

    type Job<'a> = &'a (dyn Fn(usize) + Sync);

    /// What the caller and the helpers share. A job is published as one ticket: its epoch
    /// (high 32 bits), its number of parts (16 bits) and the next part to take (low 16). A
    /// thread takes part `i` by moving the ticket from `(e, p, i)` to `(e, p, i + 1)`, `i < p`;
    /// the epoch only grows, so a thread that read an old job can never take a part of a
    /// newer one.
    pub(super) struct Shared {
        ticket: AtomicU64,
        /// Points at the current job (a `Job` on the caller's stack, valid while parts of it
        /// are left: the caller does not return from `run` before `left` is 0).
        job: AtomicPtr<Job<'static>>,
        left: AtomicUsize,
        quit: AtomicBool,
    }

    pub(super) fn with_helpers<R>(n: usize, f: impl FnOnce(&Team) -> R) -> R {
        let team = Team {
            n,
            shared: Some(Shared {
                ticket: AtomicU64::new(0),
                job: AtomicPtr::new(std::ptr::null_mut()),
                left: AtomicUsize::new(0),
                quit: AtomicBool::new(false),
            }),
        };
        let s = team.shared.as_ref().expect("just set");
        std::thread::scope(|scope| {
            for _ in 1..n {
                scope.spawn(|| s.help());
            }
            // Helpers stop when this is dropped, also if `f` panics.
            struct Quit<'a>(&'a AtomicBool);
            impl Drop for Quit<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            let _quit = Quit(&s.quit);
            f(&team)
        })
    }

    impl Shared {
        pub(super) fn run(&self, parts: usize, job: &(dyn Fn(usize) + Sync)) {
            if parts > 0xffff {
                return (0..parts).for_each(job); // never, at MAX_IMAGES = 1024
            }
            let epoch = (self.ticket.load(Ordering::Relaxed) >> 32) + 1;
            // SAFETY: only the lifetime is erased. The pointer is read by helpers only after
            // they take a part of this epoch, and this function returns only when every part
            // has finished (`left` is 0), so no helper uses it after `job` ends.
            let job: Job<'static> = unsafe { std::mem::transmute::<Job<'_>, Job<'static>>(job) };
            let mut slot = job;
            self.job.store(&mut slot, Ordering::Relaxed);
            self.left.store(parts, Ordering::Relaxed);
            self.ticket.store(epoch << 32 | (parts as u64) << 16, Ordering::Release); // publishes the two above
            self.work(epoch);
            let mut spins = 0u32;
            while self.left.load(Ordering::Acquire) != 0 {
                pause(&mut spins);
            }
        }

        /// Takes and runs parts of epoch `epoch` until there are none left.
        fn work(&self, epoch: u64) {
            let mut t = self.ticket.load(Ordering::Acquire);
            while t >> 32 == epoch && (t & 0xffff) < (t >> 16 & 0xffff) {
                match self.ticket.compare_exchange_weak(t, t + 1, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        // SAFETY: we hold part `t & 0xffff` of this epoch, so the caller
                        // is still in `run` and the job it points at is alive.
                        let job = unsafe { *self.job.load(Ordering::Relaxed) };
                        // Counted as done even if the job panics, so `run` does not spin
                        // forever; the panic reaches the caller when the scope ends.
                        struct Done<'a>(&'a AtomicUsize);
                        impl Drop for Done<'_> {
                            fn drop(&mut self) {
                                self.0.fetch_sub(1, Ordering::AcqRel);
                            }
                        }
                        let _done = Done(&self.left);
                        job((t & 0xffff) as usize);
                        t = self.ticket.load(Ordering::Acquire);
                    }
                    Err(now) => t = now,
                }
            }
        }

        /// A helper: waits for each new epoch and works on it, until the call ends.
        fn help(&self) {
            let mut seen = 0u64;
            let mut spins = 0u32;
            while !self.quit.load(Ordering::Acquire) {
                let epoch = self.ticket.load(Ordering::Acquire) >> 32;
                if epoch != seen {
                    seen = epoch;
                    // `job` and `left` were stored before the ticket's Release store.
                    self.work(epoch);
                    spins = 0;
                } else {
                    pause(&mut spins);
                }
            }
        }
    }

    fn pause(spins: &mut u32) {
        if *spins < SPINS_BEFORE_YIELD {
            *spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
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
