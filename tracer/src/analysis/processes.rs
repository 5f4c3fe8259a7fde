//! The process tree and the zombie lifecycle: fork / exec / exit / wait /
//! release events in, `processes` and `zombies` report rows out. Pure logic,
//! but for a process's pid in its namespace read when it is added (the
//! `/proc` scan for zombies that predate the trace is `procfs::zombie_children`).
//!
//! A traced process that exits is a zombie until it is released:
//! - its parent's wait4/waitid returns its pid ("wait4" / "waitid"),
//! - another process's wait4 returns it (reparented to init or a subreaper: "init"),
//! - it is released without any wait (SIGCHLD ignored, SA_NOCLDWAIT: "autoreap";
//!   or, if its parent had exited first, reaped by an untraced waitid: "init"),
//! - or none of these before the trace ends ("still_zombie").

use std::collections::{BTreeMap, HashMap};

use crate::{
    analysis::{
        signals::{self, signal_name},
        spawned::spawned_line,
        system::System,
        zombies::{Exited, Zombies},
    },
    events::{SignalGenerated, WaitDone, WaitSyscall},
    frame::Frame,
    host::procfs::FoundZombie,
    report::{
        Container, EventStack, Finding, ProcessInfo, Report, Target, Zombie,
        format::{duration, thousands},
        identity,
    },
};

/// A child that stays a zombie this long (or to the end) gets a finding.
pub const LONG_ZOMBIE_NS: u64 = 1_000_000_000;

/// Fork stacks kept for children not announced yet (with `--no-children`
/// no process child is ever announced, so this bounds what piles up).
const MAX_PENDING_SPAWNS: usize = 4096;

const WNOWAIT: u32 = 0x0100_0000;
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_DUMPED: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Reap {
    ts_ns: u64,
    by_pid: u32,
    by_comm: String,
    syscall: WaitSyscall,
}

#[derive(Debug, Clone, Default)]
struct Proc {
    pid: u32,
    /// Its pid in its own pid namespace (`NSpid`), when known.
    ns_pid: Option<u32>,
    ppid: u32,
    comm: String,
    argv: Vec<String>,
    root: bool,
    start_ns: Option<u64>,
    exec_ns: Option<u64>,
    exit_ns: Option<u64>,
    /// wait(2) status.
    status: Option<u32>,
    threads: u32,
    reap: Option<Reap>,
    freed_ns: Option<u64>,
    /// A zombie already when tracing started: its age from /proc, if known.
    pre_existing: Option<Option<u64>>,
    /// SIGCHLD for this child's exit: (time, kernel result name, the
    /// process it went to: its parent then, which may be a subreaper).
    sigchld: Option<(u64, String, u32)>,
    /// The parent's Python stack at the fork, innermost first.
    spawned_from: Option<Vec<Frame>>,
    /// Read when it became known (adopted, forked, exec'd); a process gone
    /// before it could be read keeps its parent's.
    container: Option<Container>,
    /// The OOM killer chose it.
    oom_killed: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct WaitCalls {
    calls: u64,
    last_ns: u64,
}

/// What a wait status says: (exit code, killing signal, core dumped).
pub fn decode_status(status: u32) -> (Option<i32>, Option<i32>, bool) {
    let sig = (status & 0x7f) as i32;
    if sig == 0 {
        (Some(((status >> 8) & 0xff) as i32), None, false)
    } else if sig == 0x7f {
        (None, None, false) // stopped: not an exit
    } else {
        (None, Some(sig), status & 0x80 != 0)
    }
}

/// A waitid `si_code`/`si_status` as a wait status, if it reports a termination.
pub fn waitid_status(code: i32, status: i32) -> Option<u32> {
    let status = status as u32;
    match code {
        CLD_EXITED => Some((status & 0xff) << 8),
        CLD_KILLED => Some(status & 0x7f),
        CLD_DUMPED => Some((status & 0x7f) | 0x80),
        _ => None,
    }
}

#[derive(Default)]
pub struct ProcessTable {
    procs: BTreeMap<u32, Proc>,
    /// Processes whose pid was reused during the trace.
    retired: Vec<Proc>,
    waits: HashMap<u32, WaitCalls>,
    /// Child pid (or thread id) -> the Python stack that forked it, until
    /// its fork record arrives (the stack is sent just before it).
    pending_spawns: HashMap<u32, Vec<Frame>>,
    /// The rows exited and not reaped by a wait (released or not: the
    /// release may come before the wait's record), which a wait's report
    /// is matched against. Kept by [`Self::index`].
    zombies: Zombies,
}

impl ProcessTable {
    /// Keeps row `pid` in the zombies index exactly while it has exited
    /// and no wait reaped it, with its parent and namespace pid as the row
    /// says now: called after every change to those.
    fn index(&mut self, pid: u32) {
        match self.procs.get(&pid) {
            Some(p) if p.exit_ns.is_some() && p.reap.is_none() => {
                let exited = Exited {
                    exit_ns: p.exit_ns.filter(|_| p.pre_existing.is_none()),
                    parent: p.ppid,
                    ns_pid: p.ns_pid,
                };
                self.zombies.on_exit(pid, exited);
            }
            _ => {
                self.zombies.reap(pid);
            }
        }
    }

    /// `--live`: every process now (pid, ppid, comm, state), without
    /// touching what the report is built from.
    pub fn live_rows(&self, now_ns: u64) -> Vec<super::live_model::ProcessRow> {
        use super::live_model::{ProcessRow, ProcessState};
        self.procs
            .values()
            .map(|p| {
                let state = match (p.exit_ns, p.reap.is_some() || p.freed_ns.is_some()) {
                    (None, _) => ProcessState::Running,
                    (Some(exit), false) => ProcessState::Zombie(std::time::Duration::from_nanos(
                        now_ns.saturating_sub(exit),
                    )),
                    (Some(_), true) => match p.status.map(decode_status) {
                        Some((_, Some(sig), _)) => {
                            ProcessState::Killed(super::signals::signal_name(sig))
                        }
                        Some((code, _, _)) => ProcessState::Exited(code.unwrap_or(0)),
                        None => ProcessState::Exited(0),
                    },
                };
                ProcessRow {
                    pid: p.pid,
                    ppid: p.ppid,
                    comm: p.comm.clone(),
                    state,
                }
            })
            .collect()
    }

