//! The motion of a kiss, frame by frame.
//!
//! Phases, in order: [`Phase::LeanIn`] (from the first frame, the heads approach and turn
//! toward each other, tilted) → [`Phase::EyesClose`] (eyes close, lips pucker, the approach
//! finishes) → [`Phase::Contact`] (the one frame where the lips meet at the midline) →
//! [`Phase::Hold`] → [`Phase::Part`] (the heads part and turn back, eyes open) →
//! [`Phase::Apart`] (both faces fully visible, a smile at the camera that fades as the clip
//! comes back to its first frame).
//!
//! The clip loops: it starts from the faces at rest and ends back at rest, expression and all,
//! so the last frame leads into the first without a jump; the approach starts on the first
//! frame.
//!
//! At the kiss the heads tilt opposite ways, tops apart, so the noses pass and each face's eyes
//! stay clear of the other; the face in front is the one that hides less of the other's eyes
//! and nose there.
//!
//! Every curve is eased (cubic smoothstep), so nothing jumps. A seed adds small, repeatable
//! variation: the turn and tilt amounts, which face is in front when either would hide as
//! much, the phase timing (a few percent of the duration) and the phase of the sway.
//!
//! While they hold the kiss the picture is not frozen: both heads sway together by a pixel or
//! two, slowly (a few seconds a cycle, like breathing), so the mouths stay together.
//!
//! ```
//! use kissbooth_engines::generate::TimelineConfig;
//! let cfg: TimelineConfig = toml::from_str("seconds = 6.0\nseed = 7").unwrap();
//! assert_eq!((cfg.fps, cfg.frame_count()), (24, 144));
//! cfg.validate().unwrap();
//! ```

use serde::{Deserialize, Serialize};

use super::GenerateError;
use super::expression::Expression;
use super::shape3d::{FaceAxes, HeadAngles, HeadMotion, LiftedFace, MeanShape};
use crate::types::{Landmarks, N_LANDMARKS};

/// Allowed video length, seconds.
pub const SECONDS_RANGE: std::ops::RangeInclusive<f32> = 3.0..=8.0;
/// Allowed frame rate, frames per second.
pub const FPS_RANGE: std::ops::RangeInclusive<u32> = 8..=60;

/// How a kiss moves. Every field has a default, so an empty TOML table is a valid config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimelineConfig {
    /// Length of the video in seconds, 3..=8.
    pub seconds: f32,
    /// Frames per second, 8..=60.
    pub fps: u32,
    /// 0..=1: how far the heads turn (15° at 0, 37.5° at 1) and tilt, how much the lips pucker
    /// and the smile shows; below 0.5 also how far the eyes close and how long the kiss is held
    /// (the self-check's gentler render).
    pub intensity: f32,
    /// Seed of the small natural variation; the same seed gives the same frames.
    pub seed: u64,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        Self {
            seconds: 5.0,
            fps: 24,
            intensity: 0.8,
            seed: 0,
        }
    }
}

/// A [`TimelineConfig`] field out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimelineConfigError {
    #[error("seconds = {0} is outside {min}..={max}", min = SECONDS_RANGE.start(), max = SECONDS_RANGE.end())]
    SecondsOutOfRange(f32),
    #[error("fps = {0} is outside {min}..={max}", min = FPS_RANGE.start(), max = FPS_RANGE.end())]
    FpsOutOfRange(u32),
    #[error("intensity = {0} is outside 0..=1")]
    IntensityOutOfRange(f32),
}

impl TimelineConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), TimelineConfigError> {
        if !SECONDS_RANGE.contains(&self.seconds) {
            return Err(TimelineConfigError::SecondsOutOfRange(self.seconds));
        }
        if !FPS_RANGE.contains(&self.fps) {
            return Err(TimelineConfigError::FpsOutOfRange(self.fps));
        }
        if !(0.0..=1.0).contains(&self.intensity) {
            return Err(TimelineConfigError::IntensityOutOfRange(self.intensity));
        }
        Ok(())
    }

    /// Number of frames: `seconds · fps`, rounded.
    pub fn frame_count(&self) -> usize {
        (self.seconds * self.fps as f32).round().max(2.0) as usize
    }
}

