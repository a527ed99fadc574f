//! What happens when things go wrong: nothing is ever left at the output path.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

use common::{Tmpfs, entries, pattern};
use kissbooth_media::{EncodeError, EncoderChoice, EncoderConfig, VideoMetadata, VideoSpec};

/// GStreamer opens its files without close-on-exec, so a child spawned by one test inherits
/// the files another test has open, and a tmpfs holding them cannot be unmounted. The tests
/// that mount or spawn take this lock.
static MOUNT_OR_SPAWN: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    MOUNT_OR_SPAWN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn spec() -> VideoSpec {
    VideoSpec::new(64, 64, 24)
}

fn build(out: &Path) -> Result<kissbooth_media::Encoder, EncodeError> {
    EncoderConfig::default().build(&spec(), out, &VideoMetadata::default())
}

#[test]
fn refuses_a_missing_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no-such-dir").join("v.mp4");
    let err = build(&out).unwrap_err();
    match &err {
        EncodeError::OutputDir { dir: d, .. } => assert_eq!(d, &dir.path().join("no-such-dir")),
        other => panic!("expected OutputDir, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("no-such-dir") && msg.contains("does not exist"),
        "{msg}"
    );
}

#[test]
fn refuses_an_output_path_that_is_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = build(dir.path()).unwrap_err();
    assert!(
        matches!(err, EncodeError::OutputIsDirectory { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("is a directory"));
}

#[test]
fn refuses_an_output_directory_that_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let err = build(&dir.path().join("file").join("v.mp4")).unwrap_err();
    assert!(matches!(err, EncodeError::OutputDir { .. }), "{err:?}");
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn refuses_a_read_only_output_directory() {
    // Root ignores permission bits, so a read-only mount is the honest test.
    let _one = exclusive();
    let Some(ro) = Tmpfs::mount("64k", "ro") else {
        return;
    };
    let err = build(&ro.dir.join("v.mp4")).unwrap_err();
    assert!(matches!(err, EncodeError::OutputDir { .. }), "{err:?}");
    assert!(err.to_string().contains("not writable"), "{err}");
    assert!(entries(&ro.dir).is_empty());
}

#[test]
fn refuses_an_encoder_that_is_not_installed() {
    if kissbooth_media::available_encoders().contains(&"nvv4l2h264enc") {
        eprintln!("SKIPPED: nvv4l2h264enc is installed here (a Jetson?)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = EncoderConfig {
        encoder: EncoderChoice::Nvv4l2h264enc,
        ..EncoderConfig::default()
    };
    let err = cfg
        .build(
            &spec(),
            &dir.path().join("v.mp4"),
            &VideoMetadata::default(),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, EncodeError::EncoderNotInstalled { .. }),
        "{err:?}"
    );
    assert!(msg.contains("nvv4l2h264enc"), "{msg}");
    for alt in kissbooth_media::available_encoders() {
        assert!(
            msg.contains(alt),
            "names the installed alternative {alt}: {msg}"
        );
    }
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn rejects_frames_of_the_wrong_size_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.mp4");
    let mut enc = build(&out).unwrap();
    let err = enc.push_rgb(&[0u8; 10]).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::FrameLength {
                expected: 12288,
                actual: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let err = enc.push(&image::RgbImage::new(32, 64)).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::FrameSize {
                actual_width: 32,
                ..
            }
        ),
        "{err:?}"
    );
    enc.push(&pattern(64, 64, 0)).unwrap();
    assert_eq!(enc.finish().unwrap().frames, 1);
}

#[test]
fn rejects_an_invalid_spec_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let err = EncoderConfig::default()
        .build(
            &VideoSpec::new(63, 64, 24),
            &dir.path().join("v.mp4"),
            &VideoMetadata::default(),
        )
        .unwrap_err();
    assert!(matches!(err, EncodeError::Config(_)), "{err:?}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn drop_without_finish_removes_the_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.mp4");
    let mut enc = build(&out).unwrap();
    for n in 0..12 {
        enc.push(&pattern(64, 64, n)).unwrap();
    }
    let during = entries(dir.path());
    assert!(
        during.iter().any(|n| n.starts_with(".v.mp4.partial-")),
        "a hidden temporary while encoding: {during:?}"
    );
    assert!(!out.exists());
    drop(enc);
    assert!(
        entries(dir.path()).is_empty(),
        "left: {:?}",
        entries(dir.path())
    );
}

