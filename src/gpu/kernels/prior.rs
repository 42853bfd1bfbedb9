//! prior.wgsl: split and top priors: standardize z2 to eps (with the Gaussian
//! log-density terms), or sample z2 from eps at the level's temperature.

use super::{elementwise_groups, params_of, read, uniform_struct, write, Binding, Kernel};

uniform_struct! {
    /// Mirrors `model::flow::PriorGeometry` for one level.
    pub struct PriorParams as "PriorParams" {
        /// batch * pixels * cz
        pub count: u32 => "u32",
        pub pixels: u32 => "u32",
        pub cz: u32 => "u32",
        pub z_stride: u32 => "u32",
        pub z_offset: u32 => "u32",
        pub h_image_stride: u32 => "u32",
        pub eps_offset: u32 => "u32",
        pub eps_image_stride: u32 => "u32",
        /// Which of the call's temperatures applies.
        pub level: u32 => "u32",
        pub _pad0: u32 => "u32",
        pub _pad1: u32 => "u32",
        pub _pad2: u32 => "u32",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prior {
    /// false: standardize (encode); true: sample (decode).
    pub reverse: bool,
}

impl Kernel for Prior {
    fn label(&self) -> String {
        if self.reverse { "prior|sample" } else { "prior|standardize" }.into()
    }
    fn consts(&self) -> String {
        format!("const REVERSE: bool = {};\n", self.reverse)
    }
    fn code(&self) -> String {
        include_str!("prior.wgsl").into()
    }
    fn storage(&self) -> &'static [Binding] {
        const B: &[Binding] = &[write("state", "array<f32>"), read("h", "array<f32>"), write("eps", "array<f32>"), write("terms", "array<f32>")];
        B
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        params_of::<PriorParams>()
    }
    fn uses_call(&self) -> bool {
        true
    }
}

impl Prior {
    pub fn groups(&self, p: &PriorParams) -> (u32, u32, u32) {
        elementwise_groups(p.count as usize)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn validates() {
        for reverse in [false, true] {
            let k = super::Prior { reverse };
            super::super::testing::layout_matches::<super::PriorParams>(&k);
            super::super::testing::layout_matches::<super::super::CallParams>(&k);
        }
    }
}
