//! Load-time configuration: this architecture's syscall numbers and where
//! the kernel keeps what the programs read (struct members and saved
//! registers, from BTF), written into the programs' read-only data before
//! they are loaded.

/// This architecture's numbers of the syscalls the programs look at (from
/// libc, i.e. the architecture's ABI). One raw `sys_enter` and one raw
/// `sys_exit` program see every syscall and pick these by number (the
/// reads, writes and syncs by [`Config::io_syscalls`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallNumbers {
    pub openat: u32,
    /// `open(2)` (x86-64: what mimalloc, hence CPython 3.13+, and older C
    /// code call); `NO_SYSCALL` where the architecture has none.
    pub open: u32,
    pub close: u32,
    pub rt_sigaction: u32,
    pub rt_sigprocmask: u32,
    pub wait4: u32,
    pub waitid: u32,
    pub clone: u32,
    pub clone3: u32,
    pub kill: u32,
    pub tkill: u32,
    pub tgkill: u32,
    pub rt_sigqueueinfo: u32,
    pub rt_tgsigqueueinfo: u32,
    pub pidfd_send_signal: u32,
    /// Selector waits (event loops): `NO_SYSCALL` where the architecture
    /// has none (`epoll_wait`, `select` and `poll` are x86-64's legacy ones).
    pub epoll_wait: u32,
    pub epoll_pwait: u32,
    pub epoll_pwait2: u32,
    pub select: u32,
    pub pselect6: u32,
    pub poll: u32,
    pub ppoll: u32,
    /// GIL waits (`pthread_cond_timedwait` / mutex waits on the GIL's).
    pub futex: u32,
    pub _pad: u32,
}

/// A syscall number no architecture uses: "this architecture has none".
pub const NO_SYSCALL: u32 = u32::MAX;

/// Byte offsets of the kernel struct members the raw tracepoints read (their
/// arguments are the kernel's own pointers, not a formatted record), from the
/// kernel's BTF. `task_pid`, `task_comm` and the `siginfo_*` / `ksigaction_*`
/// offsets are required (0 is a real offset there); in any other field 0
/// means unknown, and costs the detail that needs it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StructOffsets {
    /// `task_struct.pid` (the thread id), `task_struct.comm`.
    pub task_pid: u32,
    pub task_comm: u32,
    /// `task_struct.exit_code`: the status `do_exit()` stored (exit statuses
    /// otherwise come only from the reaper's `wait4`/`waitid`).
    pub task_exit_code: u32,
    /// `task_struct.blocked` (the thread's signal mask before a
    /// `rt_sigprocmask`).
    pub task_blocked: u32,
    /// `task_struct.mm`, `mm_struct.arg_start` / `arg_end`: where the new
    /// image's argv strings are, to capture the command line at exec.
    pub task_mm: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    /// `linux_binprm.filename`: the file an exec runs.
    pub binprm_filename: u32,
    /// `kernel_siginfo.si_errno` / `si_code`.
    pub siginfo_errno: u32,
    pub siginfo_code: u32,
    /// `k_sigaction.sa.sa_handler` / `sa.sa_flags`: the disposition a signal
    /// is delivered to.
    pub ksigaction_handler: u32,
    pub ksigaction_flags: u32,
    /// `task_struct.thread.fsbase` (x86-64): the thread's TLS base, which
    /// is its `pthread_t` and CPython's `PyThreadState.thread_id`; 0 when
    /// unknown (then the sampler finds no thread userspace has not
    /// published).
    pub task_fsbase: u32,
    /// `task_struct.se.sum_exec_runtime`: a thread's CPU time by the
    /// scheduler's count (0: unknown).
    pub task_runtime: u32,
    /// `task_struct.__state` (`state` before 5.14): a switched-out task's
    /// state where `sched_switch` passes no `prev_state` (before 5.18).
    pub task_state: u32,
    /// `task_struct.signal`, `signal_struct.live`: the threads of a process
    /// not yet exiting, where `sched_process_exit` passes no `group_dead`
    /// (before 6.16).
    pub task_signal: u32,
    pub signal_live: u32,
}

