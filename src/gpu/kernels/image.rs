//! image_in.wgsl and image_out.wgsl: RGBA8 <-> model values (n_bits quantization with
//! the bin centre in; continuous or OpenAI's postprocess out).

use super::{elementwise_groups, params_of, read, uniform_struct, write, Binding, Kernel};

uniform_struct! {
    pub struct ImageParams as "ImageParams" {
        /// batch * H * W
        pub pixels: u32 => "u32",
        pub channels: u32 => "u32",
        pub n_bits: u32 => "u32",
        pub _pad0: u32 => "u32",
    }
}

/// RGBA8 -> model values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageIn;

/// Model values -> RGBA8 (`call.quantize`: OpenAI's postprocess).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageOut;

impl Kernel for ImageIn {
    fn label(&self) -> String {
        "image_in".into()
    }
    fn code(&self) -> String {
        include_str!("image_in.wgsl").into()
    }
    fn storage(&self) -> &'static [Binding] {
        const B: &[Binding] = &[read("rgba", "array<u32>"), write("x", "array<f32>")];
        B
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        params_of::<ImageParams>()
    }
}

impl Kernel for ImageOut {
    fn label(&self) -> String {
        "image_out".into()
    }
    fn code(&self) -> String {
        include_str!("image_out.wgsl").into()
    }
    fn storage(&self) -> &'static [Binding] {
        const B: &[Binding] = &[read("x", "array<f32>"), write("rgba", "array<u32>")];
        B
    }
    fn params(&self) -> Option<(&'static str, &'static str)> {
        params_of::<ImageParams>()
    }
    fn uses_call(&self) -> bool {
        true
    }
}

/// One thread per pixel, either way.
pub fn groups(p: &ImageParams) -> (u32, u32, u32) {
    elementwise_groups(p.pixels as usize)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn validates() {
        super::super::testing::layout_matches::<super::ImageParams>(&super::ImageIn);
        super::super::testing::layout_matches::<super::ImageParams>(&super::ImageOut);
    }
}