    /// A process traced from the start (the launched command, or `--pid`)
    /// with the threads it has besides the main one.
    pub fn add_root(
        &mut self,
        system: &mut dyn System,
        pid: u32,
        ppid: u32,
        comm: &str,
        argv: &[String],
        threads: u32,
    ) {
        let p = self.procs.entry(pid).or_insert_with(|| Proc {
            pid,
            ..Proc::default()
        });
        if p.ns_pid.is_none() {
            p.ns_pid = system.ns_pid(pid);
        }
        if p.container.is_none() {
            p.container = system.container(pid).flatten();
        }
        p.ppid = ppid;
        p.threads += threads;
        p.root = true;
        if p.comm.is_empty() {
            p.comm = comm.to_owned();
        }
        if p.argv.is_empty() {
            p.argv = argv.to_vec();
        }
        self.index(pid);
    }

    /// Every process known: (pid, parent, a zombie that predates the trace).
    pub fn known(&self) -> Vec<(u32, u32, bool)> {
        self.procs
            .values()
            .map(|p| (p.pid, p.ppid, p.pre_existing.is_some()))
            .collect()
    }

    /// The container of process `pid`: as recorded when it became known,
    /// else as /proc says now.
    pub fn container_of(&self, system: &mut dyn System, pid: u32) -> Option<Container> {
        match self.procs.get(&pid) {
            Some(p) => p.container.clone(),
            None => system.container(pid).flatten(),
        }
    }