#[test]
fn finish_without_frames_is_an_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let err = build(&dir.path().join("v.mp4"))
        .unwrap()
        .finish()
        .unwrap_err();
    assert!(matches!(err, EncodeError::NoFrames), "{err:?}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn a_finish_that_times_out_is_an_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.mp4");
    let mut enc = build(&out).unwrap();
    for n in 0..6 {
        enc.push(&pattern(64, 64, n)).unwrap();
    }
    enc.set_finish_timeout(std::time::Duration::ZERO);
    let err = enc.finish().unwrap_err();
    assert!(
        matches!(err, EncodeError::Timeout { frames: 6, .. }),
        "{err:?}"
    );
    assert!(
        entries(dir.path()).is_empty(),
        "left: {:?}",
        entries(dir.path())
    );
}

#[test]
fn replaces_an_existing_output_only_when_finished() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.mp4");
    std::fs::write(&out, b"old").unwrap();
    let mut enc = build(&out).unwrap();
    enc.push(&pattern(64, 64, 0)).unwrap();
    drop(enc);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"old",
        "an abandoned encode leaves the old file"
    );
    let mut enc = build(&out).unwrap();
    enc.push(&pattern(64, 64, 0)).unwrap();
    enc.finish().unwrap();
    assert_ne!(std::fs::read(&out).unwrap(), b"old");
    assert_eq!(entries(dir.path()), ["v.mp4"]);
}

/// Encodes 2 s of 512x512 noise-like pattern (about 1 MB) to `out`, expecting it to run out
/// of room; returns the error.
fn encode_until_full(out: &Path) -> EncodeError {
    let cfg = EncoderConfig {
        bitrate_kbps: 8000,
        ..EncoderConfig::default()
    };
    let spec = VideoSpec::new(512, 512, 24);
    let mut enc = match cfg.build(&spec, out, &VideoMetadata::default()) {
        Ok(enc) => enc,
        Err(e) => return e,
    };
    for n in 0..48 {
        if let Err(e) = enc.push(&pattern(512, 512, n)) {
            return e;
        }
    }
    match enc.finish() {
        Ok(v) => panic!("expected the disk to fill, but wrote {} bytes", v.bytes),
        Err(e) => e,
    }
}

fn assert_disk_full(err: &EncodeError) {
    assert!(
        matches!(err, EncodeError::DiskFull { .. }),
        "expected DiskFull, got {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("no space left"), "{msg}");
}

#[test]
fn leaves_nothing_at_the_output_when_the_disk_fills() {
    let _one = exclusive();
    let Some(small) = Tmpfs::mount("256k", "") else {
        return;
    };
    let out = small.dir.join("v.mp4");
    let err = encode_until_full(&out);
    eprintln!("tmpfs full: {err}");
    assert_disk_full(&err);
    assert!(!out.exists());
    assert!(
        entries(&small.dir).is_empty(),
        "left: {:?}",
        entries(&small.dir)
    );
}

const CHILD_OUT: &str = "KISSBOOTH_MEDIA_TEST_CHILD_OUT";

#[test]
fn leaves_nothing_at_the_output_when_the_file_size_limit_is_hit() {
    // Runs the encode in a child (this test binary again) with RLIMIT_FSIZE at 256 KiB and
    // SIGXFSZ ignored, so writes past the limit fail with EFBIG. Works without mount rights.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.mp4");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_encodes_under_a_file_size_limit",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_OUT, &out);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 256 * 1024,
                rlim_max: 256 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = {
        let _one = exclusive();
        cmd.output().unwrap()
    };
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success() && stdout.contains("CHILD-OK"),
        "child failed:\n{stdout}\n{stderr}"
    );
    assert!(!out.exists());
    assert!(
        entries(dir.path()).is_empty(),
        "left: {:?}",
        entries(dir.path())
    );
}

#[test]
#[ignore = "helper: run in a child process by leaves_nothing_at_the_output_when_the_file_size_limit_is_hit"]
fn child_encodes_under_a_file_size_limit() {
    let Some(out) = std::env::var_os(CHILD_OUT) else {
        return;
    };
    let out = Path::new(&out);
    let err = encode_until_full(out);
    eprintln!("file size limit: {err}");
    assert_disk_full(&err);
    assert!(!out.exists());
    println!("CHILD-OK");
}

#[test]
fn removes_temporaries_left_by_a_dead_process() {
    let dir = tempfile::tempdir().unwrap();
    // Above any pid_max, so never a live process.
    let dead = [".v.mp4.faststart-999999999-1", ".v.mp4.partial-999999999-0"];
    let mine = format!(".w.mp4.partial-{}-5", std::process::id());
    let keep = ["v.mp4", ".hidden", ".x.jpg.tmp-999999999-0", mine.as_str()];
    for name in dead.iter().chain(&keep) {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    let mut removed: Vec<String> = kissbooth_media::remove_stale_temporaries(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    removed.sort();
    assert_eq!(removed, dead);
    let mut kept = keep.map(str::to_owned).to_vec();
    kept.sort();
    assert_eq!(entries(dir.path()), kept);
}
