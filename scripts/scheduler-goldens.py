#!/usr/bin/env python3
"""Reference outputs for the Rust diffusion schedulers (engines::diffusion::scheduler).

Writes engines/tests/goldens/scheduler_*.json: for each scheduler configuration, the timesteps
and sigmas that `set_timesteps(n)` produces, and every step of a short run on small fixed arrays
(the sample, model output and, for LCM, the injected noise are written out explicitly, so the
Rust test needs no RNG that matches torch's).

REFERENCE: this is a faithful NumPy transcription of the scheduler maths of diffusers 0.42.1
(`EulerDiscreteScheduler`, `LCMScheduler`, `FlowMatchEulerDiscreteScheduler`), not diffusers
itself: PyTorch (a ~700 MB wheel plus CUDA libraries) could not reasonably be installed on the
build machine. Where diffusers computes in torch float32 this script computes in numpy float32
in the same order (torch.linspace's two-sided formula, torch.cumprod's double accumulator, torch
scalar maths on 0-d float32 tensors); where diffusers computes in numpy float64 (np.interp,
np.linspace, the flow-matching shift inside set_timesteps) so does this script. Only the default
paths are transcribed: no Karras/exponential/beta sigmas, no s_churn, no thresholding, no
dynamic shifting.

The configurations the converted packs use beyond those defaults (SVD's EDM Euler: Karras
sigmas with continuous timesteps `0.25 ln(sigma)`; LTX-Video's flow matching with the
resolution-dependent exponential shift, `shift_terminal` and the pipeline's `linspace(1, 1/N, N)`
sigmas) are computed by diffusers itself (`DIFFUSERS_CASES`; written when torch and diffusers
import, skipped with a note otherwise), each with a video-to-video start: the step a strength
starts at and the clean sample noised to it (`add_noise` / `scale_noise`).

Usage: scripts/scheduler-goldens.py [OUT_DIR]   (default engines/tests/goldens). Deterministic.
"""

import json
import os
import sys

import numpy as np

DIFFUSERS_VERSION = "0.42.1"
F32 = np.float32


# --- torch float32 primitives -------------------------------------------------------------

def torch_linspace_f32(start, end, steps):
    """torch.linspace(start, end, steps, dtype=float32) on CPU (RangeFactoriesKernel.cpp)."""
    start, end = F32(start), F32(end)
    step = (end - start) / F32(steps - 1)
    halfway = steps // 2
    out = np.empty(steps, dtype=F32)
    for i in range(steps):
        if i < halfway:
            out[i] = start + step * F32(i)
        else:
            out[i] = end - step * F32(steps - i - 1)
    return out


def betas_f32(cfg):
    n = cfg["num_train_timesteps"]
    if cfg["beta_schedule"] == "linear":
        return torch_linspace_f32(cfg["beta_start"], cfg["beta_end"], n)
    if cfg["beta_schedule"] == "scaled_linear":
        b = torch_linspace_f32(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, n)
        return (b * b).astype(F32)
    raise ValueError(cfg["beta_schedule"])


def alphas_cumprod_f32(cfg):
    alphas = (F32(1.0) - betas_f32(cfg)).astype(F32)
    # torch.cumprod on CPU accumulates float32 in double and stores each element as float32.
    return np.cumprod(alphas.astype(np.float64)).astype(F32)


def np_linspace(start, stop, num):
    return np.linspace(start, stop, num)


# --- EulerDiscreteScheduler ----------------------------------------------------------------

