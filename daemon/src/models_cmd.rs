//! `kissbooth models`: install and verify model packs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use kissbooth_engines::manifest::{self, Manifest, Source};

use crate::paths::Common;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Copy the face pack from a folder (or download it from upstream) into the models folder,
    /// verifying every sha256. Nothing changes unless every required file passes.
    Install {
        /// Folder holding the pack's files; without it, files are downloaded from upstream.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Destination; default: the models folder (--models, $KISSBOOTH_MODELS, or DATA/models).
        #[arg(long)]
        dest: Option<PathBuf>,
        /// A pack manifest (TOML) instead of the built-in face pack.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Check the installed files against the manifest.
    Verify,
}

pub fn run(common: &Common, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelsCommand::Install {
            from,
            dest,
            manifest: mpath,
        } => {
            let m = match mpath {
                Some(p) => {
                    let text =
                        std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()))?;
                    Manifest::parse(&text).with_context(|| format!("{}", p.display()))?
                }
                None => Manifest::face_pack(),
            };
            let dest = dest.unwrap_or_else(|| common.models_dir());
            let source = match from {
                Some(d) => Source::Dir(d),
                None => Source::Upstream,
            };
            let report = manifest::install(&m, &source, &dest)
                .context("model install failed; nothing was changed")?;
            for i in &report.installed {
                println!(
                    "installed {} ({} bytes, sha256 {}{})",
                    i.file,
                    i.bytes,
                    &i.sha256[..12],
                    if i.repaired {
                        ", repaired from upstream"
                    } else {
                        ""
                    }
                );
            }
            for (f, why) in &report.skipped {
                println!("skipped optional {f}: {why}");
            }
            println!("pack {} installed in {}", m.name, report.dest.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify => {
            let m = Manifest::face_pack();
            let dir = common.models_dir();
            let mut bad = 0;
            for f in &m.files {
                match manifest::check_installed(f, &dir) {
                    Ok(()) => println!("ok       {}", f.file),
                    Err(e) if f.optional => println!("optional {}: {e}", f.file),
                    Err(e) => {
                        bad += 1;
                        println!("BAD      {}: {e}", f.file);
                    }
                }
            }
            if bad > 0 {
                anyhow::bail!(
                    "{bad} model file(s) in {} missing or altered",
                    dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
