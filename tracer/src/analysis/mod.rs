//! Aggregators: events from the ring buffer and rows from the BPF maps go in,
//! report sections come out. One module per concern.

pub mod reads;
pub mod sched;

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
            Event::FdDiscovered { tgid, fd, file_id } => {
                self.files.on_discovered(tgid, fd, file_id)
            }
            Event::ProcessForked { parent_tgid, .. } => {
                // A new thread or child of the Python target: re-read its thread list soon.
                if self.python_pid == Some(parent_tgid) {
                    self.python_dirty = true;
                }
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
            Event::ProcessExited {
                tgid,
                tid,
                group_dead,
                comm,
                ..
            } => {
                self.exit_comms.insert(tid, comm);
                if group_dead {
                    self.exited.push(tgid);
                }
            }
        }
    }
}
