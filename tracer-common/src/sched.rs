//! Scheduling: per-thread context switches and on/off-CPU time.

use crate::events::COMM_LEN;

/// Value of the `THREADS` map (key: tid): scheduling figures of one traced thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadStats {
    pub tgid: u32,
    pub _pad: u32,
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    pub off_cpu_ns: u64,
    /// When it last went on / off a CPU (0: not seen yet).
    pub last_on_ns: u64,
    pub last_off_ns: u64,
    pub comm: [u8; COMM_LEN],
}

const _: () = assert!(core::mem::size_of::<ThreadStats>() == 8 + 48 + COMM_LEN);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for ThreadStats {}
}
