//! The diffusion generator end to end on a tiny pack written by `scripts/make-tiny-pack`
//! (skipped loudly when python3 with numpy and onnx, or ONNX Runtime, is missing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use image::RgbImage;
use kissbooth_engines::Landmarks;
use kissbooth_engines::diffusion::{
    DiffusionError, DiffusionGenerator, DiffusionRequest, Pack, PackError,
};
use kissbooth_engines::runtime::{Runtime, RuntimeConfig};

/// A fresh tiny pack in a temp dir and the runtime, or `None` after saying why.
fn tiny_pack(test: &str) -> Option<(tempfile::TempDir, &'static Runtime)> {
    tiny_pack_with(test, &[])
}

/// As [`tiny_pack`], with extra `scripts/make-tiny-pack` options.
fn tiny_pack_with(test: &str, options: &[&str]) -> Option<(tempfile::TempDir, &'static Runtime)> {
    let rt = match Runtime::init(&RuntimeConfig {
        threads: 2,
        providers: vec![kissbooth_engines::runtime::Provider::Cpu],
        ..Default::default()
    }) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            return None;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-tiny-pack");
    match Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .args(options)
        .output()
    {
        Ok(o) if o.status.success() => Some((dir, rt)),
        Ok(o) => {
            eprintln!(
                "SKIPPED {test}: scripts/make-tiny-pack failed (python3 with numpy and onnx needed): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: cannot run python3: {e}");
            None
        }
    }
}

fn edit_manifest(dir: &Path, from: &str, to: &str) {
    let p = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

fn capture() -> RgbImage {
    RgbImage::from_fn(160, 120, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 2) as u8, 128])
    })
}

/// Two faces drifting toward each other over `n` frames, in capture pixels.
fn targets(n: usize) -> Vec<[Landmarks; 2]> {
    (0..n)
        .map(|i| {
            let t = i as f32 / n.max(2) as f32;
            let face = |cx: f32| {
                let mut l = [[0.0f32; 2]; 68];
                for (k, p) in l.iter_mut().enumerate() {
                    let a = k as f32 / 68.0 * std::f32::consts::TAU;
                    *p = [cx + 20.0 * a.cos(), 60.0 + 25.0 * a.sin()];
                }
                Landmarks(l)
            };
            [face(45.0 + 20.0 * t), face(115.0 - 20.0 * t)]
        })
        .collect()
}

fn render(
    generator: &mut DiffusionGenerator,
    seed: u64,
    n: usize,
) -> Result<Vec<RgbImage>, DiffusionError> {
    render_with(generator, seed, &capture(), &targets(n))
}

fn render_with(
    generator: &mut DiffusionGenerator,
    seed: u64,
    cap: &RgbImage,
    tg: &[[Landmarks; 2]],
) -> Result<Vec<RgbImage>, DiffusionError> {
    render_faces(generator, seed, cap, tg, None)
}

fn render_faces(
    generator: &mut DiffusionGenerator,
    seed: u64,
    cap: &RgbImage,
    tg: &[[Landmarks; 2]],
    faces: Option<&[Landmarks; 2]>,
) -> Result<Vec<RgbImage>, DiffusionError> {
    let mut frames = Vec::new();
    let req = DiffusionRequest {
        capture: cap,
        targets: tg,
        faces,
        width: 96,
        height: 72,
        seed,
        steps: None,
        refine: None,
    };
    generator.generate(&req, &mut |_| {}, &AtomicBool::new(false), &mut |i, f| {
        assert_eq!(i, frames.len());
        frames.push(f)
    })?;
    Ok(frames)
}

