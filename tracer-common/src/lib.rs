//! Plain `#[repr(C)]` data shared by the eBPF programs and userspace.
//!
//! Nothing here has logic: event records carried by the ring buffer, keys and
//! values of the aggregation maps, and the load-time configuration. Every
//! record has a size assertion so both sides agree on the layout.
#![no_std]

/// Bytes of a path captured from `openat` (longer paths are truncated and flagged).
pub const PATH_CAPTURE_LEN: usize = 256;
/// Length of a kernel `comm` (task name) including the NUL.
pub const COMM_LEN: usize = 16;
/// Bytes of the executable path captured at `exec`.
pub const FILENAME_LEN: usize = 128;
/// Bytes of the command line (NUL-separated argv) captured at `exec`.
pub const ARGS_LEN: usize = 1024;
/// `ProcessEvent::status` when the exit status could not be read.
pub const EXIT_STATUS_UNKNOWN: u32 = u32::MAX;

/// Byte offsets of the tracepoint fields the programs read. Filled by userspace
/// from `/sys/kernel/tracing/events/<category>/<event>/format` at start-up, so
/// nothing depends on one kernel's layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracepointOffsets {
    /// `sched:sched_switch`
    pub switch_prev_pid: u32,
    pub switch_prev_state: u32,
    pub switch_next_pid: u32,
    /// `sched:sched_process_fork`
    pub fork_parent_pid: u32,
    pub fork_child_pid: u32,
    /// `sched:sched_process_exit`
    pub exit_pid: u32,
    pub exit_group_dead: u32,
    /// `syscalls:sys_enter_read` / `sys_enter_pread64` (same shape)
    pub read_fd: u32,
    pub read_count: u32,
    pub pread_fd: u32,
    pub pread_count: u32,
    /// `syscalls:sys_enter_readv` / `sys_enter_preadv`
    pub readv_fd: u32,
    pub readv_vec: u32,
    pub readv_vlen: u32,
    pub preadv_fd: u32,
    pub preadv_vec: u32,
    pub preadv_vlen: u32,
    /// `syscalls:sys_enter_openat`
    pub openat_filename: u32,
    /// `syscalls:sys_enter_close`
    pub close_fd: u32,
    /// `syscalls:sys_exit_*` (all syscall exits share this field)
    pub exit_ret: u32,
    /// `syscalls:sys_enter_open` (x86-64: the `open` syscall that mimalloc,
    /// hence CPython 3.13+, and older C code call); 0 where there is none.
    pub open_filename: u32,
    pub _pad: u32,
}

/// Byte offsets of the fields the process-lifecycle and signal programs read,
/// from the tracefs `format` files (like [`TracepointOffsets`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifecycleOffsets {
    /// `signal:signal_generate`
    pub gen_sig: u32,
    pub gen_errno: u32,
    pub gen_code: u32,
    pub gen_pid: u32,
    pub gen_group: u32,
    pub gen_result: u32,
    pub gen_comm: u32,
    /// `signal:signal_deliver`
    pub deliver_sig: u32,
    pub deliver_errno: u32,
    pub deliver_code: u32,
    pub deliver_sa_handler: u32,
    pub deliver_sa_flags: u32,
    /// `sched:sched_process_exec`
    pub exec_filename: u32,
    pub exec_pid: u32,
    pub exec_old_pid: u32,
    /// `sched:sched_process_free`
    pub free_pid: u32,
    /// Byte offsets, from the kernel's BTF, of `task_struct.mm` and
    /// `mm_struct.arg_start` / `arg_end` (where the new image's argv strings
    /// are), to capture the command line at `sched_process_exec`; 0: unknown.
    pub task_mm: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub _pad: u32,
}

