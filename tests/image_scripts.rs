//! The image recipes' shell scripts: every shell script in the repository passes `shellcheck`,
//! and the parts of the appliance configuration that only write files run for real on a
//! temporary root folder: `image-build/jetson/configure-rootfs` (read-only root, data
//! partition, units, RAUC), the first-boot script (device name, guests' Wi-Fi profile and
//! password), and the RAUC slot backend against a stand-in `nvbootctrl` that keeps its slot
//! table in a file.
//!
//! Skipped, loudly, when `shellcheck` (scripts/setup installs it) or `systemctl` is missing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kissbooth::config;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every shell script: `*.sh`, or a file whose first line is a sh/bash shebang.
fn shell_scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            if !["target", ".git", "node_modules", "data", "artifacts"].contains(&name.as_str()) {
                shell_scripts(&p, out);
            }
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        let head = std::fs::read(&p)
            .map(|b| b.into_iter().take(64).collect::<Vec<u8>>())
            .unwrap_or_default();
        let first = String::from_utf8_lossy(&head);
        let first = first.lines().next().unwrap_or_default();
        let shebang = first.starts_with("#!")
            && ["/sh", "/bash", "env sh", "env bash"]
                .iter()
                .any(|s| first.trim_end().ends_with(s));
        if name.ends_with(".sh") || shebang {
            out.push(p);
        }
    }
}

#[test]
fn every_shell_script_passes_shellcheck() {
    if !have("shellcheck") {
        eprintln!("SKIPPED image_scripts: shellcheck not found (scripts/setup installs it)");
        return;
    }
    let mut scripts = Vec::new();
    shell_scripts(&root(), &mut scripts);
    scripts.sort();
    let names: Vec<String> = scripts
        .iter()
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    // The scripts this test is about must be found (a broken walk would pass on nothing).
    for must in [
        "scripts/setup",
        "scripts/test",
        "image-build/build-deb",
        "image-build/build-x86-image",
        "image-build/boot-test-x86",
        "image-build/jetson/configure-rootfs",
        "image-build/jetson/flash",
        "image-build/debian/postinst",
        "image-build/rootfs/usr/lib/kissbooth/appliance.sh",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} not found: {names:?}"
        );
    }
    // Run from the repository root, so .shellcheckrc (source paths) applies.
    let out = Command::new("shellcheck")
        .arg("--format=gcc")
        .args(&names)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck findings in {} scripts:\n{}",
        names.len(),
        text(&out)
    );
}

/// A root folder shaped like a rootfs with the kissbooth package installed.
fn fake_root(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    for d in [
        "etc/kissbooth",
        "lib/systemd/system",
        "boot/extlinux",
        "var/lib/kissbooth/models",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::copy(
        root().join("image-build/debian/kissbooth.toml"),
        r.join("etc/kissbooth/kissbooth.toml"),
    )
    .unwrap();
    for u in ["kissbooth.service", "kissbooth-kiosk.service"] {
        std::fs::copy(
            root().join("systemd").join(u),
            r.join("lib/systemd/system").join(u),
        )
        .unwrap();
    }
    std::fs::write(
        r.join("lib/systemd/system/graphical.target"),
        "[Unit]\nDescription=Graphical Interface\n",
    )
    .unwrap();
    std::fs::write(
        r.join("lib/systemd/system/NetworkManager.service"),
        "[Unit]\nDescription=Network Manager\n[Service]\nExecStart=/usr/sbin/NetworkManager\n\
         [Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    std::fs::write(
        r.join("boot/extlinux/extlinux.conf"),
        "TIMEOUT 30\nDEFAULT primary\nLABEL primary\n      LINUX /boot/Image\n      \
         APPEND ${cbootargs} root=/dev/nvme0n1p1 rw rootwait rootfstype=ext4\n",
    )
    .unwrap();
    std::fs::write(r.join("var/lib/kissbooth/models/pack.txt"), "a model").unwrap();
    r
}

fn configure(rootfs: &Path, data: &Path, extra: &[&str]) -> Output {
    Command::new(root().join("image-build/jetson/configure-rootfs"))
        .arg("--root")
        .arg(rootfs)
        .arg("--data")
        .arg(data)
        .args(extra)
        .output()
        .unwrap()
}

/// The first-boot script on a folder: the data partition content is put where the bind mounts
/// would put it (the configured root has empty mount points).
fn first_boot(rootfs: &Path, data: &Path) -> Output {
    for b in [
        "var/lib/kissbooth",
        "etc/kissbooth",
        "etc/NetworkManager/system-connections",
    ] {
        let mount = rootfs.join(b);
        std::fs::remove_dir_all(&mount).unwrap();
        std::os::unix::fs::symlink(data.join(b), &mount).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/machine-id"),
        "4f1c2a9be07d4c55a1b2c3d4e5f60718\n",
    )
    .unwrap();
    Command::new(root().join("image-build/rootfs/usr/lib/kissbooth/firstboot"))
        .env("KISSBOOTH_ROOT", rootfs)
        .output()
        .unwrap()
}

fn keyfile_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut cur = "";
    for l in text.lines() {
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            cur = s;
        } else if cur == section
            && let Some((k, v)) = l.split_once('=')
            && k == key
        {
            // GLib key files escape the backslash.
            return Some(v.replace("\\\\", "\\"));
        }
    }
    None
}

