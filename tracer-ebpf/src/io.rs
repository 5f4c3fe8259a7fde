//! Reads and writes: `openat` (and `open`) name descriptors; the reads
//! (`read`/`pread64`/`readv`/`preadv`, the socket reads `recvfrom`/
//! `recvmsg`/`recvmmsg`), the writes (`write`/`pwrite64`/`writev`/
//! `pwritev`, the sends `sendto`/`sendmsg`/`sendmmsg`) and the syncs
//! (`fsync`/`fdatasync`/`sync_file_range`) are timed (entered and left
//! through `syscalls.rs`) and aggregated per (file, syscall, request size)
//! in a per-CPU map, so one costs no ring buffer record. Context switches
//! inside one are added by `sched.rs` to the thread's in-flight entry.

use aya_ebpf::{
    helpers::{
        bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_kernel_buf,
        bpf_probe_read_user, bpf_probe_read_user_str_bytes,
    },
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, PerCpuHashMap},
};
use tracer_common::{
    DISCOVERED_FILE_BIT, EventKind, FdKey, FileEvent, FileKey, InflightIo, IoEvent, IoKey, IoShape,
    IoStats, PATH_CAPTURE_LEN, drops,
};

use crate::{
    fd_rows,
    maps::{EVENTS, config, count_drop, current_if_traced, read_reg},
};

/// Reads, writes and syncs that entered the kernel and have not returned (key: tid;
/// `start_ns == 0` marks an idle slot).
#[map]
pub static INFLIGHT: HashMap<u32, InflightIo> = HashMap::with_max_entries(
    tracer_common::MAX_THREAD_ROWS,
    crate::maps::ALLOCATE_ON_INSERT,
);

/// `openat` filename pointers between syscall entry and exit (key: tid; 0: idle).
#[map]
static OPENING: HashMap<u32, u64> =
    HashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// The file each traced descriptor names now (`file_id`, see `IoKey`).
#[map]
static FD_FILES: HashMap<FdKey, u64> =
    HashMap::with_max_entries(65536, crate::maps::ALLOCATE_ON_INSERT);

/// Opens per (process, path), per CPU. A path is reported to userspace the
/// first time a CPU sees it opened: a loop that opens the same file 100,000
/// times sends at most one record per CPU, not 100,000.
#[map]
static FILE_OPENS: PerCpuHashMap<FileKey, u64> =
    PerCpuHashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// One-off traces: the paths each process has been reported to open
/// (the path record is sent once, not at every open). An LRU table is
/// preallocated whole: 16,384 rows (~1 ms at start-up; 65,536 took ~3 ms),
/// past which a path evicted is only sent again.
#[map]
static PATHS_SENT: LruHashMap<FileKey, u8> = LruHashMap::with_max_entries(16384, 0);

/// `BPF_NOEXIST`: an insert that fails when the key is there.
const BPF_NOEXIST: u64 = 1;

/// Scratch space for a path (too big for the 512-byte BPF stack): a slot
/// per `Hook` (an open's return in a first copy, and in a second copy
/// preempted inside it).
#[map]
static PATH_SCRATCH: PerCpuArray<[u8; PATH_CAPTURE_LEN]> =
    PerCpuArray::with_max_entries(crate::python::HOOKS, 0);

/// The read figures, summed by userspace across CPUs.
#[map]
static IO_STATS: PerCpuHashMap<IoKey, IoStats> =
    PerCpuHashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

const EBADF: i64 = 9;
/// iovecs summed for a readv request size; bounded for the verifier.
const MAX_IOVECS: u64 = 8;
/// Messages of one `recvmmsg` looked at (request and bytes); bounded for
/// the verifier. A call with more counts only its first 16.
const MAX_MMSGS: u64 = 16;

#[repr(C)]
struct Iovec {
    base: u64,
    len: u64,
}

/// The user ABI's `struct msghdr` (64-bit): `msg_iov` at 16, `msg_iovlen`
/// at 24; `struct mmsghdr` adds `msg_len` at 56, 64 bytes in all.
const MSGHDR_IOV: u64 = 16;
const MSGHDR_IOVLEN: u64 = 24;
const MMSGHDR_LEN: u64 = 56;
const MMSGHDR_SIZE: u64 = 64;

