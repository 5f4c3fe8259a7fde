//! Reads and writes: per-file figures aggregated in the kernel, and the
//! records that name the files (opened while traced, or discovered on
//! first use).

use crate::events::EventHeader;

/// Bytes of a path captured from `openat` (longer paths are truncated and flagged).
pub const PATH_CAPTURE_LEN: usize = 256;

/// Which read- or write-family syscall a figure came from (the syncs
/// count in the file's write row).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IoSyscall {
    Read = 0,
    Pread64 = 1,
    Readv = 2,
    /// `preadv` and `preadv2` (same first three arguments).
    Preadv = 3,
    /// `recv`, `recvfrom` (CPython's `sock.recv`, `recv_into`, `recvfrom`).
    Recvfrom = 4,
    Recvmsg = 5,
    /// One call, however many messages it returned (see `InflightIo::msgs`).
    Recvmmsg = 6,
    Write = 7,
    Pwrite64 = 8,
    Writev = 9,
    /// `pwritev` and `pwritev2`.
    Pwritev = 10,
    /// `send`, `sendto` (CPython's `sock.send`, `sendall`, `sendto`).
    Sendto = 11,
    Sendmsg = 12,
    /// One call, however many messages it sent.
    Sendmmsg = 13,
    Fsync = 14,
    Fdatasync = 15,
    SyncFileRange = 16,
}

/// How an I/O syscall's arguments give its descriptor and request size.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoShape {
    /// `(fd, buf, count, ...)`.
    Buffer = 0,
    /// `(fd, iovec, iovcnt, ...)`: the request is the iovecs' sum.
    Vector = 1,
    /// `(fd, msghdr, flags)`: its iovecs' sum.
    Message = 2,
    /// `(fd, mmsghdr vector, vlen, ...)`: every message's; the bytes are
    /// the `msg_len`s at exit (it returns messages).
    Messages = 3,
    /// `(fd, ...)`: a sync, no request.
    Sync = 4,
}

impl IoSyscall {
    pub const ALL: [IoSyscall; 17] = [
        Self::Read,
        Self::Pread64,
        Self::Readv,
        Self::Preadv,
        Self::Recvfrom,
        Self::Recvmsg,
        Self::Recvmmsg,
        Self::Write,
        Self::Pwrite64,
        Self::Writev,
        Self::Pwritev,
        Self::Sendto,
        Self::Sendmsg,
        Self::Sendmmsg,
        Self::Fsync,
        Self::Fdatasync,
        Self::SyncFileRange,
    ];

    pub fn from_u32(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == value)
    }

    /// A write-family syscall or a sync: the file's write row.
    pub const fn is_write(self) -> bool {
        self as u32 >= Self::Write as u32
    }

    /// `fsync`, `fdatasync`, `sync_file_range`: no bytes, no request.
    pub fn is_sync(self) -> bool {
        self as u32 >= Self::Fsync as u32
    }

    pub const fn shape(self) -> IoShape {
        match self {
            Self::Read | Self::Pread64 | Self::Recvfrom => IoShape::Buffer,
            Self::Write | Self::Pwrite64 | Self::Sendto => IoShape::Buffer,
            Self::Readv | Self::Preadv | Self::Writev | Self::Pwritev => IoShape::Vector,
            Self::Recvmsg | Self::Sendmsg => IoShape::Message,
            Self::Recvmmsg | Self::Sendmmsg => IoShape::Messages,
            Self::Fsync | Self::Fdatasync | Self::SyncFileRange => IoShape::Sync,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Pread64 => "pread64",
            Self::Readv => "readv",
            Self::Preadv => "preadv",
            Self::Recvfrom => "recvfrom",
            Self::Recvmsg => "recvmsg",
            Self::Recvmmsg => "recvmmsg",
            Self::Write => "write",
            Self::Pwrite64 => "pwrite64",
            Self::Writev => "writev",
            Self::Pwritev => "pwritev",
            Self::Sendto => "sendto",
            Self::Sendmsg => "sendmsg",
            Self::Sendmmsg => "sendmmsg",
            Self::Fsync => "fsync",
            Self::Fdatasync => "fdatasync",
            Self::SyncFileRange => "sync_file_range",
        }
    }
}

/// Key of the per-CPU `READ_STATS` map: one row per open file, syscall and request size.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IoKey {
    pub tgid: u32,
    pub fd: i32,
    /// Which file: a hash of the path it was opened by, or, for a descriptor
    /// the tracer did not see opened, a unique id with [`DISCOVERED_FILE_BIT`]
    /// set. A reused fd number is never confused with the file it used to name.
    pub file_id: u64,
    /// Bytes asked for (`count`/`len`, or the sum of the iovec lengths).
    pub request: u64,
    pub syscall: u32,
    pub _pad: u32,
}

/// Value of `READ_STATS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    pub syscalls: u64,
    pub bytes: u64,
    pub errors: u64,
    pub kernel_ns: u64,
    /// Scheduler context switches that happened while the read was in the kernel.
    pub voluntary: u64,
    pub involuntary: u64,
}

impl IoStats {
    /// Adds `other`'s figures (another CPU's, another descriptor's).
    pub fn add(&mut self, other: &IoStats) {
        self.syscalls += other.syscalls;
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.kernel_ns += other.kernel_ns;
        self.voluntary += other.voluntary;
        self.involuntary += other.involuntary;
    }
}

