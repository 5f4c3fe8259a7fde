//! The interpreter's threads: `_PyRuntime.interpreters.head -> threads.head
//! -> next`, each `PyThreadState` with its kernel thread id. BPF gets the
//! resulting tid -> tstate map and reads each thread's current frame itself.

use super::{layout::Offsets, process_memory::Memory};

/// Bounds on the walks: a corrupt or racing list cannot loop forever.
const MAX_INTERPRETERS: usize = 64;
pub const MAX_THREADS: usize = 4096;
/// How many thread records are searched for the one that holds the pid.
const MAX_RECORDS_SEARCHED: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadState {
    pub tstate: u64,
    /// `pthread_t` (the address of glibc's `struct pthread`).
    pub pthread: u64,
    /// Kernel tid, when known.
    pub tid: Option<u32>,
    /// `tid` is the state's own `native_thread_id`, one of this process's
    /// threads (not read from libc's record of its `pthread`).
    pub native: bool,
}

/// Every thread state of every interpreter. Stops quietly at unreadable
/// memory: the list may be changing under us; the next refresh fixes it.
pub fn thread_states(mem: &dyn Memory, o: &Offsets, runtime: u64) -> Vec<ThreadState> {
    let mut out = Vec::new();
    let Ok(mut interp) = mem.u64(runtime.wrapping_add(o.runtime_interpreters_head)) else {
        return out;
    };
    for _ in 0..MAX_INTERPRETERS {
        if interp == 0 {
            break;
        }
        let mut tstate = mem
            .u64(interp.wrapping_add(o.interp_threads_head))
            .unwrap_or(0);
        for _ in 0..MAX_THREADS {
            if tstate == 0 || out.len() >= MAX_THREADS {
                break;
            }
            let pthread = mem
                .u64(tstate.wrapping_add(o.tstate_thread_id))
                .unwrap_or(0);
            let tid = o
                .tstate_native_thread_id
                .and_then(|off| mem.u32(tstate.wrapping_add(off)).ok())
                .filter(|&t| t != 0);
            out.push(ThreadState {
                tstate,
                pthread,
                tid,
                native: false,
            });
            tstate = mem.u64(tstate.wrapping_add(o.tstate_next)).unwrap_or(0);
        }
        interp = mem.u64(interp.wrapping_add(o.interp_next)).unwrap_or(0);
    }
    out
}

/// Whether the runtime has an interpreter: a program that loaded libpython
/// but has not called `Py_Initialize` yet (Apache's parent with mod_wsgi)
/// has none.
pub fn interpreter_started(mem: &dyn Memory, o: &Offsets, runtime: u64) -> bool {
    mem.u64(runtime.wrapping_add(o.runtime_interpreters_head))
        .is_ok_and(|head| head != 0)
}

/// What the last read of a process's thread list found, to say why a
/// process with an interpreter has no thread sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub interpreter_started: bool,
    /// Thread states in the interpreters' lists.
    pub states: usize,
    /// ...of which belong to one of the process's threads (published).
    pub own: usize,
}

impl Census {
    /// Why no thread of the process is sampled, when this says.
    pub fn why_no_thread(&self) -> Option<String> {
        if !self.interpreter_started {
            return Some(
                "libpython is loaded but no interpreter is started (Py_Initialize not called \
                 yet: mod_wsgi, for one, starts Python in its daemon processes)"
                    .into(),
            );
        }
        if self.states == 0 {
            return Some("no thread is attached to the interpreter (no thread state)".into());
        }
        (self.own == 0).then(|| {
            format!(
                "its {} thread state{} belong to threads of another process (a fork without \
                 CPython's after-fork clean-up, whose libc thread records could not be read)",
                self.states,
                if self.states == 1 { "" } else { "s" }
            )
        })
    }
}

/// The addresses of thread `tstate`'s frames, innermost first, at most `max`.
pub fn frame_addresses(mem: &dyn Memory, o: &Offsets, tstate: u64, max: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut frame = mem.u64(tstate.wrapping_add(o.tstate_frame)).unwrap_or(0);
    if let Some(off) = o.cframe_current_frame {
        frame = if frame == 0 {
            0
        } else {
            mem.u64(frame.wrapping_add(off)).unwrap_or(0)
        };
    }
    while frame != 0 && out.len() < max {
        out.push(frame);
        frame = mem.u64(frame.wrapping_add(o.frame_back)).unwrap_or(0);
    }
    out
}

/// The walk the BPF sampler does, in userspace: thread `tstate`'s frames,
/// innermost first, at most `max` (for checking a layout on live memory,
/// and for the snapshot tests).
pub fn walk_frames(
    mem: &dyn Memory,
    o: &Offsets,
    tstate: u64,
    max: usize,
) -> Vec<tracer_common::PyFrameRecord> {
    frame_addresses(mem, o, tstate, max)
        .into_iter()
        .map(|frame| frame_record(mem, o, frame))
        .collect()
}

