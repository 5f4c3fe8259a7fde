//! Requests: a read from a discovered descriptor (an accepted connection)
//! that begins with an HTTP/1.x request line marks the connection; its
//! reads and writes are then sent as records (a status line's and a
//! request line's first bytes copied, never a body), and its close ends
//! it. Userspace pairs them into requests (`analysis/requests.rs`).

use aya_ebpf::{
    helpers::{bpf_probe_read_user, generated::bpf_probe_read_user as probe_read_user},
    macros::map,
    maps::{Array, HashMap},
};
use tracer_common::{
    DISCOVERED_FILE_BIT, EventKind, FdKey, InflightIo, IoSyscall, REQUEST_LINE_LEN, RequestIoEvent,
    drops, request_io,
};

use crate::maps::{EVENTS, config, count_drop, header, read_reg};

/// The connections that carried a request line: (process, descriptor) ->
/// the connection's file id (a descriptor number reused for another
/// connection has another).
#[map]
static HTTP_CONNS: HashMap<FdKey, u64> =
    HashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// Non-zero once a connection was marked: until then a read or write
/// costs no `HTTP_CONNS` lookup (an array's value is a load).
#[map]
static ANY_MARKED: Array<u32> = Array::with_max_entries(1, 0);

/// The shortest request line (`GET / HTTP/1.0`) and status line
/// (`HTTP/1.0 200 `) are longer.
const SHORTEST_LINE: i64 = 14;

/// A read or write of a traced thread returned `ret` bytes from or to
/// `file_id`: a request line marks its connection; a marked connection's
/// every read and write is sent. The data's address is read from the
/// saved registers here (the syscall left them as they were), only where
/// a line may begin.
#[inline(always)]
pub fn io_done(regs: *const u8, (tgid, tid): (u32, u32), io: &InflightIo, file_id: u64, ret: i64) {
    if config!(requests) == 0 || file_id & DISCOVERED_FILE_BIT == 0 || ret <= 0 {
        return;
    }
    if io.syscall > IoSyscall::Sendmmsg as u32 {
        return; // a sync
    }
    let write = io.syscall >= IoSyscall::Write as u32;
    let key = FdKey { tgid, fd: io.fd };
    let any_marked = ANY_MARKED.get(0).is_some_and(|&marked| marked != 0);
    let known = any_marked && unsafe { HTTP_CONNS.get(&key) }.copied() == Some(file_id);
    // A response is looked for on a connection that carried a request only;
    // a request line is longer.
    if !known && (write || ret < SHORTEST_LINE) {
        return;
    }
    let (data, room) = if ret >= SHORTEST_LINE {
        first_segment(regs, io.syscall, ret as u64)
    } else {
        (0, 0)
    };
    let line = room >= 8 && {
        let head: u64 = unsafe { bpf_probe_read_user(data as *const u64) }.unwrap_or(0);
        if write {
            is_status_line(head)
        } else {
            is_request_line(head)
        }
    };
    if !known {
        if !line {
            return; // not a connection that speaks HTTP/1.x (yet)
        }
        if HTTP_CONNS.insert(&key, &file_id, 0).is_err() {
            count_drop(drops::TABLES);
            return;
        }
        if !any_marked && let Some(marked) = ANY_MARKED.get_ptr_mut(0) {
            unsafe { *marked = 1 };
        }
    }
    let kind = if write {
        request_io::WRITE
    } else {
        request_io::READ
    };
    let copy = if line { room } else { 0 };
    send(
        tgid,
        tid,
        (io.fd, file_id),
        (kind, io.start_ns, ret as u64),
        (data, copy),
    );
}

/// `close(fd)` of a traced thread: a marked connection's end.
#[inline(always)]
pub fn closed(tgid: u32, tid: u32, fd: i32) {
    if config!(requests) == 0 {
        return;
    }
    let key = FdKey { tgid, fd };
    let Some(&file_id) = (unsafe { HTTP_CONNS.get(&key) }) else {
        return;
    };
    let _ = HTTP_CONNS.remove(&key);
    send(tgid, tid, (fd, file_id), (request_io::CLOSE, 0, 0), (0, 0));
}