class Euler:
    def __init__(self, cfg):
        self.cfg = cfg
        self.ac = alphas_cumprod_f32(cfg)

    def set_timesteps(self, n):
        cfg = self.cfg
        ntt = cfg["num_train_timesteps"]
        sp = cfg["timestep_spacing"]
        if sp == "linspace":
            ts = np.linspace(0, ntt - 1, n, dtype=np.float32)[::-1].copy()
        elif sp == "leading":
            ratio = ntt // n
            ts = (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.float32)
            ts += cfg["steps_offset"]
        elif sp == "trailing":
            ratio = ntt / n
            ts = np.arange(ntt, 0, -ratio).round().copy().astype(np.float32)
            ts -= 1
        else:
            raise ValueError(sp)
        full = (((F32(1) - self.ac) / self.ac) ** F32(0.5)).astype(F32)
        sig = np.interp(ts, np.arange(0, len(full)), full)
        sig = np.concatenate([sig, [0]]).astype(np.float32)
        self.timesteps = ts.astype(np.float32)
        self.sigmas = sig
        self.step_index = None

    def init_noise_sigma(self):
        m = self.sigmas.max()
        if self.cfg["timestep_spacing"] in ("linspace", "trailing"):
            return m
        return F32((m * m + F32(1)) ** F32(0.5))

    def _index(self, t):
        idx = np.nonzero(self.timesteps == F32(t))[0]
        return int(idx[1] if len(idx) > 1 else idx[0])

    def scale_model_input(self, sample, t):
        if self.step_index is None:
            self.step_index = self._index(t)
        s = self.sigmas[self.step_index]
        return (sample / ((s * s + F32(1)) ** F32(0.5))).astype(F32)

    def step(self, mo, t, sample, noise=None):
        if self.step_index is None:
            self.step_index = self._index(t)
        sigma = self.sigmas[self.step_index]
        sigma_hat = sigma * F32(1.0)
        if self.cfg["prediction_type"] == "epsilon":
            pred = sample - sigma_hat * mo
        elif self.cfg["prediction_type"] == "v_prediction":
            pred = mo * (-sigma / (sigma * sigma + F32(1)) ** F32(0.5)) + sample / (sigma * sigma + F32(1))
        else:
            raise ValueError(self.cfg["prediction_type"])
        derivative = (sample - pred) / sigma_hat
        dt = self.sigmas[self.step_index + 1] - sigma_hat
        prev = sample + derivative * dt
        self.step_index += 1
        return prev.astype(F32)


# --- LCMScheduler --------------------------------------------------------------------------

class Lcm:
    def __init__(self, cfg):
        self.cfg = cfg
        self.ac = alphas_cumprod_f32(cfg)
        self.final = F32(1.0) if cfg["set_alpha_to_one"] else self.ac[0]

    def set_timesteps(self, n):
        cfg = self.cfg
        orig = cfg["original_inference_steps"]
        k = cfg["num_train_timesteps"] // orig
        origin = np.asarray(list(range(1, orig + 1))) * k - 1
        origin = origin[::-1].copy()
        idx = np.floor(np.linspace(0, len(origin), num=n, endpoint=False)).astype(np.int64)
        self.timesteps = origin[idx].astype(np.int64)
        self.sigmas = None
        self.step_index = None
        self.n = n

    def init_noise_sigma(self):
        return F32(1.0)

    def scale_model_input(self, sample, t):
        return sample.astype(F32)

    def step(self, mo, t, sample, noise):
        t = int(t)
        if self.step_index is None:
            idx = np.nonzero(self.timesteps == t)[0]
            self.step_index = int(idx[1] if len(idx) > 1 else idx[0])
        p = self.step_index + 1
        prev_t = int(self.timesteps[p]) if p < len(self.timesteps) else t
        a = self.ac[t]
        a_prev = self.ac[prev_t] if prev_t >= 0 else self.final
        b = F32(1) - a
        b_prev = F32(1) - a_prev
        # In the pipeline the timestep is a torch.long tensor: `t * timestep_scaling` is float32.
        st = F32(t) * F32(self.cfg["timestep_scaling"])
        sd2 = F32(0.25)
        c_skip = sd2 / (st * st + sd2)
        c_out = st / (st * st + sd2) ** F32(0.5)
        pt = self.cfg["prediction_type"]
        if pt == "epsilon":
            pred = (sample - np.sqrt(b) * mo) / np.sqrt(a)
        elif pt == "v_prediction":
            pred = np.sqrt(a) * sample - np.sqrt(b) * mo
        elif pt == "sample":
            pred = mo
        else:
            raise ValueError(pt)
        denoised = c_out * pred + c_skip * sample
        if self.step_index != self.n - 1:
            prev = np.sqrt(a_prev) * denoised + np.sqrt(b_prev) * noise
        else:
            prev = denoised
        self.step_index += 1
        return prev.astype(F32)


# --- FlowMatchEulerDiscreteScheduler -------------------------------------------------------

