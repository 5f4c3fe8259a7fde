//! Signals: generation (who sent what to whom, the kernel's result) and
//! delivery (disposition, the receiving thread's Python stack).

use crate::{
    events::{COMM_LEN, EventHeader},
    python::{PY_EVENT_DEPTH, PyFrameRecord},
};

/// The syscall a signal was sent by (0: none, the kernel generated it).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendSyscall {
    None = 0,
    Kill = 1,
    Tkill = 2,
    Tgkill = 3,
    RtSigqueueinfo = 4,
    RtTgsigqueueinfo = 5,
    PidfdSendSignal = 6,
}

impl SendSyscall {
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::None,
            1 => Self::Kill,
            2 => Self::Tkill,
            3 => Self::Tgkill,
            4 => Self::RtSigqueueinfo,
            5 => Self::RtTgsigqueueinfo,
            6 => Self::PidfdSendSignal,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Kill => "kill",
            Self::Tkill => "tkill",
            Self::Tgkill => "tgkill",
            Self::RtSigqueueinfo => "rt_sigqueueinfo",
            Self::RtTgsigqueueinfo => "rt_tgsigqueueinfo",
            Self::PidfdSendSignal => "pidfd_send_signal",
        }
    }
}

/// `signal_generate`, in the sender's context (header: the current task,
/// which for kernel-generated signals is whoever was running: the faulting
/// task, the exiting child for SIGCHLD...).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalGenerateEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub errno: i32,
    /// `si_code` (SI_USER, SI_TKILL, SI_KERNEL, CLD_EXITED...).
    pub code: i32,
    /// The target task (a tid; the thread group leader for process signals).
    pub target_pid: u32,
    /// The target's tgid if the kernel side knows it (traced), else 0.
    pub target_tgid: u32,
    /// 1: sent to the whole thread group; 0: to one thread.
    pub group: u32,
    /// `enum trace_signal_result`: delivered (queued), ignored, already pending...
    pub result: u32,
    /// [`SendSyscall`]: the sender was inside this syscall; 0: the kernel sent it.
    pub syscall: u32,
    pub target_comm: [u8; COMM_LEN],
    pub sender_comm: [u8; COMM_LEN],
}

/// `signal_deliver`, in the thread that takes the signal.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalDeliverEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub errno: i32,
    pub code: i32,
    pub _pad: u32,
    /// 0: SIG_DFL, 1: SIG_IGN, else the handler's address.
    pub sa_handler: u64,
    pub sa_flags: u64,
    /// In a Python process: the signal's slot of CPython's handler table at
    /// delivery (the Python object its handler will call), 0 when unknown.
    pub py_handler: u64,
    /// That object's `func_code` when it is a function, read at delivery
    /// too (a handler reset at once may be freed before userspace looks; its
    /// code object lives on with the code that defined it); 0: unknown.
    pub py_handler_code: u64,
    /// The receiving thread's Python stack when the signal was delivered
    /// (the line that was running), innermost first; all `code == 0` when
    /// the thread has no known Python state or Python sampling is off.
    pub py_frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

/// `rt_sigaction` with a new action, in the calling thread: which signal,
/// the new handler, and the caller's Python stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalActionEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub _pad: u32,
    /// 0: SIG_DFL, 1: SIG_IGN, else the handler's address.
    pub handler: u64,
    pub flags: u64,
    pub py_frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

/// `rt_sigprocmask` that changes the calling thread's mask: the mask
/// before and after (bit `n - 1` is signal `n`), and the caller's Python stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalMaskEvent {
    pub header: EventHeader,
    pub before: u64,
    pub after: u64,
    pub py_frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

/// The main thread of a Python process entered CPython's signal check
/// (`PyErr_CheckSignals`, the eval loop's own) with a delivery to a handler
/// pending: the Python-level handlers of the signals tripped run now, in
/// this thread. Carries where the thread was (the line the handler interrupts).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalCheckEvent {
    pub header: EventHeader,
    pub py_frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

/// Frames kept of each thread's Python stack at a fatal delivery: the
/// post-mortem of a killed process (what every thread was doing).
pub const PY_FATAL_DEPTH: usize = 32;

/// `signal_deliver` of a signal that ends the process (SIGKILL, or one
/// whose default action is to end it, delivered to that action), in a
/// thread of a Python process: the thread's Python stack as it dies. Every
/// thread of a killed process delivers one (the others a SIGKILL: the
/// kernel's group exit), each sent after the thread's delivery record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalFatalStackEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub _pad: u32,
    /// Innermost first; `code == 0` past the end.
    pub frames: [PyFrameRecord; PY_FATAL_DEPTH],
}

/// SIGKILL.
pub const SIGKILL: i32 = 9;

/// Whether a signal's default action ends the process (terminate, or
/// dump core): all but SIGCHLD, SIGURG, SIGWINCH (ignored), SIGCONT and
/// the stop signals.
pub const fn fatal_by_default(sig: i32) -> bool {
    !matches!(sig, 17..=23 | 28)
}

/// `how` of `rt_sigprocmask`.
pub const SIG_BLOCK: i32 = 0;
pub const SIG_UNBLOCK: i32 = 1;
pub const SIG_SETMASK: i32 = 2;
/// SIGKILL and SIGSTOP cannot be blocked: the kernel drops them from any mask.
pub const UNBLOCKABLE: u64 = (1 << (9 - 1)) | (1 << (19 - 1));

/// The mask `rt_sigprocmask(how, set)` leaves a thread with `before`.
pub fn mask_after(how: i32, set: u64, before: u64) -> Option<u64> {
    let after = match how {
        SIG_BLOCK => before | set,
        SIG_UNBLOCK => before & !set,
        SIG_SETMASK => set,
        _ => return None,
    };
    Some(after & !UNBLOCKABLE)
}

const _: () = assert!(core::mem::size_of::<SignalGenerateEvent>() == 24 + 32 + 2 * COMM_LEN);
const _: () =
    assert!(core::mem::size_of::<SignalFatalStackEvent>() == 24 + 8 + 24 * PY_FATAL_DEPTH);
const _: () = assert!(core::mem::size_of::<SignalDeliverEvent>() == 24 + 48 + 24 * PY_EVENT_DEPTH);
