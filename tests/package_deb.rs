//! The Debian package: `image-build/build-deb --binary` packs the already-built debug binary (no
//! release build, so this takes seconds), then `dpkg-deb` shows what a booth would get: the
//! files and their modes, the control fields, the conffile, the maintainer scripts, and a default
//! configuration that is exactly the daemon's defaults.
//!
//! Skipped, loudly, when `dpkg-deb` or `cargo-deb` is missing (`cargo install cargo-deb --locked`).

use std::path::{Path, PathBuf};
use std::process::Command;

use kissbooth::config;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Builds the package into `dir`; `None` (after saying why) when the tools are missing.
fn build_deb(dir: &Path) -> Option<PathBuf> {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("SKIPPED package_deb: dpkg-deb not found (apt-get install dpkg)");
        return None;
    }
    let out = Command::new(root().join("image-build/build-deb"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_kissbooth"))
        .arg("--fast")
        .arg("--no-install")
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run image-build/build-deb");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED package_deb: {}", stderr.trim());
        return None;
    }
    assert!(
        out.status.success(),
        "build-deb failed: {}\n{stderr}",
        out.status
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let deb = PathBuf::from(stdout.lines().last().expect("build-deb printed nothing"));
    assert!(
        deb.is_file(),
        "build-deb's last line is not a file: {deb:?}"
    );
    Some(deb)
}

/// `dpkg-deb -c` lines as (mode, owner, path without the leading ".").
fn contents(deb: &Path) -> Vec<(String, String, String)> {
    run(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f[5..].join(" ");
            (
                f[0].to_string(),
                f[1].to_string(),
                path.trim_start_matches('.').to_string(),
            )
        })
        .collect()
}

/// cargo-deb writes numeric owners (`0/0`), dpkg-deb --root-owner-group names (`root/root`).
fn is_root(owner: &str) -> bool {
    owner == "0/0" || owner == "root/root"
}

fn field(deb: &Path, name: &str) -> String {
    run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
        .trim()
        .to_string()
}

