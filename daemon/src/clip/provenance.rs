//! Content Credentials (C2PA) in every clip: a manifest, signed with the booth's own key, that
//! says the clip is AI-generated (a `c2pa.created` action whose digital source type is IPTC's
//! `trainedAlgorithmicMedia`) and was made by Kissbooth on this booth; and reading one back.
//!
//! The key is the booth's own, made at first boot in `DATA/c2pa/`: `signer.key` (P-256, PKCS#8,
//! mode 0600) and `signer-chain.pem`, an end-entity certificate (digitalSignature, the
//! emailProtection EKU C2PA accepts) issued by a root made for this booth alone. No public
//! authority vouches for it, so readers report the signer as untrusted; the hashes and the
//! signature still prove the clip is unchanged since this booth signed it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde_json::{Value, json};

/// IPTC's digital source type of media made by a trained model.
pub const AI_SOURCE_TYPE: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";
/// The claim generator's name.
pub const GENERATOR: &str = "Kissbooth";
/// The private key, PKCS#8 PEM, readable by the daemon's user only.
const KEY_FILE: &str = "signer.key";
/// The end-entity certificate, then the booth's root.
const CHAIN_FILE: &str = "signer-chain.pem";

/// Where the booth keeps its signing key: `DATA/c2pa`.
pub fn key_dir(data: &Path) -> PathBuf {
    data.join("c2pa")
}

/// The booth's private key file.
pub fn key_path(data: &Path) -> PathBuf {
    key_dir(data).join(KEY_FILE)
}

/// The booth's name, in its certificate and manifests: the appliance's device name
/// (`DATA/device-name`, written at first boot, also its host name), else the host name.
pub fn booth_name(data: &Path) -> String {
    let usable = |s: String| {
        let s = s.trim().to_string();
        (!s.is_empty() && s.len() <= 64 && !s.chars().any(char::is_control)).then_some(s)
    };
    fs::read_to_string(data.join("device-name"))
        .ok()
        .and_then(usable)
        .or_else(|| {
            fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .and_then(usable)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The booth's signing key and certificate chain.
pub struct BoothSigner {
    key_pem: Vec<u8>,
    chain_pem: Vec<u8>,
    /// The booth's name (see [`booth_name`]).
    booth: String,
}

impl std::fmt::Debug for BoothSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoothSigner")
            .field("booth", &self.booth)
            .finish_non_exhaustive()
    }
}

impl BoothSigner {
    /// The booth's key in `DATA/c2pa`; `None` when there is none yet.
    pub fn open(data: &Path) -> anyhow::Result<Option<BoothSigner>> {
        let dir = key_dir(data);
        let (key, chain) = (dir.join(KEY_FILE), dir.join(CHAIN_FILE));
        // The chain is written first: a chain alone is a first start that was cut short.
        match fs::metadata(&key) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", key.display())),
            Ok(_) => {}
        }
        let key_pem = fs::read(&key).with_context(|| format!("cannot read {}", key.display()))?;
        let chain_pem =
            fs::read(&chain).with_context(|| format!("cannot read {}", chain.display()))?;
        // A key others can read is no longer the booth's alone; at least stop it spreading.
        if let Ok(m) = fs::metadata(&key)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %key.display(), "the signing key was readable by others; made it 0600");
            let _ = fs::set_permissions(&key, fs::Permissions::from_mode(0o600));
        }
        let signer = BoothSigner {
            key_pem,
            chain_pem,
            booth: booth_name(data),
        };
        signer
            .c2pa_signer()
            .with_context(|| format!("the signing key in {} is unusable", dir.display()))?;
        Ok(Some(signer))
    }

    /// The booth's key, made now when `DATA/c2pa` has none (`true`: it was made now). A key
    /// that is there but unusable (damaged, its chain missing) is an error, never silently
    /// replaced.
    pub fn open_or_create(data: &Path) -> anyhow::Result<(BoothSigner, bool)> {
        if let Some(signer) = Self::open(data)? {
            return Ok((signer, false));
        }
        let dir = key_dir(data);
        let (key, chain) = (dir.join(KEY_FILE), dir.join(CHAIN_FILE));
        let booth = booth_name(data);
        let (key_pem, chain_pem) = new_key_and_chain(&booth)?;
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        write_new(&chain, chain_pem.as_bytes(), 0o644)?;
        write_new(&key, key_pem.as_bytes(), 0o600)?;
        let signer = BoothSigner {
            key_pem: key_pem.into_bytes(),
            chain_pem: chain_pem.into_bytes(),
            booth,
        };
        signer.c2pa_signer()?;
        Ok((signer, true))
    }

    fn c2pa_signer(&self) -> anyhow::Result<c2pa::BoxedSigner> {
        c2pa::create_signer::from_keys(
            &self.chain_pem,
            &self.key_pem,
            c2pa::SigningAlg::Es256,
            None,
        )
        .map_err(|e| anyhow!("C2PA signer: {e}"))
    }

    /// The end-entity certificate, PEM, as readers show it.
    fn leaf_pem(&self) -> Option<String> {
        leaf_of(&String::from_utf8_lossy(&self.chain_pem))
    }

    /// Adds a signed manifest to the MP4 at `video`, in place: the signed file is written beside
    /// it, read back and validated, and only then renamed over the clip (so a reader never sees
    /// half a file, and a failure leaves the unsigned clip as it was). Returns the new size.
    pub fn sign_in_place(&self, video: &Path) -> anyhow::Result<u64> {
        let dir = video
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = video
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("{} is not a file name", video.display()))?;
        // The encoder's temporary naming, so a crash mid-way leaves nothing the start-up sweep
        // does not remove.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.partial-{}-{n}", std::process::id()));
        let result = self.sign_to(video, &temp).and_then(|()| {
            let file = File::open(&temp)?;
            file.sync_all()?;
            let bytes = file.metadata()?.len();
            drop(file);
            fs::rename(&temp, video)
                .with_context(|| format!("cannot rename the signed clip to {}", video.display()))?;
            File::open(dir).and_then(|d| d.sync_all())?;
            Ok(bytes)
        });
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn sign_to(&self, video: &Path, temp: &Path) -> anyhow::Result<()> {
        let signer = self.c2pa_signer()?;
        let context = c2pa::Context::new()
            .with_settings(json!({
                "builder": {"thumbnail": {"enabled": false}},
                "verify": {"verify_after_sign": false},
            }))
            .map_err(|e| anyhow!("C2PA settings: {e}"))?;
        let mut builder = c2pa::Builder::from_context(context)
            .with_definition(manifest_definition(&self.booth))
            .map_err(|e| anyhow!("C2PA manifest: {e}"))?;
        let mut source =
            File::open(video).with_context(|| format!("cannot open {}", video.display()))?;
        let mut dest = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        builder
            .sign(signer.as_ref(), "video/mp4", &mut source, &mut dest)
            .map_err(|e| anyhow!("C2PA signing: {e}"))?;
        drop(dest);
        // Never publish a signed file that does not read back as valid.
        let check = read(temp, Some(self))?;
        if !check.valid() {
            bail!(
                "the signed clip does not validate: {}",
                check.problem().unwrap_or_default()
            );
        }
        Ok(())
    }
}