/// Where the current task's syscall number and arguments are in its saved
/// user registers (`struct pt_regs`, offsets from the kernel's BTF), and the
/// syscall numbers of this architecture. Programs that run inside a syscall
/// (sched_process_fork, signal_generate, the wait exits) read them with
/// `bpf_task_pt_regs` instead of attaching to more syscall tracepoints:
/// detaching each tracepoint costs an RCU grace period at exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallRegs {
    /// 1 if the offsets below are known.
    pub valid: u32,
    /// `pt_regs.orig_ax`: the syscall number (-1 outside a syscall).
    pub nr: u32,
    /// The first four syscall arguments (`di`, `si`, `dx`, `r10` on x86-64).
    pub arg1: u32,
    pub arg2: u32,
    pub arg3: u32,
    pub arg4: u32,
    pub nr_clone: u32,
    pub nr_clone3: u32,
    pub nr_kill: u32,
    pub nr_tkill: u32,
    pub nr_tgkill: u32,
    pub nr_rt_sigqueueinfo: u32,
    pub nr_rt_tgsigqueueinfo: u32,
    pub nr_pidfd_send_signal: u32,
}

/// Where a task's pid in its own pid namespace is, from the kernel's BTF:
/// `task->group_leader->thread_pid->numbers[level].nr` (the last `NSpid`
/// entry of `/proc/PID/status`). Read at exit, when /proc may be too late.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PidNsOffsets {
    /// 1 if the offsets below are known.
    pub valid: u32,
    /// `task_struct.group_leader`, `task_struct.thread_pid`.
    pub task_group_leader: u32,
    pub task_thread_pid: u32,
    /// `struct pid`: `level` (depth of its innermost namespace), `numbers[]`.
    pub pid_level: u32,
    pub pid_numbers: u32,
    /// `sizeof(struct upid)` and `upid.nr`.
    pub upid_size: u32,
    pub upid_nr: u32,
    pub _pad: u32,
}

/// Where an open descriptor's file is, from the kernel's BTF:
/// `current->files->fdt->fd[fd]->f_inode`, then the inode's `i_ino`,
/// `i_blkbits` and `i_sb->s_magic`. Read for descriptors whose opening was
/// not seen (pipes, sockets, dup'ed descriptors).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileOffsets {
    /// 1 if the offsets below are known.
    pub valid: u32,
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdt_max_fds: u32,
    pub fdt_fd: u32,
    pub file_inode: u32,
    pub inode_ino: u32,
    pub inode_blkbits: u32,
    pub inode_sb: u32,
    pub sb_magic: u32,
    pub _pad: [u32; 2],
}

/// Load-time configuration, written into the programs' read-only data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub offsets: TracepointOffsets,
    pub lifecycle: LifecycleOffsets,
    pub regs: SyscallRegs,
    /// `prev_state & task_state_mask != 0` means the task went to sleep
    /// (a voluntary switch); otherwise it was preempted. Preemption is reported
    /// as `TASK_REPORT_MAX` (0x100 on 6.x), so testing `prev_state != 0` is wrong.
    pub task_state_mask: u64,
    /// 1: processes forked by a traced process are traced too.
    pub follow_children: u32,
    /// Byte offset of `task_struct.exit_code`, from the kernel's BTF
    /// (`/sys/kernel/btf/vmlinux`); 0 when unknown (exit status then comes
    /// from the reaper's `wait4`/`waitid`).
    pub task_exit_code: u32,
    pub pid_ns: PidNsOffsets,
    pub file: FileOffsets,
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for Config {}

/// Which read-family syscall a figure came from.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadSyscall {
    Read = 0,
    Pread64 = 1,
    Readv = 2,
    Preadv = 3,
}

impl ReadSyscall {
    pub const ALL: [ReadSyscall; 4] = [Self::Read, Self::Pread64, Self::Readv, Self::Preadv];

    pub fn from_u32(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == value)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Pread64 => "pread64",
            Self::Readv => "readv",
            Self::Preadv => "preadv",
        }
    }
}

