//! Generation: from two faces to the frames of a kiss.
//!
//! The pipeline, in the order a caller uses it:
//!
//! 1. [`shape3d`]: the mean 3D shape of the 68 landmarks ([`MeanShape`], parsed from
//!    `face3d-68.csv`), a weak-perspective pose fit ([`fit_pose`]) and [`LiftedFace`], which lifts
//!    observed landmarks to 3D so a head can be turned and projected back. Two frontal faces
//!    cannot kiss by sliding in 2D: their noses collide.
//! 2. [`timeline`]: [`Timeline::plan`] turns a [`TimelineConfig`] and the two faces (in canvas
//!    pixels) into per-frame targets: landmarks, eye closure, pucker, smile, depth order, phase.
//! 3. [`morph`]: [`MorphGenerator`] warps each person as a whole (the sharp capture deformed by
//!    one smooth mesh that carries head, hair and neck onto those targets and fades out toward
//!    the canvas border and the body), and lays the two people together with the head in front
//!    over the other, one frame at a time, so encoding can run alongside rendering.
//!
//! ```no_run
//! use kissbooth_engines::generate::{MeanShape, MorphConfig, MorphGenerator, MorphInputs, TimelineConfig};
//! # fn demo(frame: image::RgbImage, faces: [kissbooth_engines::Landmarks; 2]) -> Result<(), Box<dyn std::error::Error>> {
//! // The daemon embeds the file with `include_str!`; here it is read from the model folder.
//! let shape = MeanShape::parse(&std::fs::read_to_string("../shared/models/face3d-68.csv")?)?;
//! let inputs = MorphInputs::Couple { frame, faces };
//! let generator = MorphGenerator::plan(MorphConfig::default(), &TimelineConfig::default(), &shape, inputs)?;
//! for frame in generator {
//!     let _rgb = frame?; // hand to the encoder
//! }
//! # Ok(()) }
//! ```

pub mod expression;
pub mod facing;
pub mod guides;
pub mod morph;
pub mod shape3d;
pub mod timeline;

pub use expression::Expression;
pub use guides::GuideModels;
pub use morph::{
    FrameInfo, MorphConfig, MorphConfigError, MorphGenerator, MorphGuides, MorphInputs, PersonMask,
};
pub use shape3d::{
    FaceAxes, HeadAngles, HeadMotion, LiftedFace, MeanShape, Pose, ShapeError, fit_pose,
};
pub use timeline::{FacePlan, FramePlan, Phase, Timeline, TimelineConfig, TimelineConfigError};

/// Everything that can go wrong while planning or rendering a kiss.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The mean 3D shape could not be parsed.
    #[error("mean 3D shape: {0}")]
    Shape(#[from] ShapeError),
    /// The timeline configuration is out of range.
    #[error("timeline config: {0}")]
    TimelineConfig(#[from] TimelineConfigError),
    /// The morph configuration is out of range.
    #[error("morph config: {0}")]
    MorphConfig(#[from] MorphConfigError),
    /// A face's landmarks cannot carry a pose (collapsed, not finite, or too small).
    #[error("face {face}: {reason}")]
    DegenerateFace { face: usize, reason: &'static str },
    /// The two faces are not side by side, so there is no way to tell who leans which way.
    #[error("the two faces are only {dx:.1} px apart horizontally: they must stand side by side")]
    FacesNotSideBySide { dx: f32 },
    /// A frame or canvas has no pixels.
    #[error("frame {index} is empty ({width}x{height})")]
    EmptyFrame {
        index: usize,
        width: u32,
        height: u32,
    },
    /// The timeline was planned for another canvas size than the generator renders.
    #[error(
        "timeline planned for a {planned_width}x{planned_height} canvas, generator renders {width}x{height}"
    )]
    CanvasMismatch {
        planned_width: u32,
        planned_height: u32,
        width: u32,
        height: u32,
    },
    /// The timeline's rest faces are not the inputs as placed on the canvas.
    #[error(
        "face {face} of the timeline is {pixels:.1} px from the input placed on the canvas: plan the timeline on Layout::landmarks"
    )]
    TimelineMismatch { face: usize, pixels: f32 },
    /// The mesh over a face could not be triangulated.
    #[error("face {face}: its mesh points could not be triangulated")]
    Triangulation { face: usize },
    /// A frame index past the end of the timeline was asked for.
    #[error("frame {index} asked for, the timeline has {len}")]
    FrameOutOfRange { index: usize, len: usize },
}

/// Smallest distance between the eye centres a face may have, pixels.
const MIN_INTER_OCULAR: f32 = 4.0;

/// Checks that a face's landmarks can carry a pose: finite, eyes apart.
fn check_landmarks(face: usize, lm: &crate::Landmarks) -> Result<(), GenerateError> {
    if lm.0.iter().flatten().any(|v| !v.is_finite()) {
        return Err(GenerateError::DegenerateFace {
            face,
            reason: "landmarks are not finite",
        });
    }
    if lm.inter_ocular() < MIN_INTER_OCULAR {
        return Err(GenerateError::DegenerateFace {
            face,
            reason: "eyes less than 4 px apart",
        });
    }
    Ok(())
}
