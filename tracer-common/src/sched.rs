//! Scheduling: per-thread context switches and on/off-CPU time.

use crate::{
    events::{COMM_LEN, EventHeader},
    python::{PY_EVENT_DEPTH, PyFrameRecord},
};

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
    /// The scheduler's own total of the thread's CPU time
    /// (`se.sum_exec_runtime`) at its last switch-out, or when its row was
    /// made: a stretch on CPU whose switch-in was not seen is counted from
    /// it (0 while the row has none, or the kernel's BTF lacks it).
    pub runtime_ns: u64,
    pub comm: [u8; COMM_LEN],
}

const _: () = assert!(core::mem::size_of::<ThreadStats>() == 8 + 56 + COMM_LEN);

/// A one-off trace's thread ended: its row, sent at its last switch-out
/// (the header's tgid / tid are its own).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThreadExitedEvent {
    pub header: EventHeader,
    pub stats: ThreadStats,
}

const _: () = assert!(core::mem::size_of::<ThreadExitedEvent>() == 24 + 80);

/// How many live threads the kernel's `THREADS` table holds. In a one-off
/// trace a thread's row leaves it when the thread ends, so this bounds the
/// threads alive at once, not the threads of a trace.
pub const MAX_THREAD_ROWS: u32 = 65_536;

/// Bits of [`SwitchEvent::flags`].
pub mod switch_flags {
    /// The thread left the CPU (else it came on).
    pub const OUT: u32 = 1;
    /// It left asleep, not preempted.
    pub const VOLUNTARY: u32 = 2;
    /// `frames` holds its Python stack as it left (top frames).
    pub const STACK: u32 = 4;
}

/// `--perfetto` only: one context switch of a traced thread (the header's
/// tgid / tid are that thread's, its time the switch's).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SwitchEvent {
    pub header: EventHeader,
    pub flags: u32,
    pub _pad: u32,
    /// Innermost first; valid with [`switch_flags::STACK`].
    pub frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

const _: () = assert!(core::mem::size_of::<SwitchEvent>() == 24 + 8 + 24 * PY_EVENT_DEPTH);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for ThreadStats {}
}
