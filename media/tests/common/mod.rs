//! Helpers shared by the media tests: synthetic frames, ffprobe, MP4 box scanning.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{Rgb, RgbImage};
use kissbooth_media::{
    EncodedVideo, EncoderChoice, EncoderConfig, VideoMetadata, VideoSpec, available_encoders,
};

/// A moving test pattern: diagonal gradient, a square sliding right, a bar sliding down.
pub fn pattern(width: u32, height: u32, n: u32) -> RgbImage {
    let mut img = RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            ((x + n * 3) % 256) as u8,
            ((y + n * 2) % 256) as u8,
            (((x + y) / 2 + n * 5) % 256) as u8,
        ])
    });
    let side = (width.min(height) / 6).max(4);
    let sx = (n * 7) % (width - side);
    let sy = height / 3;
    for y in sy..(sy + side).min(height) {
        for x in sx..sx + side {
            img.put_pixel(x, y, Rgb([255, 255, 255]));
        }
    }
    let by = (n * 5) % height;
    for x in 0..width {
        img.put_pixel(x, by, Rgb([0, 0, 0]));
    }
    img
}

pub fn config(encoder: EncoderChoice) -> EncoderConfig {
    EncoderConfig {
        encoder,
        ..EncoderConfig::default()
    }
}

/// Encodes `frames` pattern frames to `out` and finishes.
pub fn encode(config: &EncoderConfig, spec: VideoSpec, frames: u32, out: &Path) -> EncodedVideo {
    let mut enc = config
        .build(&spec, out, &VideoMetadata::default())
        .expect("build encoder");
    for n in 0..frames {
        enc.push(&pattern(spec.width, spec.height, n))
            .expect("push");
    }
    enc.finish().expect("finish")
}

pub fn has_encoder(name: &str) -> bool {
    let ok = available_encoders().contains(&name);
    if !ok {
        eprintln!("SKIPPED: GStreamer element {name} is not installed here");
    }
    ok
}

/// Runs ffprobe with `args` on `path` and parses its JSON output.
pub fn ffprobe(path: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe (from ffmpeg) must be installed to run the media tests");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// What a player sees of the first video stream, frames counted by decoding.
#[derive(Debug)]
pub struct Probe {
    pub codec_name: String,
    pub profile: String,
    pub pix_fmt: String,
    pub width: u64,
    pub height: u64,
    pub r_frame_rate: String,
    pub frames: u64,
    pub duration_s: f64,
}

pub fn probe(path: &Path) -> Probe {
    let v = ffprobe(
        path,
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,profile,pix_fmt,width,height,r_frame_rate,nb_read_frames:format=duration",
        ],
    );
    let s = &v["streams"][0];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Probe {
        codec_name: text(&s["codec_name"]),
        profile: text(&s["profile"]),
        pix_fmt: text(&s["pix_fmt"]),
        width: s["width"].as_u64().unwrap_or(0),
        height: s["height"].as_u64().unwrap_or(0),
        r_frame_rate: text(&s["r_frame_rate"]),
        frames: text(&s["nb_read_frames"]).parse().unwrap_or(0),
        duration_s: text(&v["format"]["duration"]).parse().unwrap_or(0.0),
    }
}

/// The top-level MP4 boxes in file order, e.g. `["ftyp", "moov", "mdat"]`.
pub fn top_level_boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).expect("read mp4");
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let size32 = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
        let size = match size32 {
            0 => (data.len() - at) as u64,
            1 => u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap()),
            n => n,
        };
        assert!(size >= 8, "bad box size {size} for {kind:?} at {at}");
        boxes.push(kind);
        at += size as usize;
    }
    assert_eq!(at, data.len(), "boxes do not tile the file");
    boxes
}

/// Names in `dir`, sorted (hidden temporaries included).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A tmpfs mounted on a directory for the life of the guard.
pub struct Tmpfs {
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "256k") with extra `options` (e.g. "ro"); `None` with a
    /// loud message when this sandbox does not permit mounting.
    pub fn mount(size: &str, options: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).expect("mkdir");
        let mut opts = format!("size={size}");
        if !options.is_empty() {
            opts.push(',');
            opts.push_str(options);
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir,
                _parent: parent,
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED (loudly): cannot mount a tmpfs here ({}); this check did not run",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED (loudly): cannot run mount ({e}); this check did not run");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            eprintln!("tmpfs {} busy; detaching it lazily", self.dir.display());
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}
