//! CUDA kernels for the hot pre-processing, with cudarc (the CUDA driver and NVRTC are loaded at
//! run time, so the crate builds without the CUDA toolkit; feature `gpu`).
//!
//! - `preprocess`: bilinear resize (half-pixel centres, edges clamped) of an RGB8 HWC image,
//!   normalised to [-1, 1], laid out NCHW: the input of face analysis and of the VAE encoder.
//!   [`preprocess_cpu`] is the same arithmetic on the CPU, and the reference the GPU is tested
//!   against (max abs error 1e-4).
//!
//! [`Gpu::open`] is the only way in: without the feature, or without a CUDA driver
//! (`libcuda.so`), it returns a clear reason ("CUDA driver not found: using the CPU path") and
//! never panics (cudarc's dynamic loading panics on a missing library, so its presence is checked
//! first).

/// Bilinear resize + normalise + HWC→NCHW on the CPU. `src` is `sw × sh` RGB8; `out` receives
/// `3 × dh × dw` floats.
pub fn preprocess_cpu(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize, out: &mut [f32]) {
    assert_eq!(src.len(), sw * sh * 3, "source size");
    assert_eq!(out.len(), 3 * dw * dh, "destination size");
    let plane = dw * dh;
    for y in 0..dh {
        let (y0, y1, ay) = tap(y, sh, dh);
        for x in 0..dw {
            let (x0, x1, ax) = tap(x, sw, dw);
            for c in 0..3 {
                let p = |yy: usize, xx: usize| f32::from(src[(yy * sw + xx) * 3 + c]);
                let top = (1.0 - ax) * p(y0, x0) + ax * p(y0, x1);
                let bottom = (1.0 - ax) * p(y1, x0) + ax * p(y1, x1);
                let v = (1.0 - ay) * top + ay * bottom;
                out[c * plane + y * dw + x] = v / 127.5 - 1.0;
            }
        }
    }
}

/// Source taps and weight of destination index `i` (half-pixel centres, clamped).
fn tap(i: usize, src: usize, dst: usize) -> (usize, usize, f32) {
    let f = ((i as f32 + 0.5) * src as f32 / dst as f32 - 0.5).clamp(0.0, (src - 1) as f32);
    let i0 = f.floor() as usize;
    (i0, (i0 + 1).min(src - 1), f - i0 as f32)
}

/// The CUDA source of the kernels (compiled by NVRTC at run time).
pub const KERNELS: &str = r#"
extern "C" __global__ void preprocess(const unsigned char* src, int sw, int sh,
                                      float* dst, int dw, int dh) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dw || y >= dh) return;
    float fx = fminf(fmaxf((x + 0.5f) * (float)sw / (float)dw - 0.5f, 0.0f), (float)(sw - 1));
    float fy = fminf(fmaxf((y + 0.5f) * (float)sh / (float)dh - 0.5f, 0.0f), (float)(sh - 1));
    int x0 = (int)floorf(fx), y0 = (int)floorf(fy);
    int x1 = min(x0 + 1, sw - 1), y1 = min(y0 + 1, sh - 1);
    float ax = fx - x0, ay = fy - y0;
    int plane = dw * dh;
    for (int c = 0; c < 3; c++) {
        float top = (1.0f - ax) * src[(y0 * sw + x0) * 3 + c] + ax * src[(y0 * sw + x1) * 3 + c];
        float bot = (1.0f - ax) * src[(y1 * sw + x0) * 3 + c] + ax * src[(y1 * sw + x1) * 3 + c];
        float v = (1.0f - ay) * top + ay * bot;
        dst[c * plane + y * dw + x] = v / 127.5f - 1.0f;
    }
}
"#;

#[cfg(feature = "gpu")]
mod cuda {
    use std::sync::Arc;

