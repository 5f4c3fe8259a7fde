//! Runs of the tracer's programs that the kernel skipped. Since 5.18 a
//! raw tracepoint's program does not run again on a CPU where it is already
//! running (an interrupt, or a preempted run on kernels whose syscall
//! tracepoints may fault and be preempted): that event is not seen, and the
//! kernel counts it in the program's `recursion_misses` (5.12). Read here
//! so that such a loss is said in the report, never silent.

use std::os::fd::{AsFd, AsRawFd};

const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// Where `recursion_misses` sits in `struct bpf_prog_info` (uapi), after
/// `run_time_ns` and `run_cnt`.
const RECURSION_MISSES_AT: usize = 208;

/// `union bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD` (`info`).
#[repr(C)]
struct InfoByFd {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The program's `recursion_misses`, `None` where the kernel has no such
/// field (before 5.12) or cannot say.
pub fn recursion_misses(program: impl AsFd) -> Option<u64> {
    let mut info = [0u8; RECURSION_MISSES_AT + 8];
    let mut attr = InfoByFd {
        bpf_fd: program.as_fd().as_raw_fd() as u32,
        info_len: info.len() as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: `attr` and the buffer it points to outlive the call; the
    // kernel writes at most `info_len` bytes and lowers `info_len` to what
    // it knows.
    let done = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut attr as *mut InfoByFd,
            std::mem::size_of::<InfoByFd>(),
        )
    };
    if done != 0 || (attr.info_len as usize) < info.len() {
        return None;
    }
    let bytes: [u8; 8] = info[RECURSION_MISSES_AT..].try_into().ok()?;
    Some(u64::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_that_is_no_program_says_nothing() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(recursion_misses(&file), None);
    }
}
