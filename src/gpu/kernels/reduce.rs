//! reduce.wgsl: per-image sums for bits/dim, in a fixed order (deterministic).

use super::{params_of, read, uniform_struct, write, Binding, Kernel};

uniform_struct! {
    pub struct ReduceParams as "ReduceParams" {
        /// Terms per image.
        pub n: u32 => "u32",
        pub _pad0: u32 => "u32",
        pub _pad1: u32 => "u32",
        pub _pad2: u32 => "u32",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reduce;

impl Kernel for Reduce {
    fn label(&self) -> String {
        "reduce".into()
    }
    fn code(&self) -> String {
        include_str!("reduce.wgsl").into()
    }
    fn storage(&self) -> &'static [Binding] {
        const B: &[Binding] = &[read("terms", "array<f32>"), write("acc", "array<f32>")];
        B
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        params_of::<ReduceParams>()
    }
}

impl Reduce {
    /// One workgroup per image.
    pub fn groups(&self, batch: usize) -> (u32, u32, u32) {
        (batch as u32, 1, 1)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn validates() {
        super::super::testing::layout_matches::<super::ReduceParams>(&super::Reduce);
    }
}
