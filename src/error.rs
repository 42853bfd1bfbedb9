//! One error type for the whole crate. Every failure a user can cause (a bad file, a
//! wrong image, an absurd config) becomes a `GlowError` with a message that names the
//! thing at fault; nothing on a public path panics. `kind()` names the class of error,
//! which reaches JavaScript as the `name` of an `Error`, so a page can react to it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GlowError {
    /// model.json is malformed or inconsistent.
    #[error("model.json: {0}")]
    Config(String),
    /// The weights or attributes file is not a usable safetensors file.
    #[error("weights: {0}")]
    Weights(String),
    /// One tensor is missing, of the wrong shape or dtype, or holds non-finite values.
    #[error("weights: tensor '{name}': {problem}")]
    Tensor { name: String, problem: String },
    /// An image of the wrong size, format or dimensions.
    #[error("image: {0}")]
    Image(String),
    /// Any other bad argument: latents, temperatures, counts, names.
    #[error("input: {0}")]
    Input(String),
    /// No GPU adapter (no WebGPU in the browser, no Vulkan/GL natively).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The GPU device was lost or a readback failed.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// The adapter cannot hold what the model needs.
    #[error("out of GPU memory: {0}")]
    OutOfMemory(String),
    /// Another GPU failure (a pipeline that does not compile, a device that cannot open).
    #[error("gpu: {0}")]
    Gpu(String),
    /// A file could not be read or written.
    #[error("io: {0}")]
    Io(String),
    /// A call arrived while another one on the same model was running.
    #[error("busy: the model is running another call; await it first")]
    Busy,
}

impl GlowError {
    pub fn tensor(name: &str, problem: impl Into<String>) -> Self {
        GlowError::Tensor { name: name.to_string(), problem: problem.into() }
    }

    /// The class of error, as JavaScript sees it in `Error.name`.
    pub fn kind(&self) -> &'static str {
        match self {
            GlowError::Config(_) | GlowError::Weights(_) | GlowError::Tensor { .. } => "BadModelFile",
            GlowError::Image(_) => "BadImage",
            GlowError::Input(_) => "BadInput",
            GlowError::NoAdapter(_) => "NoAdapter",
            GlowError::DeviceLost(_) => "DeviceLost",
            GlowError::OutOfMemory(_) => "OutOfMemory",
            GlowError::Gpu(_) => "GpuError",
            GlowError::Io(_) => "IoError",
            GlowError::Busy => "Busy",
        }
    }
}

pub type Result<T> = std::result::Result<T, GlowError>;
