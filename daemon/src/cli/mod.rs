//! The command line's commands, one module each. They use the core (`booth`, `clip`, `store`,
//! `config`); the core never uses them.

pub mod admin;
pub mod bench;
mod bench_quality;
pub mod doctor;
pub mod faces;
pub mod models;
pub mod render;
pub mod serve;
pub mod verify;
