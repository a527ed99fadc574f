//! The model-pack installer: copies, downloads (from a loopback server), repairs upstream
//! files, and refuses anything whose checksum is wrong without leaving a trace.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use kissbooth_engines::manifest::{self, Manifest, ManifestError, Source, sha256_hex};
use kissbooth_engines::onnx_fix;

fn have_models(test: &str) -> bool {
    let ok = common::models_dir().join("pfld-68.onnx").is_file();
    if !ok {
        eprintln!(
            "SKIPPED {test}: shared models not found in {}",
            common::models_dir().display()
        );
    }
    ok
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn installs_the_face_pack_from_a_folder_and_verifies_it() {
    if !have_models("installs_the_face_pack_from_a_folder_and_verifies_it") {
        return;
    }
    let dest = tempfile::tempdir().unwrap();
    let m = Manifest::face_pack();
    let report = manifest::install(&m, &Source::Dir(common::models_dir()), dest.path()).unwrap();
    assert!(report.installed.iter().any(|i| i.file == "pfld-68.onnx"));
    for f in &m.files {
        manifest::check_installed(f, dest.path()).unwrap();
    }
    assert!(
        !files_in(dest.path()).iter().any(|n| n.starts_with('.')),
        "staging folder left behind"
    );
}

#[test]
fn refuses_a_wrong_checksum_and_installs_nothing() {
    if !have_models("refuses_a_wrong_checksum_and_installs_nothing") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    for f in Manifest::face_pack().files {
        let from = common::models_dir().join(&f.file);
        if from.is_file() {
            std::fs::copy(&from, src.path().join(&f.file)).unwrap();
        }
    }
    // one flipped byte in the last required file
    let p = src.path().join("face3d-68.csv");
    let mut bytes = std::fs::read(&p).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let err = manifest::install(
        &Manifest::face_pack(),
        &Source::Dir(src.path().into()),
        dest.path(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ManifestError::Checksum { ref file, .. } if file == "face3d-68.csv"),
        "{err}"
    );
    assert!(
        files_in(dest.path()).is_empty(),
        "left behind: {:?}",
        files_in(dest.path())
    );
}

#[test]
fn repairs_an_upstream_detector_to_the_pack_file() {
    if !have_models("repairs_an_upstream_detector_to_the_pack_file") {
        return;
    }
    let good = std::fs::read(common::models_dir().join("ultraface-rfb-320.onnx")).unwrap();
    let upstream = onnx_fix::list_initializers_as_inputs(&good).unwrap();
    assert_ne!(upstream, good);
    let (fixed, dropped) = onnx_fix::drop_initializer_inputs(&upstream).unwrap();
    assert!(dropped > 50, "dropped {dropped}");
    assert_eq!(
        sha256_hex(&fixed),
        sha256_hex(&good),
        "repair must give the pack file byte for byte"
    );
    // and the installer applies it when the upstream checksum matches
    let mut f = Manifest::face_pack().get("detector").unwrap().clone();
    f.upstream_sha256 = Some(sha256_hex(&upstream));
    let (bytes, repaired) = manifest::verify(&f, upstream).unwrap();
    assert!(repaired);
    assert_eq!(bytes, good);
}

/// Serves `files` over HTTP on loopback for `requests` requests, then stops.
fn serve(files: Vec<(String, Vec<u8>)>, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            match files.iter().find(|(name, _)| *name == path) {
                Some((_, body)) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(body);
                }
                None => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    (base, h)
}

#[test]
fn downloads_from_upstream_repairs_and_verifies() {
    if !have_models("downloads_from_upstream_repairs_and_verifies") {
        return;
    }
    let good = std::fs::read(common::models_dir().join("ultraface-rfb-320.onnx")).unwrap();
    let upstream = onnx_fix::list_initializers_as_inputs(&good).unwrap();
    let lmk = std::fs::read(common::models_dir().join("pfld-68.onnx")).unwrap();
    let (base, server) = serve(
        vec![
            ("det.onnx".into(), upstream.clone()),
            ("pfld.onnx".into(), lmk.clone()),
        ],
        2,
    );
    let text = format!(
        r#"name = "test"
version = "1"
[[file]]
name = "detector"
file = "ultraface-rfb-320.onnx"
sha256 = "{}"
upstream_url = "{base}/det.onnx"
upstream_sha256 = "{}"
fixup = "drop-initializer-inputs"
[[file]]
name = "landmarks"
file = "pfld-68.onnx"
sha256 = "{}"
upstream_url = "{base}/pfld.onnx"
"#,
        sha256_hex(&good),
        sha256_hex(&upstream),
        sha256_hex(&lmk)
    );
    let m = Manifest::parse(&text).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let report = manifest::install(&m, &Source::Upstream, dest.path()).unwrap();
    server.join().unwrap();
    assert_eq!(report.installed.len(), 2);
    assert!(report.installed[0].repaired);
    assert_eq!(
        std::fs::read(dest.path().join("ultraface-rfb-320.onnx")).unwrap(),
        good
    );
}

#[test]
fn a_failed_download_installs_nothing() {
    let (base, server) = serve(vec![("a.bin".into(), b"first file".to_vec())], 2);
    let text = format!(
        r#"name = "test"
version = "1"
[[file]]
name = "a"
file = "a.bin"
sha256 = "{}"
upstream_url = "{base}/a.bin"
[[file]]
name = "b"
file = "b.bin"
sha256 = "{}"
upstream_url = "{base}/missing.bin"
"#,
        sha256_hex(b"first file"),
        sha256_hex(b"second")
    );
    let m = Manifest::parse(&text).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let err = manifest::install(&m, &Source::Upstream, dest.path()).unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(err, ManifestError::Download { ref file, .. } if file == "b.bin"),
        "{err}"
    );
    assert!(
        files_in(dest.path()).is_empty(),
        "left behind: {:?}",
        files_in(dest.path())
    );
}

#[test]
fn converted_files_match_their_fingerprints_and_an_altered_weight_is_refused() {
    if !have_models("converted_files_match_their_fingerprints_and_an_altered_weight_is_refused") {
        return;
    }
    let m = Manifest::face_pack();
    let converted: Vec<_> = m.files.iter().filter(|f| f.convert.is_some()).collect();
    assert_eq!(converted.len(), 6);
    for f in &converted {
        let p = common::models_dir().join(&f.file);
        if !p.is_file() {
            eprintln!("SKIPPED {}: not in the shared models", f.file);
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(
            Some(onnx_fix::conversion_fingerprint(&bytes).unwrap()),
            f.fingerprint,
            "{}",
            f.file
        );
    }
    // one byte of the mesh's weights changed: neither the sha256 nor the fingerprint matches
    let f = m.get("mesh").unwrap();
    let mut bytes = std::fs::read(common::models_dir().join(&f.file)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let err = manifest::verify(f, bytes).unwrap_err();
    assert!(matches!(err, ManifestError::Checksum { .. }), "{err}");
}
