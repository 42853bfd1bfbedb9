//! The one mechanism by which a team's threads share a job, natively and in wasm with shared
//! memory alike: a job is published as one 64-bit ticket, its epoch (high 32 bits), one past
//! the last part not taken yet (`end`, 16 bits) and the first part not taken yet (`start`, low
//! 16). The caller's thread takes parts from the front, moving the ticket from `(e, end, i)` to
//! `(e, end, i + 1)`; helpers take them from the back, `(e, i + 1, s)` to `(e, i, s)`; either
//! only while `start < end`. The epoch only grows, so a thread that read an old job can never
//! take a part of a newer one. The parts are not assigned in advance: whoever is free takes the
//! next one, so a thread that is late (not started yet, or descheduled) costs time but never
//! correctness.
//!
//! Why from both ends: with two threads, the caller then does the first parts of every conv and
//! the helper the last ones, so each keeps finding the rows it wrote (a conv's parts are its
//! output rows, and the next conv reads the same rows) in its own core's cache. Taken in one
//! order by whoever came first, about half the rows moved between the cores at every conv.
//!
//! How an idle thread waits differs (spin and yield natively; spin, then sleep on a futex in
//! wasm, where there is no yield): the callers pass that in.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

pub(super) type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// The most parts one job can have (the ticket's 16-bit fields).
const MAX_PARTS: usize = 0xffff;

pub(super) struct Shared {
    ticket: AtomicU64,
    /// Points at the current job (a `Job` on the caller's stack, valid while parts of it
    /// are left: the caller does not return from `run` before `left` is 0).
    job: AtomicPtr<Job<'static>>,
    /// Parts of the current job not finished yet. 32 bits, so that wasm can wait on it.
    left: AtomicU32,
}

impl Shared {
    pub(super) const fn new() -> Shared {
        Shared { ticket: AtomicU64::new(0), job: AtomicPtr::new(std::ptr::null_mut()), left: AtomicU32::new(0) }
    }

    /// The epoch of the latest job (0 before the first).
    pub(super) fn epoch(&self) -> u64 {
        self.ticket.load(Ordering::Acquire) >> 32
    }

    /// Parts of the current job still running or waiting (wasm's caller naps on it).
    #[cfg(target_arch = "wasm32")]
    pub(super) fn left(&self) -> &AtomicU32 {
        &self.left
    }

    /// Runs `job(0), ..., job(parts - 1)` on whichever threads call `work` for its epoch,
    /// the caller's included; returns when every part has returned. `published` is called
    /// once the job can be taken (to wake sleeping helpers); `wait` is called while other
    /// threads still hold parts, with a count of the calls so far.
    pub(super) fn run(&self, parts: usize, job: Job<'_>, published: impl FnOnce(), mut wait: impl FnMut(u32)) {
        if parts > MAX_PARTS {
            return (0..parts).for_each(job); // never, at MAX_IMAGES = 1024
        }
        let epoch = self.epoch() + 1;
        // SAFETY: only the lifetime is erased. The pointer is read by helpers only after
        // they take a part of this epoch, and this function returns only when every part
        // has finished (`left` is 0), so no helper uses it after `job` ends.
        let job: Job<'static> = unsafe { std::mem::transmute::<Job<'_>, Job<'static>>(job) };
        let mut slot = job;
        self.job.store(&mut slot, Ordering::Relaxed);
        self.left.store(parts as u32, Ordering::Relaxed);
        // SeqCst (not just Release, which publishes the two stores above): wasm's sleeping
        // helpers check the epoch after announcing that they sleep, and `published` checks
        // for sleepers after this store; one of the two must see the other.
        self.ticket.store(epoch << 32 | (parts as u64) << 16, Ordering::SeqCst);
        published();
        self.take(epoch, true);
        let mut waits = 0u32;
        while self.left.load(Ordering::Acquire) != 0 {
            wait(waits);
            waits = waits.saturating_add(1);
        }
    }

    /// A helper: takes and runs parts of epoch `epoch`, from the back, until there are none
    /// left.
    pub(super) fn work(&self, epoch: u64) {
        self.take(epoch, false)
    }

    /// Takes and runs parts of epoch `epoch` from the front (the caller) or the back (helpers)
    /// until there are none left.
    fn take(&self, epoch: u64, front: bool) {
        let mut t = self.ticket.load(Ordering::Acquire);
        while t >> 32 == epoch && (t & 0xffff) < (t >> 16 & 0xffff) {
            let (next, part) = if front { (t + 1, t & 0xffff) } else { (t - (1 << 16), (t >> 16 & 0xffff) - 1) };
            match self.ticket.compare_exchange_weak(t, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    // SAFETY: we hold part `part` of this epoch, so the caller
                    // is still in `run` and the job it points at is alive.
                    let job = unsafe { *self.job.load(Ordering::Relaxed) };
                    // Counted as done even if the job panics (natively), so `run` does not
                    // spin forever; the panic reaches the caller when the scope ends.
                    struct Done<'a>(&'a AtomicU32);
                    impl Drop for Done<'_> {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::AcqRel);
                        }
                    }
                    let _done = Done(&self.left);
                    job(part as usize);
                    t = self.ticket.load(Ordering::Acquire);
                }
                Err(now) => t = now,
            }
        }
    }
}