/// The sampler's record of the frame at `frame` (a thread's, or the one
/// a coroutine holds): its code object, and its instruction position with
/// its owner in the top byte (no fingerprint: the object is read now).
pub fn frame_record(mem: &dyn Memory, o: &Offsets, frame: u64) -> tracer_common::PyFrameRecord {
    let code = mem.u64(frame.wrapping_add(o.frame_code)).unwrap_or(0);
    let mut instr = mem.u64(frame.wrapping_add(o.frame_instr)).unwrap_or(0) & 0x00ff_ffff_ffff_ffff;
    if let Some(off) = o.frame_owner {
        let mut owner = [0u8];
        if mem.read(frame.wrapping_add(off), &mut owner).is_ok() {
            instr |= (owner[0] as u64) << 56;
        }
    }
    tracer_common::PyFrameRecord {
        code,
        instr,
        check: 0,
    }
}

/// One state per thread, where several name it (`candidates`: each
/// thread's id, the state, and whether its id is its own native id and
/// whether it runs a frame). The states made for a thread to come carry
/// their maker's ids (3.8-3.11) until it binds them, and a state a C
/// extension leaked when its thread ended carries that thread's `pthread`,
/// which libc gives the next thread it starts. So a state that names the
/// thread by its own native id wins over one named through its
/// `pthread`, then one running a frame over one that is not; among
/// equals the last (the oldest: the lists are newest first). In the
/// order each thread was first named.
pub fn one_per_thread<T>(
    candidates: impl IntoIterator<Item = (u32, T, (bool, bool))>,
) -> Vec<(u32, T)> {
    let mut chosen: Vec<(u32, T, (bool, bool))> = Vec::new();
    let mut at: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for (tid, state, rank) in candidates {
        match at.get(&tid) {
            Some(&i) if chosen[i].2 > rank => {}
            Some(&i) => chosen[i] = (tid, state, rank),
            None => {
                at.insert(tid, chosen.len());
                chosen.push((tid, state, rank));
            }
        }
    }
    chosen
        .into_iter()
        .map(|(tid, state, _)| (tid, state))
        .collect()
}

/// glibc's `struct pthread` holds the kernel tid at a fixed offset (0x2d0 on
/// x86-64 glibc 2.x). Rather than trust one libc, find it: the main thread's
/// `struct pthread` holds the process id. Returns the offset.
pub fn find_pthread_tid_offset(mem: &dyn Memory, main_pthread: u64, pid: u32) -> Option<u64> {
    let raw = mem.read_vec(main_pthread, 0x800).ok()?;
    let candidates: Vec<u64> = (0..raw.len() / 4)
        .filter(|i| raw[i * 4..i * 4 + 4] == pid.to_le_bytes())
        .map(|i| i as u64 * 4)
        .collect();
    // tid and pid sat next to each other in older glibc; the tid comes first.
    if candidates.contains(&0x2d0) {
        return Some(0x2d0);
    }
    candidates.into_iter().find(|&off| off >= 0x100)
}

