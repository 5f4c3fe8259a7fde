//! Signals: `signal_generate` and `signal_deliver` events in, report groups
//! (signal, sender, target) with counts and latency percentiles out, plus a
//! short chronological log. Pure logic, no I/O.
//!
//! Generation and delivery are paired per (target process, signal) in FIFO
//! order: a thread takes signals sent to it before those sent to the whole
//! process, and a standard signal is queued at most once (a second one while
//! the first is pending is "already pending" and merged), so the oldest
//! matching pending signal is the one delivered.

pub mod changes;
pub mod exec_resets;
mod findings;
pub mod stories;

pub use findings::findings;

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::python::merge_stacks;
use crate::{
    events::{SignalDelivered, SignalGenerated},
    frame::Frame,
    report::{
        EventStack, Latency, MAX_THREADS_AT_DEATH, MainThreadSeen, PythonHandler, SignalGroup,
        SignalLogEntry, SignalPeer, SignalTarget, ThreadAtDeath,
    },
};

pub const SIGKILL: i32 = 9;
pub const SIGCHLD: i32 = 17;
pub const SIGINT: i32 = 2;

/// How the main thread was seen while a Python handler waited.
pub const SEEN_AT_DELIVERY: &str = "delivery";
pub const SEEN_SAMPLED: &str = "sample";
pub const SEEN_AT_STOP: &str = "stop";

/// Events kept at each end of the chronological log.
pub const LOG_EDGE: usize = 20;

/// `enum trace_signal_result` (include/trace/events/signal.h).
pub const RESULT_DELIVERED: u32 = 0;
pub const RESULT_IGNORED: u32 = 1;
pub const RESULT_LOSE_INFO: u32 = 4;

pub use crate::report::signal_name;

/// The signal's default action: "term", "core", "ignore", "stop" or "cont".
pub fn default_action(sig: i32) -> &'static str {
    match sig {
        3 | 4 | 5 | 6 | 7 | 8 | 11 | 24 | 25 | 31 => "core",
        17 | 23 | 28 => "ignore",
        19..=22 => "stop",
        18 => "cont",
        _ => "term",
    }
}

/// Whether the default action ends the process (the kernel side's test too).
pub use tracer_common::fatal_by_default;

/// `si_code` by name: the generic SI_* codes, else the signal-specific ones.
pub fn si_code_name(sig: i32, code: i32) -> String {
    let generic = match code {
        0 => Some("SI_USER"),
        0x80 => Some("SI_KERNEL"),
        -1 => Some("SI_QUEUE"),
        -2 => Some("SI_TIMER"),
        -3 => Some("SI_MESGQ"),
        -4 => Some("SI_ASYNCIO"),
        -5 => Some("SI_SIGIO"),
        -6 => Some("SI_TKILL"),
        -7 => Some("SI_DETHREAD"),
        -60 => Some("SI_ASYNCNL"),
        _ => None,
    };
    if let Some(name) = generic {
        return name.to_owned();
    }
    let specific: &[&str] = match sig {
        17 => &[
            "CLD_EXITED",
            "CLD_KILLED",
            "CLD_DUMPED",
            "CLD_TRAPPED",
            "CLD_STOPPED",
            "CLD_CONTINUED",
        ],
        11 => &["SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR"],
        7 => &[
            "BUS_ADRALN",
            "BUS_ADRERR",
            "BUS_OBJERR",
            "BUS_MCEERR_AR",
            "BUS_MCEERR_AO",
        ],
        4 => &[
            "ILL_ILLOPC",
            "ILL_ILLOPN",
            "ILL_ILLADR",
            "ILL_ILLTRP",
            "ILL_PRVOPC",
            "ILL_PRVREG",
            "ILL_COPROC",
            "ILL_BADSTK",
        ],
        8 => &[
            "FPE_INTDIV",
            "FPE_INTOVF",
            "FPE_FLTDIV",
            "FPE_FLTOVF",
            "FPE_FLTUND",
            "FPE_FLTRES",
            "FPE_FLTINV",
            "FPE_FLTSUB",
        ],
        5 => &["TRAP_BRKPT", "TRAP_TRACE", "TRAP_BRANCH", "TRAP_HWBKPT"],
        29 => &[
            "POLL_IN", "POLL_OUT", "POLL_MSG", "POLL_ERR", "POLL_PRI", "POLL_HUP",
        ],
        31 => &["SYS_SECCOMP"],
        _ => &[],
    };
    match usize::try_from(code) {
        Ok(n) if n >= 1 && n <= specific.len() => specific[n - 1].to_owned(),
        _ => format!("code {code}"),
    }
}

/// The kernel's `trace_signal_result` by name. "delivered" means the signal
/// was queued for delivery (the delivery itself is `signal_deliver`).
pub fn result_name(result: u32) -> &'static str {
    match result {
        0 => "delivered",
        1 => "ignored",
        2 => "already_pending",
        3 => "overflow_fail",
        4 => "lose_info",
        _ => "unknown",
    }
}

/// The disposition a delivery ran with.
pub fn disposition(sa_handler: u64) -> &'static str {
    match sa_handler {
        0 => "default",
        1 => "ignored",
        _ => "handler",
    }
}