/// The manifest of a clip: AI-generated, made by Kissbooth on booth `booth`.
fn manifest_definition(booth: &str) -> Value {
    let agent = json!({"name": GENERATOR, "version": env!("CARGO_PKG_VERSION")});
    json!({
        "title": "Kissbooth kiss",
        "format": "video/mp4",
        "claim_generator_info": [{
            "name": GENERATOR,
            "version": env!("CARGO_PKG_VERSION"),
            "org.kissbooth.booth": booth,
        }],
        "assertions": [{
            "label": "c2pa.actions",
            "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": AI_SOURCE_TYPE,
                "softwareAgent": agent,
                "description": "A kiss rendered by the Kissbooth photo booth from the couple's photo",
            }]},
        }],
    })
}

/// A new P-256 key and its chain: an end-entity certificate for signing content, issued by a
/// root made for this booth alone (C2PA refuses a self-signed signing certificate). The root's
/// key signs once and is forgotten. Valid from 1975, since a booth without a network may start
/// with a wrong clock, to 2100.
fn new_key_and_chain(booth: &str) -> anyhow::Result<(String, String)> {
    use rand::RngCore;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
        date_time_ymd,
    };
    let params = |cn: String| {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, GENERATOR);
        p.distinguished_name = dn;
        p.not_before = date_time_ymd(1975, 1, 1);
        p.not_after = date_time_ymd(2100, 1, 1);
        let mut serial = [0u8; 16];
        rand::rng().fill_bytes(&mut serial);
        serial[0] &= 0x7f;
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        p
    };
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut root = params(format!("Kissbooth booth {booth} root"));
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(&root_key)?;
    let issuer = Issuer::new(root, root_key);

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut leaf = params(format!("Kissbooth booth {booth}"));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf.signed_by(&key, &issuer)?;
    Ok((
        key.serialize_pem(),
        format!("{}{}", leaf_cert.pem(), root_cert.pem()),
    ))
}

