//! Health figures from the machine. On a discrete NVIDIA GPU they come from NVML
//! (libnvidia-ml, loaded at run time): GPU temperature, power and utilisation. Otherwise (NVML
//! does not work on Jetson Orin, JetPack 6) from sysfs: temperatures (thermal zones), Jetson
//! power rails (INA3221) and GPU load, read under a root folder so tests can point at a
//! recorded tree. With neither, only the CPU runs and the readings are simply absent.
//! Thermal zones under the root are read with every source: they are the SoC's and the board's.

use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Readings {
    /// (zone type, degrees Celsius)
    pub temperatures: Vec<(String, f64)>,
    /// (rail label, watts)
    pub power: Vec<(String, f64)>,
    /// GPU load 0-100, when the platform reports it.
    pub gpu_load: Option<f64>,
}

/// Where the readings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Nvml,
    Sysfs,
    CpuOnly,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Nvml => "nvml",
            Source::Sysfs => "sysfs",
            Source::CpuOnly => "cpu-only",
        }
    }
}

/// The machine's telemetry, opened once: NVML when it initialises, else sysfs, else CPU only.
pub struct Telemetry {
    root: PathBuf,
    nvml: Option<nvml_wrapper::Nvml>,
    source: Source,
    /// Why this source: what was found, and why the ones before it were not used.
    reason: String,
}

impl Telemetry {
    /// Picks the source. `use_nvml` false skips NVML (configuration).
    pub fn open(root: &Path, use_nvml: bool) -> Telemetry {
        let (nvml, nvml_why) = if use_nvml {
            match open_nvml() {
                Ok((nvml, what)) => (Some(nvml), what),
                Err(why) => (None, why),
            }
        } else {
            (
                None,
                "NVML off in the configuration (thermal.nvml = false)".to_string(),
            )
        };
        let sysfs = read_sysfs(root);
        let (source, reason) = if nvml.is_some() {
            (Source::Nvml, nvml_why)
        } else if sysfs != Readings::default() {
            let mut found = Vec::new();
            if !sysfs.temperatures.is_empty() {
                found.push(format!("{} thermal zone(s)", sysfs.temperatures.len()));
            }
            if !sysfs.power.is_empty() {
                found.push(format!("{} INA3221 rail(s)", sysfs.power.len()));
            }
            if sysfs.gpu_load.is_some() {
                found.push("GPU load".to_string());
            }
            (
                Source::Sysfs,
                format!("{} under {}; {nvml_why}", found.join(", "), root.display()),
            )
        } else {
            (
                Source::CpuOnly,
                format!(
                    "no thermal zones, power rails or GPU load under {}; {nvml_why}",
                    root.display()
                ),
            )
        };
        Telemetry {
            root: root.to_path_buf(),
            nvml,
            source,
            reason,
        }
    }

    pub fn source(&self) -> Source {
        self.source
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// One line for the log and `doctor`: the source and why.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.source.name(), self.reason())
    }

    pub fn read(&self) -> Readings {
        let mut r = read_sysfs(&self.root);
        if let Some(nvml) = &self.nvml {
            let n = read_nvml(nvml);
            r.temperatures.extend(n.temperatures);
            r.power.extend(n.power);
            if n.gpu_load.is_some() {
                r.gpu_load = n.gpu_load;
            }
        }
        r
    }
}

/// NVML with at least one GPU, and what was found; else why not.
fn open_nvml() -> Result<(nvml_wrapper::Nvml, String), String> {
    // Driver installs ship libnvidia-ml.so.1 (the default); the unversioned name comes with
    // development files. The first error is the one that explains.
    let nvml = nvml_wrapper::Nvml::init()
        .or_else(|e| {
            nvml_wrapper::Nvml::builder()
                .lib_path(std::ffi::OsStr::new("libnvidia-ml.so"))
                .init()
                .map_err(|_| e)
        })
        .map_err(|e| format!("NVML unavailable: {e}"))?;
    let count = nvml
        .device_count()
        .map_err(|e| format!("NVML loaded but lists no GPU: {e}"))?;
    if count == 0 {
        return Err("NVML loaded but lists no GPU".to_string());
    }
    let names: Vec<String> = (0..count)
        .filter_map(|i| nvml.device_by_index(i).ok()?.name().ok())
        .collect();
    let what = format!("NVML: {count} GPU(s): {}", names.join(", "));
    Ok((nvml, what))
}