    /// The pid `pid` has in its own pid namespace (from /proc or its exit record).
    pub fn set_ns_pid(&mut self, pid: u32, ns_pid: u32) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.ns_pid = Some(ns_pid);
        }
        self.index(pid);
    }

    /// A descendant that was already running when tracing started.
    pub fn add_existing(
        &mut self,
        system: &mut dyn System,
        pid: u32,
        ppid: u32,
        comm: &str,
        argv: &[String],
        threads: u32,
    ) {
        let p = self.procs.entry(pid).or_insert_with(|| Proc {
            pid,
            ..Proc::default()
        });
        p.ns_pid = system.ns_pid(pid);
        p.container = system.container(pid).flatten();
        p.ppid = ppid;
        p.threads += threads;
        p.comm = comm.to_owned();
        p.argv = argv.to_vec();
        self.index(pid);
    }

    /// A child that was a zombie before tracing started (`age_ns`: time since
    /// it started, when /proc says; its exit time is not known).
    pub fn add_preexisting_zombie(&mut self, z: &FoundZombie, now_ns: u64) {
        self.procs.insert(
            z.pid,
            Proc {
                pid: z.pid,
                ppid: z.ppid,
                comm: z.comm.clone(),
                exit_ns: Some(now_ns),
                status: z.status,
                pre_existing: Some(z.age_ns),
                ..Proc::default()
            },
        );
        self.index(z.pid);
    }

    /// The Python stack (innermost first) of the fork that made `child`,
    /// which the fork record itself follows.
    pub fn on_spawn_stack(&mut self, child: u32, frames: Vec<Frame>) {
        if self.pending_spawns.len() < MAX_PENDING_SPAWNS
            || self.pending_spawns.contains_key(&child)
        {
            self.pending_spawns.insert(child, frames);
        }
    }

    /// Whether the Python stack of the fork that made `child` came.
    pub fn has_spawn_stack(&self, child: u32) -> bool {
        self.pending_spawns.contains_key(&child)
    }

    pub fn on_fork(
        &mut self,
        system: &mut dyn System,
        parent_tgid: u32,
        child: u32,
        is_thread: bool,
        ts_ns: u64,
        comm: &str,
    ) {
        let spawned_from = self.pending_spawns.remove(&child);
        if is_thread {
            if let Some(parent) = self.procs.get_mut(&parent_tgid) {
                parent.threads += 1;
            }
            return;
        }
        let parent = self.procs.get(&parent_tgid);
        let argv = parent.map(|p| p.argv.clone()).unwrap_or_default();
        let container = identity::container_when_met(
            system.container(child),
            parent.and_then(|p| p.container.as_ref()),
        );
        if let Some(old) = self.procs.remove(&child) {
            self.retired.push(old);
        }
        self.procs.insert(
            child,
            Proc {
                pid: child,
                ppid: parent_tgid,
                comm: comm.to_owned(),
                argv,
                start_ns: Some(ts_ns),
                spawned_from,
                container,
                ..Proc::default()
            },
        );
        self.index(child);
    }

    /// A successful exec; `argv` is empty if it could not be read.
    pub fn on_exec(
        &mut self,
        system: &mut dyn System,
        tgid: u32,
        ts_ns: u64,
        comm: &str,
        mut argv: Vec<String>,
        truncated: bool,
    ) {
        // A process a node-wide trace takes in as it execs: its parent and
        // namespace pid from /proc while it runs.
        let p = self.procs.entry(tgid).or_insert_with(|| Proc {
            pid: tgid,
            ppid: system.parent(tgid).unwrap_or(0),
            ns_pid: system.ns_pid(tgid),
            ..Proc::default()
        });
        p.comm = comm.to_owned();
        p.exec_ns = Some(ts_ns);
        p.container = identity::container_after_exec(system.container(tgid), p.container.take());
        if !argv.is_empty() {
            if truncated {
                argv.push("...".into());
            }
            p.argv = argv;
        }
    }

    pub fn on_exit(
        &mut self,
        tgid: u32,
        group_dead: bool,
        ts_ns: u64,
        comm: &str,
        status: Option<u32>,
    ) {
        if !group_dead {
            return;
        }
        let p = self.procs.entry(tgid).or_insert_with(|| Proc {
            pid: tgid,
            ..Proc::default()
        });
        p.exit_ns = Some(ts_ns);
        p.comm = comm.to_owned();
        if status.is_some() {
            p.status = status;
        }
        self.index(tgid);
    }

    pub fn on_freed(&mut self, pid: u32, ts_ns: u64) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.freed_ns.get_or_insert(ts_ns);
        }
    }

    /// Whether the trace has met process `pid`.
    pub fn knows(&self, pid: u32) -> bool {
        self.procs.contains_key(&pid)
    }

    /// The OOM killer chose process `pid`.
    pub fn on_oom_kill(&mut self, pid: u32) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.oom_killed = true;
        }
    }

    /// A signal generated: a SIGCHLD from a child's exit is its parent's
    /// to answer.
    pub fn on_signal_generated(&mut self, g: &SignalGenerated) {
        // CLD_EXITED, CLD_KILLED, CLD_DUMPED: a child's exit (not a stop).
        if g.sig == signals::SIGCHLD && g.syscall.is_none() && (1..=3).contains(&g.code) {
            // Sent by the exiting child's own exit path: g.tgid is the child.
            // The target is the thread that forked it: name its process.
            let parent = if g.target_tgid != 0 {
                g.target_tgid
            } else {
                g.target_pid
            };
            let result = signals::result_name(g.result);
            self.on_sigchld(g.tgid, parent, g.ts_ns, result);
        }
    }

    /// SIGCHLD generated for `parent` by the exit of `child`.
    pub fn on_sigchld(&mut self, child: u32, parent: u32, ts_ns: u64, result: &str) {
        if let Some(p) = self.procs.get_mut(&child)
            && p.sigchld.is_none()
        {
            p.sigchld = Some((ts_ns, result.to_owned(), parent));
        }
    }

    pub fn on_wait(&mut self, w: &WaitDone) {
        if !w.untraced_reaper {
            let calls = self.waits.entry(w.tgid).or_default();
            calls.calls += 1;
            calls.last_ns = w.ts_ns;
        }
        let Some(status) = reap_status(w) else {
            return;
        };
        let Some(pid) = self.zombies.reported_child(w.tgid, w.pid) else {
            return;
        };
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if p.exit_ns.is_none() || p.reap.is_some() {
            return;
        }
        if p.status.is_none() {
            p.status = status;
        }
        p.reap = Some(Reap {
            ts_ns: w.ts_ns,
            by_pid: w.tgid,
            by_comm: w.comm.clone(),
            syscall: w.syscall,
        });
        self.index(pid);
    }

    /// `killer`: the signal that killed a process according to the signal
    /// deliveries, used when no exit status was read.
    ///
    /// `zombie_now`: whether `pid` is a zombie in /proc at the end. A child
    /// whose release was not seen (its `sched_process_free` comes from an RCU
    /// callback, possibly after tracing stopped) but that is gone was released.
    /// `ns_pid_now`: a process's pid in its namespace from /proc, for those
    /// still there whose pid in their namespace is not known yet.
    pub fn finish(
        self,
        end_ns: u64,
        base_ns: u64,
        killer: impl Fn(u32) -> Option<i32>,
        zombie_now: impl Fn(u32) -> bool,
        ns_pid_now: impl Fn(u32) -> Option<u32>,
    ) -> (Vec<ProcessInfo>, Vec<Zombie>) {
        let rel = |ts: u64| (ts as f64 - base_ns as f64) / 1e9;
        let mut processes = Vec::new();
        let mut zombies = Vec::new();
        let exited_before = |ppid: u32, ts: u64, procs: &BTreeMap<u32, Proc>| {
            procs
                .get(&ppid)
                .and_then(|p| p.exit_ns)
                .is_some_and(|parent_exit| parent_exit <= ts)
        };
        let retired = self.retired.len();
        let all: Vec<&Proc> = self.retired.iter().chain(self.procs.values()).collect();
        for (index, p) in all.iter().enumerate() {
            // A reused pid means the earlier process was released.
            let gone = index < retired || !zombie_now(p.pid);
            let freed_ns = p
                .freed_ns
                .or((p.exit_ns.is_some() && gone).then_some(end_ns));
            let (mut code, mut signal, core) = p.status.map_or((None, None, false), decode_status);
            if p.status.is_none() && p.exit_ns.is_some() && p.pre_existing.is_none() {
                signal = killer(p.pid);
                code = None;
            }
            // Not for an exited, released pid: it may be another process's now.
            let ns_pid = p.ns_pid.or_else(|| {
                let there = index >= retired && (p.exit_ns.is_none() || !gone);
                there.then(|| ns_pid_now(p.pid)).flatten()
            });
            if p.pre_existing.is_none() {
                processes.push(ProcessInfo {
                    pid: p.pid,
                    ns_pid,
                    ppid: p.ppid,
                    comm: p.comm.clone(),
                    argv: p.argv.clone(),
                    exit_code: code,
                    exit_signal: signal.map(signal_name),
                    exit_signo: signal,
                    killed_by: (p.oom_killed && signal == Some(signals::SIGKILL))
                        .then(|| "oom_killer".to_owned()),
                    core_dumped: core,
                    start_s: p.start_ns.map(rel),
                    exec_s: p.exec_ns.map(rel),
                    exit_s: p.exit_ns.map(rel),
                    threads: p.threads + 1,
                    traced_from_start: p.root,
                    python_stacks: p
                        .spawned_from
                        .iter()
                        .map(|frames| EventStack::new(frames.clone(), 1))
                        .collect(),
                    container: p.container.clone(),
                    // Once the report is whole: `derive`.
                    spawned_line: None,
                });
            }
            let Some(exit_ns) = p.exit_ns else { continue };
            if p.root {
                continue;
            }
            let (how, reaped_by, reaped_by_comm, end) = match (&p.reap, freed_ns) {
                (Some(r), _) => {
                    let how = if r.by_pid == p.ppid {
                        r.syscall.name()
                    } else {
                        "init"
                    };
                    (how, Some(r.by_pid), Some(r.by_comm.clone()), r.ts_ns)
                }
                // Orphaned before its exit: init or a subreaper reaped it.
                (None, Some(freed)) if exited_before(p.ppid, exit_ns, &self.procs) => {
                    ("init", None, None, freed)
                }
                // A zombie (its exit signalled the parent, so not autoreaped)
                // orphaned before its release: reaped by init or a subreaper,
                // maybe after the trace stopped. The release's own time comes
                // after an RCU grace period, so it alone cannot tell.
                (None, Some(freed))
                    if p.sigchld.is_some() && exited_before(p.ppid, freed, &self.procs) =>
                {
                    ("init", None, None, freed)
                }
                (None, Some(_)) => ("autoreap", None, None, exit_ns),
                (None, None) => ("still_zombie", None, None, end_ns),
            };
            let parent = self.waits.get(&p.ppid).copied().unwrap_or_default();
            let sigchld_unanswered = p.sigchld.as_ref().is_some_and(|(ts, _, to)| {
                let recipient = self.waits.get(to).copied().unwrap_or_default();
                let reaped_by_recipient = p.reap.as_ref().is_some_and(|r| r.by_pid == *to);
                !reaped_by_recipient && (recipient.calls == 0 || recipient.last_ns < *ts)
            });
            zombies.push(Zombie {
                pid: p.pid,
                ns_pid,
                ppid: p.ppid,
                comm: p.comm.clone(),
                exit_code: code,
                exit_signal: signal.map(signal_name),
                core_dumped: core,
                exit_s: if p.pre_existing.is_some() {
                    None
                } else {
                    Some(rel(exit_ns))
                },
                zombie_ns: end.saturating_sub(exit_ns),
                reaped_by,
                reaped_by_comm,
                reaped_how: how.to_owned(),
                sigchld: p.sigchld.as_ref().map(|(_, result, _)| result.clone()),
                sigchld_unanswered,
                parent_wait_calls: parent.calls,
                pre_existing: p.pre_existing.is_some(),
                age_ns: p.pre_existing.flatten(),
                spawned_from: p.spawned_from.clone(),
                spawned_line: None,
            });
        }
        processes.sort_by(|a, b| {
            a.start_s
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.start_s.unwrap_or(f64::NEG_INFINITY))
                .then(a.pid.cmp(&b.pid))
        });
        zombies.sort_by(|a, b| {
            a.exit_s
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.exit_s.unwrap_or(f64::NEG_INFINITY))
                .then(a.pid.cmp(&b.pid))
        });
        (processes, zombies)
    }
}

