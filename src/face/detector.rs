//! face-api's `TinyFaceDetector` (193,321 parameters): a Tiny-YOLOv2 with depthwise-separable
//! convolutions, one class, 5 anchors, a 13x13 grid at the default 416x416 input.
//!
//! Read from @vladmandic/face-api 1.7.15 (`src/tinyYolov2/TinyYolov2Base.ts`,
//! `src/tinyFaceDetector/`), and reproduced here:
//! * input: the image padded with zeros on the right or bottom to a square (`padToSquare`,
//!   not centred), resized to 416x416 by TensorFlow's legacy bilinear, minus the mean RGB
//!   (117.001, 114.697, 97.404), divided by 255;
//! * `conv0`: 3x3 conv, 3 -> 16, 'valid' (no padding: 416 -> 414), + bias, leaky relu (0.1);
//!   2x2 max pool stride 2 'same';
//! * `conv1`..`conv5`: pad 1, depthwise 3x3, pointwise 1x1 (16 -> 32 -> 64 -> 128 -> 256 ->
//!   512), + bias, leaky; a 2x2 max pool stride 2 'same' after conv1-4 (207 -> 104 -> 52 ->
//!   26 -> 13) and stride 1 'same' after conv5;
//! * `conv8`: 1x1 conv 512 -> 25 + bias: per cell and anchor (tx, ty, tw, th, score);
//! * decoding: score `sigmoid(s)`, kept if > 0.5; centre `((col + sigmoid(tx)) / 13, (row +
//!   sigmoid(ty)) / 13)`, size `exp(tw) * anchor_w / 13` (anchors in cells), both scaled by
//!   416 / (the image's resized width or height, rounded) to be relative to the image;
//! * non-maximum suppression: highest score first, dropping boxes whose IoU with a kept one
//!   is above 0.4.

use super::nn::{self, Pad, Tensor};
use super::resample::Image;
use super::weights::FaceWeights;
use super::Face;
use crate::error::Result;

pub const INPUT_SIZE: usize = 416;
pub const SCORE_THRESHOLD: f64 = 0.5;
const IOU_THRESHOLD: f64 = 0.4;
const MEAN_RGB: [f32; 3] = [117.001, 114.697, 97.404];
const ANCHORS: [(f64, f64); 5] = [(1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061), (4.266906, 5.178857), (9.041765, 10.66308)];
const WIDTHS: [usize; 6] = [16, 32, 64, 128, 256, 512];

struct SepConv {
    depthwise: Vec<f32>,
    pointwise: Vec<f32>,
    bias: Vec<f32>,
    cout: usize,
}

pub struct Detector {
    conv0_w: Vec<f32>,
    conv0_b: Vec<f32>,
    convs: Vec<SepConv>,
    conv8_w: Vec<f32>,
    conv8_b: Vec<f32>,
}

