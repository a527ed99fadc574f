//! Generation: from two faces to the frames of a kiss.
//!
//! 1. [`shape3d`]: the mean 3D shape of the 68 landmarks ([`MeanShape`], parsed from
//!    `face3d-68.csv`), a weak-perspective pose fit ([`fit_pose`]) and [`LiftedFace`], which lifts
//!    observed landmarks to 3D so a head can be turned and projected back. Two frontal faces
//!    cannot kiss by sliding in 2D: their noses collide.
//! 2. [`timeline`]: [`Timeline::plan`] turns a [`TimelineConfig`] and the two faces (in canvas
//!    pixels) into per-frame targets: landmarks, eye closure, pucker, smile, depth order, phase.

pub mod expression;
pub mod shape3d;
pub mod timeline;

pub use expression::Expression;
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
}
