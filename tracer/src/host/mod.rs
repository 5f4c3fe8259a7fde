//! What reads the running system: `/proc`, the files and sockets a
//! descriptor names, containers, a process's pidfd and the scope of a
//! node-wide trace.

pub mod containers;
pub mod files;
pub mod pidfd;
pub mod procfs;
pub mod scope;
pub mod sockets;