impl Detector {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let w = FaceWeights::parse(bytes, "tiny_face_detector.safetensors")?;
        let mut convs = Vec::new();
        for i in 1..6 {
            let (cin, cout) = (WIDTHS[i - 1], WIDTHS[i]);
            convs.push(SepConv {
                depthwise: w.get(&format!("conv{i}/depthwise_filter"), &[3, 3, cin, 1])?,
                pointwise: w.get(&format!("conv{i}/pointwise_filter"), &[1, 1, cin, cout])?,
                bias: w.get(&format!("conv{i}/bias"), &[cout])?,
                cout,
            });
        }
        Ok(Detector {
            conv0_w: w.get("conv0/filters", &[3, 3, 3, 16])?,
            conv0_b: w.get("conv0/bias", &[16])?,
            convs,
            conv8_w: w.get("conv8/filters", &[1, 1, 512, 25])?,
            conv8_b: w.get("conv8/bias", &[25])?,
        })
    }

    /// The network on an n x n x 3 input (values 0..255, n a multiple of 32): the
    /// (n/32) x (n/32) x 25 output.
    fn forward(&self, rgb: Vec<f32>, n: usize) -> Tensor {
        let mut x = Tensor::new(n, n, 3, rgb);
        for px in x.data.chunks_exact_mut(3) {
            for (v, m) in px.iter_mut().zip(MEAN_RGB) {
                *v = (*v - m) / 255.0;
            }
        }
        let mut x = nn::conv3x3(&x, &self.conv0_w, 16, 1, Pad::Fixed(0));
        nn::add_bias(&mut x, &self.conv0_b);
        nn::leaky(&mut x);
        for (i, c) in self.convs.iter().enumerate() {
            x = nn::max_pool2(&x, 2);
            let d = nn::depthwise3x3(&x, &c.depthwise, 1, Pad::Fixed(1));
            x = nn::pointwise(&d, &c.pointwise, c.cout);
            nn::add_bias(&mut x, &c.bias);
            nn::leaky(&mut x);
            if i == 4 {
                x = nn::max_pool2(&x, 1);
            }
        }
        let mut y = nn::pointwise(&x, &self.conv8_w, 25);
        nn::add_bias(&mut y, &self.conv8_b);
        y
    }

    /// Faces in the image as face-api finds them with `inputSize` `n` (416 is its default),
    /// highest score first; boxes in the image's pixels.
    pub fn detect(&self, img: &Image, n: usize) -> Vec<Face> {
        let (w, h) = (img.width(), img.height());
        let s = w.max(h);
        // face-api's `getReshapedInputDimensions`: the image's size inside the n square,
        // rounded; its boxes are relative to that, then scaled by the image's size.
        let scale = n as f64 / s as f64;
        let (rw, rh) = ((w as f64 * scale).round().max(1.0), (h as f64 * scale).round().max(1.0));
        let (fx, fy) = (n as f64 / rw * w as f64, n as f64 / rh * h as f64);
        self.run(img, s, [0, 0], n, |[x, y, bw, bh]| [x * fx, y * fy, bw * fx, bh * fy])
    }

    /// As `detect`, with the image shrunk by `factor` (> 1) and centred in the detector's
    /// square, zero padding around it: faces too large for the detector's anchors (a face
    /// filling the frame, a tight crop) become ones it finds.
    pub fn detect_zoomed_out(&self, img: &Image, factor: f64) -> Vec<Face> {
        let (w, h) = (img.width(), img.height());
        let s = (w.max(h) as f64 * factor).round() as usize;
        let (ox, oy) = ((s - w) / 2, (s - h) / 2);
        let sf = s as f64;
        self.run(img, s, [ox, oy], INPUT_SIZE, |[x, y, bw, bh]| [x * sf - ox as f64, y * sf - oy as f64, bw * sf, bh * sf])
    }

    /// The net on the image placed at `offset` in a zero square of side `s`, resized to n;
    /// `to_pixels`
    /// maps a box relative to the square to image pixels.
    fn run(&self, img: &Image, s: usize, offset: [usize; 2], n: usize, to_pixels: impl Fn([f64; 4]) -> [f64; 4]) -> Vec<Face> {
        let (w, h) = (img.width(), img.height());
        let out = self.forward(img.square_input([0, 0, w, h], offset, s, n), n);
        let cells = out.h;
        let n = cells as f64;
        let mut found = Vec::new(); // (box relative to the square, score)
        for row in 0..cells {
            for col in 0..cells {
                for (a, &(aw, ah)) in ANCHORS.iter().enumerate() {
                    let v = &out.data[(row * cells + col) * 25 + a * 5..][..5];
                    let score = sigmoid(v[4] as f64);
                    if score <= SCORE_THRESHOLD {
                        continue;
                    }
                    let cx = (col as f64 + sigmoid(v[0] as f64)) / n;
                    let cy = (row as f64 + sigmoid(v[1] as f64)) / n;
                    let bw = (v[2] as f64).exp() * aw / n;
                    let bh = (v[3] as f64).exp() * ah / n;
                    found.push((to_pixels([cx - bw / 2.0, cy - bh / 2.0, bw, bh]), score));
                }
            }
        }
        nms(&found).into_iter().map(|i| Face { bbox: found[i].0, score: found[i].1 }).collect()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// face-api's `nonMaxSuppression`: a stable sort by score ascending, then repeatedly take the
/// last (so among equal scores the later box wins) and drop every remaining box whose IoU
/// with it is above the threshold. Returns indices in the order taken.
fn nms(found: &[([f64; 4], f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by(|&a, &b| found[a].1.total_cmp(&found[b].1));
    let mut pick = Vec::new();
    while let Some(cur) = order.pop() {
        pick.push(cur);
        order.retain(|&i| iou(&found[cur].0, &found[i].0) <= IOU_THRESHOLD);
    }
    pick
}

/// Intersection over union. (face-api compares boxes relative to the input times 416; the
/// ratio does not depend on the frame, only its last bits do.)
fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let h = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}
