//! The tracer's own map operations, kept from being preempted by the
//! traced tasks where the kernel preempts the syscall programs' runs.
//!
//! A map syscall (`bpf_map_update_value`, `bpf_map_copy_value`, a delete)
//! holds its CPU's BPF lock (`bpf_prog_active`) with only migration
//! disabled. On a kernel that preempts kernel code (7.x's lazy
//! preemption), a task that preempts the tracer there makes the kernel skip
//! every perf-path program on that CPU until the tracer runs again: the
//! second copies too, so an event whose first copy was skipped as well is
//! lost. Run at `SCHED_FIFO` for the length of the operation, the tracer is
//! preempted there by no ordinary (CFS) task, only by interrupts, which
//! make no syscall. Where the scheduler refuses (a cgroup given no
//! real-time runtime), the operations run as before and what is lost is
//! counted, as it always is.

use std::{cell::Cell, sync::atomic::AtomicBool};

/// `SCHED_FIFO`'s lowest priority: above every ordinary task, below every
/// real-time one the host has.
const PRIORITY: libc::c_int = 1;

thread_local! {
    /// Guards open on this thread, and the policy to go back to (`None`:
    /// not raised, the outermost guard's `sched_setscheduler` failed).
    static HELD: Cell<(u32, Option<libc::c_int>)> = const { Cell::new((0, None)) };
}

/// Said once per run: the scheduler refused.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Held for the length of one or more map operations (nested guards raise
/// once); back to the thread's own policy when the outermost is dropped.
pub(super) struct Unpreempted {
    active: bool,
}

impl Unpreempted {
    /// Raises the calling thread to `SCHED_FIFO` if `wanted` (the kernel
    /// preempts the syscall programs' runs) and it is not raised already.
    pub(super) fn hold(wanted: bool) -> Self {
        if !wanted || REFUSED.load(std::sync::atomic::Ordering::Relaxed) {
            return Self { active: false };
        }
        HELD.with(|held| {
            let (depth, policy) = held.get();
            let policy = if depth == 0 { raise() } else { policy };
            held.set((depth + 1, policy));
        });
        Self { active: true }
    }
}

impl Drop for Unpreempted {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        HELD.with(|held| {
            let (depth, policy) = held.get();
            if depth == 1
                && let Some(policy) = policy
            {
                lower(policy);
            }
            held.set((
                depth.saturating_sub(1),
                if depth == 1 { None } else { policy },
            ));
        });
    }
}

/// The thread's policy before, once it runs at `SCHED_FIFO` (children
/// forked meanwhile start as ordinary tasks: `SCHED_RESET_ON_FORK`).
fn raise() -> Option<libc::c_int> {
    // SAFETY: plain syscalls on the calling thread (0), with a valid param.
    let before = unsafe { libc::sched_getscheduler(0) };
    if before < 0 || before & !libc::SCHED_RESET_ON_FORK != libc::SCHED_OTHER {
        // Already real-time (or batch / idle, set by whoever ran us): as is.
        return None;
    }
    let param = libc::sched_param {
        sched_priority: PRIORITY,
    };
    let policy = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        let err = std::io::Error::last_os_error();
        if !REFUSED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            log::warn!(
                "the tracer's map operations may be preempted by traced tasks (sched_setscheduler \
                 SCHED_FIFO: {err}); events both copies skip meanwhile are counted as lost"
            );
        }
        return None;
    }
    Some(before)
}

fn lower(policy: libc::c_int) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as in `raise`. Back to SCHED_OTHER keeps the nice value.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        log::warn!(
            "could not lower the tracer's thread back from SCHED_FIFO: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> libc::c_int {
        (unsafe { libc::sched_getscheduler(0) }) & !libc::SCHED_RESET_ON_FORK
    }

    #[test]
    fn not_wanted_changes_nothing() {
        let before = policy();
        let _guard = Unpreempted::hold(false);
        assert_eq!(policy(), before);
    }

    /// As root (the end-to-end tests' user): raised once for nested guards,
    /// back to the thread's policy after the outermost.
    #[test]
    fn nested_guards_raise_once_and_restore() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root (CAP_SYS_NICE)");
            return;
        }
        std::thread::spawn(|| {
            assert_eq!(policy(), libc::SCHED_OTHER);
            {
                let _outer = Unpreempted::hold(true);
                assert_eq!(policy(), libc::SCHED_FIFO);
                {
                    let _inner = Unpreempted::hold(true);
                    assert_eq!(policy(), libc::SCHED_FIFO);
                }
                assert_eq!(policy(), libc::SCHED_FIFO, "the inner guard lowered it");
            }
            assert_eq!(policy(), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
