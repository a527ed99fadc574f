//! The `kissbooth` daemon and command line as a library: the binary (`src/main.rs`) parses the
//! command line and calls the command modules; the fuzz targets (`fuzz/`) and their replay test
//! call the parsers through [`fuzz`].

pub mod admin;
pub mod bench;
mod bench_quality;
pub mod booth;
pub mod config;
pub mod connections;
pub mod doctor_cmd;
mod draw;
pub mod faces_cmd;
pub mod fuzz;
pub mod models_cmd;
mod net;
mod notify;
pub mod paths;
mod pipeline;
pub mod render_cmd;
pub mod serve_cmd;
pub mod server;
pub mod session;
pub mod store;
mod telemetry;
mod thermal;

/// An error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}
