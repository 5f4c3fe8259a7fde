//! What reads the running system: `/proc`, the files and sockets a
//! descriptor names, containers, the scope of a node-wide trace, and the
//! answer to analysis' `System` trait built from them.

pub mod containers;
pub mod files;
pub mod live_system;
pub mod procfs;
pub mod scope;
pub mod sockets;
