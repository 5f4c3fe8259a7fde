//! Aggregators: events from the ring buffer and rows from the BPF maps go in,
//! report sections come out. One module per concern.

pub mod processes;
pub mod reads;
pub mod sched;
pub mod signals;

use std::{collections::HashMap, time::Instant};

use crate::events::Event;

/// Everything learned from ring buffer events while tracing.
#[derive(Default)]
pub struct Collector {
    pub received: u64,
    pub decode_errors: u64,
    pub first_event: Option<Instant>,
    pub files: reads::FileTable,
    /// Task names seen at exit (key: tid): the name after `exec`, which the
    /// kernel-side per-thread record may predate.
    pub exit_comms: HashMap<u32, String>,
    /// Processes whose whole thread group exited.
    pub exited: Vec<u32>,
    /// Process tree and zombie lifecycle.
    pub processes: processes::ProcessTable,
    /// Signal generation / delivery pairing.
    pub signals: signals::SignalTable,
    /// CLOCK_MONOTONIC ns when tracing started (the kernel's timestamps' clock).
    pub base_ns: u64,
    /// Notes for the report about the trace itself.
    pub warnings: Vec<String>,
    /// The process whose Python stacks are sampled, and its symbolizer.
    pub python_pid: Option<u32>,
    pub python: Option<crate::python::PythonTracer>,
    /// A thread or child appeared: refresh the Python thread map.
    pub python_dirty: bool,
    /// `--count-entries`, and why it is not running if it failed.
    pub count_entries: bool,
    pub entries_error: Option<String>,
}

impl Collector {
    pub fn on_event(&mut self, event: Event) {
        self.received += 1;
        self.first_event.get_or_insert_with(Instant::now);
        match event {
            Event::FileOpened {
                tgid,
                fd,
                file_id,
                path,
                truncated,
            } => {
                let path = if truncated {
                    format!("{path}...")
                } else {
                    path
                };
                self.files.on_opened(tgid, fd, file_id, &path);
            }
            Event::FdDiscovered {
                tgid,
                fd,
                file_id,
                kernel,
            } => self.files.on_discovered(tgid, fd, file_id, kernel),
            Event::ProcessForked {
                parent_tgid,
                child,
                is_thread,
                ts_ns,
                comm,
                ..
            } => {
                // A new thread or child of the Python target: re-read its thread list soon.
                if self.python_pid == Some(parent_tgid) {
                    self.python_dirty = true;
                }
                // Its pid in its own namespace comes with its exit record, or
                // from /proc at the end if it is still there.
                self.processes
                    .on_fork(parent_tgid, child, is_thread, ts_ns, &comm);
            }
            Event::PySample {
                tgid,
                tid,
                frames,
                truncated,
            } => {
                if let Some(python) = self.python.as_mut()
                    && self.python_pid == Some(tgid)
                {
                    python.on_sample(tid, &frames, truncated);
                }
            }
            Event::PyStack { key } => {
                if let Some(python) = self.python.as_mut() {
                    python.note_event_stack(&key);
                }
            }
            Event::PyForkStack {
                tgid,
                child,
                frames,
            } => {
                // A fork's stack, just before the fork record itself.
                if let Some(python) = self.python.as_mut()
                    && let Some(frames) = python.on_fork(tgid, &frames)
                {
                    self.processes.on_spawn_stack(child, frames);
                }
            }
            Event::ProcessExited {
                tgid,
                tid,
                group_dead,
                ts_ns,
                comm,
                status,
                ns_pid,
            } => {
                self.processes
                    .on_exit(tgid, group_dead, ts_ns, &comm, status);
                if let Some(ns_pid) = ns_pid {
                    self.processes.set_ns_pid(tgid, ns_pid);
                }
                self.exit_comms.insert(tid, comm);
                if group_dead {
                    self.exited.push(tgid);
                }
            }
            Event::ProcessExec {
                tgid,
                ts_ns,
                comm,
                argv,
                truncated,
                ..
            } => self.processes.on_exec(tgid, ts_ns, &comm, argv, truncated),
            Event::ProcessFreed { pid, ts_ns } => self.processes.on_freed(pid, ts_ns),
            Event::WaitDone(wait) => self.processes.on_wait(&wait),
            Event::SignalGenerated(g) => {
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
                    self.processes.on_sigchld(g.tgid, parent, g.ts_ns, result);
                }
                self.signals.on_generate(&g, self.base_ns);
            }
            Event::SignalDelivered(d) => {
                // Symbolized now: a signal may end the process (and its code
                // objects) right after.
                let stack = self
                    .python
                    .as_mut()
                    .and_then(|python| python.event_frames(d.tgid, &d.py_frames));
                self.signals.on_deliver(&d, self.base_ns, stack);
            }
        }
    }
}