/// `openat(dirfd, filename, ...)` / `open(filename, ...)`: the name's
/// address is the argument saved at `filename_arg` of `pt_regs`.
#[inline(always)]
pub fn enter_open(regs: *const u8, filename_arg: u32) {
    let Some((_, tid)) = current_if_traced() else {
        return;
    };
    let Some(filename) = read_reg(regs, filename_arg) else {
        return;
    };
    // Entries are reused in place (0 = idle): an update is cheaper than a
    // delete on exit plus an insert on the next entry.
    match OPENING.get_ptr_mut(tid) {
        Some(slot) => unsafe { *slot = filename },
        None => {
            if OPENING.insert(tid, filename, 0).is_err() {
                count_drop(drops::TABLES);
            }
        }
    }
}

/// The return of `openat` / `open`: the descriptor now names the path.
/// `FD_ROWS`: the program holds the per-descriptor rows' code (their
/// fetching atomics, which a 5.10 kernel refuses anywhere in a program).
#[inline(always)]
pub fn exit_open<const FD_ROWS: bool>(ret: i64, hook: crate::python::Hook) {
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    // Only traced threads have an OPENING entry: no TRACED lookup needed.
    let Some(slot) = OPENING.get_ptr_mut(tid) else {
        return;
    };
    let filename = unsafe { core::ptr::replace(slot, 0) };
    if filename == 0 {
        return;
    }
    if ret < 0 {
        return;
    }
    let fd = ret as i32;
    let fd_rows = FD_ROWS && config!(fd_rows) != 0;
    // The kernel has just copied the name, so the page is resident.
    let Some(scratch) = PATH_SCRATCH.get_ptr_mut(hook as u32) else {
        return;
    };
    // Zeroed first: the hash reads the whole buffer, whose bytes past the
    // path's end would be an earlier path's.
    for word in 0..PATH_CAPTURE_LEN / 8 {
        // SAFETY: inside the PATH_CAPTURE_LEN-byte map value.
        unsafe { core::ptr::write_volatile(scratch.cast::<u64>().add(word), 0) };
    }
    let words = scratch.cast::<u64>().cast_const();
    let scratch = unsafe { &mut *scratch };
    let Ok(len) = (unsafe { bpf_probe_read_user_str_bytes(filename as *const u8, scratch) })
        .map(|path| path.len())
    else {
        return;
    };
    let file_id = path_hash(words, len);
    let key = FileKey {
        tgid,
        _pad: 0,
        file_id,
    };
    // The path goes to userspace once per (process, path).
    let first = if fd_rows {
        // Opens are counted in the row; the path is sent the first time
        // this process opens it (again if the LRU forgot it: harmless).
        // One insert that fails when the key is there: no lookup first.
        fd_rows::open(
            tgid,
            tid,
            fd,
            file_id,
            1,
            unsafe { bpf_ktime_get_ns() },
            hook,
        );
        PATHS_SENT.insert(key, 0u8, BPF_NOEXIST).is_ok()
    } else {
        if FD_FILES.insert(FdKey { tgid, fd }, file_id, 0).is_err() {
            count_drop(drops::TABLES);
        }
        match FILE_OPENS.get_ptr_mut(key) {
            Some(opens) => {
                // Per-CPU value: only this CPU writes it.
                unsafe { *opens += 1 };
                false
            }
            None => {
                if FILE_OPENS.insert(key, 1u64, 0).is_err() {
                    count_drop(drops::TABLES);
                }
                true
            }
        }
    };
    if first {
        emit_file_event(
            EventKind::FileOpened,
            tgid,
            tid,
            fd,
            file_id,
            filename as *const u8,
        );
    }
}

/// A 64-bit hash of the path as opened (`path`: zeroed past its `len`
/// bytes), with the top bit clear (discovered descriptors have it set, so
/// the two kinds never collide). The whole buffer eight bytes a step with
/// no branch (FNV-1a's xor-multiply on words, then a finalizer that spreads
/// every bit over the rest): a byte a step up to the path's end was 2,565
/// of `sys_exit`'s verified instructions.
#[inline(always)]
fn path_hash(path: *const u64, len: usize) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ len as u64;
    for i in 0..PATH_CAPTURE_LEN / 8 {
        // SAFETY: `path` is the PATH_CAPTURE_LEN-byte `PATH_SCRATCH` value.
        let word = unsafe { core::ptr::read_volatile(path.add(i)) };
        hash = (hash ^ word).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The finalizer of MurmurHash3's 64-bit mix.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    hash & !DISCOVERED_FILE_BIT
}