/// Gives each state the kernel id of the thread it belongs to in this
/// process, or none (a thread of another process, or gone). `is_own(tid)`
/// says whether `tid` is one of this process's threads (ids as the process
/// sees them, in its pid namespace).
///
/// CPython's `native_thread_id` (3.11+) is written when a thread state is
/// made, and after a fork only `PyOS_AfterFork_Child` rewrites it. A C
/// server that forks once Python has started (uWSGI's workers, any program
/// embedding libpython that forks) does not call it: there every state
/// still names the parent's threads. libc's own record of the thread
/// (`pthread_t` is its address) is kept right by libc: at a fork the
/// forking thread's record gets the child's id. So a native id that is one
/// of this process's threads is kept, and otherwise libc's record is read
/// (the only way on 3.8-3.10, which have no native id).
pub fn resolve_tids(
    mem: &dyn Memory,
    pid: u32,
    is_own: impl Fn(u32) -> bool,
    states: &mut [ThreadState],
    tid_offset: &mut Option<u64>,
) {
    for state in states.iter_mut() {
        state.native = state.tid.is_some_and(&is_own);
    }
    if states.iter().all(|s| s.native) {
        return;
    }
    if tid_offset.is_none() {
        // The main thread's record holds the process id. The main thread's
        // state is the oldest one, last in the list; in a forked child the
        // forking thread's (wherever it is in the list) holds the child's.
        *tid_offset = states
            .iter()
            .rev()
            .take(MAX_RECORDS_SEARCHED)
            .find_map(|s| find_pthread_tid_offset(mem, s.pthread, pid));
    }
    let offset = *tid_offset;
    for state in states.iter_mut().filter(|s| !s.native) {
        state.tid = offset
            .filter(|_| state.pthread != 0)
            .and_then(|off| mem.u32(state.pthread.wrapping_add(off)).ok())
            .filter(|&tid| tid != 0 && is_own(tid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process_memory::Snapshot;

    /// Memory of a few libc thread records: `struct pthread` at `base`,
    /// its kernel tid at 0x2d0 (glibc's place).
    fn records(records: Vec<(u64, u32)>) -> Snapshot {
        let mut mem = Snapshot::default();
        for (base, tid) in records {
            let mut record = vec![0u8; 0x800];
            record[0x2d0..0x2d4].copy_from_slice(&tid.to_le_bytes());
            mem.insert(base, &record);
        }
        mem
    }

    fn state(pthread: u64, native: Option<u32>) -> ThreadState {
        ThreadState {
            tstate: pthread + 0x10,
            pthread,
            tid: native,
            native: false,
        }
    }

    /// Thread 10's own state, newer than a leaked one of a dead thread
    /// whose `pthread` it reuses; thread 11 with a state made for a
    /// thread to come (its ids, newest) before its own.
    #[test]
    fn a_threads_own_state_wins_over_one_that_only_carries_its_ids() {
        let candidates = [
            (11, "made", (true, false)),
            (10, "own", (true, true)),
            (11, "own 11", (true, true)),
            (10, "leaked", (false, false)),
            (12, "a", (false, false)),
            (12, "b", (false, false)),
        ];
        assert_eq!(
            one_per_thread(candidates),
            [(11, "own 11"), (10, "own"), (12, "b")]
        );
        // Not running a frame now: its native id still says it.
        let idle = [(10, "own", (true, false)), (10, "leaked", (false, false))];
        assert_eq!(one_per_thread(idle), [(10, "own")]);
        // 3.8-3.10 (no native id): the one running a frame.
        let old = [(10, "leaked", (false, false)), (10, "own", (false, true))];
        assert_eq!(one_per_thread(old), [(10, "own")]);
    }

    #[test]
    fn native_ids_of_own_threads_are_kept() {
        let mem = records(vec![]);
        let mut states = [state(0x1000, Some(11)), state(0x9000, Some(10))];
        let mut offset = None;
        resolve_tids(&mem, 10, |t| t == 10 || t == 11, &mut states, &mut offset);
        assert_eq!(states.map(|s| s.tid), [Some(11), Some(10)]);
        assert_eq!(states.map(|s| s.native), [true, true]);
        assert_eq!(offset, None, "no record read");
    }

    /// uWSGI's worker: forked once Python started, no PyOS_AfterFork_Child.
    /// Every native id is the master's; the forking thread's libc record
    /// holds the worker's id, the master's other thread's record still the
    /// master's thread (not the worker's to publish).
    #[test]
    fn a_fork_without_the_after_fork_hook_is_resolved_through_libc() {
        let (master, worker) = (100, 200);
        let mem = records(vec![(0x1000, 101), (0x9000, worker)]);
        let mut states = [state(0x1000, Some(101)), state(0x9000, Some(master))];
        let mut offset = None;
        resolve_tids(&mem, worker, |t| t == worker, &mut states, &mut offset);
        assert_eq!(offset, Some(0x2d0));
        assert_eq!(states.map(|s| s.tid), [None, Some(worker)]);
        assert_eq!(states.map(|s| s.native), [false, false]);
    }

    /// The fork was made by a thread other than the main one: its record,
    /// not the last state's, holds the child's pid.
    #[test]
    fn a_fork_from_another_thread_finds_the_record_of_the_forking_one() {
        let mem = records(vec![(0x1000, 300), (0x9000, 100)]);
        let mut states = [state(0x1000, Some(101)), state(0x9000, Some(100))];
        let mut offset = None;
        resolve_tids(&mem, 300, |t| t == 300, &mut states, &mut offset);
        assert_eq!(states.map(|s| s.tid), [Some(300), None]);
    }

    #[test]
    fn a_census_says_why_no_thread_is_sampled() {
        let census = |interpreter_started, states, own| Census {
            interpreter_started,
            states,
            own,
        };
        assert!(
            census(false, 0, 0)
                .why_no_thread()
                .unwrap()
                .contains("no interpreter is started")
        );
        assert!(
            census(true, 0, 0)
                .why_no_thread()
                .unwrap()
                .contains("no thread is attached")
        );
        assert!(
            census(true, 2, 0)
                .why_no_thread()
                .unwrap()
                .starts_with("its 2 thread states belong to threads of another process")
        );
        assert_eq!(census(true, 2, 1).why_no_thread(), None);
    }

    /// 3.8-3.10: no native id at all.
    #[test]
    fn without_native_ids_every_record_is_read() {
        let mem = records(vec![(0x1000, 11), (0x9000, 10)]);
        let mut states = [state(0x1000, None), state(0x9000, None)];
        let mut offset = None;
        resolve_tids(&mem, 10, |t| t == 10 || t == 11, &mut states, &mut offset);
        assert_eq!(states.map(|s| s.tid), [Some(11), Some(10)]);
    }
}
