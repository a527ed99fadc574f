//! The models that guide the morph beyond the 68 landmarks: the dense face mesh (each face's own
//! depth, lids and lips) and the person segmentation (who to cut out). Both are optional: a
//! generator without them turns faces on the mean shape and cuts people out along a shape
//! drawn from their faces, and [`GuideModels::open`] says once which is missing.

use std::path::Path;

use image::RgbImage;

use super::morph::{MorphGuides, PersonMask};
use crate::face::FaceError;
use crate::face::mesh::MeshModel;
use crate::face::segment::Segmenter;
use crate::runtime::Runtime;
use crate::types::{Face, Landmarks};

/// The mesh and segmentation models, each when installed.
pub struct GuideModels {
    mesh: Option<MeshModel>,
    segmenter: Option<Segmenter>,
    /// Why a model is not used, for the log and reports.
    pub missing: Vec<String>,
}

impl GuideModels {
    /// Opens whichever of the two models is installed in `models_dir`.
    pub fn open(runtime: &Runtime, models_dir: &Path) -> Self {
        let mut missing = Vec::new();
        let mesh = MeshModel::open(runtime, models_dir)
            .map_err(|e| missing.push(format!("dense face mesh: {e}")))
            .ok();
        let segmenter = Segmenter::open(runtime, models_dir)
            .map_err(|e| missing.push(format!("person segmentation: {e}")))
            .ok();
        for why in &missing {
            tracing::warn!(%why, "morph guide unavailable: using the fallback");
        }
        Self {
            mesh,
            segmenter,
            missing,
        }
    }

    /// Whether both models are there.
    pub fn complete(&self) -> bool {
        self.mesh.is_some() && self.segmenter.is_some()
    }

    /// The guides for two faces: `frames[k]` is the frame face `k` is in (the same frame twice
    /// for one capture). A model that fails on these frames is logged and left out: the clip is
    /// still made, on the fallback, rather than lost.
    pub fn guides(&mut self, frames: [&RgbImage; 2], faces: [&Landmarks; 2]) -> MorphGuides {
        match self.try_guides(frames, faces) {
            Ok(g) => g,
            Err(why) => {
                tracing::warn!(%why, "morph guides failed on this capture: using the fallback");
                MorphGuides::default()
            }
        }
    }

    fn try_guides(
        &mut self,
        frames: [&RgbImage; 2],
        faces: [&Landmarks; 2],
    ) -> Result<MorphGuides, FaceError> {
        let mut g = MorphGuides::default();
        if let Some(mesh) = self.mesh.as_mut() {
            for k in 0..2 {
                let face = face_of(faces[k]);
                let m = mesh.run(frames[k], &face)?;
                g.meshes[k] = Some(m.points);
            }
        }
        if let Some(seg) = self.segmenter.as_mut() {
            let same = std::ptr::eq(frames[0], frames[1]);
            for (k, frame) in frames.iter().enumerate().take(if same { 1 } else { 2 }) {
                let m = seg.run(frame)?;
                g.masks[k] = Some(PersonMask {
                    width: m.width,
                    height: m.height,
                    data: m.data,
                });
            }
        }
        Ok(g)
    }
}

/// A face box around 68 landmarks, as the detector would draw it (the forehead above the
/// brows included), for the mesh model's crop.
fn face_of(lm: &Landmarks) -> Face {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in &lm.0 {
        (x0, y0, x1, y1) = (x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1]));
    }
    let h = (y1 - y0).max(1.0);
    Face {
        bbox: [x0, y0 - 0.3 * h, x1, y1],
        score: 1.0,
        landmarks: *lm,
    }
}
