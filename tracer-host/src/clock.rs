//! The system's clocks, as the kernel side stamps its records.

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CLOCK_BOOTTIME minus CLOCK_MONOTONIC now (the time suspended): what
/// turns a kernel timestamp into Perfetto's default clock.
pub fn boottime_offset_ns() -> u64 {
    let monotonic = clock_ns(libc::CLOCK_MONOTONIC);
    clock_ns(libc::CLOCK_BOOTTIME).saturating_sub(monotonic)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