fn read_nvml(nvml: &nvml_wrapper::Nvml) -> Readings {
    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    let mut r = Readings::default();
    let count = nvml.device_count().unwrap_or(0);
    let mut loads = Vec::new();
    for i in 0..count {
        let Ok(d) = nvml.device_by_index(i) else {
            continue;
        };
        if let Ok(t) = d.temperature(TemperatureSensor::Gpu) {
            r.temperatures.push((format!("gpu{i}"), f64::from(t)));
        }
        if let Ok(mw) = d.power_usage() {
            r.power.push((format!("gpu{i}"), f64::from(mw) / 1000.0));
        }
        if let Ok(u) = d.utilization_rates() {
            loads.push(f64::from(u.gpu));
        }
    }
    if !loads.is_empty() {
        r.gpu_load = Some(loads.iter().sum::<f64>() / loads.len() as f64);
    }
    r
}

impl Readings {
    /// The hottest temperature read, °C.
    pub fn hottest(&self) -> Option<f64> {
        self.temperatures
            .iter()
            .map(|(_, t)| *t)
            .fold(None, |m, t| Some(m.map_or(t, |m: f64| m.max(t))))
    }
}

pub fn read_sysfs(root: &Path) -> Readings {
    Readings {
        temperatures: thermal(root),
        power: ina3221(root),
        gpu_load: gpu_load(root),
    }
}

