//! `tracer`: attach eBPF programs to a Python process (or launch one) and
//! report what the kernel did to it.
//!
//! Data flows one way: kernel programs -> ring buffer and maps -> `events`
//! decoder -> `analysis` aggregators -> one `report::Report` -> renderers
//! (see docs/architecture.md). The binary (`main.rs`) is the edge: options,
//! outputs, exit codes. The library also serves the fuzz targets (`fuzz/`),
//! which feed its parsers untrusted bytes.

pub mod analysis;
pub mod btf;
pub mod cli;
pub mod containers;
pub mod continuous;
pub mod drain;
pub mod dump;
pub mod events;
pub mod files;
pub mod frame;
pub mod live;
pub mod manpage;
pub mod native;
pub mod otlp_exporter;
pub mod output;
pub mod preflight;
pub mod probes;
pub mod procfs;
pub mod python;
pub mod python_refresh;
pub mod report;
pub mod run;
pub mod run_error;
pub mod scope;
pub mod serve;
pub mod sockets;
pub mod start;
pub mod status_line;
pub mod system;
pub mod target;
pub mod uprobes;
