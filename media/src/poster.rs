//! The poster: one frame as a JPEG, shown before the video plays.

use std::io::{BufWriter, Write};
use std::path::Path;

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::error::EncodeError;
use crate::fsio::{OutputTarget, TempFiles};

/// Writes `frame` as a JPEG of `quality` (1..=100) to `path`, atomically: a temporary file in
/// the same directory is written, fsynced and renamed, and the directory is fsynced. On error
/// nothing is left at `path` (an older file there stays as it was). The poster carries the
/// visible AI mark ([`crate::label`]), as every frame of its clip does.
pub fn write_poster(frame: &RgbImage, path: &Path, quality: u8) -> Result<(), EncodeError> {
    if !(1..=100).contains(&quality) {
        return Err(EncodeError::Quality { quality });
    }
    let target = OutputTarget::check(path)?;
    let temp = target.temp_path("partial");
    let file = target.create_temp(&temp)?;
    let mut temps = TempFiles::default();
    temps.track(temp.clone());

    let mut labelled = frame.clone();
    crate::label::stamp_ai_label(&mut labelled);
    let mut writer = BufWriter::new(file);
    JpegEncoder::new_with_quality(&mut writer, quality)
        .encode_image(&labelled)
        .map_err(|e| match e {
            image::ImageError::IoError(io) => EncodeError::io("write", &temp, io),
            source => EncodeError::Image {
                path: path.to_path_buf(),
                source,
            },
        })?;
    writer
        .flush()
        .map_err(|e| EncodeError::io("write", &temp, e))?;
    drop(writer);

    target.commit(&temp)?;
    temps.release(&temp);
    tracing::debug!(path = %path.display(), "wrote poster");
    Ok(())
}
