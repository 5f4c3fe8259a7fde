//! This architecture's numbers of the syscalls the programs look at (from
//! libc, i.e. its ABI), written into their configuration.

use tracer_common::SyscallNumbers;

/// This architecture's numbers of the syscalls the programs look at.
pub(super) fn syscall_numbers() -> SyscallNumbers {
    let nr = |n: libc::c_long| n as u32;
    SyscallNumbers {
        openat: nr(libc::SYS_openat),
        #[cfg(target_arch = "x86_64")]
        open: nr(libc::SYS_open),
        #[cfg(not(target_arch = "x86_64"))]
        open: tracer_common::NO_SYSCALL,
        close: nr(libc::SYS_close),
        rt_sigaction: nr(libc::SYS_rt_sigaction),
        rt_sigprocmask: nr(libc::SYS_rt_sigprocmask),
        wait4: nr(libc::SYS_wait4),
        waitid: nr(libc::SYS_waitid),
        clone: nr(libc::SYS_clone),
        clone3: nr(libc::SYS_clone3),
        kill: nr(libc::SYS_kill),
        tkill: nr(libc::SYS_tkill),
        tgkill: nr(libc::SYS_tgkill),
        rt_sigqueueinfo: nr(libc::SYS_rt_sigqueueinfo),
        rt_tgsigqueueinfo: nr(libc::SYS_rt_tgsigqueueinfo),
        pidfd_send_signal: nr(libc::SYS_pidfd_send_signal),
        #[cfg(target_arch = "x86_64")]
        epoll_wait: nr(libc::SYS_epoll_wait),
        #[cfg(not(target_arch = "x86_64"))]
        epoll_wait: tracer_common::NO_SYSCALL,
        epoll_pwait: nr(libc::SYS_epoll_pwait),
        epoll_pwait2: nr(libc::SYS_epoll_pwait2),
        #[cfg(target_arch = "x86_64")]
        select: nr(libc::SYS_select),
        #[cfg(not(target_arch = "x86_64"))]
        select: tracer_common::NO_SYSCALL,
        pselect6: nr(libc::SYS_pselect6),
        #[cfg(target_arch = "x86_64")]
        poll: nr(libc::SYS_poll),
        #[cfg(not(target_arch = "x86_64"))]
        poll: tracer_common::NO_SYSCALL,
        ppoll: nr(libc::SYS_ppoll),
        futex: nr(libc::SYS_futex),
        _pad: 0,
    }
}

/// This architecture's reads, writes and syncs, by syscall number
/// (`Config::io_syscalls`): `preadv2` and `pwritev2` count as `preadv`
/// and `pwritev` (the same first three arguments, plus flags: what
/// CPython's `os.preadv` / `os.pwritev` call).
pub(super) fn io_syscalls() -> tracer_common::IoSyscallTable {
    use tracer_common::IoSyscall as S;
    let mut table = [0u8; tracer_common::IO_SYSCALL_NUMBERS];
    for (nr, syscall) in [
        (libc::SYS_read, S::Read),
        (libc::SYS_pread64, S::Pread64),
        (libc::SYS_readv, S::Readv),
        (libc::SYS_preadv, S::Preadv),
        (libc::SYS_preadv2, S::Preadv),
        (libc::SYS_recvfrom, S::Recvfrom),
        (libc::SYS_recvmsg, S::Recvmsg),
        (libc::SYS_recvmmsg, S::Recvmmsg),
        (libc::SYS_write, S::Write),
        (libc::SYS_pwrite64, S::Pwrite64),
        (libc::SYS_writev, S::Writev),
        (libc::SYS_pwritev, S::Pwritev),
        (libc::SYS_pwritev2, S::Pwritev),
        (libc::SYS_sendto, S::Sendto),
        (libc::SYS_sendmsg, S::Sendmsg),
        (libc::SYS_sendmmsg, S::Sendmmsg),
        (libc::SYS_fsync, S::Fsync),
        (libc::SYS_fdatasync, S::Fdatasync),
        (libc::SYS_sync_file_range, S::SyncFileRange),
    ] {
        table[nr as usize] = tracer_common::io_syscall_entry(syscall);
    }
    tracer_common::IoSyscallTable(table)
}

#[cfg(test)]
mod tests {
    use tracer_common::{IoShape, IoSyscall};

    /// Every read, write and sync is in the table once (twice for the `2`
    /// variants), with its shape; nothing else is.
    #[test]
    fn the_io_table_names_each_io_syscall_with_its_shape() {
        let table = super::io_syscalls().0;
        let entry = |nr: libc::c_long| table[nr as usize];
        for syscall in IoSyscall::ALL {
            let entries = table
                .iter()
                .filter(|&&e| e != 0 && u32::from(e & 31) == syscall as u32 + 1)
                .count();
            let twice = matches!(syscall, IoSyscall::Preadv | IoSyscall::Pwritev);
            assert_eq!(entries, if twice { 2 } else { 1 }, "{syscall:?}");
        }
        assert_eq!(entry(libc::SYS_write) & 31, IoSyscall::Write as u8 + 1);
        assert_eq!(entry(libc::SYS_pwritev2), entry(libc::SYS_pwritev));
        assert_eq!(entry(libc::SYS_sendmmsg) >> 5, IoShape::Messages as u8);
        assert_eq!(entry(libc::SYS_fsync) >> 5, IoShape::Sync as u8);
        assert_eq!(entry(libc::SYS_getppid), 0);
        assert_eq!(table.iter().filter(|&&e| e != 0).count(), 19);
    }
}