/// The phase a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Apart,
    LeanIn,
    EyesClose,
    Contact,
    Hold,
    Part,
}

impl Phase {
    /// The phase's name, snake_case.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Apart => "apart",
            Phase::LeanIn => "lean_in",
            Phase::EyesClose => "eyes_close",
            Phase::Contact => "contact",
            Phase::Hold => "hold",
            Phase::Part => "part",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One face in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FacePlan {
    /// Target landmarks, canvas pixels, head pose only (apply [`FacePlan::expression`] on top,
    /// see [`FacePlan::expressed`]).
    pub landmarks: Landmarks,
    /// Depth of each landmark, pixels, larger = farther from the camera.
    pub depth: [f32; N_LANDMARKS],
    /// The rigid motion from the face at rest (frame 0) to this frame: it moves any point of the
    /// head, landmarks or not.
    pub motion: HeadMotion,
    /// The face's own axes in this frame.
    pub axes: FaceAxes,
    /// Eye closure, pucker and smile, each 0..=1.
    pub expression: Expression,
    /// The head's orientation in this frame.
    pub angles: HeadAngles,
}

impl FacePlan {
    /// The target landmarks with the expression applied: what the morph warps to.
    pub fn expressed(&self) -> Landmarks {
        self.expression.apply(&self.landmarks, &self.axes)
    }
}

/// One output frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePlan {
    /// Index of the frame, from 0.
    pub index: usize,
    /// Time of the frame, 0 at the first and 1 at the last.
    pub t: f32,
    pub phase: Phase,
    /// The faces, in the order given to [`Timeline::plan`].
    pub faces: [FacePlan; 2],
    /// Index (0 or 1) of the face in front; the other is drawn first.
    pub front: usize,
}

/// Phase start times, fractions of the duration: `lean` is the first frame, and from `home`
/// the heads are back at rest.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    lean: f32,
    eyes: f32,
    contact: f32,
    part: f32,
    home: f32,
}

/// Per-face variation drawn from the seed.
#[derive(Debug, Clone, Copy)]
struct Variation {
    yaw: [f32; 2],
    /// Tilt, degrees, unsigned: the heads tilt opposite ways, tops apart (see `plan`).
    roll: f32,
    front: usize,
    schedule: Schedule,
    /// Phases of the hold's sway, radians (horizontal, vertical).
    sway_phase: [f32; 2],
}

/// The planned kiss: one [`FramePlan`] per output frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    frames: Vec<FramePlan>,
    contact: usize,
    fps: u32,
    frame_size: (u32, u32),
    rest: [Landmarks; 2],
}

/// Head turn toward the partner at intensity 0 and 1, degrees. Less turn, less of the face
/// behind hidden by the face in front.
const YAW: (f32, f32) = (15.0, 37.5);
/// The turn of the face in front and of the face behind, as shares of the drawn turn.
const FRONT_TURN: f32 = 1.15;
const BACK_TURN: f32 = 0.6;
/// Largest turn of a head from its pose in the capture, degrees: a face captured turned away
/// (seen three-quarters from the far side) turns only partway back, since the side it would
/// show is not in the picture and a 2D warp only squeezes it.
const MAX_TURN: f32 = 25.0;
/// At contact the lips' facing edges stop this far apart, in inter-ocular distances: the lips
/// touch at the midline (the puckered lips' outline lies a little outside the lip skin), and
/// neither face slides over the other's eyes.
const CONTACT_GAP: f32 = 0.06;
/// The landmarks of the eyes, the brows' inner ends and the nose: what the face in front
/// should leave visible of the face behind.
const FEATURES: std::ops::Range<usize> = 19..48;
/// Sway while holding the kiss: amplitude in inter-ocular distances, kept within
/// [`SWAY_PIXELS`], and the periods of its horizontal and vertical parts, seconds.
const SWAY: f32 = 0.03;
const SWAY_PIXELS: (f32, f32) = (1.0, 2.0);
const SWAY_PERIOD: [f32; 2] = [2.9, 3.7];