/// Key of the per-CPU `READ_STATS` map: one row per open file, syscall and request size.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReadKey {
    pub tgid: u32,
    pub fd: i32,
    /// Which file: a hash of the path it was opened by, or, for a descriptor
    /// the tracer did not see opened, a unique id with [`DISCOVERED_FILE_BIT`]
    /// set. A reused fd number is never confused with the file it used to name.
    pub file_id: u64,
    /// Bytes asked for (`count`, or the sum of the iovec lengths).
    pub request: u64,
    pub syscall: u32,
    pub _pad: u32,
}

/// Value of `READ_STATS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub syscalls: u64,
    pub bytes: u64,
    pub errors: u64,
    pub kernel_ns: u64,
    /// Scheduler context switches that happened while the read was in the kernel.
    pub voluntary: u64,
    pub involuntary: u64,
}

/// A read that has entered the kernel and not returned yet (per thread).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct InflightRead {
    pub start_ns: u64,
    pub request: u64,
    pub fd: i32,
    pub syscall: u32,
    pub voluntary: u64,
    pub involuntary: u64,
}

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

/// Key of `FD_FILES`: which opening of a descriptor is current.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FdKey {
    pub tgid: u32,
    pub fd: i32,
}

/// Set in `file_id` for descriptors discovered on first read (not opened while traced).
pub const DISCOVERED_FILE_BIT: u64 = 1 << 63;

/// Key of `KNOWN_FILES`: a path a process has already been reported to open.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub tgid: u32,
    pub _pad: u32,
    pub file_id: u64,
}

/// Indices of the `DROPS` per-CPU counters: everything the kernel side could
/// not record. Userspace reports each non-zero one.
pub mod drops {
    /// Ring buffer full: an event record was lost.
    pub const RINGBUF: u32 = 0;
    /// `READ_STATS` full: a read was not counted.
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

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileEvent {
    pub header: EventHeader,
    pub fd: i32,
    /// Bytes of `path` that are valid (0 for `FdDiscovered`).
    pub path_len: u32,
    pub file_id: u64,
    pub path: [u8; PATH_CAPTURE_LEN],
    /// `FdDiscovered`: what the descriptor is, read in the kernel (0 if
    /// unknown), so a pipe or socket closed before userspace can look at
    /// `/proc/PID/fd` is still named: the inode number, its filesystem's
    /// magic (`PIPEFS_MAGIC`, `SOCKFS_MAGIC`...) and block size.
    pub ino: u64,
    pub fs_magic: u64,
    pub blksize: u32,
    pub _pad: u32,
}

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
    pub _pad: u32,
}

pub mod process_flags {
    /// The fork created a thread (`CLONE_THREAD`), not a process.
    pub const THREAD: u32 = 1;
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
    /// The receiving thread's Python stack when the signal was delivered
    /// (the line that was running), innermost first; all `code == 0` when
    /// the thread has no known Python state or Python sampling is off.
    pub py_frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

/// Deepest Python stack a sample records (deeper stacks are truncated at the
/// outermost end and flagged).
pub const PY_MAX_DEPTH: usize = 128;

/// No such field in this CPython version.
pub const PY_NO_OFFSET: u32 = u32::MAX;

/// How the sampler finds and walks a thread's Python frames, set by userspace
/// once it has found the interpreter (`PY_CONFIG` array map, index 0; the
/// interpreter is only known after the target has exec'd, so this cannot be a
/// load-time global). All offsets in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyConfig {
    /// 0: sampling off.
    pub enabled: u32,
    /// Offset in `PyThreadState` of the frame pointer (`frame` <= 3.10,
    /// `cframe` 3.11-3.12, `current_frame` 3.13+).
    pub tstate_frame: u32,
    /// 3.11-3.12: offset of `current_frame` in `_PyCFrame`; else [`PY_NO_OFFSET`].
    pub cframe_current_frame: u32,
    /// Offset of the next-outer frame (`f_back` / `previous`).
    pub frame_back: u32,
    /// Offset of the code object (`f_code` / `f_executable`).
    pub frame_code: u32,
    /// Offset of `f_lasti` (<= 3.10, an int) or `prev_instr` / `instr_ptr`.
    pub frame_instr: u32,
    /// Offset of the one-byte `owner` field, or [`PY_NO_OFFSET`].
    pub frame_owner: u32,
    /// Capture the Python stack behind 1 in this many reads (per CPU); 0: never.
    pub read_stack_every: u32,
    /// Which argument of `_PyEval_EvalFrameDefault` is the frame (0 on 3.8:
    /// `(frame, throwflag)`; 1 from 3.9: `(tstate, frame, throwflag)`).
    pub entry_frame_arg: u32,
    pub _pad: u32,
}

