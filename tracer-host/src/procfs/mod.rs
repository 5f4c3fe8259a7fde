//! Every read of `/proc`, in one place: what a process is (stat, comm,
//! cmdline, status), its threads and children, its descriptors, mappings
//! and root, and the paths through which the tracer looks at its files.
//! Parsers are pure functions (`parse_*`) with unit tests; the readers
//! return `None` / empty when the process is gone, which is normal: a
//! traced process may exit at any moment.
//!
//! PID namespaces: a process in a container has one pid per namespace it
//! is visible in. `/proc/PID/status` lists them on its `NSpid` line, from
//! the namespace of that procfs mount (the tracer's: the host pid) down to
//! the process's own (the pid it sees from `getpid()`, 1 for a container's
//! init). CPython records its threads by the ids they see themselves, while
//! the kernel and the BPF maps use host ids.

pub mod maps;
pub mod net;

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

/// What `/proc/PID/stat` says of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    /// `R`, `S`, `D`, `Z`...
    pub state: char,
    pub ppid: u32,
    /// `PF_*` flags of the task.
    pub flags: u32,
    /// Start time, in clock ticks since boot.
    pub start_ticks: u64,
    /// The wait status (`exit_code`, field 52): there on kernels >= 3.5
    /// when we may read it.
    pub exit_status: Option<u32>,
}

/// Parses `/proc/PID/stat`. The comm may hold spaces and parentheses, so
/// the fields are split after the last `)`.
pub fn parse_stat(stat: &str) -> Option<Stat> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the comm: state(3) ppid(4) ... starttime(22), numbered from 1.
    Some(Stat {
        comm,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        flags: fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0),
        start_ticks: fields.get(19).and_then(|f| f.parse().ok()).unwrap_or(0),
        exit_status: fields.get(49).and_then(|f| f.parse().ok()),
    })
}

pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether a process (or thread) with this id exists, zombies included.
pub fn exists(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// `PF_KTHREAD`: the task is a kernel thread.
const PF_KTHREAD: u32 = 0x0020_0000;

/// Whether `pid` is a kernel thread (kthreadd, kworker...): no user memory,
/// no syscalls of its own to trace.
pub fn is_kernel_thread(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.is_kernel_thread())
}

impl Stat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Whether `pid` is a zombie now.
pub fn is_zombie(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state == 'Z')
}

/// The task name (`comm`) of a process.
pub fn comm(pid: u32) -> Option<String> {
    read_comm(&format!("/proc/{pid}/comm"))
}

/// This host's name (its UTS namespace's: a Kubernetes pod with
/// `hostNetwork` has the node's).
pub fn host_name() -> Option<String> {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The kernel's command line (`preempt=` chooses how it preempts).
pub fn kernel_cmdline() -> Option<String> {
    fs::read_to_string("/proc/cmdline").ok()
}

/// Whether this process's thread `tid` is still there (the kernel has not
/// released it).
pub fn own_thread_exists(tid: u32) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// Where one of the tracer's own threads is, as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct OwnThread {
    /// `/proc` state letter.
    pub state: char,
    /// The kernel function it sleeps in (`0`: none, it runs or is runnable).
    pub wchan: String,
    /// Nanoseconds on a CPU and waiting for one, since it started.
    pub on_cpu_ns: u64,
    pub runnable_ns: u64,
    /// Its kernel stack, innermost first (empty where the kernel hides it).
    pub stack: Vec<String>,
}

/// This process's thread `tid` now, `None` when it is gone.
pub fn own_thread(tid: u32) -> Option<OwnThread> {
    let dir = format!("/proc/self/task/{tid}");
    let state = parse_stat(&fs::read_to_string(format!("{dir}/stat")).ok()?)?.state;
    let wchan = fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
    let schedstat = fs::read_to_string(format!("{dir}/schedstat")).unwrap_or_default();
    let mut figures = schedstat.split_whitespace().map(|n| n.parse().unwrap_or(0));
    let stack = fs::read_to_string(format!("{dir}/stack")).unwrap_or_default();
    Some(OwnThread {
        state,
        wchan,
        on_cpu_ns: figures.next().unwrap_or(0),
        runnable_ns: figures.next().unwrap_or(0),
        // "[<0>] do_epoll_wait+0x4a0/0x5e0": the function's name.
        stack: stack
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .map(|frame| frame.split('+').next().unwrap_or(frame).to_owned())
            .collect(),
    })
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> Option<String> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(release.trim().to_owned())
}

