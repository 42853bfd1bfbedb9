//! wgpu plumbing: device, kernels, buffers. Knows nothing of Glow's structure.

pub mod context;
pub mod kernels;
pub mod single;

pub use context::GpuContext;
pub use kernels::{Kernel, KernelCache};