impl Timeline {
    /// Plans a kiss between two faces given in canvas pixels (the canvas is `frame_size`,
    /// width x height). Face order is kept; who leans which way follows from where the faces
    /// stand.
    pub fn plan(
        cfg: &TimelineConfig,
        shape: &MeanShape,
        faces: [&Landmarks; 2],
        frame_size: (u32, u32),
    ) -> Result<Self, GenerateError> {
        cfg.validate()?;
        if frame_size.0 == 0 || frame_size.1 == 0 {
            return Err(GenerateError::EmptyFrame {
                index: 0,
                width: frame_size.0,
                height: frame_size.1,
            });
        }
        let pair = Pair::new(cfg, shape, faces)?;
        let n = cfg.frame_count();
        let last = (n - 1) as f32;
        let contact = ((pair.var.schedule.contact * last).round() as usize).clamp(1, n - 1);
        let front = pair.front();
        let (targets, _, approach) = pair.contact_pose(front);
        let kiss = Kiss {
            // Land the contact exactly on a frame, so the approach is complete there.
            schedule: Schedule {
                contact: contact as f32 / last,
                ..pair.var.schedule
            },
            contact,
            last,
            front,
            targets,
            approach,
            sway_amp: (SWAY * pair.mean_iod).clamp(SWAY_PIXELS.0, SWAY_PIXELS.1),
        };
        let frames = (0..n).map(|index| kiss.frame(&pair, index)).collect();
        Ok(Self {
            frames,
            contact,
            fps: cfg.fps,
            frame_size,
            rest: [*faces[0], *faces[1]],
        })
    }

    /// Every frame's plan, in order.
    pub fn frames(&self) -> &[FramePlan] {
        &self.frames
    }
    /// One frame's plan.
    pub fn frame(&self, index: usize) -> Option<&FramePlan> {
        self.frames.get(index)
    }
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }
    /// Never true: a timeline has at least two frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
    /// Index of the frame where the mouths meet.
    pub fn contact_frame(&self) -> usize {
        self.contact
    }
    /// Frames per second.
    pub fn fps(&self) -> u32 {
        self.fps
    }
    /// Canvas size (width, height) the targets are in.
    pub fn frame_size(&self) -> (u32, u32) {
        self.frame_size
    }
    /// The two faces as given to [`Timeline::plan`].
    pub fn rest_faces(&self) -> &[Landmarks; 2] {
        &self.rest
    }
}

fn pucker_amount(intensity: f32) -> f32 {
    0.6 + 0.4 * intensity
}

/// How far the eyes close at the kiss: fully from intensity 0.5 up, less below (a face whose
/// closed eyes lose the person is rendered again with them half-lowered).
fn eye_peak(intensity: f32) -> f32 {
    (0.7 + 0.6 * intensity).min(1.0)
}

/// Share of the largest turn from the capture's pose, and of the hold's length: 1 from
/// intensity 0.8 up, less below.
fn restraint(intensity: f32) -> f32 {
    (0.6 + 0.5 * intensity).min(1.0)
}

impl Schedule {
    fn phase(&self, t: f32, index: usize, contact: usize) -> Phase {
        if index == contact {
            Phase::Contact
        } else if index > contact {
            if t < self.part {
                Phase::Hold
            } else if t < self.home {
                Phase::Part
            } else {
                Phase::Apart
            }
        } else if t < self.eyes {
            Phase::LeanIn
        } else {
            Phase::EyesClose
        }
    }
}

/// The two faces being planned: lifted to 3D, which way each one's partner stands, and the
/// midline between their mouths where the lips meet.
struct Pair<'a> {
    cfg: &'a TimelineConfig,
    var: Variation,
    lifted: [LiftedFace; 2],
    /// +1: the partner stands to the image right.
    toward: [f32; 2],
    mean_iod: f32,
    mid: [f32; 2],
}

