//! Refine mode (video-to-video) on the converted tiny packs: strength 0 gives back the clip's
//! VAE round trip, and a strength runs the last `floor(steps x strength)` steps of the
//! schedule from the clip's noised latents.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use image::RgbImage;
use kissbooth_engines::Landmarks;
use kissbooth_engines::diffusion::{DiffusionGenerator, DiffusionRequest, Pack, Refine};
use kissbooth_engines::runtime::{Provider, Runtime, RuntimeConfig};
use ort::session::SessionInputValue;
use ort::value::TensorRef;

fn runtime() -> &'static Runtime {
    Runtime::init(&RuntimeConfig {
        threads: 2,
        providers: vec![Provider::Cpu],
        ..Default::default()
    })
    .expect("ONNX Runtime")
}

fn pack_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/packs")
        .join(name)
}

/// A clip of `n` frames at `size`: a square moving right over a gradient.
fn clip(n: usize, size: u32) -> Vec<RgbImage> {
    (0..n)
        .map(|i| {
            RgbImage::from_fn(size, size, |x, y| {
                let inside = x >= i as u32 * 2 && x < i as u32 * 2 + 6 && (5..11).contains(&y);
                if inside {
                    image::Rgb([250, 240, 30])
                } else {
                    image::Rgb([(x * 15) as u8, (y * 15) as u8, 90])
                }
            })
        })
        .collect()
}

fn refine(
    g: &mut DiffusionGenerator,
    frames: &[RgbImage],
    strength: f32,
) -> (Vec<RgbImage>, Vec<f32>) {
    let size = frames[0].width();
    let targets = vec![[Landmarks([[4.0, 4.0]; 68]), Landmarks([[12.0, 4.0]; 68])]; frames.len()];
    let req = DiffusionRequest {
        capture: &frames[0],
        targets: &targets,
        faces: None,
        width: size,
        height: size,
        seed: 5,
        steps: None,
        refine: Some(Refine { frames, strength }),
    };
    let mut out = Vec::new();
    let mut timesteps = Vec::new();
    g.generate(
        &req,
        &mut |p| timesteps.push(p.timestep),
        &AtomicBool::new(false),
        &mut |_, f| out.push(f),
    )
    .unwrap();
    (out, timesteps)
}

/// `video_encoder` then `vae_decoder`, run straight through ONNX Runtime, as 8-bit frames.
fn round_trip(rt: &Runtime, dir: &std::path::Path, frames: &[RgbImage]) -> Vec<RgbImage> {
    let s = frames[0].width() as usize;
    let mut video = Vec::new();
    for f in frames {
        for c in 0..3 {
            video.extend(f.pixels().map(|p| p[c] as f32 / 127.5 - 1.0));
        }
    }
    let run = |file: &str, input: &str, dims: Vec<usize>, v: &[f32], out: &str| {
        let (mut session, _) = rt.session(&dir.join(file)).unwrap();
        let t = TensorRef::from_array_view((dims, v)).unwrap();
        let o = session
            .run(vec![(input.to_string(), SessionInputValue::from(t))])
            .unwrap();
        let (shape, values) = o[out].try_extract_tensor::<f32>().unwrap();
        (shape.to_vec(), values.to_vec())
    };
    let n = frames.len();
    let (lat_shape, latents) = run(
        "video_encoder.onnx",
        "video",
        vec![1, n, 3, s, s],
        &video,
        "latents",
    );
    let dims: Vec<usize> = lat_shape.iter().map(|&d| d as usize).collect();
    let (_, decoded) = run("vae_decoder.onnx", "latents", dims, &latents, "frames");
    decoded
        .chunks_exact(3 * s * s)
        .map(|f| {
            RgbImage::from_fn(s as u32, s as u32, |x, y| {
                let i = y as usize * s + x as usize;
                let px =
                    |c: usize| ((f[c * s * s + i] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
                image::Rgb([px(0), px(1), px(2)])
            })
        })
        .collect()
}

#[test]
fn strength_zero_gives_back_the_clips_vae_round_trip() {
    let rt = runtime();
    let dir = pack_dir("svd-tiny");
    let mut g = DiffusionGenerator::new(Pack::load(&dir, rt).unwrap());
    let frames = clip(4, 16);
    let (out, timesteps) = refine(&mut g, &frames, 0.0);
    assert!(
        timesteps.is_empty(),
        "no step runs at strength 0: {timesteps:?}"
    );
    let want = round_trip(rt, &dir, &frames);
    assert_eq!(out.len(), want.len());
    for (k, (a, b)) in out.iter().zip(&want).enumerate() {
        let worst = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap();
        assert!(worst <= 1, "frame {k}: {worst} levels from the round trip");
    }
}

#[test]
fn a_higher_strength_runs_more_of_the_schedule_from_a_noisier_step() {
    let rt = runtime();
    for name in ["svd-tiny", "ltx-tiny"] {
        let dir = pack_dir(name);
        let pack = Pack::load(&dir, rt).unwrap();
        let m = pack.manifest.clone();
        let (lh, lw) = m.latent.latent_size();
        let mut schedule = m.scheduler.build().unwrap();
        schedule.set_image_seq_len(m.latent.frames * lh * lw);
        schedule.set_timesteps(m.sampling.steps).unwrap();
        let full = schedule.timesteps().to_vec();
        let n = full.len();
        let mut g = DiffusionGenerator::new(pack);
        let size = m.latent.width;
        let frames = clip(m.latent.video_frames(), size);
        let mut previous: Option<Vec<f32>> = None;
        for strength in [0.34f32, 0.67, 1.0] {
            let (out, ran) = refine(&mut g, &frames, strength);
            assert_eq!(out.len(), frames.len());
            let k = (n as f32 * strength) as usize;
            assert_eq!(ran, full[n - k..].to_vec(), "{name} at strength {strength}");
            if let Some(p) = &previous {
                assert!(
                    ran.len() > p.len() && ran[0] > p[0],
                    "{name}: {ran:?} after {p:?}"
                );
            }
            previous = Some(ran);
        }
    }
}

#[test]
fn a_pack_without_a_video_encoder_refuses_to_refine() {
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let src = pack_dir("svd-tiny");
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
        }
    }
    let manifest = tmp.path().join("manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let cut = text.find("[components.video_encoder]").unwrap();
    let rest = &text[cut..];
    let end = rest[1..]
        .find("\n[components.")
        .map_or(rest.len(), |i| i + 1);
    std::fs::write(&manifest, format!("{}{}", &text[..cut], &rest[end..])).unwrap();
    let mut g = DiffusionGenerator::new(Pack::load(tmp.path(), rt).unwrap());
    let frames = clip(4, 16);
    let targets = vec![[Landmarks([[4.0, 4.0]; 68]), Landmarks([[12.0, 4.0]; 68])]; 4];
    let req = DiffusionRequest {
        capture: &frames[0],
        targets: &targets,
        faces: None,
        width: 16,
        height: 16,
        seed: 1,
        steps: None,
        refine: Some(Refine {
            frames: &frames,
            strength: 0.5,
        }),
    };
    let err = g
        .generate(&req, &mut |_| {}, &AtomicBool::new(false), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("video_encoder"), "{err}");
}