/// The running kernel's build configuration, where it publishes it
/// (`CONFIG_IKCONFIG_PROC`), gzipped.
pub fn kernel_config_gz() -> Option<Vec<u8>> {
    fs::read("/proc/config.gz").ok()
}

/// The task name of one thread.
pub fn thread_comm(pid: u32, tid: u32) -> Option<String> {
    read_comm(&format!("/proc/{pid}/task/{tid}/comm"))
}

/// A thread's scheduler state (`R` running, `S` sleeping, `D` in
/// uninterruptible wait...), `None` when it is gone.
pub fn thread_state(pid: u32, tid: u32) -> Option<char> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    Some(parse_stat(&text)?.state)
}

/// What a `/proc` state letter means.
pub fn state_name(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'T' => "stopped",
        't' => "tracing stop",
        'Z' => "zombie",
        'X' => "dead",
        'I' => "idle",
        _ => "unknown",
    }
}

/// The system call a blocked thread is in (`/proc/PID/task/TID/syscall`'s
/// number), `None` when it runs in user space or is gone.
pub fn thread_syscall(pid: u32, tid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The name of a system call a thread may be blocked in (this
/// architecture's numbers, from libc).
pub fn syscall_name(nr: u64) -> String {
    use libc::*;
    let common = [
        (SYS_read, "read"),
        (SYS_write, "write"),
        (SYS_pread64, "pread64"),
        (SYS_readv, "readv"),
        (SYS_nanosleep, "nanosleep"),
        (SYS_accept, "accept"),
        (SYS_sendto, "sendto"),
        (SYS_recvfrom, "recvfrom"),
        (SYS_sendmsg, "sendmsg"),
        (SYS_recvmsg, "recvmsg"),
        (SYS_wait4, "wait4"),
        (SYS_rt_sigtimedwait, "rt_sigtimedwait"),
        (SYS_rt_sigsuspend, "rt_sigsuspend"),
        (SYS_futex, "futex"),
        (SYS_clock_nanosleep, "clock_nanosleep"),
        (SYS_waitid, "waitid"),
        (SYS_pselect6, "pselect6"),
        (SYS_ppoll, "ppoll"),
        (SYS_epoll_pwait, "epoll_pwait"),
        (SYS_accept4, "accept4"),
        (SYS_epoll_pwait2, "epoll_pwait2"),
    ];
    // x86-64's older calls, which arm64's table never had.
    #[cfg(target_arch = "x86_64")]
    let legacy = [
        (SYS_poll, "poll"),
        (SYS_select, "select"),
        (SYS_pause, "pause"),
        (SYS_epoll_wait, "epoll_wait"),
    ];
    #[cfg(not(target_arch = "x86_64"))]
    let legacy: [(c_long, &str); 0] = [];
    common
        .iter()
        .chain(&legacy)
        .find(|(number, _)| *number as u64 == nr)
        .map_or_else(|| format!("syscall {nr}"), |(_, name)| (*name).to_owned())
}

fn read_comm(path: &str) -> Option<String> {
    Some(fs::read_to_string(path).ok()?.trim_end().to_owned())
}

/// The arguments of a process (`None` when it is gone; empty for a
/// kernel thread or a zombie).
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    Some(parse_cmdline(
        &fs::read(format!("/proc/{pid}/cmdline")).ok()?,
    ))
}

/// NUL-separated arguments.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// (comm, ppid, argv) of a live process (empty if gone).
pub fn describe(pid: u32) -> (String, u32, Vec<String>) {
    (
        comm(pid).unwrap_or_default(),
        stat(pid).map_or(0, |s| s.ppid),
        cmdline(pid).unwrap_or_default(),
    )
}

/// The ids under a `/proc` directory whose entries are numbers.
fn numbered_entries(dir: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Every process id on the host.
pub fn pids() -> Vec<u32> {
    numbered_entries("/proc")
}

/// `/proc/PID/cgroup`: a `N:controllers:/path` line per cgroup v1
/// hierarchy, `0::/path` for v2 (`None`: the process is gone).
pub fn cgroup(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid host), from the tracer's mountinfo.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [TAGS...] - FSTYPE SOURCE ...
        let (fields, rest) = line.split_once(" - ")?;
        let mount_point = fields.split(' ').nth(4)?;
        (rest.split(' ').next()? == "cgroup2").then(|| PathBuf::from(unescape_mount(mount_point)))
    })
}

/// mountinfo writes a space, tab, newline and backslash in a path as `\ooo`.
fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The thread ids of a process (empty if it is gone).
pub fn threads(pid: u32) -> Vec<u32> {
    numbered_entries(&format!("/proc/{pid}/task"))
}

