//! A folder of JPEG/PNG images played in a loop, in file-name order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use image::RgbImage;

use crate::error::{CaptureError, SourceError};
use crate::frame::{INCOMPLETE_JPEG, RawFrame, decode_image_file};
use crate::handle::{FrameSource, Pacer};

/// Decoded images are kept up to this many bytes in total; beyond it, they are decoded each
/// time they come round.
const CACHE_BUDGET: usize = 128 << 20;

/// A file's identity for caching: a changed file is decoded (and judged) again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

pub(crate) struct StillsSource {
    folder: PathBuf,
    pacer: Pacer,
    files: Vec<PathBuf>,
    pos: usize,
    cache: HashMap<PathBuf, (Stamp, Arc<RgbImage>)>,
    cached_bytes: usize,
    unreadable: HashMap<PathBuf, Stamp>,
}

fn is_image_name(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    !hidden && matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png"))
}

/// The folder's image files, sorted by name.
fn list_images(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            entry
                .file_type()
                .is_ok_and(|t| t.is_file() || t.is_symlink())
        })
        .map(|entry| entry.path())
        .filter(|path| is_image_name(path))
        .collect();
    files.sort();
    Ok(files)
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

impl StillsSource {
    /// Lists the folder and decodes images until one works: an empty folder, or one where
    /// nothing decodes, is an error here.
    pub(crate) fn open(folder: &Path, interval_ms: u64) -> Result<Self, CaptureError> {
        let files = list_images(folder).map_err(|source| CaptureError::StillsFolder {
            folder: folder.to_owned(),
            source,
        })?;
        if files.is_empty() {
            return Err(CaptureError::NoStills {
                folder: folder.to_owned(),
            });
        }
        let mut source = StillsSource {
            folder: folder.to_owned(),
            pacer: Pacer::new(Duration::from_millis(interval_ms)),
            files,
            pos: 0,
            cache: HashMap::new(),
            cached_bytes: 0,
            unreadable: HashMap::new(),
        };
        let mut first_error = None;
        for path in source.files.clone() {
            match source.load(&path) {
                Ok(_) => return Ok(source),
                Err(error) => {
                    first_error.get_or_insert_with(|| format!("{}: {error}", path.display()));
                }
            }
        }
        Err(CaptureError::NoReadableStills {
            folder: folder.to_owned(),
            count: source.files.len(),
            first_error: first_error.unwrap_or_default(),
        })
    }

    /// The decoded image at `path`, from the cache when the file is unchanged. A file that
    /// fails is remembered (until it changes) and warned about once.
    fn load(&mut self, path: &Path) -> Result<Arc<RgbImage>, String> {
        let stamp = stamp(path).ok_or_else(|| "cannot read its metadata".to_owned())?;
        if let Some((cached, image)) = self.cache.get(path)
            && *cached == stamp
        {
            return Ok(Arc::clone(image));
        }
        if self.unreadable.get(path) == Some(&stamp) {
            return Err("unreadable (see the earlier warning)".to_owned());
        }
        match decode_image_file(path) {
            Ok(image) => {
                let image = Arc::new(image);
                let bytes = image.as_raw().len();
                if let Some((_, old)) = self.cache.remove(path) {
                    self.cached_bytes -= old.as_raw().len();
                }
                if self.cached_bytes + bytes <= CACHE_BUDGET {
                    self.cached_bytes += bytes;
                    self.cache
                        .insert(path.to_owned(), (stamp, Arc::clone(&image)));
                }
                self.unreadable.remove(path);
                Ok(image)
            }
            Err(error) => {
                let recent = stamp
                    .modified
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age < Duration::from_secs(10));
                if recent && error == INCOMPLETE_JPEG {
                    // Most likely still being copied in: it is tried again once it changes.
                    tracing::debug!(file = %path.display(), "skipping a still image that is not complete yet");
                } else {
                    tracing::warn!(file = %path.display(), %error, "skipping an unreadable still image");
                }
                self.unreadable.insert(path.to_owned(), stamp);
                Err(error)
            }
        }
    }

    fn relist(&mut self) -> Result<(), SourceError> {
        let files = list_images(&self.folder).map_err(|e| {
            SourceError::Lost(format!("stills folder {}: {e}", self.folder.display()))
        })?;
        self.cache.retain(|path, _| files.contains(path));
        self.cached_bytes = self.cache.values().map(|(_, i)| i.as_raw().len()).sum();
        self.unreadable.retain(|path, _| files.contains(path));
        self.files = files;
        Ok(())
    }
}

impl FrameSource for StillsSource {
    fn next(&mut self) -> Result<RawFrame, SourceError> {
        if !self.pacer.ready() {
            return Err(SourceError::NoFrameYet);
        }
        // At most one full pass over the folder; a pass with nothing readable is an outage.
        let mut tried = 0;
        loop {
            if self.pos >= self.files.len() {
                self.pos = 0;
            }
            if self.pos == 0 {
                self.relist()?;
            }
            if tried >= self.files.len() {
                return Err(SourceError::Lost(format!(
                    "stills folder {} holds no readable JPEG or PNG image",
                    self.folder.display()
                )));
            }
            let path = self.files[self.pos].clone();
            self.pos += 1;
            tried += 1;
            if let Ok(image) = self.load(&path) {
                return Ok(RawFrame::Rgb(image));
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "stills:{} ({} images)",
            self.folder.display(),
            self.files.len()
        )
    }
}
