//! face-api's `FaceLandmark68TinyNet` (77,224 parameters): 68 points in dlib's layout from a
//! face box.
//!
//! Read from @vladmandic/face-api 1.7.15 (`src/faceLandmarkNet/`, `src/faceFeatureExtractor/
//! TinyFaceFeatureExtractor.ts`, `denseBlock.ts`, `src/dom/extractFaceTensors.ts`,
//! `NetInput.ts`), and reproduced here:
//! * the crop: the box clipped to the image, then x, y, width and height each floored;
//! * the input: the crop padded with zeros to a square, centred (`padToSquare(.., true)`:
//!   `round(diff / 2)` after, the rest before), resized to 112x112 by TensorFlow's legacy
//!   bilinear, minus the mean RGB (122.782, 117.001, 104.298), divided by 255;
//! * three dense blocks: `out1 = relu(conv0(x))` (dense0: 3x3 conv 3 -> 32, stride 2 'same';
//!   dense1, dense2: depthwise-separable stride 2 'same', to 64 and 128 channels), `out2 =
//!   sep(out1)`, `out3 = sep(relu(out1 + out2))`, block output `relu(out1 + out2 + out3)`,
//!   where `sep` is a depthwise-separable conv stride 1 'same' + bias (112 -> 56 -> 28 -> 14);
//! * a 14x14 average pool (the mean), then a fully connected layer 128 -> 136;
//! * output: (x, y) pairs relative to the padded square; face-api removes the padding and
//!   scales by the crop's size: `(out * 112 - pad) / (crop side * 112 / longer side)`.

use super::nn::{self, Pad, Tensor};
use super::resample::Image;
use super::weights::FaceWeights;
use super::align::Similarity;
use super::{Face, Landmarks};
use crate::error::{GlowError, Result};

pub const INPUT_SIZE: usize = 112;
const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

struct SepConv {
    depthwise: Vec<f32>,
    pointwise: Vec<f32>,
    bias: Vec<f32>,
    cout: usize,
}

impl SepConv {
    fn parse(w: &FaceWeights, prefix: &str, cin: usize, cout: usize) -> Result<Self> {
        Ok(SepConv {
            depthwise: w.get(&format!("{prefix}/depthwise_filter"), &[3, 3, cin, 1])?,
            pointwise: w.get(&format!("{prefix}/pointwise_filter"), &[1, 1, cin, cout])?,
            bias: w.get(&format!("{prefix}/bias"), &[cout])?,
            cout,
        })
    }

    fn run(&self, x: &Tensor, stride: usize) -> Tensor {
        let d = nn::depthwise3x3(x, &self.depthwise, stride, Pad::Same);
        let mut y = nn::pointwise(&d, &self.pointwise, self.cout);
        nn::add_bias(&mut y, &self.bias);
        y
    }
}

enum First {
    Conv { w: Vec<f32>, b: Vec<f32> },
    Sep(SepConv),
}

struct DenseBlock {
    conv0: First,
    conv1: SepConv,
    conv2: SepConv,
}

impl DenseBlock {
    fn run(&self, x: &Tensor) -> Tensor {
        let mut out1 = match &self.conv0 {
            First::Conv { w, b } => {
                let mut y = nn::conv3x3(x, w, b.len(), 2, Pad::Same);
                nn::add_bias(&mut y, b);
                y
            }
            First::Sep(s) => s.run(x, 2),
        };
        nn::relu(&mut out1);
        let out2 = self.conv1.run(&out1, 1);
        let mut in3 = out1.clone();
        nn::add_into(&mut in3, &out2);
        nn::relu(&mut in3);
        let mut out3 = self.conv2.run(&in3, 1);
        // relu(out1 + (out2 + out3)), in face-api's order.
        nn::add_into(&mut out3, &out2);
        nn::add_into(&mut out1, &out3);
        nn::relu(&mut out1);
        out1
    }
}

pub struct Landmarker {
    blocks: Vec<DenseBlock>,
    fc_w: Vec<f32>,
    fc_b: Vec<f32>,
}