    use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};

    /// An open CUDA device with the kernels loaded.
    pub struct Gpu {
        stream: Arc<CudaStream>,
        preprocess: CudaFunction,
    }

    impl std::fmt::Debug for Gpu {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Gpu")
        }
    }

    impl Gpu {
        /// The first CUDA device, or why the CPU path is used.
        pub fn open() -> Result<Gpu, String> {
            // SAFETY: only tries to dlopen the library, without keeping it.
            if !unsafe { cudarc::driver::sys::is_culib_present() } {
                return Err("CUDA driver not found (libcuda.so): using the CPU path".into());
            }
            // SAFETY: as above, for NVRTC.
            if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
                return Err("NVRTC not found (libnvrtc.so): using the CPU path".into());
            }
            let opened = std::panic::catch_unwind(|| -> Result<Gpu, String> {
                cudarc::driver::result::init().map_err(|e| format!("CUDA init: {e}"))?;
                let ctx = CudaContext::new(0).map_err(|e| format!("CUDA device 0: {e}"))?;
                let ptx = cudarc::nvrtc::compile_ptx(super::KERNELS)
                    .map_err(|e| format!("NVRTC: {e}"))?;
                let module = ctx.load_module(ptx).map_err(|e| format!("module: {e}"))?;
                let preprocess = module
                    .load_function("preprocess")
                    .map_err(|e| format!("kernel: {e}"))?;
                Ok(Gpu {
                    stream: ctx.default_stream(),
                    preprocess,
                })
            });
            match opened {
                Ok(r) => r.map_err(|e| format!("{e}: using the CPU path")),
                Err(_) => Err("the CUDA libraries could not be loaded: using the CPU path".into()),
            }
        }

        /// As [`super::preprocess_cpu`], on the device.
        pub fn preprocess(
            &self,
            src: &[u8],
            sw: usize,
            sh: usize,
            dw: usize,
            dh: usize,
        ) -> Result<Vec<f32>, String> {
            if src.len() != sw * sh * 3 {
                return Err("source size".into());
            }
            let e = |e: cudarc::driver::DriverError| e.to_string();
            let s = &self.stream;
            let d_src = s.clone_htod(src).map_err(e)?;
            let mut d_dst = s.alloc_zeros::<f32>(3 * dw * dh).map_err(e)?;
            let cfg = LaunchConfig {
                grid_dim: (dw.div_ceil(16) as u32, dh.div_ceil(16) as u32, 1),
                block_dim: (16, 16, 1),
                shared_mem_bytes: 0,
            };
            let (sw, sh, dw, dh) = (sw as i32, sh as i32, dw as i32, dh as i32);
            let mut launch = s.launch_builder(&self.preprocess);
            launch
                .arg(&d_src)
                .arg(&sw)
                .arg(&sh)
                .arg(&mut d_dst)
                .arg(&dw)
                .arg(&dh);
            // SAFETY: the arguments match the kernel's signature; the buffers hold
            // sw*sh*3 bytes and 3*dw*dh floats.
            unsafe { launch.launch(cfg) }.map_err(e)?;
            s.clone_dtoh(&d_dst).map_err(e)
        }
    }
}

#[cfg(feature = "gpu")]
pub use cuda::Gpu;

/// Without the `gpu` feature there is no device path.
#[cfg(not(feature = "gpu"))]
#[derive(Debug)]
pub struct Gpu;

#[cfg(not(feature = "gpu"))]
impl Gpu {
    pub fn open() -> Result<Gpu, String> {
        Err("built without the `gpu` feature: using the CPU path".into())
    }

    /// Never called: [`Gpu::open`] always fails without the feature.
    pub fn preprocess(
        &self,
        _src: &[u8],
        _sw: usize,
        _sh: usize,
        _dw: usize,
        _dh: usize,
    ) -> Result<Vec<f32>, String> {
        Err("built without the `gpu` feature".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: usize, h: usize) -> Vec<u8> {
        (0..w * h * 3).map(|i| ((i * 37) % 256) as u8).collect()
    }

    #[test]
    fn cpu_path_at_the_same_size_only_normalises_and_transposes() {
        let src = image(5, 4);
        let mut out = vec![0.0; 3 * 5 * 4];
        preprocess_cpu(&src, 5, 4, 5, 4, &mut out);
        for y in 0..4 {
            for x in 0..5 {
                for c in 0..3 {
                    let want = f32::from(src[(y * 5 + x) * 3 + c]) / 127.5 - 1.0;
                    assert!((out[c * 20 + y * 5 + x] - want).abs() < 1e-6);
                }
            }
        }
    }

    #[test]
    fn cpu_path_halving_averages_pixel_pairs() {
        // 4x2 → 2x1: each output is the mean of a 2x2 block.
        let src: Vec<u8> = (0..4 * 2 * 3).map(|i| (i * 10) as u8).collect();
        let mut out = vec![0.0; 3 * 2];
        preprocess_cpu(&src, 4, 2, 2, 1, &mut out);
        let px = |x: usize, y: usize, c: usize| f32::from(src[(y * 4 + x) * 3 + c]);
        let want = (px(0, 0, 0) + px(1, 0, 0) + px(0, 1, 0) + px(1, 1, 0)) / 4.0 / 127.5 - 1.0;
        assert!((out[0] - want).abs() < 1e-6, "{} vs {want}", out[0]);
    }

    #[test]
    fn gpu_matches_the_cpu_path_within_1e_4() {
        let gpu = match Gpu::open() {
            Ok(g) => g,
            Err(why) => {
                eprintln!("SKIPPED gpu_matches_the_cpu_path_within_1e_4: {why}");
                return;
            }
        };
        #[cfg(feature = "gpu")]
        for (sw, sh, dw, dh) in [(640, 480, 224, 224), (97, 61, 320, 240), (8, 8, 8, 8)] {
            let src = image(sw, sh);
            let mut cpu = vec![0.0; 3 * dw * dh];
            preprocess_cpu(&src, sw, sh, dw, dh, &mut cpu);
            let dev = gpu.preprocess(&src, sw, sh, dw, dh).unwrap();
            let max = cpu
                .iter()
                .zip(&dev)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("gpu preprocess {sw}x{sh} -> {dw}x{dh}: max abs error {max:e}");
            assert!(max <= 1e-4, "max abs error {max}");
        }
        let _ = gpu;
    }
}
