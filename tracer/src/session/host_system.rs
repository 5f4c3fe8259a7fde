//! The running system as the aggregators see it ([`analysis::system::System`]):
//! processes and threads from `/proc`, containers from their cgroups and
//! their runtimes' state, with one container cache for every aggregator.

use crate::{
    analysis::system::{System, ThreadState},
    host::containers::Containers,
    host::procfs,
    report::Container,
};

/// This host, read as it is now.
#[derive(Default)]
pub struct HostSystem {
    containers: Containers,
}

impl System for HostSystem {
    fn parent(&self, pid: u32) -> Option<u32> {
        procfs::stat(pid).map(|s| s.ppid)
    }

    fn ns_pid(&self, pid: u32) -> Option<u32> {
        procfs::ns_pid(pid)
    }

    fn comm(&self, pid: u32) -> Option<String> {
        procfs::comm(pid)
    }

    fn thread_comm(&self, pid: u32, tid: u32) -> Option<String> {
        procfs::thread_comm(pid, tid)
    }

    fn is_zombie(&self, pid: u32) -> bool {
        procfs::is_zombie(pid)
    }

    fn thread_state(&self, pid: u32, tid: u32) -> Option<ThreadState> {
        let state = procfs::thread_state(pid, tid)?;
        // A running thread is in no system call; a blocked one says which.
        let syscall = (state != 'R')
            .then(|| procfs::thread_syscall(pid, tid).map(procfs::syscall_name))
            .flatten();
        Some(ThreadState {
            state: procfs::state_name(state),
            syscall,
        })
    }

    fn peak_rss(&self, pid: u32) -> Option<u64> {
        procfs::peak_rss(pid)
    }

    fn host_name(&self) -> Option<String> {
        procfs::host_name()
    }

    fn page_size(&self) -> u64 {
        crate::host::page_size()
    }

    fn container(&mut self, pid: u32) -> Option<Option<Container>> {
        self.containers.read(pid)
    }
}
