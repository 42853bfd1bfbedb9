//! One error type for the whole crate. Every failure a user can cause (a bad file, a
//! wrong image, an absurd config) becomes a `GlowError` with a message that names the
//! thing at fault; nothing on a public path panics.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GlowError {
    #[error("model.json: {0}")]
    Config(String),
    #[error("weights: {0}")]
    Weights(String),
    #[error("weights: tensor '{name}': {problem}")]
    Tensor { name: String, problem: String },
    #[error("image: {0}")]
    Image(String),
    #[error("input: {0}")]
    Input(String),
    #[error("gpu: {0}")]
    Gpu(String),
    #[error("io: {0}")]
    Io(String),
}

impl GlowError {
    pub fn tensor(name: &str, problem: impl Into<String>) -> Self {
        GlowError::Tensor { name: name.to_string(), problem: problem.into() }
    }
}

pub type Result<T> = std::result::Result<T, GlowError>;
