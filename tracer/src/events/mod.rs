//! What the kernel side sends, typed: ring buffer records -> [`Event`]s
//! (the only place that knows their byte layout), and the maps read at the
//! end -> one [`MapSnapshot`].

mod fork_stack;
mod memory;
pub use fork_stack::ForkStack;
use fork_stack::py_fork_stack;
pub use memory::{FaultSample, OomCgroup, OomKill};

use std::{collections::HashMap, mem::size_of};

use tracer_common::{
    ARGS_LEN, COMM_LEN, EXIT_STATUS_UNKNOWN, EventHeader, EventKind, ExecEvent, FILENAME_LEN,
    FdClosedEvent, FdKey, FdRow, FileEvent, IoEvent, IoKey, IoStats, IoSyscall, NATIVE_MAX_DEPTH,
    PATH_CAPTURE_LEN, PY_MAX_DEPTH, PY_SAMPLE_TORN, ProcessEvent, PyCodeLines, PyCodeNames,
    PyEntryKey, PyEventKey, PyEventValue, PyFrameRecord, PyNativeForkEvent, PyNativeSample,
    PySample, PyStackEvent, SendSyscall, SignalActionEvent, SignalCheckEvent, SignalDeliverEvent,
    SignalGenerateEvent, SignalMaskEvent, SignalNativeDeliverEvent, SwitchEvent, ThreadExitedEvent,
    ThreadStats, WaitEvent, drops, process_flags, switch_flags, wait_flags, wait_kind,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A traced process opened `path` (first time for this process and path).
    FileOpened {
        tgid: u32,
        fd: i32,
        file_id: u64,
        path: String,
        /// The path did not fit in the capture buffer.
        truncated: bool,
        /// What the kernel read about the file it opened.
        kernel: Option<crate::host::files::KernelFile>,
    },
    /// A read on a descriptor whose opening was not seen.
    FdDiscovered {
        tgid: u32,
        fd: i32,
        file_id: u64,
        /// What the kernel said the descriptor is, if it could read it.
        kernel: Option<crate::host::files::KernelFile>,
    },
    ProcessForked {
        parent_tgid: u32,
        parent_tid: u32,
        child: u32,
        /// `CLONE_THREAD`: a new thread of `parent_tgid`, not a process.
        is_thread: bool,
        ts_ns: u64,
        comm: String,
        /// Whether the forking thread's Python stack came before, or why not.
        stack: ForkStack,
    },
    ProcessExited {
        tgid: u32,
        tid: u32,
        group_dead: bool,
        ts_ns: u64,
        comm: String,
        /// wait(2)-style status (`code << 8`, or signal | 0x80 core), when known.
        status: Option<u32>,
        /// Whole process exits: its pid in its own pid namespace, when known.
        ns_pid: Option<u32>,
        /// Whole process exits: its peak resident memory (pages), when known.
        peak_rss_pages: Option<u64>,
    },
    /// A CPU-clock sample of a thread's raw Python stack (innermost first).
    PySample {
        ts_ns: u64,
        tgid: u32,
        tid: u32,
        frames: Vec<PyFrameRecord>,
        truncated: bool,
        /// The walk met a pointer no frame or code object has (read while
        /// the interpreter changed the chain): not to be trusted.
        torn: bool,
        /// The running asyncio task's address and its name object then
        /// (0: no task).
        task: u64,
        task_name: u64,
        /// The native stack under it (`--native`), innermost first.
        native: Option<NativeStack>,
        /// Whether the thread held the GIL (`None`: no GIL known).
        gil_held: Option<bool>,
    },
    /// A sampled minor page fault of a Python thread, with its stack.
    PyFaultSample(memory::FaultSample),
    /// khugepaged collapsed pages of process `tgid` into a huge page,
    /// mapping `pages` that were not there; its resident pages after.
    HugePageCollapsed {
        tgid: u32,
        pages: u64,
        rss_pages: u64,
    },
    /// A kernel-event stack (reads, sleeps) seen for the first time, or
    /// (`counts` not zero) counts `PY_EVENT_STACKS` had no room for.
    PyStack {
        key: PyEventKey,
        counts: PyEventValue,
    },
    /// The names of a code object the sampler met for the first time, as
    /// it copied them (`code`, `check`: as the sample's frame has them; the
    /// Python layer reads the strings).
    PyCodeNames(Box<PyCodeNames>),
    /// The line table the kernel copied of a code object on the stack of a
    /// thread dying of a signal (its process is gone before it is read).
    PyCodeLines(Box<PyCodeLines>),
    /// The Python stack of one fork / clone by thread-group `tgid`, with
    /// the child it made (pid, or tid for a thread); innermost first.
    PyForkStack {
        tgid: u32,
        child: u32,
        frames: Vec<PyFrameRecord>,
        /// The forking thread's native stack (a process fork, `--native`).
        native: Option<NativeStack>,
    },
    ProcessExec {
        tgid: u32,
        /// The tid that called exec.
        old_pid: u32,
        ts_ns: u64,
        comm: String,
        filename: String,
        /// The new command line (empty if it could not be read).
        argv: Vec<String>,
        /// The command line was longer than what was captured.
        truncated: bool,
    },
    /// A traced process that had exited was released.
    ProcessFreed {
        pid: u32,
        ts_ns: u64,
    },
    WaitDone(WaitDone),
    SignalGenerated(SignalGenerated),
    SignalDelivered(SignalDelivered),
    /// A traced thread set a new action for a signal (`rt_sigaction`).
    SignalAction(SignalAction),
    /// A traced thread changed its signal mask (`rt_sigprocmask`).
    SignalMask(SignalMask),
    /// A Python process's main thread is about to run its Python-level
    /// signal handlers (raw frames: the line they interrupt).
    SignalCheck {
        ts_ns: u64,
        tgid: u32,
        tid: u32,
        py_frames: Vec<PyFrameRecord>,
    },
    /// The OOM killer chose a victim.
    OomKill(Box<OomKill>),
    /// A signal that ends the process was delivered to thread `tid`: its
    /// Python stack as it dies (raw frames, innermost first), after the
    /// delivery's own event.
    SignalFatalStack {
        ts_ns: u64,
        tgid: u32,
        tid: u32,
        sig: i32,
        py_frames: Vec<PyFrameRecord>,
    },
    /// An event loop iteration of thread `tid` took the stall threshold or
    /// more, from `start_ns` to `end_ns` (raw frames: the stack that entered
    /// the next wait).
    LoopStall {
        tgid: u32,
        tid: u32,
        start_ns: u64,
        end_ns: u64,
        py_frames: Vec<PyFrameRecord>,
    },
    /// `--perfetto`: one read syscall, at its return.
    IoDone(IoDone),
    /// A read or write on a connection that carried an HTTP/1.x request
    /// line, or its close (`requests`).
    RequestIo(tracer_common::RequestIoEvent),
    /// A one-off trace's descriptor was closed (or its number reused):
    /// every read made through it since it was opened.
    FdClosed {
        tgid: u32,
        fd: i32,
        row: Box<FdRow>,
    },
    /// A one-off trace's thread ended: its scheduling row, from its last
    /// switch-out (the kernel no longer holds it).
    ThreadExited {
        tgid: u32,
        tid: u32,
        stats: ThreadStats,
    },
    /// `--perfetto`: a traced thread left (`out`) or came on a CPU.
    Switched {
        ts_ns: u64,
        tgid: u32,
        tid: u32,
        out: bool,
        voluntary: bool,
        /// Its Python stack as it left asleep (top frames), when captured.
        py_frames: Vec<PyFrameRecord>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoDone {
    pub tgid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub file_id: u64,
    pub fd: i32,
    pub syscall: IoSyscall,
    pub request: u64,
    /// Bytes read, or `-errno`.
    pub ret: i64,
    pub voluntary: u32,
    pub involuntary: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitSyscall {
    Wait4,
    Waitid,
}

impl WaitSyscall {
    pub fn name(self) -> &'static str {
        match self {
            Self::Wait4 => "wait4",
            Self::Waitid => "waitid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitDone {
    pub tgid: u32,
    pub tid: u32,
    pub comm: String,
    pub ts_ns: u64,
    pub syscall: WaitSyscall,
    /// The child reported (0: none, e.g. WNOHANG with nothing to reap).
    pub pid: u32,
    pub ret: i64,
    /// wait4: the status word; waitid: `si_status`.
    pub status: Option<i32>,
    /// waitid: `si_code`.
    pub code: i32,
    pub options: u32,
    /// Not a traced process: it reaped a traced zombie (init, a subreaper).
    pub untraced_reaper: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalGenerated {
    pub ts_ns: u64,
    /// The task that was running: the sender for a syscall, else the context
    /// the kernel generated it in.
    pub tgid: u32,
    pub tid: u32,
    pub comm: String,
    pub sig: i32,
    pub errno: i32,
    pub code: i32,
    pub target_pid: u32,
    /// 0 when the target is not traced.
    pub target_tgid: u32,
    pub target_comm: String,
    pub group: bool,
    pub result: u32,
    /// `None`: generated by the kernel, not by a signal-sending syscall.
    pub syscall: Option<SendSyscall>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalDelivered {
    pub ts_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    pub sig: i32,
    pub errno: i32,
    pub code: i32,
    pub sa_handler: u64,
    pub sa_flags: u64,
    /// The Python object CPython's handler table held for the signal at
    /// delivery (0: unknown).
    pub py_handler: u64,
    /// Its `func_code` when it is a function, read at delivery (0: unknown).
    pub py_handler_code: u64,
    /// The receiving thread's raw Python frames at delivery, innermost
    /// first (empty: none captured).
    pub py_frames: Vec<PyFrameRecord>,
    /// Its native stack where the signal interrupted it (`--native`).
    pub native: Option<NativeStack>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalAction {
    pub ts_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    pub sig: i32,
    /// 0: SIG_DFL, 1: SIG_IGN, else the handler's address.
    pub handler: u64,
    pub flags: u64,
    /// The caller's raw Python frames, innermost first (empty: none).
    pub py_frames: Vec<PyFrameRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalMask {
    pub ts_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    /// The thread's mask before and after (bit `n - 1`: signal `n`).
    pub before: u64,
    pub after: u64,
    pub py_frames: Vec<PyFrameRecord>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {need}-byte layout")]
    Short { len: usize, need: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
}

fn read<T: Copy>(bytes: &[u8]) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: length checked; T is a plain #[repr(C)] type, read unaligned.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// A NUL-terminated (or full) byte string, lossily as UTF-8.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// NUL-separated arguments (the last one may lack its NUL when cut short).
pub fn split_args(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// What the kernel read about a record's file, if anything.
fn kernel_file(event: &FileEvent) -> Option<crate::host::files::KernelFile> {
    (event.fs_magic != 0).then_some(crate::host::files::KernelFile {
        ino: event.ino,
        fs_magic: event.fs_magic,
        blksize: event.blksize,
        mode: event.mode,
        socket: crate::host::sockets::KernelSocket::from_ends(&event.socket),
    })
}

/// The leading frames of a fixed-size capture (`code == 0` marks its end).
fn frames_until_empty(frames: &[PyFrameRecord]) -> Vec<PyFrameRecord> {
    frames.iter().take_while(|f| f.code != 0).copied().collect()
}

/// A native stack as the sampler unwound it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeStack {
    /// Instruction addresses, innermost first (then return addresses).
    pub addresses: Vec<u64>,
    /// Why the unwind stopped (`tracer_common::native_end`).
    pub end: u32,
}

fn native_stack(depth: u32, end: u32, addresses: &[u64; NATIVE_MAX_DEPTH]) -> NativeStack {
    let depth = (depth as usize).min(NATIVE_MAX_DEPTH);
    NativeStack {
        addresses: addresses[..depth].to_vec(),
        end,
    }
}

fn signal_delivered(
    header: &EventHeader,
    event: &SignalDeliverEvent,
    native: Option<NativeStack>,
) -> Event {
    Event::SignalDelivered(SignalDelivered {
        ts_ns: header.ts_ns,
        tgid: header.tgid,
        tid: header.tid,
        sig: event.sig,
        errno: event.errno,
        code: event.code,
        sa_handler: event.sa_handler,
        sa_flags: event.sa_flags,
        py_handler: event.py_handler,
        py_handler_code: event.py_handler_code,
        py_frames: frames_until_empty(&event.py_frames),
        native,
    })
}

fn py_sample(header: &EventHeader, sample: &PySample, native: Option<NativeStack>) -> Event {
    let depth = (sample.depth as usize).min(PY_MAX_DEPTH);
    Event::PySample {
        ts_ns: header.ts_ns,
        tgid: header.tgid,
        tid: header.tid,
        frames: sample.frames[..depth].to_vec(),
        truncated: sample.truncated == 1,
        torn: sample.truncated == PY_SAMPLE_TORN,
        task: sample.task,
        task_name: sample.task_name,
        gil_held: match sample.gil {
            tracer_common::py_gil::HELD => Some(true),
            tracer_common::py_gil::NOT_HELD => Some(false),
            _ => None,
        },
        native,
    }
}

/// A record's common header (its kind, task and time), undecoded.
pub fn header(bytes: &[u8]) -> Option<(Option<EventKind>, EventHeader)> {
    let header: EventHeader = read(bytes).ok()?;
    Some((EventKind::from_u32(header.kind), header))
}

pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let header: EventHeader = read(bytes)?;
    let kind = EventKind::from_u32(header.kind).ok_or(DecodeError::UnknownKind(header.kind))?;
    Ok(match kind {
        EventKind::FileOpened | EventKind::FdDiscovered => file_event(kind, &header, bytes)?,
        EventKind::ProcessForked => {
            let event: ProcessEvent = read(bytes)?;
            Event::ProcessForked {
                parent_tgid: event.arg,
                parent_tid: header.tid,
                child: event.pid,
                is_thread: event.flags & process_flags::THREAD != 0,
                ts_ns: header.ts_ns,
                comm: c_string(&event.comm[..COMM_LEN]),
                stack: ForkStack::of(event.flags),
            }
        }
        EventKind::ProcessExited => process_exited(&header, bytes)?,
        EventKind::PySample => py_sample(&header, &read(bytes)?, None),
        EventKind::PyNativeSample => {
            let record: PyNativeSample = read(bytes)?;
            let native = native_stack(record.native_depth, record.native_end, &record.native);
            py_sample(&header, &record.sample, Some(native))
        }
        EventKind::PyFaultSample => Event::PyFaultSample(memory::fault_sample(&read(bytes)?)),
        EventKind::HugePageCollapsed => {
            let event: tracer_common::HugePageCollapsedEvent = read(bytes)?;
            Event::HugePageCollapsed {
                tgid: event.header.tgid,
                pages: event.pages,
                rss_pages: event.rss_pages,
            }
        }
        EventKind::PyStack => {
            let event: PyStackEvent = read(bytes)?;
            Event::PyStack {
                key: event.key,
                counts: event.counts,
            }
        }
        EventKind::PyCodeNames => Event::PyCodeNames(Box::new(read(bytes)?)),
        EventKind::PyCodeLines => Event::PyCodeLines(Box::new(read(bytes)?)),
        EventKind::PyForkStack => py_fork_stack(&header, &read(bytes)?, None),
        EventKind::PyNativeForkStack => {
            let record: PyNativeForkEvent = read(bytes)?;
            let native = native_stack(record.native_depth, record.native_end, &record.native);
            py_fork_stack(&header, &record.fork, Some(native))
        }
        EventKind::ProcessFreed => {
            let event: ProcessEvent = read(bytes)?;
            Event::ProcessFreed {
                pid: event.pid,
                ts_ns: header.ts_ns,
            }
        }
        EventKind::ProcessExec => process_exec(&header, bytes)?,
        EventKind::WaitDone => wait_done(&header, bytes)?,
        EventKind::SignalGenerated => signal_generated(&header, bytes)?,
        EventKind::SignalDelivered => signal_delivered(&header, &read(bytes)?, None),
        EventKind::SignalNativeDelivered => {
            let record: SignalNativeDeliverEvent = read(bytes)?;
            // No Python stack captured: no native one either.
            let native = (record.native_depth > 0)
                .then(|| native_stack(record.native_depth, record.native_end, &record.native));
            signal_delivered(&header, &record.deliver, native)
        }
        EventKind::SignalAction => {
            let event: SignalActionEvent = read(bytes)?;
            Event::SignalAction(SignalAction {
                ts_ns: header.ts_ns,
                tgid: header.tgid,
                tid: header.tid,
                sig: event.sig,
                handler: event.handler,
                flags: event.flags,
                py_frames: frames_until_empty(&event.py_frames),
            })
        }
        EventKind::SignalCheck => {
            let event: SignalCheckEvent = read(bytes)?;
            Event::SignalCheck {
                ts_ns: header.ts_ns,
                tgid: header.tgid,
                tid: header.tid,
                py_frames: frames_until_empty(&event.py_frames),
            }
        }
        EventKind::OomKill => {
            let event: tracer_common::OomKillEvent = read(bytes)?;
            Event::OomKill(Box::new(memory::oom_kill(&header, &event)))
        }
        EventKind::SignalFatalStack => {
            let event: tracer_common::SignalFatalStackEvent = read(bytes)?;
            Event::SignalFatalStack {
                ts_ns: header.ts_ns,
                tgid: header.tgid,
                tid: header.tid,
                sig: event.sig,
                py_frames: frames_until_empty(&event.frames),
            }
        }
        EventKind::LoopStall => {
            let event: tracer_common::LoopStallEvent = read(bytes)?;
            Event::LoopStall {
                tgid: header.tgid,
                tid: header.tid,
                start_ns: event.start_ns,
                end_ns: header.ts_ns,
                py_frames: frames_until_empty(&event.py_frames),
            }
        }
        EventKind::ThreadExited => {
            let event: ThreadExitedEvent = read(bytes)?;
            Event::ThreadExited {
                tgid: header.tgid,
                tid: header.tid,
                stats: event.stats,
            }
        }
        EventKind::FdClosed => {
            let event: FdClosedEvent = read(bytes)?;
            Event::FdClosed {
                tgid: header.tgid,
                fd: event.fd,
                row: Box::new(event.row),
            }
        }
        EventKind::IoDone => io_done(&header, bytes)?,
        EventKind::RequestIo => Event::RequestIo(read(bytes)?),
        EventKind::Switched => switched(&header, bytes)?,
        EventKind::SignalMask => {
            let event: SignalMaskEvent = read(bytes)?;
            Event::SignalMask(SignalMask {
                ts_ns: header.ts_ns,
                tgid: header.tgid,
                tid: header.tid,
                before: event.before,
                after: event.after,
                py_frames: frames_until_empty(&event.py_frames),
            })
        }
    })
}

/// A file opened (its path as the kernel copied it), or a descriptor found open.
fn file_event(kind: EventKind, header: &EventHeader, bytes: &[u8]) -> Result<Event, DecodeError> {
    let event: FileEvent = read(bytes)?;
    Ok(if kind == EventKind::FdDiscovered {
        Event::FdDiscovered {
            tgid: header.tgid,
            fd: event.fd,
            file_id: event.file_id,
            kernel: kernel_file(&event),
        }
    } else {
        // path_len: the bytes copied, without the NUL.
        let len = (event.path_len as usize).min(PATH_CAPTURE_LEN);
        Event::FileOpened {
            tgid: header.tgid,
            fd: event.fd,
            file_id: event.file_id,
            path: c_string(&event.path[..len]),
            truncated: event.truncated != 0,
            kernel: kernel_file(&event),
        }
    })
}

/// A thread (or, `group_dead`, the whole process) exited.
fn process_exited(header: &EventHeader, bytes: &[u8]) -> Result<Event, DecodeError> {
    let event: ProcessEvent = read(bytes)?;
    Ok(Event::ProcessExited {
        tgid: header.tgid,
        tid: event.pid,
        group_dead: event.arg != 0,
        ts_ns: header.ts_ns,
        comm: c_string(&event.comm),
        status: (event.status != EXIT_STATUS_UNKNOWN).then_some(event.status),
        ns_pid: (event.ns_pid != 0).then_some(event.ns_pid),
        peak_rss_pages: (event.peak_rss_pages != 0).then_some(event.peak_rss_pages.into()),
    })
}

/// A process replaced its program.
fn process_exec(header: &EventHeader, bytes: &[u8]) -> Result<Event, DecodeError> {
    let event: ExecEvent = read(bytes)?;
    let len = (event.filename_len as usize).min(FILENAME_LEN);
    let args_len = (event.args_len as usize).min(ARGS_LEN);
    Ok(Event::ProcessExec {
        tgid: header.tgid,
        old_pid: event.old_pid,
        ts_ns: header.ts_ns,
        comm: c_string(&event.comm),
        filename: c_string(&event.filename[..len]),
        argv: split_args(&event.args[..args_len]),
        truncated: event.args_truncated != 0,
    })
}

/// A `wait4`/`waitid` returned.
fn wait_done(header: &EventHeader, bytes: &[u8]) -> Result<Event, DecodeError> {
    let event: WaitEvent = read(bytes)?;
    Ok(Event::WaitDone(WaitDone {
        tgid: header.tgid,
        tid: header.tid,
        comm: c_string(&event.comm),
        ts_ns: header.ts_ns,
        syscall: if event.kind == wait_kind::WAITID {
            WaitSyscall::Waitid
        } else {
            WaitSyscall::Wait4
        },
        pid: event.pid,
        ret: event.ret,
        status: (event.flags & wait_flags::STATUS_VALID != 0).then_some(event.status),
        code: event.code,
        options: event.options,
        untraced_reaper: event.flags & wait_flags::UNTRACED_REAPER != 0,
    }))
}

/// A signal sent (or refused, or ignored at once).
fn signal_generated(header: &EventHeader, bytes: &[u8]) -> Result<Event, DecodeError> {
    let event: SignalGenerateEvent = read(bytes)?;
    Ok(Event::SignalGenerated(SignalGenerated {
        ts_ns: header.ts_ns,
        tgid: header.tgid,
        tid: header.tid,
        comm: c_string(&event.sender_comm),
        sig: event.sig,
        errno: event.errno,
        code: event.code,
        target_pid: event.target_pid,
        target_tgid: event.target_tgid,
        target_comm: c_string(&event.target_comm),
        group: event.group != 0,
        result: event.result,
        syscall: match SendSyscall::from_u32(event.syscall) {
            Some(SendSyscall::None) | None => None,
            some => some,
        },
    }))
}

/// One read or write, with its time (`--perfetto`).
fn io_done(header: &EventHeader, bytes: &[u8]) -> Result<Event, DecodeError> {
    let event: IoEvent = read(bytes)?;
    Ok(Event::IoDone(IoDone {
        tgid: header.tgid,
        tid: header.tid,
        start_ns: event.start_ns,
        end_ns: header.ts_ns,
        file_id: event.file_id,
        fd: event.fd,
        syscall: IoSyscall::from_u32(event.syscall).unwrap_or(IoSyscall::Read),
        request: event.request,
        ret: event.ret,
        voluntary: event.voluntary,
        involuntary: event.involuntary,
    }))
}

/// A context switch of a traced thread (`--perfetto`), with its stack.
fn switched(header: &EventHeader, bytes: &[u8]) -> Result<Event, DecodeError> {
    let event: SwitchEvent = read(bytes)?;
    let stack = event.flags & switch_flags::STACK != 0;
    Ok(Event::Switched {
        ts_ns: header.ts_ns,
        tgid: header.tgid,
        tid: header.tid,
        out: event.flags & switch_flags::OUT != 0,
        voluntary: event.flags & switch_flags::VOLUNTARY != 0,
        py_frames: if stack {
            frames_until_empty(&event.frames)
        } else {
            Vec::new()
        },
    })
}

/// What `--live` reads of the kernel maps at each refresh: the drop
/// counters and the rows that add up to each file's and thread's figures
/// so far (the sampler's load error, if any, with them).
#[derive(Debug, Default)]
pub struct LiveMaps {
    pub drops: [u64; tracer_common::drops::COUNT as usize],
    pub fd_rows: Vec<(tracer_common::FdKey, tracer_common::FdRow)>,
    pub read_stats: Vec<(tracer_common::IoKey, tracer_common::IoStats)>,
    pub threads: Vec<(u32, tracer_common::ThreadStats)>,
    pub sampler_error: Option<String>,
}

/// What the kernel maps should forget: rows of exited threads and of
/// processes that are gone.
#[derive(Debug, Default, PartialEq)]
pub struct Forget {
    pub tids: Vec<u32>,
    pub pids: Vec<u32>,
    /// Read rows of descriptors closed since (their last reads folded in).
    pub read_rows: Vec<tracer_common::IoKey>,
    /// The gone processes' rows of the tables keyed by more than a pid,
    /// as their first-insert records named them: `FILE_OPENS`
    /// (tgid, file id) and `PY_EVENT_STACKS`.
    pub file_opens: Vec<(u32, u64)>,
    pub event_stacks: Vec<tracer_common::PyEventKey>,
}

/// The BPF maps, read once after the event loop.
#[derive(Debug, Default)]
pub struct MapSnapshot {
    pub drops: [u64; drops::COUNT as usize],
    /// Runs of the programs the kernel skipped: events not seen.
    pub skipped_runs: u64,
    /// Sampler ticks per process (tgid).
    pub python_ticks: Vec<(u32, tracer_common::PyTicks)>,
    pub reads: Vec<(IoKey, IoStats)>,
    /// Opens per (tgid, file id).
    pub opens: HashMap<(u32, u64), u64>,
    /// One-off traces: the descriptors' rows not sent yet (still open, or
    /// left open by a process that exited).
    pub fd_rows: Vec<(FdKey, FdRow)>,
    pub threads: Vec<(u32, ThreadStats)>,
    pub python_event_stacks: Vec<(PyEventKey, PyEventValue)>,
    pub python_entries: Vec<(PyEntryKey, u64)>,
    /// Python threads asleep at the end, with the stack they slept in.
    pub python_sleeping: Vec<(u32, tracer_common::PySleep)>,
    /// Each Python thread's GIL waits, summed in the kernel.
    pub python_gil_waits: Vec<(tracer_common::PyGilThread, tracer_common::PyGilWait)>,
    /// Every thread that waited in a selector: its loop's iterations (key: tid).
    pub loops: Vec<(u32, tracer_common::LoopThread)>,
    /// Runs of the page-fault sampler, and of those the ones in a traced
    /// process with no interpreter known (nothing sent).
    pub fault_runs: [u64; 2],
}

impl MapSnapshot {
    /// Events not seen or not recorded: every drop the programs counted
    /// and every run of theirs the kernel skipped.
    pub fn lost(&self) -> u64 {
        self.drops.iter().sum::<u64>() + self.skipped_runs
    }
}

#[cfg(test)]
mod tests;
