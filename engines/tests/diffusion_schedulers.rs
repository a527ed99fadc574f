//! The Rust schedulers against `scripts/scheduler-goldens.py` (a NumPy transcription of
//! diffusers 0.42.1, and diffusers itself for the converted packs' configurations): timesteps,
//! sigmas, input scaling, every step and the video-to-video start, to 1e-5.

use std::path::PathBuf;

use kissbooth_engines::diffusion::scheduler::SchedulerConfig;
use serde::Deserialize;

const TOL: f32 = 1e-5;

#[derive(Deserialize)]
struct Golden {
    name: String,
    config: SchedulerConfig,
    num_inference_steps: usize,
    timesteps: Vec<f32>,
    sigmas: Option<Vec<f32>>,
    init_noise_sigma: f32,
    steps: Vec<Step>,
    /// The latent sequence length a dynamically shifted schedule is shifted for.
    image_seq_len: Option<usize>,
    refine: Option<Refine>,
}

#[derive(Deserialize)]
struct Refine {
    strength: f32,
    start: usize,
    clean: Vec<f32>,
    noise: Vec<f32>,
    noised: Vec<f32>,
}

#[derive(Deserialize)]
struct Step {
    timestep: f32,
    sample: Vec<f32>,
    model_output: Vec<f32>,
    noise: Option<Vec<f32>>,
    scaled_model_input: Vec<f32>,
    prev_sample: Vec<f32>,
}

fn goldens() -> Vec<Golden> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/goldens");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/goldens")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("scheduler_") && n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 10,
        "expected the scheduler goldens in {}",
        dir.display()
    );
    paths
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL * w.abs().max(1.0),
            "{what}[{i}]: got {g}, want {w} (diff {})",
            (g - w).abs()
        );
    }
}

fn matches(kind: &str) {
    let mut seen = 0;
    for g in goldens().into_iter().filter(|g| g.name.starts_with(kind)) {
        seen += 1;
        let mut s = g.config.build().unwrap();
        if let Some(len) = g.image_seq_len {
            s.set_image_seq_len(len);
        }
        s.set_timesteps(g.num_inference_steps).unwrap();
        if let Some(r) = &g.refine {
            let mut v2v = s.clone();
            let start = v2v.start_index(r.strength);
            assert_eq!(start, r.start, "{} refine start", g.name);
            let mut x = r.clean.clone();
            v2v.add_noise(&mut x, &r.noise, start).unwrap();
            assert_close(&format!("{} refine noised", g.name), &x, &r.noised);
        }
        assert_close(
            &format!("{} timesteps", g.name),
            s.timesteps(),
            &g.timesteps,
        );
        if let Some(sig) = &g.sigmas {
            assert_close(&format!("{} sigmas", g.name), s.sigmas(), sig);
        }
        assert_close(
            &format!("{} init_noise_sigma", g.name),
            &[s.init_noise_sigma()],
            &[g.init_noise_sigma],
        );
        for (k, st) in g.steps.iter().enumerate() {
            let mut scaled = st.sample.clone();
            s.scale_model_input(&mut scaled, st.timestep).unwrap();
            assert_close(
                &format!("{} step {k} scaled input", g.name),
                &scaled,
                &st.scaled_model_input,
            );
            let prev = s
                .step(
                    &st.model_output,
                    st.timestep,
                    &st.sample,
                    st.noise.as_deref(),
                )
                .unwrap();
            assert_close(
                &format!("{} step {k} prev_sample", g.name),
                &prev,
                &st.prev_sample,
            );
        }
    }
    assert!(seen > 0, "no goldens for {kind}");
}

#[test]
fn euler_discrete_matches_diffusers() {
    matches("euler_");
}

#[test]
fn lcm_matches_diffusers() {
    matches("lcm_");
}

#[test]
fn flow_match_euler_matches_diffusers() {
    matches("flow_match_");
}

#[test]
fn edm_euler_with_karras_sigmas_matches_diffusers() {
    matches("euler_edm_karras_");
}

#[test]
fn dynamically_shifted_flow_match_matches_diffusers() {
    matches("flow_match_ltx_dynamic_");
    matches("flow_match_dynamic_");
}

#[test]
fn a_dynamic_shift_without_the_sequence_length_is_refused() {
    let c: SchedulerConfig =
        toml::from_str("kind = \"flow_match_euler\"\nuse_dynamic_shifting = true").unwrap();
    let mut s = c.build().unwrap();
    assert!(s.set_timesteps(4).is_err());
    s.set_image_seq_len(192);
    s.set_timesteps(4).unwrap();
}

#[test]
fn lcm_refuses_a_step_without_noise() {
    let mut s = SchedulerConfig::Lcm(Default::default()).build().unwrap();
    s.set_timesteps(4).unwrap();
    let t = s.timesteps()[0];
    assert!(s.step(&[0.0; 4], t, &[0.0; 4], None).is_err());
}