/// `close(fd)`: the descriptor names nothing any more.
#[inline(always)]
pub fn enter_close<const FD_ROWS: bool>(regs: *const u8) {
    let Some((tgid, tid)) = current_if_traced() else {
        return;
    };
    let Some(fd) = read_reg(regs, config!(regs.arg1)) else {
        return;
    };
    crate::requests::closed(tgid, tid, fd as i32);
    if FD_ROWS && config!(fd_rows) != 0 {
        fd_rows::close(tgid, tid, fd as i32, unsafe { bpf_ktime_get_ns() });
        return;
    }
    let _ = FD_FILES.remove(FdKey {
        tgid,
        fd: fd as i32,
    });
}

/// A read, write or sync of a traced thread enters the kernel (`entry`:
/// its `Config::io_syscalls` entry): its descriptor and request, by the
/// syscall's shape (one inlined copy each).
#[inline(always)]
pub fn enter(regs: *const u8, entry: u8) {
    let syscall = u32::from(entry & 31).saturating_sub(1);
    match entry >> 5 {
        s if s == IoShape::Buffer as u8 => enter_buffer(regs, syscall),
        s if s == IoShape::Vector as u8 => enter_vector(regs, syscall),
        s if s == IoShape::Message as u8 => enter_message(regs, syscall),
        s if s == IoShape::Messages as u8 => enter_messages(regs, syscall),
        _ => enter_sync(regs, syscall),
    }
}

/// `read(fd, buf, count)`, `write`, `pread64(fd, buf, count, pos)`,
/// `pwrite64`, `recvfrom(fd, buf, len, flags, addr, addrlen)` (`recv` is
/// `recvfrom`), `sendto` (`send`).
#[inline(always)]
fn enter_buffer(regs: *const u8, syscall: u32) {
    let Some((_, tid)) = current_if_traced() else {
        return;
    };
    let (Some(fd), Some(count)) = (
        read_reg(regs, config!(regs.arg1)),
        read_reg(regs, config!(regs.arg3)),
    ) else {
        return;
    };
    start_io(tid, fd as i32, count, syscall, 0);
}

/// `readv(fd, vec, vlen)`, `writev`, `preadv(fd, vec, vlen, ...)`,
/// `pwritev`: the request is the sum of the first iovecs' lengths.
#[inline(always)]
fn enter_vector(regs: *const u8, syscall: u32) {
    let Some((_, tid)) = current_if_traced() else {
        return;
    };
    let (Some(fd), Some(vec), Some(vlen)) = (
        read_reg(regs, config!(regs.arg1)),
        read_reg(regs, config!(regs.arg2)),
        read_reg(regs, config!(regs.arg3)),
    ) else {
        return;
    };
    let request = iovec_sum(vec, vlen);
    start_io(tid, fd as i32, request, syscall, 0);
}

/// `recvmsg(fd, msg, flags)`, `sendmsg`: the request is the sum of the
/// message's first iovecs' lengths, as for `readv`.
#[inline(always)]
fn enter_message(regs: *const u8, syscall: u32) {
    let Some((_, tid)) = current_if_traced() else {
        return;
    };
    let (Some(fd), Some(msg)) = (
        read_reg(regs, config!(regs.arg1)),
        read_reg(regs, config!(regs.arg2)),
    ) else {
        return;
    };
    start_io(tid, fd as i32, msghdr_request(msg), syscall, 0);
}

/// `fsync(fd)`, `fdatasync(fd)`, `sync_file_range(fd, offset, nbytes,
/// flags)`: the descriptor only (a sync asks for no bytes).
#[inline(always)]
fn enter_sync(regs: *const u8, syscall: u32) {
    let Some((_, tid)) = current_if_traced() else {
        return;
    };
    let Some(fd) = read_reg(regs, config!(regs.arg1)) else {
        return;
    };
    start_io(tid, fd as i32, 0, syscall, 0);
}

/// `recvmmsg(fd, msgvec, vlen, flags, timeout)`, `sendmmsg(fd, msgvec,
/// vlen, flags)`: one syscall whose request is every buffer offered (the
/// first `MAX_MMSGS` messages'); its bytes are summed from the `msg_len`s
/// at exit.
#[inline(always)]
fn enter_messages(regs: *const u8, syscall: u32) {
    let Some((_, tid)) = current_if_traced() else {
        return;
    };
    let (Some(fd), Some(vec), Some(vlen)) = (
        read_reg(regs, config!(regs.arg1)),
        read_reg(regs, config!(regs.arg2)),
        read_reg(regs, config!(regs.arg3)),
    ) else {
        return;
    };
    let mut sum = MmsgRequest {
        vec,
        vlen,
        request: 0,
    };
    // With `bpf_loop` the verifier checks one message's sum, not sixteen
    // unrolled (most of `sys_enter`'s verifying, at every start).
    crate::steps::repeat::<{ MAX_MMSGS as usize }, _>(&mut sum);
    let request = sum.request;
    // A null vector is an EFAULT: nothing to sum at exit either way.
    start_io(tid, fd as i32, request, syscall, vec);
}