/// Key of `PY_ENTRIES`: entries into `_PyEval_EvalFrameDefault` per code object.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PyEntryKey {
    pub tgid: u32,
    pub _pad: u32,
    pub code: u64,
}

/// Frames kept when a Python stack is attached to a kernel event (reads,
/// voluntary context switches, forks, signal deliveries): the innermost ones.
pub const PY_EVENT_DEPTH: usize = 4;

/// Which kernel event a [`PyEventKey`] counts.
pub mod py_event {
    /// A read-family syscall on `file_id` (sampled: 1 in `read_stack_every`).
    pub const READ: u32 = 0;
    /// A voluntary context switch (the thread went to sleep); the value
    /// carries the time until it ran again.
    pub const OFF_CPU: u32 = 1;
    // 2 was FORK: forks now send a deeper [`super::PyForkEvent`] each.
    /// Not a map key: announces a code object first entered through
    /// `_PyEval_EvalFrameDefault` (`frames[0].code`), to be symbolized.
    pub const ENTRY: u32 = 3;
}

/// Key of `PY_EVENT_STACKS`: a kernel event of one process with the top of
/// the Python stack it happened under.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PyEventKey {
    pub tgid: u32,
    /// `py_event::*`
    pub kind: u32,
    /// `READ`: the file (as `ReadKey::file_id`); else 0.
    pub file_id: u64,
    /// Innermost first; `code == 0` past the end.
    pub frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

/// Value of `PY_EVENT_STACKS` (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyEventValue {
    pub count: u64,
    /// `OFF_CPU`: nanoseconds until the thread was switched back in.
    pub off_cpu_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PyStackEvent {
    pub header: EventHeader,
    pub key: PyEventKey,
}

/// Frames kept for a fork / clone: deep enough to get past the spawning
/// machinery to the caller's line (`subprocess.check_output` -> `run` ->
/// `Popen.__init__` -> `_execute_child` -> `_posix_spawn`, plus the C-stack
/// shim frames of 3.12+ between them).
pub const PY_FORK_DEPTH: usize = 16;

/// The Python stack of one fork / clone by a traced thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PyForkEvent {
    pub header: EventHeader,
    /// The child's pid (or tid, for a thread).
    pub child: u32,
    pub _pad: u32,
    /// Innermost first; `code == 0` past the end.
    pub frames: [PyFrameRecord; PY_FORK_DEPTH],
}

/// A thread asleep after a voluntary switch (`PY_SLEEPING`, key: tid).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PySleep {
    pub key: PyEventKey,
    /// 0: slot idle.
    pub start_ns: u64,
}

/// One frame of a [`PySample`]: raw values, symbolized by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PyFrameRecord {
    /// Address of the code object (3.14: a tagged stack reference).
    pub code: u64,
    /// `f_lasti` (<= 3.10, low 32 bits) or the instruction pointer; the frame's
    /// `owner` byte is stored in bits 56..64.
    pub instr: u64,
}

/// A CPU-clock sample of one thread's Python stack, innermost frame first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PySample {
    pub header: EventHeader,
    /// Valid entries of `frames`.
    pub depth: u32,
    /// 1 if the stack was deeper than [`PY_MAX_DEPTH`].
    pub truncated: u32,
    pub frames: [PyFrameRecord; PY_MAX_DEPTH],
}