fn load_config(path: &Path) -> config::Config {
    let text = std::fs::read_to_string(path).unwrap();
    let cfg: config::Config = toml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}\n{text}", path.display()));
    cfg.validate().expect("the written config validates");
    cfg
}

#[test]
fn configure_rootfs_makes_a_read_only_appliance_and_first_boot_writes_the_hotspot() {
    if !have("systemctl") {
        eprintln!("SKIPPED image_scripts: systemctl not found (configure-rootfs enables units)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = fake_root(tmp.path());
    let data = tmp.path().join("data");
    let out = configure(&rootfs, &data, &[]);
    assert!(out.status.success(), "configure-rootfs: {}", text(&out));

    // Read-only root, the data partition, the bind mounts, RAM for logs and temporary files.
    let fstab = std::fs::read_to_string(rootfs.join("etc/fstab")).unwrap();
    let rows: Vec<Vec<&str>> = fstab
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let row = |mp: &str| {
        rows.iter()
            .find(|r| r[1] == mp)
            .unwrap_or_else(|| panic!("no {mp} in fstab:\n{fstab}"))
            .clone()
    };
    assert!(rows.iter().all(|r| r.len() == 6), "fstab rows: {fstab}");
    assert_eq!(row("/")[0], "/dev/root");
    assert!(row("/")[3].split(',').any(|o| o == "ro"), "{fstab}");
    assert_eq!(row("/data")[0], "LABEL=kissbooth-data");
    assert!(row("/data")[3].contains("nofail"), "{fstab}");
    for b in [
        "/var/lib/kissbooth",
        "/etc/kissbooth",
        "/etc/NetworkManager/system-connections",
    ] {
        let r = row(b);
        assert_eq!(r[0], format!("/data{b}"));
        assert!(r[3].split(',').any(|o| o == "bind"), "{fstab}");
        assert!(rootfs.join(&b[1..]).is_dir(), "mount point {b}");
        assert!(data.join(&b[1..]).is_dir(), "{b} on the data partition");
    }
    for t in ["/tmp", "/var/tmp", "/var/log"] {
        assert_eq!(row(t)[2], "tmpfs");
    }
    let journald =
        std::fs::read_to_string(rootfs.join("etc/systemd/journald.conf.d/kissbooth-volatile.conf"))
            .unwrap();
    assert!(journald.contains("Storage=volatile"));
    assert_eq!(
        std::fs::read(rootfs.join("etc/machine-id")).unwrap(),
        b"",
        "machine-id emptied: each booth gets its own"
    );
    assert!(
        rootfs.join("var/lib/systemd/linger").is_dir(),
        "logind's state folder exists in the read-only root"
    );
    let ext = std::fs::read_to_string(rootfs.join("boot/extlinux/extlinux.conf")).unwrap();
    let append = ext.lines().find(|l| l.contains("APPEND")).unwrap();
    assert!(
        append.split_whitespace().any(|w| w == "ro")
            && !append.split_whitespace().any(|w| w == "rw"),
        "{append}"
    );

    // The data moved onto the data partition (the package's data folder and the config).
    assert_eq!(
        std::fs::read_to_string(data.join("var/lib/kissbooth/models/pack.txt")).unwrap(),
        "a model"
    );
    assert!(
        std::fs::read_dir(rootfs.join("var/lib/kissbooth"))
            .unwrap()
            .next()
            .is_none(),
        "the root keeps an empty mount point"
    );
    assert!(data.join("etc/kissbooth/kissbooth.toml").is_file());
    assert!(
        rootfs
            .join("usr/share/kissbooth/factory/kissbooth/kissbooth.toml")
            .is_file(),
        "factory copy of the config"
    );
    let nm_mode = std::fs::metadata(data.join("etc/NetworkManager/system-connections"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(nm_mode & 0o777, 0o700);

    // Units: enabled as symlinks in the root, the kiosk in graphical.target, tty1 masked.
    let sys = rootfs.join("etc/systemd/system");
    for (wants, unit) in [
        ("multi-user.target.wants", "kissbooth.service"),
        ("multi-user.target.wants", "kissbooth-firstboot.service"),
        ("multi-user.target.wants", "NetworkManager.service"),
        ("multi-user.target.wants", "kissbooth-mark-good.service"),
        ("graphical.target.wants", "kissbooth-kiosk.service"),
    ] {
        let link = sys.join(wants).join(unit);
        assert!(
            link.symlink_metadata().is_ok_and(|m| m.is_symlink()),
            "{unit} not enabled in {wants}"
        );
    }
    assert_eq!(
        std::fs::read_link(sys.join("default.target"))
            .unwrap()
            .file_name()
            .unwrap(),
        "graphical.target"
    );
    for masked in ["getty@tty1.service", "systemd-firstboot.service"] {
        assert_eq!(
            std::fs::read_link(sys.join(masked)).unwrap(),
            Path::new("/dev/null"),
            "{masked} is masked"
        );
    }
    let unit = std::fs::read_to_string(sys.join("kissbooth-firstboot.service")).unwrap();
    assert!(unit.contains("Before=kissbooth.service"));

    // RAUC: two slots on L4T's A/B partitions, the nvbootctrl backend.
    let rauc = std::fs::read_to_string(rootfs.join("etc/rauc/system.conf")).unwrap();
    for needle in [
        "compatible=kissbooth-jetson-orin",
        "bootloader=custom",
        "bootloader-custom-backend=/usr/lib/kissbooth/rauc-nvbootctrl",
        "device=/dev/disk/by-partlabel/APP\n",
        "device=/dev/disk/by-partlabel/APP_b\n",
        "bootname=A",
        "bootname=B",
    ] {
        assert!(
            rauc.contains(needle),
            "system.conf lacks {needle:?}:\n{rauc}"
        );
    }
    assert!(!rauc.contains('@'), "unfilled template field:\n{rauc}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no --rauc-keyring"),
        "the missing keyring is reported"
    );

    // First boot: device name from the machine id, the hotspot with a random WPA2 password,
    // the same network in the daemon's [wifi] section.
    let out = first_boot(&rootfs, &data);
    assert!(out.status.success(), "firstboot: {}", text(&out));
    let name = std::fs::read_to_string(data.join("var/lib/kissbooth/device-name")).unwrap();
    assert_eq!(name.trim(), "kissbooth-4f1c2a");
    assert!(data.join("var/lib/kissbooth/.firstboot-done").is_file());
    let profile = data.join("etc/NetworkManager/system-connections/kissbooth-hotspot.nmconnection");
    let mode = std::fs::metadata(&profile).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "NetworkManager ignores a readable keyfile"
    );
    let nm = std::fs::read_to_string(&profile).unwrap();
    assert_eq!(keyfile_value(&nm, "wifi", "mode").as_deref(), Some("ap"));
    assert_eq!(
        keyfile_value(&nm, "wifi", "ssid").as_deref(),
        Some("kissbooth-4f1c2a")
    );
    assert_eq!(
        keyfile_value(&nm, "wifi-security", "key-mgmt").as_deref(),
        Some("wpa-psk")
    );
    assert_eq!(
        keyfile_value(&nm, "ipv4", "method").as_deref(),
        Some("shared")
    );
    let psk = keyfile_value(&nm, "wifi-security", "psk").unwrap();
    assert_eq!(psk.len(), 12, "{psk}");
    assert!(psk.chars().all(|c| c.is_ascii_alphanumeric()), "{psk}");
    assert!(!nm.contains('@'), "unfilled template field:\n{nm}");
    let cfg = load_config(&data.join("etc/kissbooth/kissbooth.toml"));
    assert_eq!(cfg.wifi.ssid, "kissbooth-4f1c2a");
    assert_eq!(cfg.wifi.password, psk);
    assert_eq!(cfg.wifi.security, "WPA");

    // Second boot: nothing is drawn again.
    let out = first_boot_again(&rootfs);
    assert!(out.status.success(), "second boot: {}", text(&out));
    let nm2 = std::fs::read_to_string(&profile).unwrap();
    assert_eq!(
        keyfile_value(&nm2, "wifi-security", "psk").unwrap(),
        psk,
        "the password stays across boots"
    );
}

fn first_boot_again(rootfs: &Path) -> Output {
    Command::new(root().join("image-build/rootfs/usr/lib/kissbooth/firstboot"))
        .env("KISSBOOTH_ROOT", rootfs)
        .output()
        .unwrap()
}

#[test]
fn a_wifi_password_chosen_at_build_time_is_used_and_a_bad_one_is_refused() {
    if !have("systemctl") {
        eprintln!("SKIPPED image_scripts: systemctl not found (configure-rootfs enables units)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();

    // Too short for WPA2: refused before anything is written.
    let rootfs = fake_root(tmp.path());
    let before = std::fs::read_to_string(rootfs.join("etc/kissbooth/kissbooth.toml")).unwrap();
    let data = tmp.path().join("data-bad");
    let out = configure(&rootfs, &data, &["--wifi-password", "short"]);
    assert!(!out.status.success(), "a 5-character password was accepted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("8 to 63"),
        "{}",
        text(&out)
    );
    assert!(!rootfs.join("etc/fstab").exists(), "nothing is configured");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/kissbooth/kissbooth.toml")).unwrap(),
        before
    );

    // Chosen name and password (with characters TOML and sed treat specially).
    let psk = r#"p&ss "word"\1/x"#;
    let data = tmp.path().join("data");
    let out = configure(
        &rootfs,
        &data,
        &["--wifi-password", psk, "--wifi-ssid", "Wedding Booth"],
    );
    assert!(out.status.success(), "configure-rootfs: {}", text(&out));
    let cfg = load_config(&data.join("etc/kissbooth/kissbooth.toml"));
    assert_eq!(cfg.wifi.password, psk);
    assert_eq!(cfg.wifi.ssid, "Wedding Booth");
    // The rest of the file is kept (the other sections and their comments).
    let text_after = std::fs::read_to_string(data.join("etc/kissbooth/kissbooth.toml")).unwrap();
    assert!(text_after.contains("[render]") && text_after.contains("#retention_hours"));

    let out = first_boot(&rootfs, &data);
    assert!(out.status.success(), "firstboot: {}", text(&out));
    let nm = std::fs::read_to_string(
        data.join("etc/NetworkManager/system-connections/kissbooth-hotspot.nmconnection"),
    )
    .unwrap();
    assert_eq!(
        keyfile_value(&nm, "wifi-security", "psk").as_deref(),
        Some(psk)
    );
    assert_eq!(
        keyfile_value(&nm, "wifi", "ssid").as_deref(),
        Some("Wedding Booth")
    );
}

/// A stand-in for NVIDIA's `nvbootctrl -t rootfs`: the slot table lives in a file.
const FAKE_NVBOOTCTRL: &str = r#"#!/bin/bash
set -euo pipefail
S=$NVSTATE
[ "$1" = -t ] && [ "$2" = rootfs ] || { echo "usage: nvbootctrl -t rootfs CMD" >&2; exit 2; }
. "$S"
case "$3" in
get-current-slot) echo "$current" ;;
dump-slots-info)
    ab=(A B)
    echo "Current rootfs slot: ${ab[$current]}"
    echo "Active rootfs slot: ${ab[$active]}"
    echo "num_slots: 2"
    echo "slot: 0,             retry_count: 3,             status: $s0"
    echo "slot: 1,             retry_count: 3,             status: $s1" ;;
set-active-boot-slot) active=$4 ;;
set-slot-as-unbootable) eval "s$4=unbootable" ;;
mark-boot-successful) eval "s$current=normal" ;;
*) echo "nvbootctrl: unknown $3" >&2; exit 2 ;;
esac
printf 'current=%s\nactive=%s\ns0=%s\ns1=%s\n' "$current" "$active" "$s0" "$s1" > "$S"
echo "$3" >> "$S.log"
"#;