/// Where the current task's syscall number and arguments are in its saved
/// user registers (`struct pt_regs`, offsets from the kernel's BTF): the raw
/// syscall hooks read their arguments there, and programs that run inside a
/// syscall (sched_process_fork, signal_generate) find it with
/// `bpf_task_pt_regs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallRegs {
    /// 1 if the offsets below are known (always, once loaded: required).
    pub valid: u32,
    /// `pt_regs.orig_ax` (arm64: `syscallno`): the syscall number (-1
    /// outside a syscall).
    pub nr: u32,
    /// Its size: 8 (x86-64), 4 (arm64's `s32 syscallno`, sign-extended).
    pub nr_size: u32,
    /// The first four syscall arguments (`di`, `si`, `dx`, `r10` on
    /// x86-64; `regs[0..4]` on arm64, where `regs[0]` is the return value
    /// by the syscall's exit).
    pub arg1: u32,
    pub arg2: u32,
    pub arg3: u32,
    pub arg4: u32,
    /// `ip`, `sp`, `bp` (arm64: `pc`, `sp`, `regs[29]`, and the link
    /// register `regs[30]` in `lr`; 0 on x86-64): where a native unwind
    /// starts when the sampler interrupted the thread in the kernel.
    pub ip: u32,
    pub sp: u32,
    pub bp: u32,
    pub lr: u32,
    /// `task_struct.stack`: the task's kernel stack.
    pub task_stack: u32,
    /// 0 where the kernel has `bpf_task_pt_regs` (5.15); before, where the
    /// saved user registers are from the kernel stack's base
    /// (`THREAD_SIZE - sizeof(struct pt_regs)`, x86-64's `task_pt_regs()`).
    pub stack_to_regs: u32,
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
    /// `inode.i_mode`: what kind of file (regular, FIFO, socket...).
    pub inode_mode: u32,
    /// 1 if the socket offsets below are known: an inet socket's
    /// addresses are read at its first read or write (`file.private_data`
    /// -> `socket.sk` -> `sock_common`), so a connection closed before
    /// userspace can look it up in `/proc/PID/net` is still named.
    pub sockets: u32,
    pub file_private_data: u32,
    pub socket_sk: u32,
    pub skc_family: u32,
    /// The local port, host order; the peer's, network order.
    pub skc_num: u32,
    pub skc_dport: u32,
    pub skc_rcv_saddr: u32,
    pub skc_daddr: u32,
    /// IPv6 addresses (`PY_NO_OFFSET`-like `u32::MAX`: no IPv6 in this
    /// kernel, its sockets unnamed by the kernel).
    pub skc_v6_rcv_saddr: u32,
    pub skc_v6_daddr: u32,
    pub sk_protocol: u32,
    pub sk_type: u32,
    pub _pad: u32,
}

