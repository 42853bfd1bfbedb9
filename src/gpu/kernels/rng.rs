//! rng.wgsl: the counter-based standard normal generator, twin of `model::rng`.

use super::{elementwise_groups, write, Binding, Kernel};

/// Draws `call.count` values from index `call.base` for `call.seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng;

impl Kernel for Rng {
    fn label(&self) -> String {
        "rng".into()
    }
    fn code(&self) -> String {
        include_str!("rng.wgsl").into()
    }
    fn storage(&self) -> &'static [Binding] {
        const B: &[Binding] = &[write("eps", "array<f32>")];
        B
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    fn uses_call(&self) -> bool {
        true
    }
}

impl Rng {
    pub fn groups(&self, count: usize) -> (u32, u32, u32) {
        elementwise_groups(count)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn validates() {
        super::super::testing::layout_matches::<super::super::CallParams>(&super::Rng);
    }
}
