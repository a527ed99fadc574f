//! Generation: from two faces to the frames of a kiss.
//!
//! 1. [`shape3d`]: the mean 3D shape of the 68 landmarks ([`MeanShape`], parsed from
//!    `face3d-68.csv`), a weak-perspective pose fit ([`fit_pose`]) and [`LiftedFace`], which lifts
//!    observed landmarks to 3D so a head can be turned and projected back. Two frontal faces
//!    cannot kiss by sliding in 2D: their noses collide.

pub mod shape3d;

pub use shape3d::{
    FaceAxes, HeadAngles, HeadMotion, LiftedFace, MeanShape, Pose, ShapeError, fit_pose,
};
