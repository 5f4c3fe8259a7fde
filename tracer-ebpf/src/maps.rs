//! Maps and globals shared by every program, plus the helpers that use them.

use aya_ebpf::{
    Global,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_task_btf, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_task_pt_regs,
    },
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use tracer_common::{Config, EventHeader, EventKind, drops};

/// Load-time configuration (syscall numbers, kernel offsets, flags), set by userspace.
#[unsafe(no_mangle)]
pub static CONFIG: Global<Config> = Global::new(Config {
    follow_children: 1,
    // SAFETY: Config is plain integers; all-zero offsets are valid placeholders
    // that userspace always overwrites at load time.
    ..unsafe { core::mem::zeroed() }
});

/// Flag for the hash maps: entries allocated when first inserted.
/// Preallocating 16,384 per-CPU values costs 10-35 ms per map at start-up,
/// a table of 65,536 threads ~3 ms; their keys are few and new keys rare
/// (a file's first read, a process's first tick, a thread's first switch),
/// and every hot-path update is in place. Kernels before 6.1 preallocate
/// them all (`features::preallocated` clears the flag).
pub const ALLOCATE_ON_INSERT: u32 = aya_ebpf::bindings::BPF_F_NO_PREALLOC;

/// The traced processes (key: tgid). Userspace seeds it; `sched_process_fork`
/// adds children in the kernel so none is missed while userspace catches up.
#[map]
pub static TRACED: HashMap<u32, u8> = HashMap::with_max_entries(16384, ALLOCATE_ON_INSERT);

/// Threads of traced processes other than the leader (key: tid, value: tgid).
/// Filled from `sched_process_fork` (and by userspace for threads that existed
/// at attach) so a signal sent to one thread can be attributed to its process.
#[map]
pub static TASKS: HashMap<u32, u32> =
    HashMap::with_max_entries(tracer_common::MAX_THREAD_ROWS, ALLOCATE_ON_INSERT);

/// Event records for userspace (files opened, processes forked / exited).
/// 16 MiB: a walk of a million files sends ~40,000 records a second, and
/// on a busy machine the tracer may not run for a while; 4 MiB lost
/// records when it was kept off the CPU for half a second.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// The header every record of [`EVENTS`] starts with: its kind, the
/// thread it is about, and the time.
/// Zeroes `*at` a word at a time, each store volatile: LLVM turns a few
/// zeroed fields in a row into a call to `memset`, and a program that
/// tail-calls may call no function on arm64 before 6.0 (the sampler's
/// pieces on Debian 11's 5.10; `probes::stack_depth`'s test checks it).
///
/// # Safety
/// `at` is valid for writes of a `T`, 8-byte aligned.
#[inline(always)]
pub unsafe fn zero_words<T>(at: *mut T) {
    const { assert!(core::mem::size_of::<T>() % 8 == 0 && core::mem::align_of::<T>() >= 8) };
    let words = at.cast::<u64>();
    for i in 0..core::mem::size_of::<T>() / 8 {
        // SAFETY: within `*at` (the caller's promise).
        unsafe { core::ptr::write_volatile(words.add(i), 0) };
    }
}

#[inline(always)]
pub fn header(kind: EventKind, tgid: u32, tid: u32) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        tgid,
        tid,
        _pad: 0,
        ts_ns: unsafe { bpf_ktime_get_ns() },
    }
}

/// `BPF_RB_NO_WAKEUP`: a record drained on userspace's own tick (samples,
/// switches, reads for the timeline), so a busy trace does not wake the
/// tracer at every record.
pub const RB_NO_WAKEUP: u64 = 1;
/// `BPF_RB_FORCE_WAKEUP`: a record userspace must act on while what it
/// names is alive (a stack's code objects, a descriptor to look up),
/// even behind records that did not wake it.
pub const RB_FORCE_WAKEUP: u64 = 2;

/// What the kernel side could not record, by `tracer_common::drops` index.
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(drops::COUNT, 0);