/// One face's head angles, landmarks at the peak of the kiss, and the move to the midline,
/// for both faces.
type ContactPose = ([HeadAngles; 2], [Landmarks; 2], [[f32; 2]; 2]);

impl<'a> Pair<'a> {
    fn new(
        cfg: &'a TimelineConfig,
        shape: &MeanShape,
        faces: [&Landmarks; 2],
    ) -> Result<Self, GenerateError> {
        let lift = |face: usize| {
            super::check_landmarks(face, faces[face])?;
            LiftedFace::lift(shape, faces[face])
                .map_err(|e| GenerateError::DegenerateFace { face, reason: e.0 })
        };
        let lifted = [lift(0)?, lift(1)?];
        let mean_iod = 0.5 * (faces[0].inter_ocular() + faces[1].inter_ocular());
        let rest_mouth = [faces[0].mouth_centre(), faces[1].mouth_centre()];
        let dx = lifted[1].centre()[0] - lifted[0].centre()[0];
        if dx.abs() < 0.5 * mean_iod {
            return Err(GenerateError::FacesNotSideBySide { dx: dx.abs() });
        }
        Ok(Self {
            cfg,
            var: Variation::draw(cfg),
            lifted,
            toward: if dx > 0.0 { [1.0, -1.0] } else { [-1.0, 1.0] },
            mean_iod,
            // The puckered lips come together at the midline between the two faces.
            mid: [
                0.5 * (rest_mouth[0][0] + rest_mouth[1][0]),
                0.5 * (rest_mouth[0][1] + rest_mouth[1][1]),
            ],
        })
    }

    /// The heads' angles at contact with `front` in front. The heads tilt opposite ways on
    /// screen, the tops apart and the mouths together: the noses pass, and each face's eyes
    /// stay clear of the other face. Never turn a head away from its partner (one already
    /// turned further keeps its turn), nor by more than MAX_TURN: a 2D warp of a large turn
    /// squeezes the face to a sliver. The face in front turns further and the face behind
    /// less, so the one behind stays turned toward the camera and shows more of itself past
    /// the other.
    fn targets(&self, front: usize) -> [HeadAngles; 2] {
        let (cfg, var, toward) = (self.cfg, &self.var, self.toward);
        std::array::from_fn(|k| {
            let rest = self.lifted[k].angles();
            let from = toward[k] * rest.yaw;
            let share = if k == front { FRONT_TURN } else { BACK_TURN };
            HeadAngles {
                yaw: toward[k]
                    * (share * var.yaw[k])
                        .max(from)
                        .min(from + MAX_TURN * restraint(cfg.intensity)),
                pitch: rest.pitch,
                roll: -toward[k] * var.roll,
            }
        })
    }

    /// Each face at the peak of the kiss (turned, eyes closed, lips puckered) and the move
    /// that brings its lips to the midline: each mouth's edge that faces the partner stops
    /// just short of it.
    fn contact_pose(&self, front: usize) -> ContactPose {
        let (cfg, toward, mid) = (self.cfg, self.toward, self.mid);
        let angles = self.targets(front);
        let peak: [Landmarks; 2] = std::array::from_fn(|k| {
            Expression {
                eye_closure: eye_peak(cfg.intensity),
                pucker: pucker_amount(cfg.intensity),
                smile: 0.0,
            }
            .apply(
                &self.lifted[k].turned(angles[k]),
                &self.lifted[k].axes(angles[k]),
            )
        });
        let approach = std::array::from_fn(|k| {
            let m = peak[k].mouth_centre();
            let edge = peak[k].0[48..60]
                .iter()
                .map(|p| toward[k] * p[0])
                .fold(f32::MIN, f32::max);
            let goal = toward[k] * mid[0] - 0.5 * CONTACT_GAP * self.mean_iod;
            [toward[k] * (goal - edge), mid[1] - m[1]]
        });
        (angles, peak, approach)
    }

