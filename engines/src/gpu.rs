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

/// Floats per triangle in [`WarpTables::jobs`]: the destination triangle (6), the affine map
/// from a destination pixel centre to the source (6), the rows it spans (2), and the weight of
/// the alternate source, 0..=256 (1).
pub const JOB_FLOATS: usize = 15;

/// One frame of the morph warp, flattened for the device (built by the morph generator's
/// warper): triangles far first, and per band of `band` rows the triangles crossing it.
#[derive(Debug, Clone, Default)]
pub struct WarpTables {
    /// [`JOB_FLOATS`] per triangle.
    pub jobs: Vec<f32>,
    /// Per band, where its triangles start in `band_jobs` (one more entry than bands).
    pub band_start: Vec<u32>,
    pub band_jobs: Vec<u32>,
    /// Rows per band.
    pub band: usize,
    /// Canvas width the triangles were prepared for.
    pub width: usize,
}

impl WarpTables {
    /// The number of bands when the tables are whole (every job index within `jobs`, band
    /// offsets rising and ending at `band_jobs`' length, whole jobs, bands of at least one
    /// row), which the device kernel relies on; `None` otherwise.
    pub fn bands(&self) -> Option<usize> {
        let whole = self.jobs.len().is_multiple_of(JOB_FLOATS)
            && self.band > 0
            && self
                .band_jobs
                .iter()
                .all(|&j| (j as usize * JOB_FLOATS) < self.jobs.len())
            && self
                .band_start
                .last()
                .is_none_or(|&n| n as usize == self.band_jobs.len())
            && self.band_start.windows(2).all(|w| w[0] <= w[1]);
        whole.then(|| self.band_start.len().saturating_sub(1))
    }
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

// The morph warp, one thread per canvas pixel: the last (nearest) triangle of the pixel's band
// whose row span holds the pixel centre is sampled, bilinear in fixed point (1/256 pixel),
// exactly as the CPU warp does for triangles not marked sharp (compiled without fused
// multiply-add so the arithmetic matches). The CPU warp samples the face's triangles
// bicubically; here they are bilinear, a little softer.
__device__ unsigned int lerp8(unsigned int a, unsigned int b, unsigned int t) {
    return (a * (256u - t) + b * t + 128u) >> 8;
}

__device__ void sample(const unsigned char* s, int w, int h, float x, float y,
                       unsigned int out[4]) {
    unsigned int fx = (unsigned int)(fminf(fmaxf(x - 0.5f, 0.0f), (float)(w - 1)) * 256.0f + 0.5f);
    unsigned int fy = (unsigned int)(fminf(fmaxf(y - 0.5f, 0.0f), (float)(h - 1)) * 256.0f + 0.5f);
    unsigned int x0 = fx >> 8, y0 = fy >> 8, ax = fx & 255u, ay = fy & 255u;
    unsigned int dx = (x0 + 1 < (unsigned int)w) ? 4u : 0u;
    unsigned int dy = (y0 + 1 < (unsigned int)h) ? (unsigned int)w * 4u : 0u;
    unsigned int i = (y0 * (unsigned int)w + x0) * 4u;
    for (int c = 0; c < 4; c++) {
        unsigned int top = lerp8(s[i + c], s[i + dx + c], ax);
        unsigned int bot = lerp8(s[i + dy + c], s[i + dy + dx + c], ax);
        out[c] = lerp8(top, bot, ay);
    }
}

__device__ bool span(const float* t, float y, float* lo_out, float* hi_out) {
    float lo = __int_as_float(0x7f800000), hi = -__int_as_float(0x7f800000);
    for (int e = 0; e < 3; e++) {
        const float* p = t + 2 * e;
        const float* q = t + 2 * ((e + 1) % 3);
        const float* a = p[1] <= q[1] ? p : q;
        const float* b = p[1] <= q[1] ? q : p;
        if (y < a[1] || y > b[1]) continue;
        if (b[1] - a[1] > 1e-6f) {
            float x = a[0] + (y - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            lo = fminf(lo, x);
            hi = fmaxf(hi, x);
        } else {
            lo = fminf(fminf(lo, a[0]), b[0]);
            hi = fmaxf(fmaxf(hi, a[0]), b[0]);
        }
    }
    *lo_out = lo;
    *hi_out = hi;
    return lo <= hi;
}

extern "C" __global__ void warp(const float* jobs, const unsigned int* band_start,
                                const unsigned int* band_jobs, int n_bands, int band,
                                const unsigned char* src, int sw, int sh,
                                const unsigned char* alt, int aw, int ah,
                                int x_lo, int x_hi, int y_lo, int y_hi, int width,
                                unsigned char* rgba, unsigned char* covered) {
    int x = x_lo + blockIdx.x * blockDim.x + threadIdx.x;
    int y = y_lo + blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= x_hi || y >= y_hi) return;
    int b = y / band;
    if (b >= n_bands) return;
    float xc = (float)x + 0.5f, yc = (float)y + 0.5f, xf = (float)x;
    int hit = -1;
    for (unsigned int k = band_start[b]; k < band_start[b + 1]; k++) {
        int j = (int)band_jobs[k];
        const float* J = jobs + 15 * j;
        if (yc < J[12] || yc > J[13]) continue;
        float xl, xr;
        if (!span(J, yc, &xl, &xr)) continue;
        float first = fmaxf(ceilf(xl - 0.5f - 1e-3f), 0.0f);
        float last = fmaxf(floorf(xr - 0.5f + 1e-3f) + 1.0f, 0.0f);
        if (xf >= first && xf < last) hit = j;
    }
    if (hit < 0) return;
    const float* J = jobs + 15 * hit;
    float sx = J[6] * xc + J[7] * yc + J[8];
    float sy = J[9] * xc + J[10] * yc + J[11];
    unsigned int t = (unsigned int)J[14];
    unsigned int p[4];
    sample(src, sw, sh, sx, sy, p);
    if (t != 0) {
        unsigned int q[4];
        sample(alt, aw, ah, sx, sy, q);
        for (int c = 0; c < 4; c++) p[c] = lerp8(p[c], q[c], t);
    }
    size_t o = (size_t)y * (size_t)width + (size_t)x;
    for (int c = 0; c < 4; c++) rgba[o * 4 + c] = (unsigned char)p[c];
    covered[o] = 1;
}
"#;

/// The columns the warp may draw: `xs` within the canvas, the triangles' canvas and `source`.
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
fn warp_columns(
    t: &WarpTables,
    source_width: usize,
    width: usize,
    xs: &std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    let limit = t.width.min(source_width).min(width);
    xs.start.min(limit)..xs.end.min(limit)
}

#[cfg(feature = "gpu")]
mod cuda {
    use std::sync::Arc;