/// The buffers a `recvmmsg` (`sendmmsg`) offers, summed message by message.
#[repr(C)]
struct MmsgRequest {
    vec: u64,
    vlen: u64,
    request: u64,
}

impl crate::steps::Step for MmsgRequest {
    /// Adds message `i`'s buffers; false past the last message.
    #[inline(always)]
    fn step(&mut self, i: u64) -> bool {
        if i >= self.vlen {
            return false;
        }
        let msg = self.vec.wrapping_add(i * MMSGHDR_SIZE);
        self.request = self.request.wrapping_add(msghdr_request(msg));
        true
    }
}

/// The sum of a user `msghdr`'s iovec lengths.
#[inline(always)]
fn msghdr_request(msg: u64) -> u64 {
    // `msg_iov` and `msg_iovlen` side by side: one read for both.
    const _: () = assert!(MSGHDR_IOVLEN == MSGHDR_IOV + 8);
    let [iov, iovlen] =
        unsafe { bpf_probe_read_user((msg + MSGHDR_IOV) as *const [u64; 2]) }.unwrap_or([0, 0]);
    iovec_sum(iov, iovlen)
}

/// The sum of the first `MAX_IOVECS` lengths of a user iovec array.
#[inline(always)]
fn iovec_sum(vec: u64, vlen: u64) -> u64 {
    let iovecs = vec as *const Iovec;
    let mut request: u64 = 0;
    for i in 0..MAX_IOVECS {
        if i >= vlen {
            break;
        }
        match unsafe { bpf_probe_read_user(iovecs.wrapping_add(i as usize)) } {
            Ok(iov) => request = request.wrapping_add(iov.len),
            Err(_) => break,
        }
    }
    request
}

/// Bytes of the first `count` messages a `recvmmsg` filled or a `sendmmsg`
/// sent (their `msg_len`s).
#[inline(always)]
fn mmsg_bytes(vec: u64, count: u64) -> u64 {
    let mut bytes: u64 = 0;
    for i in 0..MAX_MMSGS {
        if i >= count {
            break;
        }
        let len = vec + i * MMSGHDR_SIZE + MMSGHDR_LEN;
        match unsafe { bpf_probe_read_user(len as *const u32) } {
            Ok(len) => bytes += u64::from(len),
            Err(_) => break,
        }
    }
    bytes
}

#[inline(always)]
fn start_io(tid: u32, fd: i32, request: u64, syscall: u32, msgs: u64) {
    let inflight = InflightIo {
        start_ns: unsafe { bpf_ktime_get_ns() },
        request,
        fd,
        syscall,
        voluntary: 0,
        involuntary: 0,
        msgs,
    };
    // Reused in place (start_ns 0 = idle), see OPENING.
    match INFLIGHT.get_ptr_mut(tid) {
        Some(slot) => unsafe { *slot = inflight },
        None => {
            if INFLIGHT.insert(tid, inflight, 0).is_err() {
                count_drop(drops::TABLES);
            }
        }
    }
}