const SA_FLAGS: [(u64, &str); 10] = [
    (0x1, "SA_NOCLDSTOP"),
    (0x2, "SA_NOCLDWAIT"),
    (0x4, "SA_SIGINFO"),
    (0x400, "SA_UNSUPPORTED"),
    (0x800, "SA_EXPOSE_TAGBITS"),
    (0x0400_0000, "SA_RESTORER"),
    (0x0800_0000, "SA_ONSTACK"),
    (0x1000_0000, "SA_RESTART"),
    (0x4000_0000, "SA_NODEFER"),
    (0x8000_0000, "SA_RESETHAND"),
];

/// `sa_flags` by name; unknown bits as one hex value.
pub fn sa_flags_names(flags: u64) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = flags;
    for (bit, name) in SA_FLAGS {
        if flags & bit != 0 {
            names.push(name.to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        names.push(format!("0x{rest:x}"));
    }
    names
}

/// Nearest-rank percentiles of `values` (need not be sorted).
pub fn latency(values: &[u64]) -> Option<Latency> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = |q: f64| {
        let index = ((q * sorted.len() as f64).ceil() as usize).max(1) - 1;
        sorted[index.min(sorted.len() - 1)]
    };
    Some(Latency {
        p50: rank(0.50),
        p99: rank(0.99),
        max: *sorted.last().unwrap_or(&0),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct GroupKey {
    signo: i32,
    /// None: the kernel generated it.
    sender: Option<(u32, u32)>,
    target_pid: u32,
    target_tid: Option<u32>,
    code: i32,
}

#[derive(Default)]
struct GroupAcc {
    sender_comm: String,
    target_comm: String,
    target_traced: bool,
    syscall: Option<&'static str>,
    generated: u64,
    results: BTreeMap<String, u64>,
    delivered: u64,
    ignored_at_delivery: u64,
    dispositions: BTreeMap<String, u64>,
    last_disposition: Option<&'static str>,
    handler: Option<u64>,
    sa_flags: u64,
    delivered_to: BTreeMap<String, u64>,
    latencies: Vec<u64>,
    killed: u64,
    first_ns: u64,
    last_ns: u64,
    /// Deliveries per Python stack of the receiving thread.
    python_stacks: HashMap<Vec<Frame>, u64>,
    /// The threads of the processes it killed, as they died.
    threads_at_death: Vec<ThreadAtDeath>,
    threads_at_death_left_out: u64,
    /// The Python-level handler deliveries went to (the last one seen).
    python_handler: Option<Frame>,
    /// Its runs, and how long after the delivery each started.
    python_handler_latencies: Vec<u64>,
}

struct Pending {
    group: usize,
    /// Its generation's [`SignalTable::on_generate`] id.
    id: u64,
    ts_ns: u64,
    /// Sent to one thread (tkill/tgkill), or to the whole process.
    tid: Option<u32>,
    sig: i32,
}

/// Accumulates signal events; `finish` turns them into report rows.
#[derive(Default)]
pub struct SignalTable {
    index: HashMap<GroupKey, usize>,
    groups: Vec<(GroupKey, GroupAcc)>,
    /// Queued, not yet delivered, per target process.
    pending: HashMap<u32, VecDeque<Pending>>,
    log_head: Vec<SignalLogEntry>,
    log_tail: VecDeque<SignalLogEntry>,
    log_total: u64,
    /// SIGKILL "deliveries" that only mark a thread of an exiting group.
    pub group_exit_kills: u64,
    /// Per process, deliveries to a Python-level handler that has not run
    /// yet: (group, delivery time, generation id or 0).
    python_pending: HashMap<u32, Vec<(usize, u64, u64)>>,
    /// Generations seen (the last one's id).
    generations: u64,
    /// Per process with a handler waiting: where its main thread was last
    /// seen (time, how, Python stack), for a handler that never runs.
    main_thread_seen: HashMap<u32, (u64, &'static str, Vec<Frame>)>,
    /// Per process, since when the signal-check uprobe sees its checks
    /// (CLOCK_MONOTONIC ns): a handler pending from before may have run
    /// unseen.
    checks_seen_since: HashMap<u32, u64>,
    /// Per process a signal is killing (its delivery to the default
    /// action came): the group, until the process's last thread exits.
    killed_by: HashMap<u32, usize>,
}

impl SignalTable {
    fn group(&mut self, key: GroupKey) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.groups.push((key.clone(), GroupAcc::default()));
        let i = self.groups.len() - 1;
        self.index.insert(key, i);
        i
    }

    /// `--live`: the last `n` entries of the log (oldest first), and how
    /// many there were in all.
    pub fn recent(&self, n: usize) -> (Vec<&SignalLogEntry>, u64) {
        let all: Vec<&SignalLogEntry> = self.log_head.iter().chain(&self.log_tail).collect();
        let skip = all.len().saturating_sub(n);
        (all.into_iter().skip(skip).collect(), self.log_total)
    }

    fn log(&mut self, entry: SignalLogEntry) {
        self.log_total += 1;
        if self.log_head.len() < LOG_EDGE {
            self.log_head.push(entry);
            return;
        }
        if self.log_tail.len() == LOG_EDGE {
            self.log_tail.pop_front();
        }
        self.log_tail.push_back(entry);
    }

    /// A thread of a process a signal is killing, as it dies: its Python
    /// stack, for the post-mortem of the group that killed it. The threads
    /// of a process that exits on its own (`exit_group`) die the same way,
    /// the kernel's SIGKILL, with no group: not a death to tell.
    pub fn on_fatal_stack(
        &mut self,
        tgid: u32,
        tid: u32,
        ts_ns: u64,
        base_ns: u64,
        stack: Vec<Frame>,
    ) {
        let Some(&index) = self.killed_by.get(&tgid) else {
            return;
        };
        let acc = &mut self.groups[index].1;
        if acc.threads_at_death.len() == MAX_THREADS_AT_DEATH {
            acc.threads_at_death_left_out += 1;
            return;
        }
        acc.threads_at_death.push(ThreadAtDeath {
            pid: tgid,
            tid,
            t_s: rel_s(ts_ns, base_ns),
            python_stack: stack,
        });
    }

    /// Process `tgid`'s last thread exited: a later process with its pid
    /// is another one.
    pub fn on_process_gone(&mut self, tgid: u32) {
        self.killed_by.remove(&tgid);
    }

    /// Returns the generation's id (from 1), which its delivery and Python
    /// handler run return too.
    pub fn on_generate(&mut self, g: &SignalGenerated, base_ns: u64) -> u64 {
        self.generations += 1;
        let id = self.generations;
        let kernel = g.syscall.is_none();
        let target_traced = g.target_tgid != 0;
        let target_pid = if target_traced {
            g.target_tgid
        } else {
            g.target_pid
        };
        let target_tid = (!g.group).then_some(g.target_pid);
        let key = GroupKey {
            signo: g.sig,
            sender: (!kernel).then_some((g.tgid, g.tid)),
            target_pid,
            target_tid,
            code: g.code,
        };
        let index = self.group(key);
        let acc = &mut self.groups[index].1;
        if acc.generated == 0 {
            acc.first_ns = g.ts_ns;
        }
        acc.generated += 1;
        acc.last_ns = g.ts_ns;
        acc.sender_comm = if kernel {
            "kernel".to_owned()
        } else {
            g.comm.clone()
        };
        acc.target_comm = g.target_comm.clone();
        acc.target_traced = target_traced;
        acc.syscall = g.syscall.map(|s| s.name());
        *acc.results
            .entry(result_name(g.result).to_owned())
            .or_default() += 1;
        let queued = matches!(g.result, RESULT_DELIVERED | RESULT_LOSE_INFO);
        if queued && target_traced {
            self.pending
                .entry(target_pid)
                .or_default()
                .push_back(Pending {
                    group: index,
                    id,
                    ts_ns: g.ts_ns,
                    tid: target_tid,
                    sig: g.sig,
                });
        }
        self.log(SignalLogEntry {
            t_s: rel_s(g.ts_ns, base_ns),
            event: "generate".into(),
            signal: signal_name(g.sig),
            signo: g.sig,
            sender: Some(sender(g)),
            context_pid: g.tgid,
            target: SignalTarget {
                pid: target_pid,
                tid: target_tid,
                comm: g.target_comm.clone(),
            },
            code: si_code_name(g.sig, g.code),
            result: Some(result_name(g.result).to_owned()),
            disposition: None,
            latency_ns: None,
        });
        id
    }

    /// A delivery; `python_stack`: the receiving thread's Python stack
    /// (symbolized, innermost first), when one was captured. Returns the
    /// id of the generation it delivered, when seen.
    pub fn on_deliver(
        &mut self,
        d: &SignalDelivered,
        base_ns: u64,
        python_stack: Option<Vec<Frame>>,
        python_handler: Option<Frame>,
    ) -> Option<u64> {
        let queue = self.pending.entry(d.tgid).or_default();
        // Signals sent to this thread are taken before those sent to the process.
        let position = queue
            .iter()
            .position(|p| p.sig == d.sig && p.tid == Some(d.tid))
            .or_else(|| queue.iter().position(|p| p.sig == d.sig && p.tid.is_none()));
        let mut matched = position.and_then(|i| queue.remove(i));
        let mut converted = false;
        if matched.is_none() && d.sig == SIGKILL {
            // A fatal signal with the default action makes the kernel kill the
            // whole group: every thread then "delivers" SIGKILL (as it does
            // after exit_group). Pair it with the pending fatal signal, if any.
            let fatal = queue
                .iter()
                .position(|p| fatal_by_default(p.sig) && p.sig != SIGKILL);
            matched = fatal.and_then(|i| queue.remove(i));
            converted = matched.is_some();
            if matched.is_none() {
                self.group_exit_kills += 1;
                return None;
            }
        }
        let id = matched.as_ref().map(|p| p.id);
        let (index, sig, latency_ns) = match matched {
            Some(p) => (p.group, p.sig, Some(d.ts_ns.saturating_sub(p.ts_ns))),
            None => {
                // Generated before tracing started (or its record was lost).
                let key = GroupKey {
                    signo: d.sig,
                    sender: Some((0, 0)),
                    target_pid: d.tgid,
                    target_tid: None,
                    code: d.code,
                };
                let index = self.group(key);
                let acc = &mut self.groups[index].1;
                acc.sender_comm = "(not seen)".into();
                acc.target_traced = true;
                if acc.first_ns == 0 {
                    acc.first_ns = d.ts_ns;
                }
                (index, d.sig, None)
            }
        };
        let disp = if converted {
            "default"
        } else {
            disposition(d.sa_handler)
        };
        let acc = &mut self.groups[index].1;
        acc.delivered += 1;
        acc.last_ns = acc.last_ns.max(d.ts_ns);
        *acc.dispositions.entry(disp.to_owned()).or_default() += 1;
        acc.last_disposition = Some(disp);
        if disp == "handler" {
            acc.handler = Some(d.sa_handler);
        }
        if !converted {
            acc.sa_flags = d.sa_flags;
        }
        if disp == "ignored" {
            acc.ignored_at_delivery += 1;
        }
        let kills = disp == "default" && fatal_by_default(sig);
        if kills {
            acc.killed += 1;
        }
        *acc.delivered_to.entry(d.tid.to_string()).or_default() += 1;
        if let Some(ns) = latency_ns {
            acc.latencies.push(ns);
        }
        if kills {
            self.killed_by.insert(d.tgid, index);
        }
        let acc = &mut self.groups[index].1;
        let delivered_on = python_stack.clone();
        if let Some(frames) = python_stack {
            *acc.python_stacks.entry(frames).or_default() += 1;
        }
        if disp == "handler"
            && let Some(handler) = python_handler
        {
            acc.python_handler = Some(handler);
            self.python_pending
                .entry(d.tgid)
                .or_default()
                .push((index, d.ts_ns, id.unwrap_or(0)));
            // Delivered to the main thread: the line it was on is where the
            // handler waits, until a sample says otherwise.
            if d.tid == d.tgid
                && let Some(frames) = delivered_on
            {
                self.on_main_thread(d.tgid, d.ts_ns, SEEN_AT_DELIVERY, frames);
            }
        }
        let acc = &mut self.groups[index].1;
        let target_comm = acc.target_comm.clone();
        self.log(SignalLogEntry {
            t_s: rel_s(d.ts_ns, base_ns),
            event: "deliver".into(),
            signal: signal_name(sig),
            signo: sig,
            sender: None,
            context_pid: d.tgid,
            target: SignalTarget {
                pid: d.tgid,
                tid: Some(d.tid),
                comm: target_comm,
            },
            code: si_code_name(d.sig, d.code),
            result: None,
            disposition: Some(disp.to_owned()),
            latency_ns,
        });
        id
    }

    /// The signal (and whether it was generated by the kernel) that killed
    /// `tgid`, from the deliveries seen: used when the exit status is unknown.
    pub fn killer_of(&self, tgid: u32) -> Option<i32> {
        self.groups
            .iter()
            .filter(|(key, acc)| key.target_pid == tgid && acc.killed > 0)
            .max_by_key(|(_, acc)| acc.last_ns)
            .map(|(key, _)| key.signo)
    }

    /// Process `pid`'s main thread checked for signals at `ts_ns`: the
    /// Python-level handlers of every delivery before it run now. Returns
    /// those deliveries' generation ids (0: generation not seen) and signals.
    pub fn on_signal_check(&mut self, pid: u32, ts_ns: u64) -> Vec<(u64, i32)> {
        let Some(pending) = self.python_pending.get_mut(&pid) else {
            return Vec::new();
        };
        let mut ran = Vec::new();
        pending.retain(|&(group, delivered_ns, id)| {
            if delivered_ns > ts_ns {
                return true;
            }
            let (key, acc) = &mut self.groups[group];
            acc.python_handler_latencies.push(ts_ns - delivered_ns);
            ran.push((id, key.signo));
            false
        });
        ran
    }

    /// The signal-check uprobe sees process `pid`'s checks from `since_ns`.
    pub fn on_signal_checks_seen(&mut self, pid: u32, since_ns: u64) {
        self.checks_seen_since.entry(pid).or_insert(since_ns);
    }

    /// Process `pid` has a delivery whose Python handler has not run: where
    /// its main thread is matters ([`Self::on_main_thread`]).
    pub fn handler_waits(&self, pid: u32) -> bool {
        self.python_pending.get(&pid).is_some_and(|p| !p.is_empty())
    }

    /// Process `pid`'s main thread was seen at `ts_ns` (`seen`: how) in
    /// `frames`, while a Python handler waited.
    pub fn on_main_thread(&mut self, pid: u32, ts_ns: u64, seen: &'static str, frames: Vec<Frame>) {
        if !self.handler_waits(pid) || frames.is_empty() {
            return;
        }
        let later = self
            .main_thread_seen
            .get(&pid)
            .is_none_or(|(at, _, _)| *at <= ts_ns);
        if later {
            self.main_thread_seen.insert(pid, (ts_ns, seen, frames));
        }
    }

    /// Report rows, busiest first, and the log (first and last events);
    /// times relative to `base_ns`.
    pub fn finish(self, base_ns: u64) -> (Vec<SignalGroup>, Vec<SignalLogEntry>, u64) {
        let mut python_pending_at_end: HashMap<usize, u64> = HashMap::new();
        let mut python_unseen: HashMap<usize, u64> = HashMap::new();
        // Where each group's waiting handler was held up: the main thread as
        // last seen after the group's first delivery still waiting.
        let mut waiting_in: HashMap<usize, MainThreadSeen> = HashMap::new();
        for (pid, pending) in &self.python_pending {
            let seen_since = self.checks_seen_since.get(pid);
            for &(group, delivered_ns, _) in pending {
                // Delivered before the uprobe saw this process's checks: its
                // handler may have run then, unseen; not "never ran".
                if seen_since.is_none_or(|&since| since > delivered_ns) {
                    *python_unseen.entry(group).or_default() += 1;
                    continue;
                }
                *python_pending_at_end.entry(group).or_default() += 1;
                if let Some((at, seen, frames)) = self.main_thread_seen.get(pid)
                    && *at >= delivered_ns
                {
                    waiting_in.entry(group).or_insert_with(|| MainThreadSeen {
                        seen: (*seen).into(),
                        t_s: rel_s(*at, base_ns),
                        python_stack: frames.clone(),
                    });
                }
            }
        }
        let mut pending_at_end: HashMap<usize, u64> = HashMap::new();
        for queue in self.pending.values() {
            for p in queue {
                *pending_at_end.entry(p.group).or_default() += 1;
            }
        }
        let mut rows: Vec<SignalGroup> = self
            .groups
            .into_iter()
            .enumerate()
            .map(|(i, (key, acc))| {
                let ignored = acc
                    .results
                    .get(result_name(RESULT_IGNORED))
                    .copied()
                    .unwrap_or(0)
                    + acc.ignored_at_delivery;
                let disposition = acc.last_disposition.map(str::to_owned).or_else(|| {
                    (acc.generated > 0 && ignored == acc.generated).then(|| "ignored".to_owned())
                });
                SignalGroup {
                    signal: signal_name(key.signo),
                    signo: key.signo,
                    sender: SignalPeer {
                        pid: key.sender.map_or(0, |s| s.0),
                        tid: key.sender.map_or(0, |s| s.1),
                        comm: acc.sender_comm,
                        kernel: key.sender.is_none(),
                        // Once the report is whole: `memory::mark_oom_kills`.
                        oom_killer: false,
                    },
                    target: SignalTarget {
                        pid: key.target_pid,
                        tid: key.target_tid,
                        comm: acc.target_comm,
                    },
                    target_traced: acc.target_traced,
                    code: si_code_name(key.signo, key.code),
                    syscall: acc.syscall.map(str::to_owned),
                    generated: acc.generated,
                    delivered: acc.delivered,
                    ignored,
                    pending_at_end: pending_at_end.get(&i).copied().unwrap_or(0),
                    results: acc.results,
                    disposition,
                    dispositions: acc.dispositions,
                    handler: acc.handler.map(|h| format!("0x{h:x}")),
                    sa_flags: sa_flags_names(acc.sa_flags),
                    delivered_to: acc.delivered_to,
                    killed: acc.killed,
                    latency_ns: latency(&acc.latencies),
                    python_stacks: merge_stacks(
                        acc.python_stacks
                            .into_iter()
                            .map(|(frames, n)| EventStack::new(frames, n)),
                    ),
                    first_ns: acc.first_ns,
                    last_ns: acc.last_ns,
                    first_s: rel_s(acc.first_ns, base_ns),
                    python_handler: acc.python_handler.map(PythonHandler::from),
                    python_handler_runs: acc.python_handler_latencies.len() as u64,
                    python_handler_latency_ns: latency(&acc.python_handler_latencies),
                    python_handler_pending_at_end: python_pending_at_end
                        .get(&i)
                        .copied()
                        .unwrap_or(0),
                    python_handler_unseen: python_unseen.get(&i).copied().unwrap_or(0),
                    python_handler_main_thread: waiting_in.remove(&i),
                    // Once the report is whole: `derive`.
                    story: None,
                    threads_at_death: acc.threads_at_death,
                    threads_at_death_left_out: acc.threads_at_death_left_out,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.generated + b.delivered)
                .cmp(&(a.generated + a.delivered))
                .then(a.signo.cmp(&b.signo))
                .then(a.first_ns.cmp(&b.first_ns))
        });
        let mut log = self.log_head;
        log.extend(self.log_tail);
        (rows, log, self.log_total)
    }
}

fn rel_s(ts_ns: u64, base_ns: u64) -> f64 {
    (ts_ns as f64 - base_ns as f64) / 1e9
}

/// Who sent a signal: its process and thread, or the kernel (pid 0).
pub fn sender(g: &SignalGenerated) -> SignalPeer {
    let kernel = g.syscall.is_none();
    SignalPeer {
        pid: if kernel { 0 } else { g.tgid },
        tid: if kernel { 0 } else { g.tid },
        comm: if kernel {
            "kernel".into()
        } else {
            g.comm.clone()
        },
        kernel,
        oom_killer: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::frame;

    #[test]
    fn names() {
        assert_eq!(si_code_name(10, 0), "SI_USER");
        assert_eq!(si_code_name(10, -6), "SI_TKILL");
        assert_eq!(si_code_name(10, -1), "SI_QUEUE");
        assert_eq!(si_code_name(13, 0x80), "SI_KERNEL");
        assert_eq!(si_code_name(17, 1), "CLD_EXITED");
        assert_eq!(si_code_name(17, 3), "CLD_DUMPED");
        assert_eq!(si_code_name(11, 1), "SEGV_MAPERR");
        assert_eq!(si_code_name(10, 7), "code 7");
        assert_eq!(result_name(0), "delivered");
        assert_eq!(result_name(1), "ignored");
        assert_eq!(result_name(2), "already_pending");
        assert_eq!(result_name(3), "overflow_fail");
        assert_eq!(result_name(4), "lose_info");
        assert_eq!(disposition(0), "default");
        assert_eq!(disposition(1), "ignored");
        assert_eq!(disposition(0x55aa), "handler");
        assert_eq!(
            sa_flags_names(0x0400_0000 | 0x0800_0000 | 0x4),
            ["SA_SIGINFO", "SA_RESTORER", "SA_ONSTACK"]
        );
        assert_eq!(sa_flags_names(0x1_0000_0000), ["0x100000000"]);
        assert!(sa_flags_names(0).is_empty());
        assert!(fatal_by_default(15) && fatal_by_default(11) && fatal_by_default(9));
        assert!(!fatal_by_default(17) && !fatal_by_default(19) && !fatal_by_default(18));
        for sig in 1..=64 {
            let ends = matches!(default_action(sig), "term" | "core");
            assert_eq!(fatal_by_default(sig), ends, "signal {sig}");
        }
    }
    use tracer_common::SendSyscall;

    fn generated(ts: u64, sender: u32, target: u32, sig: i32, result: u32) -> SignalGenerated {
        SignalGenerated {
            ts_ns: ts,
            tgid: sender,
            tid: sender,
            comm: "sender".into(),
            sig,
            errno: 0,
            code: 0,
            target_pid: target,
            target_tgid: target,
            target_comm: "python3".into(),
            group: true,
            result,
            syscall: Some(SendSyscall::Kill),
        }
    }

    fn delivered(ts: u64, tgid: u32, tid: u32, sig: i32, handler: u64) -> SignalDelivered {
        SignalDelivered {
            ts_ns: ts,
            tgid,
            tid,
            sig,
            errno: 0,
            code: 0,
            sa_handler: handler,
            sa_flags: 0x0400_0000,
            py_handler: 0,
            py_handler_code: 0,
            py_frames: Vec::new(),
            native: None,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(latency(&[]), None);
        let one = latency(&[7]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (7, 7, 7));
        let values: Vec<u64> = (1..=100).rev().collect();
        let l = latency(&values).unwrap();
        assert_eq!((l.p50, l.p99, l.max), (50, 99, 100));
        let l = latency(&[10, 20, 30]).unwrap();
        assert_eq!((l.p50, l.p99, l.max), (20, 30, 30));
    }

    #[test]
    fn self_sent_signals_with_a_handler() {
        let mut t = SignalTable::default();
        for i in 0..5u64 {
            t.on_generate(&generated(1000 + i * 100, 10, 10, 10, RESULT_DELIVERED), 0);
            t.on_deliver(
                &delivered(1010 + i * 100, 10, 10, 10, 0x4000),
                0,
                None,
                None,
            );
        }
        let (rows, log, total) = t.finish(0);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (r.generated, r.delivered, r.ignored, r.pending_at_end),
            (5, 5, 0, 0)
        );
        assert_eq!(r.disposition.as_deref(), Some("handler"));
        assert_eq!(r.handler.as_deref(), Some("0x4000"));
        assert_eq!(r.sa_flags, ["SA_RESTORER"]);
        assert_eq!(r.results["delivered"], 5);
        assert_eq!(r.latency_ns.as_ref().unwrap().max, 10);
        assert_eq!(r.delivered_to["10"], 5);
        assert_eq!(r.killed, 0);
        assert_eq!((log.len(), total), (10, 10));
    }

    #[test]
    fn ignored_and_pending_signals() {
        let mut t = SignalTable::default();
        for i in 0..3 {
            t.on_generate(&generated(i, 20, 10, 12, RESULT_IGNORED), 0);
        }
        // Blocked: queued, a second one merges, never delivered.
        t.on_generate(&generated(10, 20, 10, 10, RESULT_DELIVERED), 0);
        t.on_generate(&generated(11, 20, 10, 10, 2), 0);
        let (rows, _, _) = t.finish(0);
        let usr2 = rows.iter().find(|r| r.signo == 12).unwrap();
        assert_eq!((usr2.generated, usr2.ignored, usr2.delivered), (3, 3, 0));
        assert_eq!(usr2.disposition.as_deref(), Some("ignored"));
        assert_eq!(usr2.sender.pid, 20);
        let usr1 = rows.iter().find(|r| r.signo == 10).unwrap();
        assert_eq!((usr1.generated, usr1.pending_at_end), (2, 1));
        assert_eq!(usr1.results["already_pending"], 1);
        assert_eq!(usr1.disposition, None);
    }

    #[test]
    fn thread_directed_signals_are_taken_first_and_latency_is_measured() {
        let mut t = SignalTable::default();
        t.on_generate(&generated(100, 10, 10, 10, RESULT_DELIVERED), 0);
        let mut to_thread = generated(200, 10, 11, 10, RESULT_DELIVERED);
        to_thread.group = false;
        to_thread.target_tgid = 10;
        to_thread.syscall = Some(SendSyscall::Tgkill);
        to_thread.code = -6;
        t.on_generate(&to_thread, 0);
        // Thread 11 takes its own signal first, then the process-wide one.
        t.on_deliver(&delivered(5_000, 10, 11, 10, 0x4000), 0, None, None);
        t.on_deliver(&delivered(9_100, 10, 11, 10, 0x4000), 0, None, None);
        let (rows, _, _) = t.finish(0);
        let tkill = rows.iter().find(|r| r.code == "SI_TKILL").unwrap();
        assert_eq!(tkill.target.tid, Some(11));
        assert_eq!(tkill.latency_ns.as_ref().unwrap().max, 4_800);
        let kill = rows.iter().find(|r| r.code == "SI_USER").unwrap();
        assert_eq!(kill.target.tid, None);
        assert_eq!(kill.latency_ns.as_ref().unwrap().p50, 9_000);
    }

    /// A delivery to a Python handler runs at the main thread's next
    /// signal check; one with no check after it never ran.
    #[test]
    fn python_handler_runs_at_the_next_check() {
        let mut t = SignalTable::default();
        let handler = Some(frame("on_usr1 (/app/main.py:12)"));
        // The uprobe sees process 10's checks from before both deliveries.
        t.on_signal_checks_seen(10, 500);
        t.on_generate(&generated(100, 10, 10, 10, RESULT_DELIVERED), 0);
        t.on_deliver(
            &delivered(1_000, 10, 11, 10, 0x4000),
            0,
            None,
            handler.clone(),
        );
        t.on_signal_check(10, 251_000);
        t.on_generate(&generated(300_000, 10, 10, 12, RESULT_DELIVERED), 0);
        t.on_deliver(&delivered(301_000, 10, 10, 12, 0x4000), 0, None, handler);
        // A check of another process runs nothing here.
        t.on_signal_check(99, 400_000);
        // Where the main thread was while the handler waited: its last
        // sample after the delivery.
        assert!(t.handler_waits(10) && !t.handler_waits(99));
        let in_c = vec![frame("in_c (/app/main.py:40)")];
        t.on_main_thread(10, 500_000_000, SEEN_SAMPLED, in_c.clone());
        t.on_main_thread(
            10,
            400_000_000,
            SEEN_SAMPLED,
            vec![frame("older (/app/main.py:1)")],
        );
        let (rows, _, _) = t.finish(0);
        let usr1 = rows.iter().find(|r| r.signo == 10).unwrap();
        let h = usr1.python_handler.as_ref().unwrap();
        assert_eq!((h.function.as_str(), h.line), ("on_usr1", 12));
        assert_eq!(usr1.python_handler_runs, 1);
        assert_eq!(
            usr1.python_handler_latency_ns.as_ref().unwrap().max,
            250_000
        );
        let usr2 = rows.iter().find(|r| r.signo == 12).unwrap();
        assert_eq!(
            (usr2.python_handler_runs, usr2.python_handler_pending_at_end),
            (0, 1)
        );
        assert!(usr2.python_handler_latency_ns.is_none());
        let waited = usr2.python_handler_main_thread.as_ref().unwrap();
        assert_eq!((waited.seen.as_str(), waited.t_s), (SEEN_SAMPLED, 0.5));
        assert_eq!(waited.python_stack, in_c);
        assert!(usr1.python_handler_main_thread.is_none());
        assert_eq!(usr2.python_handler_unseen, 0);
    }

    /// A handler pending since before the uprobe saw the process's checks
    /// may have run unseen: not "never ran", and no finding says so.
    #[test]
    fn a_handler_pending_from_before_the_probe_is_unseen_not_never_run() {
        let mut t = SignalTable::default();
        let handler = Some(frame("on_usr1 (/app/main.py:12)"));
        t.on_generate(&generated(100, 10, 10, 10, RESULT_DELIVERED), 0);
        t.on_deliver(
            &delivered(1_000, 10, 10, 10, 0x4000),
            0,
            None,
            handler.clone(),
        );
        // Its checks are seen from 2,000 ns: the delivery at 1,000 is before.
        t.on_signal_checks_seen(10, 2_000);
        // A process whose checks were never seen: unseen too.
        t.on_generate(&generated(3_000, 20, 20, 12, RESULT_DELIVERED), 0);
        t.on_deliver(&delivered(4_000, 20, 20, 12, 0x4000), 0, None, handler);
        let (rows, _, _) = t.finish(0);
        for (signo, pid) in [(10, 10), (12, 20)] {
            let row = rows.iter().find(|r| r.signo == signo).unwrap();
            assert_eq!(
                (
                    row.python_handler_runs,
                    row.python_handler_pending_at_end,
                    row.python_handler_unseen
                ),
                (0, 0, 1),
                "pid {pid}"
            );
        }
    }

    #[test]
    fn fatal_default_signal_becomes_a_group_sigkill() {
        let mut t = SignalTable::default();
        t.on_generate(&generated(100, 20, 10, 15, RESULT_DELIVERED), 0);
        // Every thread of the dying group "delivers" SIGKILL.
        t.on_deliver(&delivered(300, 10, 10, SIGKILL, 0), 0, None, None);
        t.on_deliver(&delivered(310, 10, 12, SIGKILL, 0), 0, None, None);
        assert_eq!(t.killer_of(10), Some(15));
        assert_eq!(t.group_exit_kills, 1);
        let (rows, _, _) = t.finish(0);
        assert_eq!(rows.len(), 1);
        let term = &rows[0];
        assert_eq!(term.signal, "SIGTERM");
        assert_eq!((term.delivered, term.killed), (1, 1));
        assert_eq!(term.disposition.as_deref(), Some("default"));
        assert_eq!(term.latency_ns.as_ref().unwrap().p50, 200);
    }

    #[test]
    fn kernel_signals_group_without_a_sender_and_unknown_deliveries_are_kept() {
        let mut t = SignalTable::default();
        for child in [30, 31, 32] {
            let mut g = generated(child as u64, child, 10, SIGCHLD, RESULT_IGNORED);
            g.syscall = None;
            g.code = 1;
            t.on_generate(&g, 0);
        }
        t.on_deliver(&delivered(50, 10, 10, 14, 0x4000), 0, None, None);
        let (rows, log, _) = t.finish(0);
        let chld = rows.iter().find(|r| r.signo == SIGCHLD).unwrap();
        assert!(chld.sender.kernel);
        assert_eq!((chld.sender.pid, chld.sender.comm.as_str()), (0, "kernel"));
        assert_eq!((chld.generated, chld.ignored), (3, 3));
        assert_eq!(chld.code, "CLD_EXITED");
        let alrm = rows.iter().find(|r| r.signo == 14).unwrap();
        assert_eq!((alrm.generated, alrm.delivered), (0, 1));
        assert_eq!(alrm.sender.comm, "(not seen)");
        assert_eq!(log[0].context_pid, 30);
        assert!(log[0].sender.as_ref().unwrap().kernel);
    }

    #[test]
    fn python_stacks_of_deliveries_go_to_their_group() {
        let at =
            |line: u32| Frame::parse(&format!("wait_here (/abs/s.py:{line})")).map(|f| vec![f]);
        let mut t = SignalTable::default();
        // SIGUSR1 from itself (3, two lines) and from another process (1).
        for (i, line) in [9, 9, 12].into_iter().enumerate() {
            let ts = 100 * i as u64;
            t.on_generate(&generated(ts, 10, 10, 10, RESULT_DELIVERED), 0);
            t.on_deliver(&delivered(ts + 1, 10, 10, 10, 0x4000), 0, at(line), None);
        }
        t.on_generate(&generated(1_000, 20, 10, 10, RESULT_DELIVERED), 0);
        t.on_deliver(&delivered(1_001, 10, 10, 10, 0x4000), 0, at(30), None);
        // No stack captured (not a known Python thread): counted, no stack.
        t.on_generate(&generated(2_000, 20, 10, 10, RESULT_DELIVERED), 0);
        t.on_deliver(&delivered(2_001, 10, 10, 10, 0x4000), 0, None, None);
        // A group-exit SIGKILL "delivery" is not a signal of its own.
        t.on_deliver(&delivered(3_000, 10, 11, SIGKILL, 0), 0, at(40), None);
        let (rows, _, _) = t.finish(0);
        let from = |pid: u32| rows.iter().find(|r| r.sender.pid == pid).unwrap();
        let own = &from(10).python_stacks;
        assert_eq!(own.len(), 2);
        assert_eq!((own[0].frames.clone(), own[0].samples), (at(9).unwrap(), 2));
        assert_eq!(
            (own[1].frames.clone(), own[1].samples),
            (at(12).unwrap(), 1)
        );
        let other = from(20);
        assert_eq!(other.delivered, 2);
        assert_eq!(other.python_stacks.len(), 1);
        assert_eq!(other.python_stacks[0].samples, 1);
        assert!(rows.iter().all(|r| r.signo != SIGKILL));
    }

    #[test]
    fn log_keeps_first_and_last() {
        let mut t = SignalTable::default();
        for i in 0..100u64 {
            t.on_generate(&generated(i, 20, 10, 12, RESULT_IGNORED), 0);
        }
        let (_, log, total) = t.finish(0);
        assert_eq!(total, 100);
        assert_eq!(log.len(), 2 * LOG_EDGE);
        assert_eq!(log[0].t_s, 0.0);
        assert_eq!(log[LOG_EDGE].t_s, 80e-9);
        assert_eq!(log.last().unwrap().t_s, 99e-9);
    }

    #[test]
    fn undelivered_ignored_and_fatal_signals_are_findings() {
        let r = crate::report::fixtures::signals_report();
        let found = findings(&r.signals);
        let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "SIGTERM from systemd (pid 1) to python3 (pid 812): 1 of 1 never delivered \
              (blocked, or still pending when the process or the trace ended)"
            ]
        );
        assert_eq!(found[0].kind, "signal_never_delivered");
        assert_eq!(found[0].figures["pending"], 1);
        assert_eq!(found[0].figures["signo"], 15);
        let mut groups = r.signals.clone();
        groups[0].killed = 1;
        groups[0].ignored = groups[0].generated;
        let kinds: Vec<String> = findings(&groups).into_iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                "killed_by_signal",
                "signal_ignored",
                "signal_never_delivered"
            ]
        );
    }
}