/// One field (or sub-struct) of `CONFIG`, e.g. `config!(offsets.read_fd)`.
/// Reads just that: `CONFIG.load()` copies all of `Config` (320 bytes, about
/// 80 loads), which `sched_switch` and the read path would pay per event.
/// Volatile like `Global::load`: the loader writes the value after compiling,
/// so the compiler must not fold the initializer in.
macro_rules! config {
    ($($field:tt)+) => {{
        // SAFETY: `Global<T>` is a transparent wrapper around `T` (through
        // `MaybeUninit<T>`), initialized by the loader. (Allowed: callers
        // may already be in an `unsafe` block.)
        #[allow(unused_unsafe)]
        let value = unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!(
                (*core::ptr::addr_of!($crate::maps::CONFIG).cast::<tracer_common::Config>())
                    .$($field)+
            ))
        };
        value
    }};
}
pub(crate) use config;

/// When `TRACED` last changed (CLOCK_MONOTONIC ns), written after each
/// change by whoever made it (a traced fork or exit here, userspace when it
/// adds a process). A cached answer of [`current_if_traced`] holds while
/// this is the time it was computed under: plain stores suffice, since a
/// change is always made before its time is written.
#[map]
pub static TRACED_CHANGED: Array<u64> = Array::with_max_entries(1, 0);

/// Per CPU, the last answer of [`current_if_traced`]: the one syscall hook
/// runs for every syscall of every process on the machine, and most of them
/// come from the same untraced task as the one before on that CPU; an
/// array slot is read for a fraction of a hash lookup. One word (see
/// [`cached_answer`]), read and written by one load and one store: where
/// the kernel preempts the hooks' runs (7.x), another task's run may come
/// between any two instructions of one on the same CPU, and an answer
/// written in pieces could be read half one task's and half another's.
#[map]
static TRACED_CACHE: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The cache's word: the tgid (`TRACED`'s key: whether a process is traced
/// depends on it alone), whether traced, and the low 31 bits of the
/// `TRACED_CHANGED` time it was computed under (a change whose time has
/// the same low bits as the cached one's, one in 2^31, would keep a stale
/// answer until the next change or another process's syscall on that CPU).
#[inline(always)]
fn cached_answer(tgid: u32, traced: bool, changed: u64) -> u64 {
    u64::from(tgid) | (u64::from(traced) << 32) | ((changed & 0x7fff_ffff) << 33)
}

/// Says that `TRACED` changed (see [`TRACED_CHANGED`]).
#[inline(always)]
pub fn traced_changed() {
    if let Some(slot) = TRACED_CHANGED.get_ptr_mut(0) {
        // SAFETY: a map value; any CPU's store is a valid answer.
        unsafe { core::ptr::write_volatile(slot, bpf_ktime_get_ns()) };
    }
}

/// `(tgid, tid)` of the current task if its process is traced.
#[inline(always)]
pub fn current_if_traced() -> Option<(u32, u32)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let answer = Some((tgid, pid_tgid as u32));
    let changed = TRACED_CHANGED
        .get_ptr(0)
        // SAFETY: a map value, read once.
        .map_or(0, |slot| unsafe { core::ptr::read_volatile(slot) });
    let Some(cache) = TRACED_CACHE.get_ptr_mut(0) else {
        return unsafe { TRACED.get(tgid) }.and(answer);
    };
    // SAFETY: this CPU's slot, read and written whole (see `TRACED_CACHE`).
    let cached = unsafe { core::ptr::read_volatile(cache) };
    if cached == cached_answer(tgid, true, changed) {
        return answer;
    }
    if cached == cached_answer(tgid, false, changed) {
        return None;
    }
    let traced = unsafe { TRACED.get(tgid) }.is_some();
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(cache, cached_answer(tgid, traced, changed)) };
    if traced { answer } else { None }
}

/// The tgid of task `pid` if it belongs to a traced process (the leader is
/// keyed in `TRACED`, other threads in `TASKS`).
#[inline(always)]
pub fn traced_tgid_of(pid: u32) -> Option<u32> {
    if pid == 0 {
        return None;
    }
    if unsafe { TRACED.get(pid) }.is_some() {
        return Some(pid);
    }
    unsafe { TASKS.get(pid) }.copied()
}

