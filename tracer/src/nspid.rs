//! PID namespaces: a process in a container has one pid per namespace it
//! is visible in. `/proc/PID/status` lists them on its `NSpid` line, from the
//! namespace of that procfs mount (the tracer's: the host pid) down to the
//! process's own (the pid it sees from `getpid()`, 1 for a container's init).
//!
//! The report gives both; the Python sampler needs the mapping because
//! CPython records its threads by the ids they see themselves
//! (`native_thread_id`, glibc's `struct pthread` tid), while the kernel and
//! the BPF maps use host ids.

use std::{collections::HashMap, fs};

/// The pids of the `NSpid:` line of a `/proc/PID/status` text, outermost
/// (the reader's namespace) first. `None` if there is no such line (kernels
/// before 4.1) or it does not parse.
pub fn parse_nspid(status: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    (!pids.is_empty()).then_some(pids)
}

/// The pid `pid` (a host pid or tid) has in its own, innermost, namespace:
/// `pid` itself when it shares the tracer's namespace. `None` when the task
/// is gone (a zombie still has its status file).
pub fn ns_pid(pid: u32) -> Option<u32> {
    innermost(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The last `NSpid` entry of a status text.
pub fn innermost(status: &str) -> Option<u32> {
    parse_nspid(status)?.last().copied()
}

/// Whether `pid` lives in a pid namespace below the tracer's (its `NSpid`
/// line has more than one entry).
pub fn in_child_namespace(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| parse_nspid(&s))
        .is_some_and(|pids| pids.len() > 1)
}

/// The threads of process `pid`: id in its own namespace -> host id.
pub fn thread_ids(pid: u32) -> HashMap<u32, u32> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let host: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = fs::read_to_string(e.path().join("status")).ok()?;
            Some((innermost(&status)?, host))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_nspid_line() {
        let host = "Name:\tpython3.11\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t1\nNSpid:\t4242\nNSsid:\t1\n";
        assert_eq!(parse_nspid(host), Some(vec![4242]));
        assert_eq!(innermost(host), Some(4242));
        let nested = "Pid:\t24881\nNStgid:\t24881\t1\nNSpid:\t24881\t1\nNSpgid:\t24879\t0\n";
        assert_eq!(parse_nspid(nested), Some(vec![24881, 1]));
        assert_eq!(innermost(nested), Some(1));
        let two_levels = "NSpid:\t900\t17\t3\n";
        assert_eq!(parse_nspid(two_levels), Some(vec![900, 17, 3]));
        assert_eq!(innermost(two_levels), Some(3));
        // Kernels before 4.1 have no NSpid line; garbage does not parse.
        assert_eq!(parse_nspid("Name:\tx\nPid:\t5\n"), None);
        assert_eq!(parse_nspid("NSpid:\t12\tx\n"), None);
        assert_eq!(parse_nspid("NSpid:\n"), None);
        // NSpgid / NSsid / NStgid are other lines.
        assert_eq!(parse_nspid("NStgid:\t7\t1\n"), None);
    }

    #[test]
    fn this_process_is_in_the_tracers_namespace() {
        let me = std::process::id();
        assert_eq!(ns_pid(me), Some(me));
        assert!(!in_child_namespace(me));
        let threads = thread_ids(me);
        assert_eq!(threads.get(&me), Some(&me));
        assert_eq!(ns_pid(u32::MAX - 1), None);
    }
}