    /// How many of the far face's eyes, brows and nose points the face in `front` covers at
    /// contact.
    fn hidden(&self, front: usize) -> f32 {
        let (_, peak, approach) = self.contact_pose(front);
        let at = |k: usize| -> Landmarks {
            Landmarks(
                peak[k]
                    .0
                    .map(|p| [p[0] + approach[k][0], p[1] + approach[k][1]]),
            )
        };
        let (near, far) = (at(front), at(1 - front));
        let outline: Vec<[f32; 2]> = near.0[..17]
            .iter()
            .chain(near.0[17..27].iter().rev())
            .copied()
            .collect();
        FEATURES
            .clone()
            .filter(|&i| point_in_polygon(far.0[i], &outline))
            .count() as f32
    }

    /// The face in front: the one that hides less of the other's eyes and nose at contact (a
    /// face captured turned away shows its features on its far side, and stays clear of a
    /// partner in front of it); the seed decides when both hide as much.
    fn front(&self) -> usize {
        let (h0, h1) = (self.hidden(0), self.hidden(1));
        if (h0 - h1).abs() < 1.0 {
            self.var.front
        } else if h0 < h1 {
            0
        } else {
            1
        }
    }
}

/// The kiss as planned: when, who is in front, and where each head goes.
struct Kiss {
    schedule: Schedule,
    contact: usize,
    /// The last frame's index.
    last: f32,
    front: usize,
    targets: [HeadAngles; 2],
    approach: [[f32; 2]; 2],
    sway_amp: f32,
}

impl Kiss {
    /// Frame `index`'s plan.
    fn frame(&self, pair: &Pair, index: usize) -> FramePlan {
        let (cfg, var) = (pair.cfg, &pair.var);
        let t = index as f32 / self.last;
        let c = Curves::at(t, &self.schedule, cfg.intensity);
        // Both heads sway alike, so the mouths stay together; nothing at contact.
        let sway: [f32; 2] = std::array::from_fn(|a| {
            let phase = std::f32::consts::TAU * t * cfg.seconds / SWAY_PERIOD[a];
            let amp = if a == 0 {
                self.sway_amp
            } else {
                0.6 * self.sway_amp
            };
            c.hold * amp * (phase + var.sway_phase[a]).sin()
        });
        let faces = std::array::from_fn(|k| {
            let lifted = &pair.lifted[k];
            let angles = lifted.angles().lerp(&self.targets[k], c.turn);
            let translation = [
                c.approach * self.approach[k][0] + sway[0],
                c.approach * self.approach[k][1] + sway[1],
            ];
            let motion = lifted.motion_to(angles, translation);
            let (landmarks, depth) = lifted.apply(&motion);
            FacePlan {
                landmarks,
                depth,
                motion,
                axes: lifted.axes(angles),
                expression: c.expression,
                angles,
            }
        });
        FramePlan {
            index,
            t,
            phase: self.schedule.phase(t, index, self.contact),
            faces,
            front: self.front,
        }
    }
}

/// The eased curves at one instant.
struct Curves {
    approach: f32,
    turn: f32,
    /// Envelope of the sway: 0 until contact, 1 through the hold, back to 0 as they part.
    hold: f32,
    expression: Expression,
}

impl Curves {
    fn at(t: f32, s: &Schedule, intensity: f32) -> Self {
        let away = 1.0 - ease(t, s.part, s.home);
        let approach = ease(t, s.lean, s.contact) * away;
        let turn = ease(t, s.lean, s.eyes + 0.05) * away;
        let eyes = eye_peak(intensity)
            * ease(t, s.eyes, s.contact - 0.03)
            * (1.0 - ease(t, s.part, s.part + 0.1));
        let pucker = pucker_amount(intensity)
            * ease(t, s.eyes - 0.08, s.contact - 0.02)
            * (1.0 - ease(t, s.part, s.part + 0.08));
        // A smile once they part, at its fullest as they face the camera again, fading so the
        // last frame leads into the first.
        let smile = (0.5 + 0.5 * intensity)
            * ease(t, s.part + 0.04, s.home)
            * (1.0 - ease(t, s.home + 0.06, 1.0));
        let hold = ease(t, s.contact, s.contact + 0.06) * (1.0 - ease(t, s.part, s.part + 0.1));
        Self {
            approach,
            turn,
            hold,
            expression: Expression {
                eye_closure: eyes,
                pucker,
                smile,
            },
        }
    }
}