/// Indices of the per-CPU `PY_STATS` counters.
pub mod py_stats {
    /// Samples that hit a traced process.
    pub const SAMPLES: u32 = 0;
    /// ...of which the thread had no known Python thread state (yet).
    pub const NO_THREAD_STATE: u32 = 1;
    /// ...of which the thread was not running Python code (no current frame).
    pub const NO_FRAME: u32 = 2;
    pub const COUNT: u32 = 3;
}

const _: () = assert!(core::mem::size_of::<EventHeader>() == 24);
const _: () = assert!(core::mem::size_of::<PyConfig>() == 40);
const _: () = assert!(core::mem::size_of::<PyEntryKey>() == 16);
const _: () = assert!(core::mem::size_of::<PyFrameRecord>() == 16);
const _: () = assert!(core::mem::size_of::<PyEventKey>() == 16 + 16 * PY_EVENT_DEPTH);
const _: () = assert!(core::mem::size_of::<PyEventValue>() == 16);
const _: () = assert!(core::mem::size_of::<PyStackEvent>() == 24 + 16 + 16 * PY_EVENT_DEPTH);
const _: () = assert!(core::mem::size_of::<PyForkEvent>() == 24 + 8 + 16 * PY_FORK_DEPTH);
const _: () = assert!(core::mem::size_of::<PySleep>() == 16 + 16 * PY_EVENT_DEPTH + 8);
const _: () = assert!(core::mem::size_of::<PySample>() == 24 + 8 + 16 * PY_MAX_DEPTH);
const _: () = assert!(core::mem::size_of::<FileEvent>() == 24 + 16 + PATH_CAPTURE_LEN + 24);
const _: () = assert!(core::mem::size_of::<ProcessEvent>() == 24 + 24 + COMM_LEN);
const _: () =
    assert!(core::mem::size_of::<ExecEvent>() == 24 + 16 + COMM_LEN + FILENAME_LEN + ARGS_LEN);
const _: () = assert!(core::mem::size_of::<WaitEvent>() == 24 + 32 + COMM_LEN);
const _: () = assert!(core::mem::size_of::<SignalGenerateEvent>() == 24 + 32 + 2 * COMM_LEN);
const _: () = assert!(core::mem::size_of::<SignalDeliverEvent>() == 24 + 32 + 16 * PY_EVENT_DEPTH);
const _: () = assert!(core::mem::size_of::<ZombieEntry>() == 8);
const _: () = assert!(core::mem::size_of::<ReadKey>() == 32);
const _: () = assert!(core::mem::size_of::<ReadStats>() == 48);
const _: () = assert!(core::mem::size_of::<ThreadStats>() == 8 + 48 + COMM_LEN);
const _: () = assert!(core::mem::size_of::<TracepointOffsets>() == 4 * 22);
const _: () = assert!(core::mem::size_of::<LifecycleOffsets>() == 4 * 20);
const _: () = assert!(core::mem::size_of::<SyscallRegs>() == 4 * 14);
// No implicit padding: 216 bytes of offsets keep the u64 below aligned.
const _: () = assert!(core::mem::size_of::<PidNsOffsets>() == 32);
const _: () = assert!(core::mem::size_of::<FileOffsets>() == 48);
const _: () = assert!(core::mem::size_of::<Config>() == 4 * 22 + 4 * 20 + 4 * 14 + 16 + 32 + 48);

/// Value of `ZOMBIES` (key: tgid of a traced process that has exited and
/// not been released yet).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZombieEntry {
    pub exit_ns: u64,
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for ReadKey {}
    unsafe impl aya::Pod for ReadStats {}
    unsafe impl aya::Pod for ThreadStats {}
    unsafe impl aya::Pod for FdKey {}
    unsafe impl aya::Pod for FileKey {}
    unsafe impl aya::Pod for PyConfig {}
    unsafe impl aya::Pod for PyEventKey {}
    unsafe impl aya::Pod for PyEventValue {}
    unsafe impl aya::Pod for PyEntryKey {}
    unsafe impl aya::Pod for ZombieEntry {}
}