/// Load-time configuration, written into the programs' read-only data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub syscalls: SyscallNumbers,
    pub structs: StructOffsets,
    pub regs: SyscallRegs,
    /// 1: processes forked by a traced process are traced too.
    pub follow_children: u32,
    /// 1 (`--perfetto`): every read and context switch of a traced thread
    /// is sent as a record, for the timeline.
    pub timeline: u32,
    pub pid_ns: PidNsOffsets,
    pub file: FileOffsets,
    pub scope: ScopeConfig,
    /// An event loop iteration this long (ns) or longer is a stall.
    pub loop_stall_ns: u64,
    /// 1 (a one-off trace, on a kernel with fetching atomics, 5.12+): reads
    /// are counted in their descriptor's `FD_STATE` row and sent in one
    /// record when it is closed; 0 (`--serve`, `--every`, or an older
    /// kernel): in `READ_STATS`, folded every second or read at the end.
    pub fd_rows: u32,
    /// 1 (a one-off trace): a thread's `THREADS` row is sent in one record
    /// at its last switch-out and removed, so the table holds the live
    /// threads only; 0 (`--serve`, `--every`): kept, folded and forgotten
    /// every second.
    pub thread_rows: u32,
    /// 1 (a one-off trace): a Python stack behind a kernel event that
    /// `PY_EVENT_STACKS` has no room for is sent in a record with its
    /// counts (userspace adds it up); 0 (`--serve`, `--every`): counted in
    /// `dropped.tables`.
    pub stack_records: u32,
    /// Perf-event hooks (where the kernel may preempt a raw tracepoint's
    /// run): where `child_pid` is in a `sched_process_fork` record.
    pub fork_child_pid_at: u32,
    /// 1: the syscall, fork and exit programs have second copies attached
    /// after them, which take the events the kernel skipped them for
    /// (where it may preempt their runs); the first copies mark theirs.
    pub second_copies: u32,
    /// 1: the reads and writes of discovered descriptors (accepted
    /// connections) are looked at for HTTP/1.x request and status lines,
    /// and a connection that carried one sends its reads, writes and close
    /// ([`crate::RequestIoEvent`]).
    pub requests: u32,
    pub _pad: u32,
    pub memory: crate::memory::MemoryOffsets,
    /// Syscall number -> the read, write or sync it is: 0 for any other,
    /// else [`io_syscall_entry`] of it. Every syscall of the machine is
    /// looked up here with one load, where 19 comparisons were.
    pub io_syscalls: IoSyscallTable,
}

/// [`Config::io_syscalls`]: an entry per syscall number.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoSyscallTable(pub [u8; IO_SYSCALL_NUMBERS]);

impl Default for IoSyscallTable {
    fn default() -> Self {
        Self([0; IO_SYSCALL_NUMBERS])
    }
}

/// Syscall numbers [`Config::io_syscalls`] covers (every architecture's
/// I/O syscalls are below).
pub const IO_SYSCALL_NUMBERS: usize = 512;

/// An `io_syscalls` entry: the syscall (`IoSyscall as u8`, 0-16) plus one
/// in the low 5 bits, its [`crate::IoShape`] in the top 3.
pub const fn io_syscall_entry(syscall: crate::IoSyscall) -> u8 {
    ((syscall.shape() as u8) << 5) | (syscall as u8 + 1)
}

/// Which processes a node-wide trace takes in as they exec, besides the
/// traced processes' children (`--all`, `--cgroup`, `--container`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeConfig {
    /// 1 (`--all`): every process that execs (one forked by an untraced
    /// process: a kernel helper, or one forked while the trace started).
    pub all: u32,
    /// The level (the root is 0) of `cgroup_id` in the cgroup v2 hierarchy.
    pub cgroup_level: u32,
    /// 0, or a cgroup v2 id: a process that execs in it or below it (a
    /// `podman exec`, a restarted service) is traced from then on.
    pub cgroup_id: u64,
    /// 1: the Python sampler runs on every CPU, not on the traced threads:
    /// a tick of a process with no interpreter known is not counted.
    pub per_cpu_sampling: u32,
    pub _pad: u32,
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for Config {}

const _: () = assert!(core::mem::size_of::<SyscallNumbers>() == 4 * 24);
const _: () = assert!(core::mem::size_of::<StructOffsets>() == 4 * 17);
const _: () = assert!(core::mem::size_of::<SyscallRegs>() == 4 * 13);
const _: () = assert!(core::mem::size_of::<PidNsOffsets>() == 32);
const _: () = assert!(core::mem::size_of::<FileOffsets>() == 96);
const _: () = assert!(core::mem::size_of::<ScopeConfig>() == 24);
const _: () = assert!(
    core::mem::size_of::<Config>()
        == 4 * 24
            + 4 * 17
            + 4 * 13
            + 8
            + 32
            + 96
            + 24
            + 8
            + 8
            + 8
            + 4
            + 4
            + 8
            + 4 * 26
            + IO_SYSCALL_NUMBERS
);