#[test]
fn the_deb_holds_the_booth_with_its_units_config_and_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(deb) = build_deb(tmp.path()) else {
        return;
    };

    let files = contents(&deb);
    for (path, mode) in [
        ("/usr/bin/kissbooth", "-rwxr-xr-x"),
        ("/lib/systemd/system/kissbooth.service", "-rw-r--r--"),
        ("/lib/systemd/system/kissbooth-kiosk.service", "-rw-r--r--"),
        ("/etc/kissbooth/kissbooth.toml", "-rw-r--r--"),
        ("/usr/share/doc/kissbooth/README.md", "-rw-r--r--"),
        ("/usr/share/doc/kissbooth/changelog.Debian.gz", "-rw-r--r--"),
    ] {
        let found = files.iter().find(|(_, _, p)| p == path);
        let Some((m, owner, _)) = found else {
            panic!("{path} is not in the package: {files:#?}");
        };
        assert_eq!(m, mode, "mode of {path}");
        assert!(is_root(owner), "owner of {path}: {owner}");
    }
    assert!(
        files.iter().all(|(_, o, _)| is_root(o)),
        "every file belongs to root: {files:#?}"
    );
    assert!(
        !files
            .iter()
            .any(|(_, _, p)| p.starts_with("/var/lib/kissbooth/")),
        "the data folder's content is never shipped"
    );

    assert_eq!(field(&deb, "Package"), "kissbooth");
    let version = field(&deb, "Version");
    assert!(
        version.starts_with(env!("CARGO_PKG_VERSION")),
        "Version {version} is not the crate's {}",
        env!("CARGO_PKG_VERSION")
    );
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(field(&deb, "Architecture"), arch.trim());
    let depends = field(&deb, "Depends");
    for p in [
        "libc6",
        "libgstreamer1.0-0",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-ugly",
        "gstreamer1.0-plugins-bad",
        // The event's title in portrait clips is set in DejaVu Sans Bold.
        "fonts-dejavu-core",
        "adduser",
    ] {
        assert!(
            depends
                .split(',')
                .any(|d| d.trim().split(' ').next() == Some(p)),
            "Depends lacks {p}: {depends}"
        );
    }
    let recommends = field(&deb, "Recommends");
    for p in ["cage", "chromium", "curl"] {
        assert!(recommends.contains(p), "Recommends lacks {p}: {recommends}");
    }

    let conffiles = run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles"));
    assert!(
        conffiles
            .lines()
            .any(|l| l.trim() == "/etc/kissbooth/kissbooth.toml"),
        "conffiles: {conffiles:?}"
    );
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for script in ["postinst", "prerm", "postrm"] {
        assert!(
            info.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // "2929 bytes,  82 lines  *  postinst  #!/bin/sh": "*" marks it executable.
                f.contains(&script) && f.contains(&"*") && f.last() == Some(&"#!/bin/sh")
            }),
            "{script} is missing, not executable or not a shell script:\n{info}"
        );
    }
    let postinst = run(Command::new("dpkg-deb").arg("-I").arg(&deb).arg("postinst"));
    for needle in ["adduser --system", "/run/systemd/system", "models install"] {
        assert!(postinst.contains(needle), "postinst lacks {needle:?}");
    }
    for never in ["curl ", "wget "] {
        assert!(
            !postinst.contains(never),
            "postinst must not download ({never:?})"
        );
    }
    assert!(
        !postinst.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("kissbooth ") && l.contains("models install")
        }),
        "postinst must only print how to install the model pack, never run the install"
    );
    let postrm = run(Command::new("dpkg-deb").arg("-I").arg(&deb).arg("postrm"));
    assert!(postrm.contains("purge)") && postrm.contains("rm -rf \"$DATA\""));

    // The Debian changelog (image-build/debian/changelog) is shipped gzipped, and its newest
    // entry is this very version: a version bump without a changelog entry fails here.
    let tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .output()
        .expect("dpkg-deb --fsys-tarfile");
    assert!(tar.status.success(), "dpkg-deb --fsys-tarfile failed");
    let tar_path = tmp.path().join("data.tar");
    std::fs::write(&tar_path, &tar.stdout).unwrap();
    let gz = Command::new("tar")
        .arg("-xOf")
        .arg(&tar_path)
        .arg("./usr/share/doc/kissbooth/changelog.Debian.gz")
        .output()
        .expect("tar");
    assert!(gz.status.success(), "changelog.Debian.gz not extractable");
    assert_eq!(
        &gz.stdout[..2],
        b"\x1f\x8b",
        "changelog.Debian.gz is not gzip"
    );
    let mut gunzip = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    {
        use std::io::Write;
        gunzip.stdin.take().unwrap().write_all(&gz.stdout).unwrap();
    }
    let out = gunzip.wait_with_output().unwrap();
    assert!(out.status.success(), "gzip -d failed");
    let changelog = String::from_utf8(out.stdout).expect("changelog is UTF-8");
    let first = changelog.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("kissbooth ({version}) ")),
        "the changelog's newest entry is not {version}: {first:?}"
    );
    assert!(
        changelog.contains("\n -- ") && changelog.contains("+0000"),
        "the changelog entry has no trailer line:\n{changelog}"
    );
}

#[test]
fn the_packaged_config_is_commented_and_lists_exactly_the_defaults() {
    let text = std::fs::read_to_string(root().join("image-build/debian/kissbooth.toml")).unwrap();
    // As shipped (everything commented): the defaults.
    let shipped: config::Config = toml::from_str(&text).expect("the shipped config parses");
    let defaults = config::Config::default();
    let as_value = |c: &config::Config| toml::Value::try_from(c).unwrap();
    assert_eq!(as_value(&shipped), as_value(&defaults));

    // Every key uncommented: still exactly the defaults (no typo, no stale value, no unknown key).
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let all: config::Config = toml::from_str(&uncommented)
        .unwrap_or_else(|e| panic!("uncommented config does not parse: {e}\n{uncommented}"));
    assert_eq!(as_value(&all), as_value(&defaults));
    all.validate().unwrap();

    // Every default key appears in the file.
    let mut keys = Vec::new();
    fn walk(prefix: &str, v: &toml::Value, keys: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_table() {
                    walk(&name, v, keys);
                } else {
                    keys.push(name);
                }
            }
        }
    }
    walk("", &as_value(&defaults), &mut keys);
    let value: toml::Value = toml::from_str(&uncommented).unwrap();
    for k in keys {
        let mut v = &value;
        for part in k.split('.') {
            v = v
                .get(part)
                .unwrap_or_else(|| panic!("{k} is not in the packaged config"));
        }
    }
}
