//! Two portraits laid out to face each other.
//!
//! In two-portrait mode the scene is composed, not filmed: each person is cut out of their own
//! picture and stood on one backdrop, the first on the left. A portrait that looks strongly
//! away from its partner cannot be brought to a kiss by a 2D warp: its lips would have to cross
//! its partner's face, or the head would have to turn further than the picture shows (the far
//! side of the face is not in it). Such a portrait is laid out mirrored, as a designer flips a
//! photograph so that two people look at each other, before anything else is computed from it.
//! A face and its mirror image are the same person to an identity embedder (the fixtures'
//! similarity to their own mirror image is 0.92 to 0.96, where 0.74 is the same-person
//! threshold), and a mild turn away is left as taken.

use image::RgbImage;

use crate::types::Landmarks;

/// A portrait that looks away from its partner by more than this (the nose tip's offset from
/// between the eyes, in inter-ocular distances, about 25 degrees of turn) is mirrored.
pub const MIRROR_BEYOND: f32 = 0.35;

/// How far a face looks toward the image's right: the nose tip's horizontal offset from the
/// point between the eye centres, in inter-ocular distances (negative: toward the left).
pub fn looks_right(face: &Landmarks) -> f32 {
    let (l, r) = (face.eye_left(), face.eye_right());
    let between = 0.5 * (l[0] + r[0]);
    (face.0[30][0] - between) / face.inter_ocular().max(1.0)
}

/// How far portrait `k` of two side by side (0 on the left) looks away from its partner, in
/// the units of [`looks_right`]; negative when it looks toward them.
pub fn looks_away(face: &Landmarks, k: usize) -> f32 {
    if k == 0 {
        -looks_right(face)
    } else {
        looks_right(face)
    }
}

/// Mirrors, in place, each of two portraits (the first on the left) that looks away from its
/// partner by more than [`MIRROR_BEYOND`], with its face's landmarks. Returns which were.
pub fn face_each_other(frames: [&mut RgbImage; 2], faces: [&mut Landmarks; 2]) -> [bool; 2] {
    let mut mirrored = [false; 2];
    for (k, (frame, face)) in frames.into_iter().zip(faces).enumerate() {
        if looks_away(face, k) > MIRROR_BEYOND {
            image::imageops::flip_horizontal_in_place(frame);
            *face = face.mirrored(frame.width() as f32);
            mirrored[k] = true;
        }
    }
    mirrored
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A face drawn from the iBUG mean layout, its nose shifted by `turn` inter-ocular
    /// distances (positive: looking toward the image's right).
    fn face(cx: f32, turn: f32) -> Landmarks {
        let mut pts = [[0.0f32; 2]; 68];
        for (i, p) in pts.iter_mut().enumerate() {
            // Jaw from left to right along the bottom, the rest spread above it.
            let x = match i {
                0..=16 => -1.0 + i as f32 / 8.0,
                17..=21 => -0.8 + (i - 17) as f32 * 0.15,
                22..=26 => 0.2 + (i - 22) as f32 * 0.15,
                27..=30 => 0.0,
                31..=35 => -0.2 + (i - 31) as f32 * 0.1,
                36..=41 => -0.5 + (i - 36) as f32 * 0.04,
                42..=47 => 0.3 + (i - 42) as f32 * 0.04,
                48..=59 => -0.3 + (i - 48) as f32 * 0.05,
                _ => -0.2 + (i - 60) as f32 * 0.05,
            };
            let y = match i {
                0..=16 => 1.0,
                36..=47 => 0.45,
                _ => i as f32 / 68.0,
            };
            *p = [cx + 100.0 * x, 200.0 + 100.0 * y];
        }
        for p in &mut pts[27..36] {
            p[0] += 80.0 * turn; // the eye centres are 80 apart
        }
        Landmarks(pts)
    }

    #[test]
    fn mirroring_twice_gives_the_face_back_and_keeps_each_index_on_its_side() {
        let f = face(300.0, 0.3);
        let m = f.mirrored(640.0);
        assert_eq!(m.mirrored(640.0), f);
        // The eye on the image's left stays the eye on the image's left.
        assert!(m.eye_left()[0] < m.eye_right()[0]);
        assert!((m.inter_ocular() - f.inter_ocular()).abs() < 1e-3);
        // The jaw still runs from the image's left to its right.
        assert!(m.0[0][0] < m.0[16][0]);
        // The look turns the other way.
        assert!((looks_right(&m) + looks_right(&f)).abs() < 1e-4);
    }

    #[test]
    fn only_a_portrait_that_looks_far_away_from_its_partner_is_mirrored() {
        let turn = 0.5;
        // Left portrait looking left (away), right portrait looking left (toward).
        let (mut a, mut b) = (RgbImage::new(640, 480), RgbImage::new(640, 480));
        a.put_pixel(0, 0, image::Rgb([255, 0, 0]));
        let (mut fa, mut fb) = (face(300.0, -turn), face(300.0, -turn));
        let (ra, rb) = (fa, fb);
        assert_eq!(
            face_each_other([&mut a, &mut b], [&mut fa, &mut fb]),
            [true, false]
        );
        assert_eq!(a.get_pixel(639, 0), &image::Rgb([255, 0, 0]));
        assert_eq!(fa, ra.mirrored(640.0));
        assert_eq!(fb, rb);
        assert!((looks_right(&ra) + turn).abs() < 1e-4);
        assert!(looks_away(&fa, 0) < 0.0, "now looks toward its partner");
        // A mild turn away is kept as taken.
        let mut fc = face(300.0, 0.2);
        let mut fd = face(300.0, -0.2);
        assert_eq!(
            face_each_other([&mut a, &mut b], [&mut fd, &mut fc]),
            [false, false]
        );
    }
}
