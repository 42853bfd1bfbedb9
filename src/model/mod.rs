//! A Glow model: its config, its checked weights, the folded form the engines run,
//! and optional attribute directions.

pub mod config;
pub mod flow;
pub mod fold;
pub mod latent;
pub mod pixels;
pub mod random;
pub mod rng;
pub mod weights;

pub use config::{Coupling, LevelShape, ModelConfig};
pub use fold::FoldedModel;
pub use weights::{Directions, Weights};

use crate::error::Result;

/// Everything loaded from one model directory, checked and folded, not yet on a GPU.
#[derive(Debug, Clone)]
pub struct Model {
    pub config: ModelConfig,
    pub folded: FoldedModel,
    pub directions: Option<Directions>,
}

impl Model {
    /// Builds a model from the bytes of `model.json`, the weights file and (optionally)
    /// the attributes file. All checks happen here, before any GPU work.
    pub fn from_bytes(config_json: &str, weights: &[u8], attributes: Option<&[u8]>) -> Result<Self> {
        let config = ModelConfig::from_json(config_json)?;
        let w = Weights::parse(&config, weights)?;
        let folded = FoldedModel::new(&config, &w)?;
        let directions = match (&config.attributes, attributes) {
            (Some(spec), Some(bytes)) => Some(Directions::parse(&spec.names, config.dim(), bytes)?),
            _ => None,
        };
        Ok(Model { config, folded, directions })
    }

    /// Loads a model directory from disk (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir(dir: &std::path::Path) -> Result<Self> {
        use crate::error::GlowError;
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| GlowError::Io(format!("{}: {e}", dir.join(name).display())))
        };
        let json = String::from_utf8(read("model.json")?)
            .map_err(|_| GlowError::Config("model.json is not UTF-8".into()))?;
        let config = ModelConfig::from_json(&json)?;
        let weights = read(&config.weights)?;
        let attrs = match &config.attributes {
            Some(spec) => Some(read(&spec.file)?),
            None => None,
        };
        Self::from_bytes(&json, &weights, attrs.as_deref())
    }

    pub fn dim(&self) -> usize {
        self.config.dim()
    }
    pub fn height(&self) -> usize {
        self.config.image.height as usize
    }
    pub fn width(&self) -> usize {
        self.config.image.width as usize
    }
}