/// Whether `p` lies inside the polygon (even-odd rule).
fn point_in_polygon(p: [f32; 2], poly: &[[f32; 2]]) -> bool {
    let mut inside = false;
    let mut j = poly.len().wrapping_sub(1);
    for (i, a) in poly.iter().enumerate() {
        let b = poly[j];
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Cubic smoothstep from 0 at `t0` to 1 at `t1`.
fn ease(t: f32, t0: f32, t1: f32) -> f32 {
    if t1 <= t0 {
        return if t >= t1 { 1.0 } else { 0.0 };
    }
    let x = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

impl Variation {
    fn draw(cfg: &TimelineConfig) -> Self {
        let mut rng = SplitMix64(cfg.seed);
        let base_yaw = YAW.0 + (YAW.1 - YAW.0) * cfg.intensity;
        let yaw = std::array::from_fn(|_| (base_yaw + rng.uniform(-2.0, 2.0)).clamp(YAW.0, YAW.1));
        let roll = 14.0 + 5.0 * cfg.intensity + rng.uniform(-1.5, 1.5);
        let front = (rng.next() & 1) as usize;
        let mut jitter = || rng.uniform(-0.02, 0.02);
        let (eyes, contact) = (0.24 + jitter(), 0.40 + jitter());
        // A gentler kiss is held for less long; it parts and comes home as early.
        let part = contact + (0.24 + jitter()) * restraint(cfg.intensity);
        let schedule = Schedule {
            lean: 0.0,
            eyes,
            contact,
            part,
            home: 0.84 + jitter(),
        };
        let sway_phase = [
            rng.uniform(0.0, std::f32::consts::TAU),
            rng.uniform(0.0, std::f32::consts::TAU),
        ];
        Self {
            yaw,
            roll,
            front,
            schedule,
            sway_phase,
        }
    }
}

/// A tiny, stable random source: the same seed gives the same numbers on every platform.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ease_is_flat_at_both_ends() {
        assert_eq!(ease(0.0, 0.1, 0.5), 0.0);
        assert_eq!(ease(0.6, 0.1, 0.5), 1.0);
        assert!((ease(0.3, 0.1, 0.5) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn phases_come_in_order_for_any_seed() {
        for (seed, intensity) in (0..50).flat_map(|s| [0.0, 0.28, 0.8, 1.0].map(|i| (s, i))) {
            let cfg = TimelineConfig {
                seed,
                intensity,
                ..TimelineConfig::default()
            };
            let s = Variation::draw(&cfg).schedule;
            assert!(
                s.lean == 0.0
                    && s.eyes < s.contact
                    && s.contact < s.part
                    && s.part < s.home
                    && s.home + 0.06 < 1.0
            );
        }
    }

    #[test]
    fn a_gentler_kiss_turns_less_closes_the_eyes_less_and_is_held_for_less_long() {
        let at = |intensity: f32| {
            let cfg = TimelineConfig {
                intensity,
                ..TimelineConfig::default()
            };
            let v = Variation::draw(&cfg);
            (
                v.yaw[0],
                eye_peak(intensity),
                v.schedule.part - v.schedule.contact,
            )
        };
        let (full, gentle) = (at(0.8), at(0.28));
        assert!(gentle.0 < full.0 - 8.0, "turn {gentle:?} vs {full:?}");
        assert!(
            gentle.1 < 0.9 && full.1 == 1.0,
            "eyes {gentle:?} vs {full:?}"
        );
        assert!(gentle.2 < 0.8 * full.2, "hold {gentle:?} vs {full:?}");
        assert_eq!(restraint(0.8), 1.0);
    }
}