class FlowMatch:
    def __init__(self, cfg):
        self.cfg = cfg
        ntt = cfg["num_train_timesteps"]
        shift = cfg["shift"]
        ts = np.linspace(1, ntt, ntt, dtype=np.float32)[::-1].copy()
        sig = (ts / F32(ntt)).astype(F32)
        sig = (F32(shift) * sig / (F32(1) + F32(shift - 1) * sig)).astype(F32)
        self.sigma_max = float(sig[0])
        self.sigma_min = float(sig[-1])

    def set_timesteps(self, n):
        ntt = self.cfg["num_train_timesteps"]
        shift = self.cfg["shift"]
        ts = np.linspace(self.sigma_max * ntt, self.sigma_min * ntt, n)
        sig = ts / ntt
        sig = shift * sig / (1 + (shift - 1) * sig)
        sig = sig.astype(np.float32)
        self.timesteps = (sig * F32(ntt)).astype(F32)
        self.sigmas = np.concatenate([sig, np.zeros(1, dtype=F32)]).astype(F32)
        self.step_index = None

    def init_noise_sigma(self):
        return F32(1.0)

    def scale_model_input(self, sample, t):
        return sample.astype(F32)

    def step(self, mo, t, sample, noise=None):
        if self.step_index is None:
            idx = np.nonzero(self.timesteps == F32(t))[0]
            self.step_index = int(idx[1] if len(idx) > 1 else idx[0])
        sigma = self.sigmas[self.step_index]
        dt = self.sigmas[self.step_index + 1] - sigma
        prev = sample + dt * mo
        self.step_index += 1
        return prev.astype(F32)


# --- cases ---------------------------------------------------------------------------------

EULER_DEFAULT = dict(kind="euler_discrete", num_train_timesteps=1000, beta_start=0.0001,
                     beta_end=0.02, beta_schedule="linear", prediction_type="epsilon",
                     timestep_spacing="linspace", steps_offset=0)
