//! What talks to the kernel's BPF: the checks made before anything is
//! loaded, the reader of the kernel's BTF, the programs loaded and attached
//! with their maps, the perf events some of them run at, the uprobes
//! registered off the loop's thread, and a thread's private mounts.

pub mod btf;
pub mod mount_ns;
pub mod perf_event;
pub mod preflight;
pub mod probes;
pub mod uprobes;
