//! Load-time configuration: where the kernel keeps what the programs read
//! (tracepoint fields from tracefs, struct members from BTF), written into
//! the programs' read-only data before they are loaded.

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
    /// `task_struct.blocked` (the thread's signal mask before a
    /// `rt_sigprocmask`), from BTF; 0: unknown.
    pub task_blocked: u32,
    /// `syscalls:sys_enter_rt_sigaction` (`sig`, `act`) and
    /// `sys_enter_rt_sigprocmask` (`how`, `nset`); 0: tracepoint missing.
    pub sigaction_sig: u32,
    pub sigaction_act: u32,
    pub sigprocmask_how: u32,
    pub sigprocmask_nset: u32,
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

const _: () = assert!(core::mem::size_of::<TracepointOffsets>() == 4 * 22);
const _: () = assert!(core::mem::size_of::<LifecycleOffsets>() == 4 * 24);
const _: () = assert!(core::mem::size_of::<SyscallRegs>() == 4 * 14);
// No implicit padding: 216 bytes of offsets keep the u64 below aligned.
const _: () = assert!(core::mem::size_of::<PidNsOffsets>() == 32);
const _: () = assert!(core::mem::size_of::<FileOffsets>() == 48);
const _: () = assert!(core::mem::size_of::<Config>() == 4 * 22 + 4 * 24 + 4 * 14 + 16 + 32 + 48);