/// The target as the report has it at the end: its pid in its namespace
/// and its name (`names`: the name after `exec`) from its row, and how it
/// ended: as the tracer reaped it (`exit_code`, `exit_signal`: launch
/// mode), else as the kernel side saw its exit.
pub fn target_at_end(
    mut target: Target,
    processes: &[ProcessInfo],
    names: &HashMap<u32, String>,
    exit_code: Option<i32>,
    exit_signal: Option<i32>,
) -> Target {
    let row = processes.iter().find(|p| p.pid == target.pid);
    target.ns_pid = row.and_then(|p| p.ns_pid);
    if let Some(comm) = names.get(&target.pid) {
        target.comm = comm.clone();
    }
    target.exit_code = exit_code;
    target.exit_signo = exit_signal;
    // Adopted with --pid: the tracer cannot wait for it, but the kernel
    // side saw its exit.
    if let Some(row) = row
        && exit_code.is_none()
        && exit_signal.is_none()
    {
        target.exit_code = row.exit_code;
        target.exit_signo = row.exit_signo;
    }
    target.exit_signal = target.exit_signo.map(signal_name);
    target
}

/// One finding per parent that left children unreaped for long.
pub fn findings(report: &Report) -> Vec<Finding> {
    let mut by_parent: BTreeMap<u32, Vec<&Zombie>> = BTreeMap::new();
    for z in &report.zombies {
        if z.reaped_how == "still_zombie" || z.zombie_ns >= LONG_ZOMBIE_NS {
            by_parent.entry(z.ppid).or_default().push(z);
        }
    }
    let mut findings = Vec::new();
    for (ppid, zs) in by_parent {
        let longest = zs.iter().map(|z| z.zombie_ns).max().unwrap_or(0);
        let still = zs.iter().filter(|z| z.reaped_how == "still_zombie").count();
        let got_sigchld = zs.iter().any(|z| z.sigchld.is_some());
        let waits = zs.first().map_or(0, |z| z.parent_wait_calls);
        let children = if zs.len() == 1 { "child" } else { "children" };
        let parent = format!(
            "{} (pid {ppid})",
            crate::report::identity::Identities::of(report)
                .comm(ppid)
                .unwrap_or("?")
        );
        let mut sentence = format!(
            "{parent} left {} {children} unreaped for up to {}",
            thousands(zs.len() as u64),
            duration(longest)
        );
        if waits == 0 && got_sigchld {
            sentence.push_str("; it receives SIGCHLD but never calls wait4/waitid");
        } else if waits == 0 {
            sentence.push_str("; it never calls wait4/waitid");
        } else if zs.iter().any(|z| z.sigchld_unanswered) {
            sentence.push_str("; it got SIGCHLD and did not wait for them");
        } else if still == 0 {
            sentence.push_str("; it reaped them only later");
        }
        if still > 0 {
            sentence.push_str(&format!(
                " ({} still zombies when tracing stopped)",
                thousands(still as u64)
            ));
        }
        if let Some(lines) = spawned_lines(&zs) {
            sentence.push_str(&format!("; spawned from {lines}"));
        }
        findings.push(
            Finding::new("unreaped_children", "processes", parent, sentence)
                .with("ppid", u64::from(ppid))
                .with("children", zs.len() as u64)
                .with("still_zombies", still as u64)
                .with("longest_zombie_ns", longest)
                .with("parent_wait_calls", waits),
        );
    }
    findings
}

