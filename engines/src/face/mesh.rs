//! The dense face mesh (MediaPipe Face Mesh v1, `face-mesh-468.onnx`): 468 points with depth,
//! lids, lips, nose, jaw and cheek contours.
//!
//! The model sees a 192x192 crop: a square 1.6 times the detector box's longer side, centred on
//! the box and rotated so the eyes (from the 68 landmarks) are level, as MediaPipe crops it;
//! bilinear, zero outside the image, averaged over k×k sub-samples when the crop shrinks the
//! face by more than 2 (an area filter; k ≤ 4). The points come back through the inverse
//! rotation to image pixels; depth is scaled like x and points away from the camera.

use std::path::Path;

use image::RgbImage;
use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use super::align::{Affine, supersample_for, warp};
use super::{FaceError, open_model};
use crate::manifest::Manifest;
use crate::runtime::{Runtime, SessionInfo};
use crate::types::Face;

/// Points in the dense mesh.
pub const MESH_POINTS: usize = 468;
/// The model's input side in pixels.
const SIZE: usize = 192;
/// The crop's side relative to the detector box's longer side.
pub const CROP_SCALE: f32 = 1.6;

/// A face's dense mesh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceMesh {
    /// 468 points `[x, y, z]` in image pixels (MediaPipe's canonical order). `z` is depth in the
    /// same unit as `x`: larger is farther from the camera, and the mean over the 468 points is 0.
    pub points: Vec<[f32; 3]>,
    /// The model's confidence that the crop holds a face (sigmoid of its logit).
    pub presence: f32,
}

impl FaceMesh {
    // MediaPipe's canonical indices. "Right" and "left" are the person's: the right eye is on
    // the image's left (the 68 landmarks' 36-41). Each contour runs from one corner to the other.
    /// Upper lid of the person's right eye (image left), outer corner side first.
    pub const RIGHT_EYE_UPPER: [usize; 7] = [246, 161, 160, 159, 158, 157, 173];
    /// Lower lid of the person's right eye, from the outer corner (33) to the inner (133).
    pub const RIGHT_EYE_LOWER: [usize; 9] = [33, 7, 163, 144, 145, 153, 154, 155, 133];
    /// Upper lid of the person's left eye (image right), outer corner side first.
    pub const LEFT_EYE_UPPER: [usize; 7] = [466, 388, 387, 386, 385, 384, 398];
    /// Lower lid of the person's left eye, from the outer corner (263) to the inner (362).
    pub const LEFT_EYE_LOWER: [usize; 9] = [263, 249, 390, 373, 374, 380, 381, 382, 362];
    /// Outer lip contour, a closed loop from the right mouth corner (61) over the upper lip.
    pub const LIPS_OUTER: [usize; 20] = [
        61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146,
    ];
    /// Inner lip contour (the mouth opening), a closed loop from 78 over the upper lip.
    pub const LIPS_INNER: [usize; 20] = [
        78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95,
    ];
    /// The face oval, a closed loop from the forehead's top (10) clockwise on the image.
    pub const FACE_OVAL: [usize; 36] = [
        10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
        152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
    ];
    /// The nose tip.
    pub const NOSE_TIP: usize = 1;
    /// Upper and lower lip, middle of the mouth opening.
    pub const LIP_UPPER_INNER: usize = 13;
    pub const LIP_LOWER_INNER: usize = 14;

    /// The points at `indices`.
    pub fn select(&self, indices: &[usize]) -> Vec<[f32; 3]> {
        indices.iter().map(|&i| self.points[i]).collect()
    }

    /// The mean of the points at `indices`.
    pub fn mean_of(&self, indices: &[usize]) -> [f32; 3] {
        let n = indices.len().max(1) as f32;
        let s = indices.iter().fold([0f32; 3], |a, &i| {
            let p = self.points[i];
            [a[0] + p[0], a[1] + p[1], a[2] + p[2]]
        });
        s.map(|v| v / n)
    }

    /// Centre of the eye on the image's left (the person's right eye): the mean of its lids.
    pub fn eye_left_centre(&self) -> [f32; 3] {
        self.mean_of(&[&Self::RIGHT_EYE_UPPER[..], &Self::RIGHT_EYE_LOWER[..]].concat())
    }

    /// Centre of the eye on the image's right (the person's left eye).
    pub fn eye_right_centre(&self) -> [f32; 3] {
        self.mean_of(&[&Self::LEFT_EYE_UPPER[..], &Self::LEFT_EYE_LOWER[..]].concat())
    }

