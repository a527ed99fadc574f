//! The `kissbooth` daemon and command line as a library: the binary (`src/main.rs`) parses the
//! command line and calls the commands in [`cli`]; the fuzz targets (`fuzz/`) and their replay
//! test call the parsers through [`fuzz`].
//!
//! - [`booth`]: the booth's core: sessions and their state machine, the render queue, retention,
//!   the live preview, thermal throttling, download links, the event's settings.
//! - [`http`]: the booth's faces on the network: the kiosk API and guest pages, the admin pages,
//!   and the accept loop that guards them.
//! - [`clip`]: one clip from two faces: plan, frames, encode, poster, title, Content Credentials.
//! - [`cli`]: one module per command (`serve`, `render`, `faces`, `models`, `bench`, ...).
//! - [`store`], [`config`], [`paths`], [`sys`]: storage, configuration, folders, the OS.

pub mod booth;
pub mod cli;
pub mod clip;
pub mod clock;
pub mod config;
pub mod fuzz;
pub mod http;
mod net;
mod notify;
pub mod paths;
pub mod store;
pub mod sys;
mod telemetry;
mod window;

/// An error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

#[cfg(test)]
mod layering {
    /// The commands (`cli/`) use the core; no core module names a command, so a change to a
    /// command never reaches the booth.
    #[test]
    fn no_core_module_imports_a_command() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "cli") {
                        walk(&path, out);
                    }
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let mut checked = 0;
        for path in files {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.parent() == Some(src.as_path()) && (name == "main" || name == "lib") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                // `crate::cli` itself, not `crate::clip`.
                let names_cli = line.match_indices("crate::cli").any(|(i, m)| {
                    !line[i + m.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                });
                assert!(
                    !names_cli,
                    "{}:{}: a core module uses a command: {line}",
                    path.display(),
                    n + 1
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 25,
            "only {checked} core modules found in {}",
            src.display()
        );
    }
}
