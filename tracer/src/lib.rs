//! `tracer`: attach eBPF programs to a Python process (or launch one) and
//! report what the kernel did to it.
//!
//! Data flows one way: kernel programs -> ring buffer and maps -> `events`
//! decoder -> `analysis` aggregators -> one `report::Report` -> renderers
//! (see docs/architecture.md). The report and its renderers are the crate
//! below this one, `tracer-report`, named `report` here (and its `Frame`,
//! `frame`): the compiler keeps them from reaching the kernel, the host or
//! the analysis. What reads the running system (`/proc`, files, sockets,
//! containers) is `tracer-host`, named `host` here, and what is read of a
//! Python process from outside (its interpreter, layouts, threads, code
//! objects) is `tracer-python`, named `python`: neither can reach the
//! kernel side, the events or the analysis. The binary (`main.rs`) is the edge: options, outputs, exit
//! codes. The library also serves the fuzz targets (`fuzz/`),
//! which feed its parsers untrusted bytes.

pub mod analysis;
pub mod cli;
pub mod events;
pub mod kernel;
pub mod live;
pub mod manpage;
pub mod native;
pub mod otlp_exporter;
pub mod run;
pub mod serve;
pub mod session;

pub use tracer_host as host;
pub use tracer_python as python;
pub use tracer_report as report;
pub use tracer_report::frame;