    /// Centre of the mouth: the mean of the outer lip contour.
    pub fn mouth_centre(&self) -> [f32; 3] {
        self.mean_of(&Self::LIPS_OUTER)
    }

    /// How open an eye is: the mean gap between the upper lid's middle points (159/386) and
    /// the lower lid's (145/374) over the eye's width (corner to corner): 0.28-0.55 on the open
    /// eyes of the fixtures, falling toward 0 as the lid closes. `left_of_image` picks the eye
    /// on the image's left.
    pub fn eye_openness(&self, left_of_image: bool) -> f32 {
        let (upper, lower, a, b) = if left_of_image {
            (159, 145, 33, 133)
        } else {
            (386, 374, 263, 362)
        };
        let d = |i: usize, j: usize| {
            let (p, q) = (self.points[i], self.points[j]);
            ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
        };
        d(upper, lower) / d(a, b).max(1e-6)
    }
}

/// Where a face's mesh crop lies in the image: centre, side and rotation (eyes level).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeshCrop {
    pub centre: [f32; 2],
    /// Side of the square in image pixels.
    pub size: f32,
    /// Angle in radians of the line from the image-left eye to the image-right eye.
    pub angle: f32,
}

impl MeshCrop {
    pub fn for_face(face: &Face) -> MeshCrop {
        let b = face.bbox;
        let (el, er) = (face.landmarks.eye_left(), face.landmarks.eye_right());
        MeshCrop {
            centre: [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0],
            size: (b[2] - b[0]).max(b[3] - b[1]) * CROP_SCALE,
            angle: (er[1] - el[1]).atan2(er[0] - el[0]),
        }
    }

    /// Image point (continuous pixel coordinates, pixel centres at +0.5) of a crop point in the
    /// model's 192-pixel frame.
    pub fn to_image(&self, p: [f32; 2]) -> [f32; 2] {
        let k = self.size / SIZE as f32;
        let (u, v) = (
            (p[0] - SIZE as f32 / 2.0) * k,
            (p[1] - SIZE as f32 / 2.0) * k,
        );
        let (s, c) = self.angle.sin_cos();
        [
            self.centre[0] + u * c - v * s,
            self.centre[1] + u * s + v * c,
        ]
    }

    /// The map from crop array coordinates to image array coordinates (the sampler's).
    fn sampler(&self) -> Affine {
        let k = self.size / SIZE as f32;
        let (s, c) = self.angle.sin_cos();
        // crop pixel centre ox + 0.5 → to_image → minus 0.5 for array coordinates
        let o = 0.5 - SIZE as f32 / 2.0;
        let tx = self.centre[0] + k * (c * o - s * o) - 0.5;
        let ty = self.centre[1] + k * (s * o + c * o) - 0.5;
        Affine([k * c, -k * s, tx, k * s, k * c, ty])
    }

    /// Sub-samples per output pixel side: source pixels at most 2 apart, at most 4.
    fn supersample(&self) -> usize {
        supersample_for(self.size / SIZE as f32)
    }
}

/// The loaded mesh model.
pub struct MeshModel {
    session: Session,
    pub info: SessionInfo,
    input: Array4<f32>,
}

impl MeshModel {
    /// Opens `face-mesh-468.onnx` from `models_dir` and checks its tensors against the manifest.
    pub fn open(runtime: &Runtime, models_dir: &Path) -> Result<Self, FaceError> {
        let manifest = Manifest::face_pack();
        let (session, info, _) = open_model(runtime, models_dir, &manifest, "mesh")?;
        Ok(MeshModel {
            session,
            info,
            input: Array4::zeros((1, SIZE, SIZE, 3)),
        })
    }

