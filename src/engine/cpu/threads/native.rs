//! Natively: for the length of one engine call, `n - 1` scoped helper threads (so they
//! borrow the call's data) that wait for parts of work by spinning, then yielding.

use super::ticket::{Job, Shared};
use super::Team;
use std::sync::atomic::{AtomicBool, Ordering};

/// A spinning helper yields its core after this many idle polls (about 50 us), so that
/// on a busy machine it does not hold a core the caller's thread may need.
const SPINS_BEFORE_YIELD: u32 = 2000;

/// The helpers of one call.
pub(super) struct Crew {
    shared: Shared,
    quit: AtomicBool,
}

pub(super) fn with_helpers<R>(n: usize, f: impl FnOnce(&Team) -> R) -> R {
    let team = Team { n, link: Some(Crew { shared: Shared::new(), quit: AtomicBool::new(false) }) };
    let crew = team.link.as_ref().expect("just set");
    std::thread::scope(|scope| {
        for _ in 1..n {
            scope.spawn(|| crew.help());
        }
        // Helpers stop when this is dropped, also if `f` panics.
        struct Quit<'a>(&'a AtomicBool);
        impl Drop for Quit<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _quit = Quit(&crew.quit);
        f(&team)
    })
}

impl Crew {
    pub(super) fn run(&self, parts: usize, job: Job<'_>) {
        self.shared.run(parts, job, || {}, pause);
    }

    /// A helper: waits for each new epoch and works on it, until the call ends.
    fn help(&self) {
        let mut seen = 0u64;
        let mut idle = 0u32;
        while !self.quit.load(Ordering::Acquire) {
            let epoch = self.shared.epoch();
            if epoch != seen {
                seen = epoch;
                self.shared.work(epoch);
                idle = 0;
            } else {
                pause(idle);
                idle = idle.saturating_add(1);
            }
        }
    }
}

fn pause(idle: u32) {
    if idle < SPINS_BEFORE_YIELD {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}