/// Every descendant of `pid` now, from a scan of every process's parent
/// (finds children forked before we attached, whatever their thread).
pub fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = pids()
        .into_iter()
        .filter_map(|p| Some((p, stat(p)?.ppid)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(child, ppid) in &parents {
            if ppid == parent && !found.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

/// A zombie found in /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundZombie {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// Time since the process started, if /proc/uptime could be read.
    pub age_ns: Option<u64>,
    /// Its wait status, as /proc/PID/stat shows it.
    pub status: Option<u32>,
}

/// Zombie children of `parents` as /proc shows them now.
pub fn zombie_children(parents: &[u32]) -> Vec<FoundZombie> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let uptime_ns = fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|secs| (secs * 1e9) as u64);
    pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = stat(pid)?;
            if stat.state != 'Z' || !parents.contains(&stat.ppid) {
                return None;
            }
            let started_ns = stat.start_ticks * 1_000_000_000 / ticks;
            Some(FoundZombie {
                pid,
                ppid: stat.ppid,
                comm: stat.comm,
                age_ns: uptime_ns.map(|up| up.saturating_sub(started_ns)),
                status: stat.exit_status,
            })
        })
        .collect()
}

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

/// The last `NSpid` entry of a status text.
fn innermost(status: &str) -> Option<u32> {
    parse_nspid(status)?.last().copied()
}

