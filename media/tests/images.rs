//! Poster JPEGs and the branding overlay.

use std::path::Path;

use image::{Rgb, RgbImage, Rgba, RgbaImage};
use kissbooth_media::{EncodeError, Overlay, Placement, write_poster};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_a_jpeg_poster_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("poster.jpg");
    let frame = RgbImage::from_fn(320, 240, |x, y| Rgb([x as u8, y as u8, 128]));
    write_poster(&frame, &path, 85).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let back = image::load_from_memory(&bytes).unwrap();
    assert_eq!((back.width(), back.height()), (320, 240));
    assert_eq!(entries(dir.path()), ["poster.jpg"]);
    // Overwrites in place.
    write_poster(&frame, &path, 50).unwrap();
    assert_eq!(entries(dir.path()), ["poster.jpg"]);
}

#[test]
fn poster_refuses_a_missing_directory_and_a_bad_quality() {
    let dir = tempfile::tempdir().unwrap();
    let frame = RgbImage::new(16, 16);
    let err = write_poster(&frame, &dir.path().join("nope/p.jpg"), 85).unwrap_err();
    assert!(matches!(err, EncodeError::OutputDir { .. }), "{err:?}");
    let err = write_poster(&frame, &dir.path().join("p.jpg"), 0).unwrap_err();
    assert!(
        matches!(err, EncodeError::Quality { quality: 0 }),
        "{err:?}"
    );
    let err = write_poster(&frame, &dir.path().join("p.jpg"), 101).unwrap_err();
    assert!(
        matches!(err, EncodeError::Quality { quality: 101 }),
        "{err:?}"
    );
    assert!(entries(dir.path()).is_empty());
}

/// A 40x20 logo: left half opaque red, right half transparent, one half-transparent pixel.
fn logo() -> RgbaImage {
    let mut logo = RgbaImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 255, 0])
        }
    });
    logo.put_pixel(30, 10, Rgba([255, 255, 255, 128]));
    logo
}

#[test]
fn overlay_composites_logo_in_corner() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("logo.png");
    logo().save(&png).unwrap();
    let overlay = Overlay::from_png(
        &png,
        Placement::BottomRight {
            margin: 8,
            max_width_frac: 0.5,
        },
    )
    .unwrap();
    let mut frame = RgbImage::new(200, 100);
    overlay.apply(&mut frame);
    // Logo at x 152..192, y 72..92.
    assert_eq!(
        frame.get_pixel(152, 72),
        &Rgb([255, 0, 0]),
        "opaque part drawn"
    );
    assert_eq!(frame.get_pixel(171, 91), &Rgb([255, 0, 0]));
    assert_eq!(
        frame.get_pixel(151, 72),
        &Rgb([0, 0, 0]),
        "left of the logo untouched"
    );
    assert_eq!(
        frame.get_pixel(152, 71),
        &Rgb([0, 0, 0]),
        "above the logo untouched"
    );
    assert_eq!(
        frame.get_pixel(192, 92),
        &Rgb([0, 0, 0]),
        "margin untouched"
    );
    assert_eq!(
        frame.get_pixel(180, 80),
        &Rgb([0, 0, 0]),
        "transparent part lets the frame show"
    );
    assert_eq!(
        frame.get_pixel(182, 82),
        &Rgb([128, 128, 128]),
        "half alpha blends"
    );
}

#[test]
fn overlay_shrinks_a_large_logo_to_its_width_fraction() {
    let overlay = Overlay::from_rgba(
        RgbaImage::from_pixel(400, 100, Rgba([0, 255, 0, 255])),
        Placement::TopLeft {
            margin: 10,
            max_width_frac: 0.25,
        },
    )
    .unwrap();
    let mut frame = RgbImage::new(400, 300);
    overlay.apply(&mut frame);
    // 25% of 400 = 100 wide, 25 high, at (10, 10).
    let green = |x, y| frame.get_pixel(x, y) == &Rgb([0, 255, 0]);
    assert!(green(10, 10) && green(109, 34));
    assert!(!green(110, 10) && !green(10, 35) && !green(9, 10));
}

#[test]
fn full_overlay_is_scaled_to_the_frame() {
    let overlay = Overlay::from_rgba(
        RgbaImage::from_pixel(10, 10, Rgba([0, 0, 255, 255])),
        Placement::Full,
    )
    .unwrap();
    for (w, h) in [(64, 48), (32, 96)] {
        let mut frame = RgbImage::new(w, h);
        overlay.apply(&mut frame);
        assert!(frame.pixels().all(|p| p == &Rgb([0, 0, 255])), "{w}x{h}");
    }
}

#[test]
fn overlay_leaves_a_frame_too_small_for_its_margins_alone() {
    let overlay = Overlay::from_rgba(
        logo(),
        Placement::BottomLeft {
            margin: 20,
            max_width_frac: 1.0,
        },
    )
    .unwrap();
    let mut frame = RgbImage::new(30, 30);
    overlay.apply(&mut frame);
    assert!(frame.pixels().all(|p| p == &Rgb([0, 0, 0])));
}

#[test]
fn overlay_errors_are_typed() {
    let err = Overlay::from_png(Path::new("/nonexistent/logo.png"), Placement::Full).unwrap_err();
    assert!(matches!(err, EncodeError::Image { .. }), "{err:?}");
    let err = Overlay::from_rgba(
        logo(),
        Placement::TopRight {
            margin: 0,
            max_width_frac: 1.5,
        },
    )
    .unwrap_err();
    assert!(matches!(err, EncodeError::Placement { .. }), "{err:?}");
}

#[test]
fn placement_reads_from_toml() {
    let p: Placement =
        toml::from_str("at = \"bottom_right\"\nmargin = 16\nmax_width_frac = 0.2").unwrap();
    assert_eq!(
        p,
        Placement::BottomRight {
            margin: 16,
            max_width_frac: 0.2
        }
    );
    let p: Placement = toml::from_str("at = \"full\"").unwrap();
    assert_eq!(p, Placement::Full);
}

#[test]
fn an_overlay_larger_than_the_limit_is_refused_before_decoding() {
    use kissbooth_media::MAX_OVERLAY_SIDE;
    let png = |w: u32| {
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgba8(RgbaImage::new(w, 1))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let name = Path::new("logo.png");
    let ok = Overlay::from_png_bytes(&png(MAX_OVERLAY_SIDE), name, Placement::Full);
    assert!(ok.is_ok(), "{ok:?}");
    let err =
        Overlay::from_png_bytes(&png(MAX_OVERLAY_SIDE + 1), name, Placement::Full).unwrap_err();
    assert!(matches!(err, EncodeError::Image { .. }), "{err:?}");
    assert!(err.to_string().contains("logo.png"), "{err}");
}
