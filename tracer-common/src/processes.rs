//! Processes: fork, exec, exit, release and wait records, and the zombies
//! the kernel side watches.

use crate::events::{COMM_LEN, EventHeader};

/// Bytes of the executable path captured at `exec`.
pub const FILENAME_LEN: usize = 128;

/// Bytes of the command line (NUL-separated argv) captured at `exec`.
pub const ARGS_LEN: usize = 1024;

/// `ProcessEvent::status` when the exit status could not be read.
pub const EXIT_STATUS_UNKNOWN: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessEvent {
    pub header: EventHeader,
    /// Fork: the new task's id. Exit: the exiting task's id. Freed: the released pid.
    pub pid: u32,
    /// Fork: the parent's tgid. Exit: 1 if the whole thread group is gone.
    pub arg: u32,
    /// Exit: the task's `exit_code` in wait(2) status form (`code << 8`, or
    /// the signal number, `| 0x80` if it dumped core); [`EXIT_STATUS_UNKNOWN`]
    /// if the kernel's layout was not known.
    pub status: u32,
    /// Fork: [`process_flags::THREAD`] when the new task is a thread.
    pub flags: u32,
    pub comm: [u8; COMM_LEN],
    /// Exit of a whole process: its pid in its own pid namespace (1 for a
    /// container's init; the host pid outside containers); 0: unknown.
    pub ns_pid: u32,
    /// Exit of a whole process: its peak resident memory (pages, what
    /// getrusage's `ru_maxrss` says); 0: unknown.
    pub peak_rss_pages: u32,
}

pub mod process_flags {
    /// The fork created a thread (`CLONE_THREAD`), not a process.
    pub const THREAD: u32 = 1;
    /// The forking thread's Python stack came in the record before.
    pub const PY_STACK_SENT: u32 = 2;
    /// The process's interpreter is known to the sampler, the forking
    /// thread's state is not (a thread of a moment ago, not found by its
    /// TLS base): its stack could not be taken.
    pub const NO_PY_THREAD: u32 = 4;
    /// The forking thread's state is known and no Python frame was
    /// running (start-up, shut-down, a C thread).
    pub const NO_PY_FRAME: u32 = 8;
}

/// `sched_process_exec` of a traced process.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    pub header: EventHeader,
    /// The tid that called exec (differs from `header.tgid` when a thread did).
    pub old_pid: u32,
    /// Valid bytes of `filename` (including the NUL).
    pub filename_len: u32,
    /// Valid bytes of `args`.
    pub args_len: u32,
    /// 1 if the command line was longer than [`ARGS_LEN`].
    pub args_truncated: u32,
    /// The name after exec.
    pub comm: [u8; COMM_LEN],
    pub filename: [u8; FILENAME_LEN],
    /// The new image's argv strings, NUL-separated, as the kernel copied
    /// them onto its stack (`mm->arg_start..arg_end`).
    pub args: [u8; ARGS_LEN],
}

/// Which wait syscall returned.
pub mod wait_kind {
    pub const WAIT4: u32 = 0;
    pub const WAITID: u32 = 1;
}

pub mod wait_flags {
    /// `status` / `code` were read from the caller's memory.
    pub const STATUS_VALID: u32 = 1;
    /// The caller is not traced: only sent because it reaped a traced zombie.
    pub const UNTRACED_REAPER: u32 = 2;
}

/// A `wait4`/`waitid` return (header: the waiting task).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitEvent {
    pub header: EventHeader,
    /// [`wait_kind`].
    pub kind: u32,
    /// The child the call reported (wait4's return, waitid's `si_pid`); 0: none.
    pub pid: u32,
    /// The syscall's return value.
    pub ret: i64,
    /// wait4: `*stat_addr`; waitid: `si_status`.
    pub status: i32,
    /// waitid: `si_code` (CLD_EXITED...); wait4: 0.
    pub code: i32,
    /// The `options` argument (WNOHANG, WNOWAIT...).
    pub options: u32,
    /// [`wait_flags`].
    pub flags: u32,
    pub comm: [u8; COMM_LEN],
}

/// Value of `ZOMBIES` (key: tgid of a traced process that has exited and
/// not been released yet).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZombieEntry {
    pub exit_ns: u64,
}

const _: () = assert!(core::mem::size_of::<ProcessEvent>() == 24 + 24 + COMM_LEN);
const _: () =
    assert!(core::mem::size_of::<ExecEvent>() == 24 + 16 + COMM_LEN + FILENAME_LEN + ARGS_LEN);
const _: () = assert!(core::mem::size_of::<WaitEvent>() == 24 + 32 + COMM_LEN);
const _: () = assert!(core::mem::size_of::<ZombieEntry>() == 8);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for ZombieEntry {}
}