/// The text of `/proc/PID/status`.
pub fn status(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// A process's peak resident memory in bytes (`VmHWM` of
/// `/proc/PID/status`); `None` when it is gone or a kernel thread.
pub fn peak_rss(pid: u32) -> Option<u64> {
    status_kib(&status(pid)?, "VmHWM:").map(|kib| kib * 1024)
}

/// A `Name:   N kB` line of a status file, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// The tracer's own `/proc/self/status` (capabilities).
pub fn own_status() -> Option<String> {
    fs::read_to_string("/proc/self/status").ok()
}

/// The pid `pid` (a host pid or tid) has in its own, innermost, namespace:
/// `pid` itself when it shares the tracer's namespace. `None` when the task
/// is gone (a zombie still has its status file).
pub fn ns_pid(pid: u32) -> Option<u32> {
    innermost(&status(pid)?)
}

/// Whether `pid` lives in a pid namespace below the tracer's (its `NSpid`
/// line has more than one entry).
pub fn in_child_namespace(pid: u32) -> bool {
    status(pid)
        .and_then(|s| parse_nspid(&s))
        .is_some_and(|pids| pids.len() > 1)
}

/// The threads of process `pid`: id in its own namespace -> host id.
pub fn thread_ids(pid: u32) -> HashMap<u32, u32> {
    threads(pid)
        .into_iter()
        .filter_map(|host| {
            let status = fs::read_to_string(format!("/proc/{pid}/task/{host}/status")).ok()?;
            Some((innermost(&status)?, host))
        })
        .collect()
}

/// The directory the process sees as `/` (a chroot, a container), when it
/// is not the tracer's `/`.
pub fn root(pid: u32) -> Option<String> {
    let root = fs::read_link(format!("/proc/{pid}/root")).ok()?;
    Some(root.to_string_lossy().into_owned()).filter(|r| r != "/")
}

/// `path` as the process sees it, looked at from outside through its root.
pub fn in_root(pid: u32, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root{path}"))
}

/// A path relative to the process's working directory, from outside.
pub fn in_cwd(pid: u32, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/cwd/{path}"))
}

/// The process's own procfs directory (what it calls `/proc/self/`).
pub fn own_dir(pid: u32) -> String {
    format!("/proc/{pid}/")
}

/// Its main thread's procfs directory (what it calls `/proc/thread-self/`).
pub fn thread_self_dir(pid: u32) -> String {
    format!("/proc/{pid}/task/{pid}/")
}

/// The link of an open descriptor (stat it to describe the file).
pub fn fd_path(pid: u32, fd: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/fd/{fd}"))
}

/// What an open descriptor points to (`/etc/hosts`, `pipe:[1234]`...).
pub fn fd_target(pid: u32, fd: i32) -> Option<String> {
    let target = fs::read_link(fd_path(pid, fd)).ok()?;
    Some(target.to_string_lossy().into_owned())
}

/// The open descriptors of a process.
pub fn fds(pid: u32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// The executable's path, as the tracer sees it (like `/proc/PID/maps`).
pub fn exe(pid: u32) -> Option<String> {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(exe.to_string_lossy().into_owned())
}

/// The text of `/proc/PID/maps`.
pub fn maps(pid: u32) -> std::io::Result<String> {
    fs::read_to_string(format!("/proc/{pid}/maps"))
}

/// The text of the tracer's own `/proc/self/maps`.
pub fn own_maps() -> std::io::Result<String> {
    fs::read_to_string("/proc/self/maps")
}

/// `len` bytes of the tracer's own memory at `addr` (its vDSO), through
/// `/proc/self/mem`: an unmapped address is an error, not a fault.
pub fn own_memory(addr: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0; len];
    fs::File::open("/proc/self/mem")?.read_exact_at(&mut bytes, addr)?;
    Ok(bytes)
}

/// `/proc/PID/mem` opened, to read another process's memory where
/// `process_vm_readv` cannot reach it (`python/process_memory.rs`).
pub fn memory(pid: u32) -> std::io::Result<fs::File> {
    fs::File::open(format!("/proc/{pid}/mem"))
}

/// The file mapped at `start..end`, whatever the namespaces.
pub fn map_file(pid: u32, start: u64, end: u64) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/map_files/{start:x}-{end:x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_in_kib() {
        let status = "Name:\tpython3\nVmPeak:\t  30000 kB\nVmHWM:\t   10240 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(10_240));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert_eq!(status_kib("VmHWM:\tlots\n", "VmHWM:"), None);
        // Our own process has one.
        assert!(peak_rss(std::process::id()).is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn stat_with_awkward_comm() {
        // Fields after the comm: state, ppid, 17 more, starttime (22nd), 29
        // more, exit_code (52nd).
        let fields = ["S", "45", "1", "1", "0", "-1", "4202560"]
            .into_iter()
            .chain(["0"; 12])
            .chain(["777"])
            .chain(["0"; 29])
            .chain(["256"])
            .collect::<Vec<_>>()
            .join(" ");
        let stat = format!("123 (my (odd) prog) {fields}");
        let parsed = parse_stat(&stat).unwrap();
        assert_eq!(parsed.comm, "my (odd) prog");
        assert_eq!((parsed.state, parsed.ppid), ('S', 45));
        assert_eq!(parsed.start_ticks, 777);
        assert_eq!(parsed.flags, 4202560);
        assert_eq!(parsed.exit_status, Some(256));
        // A short stat (older kernels): no start time nor status.
        let short = parse_stat("1 (init) S 0 1 1").unwrap();
        assert_eq!(
            (short.ppid, short.start_ticks, short.exit_status),
            (0, 0, None)
        );
        // A zombie whose status cannot be read (the line stops at starttime).
        let zombie =
            "1234 (my (odd) prog) Z 812 1234 1234 0 -1 4228 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        let parsed = parse_stat(zombie).unwrap();
        assert_eq!(
            (
                parsed.state,
                parsed.ppid,
                parsed.start_ticks,
                parsed.exit_status
            ),
            ('Z', 812, 98765, None)
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn cmdline_splits_on_nul() {
        assert_eq!(
            parse_cmdline(b"python3\0-c\0print(1)\0"),
            ["python3", "-c", "print(1)"]
        );
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(parse_cmdline(b"a\xff\0"), ["a\u{fffd}"]);
    }

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
    fn this_process_as_proc_shows_it() {
        let me = std::process::id();
        assert_eq!(ns_pid(me), Some(me));
        assert!(!in_child_namespace(me));
        let threads = thread_ids(me);
        assert_eq!(threads.get(&me), Some(&me));
        assert_eq!(ns_pid(u32::MAX - 1), None);
        assert!(exists(me) && !exists(0) && !exists(u32::MAX - 1));
        assert!(!is_zombie(me));
        assert!(!is_kernel_thread(me));
        // kthreadd is pid 2 in the root pid namespace.
        assert!(is_kernel_thread(2));
        assert_eq!(stat(me).unwrap().ppid, std::os::unix::process::parent_id());
        assert!(self::threads(me).contains(&me));
        assert!(!cmdline(me).unwrap().is_empty());
        assert!(pids().contains(&me));
        assert!(cgroup(me).is_some_and(|text| text.lines().count() >= 1));
        assert_eq!(cgroup(u32::MAX - 1), None);
    }

    #[test]
    fn descendants_of_a_running_shell() {
        // sh -> sleep: the grandchild is found through its parent.
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "/bin/sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleep: u32 = line.trim().parse().unwrap();
        let found = descendants(std::process::id());
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(found.contains(&sleep), "{found:?}");
        let scanned = descendants(child.id());
        assert_eq!(scanned, vec![sleep]);
        let _ = std::process::Command::new("kill")
            .arg(sleep.to_string())
            .status();
        child.wait().unwrap();
    }
}