#[test]
fn tiny_pack_is_byte_identical_on_rerun() {
    let Some((a, _)) = tiny_pack("tiny_pack_is_byte_identical_on_rerun") else {
        return;
    };
    let Some((b, _)) = tiny_pack("tiny_pack_is_byte_identical_on_rerun") else {
        return;
    };
    for f in [
        "manifest.toml",
        "vae_encoder.onnx",
        "denoiser.onnx",
        "vae_decoder.onnx",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn tiny_pack_renders_frames_of_the_requested_size_end_to_end() {
    let Some((dir, rt)) = tiny_pack("tiny_pack_renders_frames") else {
        return;
    };
    let mut g = DiffusionGenerator::new(Pack::load(dir.path(), rt).unwrap());
    let frames = render(&mut g, 7, 12).unwrap();
    assert_eq!(frames.len(), 12);
    assert!(frames.iter().all(|f| f.dimensions() == (96, 72)));
    let first = &frames[0];
    assert!(
        first.pixels().any(|p| p != first.get_pixel(0, 0)),
        "a flat frame"
    );
}

#[test]
fn same_seed_gives_identical_frames_and_another_seed_does_not() {
    let Some((dir, rt)) = tiny_pack("same_seed_gives_identical_frames") else {
        return;
    };
    let mut g = DiffusionGenerator::new(Pack::load(dir.path(), rt).unwrap());
    let a = render(&mut g, 42, 6).unwrap();
    let b = render(&mut g, 42, 6).unwrap();
    let c = render(&mut g, 43, 6).unwrap();
    assert!(a == b, "same seed, different frames");
    assert!(a != c, "another seed, same frames");
}

#[test]
fn progress_is_reported_per_step_and_cancellation_stops() {
    let Some((dir, rt)) = tiny_pack("progress_and_cancellation") else {
        return;
    };
    let mut g = DiffusionGenerator::new(Pack::load(dir.path(), rt).unwrap());
    let cap = capture();
    let tg = targets(4);
    let req = DiffusionRequest {
        capture: &cap,
        targets: &tg,
        faces: None,
        width: 64,
        height: 64,
        seed: 1,
        steps: Some(3),
        refine: None,
    };
    let mut seen = Vec::new();
    let cancel = AtomicBool::new(false);
    g.generate(
        &req,
        &mut |p| seen.push((p.step, p.steps)),
        &cancel,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(seen, vec![(0, 3), (1, 3), (2, 3)]);
    let cancel = AtomicBool::new(false);
    let mut frames = 0;
    let err = g
        .generate(
            &req,
            &mut |p| {
                if p.step == 1 {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed)
                }
            },
            &cancel,
            &mut |_, _| frames += 1,
        )
        .unwrap_err();
    assert!(matches!(err, DiffusionError::Cancelled), "{err}");
    assert_eq!(frames, 0);
}

fn refused(test: &str, breakage: impl Fn(&Path)) -> Option<String> {
    let (dir, rt) = tiny_pack(test)?;
    breakage(dir.path());
    let err: PackError = Pack::load(dir.path(), rt).unwrap_err();
    Some(err.to_string())
}

#[test]
fn rejects_a_pack_with_a_missing_file() {
    if let Some(msg) = refused("rejects_missing_file", |d| {
        std::fs::remove_file(d.join("vae_decoder.onnx")).unwrap()
    }) {
        assert!(
            msg.contains("vae_decoder.onnx") && msg.contains("missing"),
            "{msg}"
        );
    }
}

#[test]
fn rejects_a_pack_with_a_wrong_checksum() {
    if let Some(msg) = refused("rejects_wrong_checksum", |d| {
        let mut b = std::fs::read(d.join("denoiser.onnx")).unwrap();
        b.push(0);
        std::fs::write(d.join("denoiser.onnx"), b).unwrap();
    }) {
        assert!(
            msg.contains("denoiser.onnx") && msg.contains("sha256"),
            "{msg}"
        );
    }
}

#[test]
fn rejects_a_pack_with_a_wrong_tensor_name() {
    if let Some(msg) = refused("rejects_wrong_tensor_name", |d| {
        edit_manifest(d, "name = \"pose_maps\"", "name = \"pose\"")
    }) {
        assert!(
            msg.contains("`pose`") && msg.contains("denoiser.onnx"),
            "{msg}"
        );
    }
}

#[test]
fn rejects_a_pack_with_a_wrong_shape() {
    if let Some(msg) = refused("rejects_wrong_shape", |d| {
        edit_manifest(
            d,
            "shape = [1, 3, \"height\", \"width\"]",
            "shape = [1, 4, \"height\", \"width\"]",
        )
    }) {
        assert!(
            msg.contains("`image`") && msg.contains("vae_encoder.onnx") && msg.contains("shape"),
            "{msg}"
        );
    }
}

#[test]
fn benchmark_reports_per_step_time_and_runtime_overhead() {
    let Some((dir, rt)) = tiny_pack("benchmark") else {
        return;
    };
    let mut g = DiffusionGenerator::new(Pack::load(dir.path(), rt).unwrap());
    let cap = capture();
    let tg = targets(48);
    let req = DiffusionRequest {
        capture: &cap,
        targets: &tg,
        faces: None,
        width: 320,
        height: 240,
        seed: 3,
        steps: Some(8),
        refine: None,
    };
    let stats = g
        .generate(&req, &mut |_| {}, &AtomicBool::new(false), &mut |_, _| {})
        .unwrap();
    let n = stats.steps.len() as u32;
    let total: std::time::Duration = stats.steps.iter().map(|s| s.total).sum();
    let overhead: std::time::Duration = stats.steps.iter().map(|s| s.overhead()).sum();
    eprintln!(
        "BENCH tiny pack (8 latent frames, 4x8x8 latents, CPU): {n} steps, per step {:?} \
         (runtime overhead outside ONNX {:?}); encode {:?}, pose maps {:?}, decode {:?}, \
         48 frames at 320x240 {:?}",
        total / n,
        overhead / n,
        stats.encode,
        stats.pose_maps,
        stats.decode,
        stats.postprocess
    );
    for (i, s) in stats.steps.iter().enumerate() {
        eprintln!(
            "BENCH step {i}: total {:?}, onnx {:?}, overhead {:?}",
            s.total,
            s.onnx,
            s.overhead()
        );
    }
}

/// The couple fixture and two faces in it (eye, nose and mouth points where the paintings'
/// faces are; the rest of the 68 points on a ring around them), or `None` after saying why.
fn couple(test: &str) -> Option<(RgbImage, Vec<[Landmarks; 2]>)> {
    let path = Path::new("/work/shared/fixtures/faces/couple_1280x720.jpg");
    let img = match image::open(path) {
        Ok(i) => i.to_rgb8(),
        Err(e) => {
            eprintln!("SKIPPED {test}: {}: {e}", path.display());
            return None;
        }
    };
    let face = |cx: f32, cy: f32, s: f32| {
        let mut l = [[0.0f32; 2]; 68];
        for (k, p) in l.iter_mut().enumerate() {
            let a = k as f32 / 68.0 * std::f32::consts::TAU;
            *p = [cx + s * a.cos(), cy + 1.2 * s * a.sin()];
        }
        for p in &mut l[36..42] {
            *p = [cx - 0.35 * s, cy - 0.2 * s];
        }
        for p in &mut l[42..48] {
            *p = [cx + 0.35 * s, cy - 0.2 * s];
        }
        l[30] = [cx, cy + 0.15 * s];
        for p in &mut l[48..68] {
            *p = [cx, cy + 0.5 * s];
        }
        Landmarks(l)
    };
    let (w, h) = (img.width() as f32, img.height() as f32);
    let pair = [
        face(0.3 * w, 0.45 * h, 0.12 * h),
        face(0.7 * w, 0.45 * h, 0.12 * h),
    ];
    Some((img, vec![pair; 6]))
}

#[test]
fn identity_pack_renders_deterministically_and_the_faces_identities_change_the_frames() {
    let test = "identity_pack_renders_deterministically";
    let Some((cap, tg)) = couple(test) else {
        return;
    };
    let Some((dir, rt)) = tiny_pack_with(test, &["--identity"]) else {
        return;
    };
    let pack = Pack::load(dir.path(), rt).unwrap();
    assert!(pack.manifest.conditioning.identity_embedding);
    let mut g = DiffusionGenerator::new(pack);
    let a = render_with(&mut g, 11, &cap, &tg).unwrap();
    let b = render_with(&mut g, 11, &cap, &tg).unwrap();
    assert_eq!(a.len(), 6);
    assert!(a == b, "same capture and seed, different frames");
    // The faces in the other order: the pose maps (a maximum over both faces) and the
    // first-frame latents are the same, only the identity embedding changes.
    let swapped: Vec<[Landmarks; 2]> = tg.iter().map(|f| [f[1], f[0]]).collect();
    let c = render_with(&mut g, 11, &cap, &swapped).unwrap();
    assert!(a != c, "swapping the faces did not change the frames");
    // Another capture (the picture mirrored) with the same landmarks.
    let mirrored = image::imageops::flip_horizontal(&cap);
    let d = render_with(&mut g, 11, &mirrored, &tg).unwrap();
    assert!(a != d, "another capture, same frames");
    // The detected faces, when given, are what is aligned: the same faces as the targets'
    // first frame render the same; the faces in the other order with unchanged targets do not.
    let same = render_faces(&mut g, 11, &cap, &tg, Some(&tg[0])).unwrap();
    assert!(
        a == same,
        "the detected faces equal to the first target, other frames"
    );
    let other = render_faces(&mut g, 11, &cap, &tg, Some(&swapped[0])).unwrap();
    assert!(a != other, "the detected faces are not used");
    assert!(other == c, "only the identity should differ");

    // The control: the plain pack cannot tell the swapped faces apart.
    let Some((plain, rt)) = tiny_pack(test) else {
        return;
    };
    let mut p = DiffusionGenerator::new(Pack::load(plain.path(), rt).unwrap());
    let pa = render_with(&mut p, 11, &cap, &tg).unwrap();
    let pc = render_with(&mut p, 11, &cap, &swapped).unwrap();
    assert!(
        pa == pc,
        "without identity the face order should not matter"
    );
    assert!(
        pa != a,
        "the identity pack renders what the plain pack does"
    );
}

#[test]
fn identity_pack_with_guidance_renders_and_differs_from_unguided() {
    let test = "identity_pack_with_guidance";
    let Some((cap, tg)) = couple(test) else {
        return;
    };
    let Some((dir, rt)) = tiny_pack_with(test, &["--identity", "--guidance", "3"]) else {
        return;
    };
    let mut g = DiffusionGenerator::new(Pack::load(dir.path(), rt).unwrap());
    let a = render_with(&mut g, 5, &cap, &tg).unwrap();
    let swapped: Vec<[Landmarks; 2]> = tg.iter().map(|f| [f[1], f[0]]).collect();
    let c = render_with(&mut g, 5, &cap, &swapped).unwrap();
    assert!(a != c, "the guided identity pack ignores the faces");
    assert_eq!(a, render_with(&mut g, 5, &cap, &tg).unwrap());
}

#[test]
fn identity_pack_is_byte_identical_on_rerun_and_keeps_the_plain_components() {
    let test = "identity_pack_is_byte_identical_on_rerun";
    let Some((a, _)) = tiny_pack_with(test, &["--identity"]) else {
        return;
    };
    let Some((b, _)) = tiny_pack_with(test, &["--identity"]) else {
        return;
    };
    let Some((plain, _)) = tiny_pack(test) else {
        return;
    };
    let read = |d: &tempfile::TempDir, f: &str| std::fs::read(d.path().join(f)).unwrap();
    for f in [
        "manifest.toml",
        "identity_encoder.onnx",
        "denoiser.onnx",
        "vae_encoder.onnx",
    ] {
        assert_eq!(read(&a, f), read(&b, f), "{f} differs");
    }
    assert_eq!(
        read(&a, "vae_encoder.onnx"),
        read(&plain, "vae_encoder.onnx")
    );
    assert_eq!(
        read(&a, "vae_decoder.onnx"),
        read(&plain, "vae_decoder.onnx")
    );
    assert_ne!(read(&a, "denoiser.onnx"), read(&plain, "denoiser.onnx"));
}

fn refused_identity(test: &str, breakage: impl Fn(&Path)) -> Option<String> {
    let (dir, rt) = tiny_pack_with(test, &["--identity"])?;
    breakage(dir.path());
    let err: PackError = Pack::load(dir.path(), rt).unwrap_err();
    Some(err.to_string())
}

#[test]
fn rejects_an_identity_encoder_whose_output_name_differs_from_the_manifest() {
    if let Some(msg) = refused_identity("rejects_identity_output_name", |d| {
        edit_manifest(d, "name = \"embedding\"", "name = \"identity_features\"")
    }) {
        assert!(
            msg.contains("`identity_features`")
                && msg.contains("identity_encoder.onnx")
                && msg.contains("embedding"),
            "{msg}"
        );
    }
}

#[test]
fn rejects_an_identity_encoder_whose_output_shape_differs_from_the_manifest() {
    if let Some(msg) = refused_identity("rejects_identity_output_shape", |d| {
        edit_manifest(
            d,
            "role = \"embedding\", shape = [2, 16]",
            "role = \"embedding\", shape = [1, 32]",
        )
    }) {
        assert!(
            msg.contains("`embedding`")
                && msg.contains("identity_encoder.onnx")
                && msg.contains("[2, 16]")
                && msg.contains("[1, 32]"),
            "{msg}"
        );
    }
}

#[test]
fn rejects_an_identity_embedding_the_denoiser_cannot_take() {
    if let Some(msg) = refused_identity("rejects_identity_size_mismatch", |d| {
        edit_manifest(
            d,
            "role = \"embedding\", shape = [2, 16]",
            "role = \"embedding\", shape = [2, 8]",
        );
    }) {
        assert!(
            msg.contains("`embedding`") && msg.contains("`identity`"),
            "{msg}"
        );
    }
}

#[test]
fn rejects_a_denoiser_identity_input_when_the_pack_does_not_declare_identity_conditioning() {
    if let Some(msg) = refused_identity("rejects_undeclared_identity_input", |d| {
        edit_manifest(d, "identity_embedding = true", "identity_embedding = false")
    }) {
        assert!(
            msg.contains("`identity`") && msg.contains("identity_embedding = true"),
            "{msg}"
        );
    }
}
