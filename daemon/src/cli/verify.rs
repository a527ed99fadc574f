//! `kissbooth verify FILE.mp4`: a clip's Content Credentials (C2PA): whether there is a
//! manifest, who made the clip and how (the claim generator, the digital source type), who
//! signed it, and whether its hashes and signature still check. Exit status 0 only when they
//! do; 1, with one line on stderr, when there is no manifest, it does not validate (an edited
//! or cut file) or the file cannot be read.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use crate::clip::provenance::{self, BoothSigner, Integrity};
use crate::paths::Common;

#[derive(Args)]
pub struct VerifyArgs {
    /// The MP4 clip to check.
    pub file: PathBuf,
    /// One JSON object on stdout instead of the text report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(common: &Common, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // This booth's own key, when it has one, says whether the clip was made here.
    let ours = BoothSigner::open(&common.data).ok().flatten();
    let c = match provenance::read(&args.file, ours.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "kissbooth: {}: cannot be read: {}",
                args.file.display(),
                crate::one_line(&e)
            );
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        let mut v = serde_json::to_value(&c)?;
        v["file"] = json!(args.file.display().to_string());
        v["valid"] = json!(c.valid());
        println!("{v}");
    } else if c.integrity != Integrity::Missing {
        let unknown = || "(none)".to_string();
        println!("{}: Content Credentials present", args.file.display());
        println!(
            "  claim generator: {}{}",
            c.claim_generator.clone().unwrap_or_else(unknown),
            c.booth
                .as_deref()
                .map(|b| format!(" on booth {b}"))
                .unwrap_or_default()
        );
        let ai = c.digital_source_type.as_deref() == Some(provenance::AI_SOURCE_TYPE);
        println!(
            "  digital source type: {}{}",
            c.digital_source_type.clone().unwrap_or_else(unknown),
            if ai { " (AI-generated)" } else { "" }
        );
        println!(
            "  signer: {}{}{}",
            c.signer.clone().unwrap_or_else(unknown),
            c.issuer
                .as_deref()
                .map(|i| format!(", issued by {i}"))
                .unwrap_or_default(),
            c.alg
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        );
        println!(
            "  trust: {}",
            match (c.integrity, c.this_booth) {
                (Integrity::Trusted, _) => "the signer chains up to a trusted root",
                (_, true) => "this booth's own key (on no public trust list)",
                _ => "a booth's own key, on no trust list",
            }
        );
        println!(
            "  integrity: {}",
            if c.valid() {
                "valid (the hashes and the signature check)"
            } else {
                "INVALID"
            }
        );
    }
    match c.problem() {
        None => Ok(ExitCode::SUCCESS),
        Some(why) => {
            eprintln!("kissbooth: {}: {why}", args.file.display());
            Ok(ExitCode::from(1))
        }
    }
}
