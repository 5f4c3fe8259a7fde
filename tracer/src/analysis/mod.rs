//! Aggregators: events from the ring buffer go in while tracing
//! ([`Collector::on_event`]); at the end one snapshot of the BPF maps goes
//! in and the whole [`Report`] comes out ([`Collector::finish`]). One module
//! per concern: reads, sched, processes, signals, python.

pub mod asyncio;
pub mod capture;
#[cfg(test)]
mod derived_in_text;
mod dispatch;
pub mod early_forks;
pub mod fd_rows;
mod finish;
pub mod gil;
pub mod hotspots;
pub mod interval;
pub mod io;
pub mod live;
pub mod live_model;
pub mod loops;
pub mod memory;
pub mod memory_growth;
pub mod metrics;
pub mod modes;
pub mod native;
pub mod processes;
pub mod python;
pub mod read_findings;
pub mod requests;
pub mod sample_counts;
pub mod sched;
pub mod signals;
pub mod spawned;
pub mod system;
pub mod timeline;
pub mod world;
pub mod write_findings;
pub mod zombies;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tracer_common::{PyEntryKey, PyEventKey, PyEventValue, drops};

use self::native::SampleFrames;
pub use self::world::World;
use crate::report::format::thousands;
use crate::{
    events::{Event, MapSnapshot},
    native::NativeMode,
    python::PythonTree,
    report::{
        AsyncioTask, Dropped, EventCounts, Finding, Report, SCHEMA_VERSION, SignalLog, Target,
        ThreadNow,
    },
};

/// What the run asked for, as far as analysis is concerned.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// CLOCK_MONOTONIC ns when tracing started (the kernel's timestamps' clock).
    pub base_ns: u64,
    /// Python sampling frequency; `None`: `--no-python`.
    pub python_rate_hz: Option<u64>,
    /// `--count-entries`.
    pub count_entries: bool,
    /// `--perfetto`: keep every read, switch and signal step in time order.
    pub timeline: bool,
    /// `--serve`: only the continuous mode's bounded figures are kept.
    pub continuous: bool,
    /// `--dump`: one look at the processes, nothing traced.
    pub dump: bool,
    /// `--loop-stall`: an event loop iteration this long is a stall (0: none is).
    pub loop_stall_ns: u64,
    /// `--redact-paths`: the continuous mode's path labels under these
    /// are the prefix alone.
    pub redact_paths: Vec<String>,
    /// `--native`: which native frames go under the Python ones.
    pub native: NativeMode,
    /// `--memory-sample`: minor page faults per memory-growth sample
    /// (`None`: not sampled).
    pub fault_period: Option<u64>,
}

/// How the trace ended, as the run saw it.
#[derive(Debug, Default)]
pub struct Ending {
    /// Why tracing stopped ("target exited"...).
    pub stopped: &'static str,
    pub duration: Duration,
    /// CLOCK_MONOTONIC ns at the stop.
    pub end_ns: u64,
    /// Launch mode: how the command ended.
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    /// Why Python sampling could not start, if it could not.
    pub sampler_error: Option<String>,
    /// Why page faults could not be sampled (memory growth), if so.
    pub fault_error: Option<String>,
    /// Minor faults the per-thread fault events counted, and how many
    /// events (`None`: node-wide, or not sampled).
    pub faults_counted: Option<(u64, u64)>,
    /// Notes of the probes (optional programs that did not load...).
    pub warnings: Vec<String>,
}

/// The trace so far in figures a user recognises (the live status line's).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub samples: u64,
    pub signals: u64,
    pub processes: u64,
    pub lost: u64,
}

