//! `kissbooth faces` as a user runs it: JSON lines on good images, one-line errors and a
//! non-zero exit on bad ones, never a panic.

mod support;

use std::io::Write;
use std::path::Path;

use support::*;

fn assert_one_line_error(o: &std::process::Output, what: &str, needle: &str) {
    assert!(!o.status.success(), "{what}: exit status 0");
    let lines = stderr_lines(o);
    let text = lines.join("\n");
    assert!(
        !text.contains("panicked") && !text.contains("internal error"),
        "{what}: {text}"
    );
    let errors: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("kissbooth:"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "{what}: expected one error line, got {text}"
    );
    assert!(
        errors[0].contains(needle),
        "{what}: {:?} does not mention {needle:?}",
        errors[0]
    );
}

#[test]
fn prints_one_json_object_per_image() {
    if !have_models("prints_one_json_object_per_image") {
        return;
    }
    let o = kissbooth()
        .args(["faces", "--json"])
        .arg(fixture("couple_1280x720.jpg"))
        .arg(fixture("mona_lisa.jpg"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let couple = &lines[0];
    assert!(
        couple["image"]
            .as_str()
            .unwrap()
            .ends_with("couple_1280x720.jpg")
    );
    let faces = couple["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 2);
    for f in faces {
        let b: Vec<f64> = f["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(b.len(), 4);
        assert!(
            b[0] < b[2] && b[1] < b[3] && b[2] <= 1280.0 && b[3] <= 720.0,
            "{b:?}"
        );
        assert!(f["score"].as_f64().unwrap() > 0.9);
        let l = f["landmarks"].as_array().unwrap();
        assert_eq!(l.len(), 68);
        // landmarks in image pixels, inside the box's neighbourhood
        let x = l[30][0].as_f64().unwrap();
        assert!(x > b[0] && x < b[2], "nose tip {x} outside box {b:?}");
    }
    assert_eq!(couple["verdict"]["code"], "ok");
    assert!(couple["ms"]["total"].as_f64().unwrap() > 0.0);
    assert_eq!(lines[1]["verdict"]["code"], "only_one_face");
    assert!(
        lines[1]["verdict"]["message"]
            .as_str()
            .unwrap()
            .contains("both of you")
    );
}

#[test]
fn writes_an_annotated_picture() {
    if !have_models("writes_an_annotated_picture") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ann.png");
    let o = kissbooth()
        .args(["faces", "--annotate"])
        .arg(&out)
        .arg(fixture("couple_1280x720.jpg"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1280, 720));
    let green = img.pixels().filter(|p| p.0 == [40, 220, 90]).count();
    assert!(green > 500, "box outlines drawn: {green} green pixels");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("2 face(s)") && text.contains("usable"),
        "{text}"
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

/// A PNG signature and IHDR chunk claiming 20000x20000 pixels, and nothing else.
fn huge_png_header() -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn bad_images_give_a_one_line_error_and_a_non_zero_exit() {
    if !have_models("bad_images_give_a_one_line_error_and_a_non_zero_exit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jpeg = std::fs::read(fixture("couple_1280x720.jpg")).unwrap();
    let cases = [
        (
            "truncated JPEG",
            write(dir.path(), "cut.jpg", &jpeg[..jpeg.len() / 2]),
            "truncated",
        ),
        (
            "zero-byte file",
            write(dir.path(), "empty.jpg", b""),
            "empty",
        ),
        (
            "text named .jpg",
            write(
                dir.path(),
                "notes.jpg",
                b"these are my notes, not a picture\n",
            ),
            "not an image",
        ),
        (
            "20000x20000 PNG header",
            write(dir.path(), "huge.png", &huge_png_header()),
            "20000x20000",
        ),
        ("missing file", dir.path().join("nope.jpg"), "nope.jpg"),
    ];
    for (what, path, needle) in &cases {
        let o = kissbooth()
            .args(["faces", "--json"])
            .arg(path)
            .output()
            .unwrap();
        assert_one_line_error(&o, what, needle);
        assert!(
            o.stdout.is_empty(),
            "{what}: printed {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // good images around a bad one are still analysed
    let o = kissbooth()
        .args(["faces", "--json"])
        .arg(fixture("mona_lisa.jpg"))
        .arg(&cases[0].1)
        .arg(fixture("couple_1280x720.jpg"))
        .output()
        .unwrap();
    assert_one_line_error(&o, "mixed", "cut.jpg");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
}

#[test]
fn a_missing_model_file_is_a_one_line_error() {
    if !have_models("a_missing_model_file_is_a_one_line_error") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        models_dir().join("ultraface-rfb-320.onnx"),
        dir.path().join("ultraface-rfb-320.onnx"),
    )
    .unwrap();
    let o = kissbooth()
        .env("KISSBOOTH_MODELS", dir.path())
        .args(["faces"])
        .arg(fixture("mona_lisa.jpg"))
        .output()
        .unwrap();
    assert_one_line_error(&o, "missing landmark model", "pfld-68.onnx");
}

#[test]
fn a_missing_onnx_runtime_names_the_path_tried() {
    let o = kissbooth()
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")
        .args(["faces"])
        .arg(fixture("mona_lisa.jpg"))
        .output()
        .unwrap();
    assert_one_line_error(
        &o,
        "missing runtime",
        "/nonexistent/libonnxruntime.so.1.31.1",
    );
    let dir = tempfile::tempdir().unwrap();
    let fake = write(
        dir.path(),
        "libonnxruntime.so.1.31.1",
        b"not a shared library",
    );
    let o = kissbooth()
        .args(["--ort-library"])
        .arg(&fake)
        .args(["faces"])
        .arg(fixture("mona_lisa.jpg"))
        .output()
        .unwrap();
    assert_one_line_error(&o, "wrong runtime file", "libonnxruntime.so.1.31.1");
}

/// The one face `kissbooth faces --json --expect 1` finds in `path`: (width, height, box).
fn one_face(path: &Path) -> (u64, u64, Vec<f64>) {
    let o = kissbooth()
        .args(["faces", "--json", "--expect", "1"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["verdict"]["ok"],
        true,
        "{}: {}",
        path.display(),
        v["verdict"]
    );
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{}", path.display());
    let b = faces[0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    (
        v["width"].as_u64().unwrap(),
        v["height"].as_u64().unwrap(),
        b,
    )
}

#[test]
fn a_portrait_stored_sideways_is_analysed_upright() {
    if !have_models("a_portrait_stored_sideways_is_analysed_upright") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let upright = image::open(fixture("mona_lisa.jpg")).unwrap().to_rgb8();
    let (w, h, reference) = one_face(&fixture("mona_lisa.jpg"));
    assert_eq!((w, h), (upright.width().into(), upright.height().into()));
    for orientation in [6, 8, 3] {
        let path = write(
            dir.path(),
            &format!("phone-{orientation}.jpg"),
            &stored_with_orientation(&upright, orientation),
        );
        let (ow, oh, b) = one_face(&path);
        assert_eq!((ow, oh), (w, h), "orientation {orientation}: not upright");
        for (got, want) in b.iter().zip(&reference) {
            assert!(
                (got - want).abs() < 12.0,
                "orientation {orientation}: box {b:?}, upright {reference:?}"
            );
        }
    }
}

#[test]
fn devices_fifos_folders_and_huge_files_are_refused_without_reading_them() {
    if !have_models("devices_fifos_folders_and_huge_files_are_refused_without_reading_them") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("photo.jpg");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Sparse: takes no disk, but its size is over the limit.
    let huge = dir.path().join("huge.jpg");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    for (what, path, needle) in [
        (
            "/dev/zero",
            std::path::PathBuf::from("/dev/zero"),
            "not a regular file",
        ),
        ("a FIFO", fifo, "a FIFO"),
        ("a folder", dir.path().to_path_buf(), "a folder"),
        ("a 300 MiB file", huge, "over the limit"),
    ] {
        let started = std::time::Instant::now();
        let mut child = kissbooth()
            .args(["faces", "--json"])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Bounded: a hang or a read that grows is killed and fails the test.
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what}: still running after 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        assert_one_line_error(&o, what, needle);
    }
}

/// The face pack v2 models `faces` uses, or a loud SKIP naming the first one missing.
fn have_face_pack_v2(test: &str) -> bool {
    if !have_models(test) {
        return false;
    }
    for f in ["face-mesh-468.onnx", "selfie-segmentation-256.onnx"] {
        if !models_dir().join(f).is_file() {
            eprintln!(
                "SKIPPED {test}: {f} not found in {} (face pack v2; set KISSBOOTH_MODELS)",
                models_dir().display()
            );
            return false;
        }
    }
    true
}

#[test]
fn reports_each_faces_mesh_and_mask_coverage() {
    if !have_face_pack_v2("reports_each_faces_mesh_and_mask_coverage") {
        return;
    }
    let o = kissbooth()
        .args(["faces", "--json"])
        .arg(fixture("couple_1280x720.jpg"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 2);
    for f in faces {
        let b: Vec<f64> = f["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let mesh = f["mesh"].as_array().unwrap();
        assert_eq!(mesh.len(), 468);
        let pts: Vec<[f64; 3]> = mesh
            .iter()
            .map(|p| {
                let p = p.as_array().unwrap();
                assert_eq!(p.len(), 3);
                [0, 1, 2].map(|k| p[k].as_f64().unwrap())
            })
            .collect();
        // the mesh's mouth (outer lip contour) lies on the 68 landmarks' mouth
        let lips = [
            61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91,
            146,
        ];
        let mean = |idx: &mut dyn Iterator<Item = [f64; 2]>| {
            let v: Vec<[f64; 2]> = idx.collect();
            let n = v.len() as f64;
            [
                v.iter().map(|p| p[0]).sum::<f64>() / n,
                v.iter().map(|p| p[1]).sum::<f64>() / n,
            ]
        };
        let mm = mean(&mut lips.iter().map(|&i| [pts[i][0], pts[i][1]]));
        let l = f["landmarks"].as_array().unwrap();
        let lm = mean(
            &mut l[48..68]
                .iter()
                .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()]),
        );
        let d = ((mm[0] - lm[0]).powi(2) + (mm[1] - lm[1]).powi(2)).sqrt();
        assert!(
            d < 0.1 * (b[2] - b[0]),
            "mesh mouth {mm:?} vs landmarks' {lm:?}"
        );
        // depth: mean 0, the nose tip (1) nearer than the mean
        let mean_z = pts.iter().map(|p| p[2]).sum::<f64>() / 468.0;
        assert!(mean_z.abs() < 0.5, "mean z {mean_z}");
        assert!(pts[1][2] < -10.0, "nose tip z {}", pts[1][2]);
        let cov = f["mask_coverage"].as_f64().unwrap();
        assert!(cov > 0.8 && cov <= 1.0, "mask coverage {cov}");
    }
    let ms = &v["ms"];
    let (mesh, segment) = (
        ms["mesh"].as_f64().unwrap(),
        ms["segment"].as_f64().unwrap(),
    );
    assert!(mesh > 0.0 && segment > 0.0, "{ms}");
    assert!(ms["total"].as_f64().unwrap() >= mesh + segment, "{ms}");
}

#[test]
fn without_face_pack_v2_it_says_so_once_and_leaves_the_fields_out() {
    if !have_models("without_face_pack_v2_it_says_so_once_and_leaves_the_fields_out") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for f in ["ultraface-rfb-320.onnx", "pfld-68.onnx"] {
        std::fs::copy(models_dir().join(f), dir.path().join(f)).unwrap();
    }
    let o = kissbooth()
        .env("KISSBOOTH_MODELS", dir.path())
        .args(["faces", "--json"])
        .arg(fixture("couple_1280x720.jpg"))
        .arg(fixture("mona_lisa.jpg"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = stderr_lines(&o);
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(
        err[0].contains("face pack v2")
            && err[0].contains("face-mesh-468.onnx")
            && err[0].contains("selfie-segmentation-256.onnx"),
        "{err:?}"
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 2);
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["ms"].get("mesh").is_none() && v["ms"].get("segment").is_none());
        for f in v["faces"].as_array().unwrap() {
            assert!(f.get("mesh").is_none() && f.get("mask_coverage").is_none());
            assert_eq!(f["landmarks"].as_array().unwrap().len(), 68);
        }
    }
}
