//! Alignment: the least-squares similarity (rotation, uniform scale, translation) that takes
//! a face's left eye, right eye and mouth centre onto a model's template, and the crop it
//! defines, resampled from the full-resolution image.

use super::resample::Image;
use super::Landmarks;
use crate::error::{GlowError, Result};
use crate::model::config::AlignSpec;

/// `q = [a -b; b a] p + t`: a rotation by `atan2(b, a)` and a scale by `hypot(a, b)`, then a
/// translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// `[a, b, tx, ty]`, checked: finite, and a scale between 1e-6 and 1e6.
    pub fn from_array(v: [f64; 4]) -> Result<Self> {
        let s = Similarity { a: v[0], b: v[1], tx: v[2], ty: v[3] };
        if !v.iter().all(|x| x.is_finite()) || !(1e-6..1e6).contains(&s.scale()) {
            return Err(GlowError::Input(format!("transform {v:?} is not a usable similarity (finite, scale 1e-6 to 1e6)")));
        }
        Ok(s)
    }

    pub fn to_array(&self) -> [f64; 4] {
        [self.a, self.b, self.tx, self.ty]
    }

    /// The similarity that takes `src[i]` closest to `dst[i]` in the least-squares sense
    /// (Umeyama's solution without reflection). Needs two distinct source points.
    pub fn fit(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Result<Self> {
        let n = src.len();
        if n < 2 || dst.len() != n {
            return Err(GlowError::Input(format!("a similarity needs two or more point pairs, got {n} and {}", dst.len())));
        }
        if !src.iter().chain(dst).flatten().all(|v| v.is_finite()) {
            return Err(GlowError::Input("alignment points must be finite".into()));
        }
        let mean = |p: &[[f64; 2]]| {
            let s = p.iter().fold([0.0, 0.0], |s, q| [s[0] + q[0], s[1] + q[1]]);
            [s[0] / n as f64, s[1] / n as f64]
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut var, mut sa, mut sb) = (0.0, 0.0, 0.0);
        for (p, q) in src.iter().zip(dst) {
            let (px, py) = (p[0] - ms[0], p[1] - ms[1]);
            let (qx, qy) = (q[0] - md[0], q[1] - md[1]);
            var += px * px + py * py;
            sa += px * qx + py * qy;
            sb += px * qy - py * qx;
        }
        if var < 1e-12 {
            return Err(GlowError::Input("alignment points coincide: no scale or rotation is defined".into()));
        }
        let (a, b) = (sa / var, sb / var);
        let s = Similarity { a, b, tx: md[0] - (a * ms[0] - b * ms[1]), ty: md[1] - (b * ms[0] + a * ms[1]) };
        Similarity::from_array(s.to_array())
    }

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [self.a * p[0] - self.b * p[1] + self.tx, self.b * p[0] + self.a * p[1] + self.ty]
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) }
    }

    /// Then `other`: `other(self(p))`.
    pub fn then(&self, o: &Similarity) -> Similarity {
        Similarity {
            a: o.a * self.a - o.b * self.b,
            b: o.b * self.a + o.a * self.b,
            tx: o.a * self.tx - o.b * self.ty + o.tx,
            ty: o.b * self.tx + o.a * self.ty + o.ty,
        }
    }

    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// Rotation in degrees (counter-clockwise in a y-up frame; clockwise on screen).
    pub fn degrees(&self) -> f64 {
        self.b.atan2(self.a).to_degrees()
    }
}

/// Where a model wants the eyes and the mouth: `model.json`'s `align` block, in the model's
/// image frame (pixels, the image spanning `[0, width] x [0, height]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Template {
    pub left_eye: [f64; 2],
    pub right_eye: [f64; 2],
    pub mouth: [f64; 2],
    pub width: usize,
    pub height: usize,
}

impl Template {
    pub fn new(spec: &AlignSpec, width: usize, height: usize) -> Result<Self> {
        let t = Template { left_eye: spec.left_eye, right_eye: spec.right_eye, mouth: spec.mouth, width, height };
        t.check()?;
        Ok(t)
    }

    /// Finite points inside the frame, not all on one line (eye to eye and eye to mouth both
    /// at least 1 pixel), and a frame of 1 to 4096 pixels a side.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(GlowError::Input(format!("alignment template: {m}")));
        if !(1..=4096).contains(&self.width) || !(1..=4096).contains(&self.height) {
            return bad(format!("frame {}x{} must be 1 to 4096 pixels a side", self.width, self.height));
        }
        for (name, p) in [("left_eye", self.left_eye), ("right_eye", self.right_eye), ("mouth", self.mouth)] {
            if !p.iter().all(|v| v.is_finite()) || p[0] < 0.0 || p[1] < 0.0 || p[0] > self.width as f64 || p[1] > self.height as f64 {
                return bad(format!("{name} {p:?} is not inside the {}x{} frame", self.width, self.height));
            }
        }
        let d = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]);
        let eyes = [(self.left_eye[0] + self.right_eye[0]) / 2.0, (self.left_eye[1] + self.right_eye[1]) / 2.0];
        if d(self.left_eye, self.right_eye) < 1.0 || d(eyes, self.mouth) < 1.0 {
            return bad("the eyes and the mouth must be at least 1 pixel apart".into());
        }
        Ok(())
    }

    pub fn points(&self) -> [[f64; 2]; 3] {
        [self.left_eye, self.right_eye, self.mouth]
    }

    /// The similarity from image coordinates to this frame that puts the face's eyes and
    /// mouth closest to the template's.
    pub fn transform_for(&self, lm: &Landmarks) -> Result<Similarity> {
        self.transform_for_points(&lm.alignment_points())
    }

    /// As `transform_for`, from a face's left eye, right eye and mouth centre.
    pub fn transform_for_points(&self, points: &[[f64; 2]; 3]) -> Result<Similarity> {
        Similarity::fit(points, &self.points())
    }
}

/// The aligned crop: RGBA8 of the template's size, output pixel `q` showing image point
/// `t^-1(q)`, Lanczos-3 filtered from full resolution (`Image::resample`).
pub fn aligned_crop(img: &Image, t: &Similarity, width: usize, height: usize) -> Vec<u8> {
    let inv = t.inverse();
    img.resample(
        |x, y| {
            let p = inv.apply([x, y]);
            (p[0], p[1])
        },
        t.scale(),
        width,
        height,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_similarity_and_inverts() {
        let t = Similarity { a: 0.8 * 0.3f64.cos(), b: 0.8 * 0.3f64.sin(), tx: 5.0, ty: -7.0 };
        let src = [[10.0, 20.0], [40.0, 22.0], [25.0, 50.0]];
        let dst: Vec<[f64; 2]> = src.iter().map(|&p| t.apply(p)).collect();
        let f = Similarity::fit(&src, &dst).unwrap();
        for (x, y) in f.to_array().iter().zip(t.to_array()) {
            assert!((x - y).abs() < 1e-12);
        }
        let back = f.then(&f.inverse());
        assert!((back.a - 1.0).abs() < 1e-12 && back.b.abs() < 1e-12 && back.tx.abs() < 1e-9 && back.ty.abs() < 1e-9);
        assert!((f.degrees() - 0.3f64.to_degrees()).abs() < 1e-9);
        assert!(Similarity::fit(&[[1.0, 1.0], [1.0, 1.0]], &[[0.0, 0.0], [1.0, 0.0]]).is_err());
    }
}