/// Writes `bytes` to a new file `path` with `mode` from its creation, through a temporary name.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = path.with_extension(format!("partial-{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let _ = fs::remove_file(&temp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = fs::remove_file(&temp);
    }
    res.with_context(|| format!("cannot write {}", path.display()))
}

/// The first certificate of a PEM chain, normalised (no blank lines, `\n` endings).
fn leaf_of(chain: &str) -> Option<String> {
    let end = "-----END CERTIFICATE-----";
    let start = chain.find("-----BEGIN CERTIFICATE-----")?;
    let stop = chain[start..].find(end)? + start + end.len();
    Some(
        chain[start..stop]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Whether a clip's Content Credentials validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    /// No manifest at all.
    Missing,
    /// A manifest whose hashes or signature do not check (an edited or damaged file).
    Invalid,
    /// Hashes and signature check; the signer is on no trust list (a booth's own key).
    Valid,
    /// Hashes and signature check, and the signer chains up to a trusted root.
    Trusted,
}

/// What a clip's Content Credentials say.
#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    pub integrity: Integrity,
    /// `name/version` of each claim generator.
    pub claim_generator: Option<String>,
    /// The booth named in the claim generator.
    pub booth: Option<String>,
    /// The `digitalSourceType` of the `c2pa.created` action.
    pub digital_source_type: Option<String>,
    /// The signing certificate's common name, and its issuer.
    pub signer: Option<String>,
    pub issuer: Option<String>,
    /// The signing algorithm.
    pub alg: Option<String>,
    /// Signed with this booth's key (when the reader was given it).
    pub this_booth: bool,
    /// The validation failures (C2PA status codes and explanations), or why the file could not
    /// be read.
    pub failures: Vec<String>,
}

impl Credentials {
    fn missing(why: impl Into<String>) -> Self {
        Credentials {
            integrity: Integrity::Missing,
            claim_generator: None,
            booth: None,
            digital_source_type: None,
            signer: None,
            issuer: None,
            alg: None,
            this_booth: false,
            failures: vec![why.into()],
        }
    }

    /// Hashes and signature check.
    pub fn valid(&self) -> bool {
        matches!(self.integrity, Integrity::Valid | Integrity::Trusted)
    }

    /// What is wrong, on one line; `None` when valid.
    pub fn problem(&self) -> Option<String> {
        match self.integrity {
            Integrity::Valid | Integrity::Trusted => None,
            Integrity::Missing => Some("no Content Credentials".into()),
            Integrity::Invalid => Some(format!(
                "Content Credentials do not validate: {}",
                if self.failures.is_empty() {
                    "no reason given".to_string()
                } else {
                    self.failures.join("; ")
                }
            )),
        }
    }
}

/// Reads and validates the Content Credentials of the MP4 at `path`; `booth` (the key of the
/// booth reading it, when it has one) tells whether this booth signed it. `Err` only when the
/// file cannot be opened.
pub fn read(path: &Path, booth: Option<&BoothSigner>) -> anyhow::Result<Credentials> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    if !file.metadata()?.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let reader =
        match c2pa::Reader::from_context(c2pa::Context::new()).with_stream("video/mp4", file) {
            Ok(r) => r,
            Err(c2pa::Error::JumbfNotFound | c2pa::Error::ProvenanceMissing) => {
                return Ok(Credentials::missing("no C2PA manifest in the file"));
            }
            // A manifest that cannot even be parsed, or a file cut short.
            Err(e) => {
                return Ok(Credentials {
                    integrity: Integrity::Invalid,
                    ..Credentials::missing(e.to_string())
                });
            }
        };
    let store: Value = serde_json::from_str(&reader.json()).unwrap_or(Value::Null);
    let Some(manifest) = reader
        .active_label()
        .and_then(|label| store["manifests"].get(label))
    else {
        return Ok(Credentials::missing(
            "the manifest store has no active manifest",
        ));
    };
    let sig = &manifest["signature_info"];
    let failures = validation_failures(&reader);
    let integrity = match reader.validation_state() {
        c2pa::ValidationState::Trusted => Integrity::Trusted,
        c2pa::ValidationState::Valid if failures.is_empty() => Integrity::Valid,
        _ => Integrity::Invalid,
    };
    Ok(Credentials {
        integrity,
        claim_generator: claim_generators(manifest),
        booth: claimed_booth(manifest),
        digital_source_type: digital_source_type(manifest),
        signer: sig["common_name"].as_str().map(str::to_string),
        issuer: sig["issuer"].as_str().map(str::to_string),
        alg: sig["alg"].as_str().map(str::to_string),
        this_booth: signed_by(&reader, booth),
        failures,
    })
}