#[test]
fn the_rauc_backend_maps_slots_a_and_b_onto_nvbootctrl() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("nvbootctrl");
    std::fs::write(&fake, FAKE_NVBOOTCTRL).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = tmp.path().join("state");
    std::fs::write(&state, "current=0\nactive=0\ns0=normal\ns1=normal\n").unwrap();
    let backend = |args: &[&str]| {
        let out = Command::new(root().join("image-build/rootfs/usr/lib/kissbooth/rauc-nvbootctrl"))
            .args(args)
            .env("NVBOOTCTRL", &fake)
            .env("NVSTATE", &state)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            out,
        )
    };
    assert_eq!(backend(&["get-current"]).1, "A");
    assert_eq!(backend(&["get-primary"]).1, "A");
    // An update was written to B: B becomes the primary, we still run on A.
    assert!(backend(&["set-primary", "B"]).0);
    assert_eq!(backend(&["get-primary"]).1, "B");
    assert_eq!(backend(&["get-current"]).1, "A");
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("active=1")
    );
    // B fails its checks: marked bad, which the slot table shows.
    assert!(backend(&["set-state", "B", "bad"]).0);
    assert_eq!(backend(&["get-state", "B"]).1, "bad");
    assert_eq!(backend(&["get-state", "A"]).1, "good");
    // Marking the slot we run on good reports the boot successful; another slot is left alone.
    std::fs::write(&state, "current=1\nactive=1\ns0=normal\ns1=unbootable\n").unwrap();
    let _ = std::fs::remove_file(tmp.path().join("state.log"));
    assert!(backend(&["set-state", "B", "good"]).0);
    assert_eq!(backend(&["get-state", "B"]).1, "good");
    assert!(backend(&["set-state", "A", "good"]).0);
    let log = std::fs::read_to_string(tmp.path().join("state.log")).unwrap();
    assert_eq!(
        log.matches("mark-boot-successful").count(),
        1,
        "only the running slot is marked: {log}"
    );
    // Nonsense is refused with a message, never mapped to a slot.
    let table = std::fs::read_to_string(&state).unwrap();
    let (ok, _, out) = backend(&["set-primary", "C"]);
    assert!(!ok);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown slot"));
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        table,
        "a refused command leaves the slot table alone"
    );
    let (ok, _, _) = backend(&["reboot-now"]);
    assert!(!ok);
}