/// The return of any read: one row of `IO_STATS` more.
#[inline(always)]
pub fn exit_io<const FD_ROWS: bool>(regs: *const u8, ret: i64, hook: crate::python::Hook) {
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let Some(slot) = INFLIGHT.get_ptr_mut(tid) else {
        return;
    };
    let read = unsafe { *slot };
    if read.start_ns == 0 {
        return;
    }
    unsafe { (*slot).start_ns = 0 };
    let now = unsafe { bpf_ktime_get_ns() };
    // recvmmsg and sendmmsg return messages, not bytes: their msg_lens.
    let ret = if read.msgs != 0 && ret > 0 {
        mmsg_bytes(read.msgs, ret as u64) as i64
    } else {
        ret
    };

    let fd_key = FdKey { tgid, fd: read.fd };
    let fd_rows = FD_ROWS && config!(fd_rows) != 0;
    let known = if fd_rows {
        fd_rows::file_of(tgid, read.fd)
    } else {
        unsafe { FD_FILES.get(fd_key) }.copied()
    };
    let file_id = match known {
        Some(id) => id,
        // A bad descriptor names no file: count the error under file 0.
        None if ret == -EBADF => 0,
        None => {
            // Opened before we attached, or by a call we do not trace (pipe2,
            // socket, dup...): name this descriptor now, userspace resolves
            // it through /proc/PID/fd while it is still open.
            let file_id = read.start_ns | DISCOVERED_FILE_BIT;
            if fd_rows {
                fd_rows::open(tgid, tid, read.fd, file_id, 0, read.start_ns, hook);
            } else if FD_FILES.insert(fd_key, file_id, 0).is_err() {
                count_drop(drops::TABLES);
            }
            emit_file_event(
                EventKind::FdDiscovered,
                tgid,
                tid,
                read.fd,
                file_id,
                core::ptr::null(),
            );
            file_id
        }
    };

    if config!(timeline) != 0 {
        emit_io(tgid, tid, &read, file_id, ret, now);
    }
    crate::requests::io_done(regs, (tgid, tid), &read, file_id, ret);
    let in_row = fd_rows
        && file_id != 0
        && fd_rows::add(tgid, &read, ret, now.saturating_sub(read.start_ns));
    // One call site for the stack: each is a capture more to verify.
    if in_row || count_io(tgid, &read, file_id, ret, now) {
        crate::python::io_stack(tgid, tid, file_id, read.syscall, hook);
    }
}

/// A finished read counted in `IO_STATS` (no descriptor row for it);
/// false when the table had no room (counted).
#[inline(always)]
fn count_io(tgid: u32, read: &InflightIo, file_id: u64, ret: i64, now: u64) -> bool {
    let key = IoKey {
        tgid,
        fd: read.fd,
        file_id,
        request: read.request,
        syscall: read.syscall,
        _pad: 0,
    };
    let stats = match IO_STATS.get_ptr_mut(key) {
        Some(stats) => stats,
        None => {
            if IO_STATS.insert(key, IoStats::default(), 0).is_err() {
                count_drop(drops::READ_STATS);
                return false;
            }
            match IO_STATS.get_ptr_mut(key) {
                Some(stats) => stats,
                None => return false,
            }
        }
    };
    // Per-CPU value: only this CPU writes it.
    let stats = unsafe { &mut *stats };
    stats.syscalls += 1;
    if ret >= 0 {
        stats.bytes += ret as u64;
    } else {
        stats.errors += 1;
    }
    stats.kernel_ns += now.saturating_sub(read.start_ns);
    stats.voluntary += read.voluntary;
    stats.involuntary += read.involuntary;
    true
}

/// `--perfetto`: the read as a record (drained on userspace's tick).
#[inline(always)]
fn emit_io(tgid: u32, tid: u32, read: &InflightIo, file_id: u64, ret: i64, now: u64) {
    let Some(mut entry) = EVENTS.reserve::<IoEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    // Written in place: an `IoEvent` built first would take the stack
    // `sys_exit` has no room for (`kernel/probes/stack_depth.rs`).
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header.kind = EventKind::IoDone as u32;
    event.header.tgid = tgid;
    event.header.tid = tid;
    event.header._pad = 0;
    event.header.ts_ns = now;
    event.start_ns = read.start_ns;
    event.file_id = file_id;
    event.request = read.request;
    event.ret = ret;
    event.fd = read.fd;
    event.syscall = read.syscall;
    event.voluntary = read.voluntary as u32;
    event.involuntary = read.involuntary as u32;
    entry.submit(crate::maps::RB_NO_WAKEUP);
}

#[inline(always)]
fn emit_file_event(kind: EventKind, tgid: u32, tid: u32, fd: i32, file_id: u64, path: *const u8) {
    let Some(mut entry) = EVENTS.reserve::<FileEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header.kind = kind as u32;
    event.header.tgid = tgid;
    event.header.tid = tid;
    event.header._pad = 0;
    event.header.ts_ns = unsafe { bpf_ktime_get_ns() };
    event.fd = fd;
    event.file_id = file_id;
    event.path_len = 0;
    event.ino = 0;
    event.fs_magic = 0;
    event.blksize = 0;
    event.truncated = 0;
    event.mode = 0;
    event._pad = 0;
    event.socket = tracer_common::SocketEnds::default();
    // What the file is, read here: userspace need not look it up by path.
    describe_fd(fd, event);
    if !path.is_null() {
        if let Ok(bytes) = unsafe { bpf_probe_read_user_str_bytes(path, &mut event.path) } {
            event.path_len = bytes.len() as u32;
            // The buffer is full: a path of exactly that length ends here,
            // a longer one goes on past it.
            if bytes.len() == PATH_CAPTURE_LEN - 1 {
                let next: u8 =
                    unsafe { bpf_probe_read_user(path.wrapping_add(PATH_CAPTURE_LEN - 1)) }
                        .unwrap_or(0);
                event.truncated = u32::from(next != 0);
            }
        }
    }
    // A descriptor found at its first read (a socket accepted, a pipe) is
    // named through /proc while it is open: wake the tracer now, even
    // behind records that did not (closed descriptors' rows, samples).
    entry.submit(if kind == EventKind::FdDiscovered {
        crate::maps::RB_FORCE_WAKEUP
    } else {
        0
    });
}

