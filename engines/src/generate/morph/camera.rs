//! The virtual camera: per frame, the part of the scene the output shows.
//!
//! It frames the couple's heads and shoulders (both faces' landmarks, with room for hair above
//! and shoulders below), filling the output whenever the scene is large enough: never a
//! letterbox with stretched fills. As the heads come together the framing tightens, so the
//! camera pushes in toward the kiss (at most [`MAX_PUSH`] times closer than at the start), then
//! back out as they part; the path is smoothed over [`SMOOTH_S`] seconds around the loop, so
//! it never jerks and it ends where it started.
//!
//! Where the framing needs more than the scene holds (a landscape capture in a portrait
//! output), the camera keeps the scene's bottom edge on the output's bottom edge; above it (or
//! beside it) the picture continues softly into the backdrop colour (`Beyond` in the
//! generator): the layout, not a smear.

/// How far the framing reaches beyond the faces' landmarks, in inter-ocular distances: to the
/// sides, above the brows (hair), below the chin (neck and shoulders).
const ROOM_SIDE: f32 = 0.7;
const ROOM_TOP: f32 = 2.0;
const ROOM_BOTTOM: f32 = 1.7;
/// The camera comes at most this many times closer than its framing of the first frame.
const MAX_PUSH: f32 = 1.45;
/// Smoothing of the camera path (standard deviation), seconds.
const SMOOTH_S: f32 = 0.3;

/// One frame's view: scene point `p` lands on the output at `(p - centre) · zoom + size / 2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub zoom: f32,
    pub centre: [f32; 2],
    pub size: [f32; 2],
}

impl View {
    /// Scene pixels to output pixels.
    pub fn to_output(self, p: [f32; 2]) -> [f32; 2] {
        [
            (p[0] - self.centre[0]) * self.zoom + 0.5 * self.size[0],
            (p[1] - self.centre[1]) * self.zoom + 0.5 * self.size[1],
        ]
    }
    /// Output pixels to scene pixels.
    pub fn to_scene(self, q: [f32; 2]) -> [f32; 2] {
        [
            (q[0] - 0.5 * self.size[0]) / self.zoom + self.centre[0],
            (q[1] - 0.5 * self.size[1]) / self.zoom + self.centre[1],
        ]
    }
}

/// Plans the camera for every frame. `regions[i]` is the box `[x0, y0, x1, y1]` (scene pixels)
/// the frame must show; `scene` and `output` are (width, height).
pub fn plan(
    regions: &[[f32; 4]],
    scene: (usize, usize),
    output: (u32, u32),
    fps: u32,
) -> Vec<View> {
    let (sw, sh) = (scene.0 as f32, scene.1 as f32);
    let (ow, oh) = (output.0 as f32, output.1 as f32);
    // The zoom that shows the whole scene along one side: the camera never pulls back further.
    let contain = (ow / sw).min(oh / sh);
    let fit = |r: &[f32; 4]| (ow / (r[2] - r[0]).max(1.0)).min(oh / (r[3] - r[1]).max(1.0));
    let first = regions.first().map(fit).unwrap_or(contain).max(contain);
    let raw: Vec<(f32, [f32; 2])> = regions
        .iter()
        .map(|r| {
            let zoom = fit(r).clamp(contain, first * MAX_PUSH);
            (zoom.ln(), [0.5 * (r[0] + r[2]), 0.5 * (r[1] + r[3])])
        })
        .collect();
    // Smooth the log zoom and the centre (Gaussian, around the loop: the clip's last frame
    // leads into its first).
    let sigma = (SMOOTH_S * fps as f32).max(0.5);
    let reach = (3.0 * sigma).ceil() as isize;
    let n = raw.len() as isize;
    (0..n)
        .map(|i| {
            let (mut z, mut c, mut wsum) = (0.0f32, [0.0f32; 2], 0.0f32);
            for d in -reach..=reach {
                let j = (i + d).rem_euclid(n) as usize;
                let w = (-0.5 * (d as f32 / sigma).powi(2)).exp();
                z += w * raw[j].0;
                c[0] += w * raw[j].1[0];
                c[1] += w * raw[j].1[1];
                wsum += w;
            }
            let zoom = (z / wsum).exp().max(contain);
            let centre = [c[0] / wsum, c[1] / wsum];
            let (hw, hh) = (0.5 * ow / zoom, 0.5 * oh / zoom);
            // Inside the scene where the window fits; otherwise centred across, and standing on
            // the scene's bottom edge.
            let cx = if 2.0 * hw <= sw {
                centre[0].clamp(hw, sw - hw)
            } else {
                0.5 * sw
            };
            let cy = if 2.0 * hh <= sh {
                centre[1].clamp(hh, sh - hh)
            } else {
                sh - hh
            };
            View {
                zoom,
                centre: [cx, cy],
                size: [ow, oh],
            }
        })
        .collect()
}

/// Which of the scene's edges (top, bottom, left, right) any of `views` sees past.
pub fn seen_past(views: &[View], width: usize, height: usize) -> [bool; 4] {
    let mut past = [false; 4];
    for v in views {
        let (tl, br) = (v.to_scene([0.0, 0.0]), v.to_scene(v.size));
        past[0] |= tl[1] < -0.5;
        past[1] |= br[1] > height as f32 + 0.5;
        past[2] |= tl[0] < -0.5;
        past[3] |= br[0] > width as f32 + 0.5;
    }
    past
}

/// The region a frame must show around the two faces' landmarks (scene pixels).
pub fn region(faces: &[&crate::types::Landmarks]) -> [f32; 4] {
    let mut r = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for lm in faces {
        let iod = lm.inter_ocular().max(1.0);
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for p in &lm.0 {
            (x0, y0, x1, y1) = (x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1]));
        }
        r = [
            r[0].min(x0 - ROOM_SIDE * iod),
            r[1].min(y0 - ROOM_TOP * iod),
            r[2].max(x1 + ROOM_SIDE * iod),
            r[3].max(y1 + ROOM_BOTTOM * iod),
        ];
    }
    r
}