/// The record: `copy` bytes of the line at `data` (0: none).
#[inline(always)]
fn send(
    tgid: u32,
    tid: u32,
    (fd, file_id): (i32, u64),
    (kind, start_ns, bytes): (u32, u64, u64),
    (data, copy): (u64, u64),
) {
    let Some(mut entry) = EVENTS.reserve::<RequestIoEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record, written in place (no copy of
    // the record on the BPF stack).
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(EventKind::RequestIo, tgid, tid));
        core::ptr::addr_of_mut!((*event).start_ns).write(start_ns);
        core::ptr::addr_of_mut!((*event).file_id).write(file_id);
        core::ptr::addr_of_mut!((*event).bytes).write(bytes);
        core::ptr::addr_of_mut!((*event).fd).write(fd);
        core::ptr::addr_of_mut!((*event).kind).write(kind);
        core::ptr::addr_of_mut!((*event)._pad).write(0);
        let to = core::ptr::addr_of_mut!((*event).line).cast();
        let from = data as *const core::ffi::c_void;
        // The size the verifier sees: a constant, or masked in a register
        // just before the call.
        let (len, read) = if copy >= REQUEST_LINE_LEN as u64 {
            let n = REQUEST_LINE_LEN as u32;
            (n, probe_read_user(to, n, from))
        } else if copy > 0 {
            let n = crate::python::below::<REQUEST_LINE_LEN>(copy) as u32;
            (n, probe_read_user(to, n, from))
        } else {
            (0, 0)
        };
        let len = if read == 0 { len } else { 0 };
        core::ptr::addr_of_mut!((*event).line_len).write(len);
    }
    entry.submit(0);
}

/// The first buffer of the data syscall `syscall` read or wrote (its
/// second argument is the buffer, the iovec array or the `msghdr`), and how
/// many of its bytes hold data (`ret` at most).
#[inline(always)]
fn first_segment(regs: *const u8, syscall: u32, ret: u64) -> (u64, u64) {
    #[repr(C)]
    struct Iovec {
        base: u64,
        len: u64,
    }
    /// `msg_iov` in the user ABI's `struct msghdr` (64-bit).
    const MSGHDR_IOV: u64 = 16;
    let Some(arg) = read_reg(regs, config!(regs.arg2)) else {
        return (0, 0);
    };
    let iovecs = match syscall {
        s if s == IoSyscall::Read as u32
            || s == IoSyscall::Pread64 as u32
            || s == IoSyscall::Recvfrom as u32
            || s == IoSyscall::Write as u32
            || s == IoSyscall::Pwrite64 as u32
            || s == IoSyscall::Sendto as u32 =>
        {
            return (arg, ret);
        }
        s if s == IoSyscall::Readv as u32
            || s == IoSyscall::Preadv as u32
            || s == IoSyscall::Writev as u32
            || s == IoSyscall::Pwritev as u32 =>
        {
            arg
        }
        s if s == IoSyscall::Recvmsg as u32 || s == IoSyscall::Sendmsg as u32 => {
            unsafe { bpf_probe_read_user((arg + MSGHDR_IOV) as *const u64) }.unwrap_or(0)
        }
        _ => return (0, 0),
    };
    match unsafe { bpf_probe_read_user(iovecs as *const Iovec) } {
        Ok(iov) => (iov.base, iov.len.min(ret)),
        Err(_) => (0, 0),
    }
}

/// The data begins with a request line's method and a space (the methods
/// of RFC 9110; userspace checks the rest of the line).
#[inline(always)]
fn is_request_line(head: u64) -> bool {
    let word = head as u32;
    let fifth = (head >> 32) as u8;
    word == u32::from_le_bytes(*b"GET ")
        || word == u32::from_le_bytes(*b"PUT ")
        || (fifth == b' '
            && (word == u32::from_le_bytes(*b"POST") || word == u32::from_le_bytes(*b"HEAD")))
        || word == u32::from_le_bytes(*b"DELE")
        || word == u32::from_le_bytes(*b"PATC")
        || word == u32::from_le_bytes(*b"OPTI")
        || word == u32::from_le_bytes(*b"CONN")
        || word == u32::from_le_bytes(*b"TRAC")
}

/// The data begins with `HTTP/1.`: a status line.
#[inline(always)]
fn is_status_line(head: u64) -> bool {
    head & 0x00ff_ffff_ffff_ffff == u64::from_le_bytes(*b"HTTP/1.\0")
}