/// Everything learned from ring buffer events while tracing, in the
/// concerns' tables; what they name it by is the [`World`]'s.
#[derive(Default)]
pub struct Collector {
    settings: Settings,
    received: u64,
    decode_errors: u64,
    /// Python samples whose walk was torn (see `Event::PySample::torn`).
    torn_samples: u64,
    first_event: Option<Instant>,
    /// The traced process as first seen (its name may change at exec).
    target: Target,
    /// Task names seen at exit (key: tid): the name after `exec`, which the
    /// kernel-side per-thread record may predate.
    exit_comms: HashMap<u32, String>,
    /// Process tree and zombie lifecycle.
    processes: processes::ProcessTable,
    /// Signal generation / delivery pairing.
    signals: signals::SignalTable,
    /// The OOM killer's kills of traced processes.
    oom_kills: memory::OomKills,
    /// Sampled page faults: memory growth by Python line.
    memory_growth: memory_growth::MemoryGrowth,
    /// Forks whose thread the sampler did not know yet: no Python line.
    early_forks: early_forks::EarlyForks,
    /// Disposition and mask changes.
    signal_changes: signals::changes::Changes,
    /// Notes for the report about the trace itself.
    warnings: Vec<String>,
    profile: python::Profile,
    /// What the samples said of the GIL.
    gil: gil::GilSamples,
    /// Why `--count-entries` is not running, if it failed.
    entries_error: Option<String>,
    /// Signals generated and processes forked while tracing, for the status line.
    signals_seen: u64,
    processes_seen: u64,
    /// Processes a SIGINT was generated for (a terminal's Ctrl-C).
    sigint_to: std::collections::HashSet<u32>,
    /// `handler` actions whose Python function is read at the next refresh
    /// (CPython fills its handler table right after `sigaction`):
    /// (action index, pid, signal, table reads left).
    actions_to_name: Vec<(usize, u32, i32, u8)>,
    /// Every Python thread's stack when tracing started and stopped.
    threads_at_start: Vec<ThreadNow>,
    threads_at_end: Vec<ThreadNow>,
    /// Every asyncio task then, and why some process's are not listed.
    tasks_at_start: Vec<AsyncioTask>,
    tasks_at_end: Vec<AsyncioTask>,
    asyncio_notes: Vec<String>,
    /// `--perfetto`: events in time order.
    timeline: Option<timeline::Recorder>,
    /// Event loop stalls.
    loops: loops::Loops,
    /// HTTP requests, from their connections' records.
    requests: requests::Requests,
    /// One-off traces: the read rows of closed descriptors.
    closed: fd_rows::ClosedRows,
    /// One-off traces: the scheduling rows of ended threads.
    ended: sched::EndedThreads,
}

/// Where each Python sample is logged at trace level, as it came (its
/// code objects' addresses) and as its process named them: for a check
/// that found a sample in another process's function.
pub const SAMPLES_SAID: &str = "tracer::samples";

/// A Python sample's record and names (`SAMPLES_SAID`).
fn log_sample(tree: &PythonTree, event: &Event, named: Option<&SampleFrames>) {
    let Event::PySample {
        ts_ns,
        tgid,
        tid,
        frames,
        ..
    } = event
    else {
        return;
    };
    let codes: Vec<String> = frames.iter().map(|f| format!("{:x}", f.code)).collect();
    let names: Vec<String> = named
        .map(|n| n.python())
        .unwrap_or_default()
        .into_iter()
        .map(|id| tree.frame(id).function.clone())
        .collect();
    log::trace!(
        target: SAMPLES_SAID,
        "{tgid}/{tid} at {ts_ns}: codes {} named {}",
        codes.join(" "),
        names.join(" ")
    );
}

/// Handler-table reads an action's Python handler is looked for in
/// ([`Collector::read_signal_handlers`]: one a refresh, every 50 ms).
const HANDLER_NAME_READS: u8 = 10;

impl Collector {
    pub fn new(settings: Settings) -> Self {
        Self {
            timeline: settings.timeline.then(timeline::Recorder::new),
            settings,
            ..Self::default()
        }
    }

