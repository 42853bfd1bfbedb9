//! Face detection, 68 landmarks and alignment, on the CPU, for the CLI and the browser alike.
//!
//! Two small networks ported from @vladmandic/face-api 1.7.15 (MIT; weights converted by
//! tools/convert_faceapi.py into models/face/): `detector` (TinyFaceDetector) and `landmarks`
//! (FaceLandmark68TinyNet). Both reproduce face-api's arithmetic, input resizing included:
//! `detect_face_api` and `landmarks` give face-api's own results (tests/face.rs against
//! tests/fixtures/face/golden.json), but for two deliberate differences: an image shrunk by
//! 2x or more on its way into a network is read from a 2x box pyramid (same sample positions,
//! no aliasing), and points are continuous coordinates (face-api's + 0.5).
//!
//! On top, for photos: `detect` falls back to a zoomed-out and a larger input when face-api's
//! pass finds nothing, `find_faces` refines the landmarks from upright crops, and `align`
//! fits a similarity from the eyes and the mouth to a model's template (model.json `align`)
//! and cuts the crop from the full-resolution image with a Lanczos-3 filter.
//!
//! Points are in image pixels, continuous: the image spans `[0, w] x [0, h]`.

pub mod align;
mod detector;
mod landmarks;
mod nn;
mod resample;
mod weights;

pub use align::{aligned_crop, Similarity, Template};
pub use resample::{Image, MAX_PIXELS, MAX_SIDE};

use crate::error::{GlowError, Result};

/// The networks' input sizes: the detector's square and the landmark net's.
pub const DETECTOR_INPUT: usize = detector::INPUT_SIZE;
pub const LANDMARK_INPUT: usize = landmarks::INPUT_SIZE;
/// The detector keeps boxes scoring above this (face-api's default).
pub const SCORE_THRESHOLD: f64 = detector::SCORE_THRESHOLD;

/// How many times `find_faces` refines face-api's landmarks from an upright crop.
pub const REFINE_PASSES: usize = 2;

/// How far `detect` zooms out when face-api's pass finds nothing.
pub const ZOOM_OUT: f64 = 2.0;
/// The detector's input size in `detect`'s last pass, for small faces (2.1x the work).
pub const LARGE_INPUT: usize = 608;

/// The file names under models/face/.
pub const DETECTOR_FILE: &str = "tiny_face_detector.safetensors";
pub const LANDMARKS_FILE: &str = "face_landmark_68_tiny.safetensors";

/// One detected face: its box `[x, y, width, height]` in image pixels and its score (0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub bbox: [f64; 4],
    pub score: f64,
}

/// dlib's 68 points (0-16 jaw, 17-26 brows, 27-35 nose, 36-41 and 42-47 the eyes, 48-67 the
/// mouth), in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Landmarks {
    pub points: [[f64; 2]; 68],
}

impl Landmarks {
    fn mean(&self, r: std::ops::Range<usize>) -> [f64; 2] {
        let n = r.len() as f64;
        let s = self.points[r].iter().fold([0.0, 0.0], |s, p| [s[0] + p[0], s[1] + p[1]]);
        [s[0] / n, s[1] / n]
    }
    /// The mean of points 36-41: the eye on the image's left (the person's right eye).
    pub fn left_eye(&self) -> [f64; 2] {
        self.mean(36..42)
    }
    /// The mean of points 42-47: the eye on the image's right.
    pub fn right_eye(&self) -> [f64; 2] {
        self.mean(42..48)
    }
    /// The mean of points 48-67.
    pub fn mouth(&self) -> [f64; 2] {
        self.mean(48..68)
    }
    /// Left eye, right eye, mouth: what `align` fits (face-api's own alignment points).
    pub fn alignment_points(&self) -> [[f64; 2]; 3] {
        [self.left_eye(), self.right_eye(), self.mouth()]
    }
}

/// A face with its landmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoundFace {
    pub face: Face,
    pub landmarks: Landmarks,
}

/// A face aligned to a template.
#[derive(Debug, Clone)]
pub struct Aligned {
    pub found: FoundFace,
    /// Image coordinates -> the template's frame.
    pub transform: Similarity,
    /// RGBA8 of the template's size.
    pub rgba: Vec<u8>,
}

