//! Frame conversions: JPEG in and out, padded RGB rows.

mod common;

use common::{centre, near, noisy_jpeg, solid};
use kissbooth_capture::{RawFrame, SourceError, decode_jpeg, jpeg_encode, rgb_from_padded_rows};

#[test]
fn jpeg_encode_round_trips_through_the_mjpeg_decoder() {
    let image = solid(320, 240, [200, 100, 50]);
    let jpeg = jpeg_encode(&image, 85);
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
    assert!(
        jpeg.len() < 320 * 240 * 3 / 10,
        "compressed: {} bytes",
        jpeg.len()
    );
    let back = RawFrame::Mjpeg(jpeg).decode().unwrap();
    assert_eq!(back.dimensions(), (320, 240));
    assert!(
        near(centre(&back), [200, 100, 50], 4),
        "{:?}",
        centre(&back)
    );
}

#[test]
fn jpeg_quality_is_clamped_not_a_panic() {
    let image = solid(16, 16, [10, 20, 30]);
    assert!(!jpeg_encode(&image, 0).is_empty());
    assert!(!jpeg_encode(&image, 255).is_empty());
    assert!(jpeg_encode(&image::RgbImage::new(0, 0), 80).is_empty());
}

#[test]
fn corrupt_or_oversized_jpeg_is_a_bad_frame() {
    assert!(matches!(
        decode_jpeg(b"\xFF\xD8\xFF\xE0 garbage"),
        Err(SourceError::BadFrame(_))
    ));
    let huge = jpeg_encode(&solid(12_008, 8, [0, 0, 0]), 50);
    assert!(
        matches!(decode_jpeg(&huge), Err(SourceError::BadFrame(m)) if m.contains("limit") || m.contains("Limit"))
    );
}

#[test]
fn an_mjpeg_frame_cut_short_is_a_bad_frame_not_a_grey_picture() {
    let jpeg = noisy_jpeg(320, 240);
    assert!(decode_jpeg(&jpeg).is_ok());
    for cut in [
        jpeg.len() / 3,
        jpeg.len() / 2,
        jpeg.len() - 2,
        jpeg.len() - 1,
    ] {
        let r = RawFrame::Mjpeg(jpeg[..cut].to_vec()).decode();
        assert!(
            matches!(&r, Err(SourceError::BadFrame(m)) if m.contains("incomplete")),
            "{cut} of {} bytes: {r:?}",
            jpeg.len()
        );
    }
    // Padding after the end, as some cameras send, is fine.
    let mut padded = jpeg.clone();
    padded.extend_from_slice(&[0; 100]);
    assert!(decode_jpeg(&padded).is_ok());
}

#[test]
fn padded_rgb_rows_are_compacted() {
    // 3x2 RGB: 9 bytes per row, padded to 12 as GStreamer does.
    let data = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 0xAA, 0xAA, 0xAA, //
        10, 11, 12, 13, 14, 15, 16, 17, 18, 0xBB, 0xBB, 0xBB,
    ];
    let image = rgb_from_padded_rows(3, 2, 12, &data).unwrap();
    assert_eq!(
        image.as_raw(),
        &[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18
        ]
    );
    // The last row may stop at its last pixel.
    assert!(rgb_from_padded_rows(3, 2, 12, &data[..21]).is_ok());
    assert!(matches!(
        rgb_from_padded_rows(3, 2, 12, &data[..20]),
        Err(SourceError::BadFrame(_))
    ));
}