/// A read that has entered the kernel and not returned yet (per thread).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct InflightIo {
    pub start_ns: u64,
    pub request: u64,
    pub fd: i32,
    pub syscall: u32,
    pub voluntary: u64,
    pub involuntary: u64,
    /// `recvmmsg` only: the user address of its `mmsghdr` array (0
    /// otherwise), whose `msg_len`s are the bytes received, read at exit.
    pub msgs: u64,
}

/// Key of `FD_FILES`: which opening of a descriptor is current.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FdKey {
    pub tgid: u32,
    pub fd: i32,
}

/// Descriptors `FD_ROWS` holds at once (open now in the traced processes,
/// or left open by one that exited). A descriptor opened when it is full
/// is counted in `dropped.tables` and its reads under a discovered id.
pub const MAX_FD_ROWS: u32 = 131_072;

/// (syscall, request size) pairs a descriptor's `FD_ROWS` row holds; a
/// descriptor read with more pairs counts the rest in `READ_STATS`.
pub const FD_SLOTS: usize = 4;
/// Requests this large or larger do not fit a slot's key (they go to `READ_STATS`).
pub const FD_SLOT_MAX_REQUEST: u64 = 1 << 56;

/// One (syscall, request size) of a descriptor and its figures.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdSlot {
    /// 0: free; else `(syscall + 1) << 56 | request` (see [`FdSlot::key`]).
    pub key: u64,
    pub stats: IoStats,
}

impl FdSlot {
    /// The slot key of reads of `request` bytes by `syscall` (none: too large).
    pub fn key(syscall: u32, request: u64) -> Option<u64> {
        (request < FD_SLOT_MAX_REQUEST).then_some(((syscall as u64 + 1) << 56) | request)
    }

    /// (syscall, request) of a used slot.
    pub fn unpack(&self) -> Option<(u32, u64)> {
        // `then`, not `then_some`: an empty slot's key would underflow.
        (self.key != 0).then(|| {
            (
                ((self.key >> 56) - 1) as u32,
                self.key & (FD_SLOT_MAX_REQUEST - 1),
            )
        })
    }
}

/// Value of `FD_ROWS` (one-off traces): what a descriptor names and the
/// reads made through it since it was opened (or discovered).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdRow {
    pub file_id: u64,
    /// When it was opened or discovered: tells this opening from a later
    /// one of the same number.
    pub opened_ns: u64,
    /// 1 if opened by path while traced, 0 if discovered.
    pub opens: u64,
    /// Set by the close that sends the row: a read ending after it may
    /// have been left out of the record, and is counted as dropped.
    pub closing: u64,
    pub slots: [FdSlot; FD_SLOTS],
}

/// A descriptor's row, sent when it was closed or its number reused.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdClosedEvent {
    pub header: EventHeader,
    pub fd: i32,
    pub _pad: u32,
    pub row: FdRow,
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
    /// 1: the path is longer than `path` holds (only its first
    /// `PATH_CAPTURE_LEN - 1` bytes are there).
    pub truncated: u32,
    /// The inode's `i_mode` (0 if unknown): its `S_IFMT` bits say a FIFO
    /// or a socket file from a regular file.
    pub mode: u32,
    pub _pad: u32,
    /// An inet socket's ends as the kernel had them (`family` 0: not one,
    /// or not read).
    pub socket: SocketEnds,
}

/// A TCP or UDP socket's addresses, read from its `sock_common`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketEnds {
    /// `AF_INET` (2) or `AF_INET6` (10); 0: not read.
    pub family: u16,
    /// `IPPROTO_TCP` (6), `IPPROTO_UDP` (17).
    pub protocol: u16,
    /// `SOCK_STREAM`, `SOCK_DGRAM`.
    pub sock_type: u16,
    /// Host order.
    pub local_port: u16,
    /// Network order, as the kernel keeps it (0: not connected).
    pub peer_port: u16,
    pub _pad: [u16; 3],
    /// IPv4 in the first 4 bytes, network order.
    pub local: [u8; 16],
    pub peer: [u8; 16],
}

/// `--perfetto` only: one read syscall of a traced thread, at its return
/// (the header's time).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoEvent {
    pub header: EventHeader,
    pub start_ns: u64,
    /// [`IoKey::file_id`].
    pub file_id: u64,
    pub request: u64,
    /// Bytes read, or `-errno`.
    pub ret: i64,
    pub fd: i32,
    pub syscall: u32,
    /// Context switches inside it.
    pub voluntary: u32,
    pub involuntary: u32,
}

const _: () = assert!(core::mem::size_of::<IoEvent>() == 24 + 32 + 16);
const _: () = assert!(core::mem::size_of::<FileEvent>() == 24 + 16 + PATH_CAPTURE_LEN + 32 + 48);
const _: () = assert!(core::mem::size_of::<IoKey>() == 32);
const _: () = assert!(core::mem::size_of::<IoStats>() == 48);
const _: () = assert!(core::mem::size_of::<FdRow>() == 32 + 56 * FD_SLOTS);
const _: () = assert!(core::mem::size_of::<FdClosedEvent>() == 24 + 8 + 32 + 56 * FD_SLOTS);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for IoKey {}
    unsafe impl aya::Pod for IoStats {}
    unsafe impl aya::Pod for FdKey {}
    unsafe impl aya::Pod for FileKey {}
    unsafe impl aya::Pod for FdRow {}
    unsafe impl aya::Pod for InflightIo {}
}
