//! Expressions on posed landmarks: eyes closing, lips puckering, a smile.
//!
//! Each moves landmarks in the face's own frame ([`FaceAxes`], units of one inter-ocular
//! distance), so a turned or tilted head closes its eyes and purses its lips along its own axes.
//! The timeline plans with these moves (the mouths must meet once puckered) and the morph warps
//! to them.

use super::shape3d::FaceAxes;
use crate::types::Landmarks;

/// How far each expression has gone, each 0..=1 (values outside are clamped).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Expression {
    /// 0: eyes as captured, 1: upper lids down on the lower lids.
    pub eye_closure: f32,
    /// 0: lips as captured, 1: corners drawn in, lips closed and pushed forward.
    pub pucker: f32,
    /// 0: none, 1: mouth corners out and up.
    pub smile: f32,
}

/// Upper-lid landmarks and the lower-lid landmarks they close onto.
const LIDS: [(usize, usize); 4] = [(37, 41), (38, 40), (43, 47), (44, 46)];
/// Outer and inner mouth corners.
const CORNERS: [usize; 4] = [48, 54, 60, 64];
/// Lip points next to the outer corners.
const NEAR_CORNERS: [usize; 4] = [49, 53, 55, 59];
/// Share of the lid gap closed at `eye_closure = 1`: all of it, so the eye's interior has no
/// area left (the morph then draws lid skin over it, see `morph::person`).
const LID_CLOSE: f32 = 1.0;
/// Pucker: corners drawn toward the mouth centre, other lip points less.
const PUCKER_CORNER_IN: f32 = 0.32;
const PUCKER_LIP_IN: f32 = 0.15;
/// Pucker: lips rounder vertically, inner lips closing.
const PUCKER_ROUND: f32 = 0.08;
const PUCKER_INNER_CLOSE: f32 = 0.7;
/// Pucker: lips pushed forward, in inter-ocular distances.
const PUCKER_PUSH: f32 = 0.2;
/// Smile: corners out and up, in inter-ocular distances.
const SMILE_OUT: f32 = 0.08;
const SMILE_UP: f32 = 0.06;

impl Expression {
    /// True when nothing moves.
    pub fn is_neutral(&self) -> bool {
        self.eye_closure <= 0.0 && self.pucker <= 0.0 && self.smile <= 0.0
    }

    /// The landmarks with this expression applied.
    pub fn apply(&self, landmarks: &Landmarks, axes: &FaceAxes) -> Landmarks {
        let mut out = *landmarks;
        if self.is_neutral() {
            return out;
        }
        let p = &mut out.0;
        let closure = self.eye_closure.clamp(0.0, 1.0) * LID_CLOSE;
        for (upper, lower) in LIDS {
            p[upper][0] += closure * (p[lower][0] - p[upper][0]);
            p[upper][1] += closure * (p[lower][1] - p[upper][1]);
        }

        let (pucker, smile) = (self.pucker.clamp(0.0, 1.0), self.smile.clamp(0.0, 1.0));
        if pucker <= 0.0 && smile <= 0.0 {
            return out;
        }
        // Lip points in the face's frame (u right, v down, in inter-ocular distances).
        let [rx, ry] = axes.right;
        let [dx, dy] = axes.down;
        let det = rx * dy - ry * dx;
        if !det.is_finite() || det.abs() < 1e-6 {
            return out;
        }
        let centre = landmarks.mouth_centre();
        for (i, point) in p.iter_mut().enumerate().skip(48) {
            let (ox, oy) = (point[0] - centre[0], point[1] - centre[1]);
            let mut u = (ox * dy - oy * dx) / det;
            let mut v = (rx * oy - ry * ox) / det;
            let corner = CORNERS.contains(&i);
            let inward = if corner {
                PUCKER_CORNER_IN
            } else {
                PUCKER_LIP_IN
            };
            u *= 1.0 - inward * pucker;
            v *= 1.0 + PUCKER_ROUND * pucker;
            if i >= 60 {
                v *= 1.0 - PUCKER_INNER_CLOSE * pucker;
            }
            let push = PUCKER_PUSH * pucker * if corner { 0.5 } else { 1.0 };
            let lift = if corner {
                1.0
            } else if NEAR_CORNERS.contains(&i) {
                0.4
            } else {
                0.0
            };
            u += u.signum() * SMILE_OUT * smile * lift;
            v -= SMILE_UP * smile * lift;
            *point = [
                centre[0] + u * rx + v * dx + push * axes.forward[0],
                centre[1] + u * ry + v * dy + push * axes.forward[1],
            ];
        }
        out
    }
}