/// What the current task's descriptor `fd` is: inode number, filesystem
/// magic and block size (`current->files->fdt->fd[fd]->f_inode`).
#[inline(always)]
fn describe_fd(fd: i32, event: &mut FileEvent) {
    if config!(file.valid) == 0 || fd < 0 {
        return;
    }
    let read_ptr = |base: u64, off: u32| -> u64 {
        if base == 0 {
            return 0;
        }
        unsafe { bpf_probe_read_kernel((base + off as u64) as *const u64) }.unwrap_or(0)
    };
    let task = unsafe { bpf_get_current_task() };
    let fdt = read_ptr(
        read_ptr(task, config!(file.task_files)),
        config!(file.files_fdt),
    );
    if fdt == 0 {
        return;
    }
    let max_fds =
        unsafe { bpf_probe_read_kernel((fdt + config!(file.fdt_max_fds) as u64) as *const u32) }
            .unwrap_or(0);
    if fd as u32 >= max_fds {
        return;
    }
    let file = read_ptr(read_ptr(fdt, config!(file.fdt_fd)), fd as u32 * 8);
    let inode = read_ptr(file, config!(file.file_inode));
    if inode == 0 {
        return;
    }
    event.ino = read_ptr(inode, config!(file.inode_ino));
    event.mode = u32::from(
        unsafe { bpf_probe_read_kernel((inode + config!(file.inode_mode) as u64) as *const u16) }
            .unwrap_or(0),
    );
    event.fs_magic = read_ptr(
        read_ptr(inode, config!(file.inode_sb)),
        config!(file.sb_magic),
    );
    let blkbits =
        unsafe { bpf_probe_read_kernel((inode + config!(file.inode_blkbits) as u64) as *const u8) }
            .unwrap_or(0);
    if blkbits > 0 && blkbits < 32 {
        event.blksize = 1 << blkbits;
    }
    if event.mode & S_IFMT == S_IFSOCK && config!(file.sockets) != 0 {
        let sock = read_ptr(
            read_ptr(file, config!(file.file_private_data)),
            config!(file.socket_sk),
        );
        if sock != 0 {
            read_socket_ends(sock, &mut event.socket);
        }
    }
}

const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// An inet socket's protocol, ports and addresses (`struct sock` at
/// `sock`); the family stays 0 for any other.
#[inline(always)]
fn read_socket_ends(sock: u64, ends: &mut tracer_common::SocketEnds) {
    let u16_at = |off: u32| -> u16 {
        unsafe { bpf_probe_read_kernel((sock + off as u64) as *const u16) }.unwrap_or(0)
    };
    let family = u16_at(config!(file.skc_family));
    let (local, peer) = match family {
        AF_INET => (config!(file.skc_rcv_saddr), config!(file.skc_daddr)),
        AF_INET6 if config!(file.skc_v6_daddr) != u32::MAX => {
            (config!(file.skc_v6_rcv_saddr), config!(file.skc_v6_daddr))
        }
        _ => return,
    };
    // Read straight into the record (zeroed by the caller): no copy on
    // the stack.
    let length = if family == AF_INET { 4 } else { 16 };
    let read_into = |off: u32, out: &mut [u8; 16]| {
        let _ = unsafe {
            bpf_probe_read_kernel_buf((sock + off as u64) as *const u8, &mut out[..length])
        };
    };
    read_into(local, &mut ends.local);
    read_into(peer, &mut ends.peer);
    ends.local_port = u16_at(config!(file.skc_num));
    ends.peer_port = u16_at(config!(file.skc_dport));
    ends.protocol = u16_at(config!(file.sk_protocol));
    ends.sock_type = u16_at(config!(file.sk_type));
    ends.family = family;
}
