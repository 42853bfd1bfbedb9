//! `model.json`: the configuration of one model directory (docs/FORMAT.md), with the
//! shapes derived from it. Validation happens here, before any weight is read.

use crate::error::{GlowError, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coupling {
    Additive,
    Affine,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageSpec {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttributeSpec {
    pub file: String,
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelConfig {
    pub format: String,
    pub name: String,
    pub image: ImageSpec,
    pub n_bits: u32,
    pub levels: u32,
    pub steps: u32,
    pub width: u32,
    pub coupling: Coupling,
    pub edge_bias: bool,
    /// Required: a learned top prior changes the weights file, so no default is guessed.
    pub learn_top: bool,
    #[serde(default = "default_weights")]
    pub weights: String,
    #[serde(default)]
    pub attributes: Option<AttributeSpec>,
    /// How raw photos are cropped and resized for this model (recorded by the trainer).
    #[serde(default)]
    pub preprocess: Option<serde_json::Value>,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    /// Where face alignment puts the eyes and the mouth in this model's frame (measured by
    /// `glow align-template`); models without it take a manual crop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<AlignSpec>,
}

/// `model.json`'s `align` block: the mean eye and mouth centres (face-api's 68-point
/// landmarks: points 36-41, 42-47, 48-67) of the model's own training crops, in its image
/// frame (pixels, the image spanning `[0, width] x [0, height]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlignSpec {
    pub left_eye: [f64; 2],
    pub right_eye: [f64; 2],
    pub mouth: [f64; 2],
    /// How many training crops the means are over.
    #[serde(default)]
    pub measured_on: Option<u64>,
    /// Which detector measured them.
    #[serde(default)]
    pub detector: Option<String>,
    /// How, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

fn default_weights() -> String {
    "weights.safetensors".to_string()
}

/// Shape of the flow state at one level (after that level's squeeze).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelShape {
    pub h: usize,
    pub w: usize,
    /// Channels of the state during the flow steps.
    pub c: usize,
    /// Offset of this level's latent in the per-image eps vector.
    pub eps_offset: usize,
    /// Number of eps values this level contributes per image.
    pub eps_len: usize,
}

impl LevelShape {
    pub fn pixels(&self) -> usize {
        self.h * self.w
    }
}

/// Limits that keep a hostile or mistaken config from asking for absurd allocations.
pub const MAX_SIDE: u32 = 1024;
pub const MAX_LEVELS: u32 = 8;
pub const MAX_STEPS: u32 = 64;
pub const MAX_WIDTH: u32 = 1024;

impl ModelConfig {
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: ModelConfig =
            serde_json::from_str(text).map_err(|e| GlowError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(GlowError::Config(m));
        if self.format != "glow-model/1" {
            return bad(format!("unknown format '{}', expected 'glow-model/1'", self.format));
        }
        let im = &self.image;
        if im.channels != 1 && im.channels != 3 {
            return bad(format!("image.channels is {}, must be 1 or 3", im.channels));
        }
        if self.levels == 0 || self.levels > MAX_LEVELS {
            return bad(format!("levels is {}, must be 1..={MAX_LEVELS}", self.levels));
        }
        if self.steps == 0 || self.steps > MAX_STEPS {
            return bad(format!("steps is {}, must be 1..={MAX_STEPS}", self.steps));
        }
        if self.width == 0 || self.width > MAX_WIDTH {
            return bad(format!("width is {}, must be 1..={MAX_WIDTH}", self.width));
        }
        if self.n_bits == 0 || self.n_bits > 8 {
            return bad(format!("n_bits is {}, must be 1..=8", self.n_bits));
        }
        if im.height == 0 || im.width == 0 || im.height > MAX_SIDE || im.width > MAX_SIDE {
            return bad(format!(
                "image is {}x{}, each side must be 1..={MAX_SIDE}",
                im.width, im.height
            ));
        }
        let f = 1u32 << self.levels;
        if !im.height.is_multiple_of(f) || !im.width.is_multiple_of(f) {
            return bad(format!(
                "image {}x{} is not divisible by 2^levels = {f}",
                im.width, im.height
            ));
        }
        if let Some(a) = &self.attributes {
            if a.names.is_empty() {
                return bad("attributes.names is empty".into());
            }
        }
        if let Some(a) = &self.align {
            crate::face::Template::new(a, im.width as usize, im.height as usize)
                .map_err(|e| GlowError::Config(format!("align: {e}")))?;
        }
        Ok(())
    }

    /// Values per image: H * W * channels.
    pub fn dim(&self) -> usize {
        (self.image.height * self.image.width * self.image.channels) as usize
    }

    pub fn c_half(&self, level: usize) -> usize {
        self.level_shapes()[level].c / 2
    }

    /// 1 when 3x3 convs carry OpenAI's extra edge channel, else 0.
    pub fn edge_channels(&self) -> usize {
        self.edge_bias as usize
    }

    pub fn level_shapes(&self) -> Vec<LevelShape> {
        let mut out = Vec::new();
        let (mut h, mut w, mut c) =
            (self.image.height as usize, self.image.width as usize, self.image.channels as usize);
        let mut off = 0;
        let levels = self.levels as usize;
        for l in 0..levels {
            h /= 2;
            w /= 2;
            c *= 4;
            let eps_len = if l + 1 < levels { h * w * c / 2 } else { h * w * c };
            out.push(LevelShape { h, w, c, eps_offset: off, eps_len });
            off += eps_len;
            c /= 2;
        }
        out
    }

    /// Output channels of the coupling net's last conv.
    pub fn coupling_out(&self, level: usize) -> usize {
        let c = self.level_shapes()[level].c;
        match self.coupling {
            Coupling::Additive => c / 2,
            Coupling::Affine => c,
        }
    }

    /// Every tensor the weights file must hold, with its shape, in a stable order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let e = self.edge_channels();
        let w = self.width as usize;
        let mut v = Vec::new();
        let shapes = self.level_shapes();
        for (l, s) in shapes.iter().enumerate() {
            let c = s.c;
            let cf = self.coupling_out(l);
            for k in 0..self.steps as usize {
                let p = format!("L{l}.S{k}.");
                v.push((format!("{p}actnorm.b"), vec![c]));
                v.push((format!("{p}actnorm.logs"), vec![c]));
                v.push((format!("{p}invconv.W"), vec![c, c]));
                v.push((format!("{p}f.l1.W"), vec![3, 3, c / 2 + e, w]));
                v.push((format!("{p}f.l1.actnorm.b"), vec![w]));
                v.push((format!("{p}f.l1.actnorm.logs"), vec![w]));
                v.push((format!("{p}f.l2.W"), vec![1, 1, w, w]));
                v.push((format!("{p}f.l2.actnorm.b"), vec![w]));
                v.push((format!("{p}f.l2.actnorm.logs"), vec![w]));
                v.push((format!("{p}f.last.W"), vec![3, 3, w + e, cf]));
                v.push((format!("{p}f.last.b"), vec![cf]));
                v.push((format!("{p}f.last.logs"), vec![cf]));
            }
            if l + 1 < shapes.len() {
                v.push((format!("L{l}.prior.W"), vec![3, 3, c / 2 + e, c]));
                v.push((format!("L{l}.prior.b"), vec![c]));
                v.push((format!("L{l}.prior.logs"), vec![c]));
            }
        }
        if self.learn_top {
            let ct = shapes.last().map(|s| s.c).unwrap_or(0);
            v.push(("top.W".into(), vec![3, 3, 2 * ct + e, 2 * ct]));
            v.push(("top.b".into(), vec![2 * ct]));
            v.push(("top.logs".into(), vec![2 * ct]));
        }
        v
    }

    /// Multiply-adds per image for one pass (encode or decode), for GFLOP figures.
    pub fn flops_per_image(&self) -> f64 {
        let w = self.width as f64;
        let e = self.edge_channels() as f64;
        let mut macs = 0.0;
        let shapes = self.level_shapes();
        for (l, s) in shapes.iter().enumerate() {
            let p = s.pixels() as f64;
            let c = s.c as f64;
            let cf = self.coupling_out(l) as f64;
            let _ = e;
            let step = c * c + 9.0 * (c / 2.0) * w + w * w + 9.0 * w * cf;
            macs += p * step * self.steps as f64;
            if l + 1 < shapes.len() {
                macs += p * 9.0 * (c / 2.0) * c;
            }
        }
        2.0 * macs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ModelConfig {
        ModelConfig::from_json(
            r#"{"format":"glow-model/1","name":"t","image":{"height":16,"width":16,"channels":3},
            "n_bits":5,"levels":3,"steps":2,"width":12,"coupling":"affine","edge_bias":true,"learn_top":true}"#,
        )
        .unwrap()
    }

    #[test]
    fn level_shapes_cover_every_dimension_once() {
        let c = cfg();
        let s = c.level_shapes();
        assert_eq!(s[0], LevelShape { h: 8, w: 8, c: 12, eps_offset: 0, eps_len: 384 });
        assert_eq!(s[1], LevelShape { h: 4, w: 4, c: 24, eps_offset: 384, eps_len: 192 });
        assert_eq!(s[2], LevelShape { h: 2, w: 2, c: 48, eps_offset: 576, eps_len: 192 });
        assert_eq!(s[2].eps_offset + s[2].eps_len, c.dim());
    }

    #[test]
    fn absurd_configs_are_refused_with_a_reason() {
        let base = r#"{"format":"glow-model/1","name":"t","image":{"height":H,"width":16,"channels":3},
            "n_bits":5,"levels":L,"steps":2,"width":12,"coupling":"affine","edge_bias":true,"learn_top":true}"#;
        let e = ModelConfig::from_json(&base.replace("H", "100000").replace("L", "3")).unwrap_err();
        assert!(e.to_string().contains("each side"), "{e}");
        let e = ModelConfig::from_json(&base.replace("H", "12").replace("L", "3")).unwrap_err();
        assert!(e.to_string().contains("divisible"), "{e}");
        let e = ModelConfig::from_json(&base.replace("H", "16").replace("L", "40")).unwrap_err();
        assert!(e.to_string().contains("levels"), "{e}");
        let e = ModelConfig::from_json("{\"format\": 3}").unwrap_err();
        assert!(e.to_string().starts_with("model.json"), "{e}");
    }
}
