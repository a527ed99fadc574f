//! Plain data types shared by the analysis and generation stages.

use serde::{Deserialize, Serialize};

/// Number of landmarks in the iBUG-300W scheme used throughout.
pub const N_LANDMARKS: usize = 68;

/// For each iBUG-300W landmark, its counterpart on the other side of the face (itself on the
/// midline): jaw, brows, nose wings, eyes and lips reversed.
const MIRROR: [usize; N_LANDMARKS] = [
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, // jaw
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17, // brows
    27, 28, 29, 30, 35, 34, 33, 32, 31, // nose
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, // eyes
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, // outer lips
    64, 63, 62, 61, 60, 67, 66, 65, // inner lips
];

/// 68 facial landmarks in image pixels, iBUG-300W order: jaw 0-16, brows 17-26, nose 27-35,
/// eyes 36-47 (right eye of the person 36-41, left 42-47), mouth 48-67 (inner lips 60-67).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Landmarks(#[serde(with = "landmark_serde")] pub [[f32; 2]; N_LANDMARKS]);

impl Landmarks {
    fn mean_of(&self, range: std::ops::Range<usize>) -> [f32; 2] {
        let n = range.len() as f32;
        let (sx, sy) = range.fold((0.0, 0.0), |(x, y), i| (x + self.0[i][0], y + self.0[i][1]));
        [sx / n, sy / n]
    }
    /// Centre of the eye on the image's left (landmarks 36-41).
    pub fn eye_left(&self) -> [f32; 2] {
        self.mean_of(36..42)
    }
    /// Centre of the eye on the image's right (landmarks 42-47).
    pub fn eye_right(&self) -> [f32; 2] {
        self.mean_of(42..48)
    }
    /// Centre of the mouth (all 20 lip landmarks).
    pub fn mouth_centre(&self) -> [f32; 2] {
        self.mean_of(48..68)
    }
    /// The same face in the frame flipped left to right (`width` pixels wide): each point
    /// mirrored, and renumbered so that every index keeps its meaning (landmark 36 is still
    /// the outer corner of the eye on the image's left).
    pub fn mirrored(&self, width: f32) -> Landmarks {
        Landmarks(std::array::from_fn(|i| {
            let p = self.0[MIRROR[i]];
            [width - p[0], p[1]]
        }))
    }
    /// Distance between the two eye centres, the scale unit for landmark errors.
    pub fn inter_ocular(&self) -> f32 {
        let (a, b) = (self.eye_left(), self.eye_right());
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
    }
    /// Mean point-to-point distance to `other`, in pixels.
    pub fn mean_distance(&self, other: &Landmarks) -> f32 {
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(a, b)| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt())
            .sum::<f32>()
            / N_LANDMARKS as f32
    }
}

mod landmark_serde {
    use super::N_LANDMARKS;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[[f32; 2]; N_LANDMARKS], s: S) -> Result<S::Ok, S::Error> {
        v.as_slice().serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[[f32; 2]; N_LANDMARKS], D::Error> {
        let v = Vec::<[f32; 2]>::deserialize(d)?;
        v.try_into().map_err(|v: Vec<_>| {
            D::Error::custom(format!("expected {N_LANDMARKS} landmarks, got {}", v.len()))
        })
    }
}

/// One detected face: its box and score from the detector, its landmarks, in image pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// `[x1, y1, x2, y2]` in image pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    pub landmarks: Landmarks,
}

impl Face {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
    pub fn centre(&self) -> [f32; 2] {
        [
            (self.bbox[0] + self.bbox[2]) / 2.0,
            (self.bbox[1] + self.bbox[3]) / 2.0,
        ]
    }
}
