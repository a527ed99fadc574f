//! `kissbooth`: the booth's command-line entry point.
//!
//! - `kissbooth serve [--listen ADDR] [--camera SPEC] [--config FILE]`: the booth daemon.
//! - `kissbooth faces IMAGE... [--json] [--annotate OUT.png]`: analyse faces in images.
//! - `kissbooth render A.jpg [B.jpg] -o OUT.mp4`: render the kiss video and its poster.
//! - `kissbooth models install [--from DIR]`: install and verify the face model pack.
//! - `kissbooth admin set-password`: choose the admin pages' password (read from stdin).
//! - `kissbooth bench faces`: speed of face analysis against the Python reference.
//! - `kissbooth verify CLIP.mp4`: check a clip's Content Credentials (C2PA).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kissbooth::cli::{admin, bench, doctor, faces, models, render, serve, verify};
use kissbooth::{one_line, paths};

#[derive(Parser)]
#[command(
    name = "kissbooth",
    version,
    about = "Kissbooth: the on-device AI kiss photo booth"
)]
struct Cli {
    #[command(flatten)]
    common: paths::Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the booth: camera, kiosk screens, render queue and download pages.
    Serve(serve::ServeArgs),
    /// Find faces, landmarks and the quality verdict in images.
    Faces(faces::FacesArgs),
    /// Render the kiss video (MP4 and poster) from one couple frame or two portraits.
    Render(render::RenderArgs),
    /// Check a clip's Content Credentials (C2PA): who made it, how, and whether it is unchanged.
    Verify(verify::VerifyArgs),
    /// Check camera, encoders, runtime and providers, models, disk, clock, the Content
    /// Credentials key and network.
    Doctor {
        /// Also open this camera and wait for a frame.
        #[arg(long)]
        camera: Option<String>,
    },
    /// Install or check model packs.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// The admin pages' password.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Measure speed (figures, and ratios against the Python reference).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("kissbooth: internal error: {}", msg.replace('\n', " "));
    }));
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KISSBOOTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&cli.common, args),
        Command::Faces(args) => faces::run(&cli.common, args, started),
        Command::Render(args) => render::run(&cli.common, args),
        Command::Verify(args) => verify::run(&cli.common, args),
        Command::Doctor { camera } => doctor::run(&cli.common, camera),
        Command::Models(cmd) => models::run(&cli.common, cmd),
        Command::Bench(cmd) => bench::run(&cli.common, cmd),
        Command::Admin(cmd) => admin::run(&cli.common, cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kissbooth: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}
