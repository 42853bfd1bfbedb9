//! wgpu plumbing: device, kernels, buffers. Knows nothing of Glow's structure.

pub mod bench;
pub mod context;
pub mod kernels;
pub mod single;

pub use context::GpuContext;
pub use kernels::{KernelCache, KernelKey};