    use cudarc::driver::{
        CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
    };

    use super::WarpTables;
    use crate::generate::morph::mesh::Source;

    /// An open CUDA device with the kernels loaded.
    pub struct Gpu {
        stream: Arc<CudaStream>,
        preprocess: CudaFunction,
        warp: CudaFunction,
    }

    /// A warp source image held on the device: uploaded once per session, read every frame.
    pub struct DeviceImage {
        rgba: CudaSlice<u8>,
        width: usize,
        height: usize,
    }

    impl std::fmt::Debug for DeviceImage {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "DeviceImage({}x{})", self.width, self.height)
        }
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
                // No fused multiply-add: the warp must round as the CPU does.
                let opts = cudarc::nvrtc::CompileOptions {
                    fmad: Some(false),
                    ..Default::default()
                };
                let ptx = cudarc::nvrtc::compile_ptx_with_opts(super::KERNELS, opts)
                    .map_err(|e| format!("NVRTC: {e}"))?;
                let module = ctx.load_module(ptx).map_err(|e| format!("module: {e}"))?;
                let preprocess = module
                    .load_function("preprocess")
                    .map_err(|e| format!("kernel: {e}"))?;
                let warp = module
                    .load_function("warp")
                    .map_err(|e| format!("kernel: {e}"))?;
                Ok(Gpu {
                    stream: ctx.default_stream(),
                    preprocess,
                    warp,
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

        /// Copies a warp source to the device, for [`Gpu::warp`].
        pub fn upload(&self, img: &Source) -> Result<DeviceImage, String> {
            if img.width == 0 || img.height == 0 || img.rgba.len() != img.width * img.height * 4 {
                return Err("source size".into());
            }
            let rgba = self
                .stream
                .clone_htod(&img.rgba)
                .map_err(|e| e.to_string())?;
            Ok(DeviceImage {
                rgba,
                width: img.width,
                height: img.height,
            })
        }

        /// As [`Warper::draw_rect`](crate::generate::morph::mesh::Warper::draw_rect), on the
        /// device: rows `ys`, columns `xs` of the canvas (`width` pixels a row) warped from
        /// `source` (and `alt` where a triangle asks; both from [`Gpu::upload`]) into `rgba`
        /// and `covered`. Pixels no triangle covers are left as they were.
        #[allow(clippy::too_many_arguments)]
        pub fn warp(
            &self,
            t: &WarpTables,
            source: &DeviceImage,
            alt: &DeviceImage,
            ys: std::ops::Range<usize>,
            xs: std::ops::Range<usize>,
            width: usize,
            rgba: &mut [[u8; 4]],
            covered: &mut [bool],
        ) -> Result<(), String> {
            let height = rgba.len().checked_div(width).unwrap_or(0);
            if rgba.len() != width * height || covered.len() != rgba.len() {
                return Err("canvas size".into());
            }
            let n_bands = t.bands().ok_or("malformed warp tables")?;
            let xs = super::warp_columns(t, source.width, width, &xs);
            let ys = ys.start.min(height)..ys.end.min(height);
            if xs.is_empty() || ys.is_empty() || t.band_jobs.is_empty() {
                return Ok(());
            }
            let e = |e: cudarc::driver::DriverError| e.to_string();
            let s = &self.stream;
            let d_jobs = s.clone_htod(&t.jobs).map_err(e)?;
            let d_start = s.clone_htod(&t.band_start).map_err(e)?;
            let d_band = s.clone_htod(&t.band_jobs).map_err(e)?;
            let mut d_rgba = s.clone_htod(rgba.as_flattened()).map_err(e)?;
            let cov: Vec<u8> = covered.iter().map(|&c| u8::from(c)).collect();
            let mut d_cov = s.clone_htod(&cov).map_err(e)?;
            let cfg = LaunchConfig {
                grid_dim: (
                    xs.len().div_ceil(16) as u32,
                    ys.len().div_ceil(16) as u32,
                    1,
                ),
                block_dim: (16, 16, 1),
                shared_mem_bytes: 0,
            };
            let i = |v: usize| v as i32;
            let args = [
                i(n_bands),
                i(t.band),
                i(source.width),
                i(source.height),
                i(alt.width),
                i(alt.height),
                i(xs.start),
                i(xs.end),
                i(ys.start),
                i(ys.end),
                i(width),
            ];
            let mut launch = s.launch_builder(&self.warp);
            launch.arg(&d_jobs).arg(&d_start).arg(&d_band);
            launch.arg(&args[0]).arg(&args[1]);
            launch.arg(&source.rgba).arg(&args[2]).arg(&args[3]);
            launch.arg(&alt.rgba).arg(&args[4]).arg(&args[5]);
            for a in &args[6..] {
                launch.arg(a);
            }
            launch.arg(&mut d_rgba).arg(&mut d_cov);
            // SAFETY: the arguments match the kernel's signature; the tables were checked
            // above (every job index within `jobs`, band offsets within `band_jobs`), the
            // images hold width*height*4 bytes, and only pixels inside the canvas are written.
            unsafe { launch.launch(cfg) }.map_err(e)?;
            let out = s.clone_dtoh(&d_rgba).map_err(e)?;
            let cov = s.clone_dtoh(&d_cov).map_err(e)?;
            rgba.as_flattened_mut().copy_from_slice(&out);
            for (c, v) in covered.iter_mut().zip(cov) {
                *c = v != 0;
            }
            Ok(())
        }
    }
}

#[cfg(feature = "gpu")]
pub use cuda::{DeviceImage, Gpu};

// The morph generator (and its device) moves to the render thread.
#[cfg(feature = "gpu")]
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Gpu>();
};

