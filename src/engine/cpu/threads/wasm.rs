//! wasm32 with shared memory (the `pkg-mt/` build): the helpers are Web Workers that
//! instantiate the same module on the same memory once, call `help` and never return from
//! it. There is one pool per memory (one per engine worker in the page), started before the
//! engine is made and kept for its life, not started per call: a worker takes tens of
//! milliseconds to start, a conv 20-200 us.
//!
//! Between calls the helpers sleep on a futex (`memory.atomic.wait32`, what `Atomics.wait`
//! is), so an idle page uses no CPU. While a call runs they spin between the parts of work,
//! as the native helpers do, because waking a sleeping thread costs about as much as a small
//! conv; after a long idle stretch inside a call they sleep too. Only the engine worker and
//! the helpers may block; the page's main thread never runs this build.

use super::ticket::{Job, Shared};
use core::arch::wasm32::{memory_atomic_notify, memory_atomic_wait32};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Idle polls a helper makes inside a call before it sleeps: about a millisecond, longer
/// than the serial stretches between the convs of a decode (an atomic load is a few ns).
const SPINS_IN_CALL: u32 = 1 << 18;
/// Polls the caller makes for the last parts before it sleeps for `CALLER_NAP_NS` at a time
/// (there is no yield in wasm; a timed wait gives the core back to a descheduled helper).
const CALLER_SPINS: u32 = 1 << 14;
const CALLER_NAP_NS: i64 = 50_000;

pub(crate) struct Pool {
    shared: Shared,
    /// Helpers that have entered `help`.
    helpers: AtomicU32,
    /// Helpers whose worker reported that `help` ended (a trap: panics abort in wasm).
    lost: AtomicU32,
    /// 1 while a call holds the team (helpers spin between jobs), 0 otherwise.
    active: AtomicU32,
    /// A call holds the team (a second, nested or concurrent, call runs on its own thread).
    busy: AtomicBool,
    /// Rings (is incremented) on every new job and at every call's start; sleeping helpers
    /// wait on it.
    bell: AtomicU32,
    sleepers: AtomicU32,
}

pub(crate) static POOL: Pool = Pool {
    shared: Shared::new(),
    helpers: AtomicU32::new(0),
    lost: AtomicU32::new(0),
    active: AtomicU32::new(0),
    busy: AtomicBool::new(false),
    bell: AtomicU32::new(0),
    sleepers: AtomicU32::new(0),
};

/// How many helpers are working now.
pub(crate) fn helpers() -> usize {
    POOL.helpers.load(Ordering::Acquire).saturating_sub(POOL.lost.load(Ordering::Acquire)) as usize
}

/// A helper worker's whole life: never returns (the worker is terminated with its page).
pub(crate) fn help() {
    let p = &POOL;
    let mut seen = p.shared.epoch();
    p.helpers.fetch_add(1, Ordering::AcqRel);
    let mut idle = 0u32;
    loop {
        let epoch = p.shared.epoch();
        if epoch != seen {
            seen = epoch;
            p.shared.work(epoch);
            idle = 0;
            continue;
        }
        if p.active.load(Ordering::Relaxed) != 0 && idle < SPINS_IN_CALL {
            idle += 1;
            std::hint::spin_loop();
            continue;
        }
        // Sleep until the bell rings. Announce the sleep, then look at the epoch once more:
        // a job published before the announcement is seen here; one published after it
        // finds a sleeper and rings (and the bell's value then differs from `bell`, so the
        // wait returns at once if the ring came first).
        let bell = p.bell.load(Ordering::SeqCst);
        p.sleepers.fetch_add(1, Ordering::SeqCst);
        if p.shared.epoch() == seen {
            // SAFETY: the address is that of a live, aligned 32-bit atomic in this memory.
            unsafe { memory_atomic_wait32(p.bell.as_ptr() as *mut i32, bell as i32, -1) };
        }
        p.sleepers.fetch_sub(1, Ordering::SeqCst);
        idle = 0;
    }
}

/// A helper's worker saw `help` end with an error.
pub(crate) fn lost() {
    POOL.lost.fetch_add(1, Ordering::AcqRel);
    // SAFETY: as in `help`; wakes a caller napping on `left`.
    unsafe { memory_atomic_notify(POOL.shared.left().as_ptr() as *mut i32, u32::MAX) };
}

impl Pool {
    /// Takes the team for one call; `None` if another call holds it.
    pub(super) fn take(&'static self) -> Option<Held> {
        self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok()?;
        self.active.store(1, Ordering::SeqCst);
        // Wake the sleepers now, so that they are spinning when the first job comes.
        self.ring();
        Some(Held(self))
    }

    fn ring(&self) {
        self.bell.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            // SAFETY: as in `help`.
            unsafe { memory_atomic_notify(self.bell.as_ptr() as *mut i32, u32::MAX) };
        }
    }

    pub(super) fn run(&self, parts: usize, job: Job<'_>) {
        let lost = self.lost.load(Ordering::Acquire);
        let left = self.shared.left();
        self.shared.run(parts, job, || self.ring(), |waits| {
            if self.lost.load(Ordering::Acquire) != lost {
                // A part will never finish and its output is missing: stop here rather than
                // wait forever or return wrong pixels. Panics abort in wasm, so the engine
                // worker's call fails with a RuntimeError and the page shows an error.
                panic!("a thread of the CPU engine stopped; reload the page");
            }
            if waits < CALLER_SPINS {
                std::hint::spin_loop();
            } else {
                let now = left.load(Ordering::Acquire);
                if now != 0 {
                    // SAFETY: as in `help`.
                    unsafe { memory_atomic_wait32(left.as_ptr() as *mut i32, now as i32, CALLER_NAP_NS) };
                }
            }
        });
    }
}

/// The team, held for one call; the helpers go back to sleep when it is dropped.
pub(super) struct Held(&'static Pool);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.active.store(0, Ordering::SeqCst);
        self.0.busy.store(false, Ordering::Release);
    }
}