    /// `world`: what names the event (files, Python processes), which it
    /// may tell of first. `modes`: what the mode keeps besides (the
    /// continuous figures, the capture windows): an event they take in is
    /// not the report's.
    pub fn on_event(&mut self, event: Event, world: &mut World, modes: &mut modes::ModeFigures) {
        // The tracer's own ptrace stops of a launched command (held by its
        // exec, stepped through its loader) tell the tracer by SIGCHLD:
        // nothing the program did.
        if let Event::SignalGenerated(g) = &event
            && (g.sig, g.code) == (libc::SIGCHLD, libc::CLD_TRAPPED)
            && g.target_pid == std::process::id()
        {
            return;
        }
        self.received += 1;
        self.first_event.get_or_insert_with(Instant::now);
        self.keep_track(&event, world);
        if let Event::PyCodeNames(_) | Event::PyCodeLines(_) = event {
            return;
        }
        // A torn walk's frames are not the program's: counted, not shown.
        if let Event::PySample { torn: true, .. } = event {
            self.torn_samples += 1;
            return;
        }
        // Symbolized now, once for every concern that takes it: the
        // process (and its code objects) may be gone by report time.
        let named = match &event {
            Event::PySample { tgid, frames, .. } => world
                .python
                .as_mut()
                .and_then(|tree| SampleFrames::name(tree, *tgid, frames)),
            _ => None,
        };
        if let (Event::PySample { .. }, Some(tree)) = (&event, world.python.as_ref())
            && log::log_enabled!(target: SAMPLES_SAID, log::Level::Trace)
        {
            log_sample(tree, &event, named.as_ref());
        }
        let Some(event) = modes.on_event(event, named.as_ref(), world) else {
            return;
        };
        match event {
            // Kept track of above.
            Event::FileOpened { .. } | Event::FdDiscovered { .. } => {}
            Event::PyCodeNames(_) | Event::PyCodeLines(_) => {}
            Event::FdClosed { tgid, fd, row } => self.closed.on_closed(tgid, fd, &row),
            Event::ThreadExited { tid, stats, .. } => self.ended.on_ended(tid, stats),
            Event::LoopStall {
                tgid,
                tid,
                start_ns,
                end_ns,
                py_frames,
            } => {
                let stack = world.python_frames(tgid, &py_frames);
                let base_ns = self.settings.base_ns;
                self.loops
                    .on_stall((tgid, tid), (start_ns, end_ns), base_ns, stack);
            }
            Event::RequestIo(io) => self.requests.on_io(&io, self.settings.base_ns),
            Event::IoDone(read) => {
                if let Some(timeline) = self.timeline.as_mut() {
                    timeline.on_read(read);
                }
            }
            Event::Switched {
                ts_ns,
                tgid,
                tid,
                out,
                voluntary,
                py_frames,
            } => {
                if self.timeline.is_some() {
                    let stack = if py_frames.is_empty() {
                        None
                    } else {
                        world.python_frames(tgid, &py_frames)
                    };
                    if let Some(timeline) = self.timeline.as_mut() {
                        timeline.on_switch(ts_ns, tgid, tid, out, voluntary, stack);
                    }
                }
            }
            event @ (Event::ProcessForked { .. }
            | Event::PyForkStack { .. }
            | Event::ProcessExited { .. }
            | Event::ProcessExec { .. }
            | Event::ProcessFreed { .. }
            | Event::WaitDone(_)) => self.on_process_event(event, world),
            event @ (Event::PySample { .. } | Event::PyStack { .. }) => {
                self.on_python_event(event, named, world)
            }
            event @ (Event::SignalGenerated(_)
            | Event::SignalAction(_)
            | Event::SignalMask(_)
            | Event::SignalDelivered(_)
            | Event::SignalCheck { .. }
            | Event::SignalFatalStack { .. }
            | Event::OomKill(_)) => self.on_signal_event(event, world),
            // The continuous mode keeps the gauge alone (`metrics`).
            Event::PyFaultSample(_) | Event::HugePageCollapsed { .. }
                if self.settings.continuous => {}
            Event::HugePageCollapsed {
                tgid,
                pages,
                rss_pages,
            } => {
                self.memory_growth
                    .on_huge_page_collapsed(tgid, pages, rss_pages);
            }
            Event::PyFaultSample(fault) => {
                let frames = if fault.torn {
                    None
                } else {
                    world.python_frames(fault.tgid, &fault.frames)
                };
                let period = self.settings.fault_period.unwrap_or(0);
                self.memory_growth.on_fault(&fault, frames, period);
            }
        }
    }

    /// What every mode counts of an event, and what the world learns from
    /// it (an exec: whether the program before it was Python, which a
    /// process's forks held for a Python line were).
    fn keep_track(&mut self, event: &Event, world: &mut World) {
        match event {
            Event::ProcessForked { is_thread, .. } if !is_thread => self.processes_seen += 1,
            Event::ProcessExec {
                tgid,
                ts_ns,
                filename,
                ..
            } => {
                let python = world.on_exec(*tgid, *ts_ns, filename);
                self.early_forks.on_exec(*tgid, python);
            }
            Event::SignalGenerated(_) => self.signals_seen += 1,
            _ => {}
        }
        world.keep_track(event);
    }

    /// What the run asked for.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// When the first event came, if one did.
    pub fn first_event(&self) -> Option<Instant> {
        self.first_event
    }

    /// A ring buffer record that did not decode: counted, and the report
    /// says it is not complete.
    pub fn on_undecodable(&mut self) {
        self.decode_errors += 1;
    }

    /// A note for the report about the trace itself.
    pub fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// Why `--count-entries` is not running, once it failed.
    pub fn entries_error(&self) -> Option<&str> {
        self.entries_error.as_deref()
    }

    pub fn set_entries_error(&mut self, error: String) {
        self.entries_error = Some(error);
    }

    /// The traced process as the report's target (its name may change at
    /// exec), with what it ran.
    pub fn set_target(&mut self, target: Target) {
        self.target = target;
    }

    /// A node-wide trace's scope, as the report names it.
    pub fn set_scope(&mut self, scope: String) {
        self.target.scope = Some(scope);
    }

    /// A process traced from before the trace began: `root`, the target
    /// (the launched command, or `--pid`); else a descendant, or one of a
    /// node-wide trace's. `threads`: besides its main thread.
    pub fn add_process(
        &mut self,
        world: &mut World,
        (pid, ppid): (u32, u32),
        (comm, argv): (&str, &[String]),
        threads: u32,
        root: bool,
    ) {
        let system = world.system.as_mut();
        match root {
            true => self
                .processes
                .add_root(system, pid, ppid, comm, argv, threads),
            false => self
                .processes
                .add_existing(system, pid, ppid, comm, argv, threads),
        }
    }

