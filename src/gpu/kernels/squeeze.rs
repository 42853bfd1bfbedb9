//! squeeze.wgsl: squeeze and its exact inverse, with strides and offsets so that splits
//! need no copies.

use super::{elementwise_groups, params_of, read, uniform_struct, write, Binding, Kernel};

uniform_struct! {
    pub struct SqueezeParams as "SqueezeParams" {
        /// batch * h * w * 4c (values on the small side)
        pub count: u32 => "u32",
        /// Small-side height and width, and the channels c of the big side.
        pub h: u32 => "u32",
        pub w: u32 => "u32",
        pub c: u32 => "u32",
        /// Floats between two big-side pixels, and the first of its c channels.
        pub stride: u32 => "u32",
        pub offset: u32 => "u32",
        pub _pad0: u32 => "u32",
        pub _pad1: u32 => "u32",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Squeeze {
    pub unsqueeze: bool,
}

impl Kernel for Squeeze {
    fn label(&self) -> String {
        if self.unsqueeze { "unsqueeze" } else { "squeeze" }.into()
    }
    fn consts(&self) -> String {
        format!("const UNSQUEEZE: bool = {};\n", self.unsqueeze)
    }
    fn code(&self) -> String {
        include_str!("squeeze.wgsl").into()
    }
    fn storage(&self) -> &'static [Binding] {
        const B: &[Binding] = &[read("src", "array<f32>"), write("dst", "array<f32>")];
        B
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        params_of::<SqueezeParams>()
    }
}

impl Squeeze {
    pub fn groups(&self, p: &SqueezeParams) -> (u32, u32, u32) {
        elementwise_groups(p.count as usize)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn validates() {
        for unsqueeze in [false, true] {
            super::super::testing::layout_matches::<super::SqueezeParams>(&super::Squeeze { unsqueeze });
        }
    }
}