/// `name/version` of each claim generator of a manifest (as the store's JSON shows it), or
/// its older single `claim_generator`.
fn claim_generators(manifest: &Value) -> Option<String> {
    manifest["claim_generator_info"]
        .as_array()
        .map(|gs| {
            gs.iter()
                .filter_map(|g| {
                    let name = g["name"].as_str()?;
                    Some(match g["version"].as_str() {
                        Some(v) => format!("{name}/{v}"),
                        None => name.to_string(),
                    })
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .or_else(|| manifest["claim_generator"].as_str().map(str::to_string))
}

/// The booth named in a manifest's claim generator.
fn claimed_booth(manifest: &Value) -> Option<String> {
    manifest["claim_generator_info"]
        .as_array()
        .and_then(|gs| gs.iter().find_map(|g| g["org.kissbooth.booth"].as_str()))
        .map(str::to_string)
}

/// The `digitalSourceType` of a manifest's `c2pa.created` action.
fn digital_source_type(manifest: &Value) -> Option<String> {
    manifest["assertions"].as_array().and_then(|all| {
        all.iter()
            .filter(|a| {
                a["label"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("c2pa.actions"))
            })
            .filter_map(|a| a["data"]["actions"].as_array())
            .flatten()
            .find(|a| a["action"] == "c2pa.created")
            .and_then(|a| a["digitalSourceType"].as_str())
            .map(str::to_string)
    })
}

/// Whether the active manifest was signed with `booth`'s key.
fn signed_by(reader: &c2pa::Reader, booth: Option<&BoothSigner>) -> bool {
    match (
        booth.and_then(BoothSigner::leaf_pem),
        reader.active_manifest(),
    ) {
        (Some(ours), Some(m)) => m
            .signature_info()
            .and_then(|s| leaf_of(s.cert_chain()))
            .is_some_and(|theirs| theirs == ours),
        _ => false,
    }
}

/// The active manifest's validation failures, but an untrusted signer (a booth's own key is on
/// no trust list).
fn validation_failures(reader: &c2pa::Reader) -> Vec<String> {
    reader
        .validation_results()
        .and_then(|r| r.active_manifest())
        .map(|m| {
            m.failure()
                .iter()
                .filter(|s| s.code() != c2pa::validation_status::SIGNING_CREDENTIAL_UNTRUSTED)
                .map(|s| match s.explanation() {
                    Some(why) => format!("{} ({why})", s.code()),
                    None => s.code().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_reused() {
        let data = tempfile::tempdir().unwrap();
        assert!(BoothSigner::open(data.path()).unwrap().is_none());
        let (a, made) = BoothSigner::open_or_create(data.path()).unwrap();
        assert!(made);
        let key = key_dir(data.path()).join(KEY_FILE);
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, made) = BoothSigner::open_or_create(data.path()).unwrap();
        assert!(!made);
        assert_eq!(a.leaf_pem(), b.leaf_pem());
        let chain = fs::read_to_string(key_dir(data.path()).join(CHAIN_FILE)).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    }

    #[test]
    fn a_damaged_key_is_an_error_not_replaced() {
        let data = tempfile::tempdir().unwrap();
        BoothSigner::open_or_create(data.path()).unwrap();
        let key = key_dir(data.path()).join(KEY_FILE);
        fs::write(&key, "not a key").unwrap();
        assert!(BoothSigner::open_or_create(data.path()).is_err());
        assert_eq!(fs::read_to_string(&key).unwrap(), "not a key");
        // A key without its chain is refused too.
        fs::remove_file(key_dir(data.path()).join(CHAIN_FILE)).unwrap();
        assert!(BoothSigner::open_or_create(data.path()).is_err());
    }

    #[test]
    fn a_first_start_cut_before_the_key_was_written_makes_the_key() {
        let data = tempfile::tempdir().unwrap();
        fs::create_dir(key_dir(data.path())).unwrap();
        fs::write(key_dir(data.path()).join(CHAIN_FILE), "half").unwrap();
        let (_, made) = BoothSigner::open_or_create(data.path()).unwrap();
        assert!(made);
        assert!(BoothSigner::open(data.path()).unwrap().is_some());
    }

    #[test]
    fn a_file_without_a_manifest_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mp4");
        fs::write(&p, b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2").unwrap();
        let c = read(&p, None).unwrap();
        assert_ne!(c.integrity, Integrity::Valid);
        assert!(c.problem().is_some());
    }
}