impl Landmarker {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let w = FaceWeights::parse(bytes, "face_landmark_68_tiny.safetensors")?;
        let mut blocks = Vec::new();
        for (i, (cin, cout)) in [(3, 32), (32, 64), (64, 128)].into_iter().enumerate() {
            let p = format!("dense{i}");
            let conv0 = if i == 0 {
                First::Conv { w: w.get(&format!("{p}/conv0/filters"), &[3, 3, cin, cout])?, b: w.get(&format!("{p}/conv0/bias"), &[cout])? }
            } else {
                First::Sep(SepConv::parse(&w, &format!("{p}/conv0"), cin, cout)?)
            };
            blocks.push(DenseBlock {
                conv0,
                conv1: SepConv::parse(&w, &format!("{p}/conv1"), cout, cout)?,
                conv2: SepConv::parse(&w, &format!("{p}/conv2"), cout, cout)?,
            });
        }
        Ok(Landmarker { blocks, fc_w: w.get("fc/weights", &[128, 136])?, fc_b: w.get("fc/bias", &[136])? })
    }

    /// The network on a 112x112x3 input (values 0..255): 136 values, (x, y) relative to it.
    fn forward(&self, rgb: Vec<f32>) -> Vec<f32> {
        let mut x = Tensor::new(INPUT_SIZE, INPUT_SIZE, 3, rgb);
        for px in x.data.chunks_exact_mut(3) {
            for (v, m) in px.iter_mut().zip(MEAN_RGB) {
                *v = (*v - m) / 255.0;
            }
        }
        for b in &self.blocks {
            x = b.run(&x);
        }
        nn::dense(&nn::global_mean(&x), &self.fc_w, &self.fc_b)
    }

    /// The 68 points of the face in `face.bbox`, in image pixels, as face-api finds them but
    /// for one convention: face-api's points are pixel indices (the net's input pixel `j`
    /// is read at crop index `j * side / 112`, and its output `j / 112` stands for that
    /// pixel), so half a pixel is added to make them continuous coordinates, in which the
    /// image spans `[0, w]`. Without it, points would move by half a source pixel with the
    /// face's resolution: 0.5 px in a 64-pixel frame for a small face, nothing for a large one.
    pub fn landmarks(&self, img: &Image, face: &Face) -> Result<Landmarks> {
        let crop = crop_box(face.bbox, img.width(), img.height())
            .ok_or_else(|| GlowError::Input(format!("face box {:?} does not overlap the {}x{} image", face.bbox, img.width(), img.height())))?;
        let [cx, cy, cw, ch] = crop;
        let s = cw.max(ch);
        let diff = s - cw.min(ch);
        let after = (diff as f64 * 0.5).round() as usize;
        let before = diff - after;
        let offset = if ch > cw { [before, 0] } else { [0, before] };
        let input = img.square_input(crop, offset, s, INPUT_SIZE);
        let out = self.forward(input);
        // postProcess: the crop's size inside the 112 square and its centred padding.
        let scale = INPUT_SIZE as f64 / s as f64;
        let (iw, ih) = (cw as f64 * scale, ch as f64 * scale);
        let pad_x = if iw < ih { (iw - ih).abs() / 2.0 } else { 0.0 };
        let pad_y = if ih < iw { (iw - ih).abs() / 2.0 } else { 0.0 };
        let n = INPUT_SIZE as f32;
        let mut points = [[0f64; 2]; 68];
        for (i, p) in points.iter_mut().enumerate() {
            let rx = (out[2 * i] * n - pad_x as f32) / iw as f32;
            let ry = (out[2 * i + 1] * n - pad_y as f32) / ih as f32;
            *p = [rx as f64 * cw as f64 + cx as f64 + 0.5, ry as f64 * ch as f64 + cy as f64 + 0.5];
        }
        Ok(Landmarks { points })
    }

    /// The landmarks again, from a crop placed by the previous ones instead of by the
    /// detector's box: turned upright (the eyes level), and where the detector's box sits
    /// on an upright face of that size ([`CANONICAL_BOX`]). face-api's net was trained on
    /// upright faces in detector boxes; on a face turned by 20 degrees its points are off by
    /// several pixels, and this step removes most of that.
    pub fn refine(&self, img: &Image, lm: &Landmarks) -> Result<Landmarks> {
        // Image -> the canonical frame, where the eyes are at (-0.5, 0), (0.5, 0) and the
        // mouth at (0, 1) (least squares), and back.
        let t = Similarity::fit(&lm.alignment_points(), &CANONICAL)?;
        let inv = t.inverse();
        let [bx, by, bw, bh] = CANONICAL_BOX;
        // face-api's square around the box (centred padding), in image pixels.
        let side = bw.max(bh) / t.scale();
        let step = side / INPUT_SIZE as f64;
        let (sx, sy) = (bx - bw.max(bh) / 2.0, by - bw.max(bh) / 2.0);
        let (pad_x, pad_y) = ((bw.max(bh) - bw) / 2.0, (bw.max(bh) - bh) / 2.0);
        // Input pixel j is read at square coordinate j * step + 0.5 (image pixels), as
        // face-api reads its crop; in canonical units that is times t.scale().
        let to_canon = |j: f64, i: f64| [sx + (j * step + 0.5) * t.scale(), sy + (i * step + 0.5) * t.scale()];
        let input = img.warped_input(
            INPUT_SIZE,
            step,
            |j, i| inv.apply(to_canon(j, i)),
            |j, i| {
                let [u, v] = to_canon(j, i);
                u >= sx + pad_x && u <= sx + pad_x + bw && v >= sy + pad_y && v <= sy + pad_y + bh
            },
        );
        let out = self.forward(input);
        let mut points = [[0f64; 2]; 68];
        for (i, p) in points.iter_mut().enumerate() {
            let (j, ii) = (out[2 * i] as f64 * INPUT_SIZE as f64, out[2 * i + 1] as f64 * INPUT_SIZE as f64);
            *p = inv.apply(to_canon(j, ii));
        }
        Ok(Landmarks { points })
    }
}

/// The frame `refine` places its crop in: left eye, right eye and mouth centre.
const CANONICAL: [[f64; 2]; 3] = [[-0.5, 0.0], [0.5, 0.0], [0.0, 1.0]];

/// Where face-api's detector puts its box on an upright face, in the canonical frame:
/// centre x, centre y, width, height. The mean over 358 CelebA faces (every 20th training
/// image, pasted at 2x into a grey 534x436 canvas), found by the detector and landmarked by
/// face-api's own path; standard deviations 0.20, 0.09, 0.19, 0.16.
pub const CANONICAL_BOX: [f64; 4] = [-0.043, 0.691, 2.773, 2.666];

/// face-api's `clipAtImageBorders`: the box clipped to the image, each of x, y, width and
/// height floored. None when nothing is left.
pub fn crop_box(b: [f64; 4], w: usize, h: usize) -> Option<[usize; 4]> {
    if !b.iter().all(|v| v.is_finite()) {
        return None;
    }
    let (x, y) = (b[0].max(0.0), b[1].max(0.0));
    let cw = (b[0] + b[2] - x).min(w as f64 - x).floor();
    let ch = (b[1] + b[3] - y).min(h as f64 - y).floor();
    let (x, y) = (x.floor(), y.floor());
    if cw < 1.0 || ch < 1.0 || x >= w as f64 || y >= h as f64 {
        return None;
    }
    Some([x as usize, y as usize, cw as usize, ch as usize])
}
