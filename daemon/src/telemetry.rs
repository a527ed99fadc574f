//! Health figures from the machine: temperatures (thermal zones), Jetson power rails (INA3221)
//! and GPU load from sysfs, read under a root folder so tests can point at a recorded tree.
//! NVML does not work on Jetson Orin (JetPack 6); on other machines without these files the
//! readings are simply absent.

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

pub fn read(root: &Path) -> Readings {
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
        let got = read(r);
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
        assert_eq!(read(root.path()), Readings::default());
    }
}