/// "LINE" when every child with a known stack came from one line, else
/// "LINE (N), LINE (M)" for the two most frequent and "..." for the rest.
fn spawned_lines(zs: &[&Zombie]) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for z in zs {
        if let Some(frames) = z.spawned_from.as_deref()
            && let Some(line) = spawned_line(frames)
        {
            *counts.entry(frames[line].to_string()).or_default() += 1;
        }
    }
    let mut lines: Vec<(String, usize)> = counts.into_iter().collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    match lines.as_slice() {
        [] => None,
        [(line, _)] => Some(line.clone()),
        more => {
            let mut text: Vec<String> = more
                .iter()
                .take(2)
                .map(|(line, n)| format!("{line} ({})", thousands(*n as u64)))
                .collect();
            if more.len() > 2 {
                text.push("...".into());
            }
            Some(text.join(", "))
        }
    }
}

/// `Some(status)` when the wait reaped the child it reports (its wait
/// status when known): only a termination reaps; stopped / continued
/// reports, `WNOWAIT` and a wait that found nothing do not.
pub fn reap_status(w: &WaitDone) -> Option<Option<u32>> {
    if w.pid == 0 {
        return None;
    }
    match w.syscall {
        WaitSyscall::Wait4 => match w.status {
            Some(s) => {
                let s = s as u32;
                ((s & 0x7f) != 0x7f && s != 0xffff).then_some(Some(s))
            }
            None => Some(None),
        },
        WaitSyscall::Waitid => {
            if w.options & WNOWAIT != 0 {
                return None;
            }
            match waitid_status(w.code, w.status.unwrap_or(0)) {
                Some(s) => Some(Some(s)),
                None if w.status.is_none() => Some(None),
                None => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::analysis::system::{MadeUp, made_up};
    use crate::report::fixtures;

    /// A system where no process exists.
    fn nothing() -> MadeUp {
        MadeUp::default()
    }

    fn wait(ts: u64, waiter: u32, pid: u32, status: Option<i32>) -> WaitDone {
        WaitDone {
            tgid: waiter,
            tid: waiter,
            comm: "python3".into(),
            ts_ns: ts,
            syscall: WaitSyscall::Wait4,
            pid,
            ret: pid as i64,
            status,
            code: 0,
            options: 0,
            untraced_reaper: false,
        }
    }

    fn table() -> ProcessTable {
        let mut t = ProcessTable::default();
        t.add_root(
            &mut nothing(),
            10,
            1,
            "python3",
            &["python3".into(), "app.py".into()],
            0,
        );
        t
    }

    #[test]
    fn statuses() {
        assert_eq!(decode_status(3 << 8), (Some(3), None, false));
        assert_eq!(decode_status(9), (None, Some(9), false));
        assert_eq!(decode_status(11 | 0x80), (None, Some(11), true));
        assert_eq!(decode_status(0x137f), (None, None, false));
        assert_eq!(waitid_status(CLD_EXITED, 3), Some(3 << 8));
        assert_eq!(waitid_status(CLD_KILLED, 9), Some(9));
        assert_eq!(waitid_status(CLD_DUMPED, 6), Some(6 | 0x80));
        assert_eq!(waitid_status(5, 19), None);
    }

    #[test]
    fn each_process_keeps_the_container_it_was_read_in() {
        const ID: &str = "88f77ad080408287b4160044c306776b1ce4465b454c4b9e9a7b434e156f911a";
        // 10 on the host; 20 and 22 in the container; 21 gone when read.
        let container = Container {
            id: ID.into(),
            runtime: "podman".into(),
            ..Container::default()
        };
        let process = |container: Option<Container>| made_up::Process {
            container,
            ..made_up::Process::default()
        };
        let mut system = MadeUp {
            processes: [
                (10, process(None)),
                (20, process(Some(container.clone()))),
                (22, process(Some(container))),
            ]
            .into(),
        };
        let mut t = ProcessTable::default();
        t.add_root(&mut system, 20, 1, "python3", &[], 0);
        t.add_root(&mut system, 10, 1, "python3", &[], 0);
        t.on_fork(&mut system, 20, 21, false, 5, "python3");
        t.on_exec(&mut system, 21, 6, "sh", Vec::new(), false);
        // A runtime's child, moved into the container before exec.
        t.on_fork(&mut system, 10, 22, false, 7, "runc");
        t.on_exec(&mut system, 10, 8, "python3", Vec::new(), false);
        assert_eq!(
            t.container_of(&mut system, 20).map(|c| c.runtime),
            Some("podman".into())
        );
        let (procs, _) = t.finish(100, 0, |_| None, |_| false, |_| None);
        let id = |pid| {
            let p = procs.iter().find(|p| p.pid == pid).unwrap();
            p.container.as_ref().map(|c| c.id.as_str())
        };
        assert_eq!(
            (id(10), id(20), id(21), id(22)),
            (None, Some(ID), Some(ID), Some(ID))
        );
    }

    #[test]
    fn popen_without_wait_then_reaped_late() {
        let mut t = table();
        for (i, child) in [20u32, 21, 22].into_iter().enumerate() {
            let ts = 1_000 + i as u64;
            t.on_fork(&mut nothing(), 10, child, false, ts, "python3");
            t.on_exec(
                &mut nothing(),
                child,
                ts + 1,
                "true",
                vec!["true".into()],
                false,
            );
            t.on_exit(child, true, ts + 10, "true", Some(0));
            t.on_sigchld(child, 10, ts + 11, "ignored");
        }
        // A thread: counted, not a process.
        t.on_fork(&mut nothing(), 10, 11, true, 1_500, "python3");
        // The parent waits for each, 5 s later.
        for child in [20u32, 21, 22] {
            t.on_wait(&wait(5_000_000_000, 10, child, Some(0)));
            t.on_freed(child, 5_000_100_000);
        }
        let (procs, zombies) = t.finish(9_000_000_000, 0, |_| None, |_| false, |_| None);
        assert_eq!(procs.len(), 4);
        assert_eq!(procs.iter().find(|p| p.pid == 10).unwrap().threads, 2);
        let child = procs.iter().find(|p| p.pid == 20).unwrap();
        assert_eq!((child.ppid, child.comm.as_str()), (10, "true"));
        assert_eq!(child.argv, ["true"]);
        assert_eq!(child.exit_code, Some(0));
        assert_eq!(zombies.len(), 3);
        for z in &zombies {
            assert_eq!(z.reaped_how, "wait4");
            assert_eq!(z.reaped_by, Some(10));
            assert!(z.zombie_ns >= 4_999_000_000, "{}", z.zombie_ns);
            assert_eq!(z.sigchld.as_deref(), Some("ignored"));
            // The parent did wait after SIGCHLD (it reaped them).
            assert!(!z.sigchld_unanswered);
        }
    }

    #[test]
    fn a_wait_inside_a_pid_namespace_names_the_child_by_its_namespace_pid() {
        // python is pid 1 of its namespace (host 500); its child is 2 there.
        let mut t = ProcessTable::default();
        t.add_root(&mut nothing(), 500, 499, "python3", &["python3".into()], 0);
        t.set_ns_pid(500, 1);
        t.on_fork(&mut nothing(), 500, 501, false, 10, "python3");
        t.set_ns_pid(501, 2);
        t.on_exit(501, true, 20, "true", Some(0));
        // wait4 in the namespace returns 2, not 501; a stray 2 is not it.
        t.on_wait(&wait(30, 500, 2, Some(0)));
        let (procs, zombies) = t.finish(100, 0, |_| None, |_| false, |_| Some(77));
        let z = &zombies[0];
        assert_eq!(
            (z.pid, z.reaped_how.as_str(), z.reaped_by),
            (501, "wait4", Some(500))
        );
        assert_eq!(z.zombie_ns, 10);
        let ns = |pid| procs.iter().find(|p| p.pid == pid).unwrap().ns_pid;
        assert_eq!((ns(500), ns(501)), (Some(1), Some(2)));
    }

    #[test]
    fn pid_in_namespace_from_proc_only_for_processes_still_there() {
        let mut t = table();
        t.on_fork(&mut nothing(), 10, 20, false, 100, "python3");
        t.on_exit(20, true, 200, "true", Some(0));
        t.on_fork(&mut nothing(), 10, 21, false, 300, "python3");
        t.on_fork(&mut nothing(), 10, 22, false, 400, "python3");
        t.on_exit(22, true, 500, "true", Some(0));
        // 20 exited and is gone (its pid may be someone else's): not asked;
        // 21 runs, 22 is a zombie: asked.
        let (procs, _) = t.finish(1_000, 0, |_| None, |pid| pid == 22, |pid| Some(pid + 1000));
        let ns = |pid| procs.iter().find(|p| p.pid == pid).unwrap().ns_pid;
        assert_eq!((ns(20), ns(21), ns(22)), (None, Some(1021), Some(1022)));
    }

    #[test]
    fn never_reaped_children_are_still_zombies_and_sigchld_unanswered() {
        let mut t = table();
        t.on_fork(&mut nothing(), 10, 20, false, 100, "python3");
        t.on_exit(20, true, 200, "python3", Some(3 << 8));
        t.on_sigchld(20, 10, 201, "ignored");
        // A wait call *before* the SIGCHLD does not count as answering it.
        t.on_wait(&wait(150, 10, 0, None));
        let (_, zombies) = t.finish(1_200, 0, |_| None, |_| true, |_| None);
        let z = &zombies[0];
        assert_eq!(z.reaped_how, "still_zombie");
        assert_eq!(z.zombie_ns, 1_000);
        assert_eq!(z.exit_code, Some(3));
        assert!(z.sigchld_unanswered);
        assert_eq!(z.parent_wait_calls, 1);
    }

    #[test]
    fn fork_exit_waitpid_and_killed_children() {
        let mut t = table();
        t.on_fork(&mut nothing(), 10, 20, false, 100, "python3");
        t.on_exit(20, true, 200, "python3", Some(3 << 8));
        t.on_wait(&wait(210, 10, 20, Some(3 << 8)));
        t.on_fork(&mut nothing(), 10, 21, false, 300, "python3");
        // Exit status unknown in the kernel: the wait status fills it in.
        t.on_exit(21, true, 400, "python3", None);
        let mut w = wait(450, 10, 21, Some(0));
        w.syscall = WaitSyscall::Waitid;
        w.code = CLD_KILLED;
        w.status = Some(9);
        t.on_wait(&w);
        // No status at all: the signal deliveries say what killed it.
        t.on_fork(&mut nothing(), 10, 22, false, 500, "python3");
        t.on_exit(22, true, 600, "python3", None);
        let (procs, zombies) = t.finish(
            1_000,
            0,
            |pid| (pid == 22).then_some(15),
            |_| false,
            |_| None,
        );
        let by_pid = |pid| procs.iter().find(|p| p.pid == pid).unwrap();
        assert_eq!(by_pid(20).exit_code, Some(3));
        assert_eq!(by_pid(21).exit_signal.as_deref(), Some("SIGKILL"));
        assert_eq!(by_pid(21).exit_code, None);
        assert_eq!(by_pid(22).exit_signal.as_deref(), Some("SIGTERM"));
        let z20 = zombies.iter().find(|z| z.pid == 20).unwrap();
        assert_eq!((z20.reaped_how.as_str(), z20.zombie_ns), ("wait4", 10));
        let z21 = zombies.iter().find(|z| z.pid == 21).unwrap();
        assert_eq!(z21.reaped_how, "waitid");
        assert_eq!(z21.exit_signal.as_deref(), Some("SIGKILL"));
    }

    #[test]
    fn autoreap_init_and_stopped_reports() {
        let mut t = table();
        // Autoreaped: released without any wait, parent alive.
        t.on_fork(&mut nothing(), 10, 20, false, 100, "python3");
        t.on_exit(20, true, 200, "python3", Some(0));
        t.on_freed(20, 5_000);
        // Orphan: parent 21 exits first, init (untraced) reaps with wait4.
        t.on_fork(&mut nothing(), 10, 21, false, 300, "python3");
        t.on_fork(&mut nothing(), 21, 22, false, 310, "python3");
        t.on_exit(21, true, 400, "python3", Some(0));
        t.on_exit(22, true, 500, "python3", Some(0));
        let mut init = wait(700, 1, 22, None);
        init.comm = "init".into();
        init.untraced_reaper = true;
        t.on_wait(&init);
        // A stopped child reported by WUNTRACED is not reaped.
        t.on_fork(&mut nothing(), 10, 23, false, 800, "python3");
        t.on_wait(&wait(810, 10, 23, Some(0x137f)));
        t.on_exit(23, true, 900, "python3", Some(0));
        // WNOWAIT does not reap either.
        let mut peek = wait(950, 10, 23, Some(0));
        peek.syscall = WaitSyscall::Waitid;
        peek.code = CLD_EXITED;
        peek.options = WNOWAIT;
        t.on_wait(&peek);
        // 24: autoreaped, but its release came after tracing stopped.
        t.on_fork(&mut nothing(), 10, 24, false, 960, "python3");
        t.on_exit(24, true, 970, "python3", Some(0));
        let (_, zombies) = t.finish(1_000, 0, |_| None, |pid| pid == 23, |_| None);
        let z = |pid| zombies.iter().find(|z| z.pid == pid).unwrap();
        assert_eq!(
            (z(24).reaped_how.as_str(), z(24).zombie_ns),
            ("autoreap", 0)
        );
        assert_eq!(
            (z(20).reaped_how.as_str(), z(20).zombie_ns),
            ("autoreap", 0)
        );
        assert_eq!(z(22).reaped_how, "init");
        assert_eq!(z(22).reaped_by, Some(1));
        assert_eq!(z(22).reaped_by_comm.as_deref(), Some("init"));
        assert_eq!(z(22).zombie_ns, 200);
        assert_eq!(z(23).reaped_how, "still_zombie");
        // The root process itself is not listed as a zombie.
        assert!(zombies.iter().all(|z| z.pid != 10));
    }

    #[test]
    fn a_release_after_the_parents_exit_is_init_only_for_a_zombie() {
        let mut t = table();
        // Autoreaped (no SIGCHLD sent), its release seen an RCU grace
        // period later, after its parent 10 exited.
        t.on_fork(&mut nothing(), 10, 20, false, 100, "python3");
        t.on_exit(20, true, 200, "python3", Some(0));
        // A zombie: its exit signalled the parent, which exited without a
        // wait; init reaped it after the trace stopped (no release seen).
        t.on_fork(&mut nothing(), 10, 21, false, 300, "python3");
        t.on_exit(21, true, 400, "python3", Some(0));
        t.on_sigchld(21, 10, 401, "ignored");
        t.on_exit(10, true, 500, "python3", Some(0));
        t.on_freed(20, 600);
        let (_, zombies) = t.finish(1_000, 0, |_| None, |_| false, |_| None);
        let z = |pid| zombies.iter().find(|z| z.pid == pid).unwrap();
        assert_eq!(
            (z(20).reaped_how.as_str(), z(20).zombie_ns),
            ("autoreap", 0)
        );
        assert_eq!((z(21).reaped_how.as_str(), z(21).zombie_ns), ("init", 600));
    }

    #[test]
    fn preexisting_zombies_and_pid_reuse() {
        let mut t = table();
        let found = FoundZombie {
            pid: 30,
            ppid: 10,
            comm: "defunct".into(),
            age_ns: Some(7_000),
            status: Some(2 << 8),
        };
        t.add_preexisting_zombie(&found, 100);
        t.on_wait(&wait(600, 10, 30, Some(0)));
        t.on_fork(&mut nothing(), 10, 40, false, 100, "a");
        t.on_exit(40, true, 200, "a", Some(0));
        t.on_wait(&wait(210, 10, 40, Some(0)));
        t.on_fork(&mut nothing(), 10, 40, false, 300, "b");
        let (procs, zombies) = t.finish(1_000, 0, |_| None, |_| false, |_| None);
        let z30 = zombies.iter().find(|z| z.pid == 30).unwrap();
        assert!(z30.pre_existing);
        assert_eq!(z30.age_ns, Some(7_000));
        assert_eq!((z30.reaped_how.as_str(), z30.zombie_ns), ("wait4", 500));
        // /proc's status is kept (the wait's is only used when none is known).
        assert_eq!(z30.exit_code, Some(2));
        assert!(procs.iter().all(|p| p.pid != 30));
        assert_eq!(procs.iter().filter(|p| p.pid == 40).count(), 2);
    }

    #[test]
    fn fork_stacks_land_on_their_child() {
        let stack = |line: u32| {
            [
                "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)".to_owned(),
                format!("spawn (/abs/wl.py:{line})"),
            ]
            .iter()
            .map(|f| Frame::parse(f).unwrap())
            .collect::<Vec<_>>()
        };
        let mut t = table();
        // Each stack arrives just before its fork record.
        t.on_spawn_stack(20, stack(7));
        t.on_fork(&mut nothing(), 10, 20, false, 100, "python3");
        t.on_spawn_stack(11, stack(99));
        t.on_fork(&mut nothing(), 10, 11, true, 150, "python3");
        t.on_spawn_stack(21, stack(8));
        t.on_fork(&mut nothing(), 10, 21, false, 200, "python3");
        // No stack known (the thread was not known yet): none invented.
        t.on_fork(&mut nothing(), 10, 22, false, 250, "python3");
        for child in [20, 21, 22] {
            t.on_exit(child, true, 300, "true", Some(0));
        }
        // Pid 20 reused by a later child from another line.
        t.on_wait(&wait(400, 10, 20, Some(0)));
        t.on_spawn_stack(20, stack(9));
        t.on_fork(&mut nothing(), 10, 20, false, 500, "python3");
        t.on_exit(20, true, 600, "true", Some(0));
        // Every stack was claimed, the thread's included.
        assert!(t.pending_spawns.is_empty());
        let (procs, zombies) = t.finish(1_000, 0, |_| None, |_| true, |_| None);
        let spawned = |pid: u32, start: f64| {
            let p = procs
                .iter()
                .find(|p| p.pid == pid && p.start_s == Some(start))
                .unwrap();
            p.python_stacks
                .first()
                .map(|s| (s.frames.clone(), s.samples))
        };
        assert_eq!(spawned(20, 100e-9), Some((stack(7), 1)));
        assert_eq!(spawned(21, 200e-9), Some((stack(8), 1)));
        assert_eq!(spawned(22, 250e-9), None);
        assert_eq!(spawned(20, 500e-9), Some((stack(9), 1)));
        let z = |pid: u32, exit: f64| {
            zombies
                .iter()
                .find(|z| z.pid == pid && z.exit_s == Some(exit))
                .unwrap()
                .spawned_from
                .clone()
        };
        assert_eq!(z(20, 300e-9), Some(stack(7)));
        assert_eq!(z(21, 300e-9), Some(stack(8)));
        assert_eq!(z(22, 300e-9), None);
        assert_eq!(z(20, 600e-9), Some(stack(9)));
        // The root has no spawning stack.
        let root = procs.iter().find(|p| p.pid == 10).unwrap();
        assert!(root.python_stacks.is_empty());
    }

    #[test]
    fn pending_fork_stacks_are_bounded() {
        let mut t = table();
        // --no-children: stacks of process forks never claimed.
        for child in 0..(MAX_PENDING_SPAWNS as u32 + 10) {
            t.on_spawn_stack(
                1_000 + child,
                vec![crate::report::fixtures::frame("f (/a.py:1)")],
            );
        }
        assert_eq!(t.pending_spawns.len(), MAX_PENDING_SPAWNS);
        // Threads still claim theirs.
        t.on_fork(&mut nothing(), 10, 1_000, true, 5, "python3");
        assert_eq!(t.pending_spawns.len(), MAX_PENDING_SPAWNS - 1);
    }

    fn messages(report: &Report) -> Vec<String> {
        findings(report).into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn calls_out_the_parent_that_never_waits() {
        let r = fixtures::worker_report();
        assert_eq!(
            messages(&r),
            [
                "python3 (pid 812) left 37 children unreaped for up to 12.40 s; it receives \
              SIGCHLD but never calls wait4/waitid (37 still zombies when tracing stopped)"
            ]
        );
        let found = &findings(&r)[0];
        assert_eq!(
            (found.kind.as_str(), found.subject.as_str()),
            ("unreaped_children", "python3 (pid 812)")
        );
        assert_eq!(found.figures["ppid"], 812);
        assert_eq!(found.figures["children"], 37);
        assert_eq!(found.figures["still_zombies"], 37);
        assert_eq!(found.figures["longest_zombie_ns"], 12_400_000_000);
    }

    #[test]
    fn the_finding_names_the_lines_that_spawned_the_zombies() {
        let mut r = fixtures::worker_report();
        for (i, z) in r.zombies.iter_mut().enumerate() {
            z.spawned_from = Some(fixtures::popen_frames(if i < 30 { 7 } else { 8 }));
        }
        assert_eq!(
            messages(&r),
            [
                "python3 (pid 812) left 37 children unreaped for up to 12.40 s; it receives \
              SIGCHLD but never calls wait4/waitid (37 still zombies when tracing stopped); \
              spawned from spawn (/abs/wl.py:7) (30), spawn (/abs/wl.py:8) (7)"
            ]
        );
        for z in &mut r.zombies {
            z.spawned_from = Some(fixtures::popen_frames(7));
        }
        assert!(messages(&r)[0].ends_with("; spawned from spawn (/abs/wl.py:7)"));
    }

    #[test]
    fn parent_that_waits_late_is_described_as_such() {
        let mut r = fixtures::worker_report();
        r.zombies = vec![fixtures::zombie(1, 812, 3_000_000_000, "wait4")];
        r.zombies[0].parent_wait_calls = 1;
        assert_eq!(
            messages(&r),
            ["python3 (pid 812) left 1 child unreaped for up to 3.00 s; it reaped them only later"]
        );
        r.zombies[0].zombie_ns = 1_000;
        assert!(findings(&r).is_empty());
    }
}