/// Without the `gpu` feature there is no device path.
#[cfg(not(feature = "gpu"))]
#[derive(Debug)]
pub struct Gpu;

/// Without the `gpu` feature there are no device images.
#[cfg(not(feature = "gpu"))]
#[derive(Debug)]
pub struct DeviceImage;

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

    /// Never called: [`Gpu::open`] always fails without the feature.
    pub fn upload(
        &self,
        _img: &crate::generate::morph::mesh::Source,
    ) -> Result<DeviceImage, String> {
        Err("built without the `gpu` feature".into())
    }

    /// Never called: [`Gpu::open`] always fails without the feature.
    #[allow(clippy::too_many_arguments)]
    pub fn warp(
        &self,
        _t: &WarpTables,
        _source: &DeviceImage,
        _alt: &DeviceImage,
        _ys: std::ops::Range<usize>,
        _xs: std::ops::Range<usize>,
        _width: usize,
        _rgba: &mut [[u8; 4]],
        _covered: &mut [bool],
    ) -> Result<(), String> {
        Err("built without the `gpu` feature".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::morph::mesh::{Mesh, Source};

    fn image(w: usize, h: usize) -> Vec<u8> {
        (0..w * h * 3).map(|i| ((i * 37) % 256) as u8).collect()
    }

    #[test]
    fn only_whole_warp_tables_count_their_bands() {
        let whole = WarpTables {
            jobs: vec![0.0; 2 * JOB_FLOATS],
            band_start: vec![0, 1, 3],
            band_jobs: vec![0, 0, 1],
            band: 16,
            width: 64,
        };
        assert_eq!(whole.bands(), Some(2));
        let broken = [
            WarpTables {
                jobs: vec![0.0; 2 * JOB_FLOATS - 1],
                ..whole.clone()
            },
            WarpTables {
                band: 0,
                ..whole.clone()
            },
            WarpTables {
                band_jobs: vec![0, 0, 2],
                ..whole.clone()
            },
            WarpTables {
                band_start: vec![0, 1, 2],
                ..whole.clone()
            },
            WarpTables {
                band_start: vec![0, 2, 1, 3],
                band_jobs: vec![0, 0, 1],
                ..whole.clone()
            },
        ];
        for t in broken {
            assert_eq!(t.bands(), None, "{t:?}");
        }
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

    /// A seeded random morph frame: a jittered grid over a `w x h` canvas, triangulated, its
    /// vertices moved, random depths and alternate-source triangles, random source images.
    fn random_warp(
        w: usize,
        h: usize,
        seed: u64,
    ) -> (crate::generate::morph::mesh::Warper, Source, Source) {
        let mut state = seed;
        let mut rnd = move || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut source = Vec::new();
        for gy in 0..=7 {
            for gx in 0..=9 {
                let (x, y) = (gx as f32 * w as f32 / 9.0, gy as f32 * h as f32 / 7.0);
                let inner = gx > 0 && gx < 9 && gy > 0 && gy < 7;
                let j = if inner { 6.0 } else { 0.0 };
                source.push([x + j * (rnd() - 0.5), y + j * (rnd() - 0.5)]);
            }
        }
        let pts: Vec<delaunator::Point> = source
            .iter()
            .map(|p| delaunator::Point {
                x: p[0] as f64,
                y: p[1] as f64,
            })
            .collect();
        let triangles: Vec<[u32; 3]> = delaunator::triangulate(&pts)
            .triangles
            .chunks_exact(3)
            .map(|t| [t[0] as u32, t[1] as u32, t[2] as u32])
            .collect();
        let n = triangles.len();
        let mesh = Mesh {
            source: source.clone(),
            triangles,
            bias: (0..n).map(|_| rnd() - 0.5).collect(),
            alt: (0..n).map(|_| rnd() < 0.3).collect(),
            sharp: vec![false; n],
            empty: vec![false; n],
        };
        // Moved by up to 14 px (folds included), the border too, so some pixels stay uncovered.
        let dest: Vec<[f32; 2]> = source
            .iter()
            .map(|p| [p[0] + 14.0 * (rnd() - 0.5), p[1] + 14.0 * (rnd() - 0.5)])
            .collect();
        let depth: Vec<f32> = (0..source.len()).map(|_| rnd() * 10.0).collect();
        let mut warper = crate::generate::morph::mesh::Warper::default();
        warper.prepare(&mesh, &dest, &depth, 0.37, (w, h));
        let mut image = || Source {
            rgba: (0..w * h * 4).map(|_| (rnd() * 256.0) as u8).collect(),
            width: w,
            height: h,
        };
        let (a, b) = (image(), image());
        (warper, a, b)
    }

    #[test]
    fn warp_tables_index_every_band_triangle() {
        let (w, h) = (203, 157);
        let (warper, _, _) = random_warp(w, h, 7);
        let t = warper.tables();
        assert_eq!(t.band_start.len(), h.div_ceil(t.band) + 1);
        assert_eq!(*t.band_start.last().unwrap() as usize, t.band_jobs.len());
        assert!(!t.band_jobs.is_empty());
        assert!(t.jobs.len().is_multiple_of(JOB_FLOATS));
        for &j in &t.band_jobs {
            let job = &t.jobs[j as usize * JOB_FLOATS..(j as usize + 1) * JOB_FLOATS];
            assert!(job[12] <= job[13], "rows of triangle {j}");
            assert!(matches!(job[14] as u32, 0 | 95), "alt weight {}", job[14]);
        }
        assert_eq!(warp_columns(&t, w, w, &(5..500)), 5..w);
    }

    #[test]
    fn gpu_warp_matches_the_cpu_warp_within_1() {
        let gpu = match Gpu::open() {
            Ok(g) => g,
            Err(why) => {
                eprintln!("SKIPPED gpu_warp_matches_the_cpu_warp_within_1: {why}");
                return;
            }
        };
        for (w, h, seed, xs) in [(203, 157, 1u64, 5..190), (512, 512, 2, 0..512)] {
            let (warper, source, alt) = random_warp(w, h, seed);
            let tables = warper.tables();
            let start: Vec<[u8; 4]> = (0..w * h).map(|i| [(i % 251) as u8; 4]).collect();
            let (mut cpu, mut cpu_cov) = (start.clone(), vec![false; w * h]);
            warper.draw_rect(&source, &alt, 3..h, xs.clone(), w, &mut cpu, &mut cpu_cov);
            let (mut dev, mut dev_cov) = (start, vec![false; w * h]);
            let (source, alt) = (
                gpu.upload(&source).expect("upload"),
                gpu.upload(&alt).expect("upload"),
            );
            gpu.warp(&tables, &source, &alt, 3..h, xs, w, &mut dev, &mut dev_cov)
                .expect("device warp");
            let max = cpu
                .as_flattened()
                .iter()
                .zip(dev.as_flattened())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap_or(0);
            let covered = cpu_cov.iter().filter(|c| **c).count();
            let differ = cpu_cov.iter().zip(&dev_cov).filter(|(a, b)| a != b).count();
            eprintln!(
                "gpu warp {w}x{h}: max abs error {max}, {covered} pixels covered, {differ} differ in coverage"
            );
            assert!(covered > w * h / 2, "the warp covers most of the canvas");
            assert!(covered < w * h, "some pixels stay uncovered");
            assert_eq!(differ, 0, "coverage");
            assert!(max <= 1, "max abs error {max}");
        }
    }
}
