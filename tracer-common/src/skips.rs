//! The second copies of the hooks the kernel may skip (see
//! `tracer-ebpf/src/skips.rs`): the keys of their marks, and what the
//! tracer's check of their order does.

/// The hooks with a second copy: a mark's key is `hook << 32 | tid`.
pub const SYS_ENTER: u64 = 1;
pub const SYS_EXIT: u64 = 2;
pub const FORK: u64 = 3;
pub const EXIT: u64 = 4;

/// The order check closes this descriptor (past any process's limit:
/// `EBADF`): the syscall entry hooks take it for a traced thread's.
pub const ORDER_CHECK_ENTER_FD: u32 = 0x7ace_0c1d;
/// And this one: the syscall exit hooks take it for a traced thread's.
pub const ORDER_CHECK_EXIT_FD: u32 = 0x7ace_0c1e;

/// The order check's threads are named so: the fork and exit hooks take
/// their fork and exit for a traced thread's.
pub const ORDER_CHECK_COMM: [u8; 16] = *b"tracer-hooks\0\0\0\0";

/// A mark's key.
pub const fn mark(hook: u64, tid: u32) -> u64 {
    (hook << 32) | tid as u64
}
