//! The `kissbooth` daemon and command line as a library: the binary (`src/main.rs`) parses the
//! command line and calls the command modules; the fuzz targets (`fuzz/`) and their replay test
//! call the parsers through [`fuzz`].

pub mod admin;
mod album;
pub mod attract;
pub mod bench;
mod bench_quality;
pub mod booth;
pub mod config;
pub mod connections;
pub mod doctor_cmd;
mod draw;
pub mod faces_cmd;
pub mod fuzz;
pub mod link;
pub mod models_cmd;
mod net;
mod notify;
pub mod paths;
mod pipeline;
pub mod provenance;
pub mod render_cmd;
pub mod serve_cmd;
pub mod server;
pub mod session;
pub mod settings;
pub mod store;
pub mod sys;
mod telemetry;
mod thermal;
mod title;
pub mod verify_cmd;
mod window;

/// An error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

#[cfg(test)]
mod layering {
    /// The commands (`*_cmd`, `bench*`) use the core; no core module names a command, so a
    /// change to a command never reaches the booth.
    #[test]
    fn no_core_module_imports_a_command() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let command = name.ends_with("_cmd") || name.starts_with("bench");
            if path.extension().is_none_or(|e| e != "rs")
                || command
                || name == "main"
                || name == "lib"
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let bad = line.contains("_cmd::") || line.contains("crate::bench");
                assert!(
                    !bad,
                    "{}:{}: a core module uses a command: {line}",
                    path.display(),
                    n + 1
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 10,
            "only {checked} core modules found in {}",
            src.display()
        );
    }
}
