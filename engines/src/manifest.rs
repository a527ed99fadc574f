//! Model-pack manifests and the pack installer.
//!
//! A manifest (TOML, see `models/face-pack.toml`) names each file of a pack with its sha256, its
//! upstream address, its tensors and its pre-processing. [`install`] copies a pack from a folder
//! or downloads it, checks every checksum into a staging folder, and only then moves the files
//! into place: a wrong checksum is refused and leaves nothing behind.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::onnx_fix;

/// The face-analysis pack manifest, embedded in the binary.
pub const FACE_PACK: &str = include_str!("../../models/face-pack.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(rename = "file")]
    pub files: Vec<PackFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackFile {
    /// Role in the pack (`detector`, `landmarks`, ...).
    pub name: String,
    /// File name inside the pack folder.
    pub file: String,
    /// sha256 of the file as installed.
    pub sha256: String,
    #[serde(default)]
    pub upstream_url: Option<String>,
    /// sha256 of the upstream file, when it differs from the installed one.
    #[serde(default)]
    pub upstream_sha256: Option<String>,
    /// Repair turning the upstream file into the installed one.
    #[serde(default)]
    pub fixup: Option<Fixup>,
    /// The registry package (and the path inside it) a converted file is made from.
    #[serde(default)]
    pub source: Option<String>,
    /// The project script that makes this file from `source`. Such a file is published nowhere
    /// as it is installed: it installs from a folder (`--from`) that the script wrote.
    #[serde(default)]
    pub convert: Option<String>,
    /// For a converted file: its [`onnx_fix::conversion_fingerprint`]. A file whose bytes differ
    /// from `sha256` but whose fingerprint matches is the same conversion written in another
    /// order (the converter's output is not byte-stable), and is accepted as it is.
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub licence: Option<String>,
    /// An optional file is installed when available and skipped otherwise.
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub preprocess: Option<Preprocess>,
    #[serde(default)]
    pub inputs: Vec<TensorSpec>,
    #[serde(default)]
    pub outputs: Vec<TensorSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fixup {
    DropInitializerInputs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    pub layout: String,
    pub color: String,
    /// Per channel: `(pixel - mean) * scale`.
    pub mean: [f32; 3],
    pub scale: [f32; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: String,
    /// Dimensions; -1 for a dynamic axis.
    pub shape: Vec<i64>,
}

#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("manifest: {0}")]
    Parse(String),
    #[error("manifest: {0}")]
    Invalid(String),
    #[error("{file}: sha256 is {actual}, expected {expected}; refusing it")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: not found in {dir}")]
    MissingSource { file: String, dir: PathBuf },
    #[error("{file}: no upstream address; install it from a folder with --from DIR")]
    NoUpstream { file: String },
    #[error(
        "{file}: converted from {origin}, not published upstream as ONNX: run `{script} DIR`, then `kissbooth models install --from DIR`"
    )]
    NeedsConversion {
        file: String,
        origin: String,
        script: String,
    },
    #[error("{file}: download from {url} failed: {message}")]
    Download {
        file: String,
        url: String,
        message: String,
    },
    #[error("{file}: repair failed: {message}")]
    Fixup { file: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model {model}: {message}")]
    TensorMismatch { model: String, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// The embedded face pack.
    pub fn face_pack() -> Manifest {
        // The embedded manifest is checked by a unit test; a failure here is a build defect.
        Manifest::parse(FACE_PACK).expect("embedded face-pack manifest is valid")
    }

    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut seen = BTreeMap::new();
        for f in &self.files {
            if f.file.is_empty()
                || f.file.contains('/')
                || f.file.contains('\\')
                || f.file.starts_with('.')
            {
                return Err(ManifestError::Invalid(format!(
                    "file name {:?} must be a plain name",
                    f.file
                )));
            }
            if !is_sha256(&f.sha256) {
                return Err(ManifestError::Invalid(format!(
                    "{}: sha256 must be 64 hex digits",
                    f.file
                )));
            }
            if let Some(u) = &f.upstream_sha256
                && !is_sha256(u)
            {
                return Err(ManifestError::Invalid(format!(
                    "{}: upstream_sha256 must be 64 hex digits",
                    f.file
                )));
            }
            if f.fixup.is_some() && f.upstream_sha256.is_none() {
                return Err(ManifestError::Invalid(format!(
                    "{}: a fixup needs upstream_sha256",
                    f.file
                )));
            }
            if let Some(fp) = &f.fingerprint
                && (!is_sha256(fp) || f.convert.is_none())
            {
                return Err(ManifestError::Invalid(format!(
                    "{}: a fingerprint is 64 hex digits, for converted files only",
                    f.file
                )));
            }
            if f.convert.is_some() && (f.source.is_none() || f.upstream_url.is_some()) {
                return Err(ManifestError::Invalid(format!(
                    "{}: a converted file needs `source` and has no `upstream_url`",
                    f.file
                )));
            }
            if let Some(prev) = seen.insert(f.name.clone(), &f.file) {
                return Err(ManifestError::Invalid(format!(
                    "role {:?} used twice ({prev}, {})",
                    f.name, f.file
                )));
            }
        }
        Ok(())
    }

    pub fn get(&self, role: &str) -> Option<&PackFile> {
        self.files.iter().find(|f| f.name == role)
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the installer takes files from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A folder holding the pack's files (as installed, or as published upstream).
    Dir(PathBuf),
    /// Each file's `upstream_url`.
    Upstream,
}

#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub file: String,
    /// sha256 of the file as installed.
    pub sha256: String,
    pub repaired: bool,
    /// A conversion with other bytes than the manifest's whose fingerprint matches.
    pub equivalent: bool,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub dest: PathBuf,
    pub installed: Vec<Installed>,
    pub skipped: Vec<(String, String)>,
}

/// Installs every file of `manifest` into `dest`. All files are verified in a staging folder
/// first; `dest` changes only when every required file passed.
pub fn install(
    manifest: &Manifest,
    source: &Source,
    dest: &Path,
) -> Result<InstallReport, ManifestError> {
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    let staging = dest.join(format!(".staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let result = stage_all(manifest, source, &staging);
    let outcome = result.and_then(|(installed, skipped)| {
        for i in &installed {
            let from = staging.join(&i.file);
            let to = dest.join(&i.file);
            std::fs::rename(&from, &to).map_err(io_err(&to))?;
        }
        if let Ok(d) = std::fs::File::open(dest) {
            let _ = d.sync_all();
        }
        Ok(InstallReport {
            dest: dest.to_path_buf(),
            installed,
            skipped,
        })
    });
    let _ = std::fs::remove_dir_all(&staging);
    outcome
}

type Staged = (Vec<Installed>, Vec<(String, String)>);

fn stage_all(
    manifest: &Manifest,
    source: &Source,
    staging: &Path,
) -> Result<Staged, ManifestError> {
    // A required file that must be converted first cannot come from upstream: say so before
    // downloading anything else.
    if matches!(source, Source::Upstream)
        && let Some(f) = manifest
            .files
            .iter()
            .find(|f| !f.optional && f.convert.is_some())
    {
        fetch(f, source)?;
    }
    let mut installed = Vec::new();
    let mut skipped = Vec::new();
    for f in &manifest.files {
        let fetched = match fetch(f, source) {
            Ok(b) => b,
            Err(e) if f.optional => {
                skipped.push((f.file.clone(), e.to_string()));
                continue;
            }
            Err(e) => return Err(e),
        };
        let (bytes, repaired) = verify(f, fetched)?;
        let path = staging.join(&f.file);
        let mut out = std::fs::File::create(&path).map_err(io_err(&path))?;
        out.write_all(&bytes).map_err(io_err(&path))?;
        out.sync_all().map_err(io_err(&path))?;
        let sha256 = sha256_hex(&bytes);
        installed.push(Installed {
            file: f.file.clone(),
            equivalent: !repaired && !sha256.eq_ignore_ascii_case(&f.sha256),
            sha256,
            repaired,
            bytes: bytes.len() as u64,
        });
    }
    Ok((installed, skipped))
}

fn fetch(f: &PackFile, source: &Source) -> Result<Vec<u8>, ManifestError> {
    match source {
        Source::Dir(dir) => {
            let p = dir.join(&f.file);
            if !p.is_file() {
                return Err(ManifestError::MissingSource {
                    file: f.file.clone(),
                    dir: dir.clone(),
                });
            }
            std::fs::read(&p).map_err(io_err(&p))
        }
        Source::Upstream => {
            if let Some(script) = &f.convert {
                return Err(ManifestError::NeedsConversion {
                    file: f.file.clone(),
                    origin: f.source.clone().unwrap_or_default(),
                    script: script.clone(),
                });
            }
            let url = f
                .upstream_url
                .as_deref()
                .ok_or_else(|| ManifestError::NoUpstream {
                    file: f.file.clone(),
                })?;
            download(url).map_err(|message| ManifestError::Download {
                file: f.file.clone(),
                url: url.into(),
                message,
            })
        }
    }
}

/// Checks a fetched file against the manifest, repairing an upstream file when the manifest says
/// how. Returns the bytes to install.
pub fn verify(f: &PackFile, bytes: Vec<u8>) -> Result<(Vec<u8>, bool), ManifestError> {
    let actual = sha256_hex(&bytes);
    if actual.eq_ignore_ascii_case(&f.sha256) {
        return Ok((bytes, false));
    }
    if let Some(up) = &f.upstream_sha256
        && actual.eq_ignore_ascii_case(up)
    {
        let repaired = match f.fixup {
            Some(Fixup::DropInitializerInputs) => {
                onnx_fix::drop_initializer_inputs(&bytes)
                    .map_err(|e| ManifestError::Fixup {
                        file: f.file.clone(),
                        message: e.to_string(),
                    })?
                    .0
            }
            None => bytes,
        };
        return Ok((repaired, true));
    }
    if is_equivalent_conversion(f, &bytes) {
        return Ok((bytes, false));
    }
    Err(ManifestError::Checksum {
        file: f.file.clone(),
        expected: f.sha256.clone(),
        actual,
    })
}

/// Whether `bytes` is the converted file `f` written by another run of its converter: its
/// fingerprint matches the manifest's.
fn is_equivalent_conversion(f: &PackFile, bytes: &[u8]) -> bool {
    f.fingerprint.as_ref().is_some_and(|want| {
        onnx_fix::conversion_fingerprint(bytes).is_ok_and(|got| got.eq_ignore_ascii_case(want))
    })
}

const MAX_DOWNLOAD: u64 = 512 * 1024 * 1024;

fn download(url: &str) -> Result<Vec<u8>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    resp.body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD)
        .read_to_vec()
        .map_err(|e| e.to_string())
}

/// Checks a file against the manifest in place (used at start-up and by `doctor`).
pub fn check_installed(f: &PackFile, dir: &Path) -> Result<(), ManifestError> {
    let p = dir.join(&f.file);
    let bytes = std::fs::read(&p).map_err(io_err(&p))?;
    let actual = sha256_hex(&bytes);
    if actual.eq_ignore_ascii_case(&f.sha256) || is_equivalent_conversion(f, &bytes) {
        Ok(())
    } else {
        Err(ManifestError::Checksum {
            file: f.file.clone(),
            expected: f.sha256.clone(),
            actual,
        })
    }
}

/// Compares an opened session's tensors with the manifest; names the first mismatching tensor.
pub fn check_session(f: &PackFile, session: &ort::session::Session) -> Result<(), ManifestError> {
    let mismatch = |message: String| ManifestError::TensorMismatch {
        model: f.file.clone(),
        message,
    };
    let compare = |kind: &str,
                   specs: &[TensorSpec],
                   outlets: &[ort::value::Outlet]|
     -> Result<(), ManifestError> {
        for spec in specs {
            let Some(o) = outlets.iter().find(|o| o.name() == spec.name) else {
                let have: Vec<_> = outlets.iter().map(|o| o.name().to_string()).collect();
                return Err(mismatch(format!(
                    "{kind} tensor {:?} not in the model (it has {have:?})",
                    spec.name
                )));
            };
            let shape: Vec<i64> = o
                .dtype()
                .tensor_shape()
                .map(|s| s.to_vec())
                .unwrap_or_default();
            let fits = shape.len() == spec.shape.len()
                && shape
                    .iter()
                    .zip(&spec.shape)
                    .all(|(&have, &want)| want < 0 || have < 0 || have == want);
            if !fits {
                return Err(mismatch(format!(
                    "{kind} tensor {:?} has shape {shape:?}, the manifest says {:?}",
                    spec.name, spec.shape
                )));
            }
            let dtype = o
                .dtype()
                .tensor_type()
                .map(|t| format!("{t:?}"))
                .unwrap_or_default();
            let want = match spec.dtype.as_str() {
                "f32" => "Float32",
                "f16" => "Float16",
                "i64" => "Int64",
                "u8" => "Uint8",
                other => other,
            };
            if !dtype.eq_ignore_ascii_case(want) {
                return Err(mismatch(format!(
                    "{kind} tensor {:?} is {dtype}, the manifest says {}",
                    spec.name, spec.dtype
                )));
            }
        }
        Ok(())
    };
    compare("input", &f.inputs, session.inputs())?;
    compare("output", &f.outputs, session.outputs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_face_pack_is_valid() {
        let m = Manifest::face_pack();
        assert!(m.get("detector").is_some());
        assert!(m.get("landmarks").is_some());
        assert_eq!(
            m.get("landmarks").unwrap().inputs[0].shape,
            [-1, 3, 112, 112]
        );
    }

    #[test]
    fn rejects_a_path_as_file_name() {
        let text = FACE_PACK.replacen("file = \"pfld-68.onnx\"", "file = \"../pfld-68.onnx\"", 1);
        assert!(matches!(
            Manifest::parse(&text),
            Err(ManifestError::Invalid(_))
        ));
    }

    #[test]
    fn upstream_install_of_a_converted_file_says_how_to_convert_it_and_writes_nothing() {
        let m = Manifest::face_pack();
        let dest = tempfile::tempdir().unwrap();
        let err = install(&m, &Source::Upstream, dest.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, ManifestError::NeedsConversion { ref file, .. } if file == "face-mesh-468.onnx"),
            "{text}"
        );
        assert!(
            text.contains("scripts/convert-models")
                && text.contains("--from")
                && text.contains("mediapipe 0.10.21"),
            "{text}"
        );
        assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_fingerprint_belongs_to_a_converted_file() {
        let text = FACE_PACK.replacen(
            "sha256 = \"7d7bbd5c6a1d9272e58d9773898284a1905d872eba9a662df9b5f20f1ba6f83e\"",
            "sha256 = \"7d7bbd5c6a1d9272e58d9773898284a1905d872eba9a662df9b5f20f1ba6f83e\"\nfingerprint = \"7d7bbd5c6a1d9272e58d9773898284a1905d872eba9a662df9b5f20f1ba6f83e\"",
            1,
        );
        assert!(matches!(
            Manifest::parse(&text),
            Err(ManifestError::Invalid(_))
        ));
    }

    #[test]
    fn verify_refuses_a_wrong_checksum() {
        let m = Manifest::face_pack();
        let f = m.get("face3d").unwrap();
        let err = verify(f, b"not the shape".to_vec()).unwrap_err();
        assert!(matches!(err, ManifestError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("face3d-68.csv"));
    }
}