/// Both networks, loaded and checked.
pub struct FaceModels {
    detector: detector::Detector,
    landmarker: landmarks::Landmarker,
}

impl FaceModels {
    /// From the bytes of the two safetensors files.
    pub fn from_bytes(detector: &[u8], landmarks: &[u8]) -> Result<Self> {
        Ok(FaceModels { detector: detector::Detector::parse(detector)?, landmarker: landmarks::Landmarker::parse(landmarks)? })
    }

    /// From a directory holding both files (models/face).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir(dir: &std::path::Path) -> Result<Self> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| GlowError::Io(format!("{}: {e}", dir.join(name).display())));
        Self::from_bytes(&read(DETECTOR_FILE)?, &read(LANDMARKS_FILE)?)
    }

    /// Faces scoring above 0.5, highest first, after non-maximum suppression. face-api's
    /// detection (416x416 input); when that finds nothing, the image zoomed out by
    /// [`ZOOM_OUT`] (centred in a zero border: finds faces that fill the frame); when that
    /// finds nothing either, face-api's detection at [`LARGE_INPUT`] (small faces).
    pub fn detect(&self, img: &Image) -> Vec<Face> {
        let found = self.detector.detect(img, DETECTOR_INPUT);
        if !found.is_empty() {
            return found;
        }
        let found = self.detector.detect_zoomed_out(img, ZOOM_OUT);
        if !found.is_empty() {
            return found;
        }
        self.detector.detect(img, LARGE_INPUT)
    }

    /// face-api's detection alone at its default input size (what tests/face.rs checks
    /// against face-api).
    pub fn detect_face_api(&self, img: &Image) -> Vec<Face> {
        self.detector.detect(img, DETECTOR_INPUT)
    }

    /// Faces in a tight crop, such as a training image, where the face fills the frame: the
    /// image zoomed out by [`ZOOM_OUT`] into a zero border first (where the detector sees it
    /// as a face in a photo), face-api's pass if that finds nothing. What `glow
    /// align-template` measures templates with.
    pub fn find_faces_in_crop(&self, img: &Image) -> Vec<FoundFace> {
        let mut faces = self.detector.detect_zoomed_out(img, ZOOM_OUT);
        if faces.is_empty() {
            faces = self.detector.detect(img, DETECTOR_INPUT);
        }
        self.with_landmarks(img, faces)
    }

    /// The 68 points of the face in `face.bbox`: face-api's landmarks (half a pixel apart:
    /// see `Landmarker::landmarks`).
    pub fn landmarks(&self, img: &Image, face: &Face) -> Result<Landmarks> {
        self.landmarker.landmarks(img, face)
    }

    /// The landmarks again from an upright crop placed by `lm` ([`REFINE_PASSES`] times in
    /// `find_faces`).
    pub fn refine(&self, img: &Image, lm: &Landmarks) -> Result<Landmarks> {
        self.landmarker.refine(img, lm)
    }

    /// Every face with its landmarks (face-api's, then refined), highest score first.
    pub fn find_faces(&self, img: &Image) -> Vec<FoundFace> {
        self.with_landmarks(img, self.detect(img))
    }

    fn with_landmarks(&self, img: &Image, faces: Vec<Face>) -> Vec<FoundFace> {
        faces
            .into_iter()
            .filter_map(|face| {
                let mut lm = self.landmarks(img, &face).ok()?;
                for _ in 0..REFINE_PASSES {
                    lm = self.refine(img, &lm).ok()?;
                }
                Some(FoundFace { face, landmarks: lm })
            })
            .collect()
    }

    /// Finds the highest-scoring face and aligns it to `template`. `BadImage` when no face
    /// is found.
    pub fn align(&self, img: &Image, template: &Template) -> Result<Aligned> {
        let found = self.find_faces(img).into_iter().next().ok_or_else(|| {
            GlowError::Image(format!("no face found in the {}x{} image (no detection scored above {SCORE_THRESHOLD})", img.width(), img.height()))
        })?;
        align_found(img, &found, template)
    }
}

/// Aligns a face already found.
pub fn align_found(img: &Image, found: &FoundFace, template: &Template) -> Result<Aligned> {
    let transform = template.transform_for(&found.landmarks)?;
    let rgba = aligned_crop(img, &transform, template.width, template.height);
    Ok(Aligned { found: *found, transform, rgba })
}
