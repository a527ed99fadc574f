//! Drawing face boxes and landmarks onto frames (annotated pictures, the kiosk preview).

use image::{Rgb, RgbImage};

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// A box outline `thick` pixels wide, growing outward from `b` (`[x1, y1, x2, y2]`).
pub fn frame_box(img: &mut RgbImage, b: [i64; 4], thick: i64, c: Rgb<u8>) {
    for t in 0..thick {
        let [x0, y0, x1, y1] = [b[0] - t, b[1] - t, b[2] + t, b[3] + t];
        for x in x0..=x1 {
            put(img, x, y0, c);
            put(img, x, y1, c);
        }
        for y in y0..=y1 {
            put(img, x0, y, c);
            put(img, x1, y, c);
        }
    }
}

/// A filled disc of radius `r`.
pub fn dot(img: &mut RgbImage, x: i64, y: i64, r: i64, c: Rgb<u8>) {
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy <= r * r {
                put(img, x + dx, y + dy, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_clipped_to_the_image_and_grow_outward() {
        let mut img = RgbImage::new(10, 10);
        let red = Rgb([255, 0, 0]);
        frame_box(&mut img, [2, 2, 12, 7], 2, red);
        assert_eq!(*img.get_pixel(1, 1), red, "second ring outside the box");
        assert_eq!(*img.get_pixel(5, 2), red);
        assert_eq!(*img.get_pixel(5, 5), Rgb([0, 0, 0]), "inside stays");
        dot(&mut img, -3, -3, 1, red); // wholly outside: nothing, no panic
    }
}
