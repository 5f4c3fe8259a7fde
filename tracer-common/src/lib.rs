//! Plain `#[repr(C)]` data shared by the eBPF programs and userspace, one
//! module per concern with the same names on both sides of the ring buffer:
//! `io`, `sched`, `processes`, `signals`, `python`, `loops`, `memory`, `native`, `requests`, plus the record
//! header (`events`) and the load-time configuration (`config`).
//!
//! Nothing here has logic: event records carried by the ring buffer, keys and
//! values of the aggregation maps, and the load-time configuration. Every
//! record has a size assertion next to it so both sides agree on the layout.
#![no_std]

pub mod config;
pub mod events;
pub mod io;
pub mod loops;
pub mod memory;
pub mod native;
pub mod processes;
pub mod python;
pub mod requests;
pub mod sched;
pub mod signals;
pub mod skips;

pub use config::*;
pub use events::*;
pub use io::*;
pub use loops::*;
pub use memory::*;
pub use native::*;
pub use processes::*;
pub use python::*;
pub use requests::*;
pub use sched::*;
pub use signals::*;
