//! coupling.wgsl: the affine coupling's combine, both directions (additive models fuse
//! theirs into the last conv, `conv::Combine`).

use super::{elementwise_groups, params_of, read, uniform_struct, write, Binding, Kernel};

uniform_struct! {
    pub struct CouplingParams as "CouplingParams" {
        /// batch * pixels * half
        pub count: u32 => "u32",
        /// Channels of the state, and half of them (z2 starts at `half`).
        pub c: u32 => "u32",
        pub half: u32 => "u32",
        pub _pad0: u32 => "u32",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coupling {
    pub affine: bool,
    pub reverse: bool,
}

impl Kernel for Coupling {
    fn label(&self) -> String {
        format!("coupling|{}|{}", if self.affine { "affine" } else { "additive" }, if self.reverse { "reverse" } else { "forward" })
    }
    fn consts(&self) -> String {
        format!("const AFFINE: bool = {};\nconst REVERSE: bool = {};\n", self.affine, self.reverse)
    }
    fn code(&self) -> String {
        include_str!("coupling.wgsl").into()
    }
    fn storage(&self) -> &'static [Binding] {
        const B: &[Binding] = &[write("state", "array<f32>"), read("h", "array<f32>"), write("terms", "array<f32>")];
        B
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        params_of::<CouplingParams>()
    }
}

impl Coupling {
    pub fn groups(&self, p: &CouplingParams) -> (u32, u32, u32) {
        elementwise_groups(p.count as usize)
    }
    pub fn all() -> Vec<Coupling> {
        [(false, false), (false, true), (true, false), (true, true)].map(|(affine, reverse)| Coupling { affine, reverse }).to_vec()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn validates() {
        for k in super::Coupling::all() {
            super::super::testing::layout_matches::<super::CouplingParams>(&k);
        }
    }
}