SD = dict(EULER_DEFAULT, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
LCM_DEFAULT = dict(kind="lcm", num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                   beta_schedule="scaled_linear", original_inference_steps=50,
                   set_alpha_to_one=True, prediction_type="epsilon", timestep_scaling=10.0)
FLOW_DEFAULT = dict(kind="flow_match_euler", num_train_timesteps=1000, shift=1.0)

CASES = [
    ("euler_epsilon_default", EULER_DEFAULT, 25),
    ("euler_epsilon_sd_leading", dict(SD, timestep_spacing="leading", steps_offset=1), 30),
    ("euler_epsilon_sd_trailing", dict(SD, timestep_spacing="trailing"), 4),
    ("euler_v_prediction_trailing", dict(SD, timestep_spacing="trailing",
                                         prediction_type="v_prediction"), 6),
    ("euler_v_prediction_linspace", dict(SD, prediction_type="v_prediction"), 7),
    ("lcm_default_4", LCM_DEFAULT, 4),
    ("lcm_default_8", LCM_DEFAULT, 8),
    ("lcm_v_prediction_3", dict(LCM_DEFAULT, prediction_type="v_prediction"), 3),
    ("flow_match_default", FLOW_DEFAULT, 28),
    ("flow_match_shift3", dict(FLOW_DEFAULT, shift=3.0), 8),
    ("flow_match_shift5", dict(FLOW_DEFAULT, shift=5.0), 4),
]

N_ELEMS = 8


def run_case(name, cfg, n, seed):
    kind = cfg["kind"]
    sch = {"euler_discrete": Euler, "lcm": Lcm, "flow_match_euler": FlowMatch}[kind](cfg)
    sch.set_timesteps(n)
    rng = np.random.default_rng(seed)
    sample = (rng.standard_normal(N_ELEMS) * float(sch.init_noise_sigma())).astype(F32)
    steps = []
    for t in sch.timesteps:
        mo = rng.standard_normal(N_ELEMS).astype(F32)
        noise = rng.standard_normal(N_ELEMS).astype(F32) if kind == "lcm" else None
        scaled = sch.scale_model_input(sample, t)
        prev = sch.step(mo, t, sample, noise)
        steps.append({
            "timestep": float(t),
            "sample": [float(x) for x in sample],
            "model_output": [float(x) for x in mo],
            "noise": None if noise is None else [float(x) for x in noise],
            "scaled_model_input": [float(x) for x in scaled],
            "prev_sample": [float(x) for x in prev],
        })
        sample = prev
    return {
        "name": name,
        "reference": f"NumPy transcription of diffusers {DIFFUSERS_VERSION} "
                     "(scripts/scheduler-goldens.py)",
        "diffusers_version": DIFFUSERS_VERSION,
        "config": cfg,
        "num_inference_steps": n,
        "timesteps": [float(x) for x in sch.timesteps],
        "sigmas": None if sch.sigmas is None else [float(x) for x in sch.sigmas],
        "init_noise_sigma": float(sch.init_noise_sigma()),
        "steps": steps,
    }


SVD_EDM = dict(kind="euler_discrete", num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
               beta_schedule="scaled_linear", prediction_type="v_prediction",
               timestep_spacing="leading", steps_offset=1, use_karras_sigmas=True,
               timestep_type="continuous", sigma_min=0.002, sigma_max=700.0)
LTX_FLOW = dict(kind="flow_match_euler", num_train_timesteps=1000, shift=1.0,
                use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1,
                sigma_schedule="inverse_steps")

# (name, config, steps, latent sequence length for dynamic shifting, refine strength)
DIFFUSERS_CASES = [
    ("euler_edm_karras_svd_25", SVD_EDM, 25, None, 0.6),
    ("euler_edm_karras_svd_4", SVD_EDM, 4, None, 0.5),
    ("flow_match_ltx_dynamic_8", LTX_FLOW, 8, 16 * 16 * 16, 0.5),
    ("flow_match_ltx_dynamic_tiny_4", LTX_FLOW, 4, 3 * 8 * 8, 0.75),
    ("flow_match_dynamic_default_sigmas_6", dict(LTX_FLOW, sigma_schedule="default",
                                                 shift_terminal=None), 6, 4096, 0.34),
]


def diffusers_case(name, cfg, n, seq_len, strength, seed):
    import diffusers
    import torch
    kind = cfg["kind"]
    dcfg = {k: v for k, v in cfg.items() if k not in ("kind", "sigma_schedule")}
    kwargs = {}
    if kind == "euler_discrete":
        make = lambda: diffusers.EulerDiscreteScheduler(**dcfg)
    else:
        make = lambda: diffusers.FlowMatchEulerDiscreteScheduler(**dcfg)
        if cfg.get("sigma_schedule") == "inverse_steps":
            kwargs["sigmas"] = np.linspace(1.0, 1 / n, n)
        if cfg.get("use_dynamic_shifting"):
            m = (cfg["max_shift"] - cfg["base_shift"]) / (cfg["max_image_seq_len"] -
                                                          cfg["base_image_seq_len"])
            kwargs["mu"] = seq_len * m + (cfg["base_shift"] - m * cfg["base_image_seq_len"])
    sch = make()
    sch.set_timesteps(n, **kwargs)
    rng = np.random.default_rng(seed)
    t32 = lambda a: torch.from_numpy(np.asarray(a, dtype=F32))
    init_sigma = float(getattr(sch, "init_noise_sigma", 1.0))
    sample = t32(rng.standard_normal(N_ELEMS)) * init_sigma
    steps = []
    for t in sch.timesteps:
        mo = t32(rng.standard_normal(N_ELEMS))
        scaled = sch.scale_model_input(sample, t) if kind == "euler_discrete" else sample
        prev = sch.step(mo, t, sample).prev_sample
        steps.append({"timestep": float(t), "sample": sample.tolist(),
                      "model_output": mo.tolist(), "noise": None,
                      "scaled_model_input": scaled.tolist(), "prev_sample": prev.tolist()})
        sample = prev
    # Video-to-video: get_timesteps' start and the clean sample noised to it.
    ref = make()
    ref.set_timesteps(n, **kwargs)
    start = n - min(int(n * strength), n)
    clean = t32(rng.standard_normal(N_ELEMS))
    noise = t32(rng.standard_normal(N_ELEMS))
    t0 = ref.timesteps[start:start + 1]
    noised = ref.add_noise(clean, noise, t0) if kind == "euler_discrete" else \
        ref.scale_noise(clean, t0, noise)
    return {
        "name": name,
        "reference": f"diffusers {diffusers.__version__} (scripts/scheduler-goldens.py)",
        "diffusers_version": diffusers.__version__,
        "config": cfg,
        "num_inference_steps": n,
        "image_seq_len": seq_len,
        "timesteps": sch.timesteps.tolist(),
        "sigmas": sch.sigmas.tolist(),
        "init_noise_sigma": init_sigma,
        "steps": steps,
        "refine": {"strength": strength, "start": start, "clean": clean.tolist(),
                   "noise": noise.tolist(), "noised": noised.tolist()},
    }


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "engines/tests/goldens")
    os.makedirs(out, exist_ok=True)
    for i, (name, cfg, n) in enumerate(CASES):
        doc = run_case(name, cfg, n, seed=1000 + i)
        with open(os.path.join(out, f"scheduler_{name}.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    print(f"wrote {len(CASES)} goldens to {out}")
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"skipped the diffusers goldens ({e})")
        return
    for i, (name, cfg, n, seq_len, strength) in enumerate(DIFFUSERS_CASES):
        doc = diffusers_case(name, cfg, n, seq_len, strength, seed=2000 + i)
        with open(os.path.join(out, f"scheduler_{name}.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    print(f"wrote {len(DIFFUSERS_CASES)} goldens computed by diffusers to {out}")


if __name__ == "__main__":
    main()