    /// The mesh of `face` (its box and 68 landmarks) in `image`.
    pub fn run(&mut self, image: &RgbImage, face: &Face) -> Result<FaceMesh, FaceError> {
        let crop = MeshCrop::for_face(face);
        if !(crop.size.is_finite() && crop.size > 1.0 && crop.angle.is_finite()) {
            return Err(FaceError::Inference(format!(
                "face box {:?} is too small or not finite for the mesh",
                face.bbox
            )));
        }
        let input = self
            .input
            .as_slice_mut()
            .ok_or_else(|| FaceError::Inference("mesh input is not contiguous".into()))?;
        warp(
            image,
            &crop.sampler(),
            SIZE,
            SIZE,
            crop.supersample(),
            |x, y, rgb| {
                let i = (y * SIZE + x) * 3;
                for c in 0..3 {
                    input[i + c] = rgb[c] / 255.0;
                }
            },
        );
        let outputs = self
            .session
            .run(ort::inputs!["input_1" => TensorRef::from_array_view(&self.input)?])?;
        let (_, raw) = outputs["conv2d_21"].try_extract_tensor::<f32>()?;
        let (_, logit) = outputs["conv2d_31"].try_extract_tensor::<f32>()?;
        if raw.len() != 3 * MESH_POINTS || logit.is_empty() {
            return Err(FaceError::Inference(format!(
                "mesh outputs hold {} and {} values",
                raw.len(),
                logit.len()
            )));
        }
        let k = crop.size / SIZE as f32;
        let mut points: Vec<[f32; 3]> = raw
            .chunks_exact(3)
            .map(|p| {
                let [x, y] = crop.to_image([p[0], p[1]]);
                [x, y, p[2] * k]
            })
            .collect();
        let mean_z = points.iter().map(|p| p[2]).sum::<f32>() / MESH_POINTS as f32;
        for p in &mut points {
            p[2] -= mean_z;
        }
        Ok(FaceMesh {
            points,
            presence: 1.0 / (1.0 + (-logit[0]).exp()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Landmarks;

    fn face(bbox: [f32; 4], eyes: [[f32; 2]; 2]) -> Face {
        let mut lm = [[0f32; 2]; 68];
        lm[36..42].fill(eyes[0]);
        lm[42..48].fill(eyes[1]);
        Face {
            bbox,
            score: 1.0,
            landmarks: Landmarks(lm),
        }
    }

    #[test]
    fn the_crop_is_centred_on_the_box_and_turned_with_the_eyes() {
        let f = face(
            [100.0, 50.0, 200.0, 170.0],
            [[130.0, 100.0], [170.0, 140.0]],
        );
        let c = MeshCrop::for_face(&f);
        assert_eq!(c.centre, [150.0, 110.0]);
        assert!((c.size - 192.0).abs() < 1e-4);
        assert!((c.angle - std::f32::consts::FRAC_PI_4).abs() < 1e-6);
        // the crop's centre maps to the box centre; a step along the crop's x follows the eyes
        let m = c.to_image([96.0, 96.0]);
        assert!((m[0] - 150.0).abs() < 1e-4 && (m[1] - 110.0).abs() < 1e-4);
        let r = c.to_image([96.0 + 10.0, 96.0]);
        assert!((r[0] - m[0] - 10.0 / 2f32.sqrt()).abs() < 1e-3);
        assert!((r[1] - m[1] - 10.0 / 2f32.sqrt()).abs() < 1e-3);
    }

    #[test]
    fn the_sampler_agrees_with_to_image() {
        let f = face([10.0, 20.0, 410.0, 380.0], [[150.0, 150.0], [260.0, 120.0]]);
        let c = MeshCrop::for_face(&f);
        let s = c.sampler();
        for p in [[0.0, 0.0], [191.0, 5.0], [37.0, 150.0]] {
            // array coordinates on both sides: pixel centres at integers
            let a = s.apply(p);
            let b = c.to_image([p[0] + 0.5, p[1] + 0.5]);
            assert!((a[0] - (b[0] - 0.5)).abs() < 1e-3, "{a:?} vs {b:?}");
            assert!((a[1] - (b[1] - 0.5)).abs() < 1e-3, "{a:?} vs {b:?}");
        }
        assert_eq!(c.supersample(), 2); // 640 px onto 192: 3.3 per pixel
    }

    #[test]
    fn the_lid_and_lip_contours_are_distinct_points_of_the_mesh() {
        let mut all: Vec<usize> = [
            &FaceMesh::RIGHT_EYE_UPPER[..],
            &FaceMesh::RIGHT_EYE_LOWER[..],
            &FaceMesh::LEFT_EYE_UPPER[..],
            &FaceMesh::LEFT_EYE_LOWER[..],
            &FaceMesh::LIPS_OUTER[..],
            &FaceMesh::LIPS_INNER[..],
        ]
        .concat();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|&i| i < MESH_POINTS));
        assert!(FaceMesh::FACE_OVAL.iter().all(|&i| i < MESH_POINTS));
    }
}
