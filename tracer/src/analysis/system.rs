//! What the aggregators ask of the running system: a process's name,
//! parent, namespace pid and container, a thread's state. Analysis reads
//! no `/proc` itself: the layer that owns I/O answers (`crate::session::host_system`,
//! from `/proc` and the container runtimes' state, with the one container
//! cache every aggregator shares); tests answer with made-up processes.

use crate::report::Container;

/// A thread's state now, as the kernel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadState {
    /// "running", "sleeping", "disk sleep"...
    pub state: &'static str,
    /// The system call it waits in, when it is not running.
    pub syscall: Option<String>,
}

pub trait System: Send {
    /// A process's parent; `None` when it is gone.
    fn parent(&self, pid: u32) -> Option<u32>;
    /// The pid `pid` has in its own, innermost, pid namespace; `None` when
    /// it is gone.
    fn ns_pid(&self, pid: u32) -> Option<u32>;
    /// A process's task name; `None` when it is gone.
    fn comm(&self, pid: u32) -> Option<String>;
    /// One thread's task name; `None` when it is gone.
    fn thread_comm(&self, pid: u32, tid: u32) -> Option<String>;
    fn is_zombie(&self, pid: u32) -> bool;
    /// `None` when the thread is gone.
    fn thread_state(&self, pid: u32, tid: u32) -> Option<ThreadState>;
    /// A live process's peak resident memory (`VmHWM`, bytes); `None`
    /// when it is gone.
    fn peak_rss(&self, pid: u32) -> Option<u64>;
    /// This host's name.
    fn host_name(&self) -> Option<String>;
    /// The kernel's page size (its memory counters count pages).
    fn page_size(&self) -> u64;
    /// The container process `pid` is in now: `None` when the process is
    /// gone, `Some(None)` on the host.
    fn container(&mut self, pid: u32) -> Option<Option<Container>>;
}

pub use made_up::MadeUp;

pub mod made_up {
    //! A system of made-up processes, for the aggregators' tests.
    use std::collections::HashMap;

    use super::{System, ThreadState};
    use crate::report::Container;

    #[derive(Default, Clone)]
    pub struct Process {
        pub parent: u32,
        pub ns_pid: Option<u32>,
        pub comm: String,
        pub zombie: bool,
        pub container: Option<Container>,
        pub peak_rss: Option<u64>,
    }

    /// Only the processes it was given exist.
    #[derive(Default)]
    pub struct MadeUp {
        pub processes: HashMap<u32, Process>,
    }

    impl System for MadeUp {
        fn parent(&self, pid: u32) -> Option<u32> {
            Some(self.processes.get(&pid)?.parent)
        }
        fn ns_pid(&self, pid: u32) -> Option<u32> {
            self.processes.get(&pid)?.ns_pid
        }
        fn comm(&self, pid: u32) -> Option<String> {
            Some(self.processes.get(&pid)?.comm.clone())
        }
        fn thread_comm(&self, pid: u32, _tid: u32) -> Option<String> {
            self.comm(pid)
        }
        fn is_zombie(&self, pid: u32) -> bool {
            self.processes.get(&pid).is_some_and(|p| p.zombie)
        }
        fn thread_state(&self, pid: u32, _tid: u32) -> Option<ThreadState> {
            self.processes.get(&pid).map(|_| ThreadState {
                state: "sleeping",
                syscall: None,
            })
        }
        fn peak_rss(&self, pid: u32) -> Option<u64> {
            self.processes.get(&pid).and_then(|p| p.peak_rss)
        }

        fn host_name(&self) -> Option<String> {
            Some("made-up".into())
        }
        fn page_size(&self) -> u64 {
            4096
        }
        fn container(&mut self, pid: u32) -> Option<Option<Container>> {
            Some(self.processes.get(&pid)?.container.clone())
        }
    }
}
