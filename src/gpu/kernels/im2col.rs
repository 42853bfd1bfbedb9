//! im2col.wgsl: a 3x3 conv's input as rows of its receptive fields, for the 1x1 conv
//! that replaces a 3x3 conv with few input channels (`conv::ConvLayout`).

use super::conv::Conv2dParams;
use super::{elementwise_groups, params_of, read, write, Binding, Kernel};

/// The im2col kernel (one variant). Uses `Conv2dParams`: cin, in_stride, in_offset of the
/// input; out_stride is the row length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Im2col;

impl Kernel for Im2col {
    fn label(&self) -> String {
        "im2col3x3".into()
    }
    fn code(&self) -> String {
        format!("{}\n{}", include_str!("conv_common.wgsl"), include_str!("im2col.wgsl"))
    }
    fn storage(&self) -> &'static [Binding] {
        const B: &[Binding] = &[read("input", "array<f32>"), write("cols", "array<f32>")];
        B
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        params_of::<Conv2dParams>()
    }
}

impl Im2col {
    /// One thread per pixel.
    pub fn groups(&self, p: &Conv2dParams) -> (u32, u32, u32) {
        elementwise_groups(p.m as usize)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn validates() {
        super::super::testing::layout_matches::<super::Conv2dParams>(&super::Im2col);
    }
}
