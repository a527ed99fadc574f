//! `kissbooth serve`: the booth daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::booth::Booth;
use crate::config::Config;
use crate::paths::Common;

#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); environment variables KISSBOOTH_* and flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 0.0.0.0:8080).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Camera: stills:FOLDER, v4l2:/dev/videoN, gst:PIPELINE or test.
    #[arg(long)]
    pub camera: Option<String>,
    /// Base address for the QR codes (default: the LAN address).
    #[arg(long)]
    pub public_url: Option<String>,
}

pub fn run(common: &Common, args: ServeArgs) -> anyhow::Result<ExitCode> {
    crate::sys::limit_malloc_arenas();
    let mut cfg = Config::load(args.config.as_deref())?;
    cfg.data = common.data.clone();
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(c) = args.camera {
        cfg.camera = c.parse().context("--camera")?;
    }
    if let Some(u) = args.public_url {
        cfg.public_url = u;
    }
    let rt = common.runtime()?;
    let booth = Booth::start(cfg.clone(), common.models_dir(), rt)?;
    if crate::http::admin::setup_needed(&booth.store) {
        crate::http::admin::announce_setup_code(&booth.store)?;
    }
    let tokio_rt = server_runtime()?;
    tokio_rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "kissbooth: serving on http://{addr} (kiosk: http://127.0.0.1:{}/, downloads: {}/d/…)",
            addr.port(),
            booth.public_base
        );
        let app = crate::http::router(booth.clone());
        let heartbeat = crate::notify::Heartbeat::default();
        let since = std::time::Instant::now();
        let hb = heartbeat.clone();
        let net = booth.net.clone();
        tokio::spawn(async move {
            let mut told = false;
            loop {
                // A booth that cannot accept connections is as deaf as a wedged one: let the
                // watchdog restart it.
                if !net.accept_broken() {
                    hb.beat(since);
                    told = false;
                } else if !told {
                    tracing::error!(
                        "not accepting connections for {} s; the systemd watchdog is no longer fed",
                        crate::http::connections::ACCEPT_BROKEN_AFTER.as_secs()
                    );
                    told = true;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        crate::notify::start_watchdog(heartbeat, since);
        crate::notify::notify("READY=1");
        let shutdown = booth.shutdown.clone();
        crate::http::connections::serve(
            listener,
            app,
            &cfg.server,
            booth.net.clone(),
            async move {
                let ctrl_c = tokio::signal::ctrl_c();
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(t) => t,
                        Err(_) => return,
                    };
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
                shutdown.trigger();
            },
        )
        .await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The HTTP server's runtime: two workers at a lower priority (nice 5) than the render threads,
/// so guests downloading at once slow the clip in progress as little as possible.
pub fn server_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("http")
        .on_thread_start(|| {
            // SAFETY: setpriority on the calling thread (on Linux a thread id names the thread
            // for PRIO_PROCESS); a failure only leaves the default priority.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 5);
            }
        })
        .enable_all()
        .build()
}