fn text(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn sorted_dirs(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn thermal(root: &Path) -> Vec<(String, f64)> {
    sorted_dirs(&root.join("sys/class/thermal"), "thermal_zone")
        .into_iter()
        .filter_map(|z| {
            let kind = text(&z.join("type"))?;
            let milli: f64 = text(&z.join("temp"))?.parse().ok()?;
            // -40 °C and below is how Jetson reports a disabled zone.
            (milli > -40_000.0).then(|| (kind, milli / 1000.0))
        })
        .collect()
}

/// INA3221 rails: `in{N}_label`, `in{N}_input` (mV), `curr{N}_input` (mA).
fn ina3221(root: &Path) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for dev in sorted_dirs(&root.join("sys/bus/i2c/drivers/ina3221"), "") {
        for hw in sorted_dirs(&dev.join("hwmon"), "hwmon") {
            for n in 1..=4 {
                let Some(label) = text(&hw.join(format!("in{n}_label"))) else {
                    continue;
                };
                let mv: Option<f64> =
                    text(&hw.join(format!("in{n}_input"))).and_then(|v| v.parse().ok());
                let ma: Option<f64> =
                    text(&hw.join(format!("curr{n}_input"))).and_then(|v| v.parse().ok());
                if let (Some(mv), Some(ma)) = (mv, ma) {
                    out.push((label, mv * ma / 1e6));
                }
            }
        }
    }
    out
}

fn gpu_load(root: &Path) -> Option<f64> {
    for p in [
        "sys/devices/platform/gpu.0/load",
        "sys/devices/platform/17000000.ga10b/load",
        "sys/devices/gpu.0/load",
    ] {
        if let Some(v) = text(&root.join(p)).and_then(|v| v.parse::<f64>().ok()) {
            // Jetson reports tenths of a percent.
            return Some(v / 10.0);
        }
    }
    None
}

/// Prometheus text for the readings.
pub fn prometheus(r: &Readings, out: &mut String) {
    use std::fmt::Write;
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let _ = writeln!(
        out,
        "# HELP kissbooth_temperature_celsius Thermal zone temperature.\n# TYPE kissbooth_temperature_celsius gauge"
    );
    for (k, v) in &r.temperatures {
        let _ = writeln!(
            out,
            "kissbooth_temperature_celsius{{zone=\"{}\"}} {v}",
            esc(k)
        );
    }
    let _ = writeln!(
        out,
        "# HELP kissbooth_power_watts Power rail draw.\n# TYPE kissbooth_power_watts gauge"
    );
    for (k, v) in &r.power {
        let _ = writeln!(out, "kissbooth_power_watts{{rail=\"{}\"}} {v}", esc(k));
    }
    if let Some(g) = r.gpu_load {
        let _ = writeln!(
            out,
            "# HELP kissbooth_gpu_load_percent GPU load.\n# TYPE kissbooth_gpu_load_percent gauge\nkissbooth_gpu_load_percent {g}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, value: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{value}\n")).unwrap();
    }

    /// A tree laid out like a Jetson Orin's (JetPack 6) sysfs.
    #[test]
    fn reads_a_recorded_jetson_sysfs_tree() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        put(r, "sys/class/thermal/thermal_zone0/type", "cpu-thermal");
        put(r, "sys/class/thermal/thermal_zone0/temp", "48312");
        put(r, "sys/class/thermal/thermal_zone1/type", "gpu-thermal");
        put(r, "sys/class/thermal/thermal_zone1/temp", "45500");
        put(r, "sys/class/thermal/thermal_zone2/type", "cv0-thermal");
        put(r, "sys/class/thermal/thermal_zone2/temp", "-256000");
        let hw = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3";
        put(r, &format!("{hw}/in1_label"), "VDD_IN");
        put(r, &format!("{hw}/in1_input"), "5072");
        put(r, &format!("{hw}/curr1_input"), "1480");
        put(r, &format!("{hw}/in2_label"), "VDD_CPU_GPU_CV");
        put(r, &format!("{hw}/in2_input"), "5064");
        put(r, &format!("{hw}/curr2_input"), "400");
        put(r, "sys/devices/platform/17000000.ga10b/load", "372");
        let got = read_sysfs(r);
        assert_eq!(
            got.temperatures,
            vec![("cpu-thermal".into(), 48.312), ("gpu-thermal".into(), 45.5)]
        );
        assert_eq!(got.power.len(), 2);
        assert!((got.power[0].1 - 7.506).abs() < 0.01, "{:?}", got.power);
        assert_eq!(got.gpu_load, Some(37.2));
        let mut text = String::new();
        prometheus(&got, &mut text);
        assert!(text.contains("kissbooth_power_watts{rail=\"VDD_IN\"} 7.50"));
        assert!(text.contains("kissbooth_gpu_load_percent 37.2"));
    }

    #[test]
    fn a_machine_without_those_files_reads_nothing() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(read_sysfs(root.path()), Readings::default());
    }

    /// This machine has no NVIDIA driver: the fallback is taken, and says why.
    #[test]
    fn without_nvml_the_sysfs_tree_is_used_and_the_reason_given() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let t = Telemetry::open(r, true);
        if t.source() == Source::Nvml {
            eprintln!("NVML present here: {}", t.describe());
            return;
        }
        assert_eq!(t.source(), Source::CpuOnly, "{}", t.describe());
        assert!(t.reason().contains("NVML unavailable"), "{}", t.reason());
        assert!(t.reason().contains("no thermal zones"), "{}", t.reason());
        assert_eq!(t.read(), Readings::default());

        put(r, "sys/class/thermal/thermal_zone0/type", "cpu-thermal");
        put(r, "sys/class/thermal/thermal_zone0/temp", "61000");
        put(r, "sys/class/thermal/thermal_zone1/type", "gpu-thermal");
        put(r, "sys/class/thermal/thermal_zone1/temp", "66500");
        let t = Telemetry::open(r, true);
        assert_eq!(t.source(), Source::Sysfs);
        assert!(
            t.describe().starts_with("sysfs (2 thermal zone(s) under"),
            "{}",
            t.describe()
        );
        assert!(t.reason().contains("NVML unavailable"), "{}", t.reason());
        assert_eq!(t.read().hottest(), Some(66.5));

        let t = Telemetry::open(r, false);
        assert!(
            t.reason().contains("thermal.nvml = false"),
            "{}",
            t.reason()
        );
    }
}