    /// A child that was a zombie before tracing started.
    pub fn add_zombie(&mut self, zombie: &crate::host::procfs::FoundZombie) {
        self.processes
            .add_preexisting_zombie(zombie, self.settings.base_ns);
    }

    /// The kernel's maps were read: the descriptors' and threads' records
    /// from now on may be in the snapshot too.
    pub fn after_snapshot(&mut self) {
        self.closed.after_snapshot();
        self.ended.after_snapshot();
    }

    /// What the live status line shows.
    pub fn progress(&self, modes: &modes::ModeFigures, lost: u64) -> Progress {
        Progress {
            samples: self.profile.samples() + modes.samples(),
            signals: self.signals_seen,
            // The target and every process it forked.
            processes: 1 + self.processes_seen,
            lost,
        }
    }

    /// Whether a SIGINT was generated for process `pid` while tracing.
    pub fn got_sigint(&self, pid: u32) -> bool {
        self.sigint_to.contains(&pid)
    }

    /// Reads every Python process's signal handler table (what changed
    /// since the last read), then names the Python functions that the
    /// `handler` actions seen since the last call installed.
    /// Returns the sampler configs to publish again (a table just found).
    pub fn read_signal_handlers(
        &mut self,
        world: &mut World,
    ) -> Vec<(u32, tracer_common::PyConfig)> {
        let Some(tree) = world.python.as_mut() else {
            return Vec::new();
        };
        let configs = tree.read_signal_handlers();
        // A change made before the table was found waits for it (CPython
        // sets `signal`'s own handlers during start-up, before the tracer
        // may have looked).
        let signal_changes = &mut self.signal_changes;
        self.actions_to_name
            .retain_mut(|(index, pid, sig, reads_left)| {
                if tree.handler_table_pending(*pid) {
                    return true;
                }
                if let Some(handler) = tree.known_signal_handler(*pid, *sig) {
                    signal_changes.on_python_handler(*index, handler);
                    return false;
                }
                // Read between the `sigaction` and CPython's own write of its
                // table (the target preempted in between, by the tracer woken
                // for the record): the next reads will see it, while the
                // process lives. A C handler never shows: given up on.
                *reads_left = reads_left.saturating_sub(1);
                *reads_left > 0 && !tree.exited(*pid)
            });
        configs
    }

    /// Every known Python thread's stack now, with its state: at the start
    /// of tracing, then (`at_end`) when it stops, before anything is detached.
    pub fn snapshot_threads(&mut self, world: &mut World, at_end: bool) {
        let Some(tree) = world.python.as_mut() else {
            return;
        };
        let now = python::threads_now(tree, world.system.as_ref());
        let (tasks, notes) = asyncio::tasks_now(tree, self.settings.dump);
        self.asyncio_notes.extend(notes);
        if at_end {
            self.threads_at_end = now;
            self.tasks_at_end = tasks;
        } else {
            self.threads_at_start = now;
            self.tasks_at_start = tasks;
        }
    }

    /// The signal-check uprobe sees process `pid`'s checks from `since_ns`:
    /// a Python handler pending since before then may have run unseen.
    pub fn on_signal_checks_seen(&mut self, pid: u32, since_ns: u64) {
        self.signals.on_signal_checks_seen(pid, since_ns);
    }

    /// Counts of the kernel-side Python maps read while tracing: new stacks
    /// are symbolized while the process is alive.
    pub fn on_python_maps(
        &mut self,
        world: &mut World,
        event_stacks: &[(PyEventKey, PyEventValue)],
        entries: &[(PyEntryKey, u64)],
    ) {
        let Some(tree) = world.python.as_mut() else {
            return;
        };
        self.profile.on_event_stacks(tree, event_stacks);
        self.profile.on_entries(tree, entries);
    }
}

/// What the whole report says beyond its sections' own figures: which
/// signal changes are notable, the story of each signal that matters, the
/// line that spawned each process, then its findings. Run once the sections
/// are filled (by `finish`, or by a test building a report by hand).
pub fn derive(report: &mut Report) {
    signals::changes::mark_notable(report);
    signals::stories::tell(report);
    spawned::mark(report);
    memory::mark_oom_kills(report);
    report.findings = findings(report);
}

/// Everything in the report that deserves attention, section by section.
pub fn findings(report: &Report) -> Vec<Finding> {
    let mut all = read_findings::findings(&report.reads);
    all.extend(write_findings::findings(report));
    all.extend(processes::findings(report));
    all.extend(signals::findings(&report.signals));
    all.extend(signals::changes::findings(report));
    all.extend(memory::findings(&report.memory.oom_kills));
    all.extend(loops::findings(&report.event_loops));
    all.extend(gil::findings(report));
    all
}
