//! Glow (Kingma & Dhariwal 2018) inference: WGSL compute kernels on wgpu and a fast CPU
//! engine, natively and in the browser, behind one `Session`. See docs/FORMAT.md for the
//! model files and README.md for the layout of the code.
//!
//! - `model`: the model's math, written once (config, weights, folding, latent layout,
//!   sampling, temperatures, bits/dim, directions, interpolation, quantization).
//! - `engine`: the GPU and CPU engines behind the `Engine` trait, and `Backend::choose`.
//! - `session`: what every caller uses.
//! - `face`: face detection, landmarks and alignment (two small nets ported from face-api).
//! - `reference`: the oracle the tests check the engines against; no engine imports it.

// The threaded wasm build (pkg-mt/, nightly Rust with shared memory) sleeps its helper
// threads with `memory.atomic.wait32`, whose intrinsic is still unstable.
#![cfg_attr(all(target_arch = "wasm32", target_feature = "atomics"), feature(stdarch_wasm_atomic_wait))]

pub mod engine;
pub mod error;
pub mod face;
pub mod gpu;
#[cfg(not(target_arch = "wasm32"))]
pub mod image_io;
pub mod import;
pub mod model;
pub mod npy;
pub mod reference;
pub mod session;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use engine::{Backend, GpuWeights, Preference};
pub use error::{GlowError, Result};
pub use gpu::GpuContext;
pub use model::Model;
pub use session::{Options, Session};
