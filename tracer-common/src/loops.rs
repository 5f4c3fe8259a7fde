//! Event loops: a thread's time from returning out of its selector wait
//! (`epoll_wait`, `select`, `poll` and their variants) to its next wait is
//! one iteration of its loop; an iteration longer than the threshold is a
//! stall (the loop could not serve anything else meanwhile).

use crate::{
    events::EventHeader,
    python::{PY_EVENT_DEPTH, PyFrameRecord},
};

/// Upper bounds (ns) of the iteration-time buckets; the last bucket counts
/// the rest. 1 ms to 10 s, the bounds of asyncio's own slow-callback
/// warnings and of a frozen service.
pub const LOOP_BUCKETS_NS: [u64; 11] = [
    1_000_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Buckets of [`LoopThread::buckets`]: one per bound and the rest.
pub const LOOP_BUCKETS: usize = LOOP_BUCKETS_NS.len() + 1;

/// Value of the `LOOPS` map (key: tid): the iterations of a traced thread
/// that waits in a selector.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopThread {
    pub tgid: u32,
    /// The syscall whose return began the iteration: a loop waits with one
    /// selector, so an iteration ends only at a wait of the same syscall (a
    /// `poll` at start-up and the `epoll_wait` of the loop started later
    /// are not one loop).
    pub wait_syscall: u32,
    /// When its last selector wait returned (0: in a wait, or never seen
    /// returning).
    pub returned_ns: u64,
    pub iterations: u64,
    /// Sum of the iterations' times.
    pub busy_ns: u64,
    /// Iterations per time bucket ([`LOOP_BUCKETS_NS`]).
    pub buckets: [u64; LOOP_BUCKETS],
}

const _: () = assert!(core::mem::size_of::<LoopThread>() == 32 + 8 * LOOP_BUCKETS);

/// An iteration at least as long as the threshold ended (the header's time:
/// its next selector wait began).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStallEvent {
    pub header: EventHeader,
    /// When the iteration began: its previous wait returned.
    pub start_ns: u64,
    /// The thread's Python stack as it entered the wait, innermost first
    /// (which loop this is: asyncio's `_run_once`...).
    pub py_frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

const _: () = assert!(core::mem::size_of::<LoopStallEvent>() == 24 + 8 + 24 * PY_EVENT_DEPTH);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for LoopThread {}
}