/// The current task's saved user registers (its syscall number and
/// arguments), when userspace found their layout in BTF.
#[inline(always)]
pub fn current_regs() -> Option<*const u8> {
    if config!(regs.valid) == 0 {
        return None;
    }
    let stack_to_regs = config!(regs.stack_to_regs);
    // A constant to the verifier (read-only data): the branch a kernel
    // cannot run is dead code it removes, helpers unknown to it and all.
    let regs = if stack_to_regs != 0 {
        let task = unsafe { bpf_get_current_task() };
        read_kernel::<u64>(task, config!(regs.task_stack))? + stack_to_regs as u64
    } else {
        (unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) }) as u64
    };
    (regs != 0).then_some(regs as *const u8)
}

/// A 64-bit register saved at byte offset `off` of `pt_regs`.
#[inline(always)]
pub fn read_reg(regs: *const u8, off: u32) -> Option<u64> {
    read_kernel::<u64>(regs as u64, off)
}

/// The syscall number saved in `regs` (`u64::MAX` outside a syscall):
/// 8 bytes on x86-64, arm64's `s32 syscallno` sign-extended.
#[inline(always)]
pub fn read_syscall_nr(regs: *const u8) -> Option<u64> {
    // A constant to the verifier: the other branch is dead code.
    if config!(regs.nr_size) == 4 {
        read_kernel::<i32>(regs as u64, config!(regs.nr)).map(|nr| nr as i64 as u64)
    } else {
        read_reg(regs, config!(regs.nr))
    }
}

/// A kernel value of type `T` at byte offset `off` of `base` (`None`: a
/// null base, or the read faulted).
#[inline(always)]
pub fn read_kernel<T>(base: u64, off: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T) }.ok()
}

/// The thread id of the kernel task at `task`.
#[inline(always)]
pub fn task_pid(task: u64) -> Option<u32> {
    read_kernel::<i32>(task, config!(structs.task_pid)).map(|pid| pid as u32)
}

/// The syscall the current task is in (`u64::MAX`: none, or unknown).
#[inline(always)]
pub fn current_syscall() -> u64 {
    match current_regs() {
        Some(regs) => read_syscall_nr(regs).unwrap_or(u64::MAX),
        None => u64::MAX,
    }
}

/// Submit flags for a record nothing waits on (a closed descriptor's row,
/// an ended thread's): userspace is woken when 1 MiB of `EVENTS` waits,
/// else drains on its 50 ms tick, so 100,000 of them a second do not wake
/// it 100,000 times.
#[inline(always)]
pub fn lazy_wakeup() -> u64 {
    /// `bpf_ringbuf_query`: bytes written and not consumed yet.
    const BPF_RB_AVAIL_DATA: u64 = 0;
    /// A sixteenth of `EVENTS`: the rest is room for a tracer slow to run.
    const WAKE_AT: u64 = 1 << 20;
    if EVENTS.query(BPF_RB_AVAIL_DATA) >= WAKE_AT {
        RB_FORCE_WAKEUP
    } else {
        RB_NO_WAKEUP
    }
}

#[inline(always)]
pub fn count_drop(index: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(index) {
        // SAFETY: this CPU's slot of a map value.
        unsafe { add_relaxed(counter, 1) };
    }
}

/// `*dst += n` in one instruction (`BPF_XADD`, which every kernel has):
/// a per-CPU counter is still shared by the programs of its CPU, and one
/// may run in the middle of another's add (a syscall program preempted
/// where the syscall tracepoints are faultable, 6.14+; any program
/// interrupted by a perf event's), whose plain load-add-store would lose
/// the other's count. Unordered.
#[inline(always)]
pub unsafe fn add_relaxed(dst: *mut u64, n: u64) {
    unsafe {
        core::arch::asm!("lock *(u64 *)({dst} + 0) += {n}", dst = in(reg) dst, n = in(reg) n)
    };
}