#[test]
fn make_bundle_signs_the_rootfs_and_rauc_verifies_it() {
    if !have("rauc") || !have("mksquashfs") || !have("openssl") {
        eprintln!(
            "SKIPPED image_scripts: rauc, mksquashfs or openssl not found (scripts/setup installs them)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cert = |name: &str| {
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .arg("-keyout")
            .arg(t.join(format!("{name}.key")))
            .arg("-out")
            .arg(t.join(format!("{name}.pem")))
            .args(["-subj", &format!("/CN={name}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl: {}", text(&out));
    };
    cert("booth-release");
    cert("someone-else");
    let rfs = t.join("rootfs");
    std::fs::create_dir_all(rfs.join("etc/rauc")).unwrap();
    std::fs::create_dir_all(rfs.join("var/lib/dpkg")).unwrap();
    let conf = std::fs::read_to_string(root().join("image-build/jetson/rauc/system.conf.in"))
        .unwrap()
        .replace("@COMPATIBLE@", "kissbooth-jetson-orin");
    std::fs::write(rfs.join("etc/rauc/system.conf"), conf).unwrap();
    std::fs::write(
        rfs.join("var/lib/dpkg/status"),
        "Package: adduser\nVersion: 3.134\n\nPackage: kissbooth\nStatus: install ok installed\n\
         Version: 0.1.0-1\n",
    )
    .unwrap();
    std::fs::write(rfs.join("marker"), "slot content").unwrap();
    let bundle = t.join("update.raucb");
    let out = Command::new(root().join("image-build/jetson/make-bundle"))
        .arg("--cert")
        .arg(t.join("booth-release.pem"))
        .arg("--key")
        .arg(t.join("booth-release.key"))
        .arg("--keyring")
        .arg(t.join("booth-release.pem"))
        .arg("--rootfs")
        .arg(&rfs)
        .arg("--out")
        .arg(&bundle)
        .env("TMPDIR", t)
        .output()
        .unwrap();
    assert!(out.status.success(), "make-bundle: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some(bundle.to_str().unwrap()),
        "{stdout}"
    );

    let info = |keyring: &str| {
        Command::new("rauc")
            .args(["info", "--output-format=shell", "--keyring"])
            .arg(t.join(keyring))
            .arg(&bundle)
            .env("TMPDIR", t)
            .output()
            .unwrap()
    };
    let out = info("booth-release.pem");
    assert!(out.status.success(), "rauc info: {}", text(&out));
    let shell = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "RAUC_MF_COMPATIBLE='kissbooth-jetson-orin'",
        "RAUC_MF_VERSION='0.1.0-1'",
        "RAUC_MF_DESCRIPTION='Kissbooth 0.1.0-1 on L4T ",
        "RAUC_MF_IMAGES=1",
        "RAUC_IMAGE_CLASS_0='rootfs'",
        "RAUC_IMAGE_NAME_0='rootfs.ext4'",
    ] {
        assert!(shell.contains(needle), "rauc info lacks {needle}:\n{shell}");
    }
    // Signed by someone else's key: a booth refuses it.
    let out = info("someone-else.pem");
    assert!(
        !out.status.success(),
        "a foreign keyring verified the bundle"
    );
}

#[test]
fn flash_dry_run_adds_the_data_partition_and_prints_the_initrd_flash_command() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let l4t = work.join("Linux_for_Tegra");
    std::fs::create_dir_all(l4t.join("rootfs/etc/rauc")).unwrap();
    std::fs::create_dir_all(l4t.join("tools/kernel_flash")).unwrap();
    std::fs::write(l4t.join("rootfs/etc/rauc/system.conf"), "[system]\n").unwrap();
    std::fs::write(work.join("data.img"), b"data partition").unwrap();
    // The shape of NVIDIA's layout file: partitions of one device, the secondary GPT last.
    std::fs::write(
        l4t.join("tools/kernel_flash/flash_l4t_t234_nvme_rootfs_ab.xml"),
        "<partition_layout version=\"01.00.0000\">\n    <device type=\"external\" instance=\"0\">\n        \
         <partition name=\"master_boot_record\" type=\"protective_master_boot_record\">\n        </partition>\n        \
         <partition name=\"APP\" id=\"1\" type=\"data\">\n        </partition>\n        \
         <partition name=\"APP_b\" id=\"2\" type=\"data\">\n        </partition>\n        \
         <partition name=\"secondary_gpt\" type=\"secondary_gpt\">\n        </partition>\n    \
         </device>\n</partition_layout>\n",
    )
    .unwrap();
    let out = Command::new(root().join("image-build/jetson/flash"))
        .arg("--work")
        .arg(work)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(out.status.success(), "flash --dry-run: {}", text(&out));
    let xml = std::fs::read_to_string(l4t.join("tools/kernel_flash/kissbooth_nvme_rootfs_ab.xml"))
        .unwrap();
    let data = xml
        .find("<partition name=\"data\"")
        .expect("data partition");
    let app_b = xml.find("<partition name=\"APP_b\"").unwrap();
    let gpt = xml.find("<partition name=\"secondary_gpt\"").unwrap();
    assert!(
        app_b < data && data < gpt,
        "data between APP_b and the GPT:\n{xml}"
    );
    assert!(xml.contains("<filename> kissbooth-data.img </filename>"));
    assert_eq!(
        std::fs::read(l4t.join("tools/kernel_flash/kissbooth-data.img")).unwrap(),
        b"data partition"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let cmd = stdout
        .lines()
        .find(|l| l.contains("l4t_initrd_flash.sh"))
        .unwrap_or_else(|| panic!("no flash command:\n{stdout}"));
    for needle in [
        "ROOTFS_AB=1",
        "--external-device nvme0n1p1",
        "-c tools/kernel_flash/kissbooth_nvme_rootfs_ab.xml",
        "flash_t234_qspi.xml",
        "--network usb0",
        "jetson-orin-nano-devkit external",
    ] {
        assert!(cmd.contains(needle), "{needle} not in: {cmd}");
    }

    // Without a configured rootfs it refuses, saying which step is missing.
    std::fs::remove_file(l4t.join("rootfs/etc/rauc/system.conf")).unwrap();
    let out = Command::new(root().join("image-build/jetson/flash"))
        .arg("--work")
        .arg(work)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not configured"));
}

#[test]
fn fetch_l4t_refuses_a_release_without_pinned_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(root().join("image-build/jetson/fetch-l4t"))
        .arg("--cache")
        .arg(tmp.path())
        .output()
        .unwrap();
    // No network (status 4) or no pinned sha256 (status 5): either way a clear refusal, and no
    // unchecked file is left in the cache.
    let code = out.status.code();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        code == Some(4) || code == Some(5),
        "fetch-l4t: {}",
        text(&out)
    );
    assert!(
        stderr.contains("developer.nvidia.com") || stderr.contains("no sha256 pinned"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tbz2") || n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "files left: {left:?}");
}
