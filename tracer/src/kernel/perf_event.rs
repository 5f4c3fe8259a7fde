//! A perf event that runs a loaded BPF program: opened with
//! `perf_event_open` on CPU 0 for every process (a uprobe's or a
//! tracepoint's program runs wherever it fires), or a page-fault counter on
//! a thread or a CPU, given the program (`PERF_EVENT_IOC_SET_BPF`) and
//! enabled. Closing the descriptor detaches it (after an RCU grace period).

use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};

// From <linux/perf_event.h>.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// `struct perf_event_attr` up to `config2` (PERF_ATTR_SIZE_VER1 is 72;
/// the kernel accepts any known size and zero-fills the rest).
pub const ATTR_SIZE: usize = 72;

/// The head of a `perf_event_attr`: `type` and `size`, the rest zero.
pub fn attr(event_type: u32) -> [u8; ATTR_SIZE] {
    let mut attr = [0u8; ATTR_SIZE];
    attr[0..4].copy_from_slice(&event_type.to_ne_bytes());
    attr[4..8].copy_from_slice(&(ATTR_SIZE as u32).to_ne_bytes());
    attr
}

/// Opens the event `attr` describes and runs `program` at it. The caller
/// keeps whatever `attr` points to (a uprobe's path) alive for the call.
pub fn open_with_program(
    attr: &[u8; ATTR_SIZE],
    program: BorrowedFd<'_>,
) -> std::io::Result<OwnedFd> {
    open_on(attr, -1, 0, program)
}

/// `PERF_TYPE_SOFTWARE`'s minor page faults.
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_PAGE_FAULTS_MIN: u64 = 5;
/// `perf_event_attr`'s flag bits: `inherit`.
const ATTR_INHERIT: u64 = 1 << 1;

/// Where a counter counts: one thread (and, inherited, what it creates
/// from then on), or every process on one CPU.
#[derive(Clone, Copy, Debug)]
pub enum Counted {
    Thread(u32),
    Cpu(u32),
}

/// Minor page faults where `counted` says, running `program` every
/// `period` of them. Its count (`count`) is every fault since, sampled or
/// not: the kernel may throttle a sampling event whose program runs too
/// often for its budget (`perf_event_max_sample_rate`), and no record says.
pub fn open_page_faults(
    counted: Counted,
    period: u64,
    program: BorrowedFd<'_>,
) -> std::io::Result<OwnedFd> {
    let mut attr = attr(PERF_TYPE_SOFTWARE);
    attr[8..16].copy_from_slice(&PERF_COUNT_SW_PAGE_FAULTS_MIN.to_ne_bytes());
    attr[16..24].copy_from_slice(&period.to_ne_bytes());
    let (pid, cpu) = match counted {
        Counted::Thread(tid) => {
            attr[40..48].copy_from_slice(&ATTR_INHERIT.to_ne_bytes());
            (tid as libc::pid_t, -1)
        }
        Counted::Cpu(cpu) => (-1, cpu as libc::c_int),
    };
    open_on(&attr, pid, cpu, program)
}

/// A counter's value: its own count and (inherited) its children's,
/// those that exited included.
pub fn count(event: BorrowedFd<'_>) -> std::io::Result<u64> {
    let mut value = 0u64;
    // SAFETY: reads 8 bytes (read_format 0: the value) into `value`.
    let n = unsafe { libc::read(event.as_raw_fd(), (&raw mut value).cast(), 8) };
    if n == 8 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn open_on(
    attr: &[u8; ATTR_SIZE],
    pid: libc::pid_t,
    cpu: libc::c_int,
    program: BorrowedFd<'_>,
) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a valid perf_event_attr prefix of the size it says.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            pid,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor the kernel gave us.
    let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: plain ioctls on our own descriptors.
    unsafe {
        if libc::ioctl(
            event.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as _,
            program.as_raw_fd(),
        ) != 0
            || libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE as _, 0) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(event)
}
