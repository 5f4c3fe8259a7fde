//! What every ring buffer record starts with, the record kinds, and the
//! counters of what the kernel side could not record.

/// Length of a kernel `comm` (task name) including the NUL.
pub const COMM_LEN: usize = 16;

/// Indices of the `DROPS` per-CPU counters: everything the kernel side could
/// not record. Userspace reports each non-zero one.
pub mod drops {
    /// Ring buffer full: an event record was lost.
    pub const RINGBUF: u32 = 0;
    /// `READ_STATS` full: a read was not counted; or a read that ended
    /// while another thread closed its descriptor, which may have missed
    /// the close's record.
    pub const READ_STATS: u32 = 1;
    /// `THREADS` full: a thread's scheduling was not counted.
    pub const THREADS: u32 = 2;
    /// `FD_FILES` / in-flight tables full.
    pub const TABLES: u32 = 3;
    /// Process / signal bookkeeping tables (`TASKS`, `ZOMBIES`, `WAITING`...) full.
    pub const LIFECYCLE: u32 = 4;
    /// Ring buffer full: a Python stack sample was lost.
    pub const PY_SAMPLES: u32 = 5;
    pub const COUNT: u32 = 6;
}

/// Discriminant of every ring buffer record (first field of [`EventHeader`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `openat` returned a descriptor: [`FileEvent`] with the path.
    FileOpened = 1,
    /// A read on a descriptor the tracer has not seen opened: [`FileEvent`]
    /// without a path; userspace resolves it through `/proc/PID/fd`.
    FdDiscovered = 2,
    /// A traced process forked: [`ProcessEvent`].
    ProcessForked = 3,
    /// A traced thread or process exited: [`ProcessEvent`].
    ProcessExited = 4,
    /// A traced process called `exec` successfully: [`ExecEvent`].
    ProcessExec = 5,
    // 6 was `ExecArgs` (argv at execve entry), replaced by `ExecEvent::args`.
    /// A traced process that had exited was released (reaped, or auto-reaped):
    /// [`ProcessEvent`] with `pid`. Comes from an RCU callback, so the header's
    /// task is not meaningful.
    ProcessFreed = 7,
    /// `wait4`/`waitid` returned in a traced process, or returned a traced
    /// zombie in any process (its reaper): [`WaitEvent`].
    WaitDone = 8,
    /// `signal_generate` for or by a traced process: [`SignalGenerateEvent`].
    SignalGenerated = 9,
    /// `signal_deliver` in a traced thread: [`SignalDeliverEvent`].
    SignalDelivered = 10,
    /// A CPU-clock sample of a thread's Python stack: [`PySample`].
    PySample = 11,
    /// A kernel-event stack not seen before: [`PyStackEvent`], so userspace
    /// symbolizes it while the thread (asleep, or just back from a read) lives.
    PyStack = 12,
    /// The Python stack of one fork / clone of a traced thread:
    /// [`PyForkEvent`], sent just before the fork's own record.
    PyForkStack = 13,
    /// `rt_sigaction` with a new action in a traced thread: [`SignalActionEvent`].
    SignalAction = 14,
    /// `rt_sigprocmask` that changed a traced thread's mask: [`SignalMaskEvent`].
    SignalMask = 15,
    /// A Python process's main thread checked for signals after one was
    /// delivered to a handler: its Python-level handlers run now:
    /// [`SignalCheckEvent`].
    SignalCheck = 16,
    /// `--perfetto` only: a read syscall of a traced thread returned:
    /// [`IoEvent`](crate::IoEvent), one per read.
    IoDone = 17,
    /// `--perfetto` only: a traced thread went off or on a CPU:
    /// [`SwitchEvent`](crate::SwitchEvent).
    Switched = 18,
    /// An event loop's iteration took at least the stall threshold:
    /// [`LoopStallEvent`](crate::LoopStallEvent).
    LoopStall = 19,
    /// A descriptor's read figures, sent when it is closed (or its number
    /// reused) in a one-off trace: [`FdClosedEvent`](crate::FdClosedEvent).
    FdClosed = 20,
    /// A traced thread's scheduling figures, sent at its last switch-out
    /// in a one-off trace: [`ThreadExitedEvent`](crate::ThreadExitedEvent).
    ThreadExited = 21,
    /// The names of a code object the sampler met for the first time:
    /// [`PyCodeNames`](crate::PyCodeNames).
    PyCodeNames = 22,
    /// A Python sample with the native stack under it: [`crate::PyNativeSample`].
    PyNativeSample = 23,
    /// A fork's Python stack with the native stack under it, for a process
    /// unwound natively: [`crate::PyNativeForkEvent`].
    PyNativeForkStack = 24,
    /// A signal delivery with the receiving thread's native stack, for a
    /// process unwound natively: [`crate::SignalNativeDeliverEvent`].
    SignalNativeDelivered = 25,
    /// A fatal signal delivered to a thread of a Python process: the
    /// thread's stack as it dies: [`crate::SignalFatalStackEvent`].
    SignalFatalStack = 26,
    /// The OOM killer chose a victim: [`crate::OomKillEvent`].
    OomKill = 27,
    /// A sampled page fault of a Python thread, with its stack:
    /// [`crate::PyFaultSample`].
    PyFaultSample = 28,
    /// The line table of a code object on a dying thread's stack:
    /// [`crate::PyCodeLines`].
    PyCodeLines = 29,
    /// khugepaged (or `MADV_COLLAPSE`) collapsed a traced process's small
    /// pages into a huge page: [`crate::HugePageCollapsedEvent`].
    HugePageCollapsed = 30,
    /// A read or write on a connection that carried an HTTP request, or its
    /// close: [`crate::RequestIoEvent`].
    RequestIo = 31,
}

impl EventKind {
    pub fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::FileOpened),
            2 => Some(Self::FdDiscovered),
            3 => Some(Self::ProcessForked),
            4 => Some(Self::ProcessExited),
            5 => Some(Self::ProcessExec),
            7 => Some(Self::ProcessFreed),
            8 => Some(Self::WaitDone),
            9 => Some(Self::SignalGenerated),
            10 => Some(Self::SignalDelivered),
            11 => Some(Self::PySample),
            12 => Some(Self::PyStack),
            13 => Some(Self::PyForkStack),
            14 => Some(Self::SignalAction),
            15 => Some(Self::SignalMask),
            16 => Some(Self::SignalCheck),
            17 => Some(Self::IoDone),
            18 => Some(Self::Switched),
            19 => Some(Self::LoopStall),
            20 => Some(Self::FdClosed),
            21 => Some(Self::ThreadExited),
            22 => Some(Self::PyCodeNames),
            23 => Some(Self::PyNativeSample),
            24 => Some(Self::PyNativeForkStack),
            25 => Some(Self::SignalNativeDelivered),
            26 => Some(Self::SignalFatalStack),
            27 => Some(Self::OomKill),
            28 => Some(Self::PyFaultSample),
            29 => Some(Self::PyCodeLines),
            30 => Some(Self::HugePageCollapsed),
            31 => Some(Self::RequestIo),
            _ => None,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    pub kind: u32,
    pub tgid: u32,
    pub tid: u32,
    pub _pad: u32,
    pub ts_ns: u64,
}

const _: () = assert!(core::mem::size_of::<EventHeader>() == 24);
