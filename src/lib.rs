//! Glow (Kingma & Dhariwal 2018) inference: an exact CPU reference and WGSL compute
//! kernels on wgpu, natively and in the browser. See docs/FORMAT.md for the model files.

pub mod cpu;
pub mod engine;
pub mod error;
pub mod gpu;
#[cfg(not(target_arch = "wasm32"))]
pub mod image_io;
pub mod import;
pub mod model;
pub mod npy;
pub mod reference;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{GlowError, Result};
pub use cpu::CpuGlow;
pub use engine::Glow;
pub use gpu::GpuContext;
pub use model::Model;
