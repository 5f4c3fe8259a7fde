//! What the trace knows of the running system: the files' names, the
//! Python processes (their interpreters, symbols and code objects), the
//! native unwind tables, and the system's names, parents and containers.
//! These read other processes and /proc, so they are apart from the
//! [`Collector`](super::Collector)'s tables. The run owns the world and
//! lends it for each event, to the collector and to the mode's figures,
//! and to the session for its refreshes.

use super::{
    Settings,
    native::{self, Native},
    system::System,
};
use crate::{
    events::{Event, NativeStack},
    frame::Frame,
    host::files::table::FileTable,
    native::{NativeMode, NativeStacks},
    python::PythonTree,
};

pub struct World {
    /// Where processes' names, parents and containers are looked up.
    pub system: Box<dyn System>,
    pub files: FileTable,
    /// Every process whose Python stacks are sampled: its interpreter and
    /// symbols (`None`: `--no-python`, or the sampler could not start).
    pub python: Option<PythonTree>,
    /// `--native`: the unwinder's tables and the names of native frames.
    pub native: Option<Native>,
    /// A thread or process of the tree appeared or exec'd: refresh soon.
    pub python_dirty: bool,
    /// The kernel's count of records it could not send when the
    /// kernel-side Python maps were last read (`session/python_refresh.rs`).
    pub unsent_when_python_maps_read: Option<u64>,
}

impl World {
    pub fn new(settings: &Settings, system: Box<dyn System>) -> Self {
        Self {
            system,
            files: FileTable::default(),
            python: None,
            native: (settings.native != NativeMode::Off).then(|| {
                Native::new(NativeStacks::new(
                    crate::native::TABLE_BLOCKS,
                    settings.native,
                ))
            }),
            python_dirty: false,
            unsent_when_python_maps_read: None,
        }
    }

    /// What an event tells of the world: the files' names, the Python
    /// processes to look at (a new thread or child: re-read the thread
    /// lists soon; a child runs its parent's interpreter until it execs; a
    /// new program is looked at afresh).
    pub fn keep_track(&mut self, event: &Event) {
        match event {
            Event::FileOpened {
                tgid,
                fd,
                file_id,
                path,
                truncated,
                kernel,
            } => self
                .files
                .on_opened((*tgid, *fd, *file_id), path, *truncated, *kernel),
            Event::FdDiscovered {
                tgid,
                fd,
                file_id,
                kernel,
            } => self.files.on_discovered(*tgid, *fd, *file_id, *kernel),
            Event::ProcessForked {
                parent_tgid,
                child,
                is_thread,
                ..
            } => {
                if let Some(tree) = self.python.as_mut()
                    && tree.contains(*parent_tgid)
                {
                    if !is_thread {
                        tree.on_fork(*parent_tgid, *child);
                    }
                    self.python_dirty = true;
                }
            }
            Event::ProcessExited {
                tgid,
                group_dead: true,
                ..
            } => {
                if let Some(tree) = self.python.as_mut() {
                    tree.on_exit(*tgid);
                }
            }
            // Its caller needs an answer: see `on_exec`.
            Event::ProcessExec { .. } => {}
            Event::PyCodeNames(record) => {
                if let Some(tree) = self.python.as_mut() {
                    tree.on_copied_names(record);
                }
            }
            Event::PyCodeLines(record) => {
                if let Some(tree) = self.python.as_mut() {
                    tree.on_copied_lines(record);
                }
            }
            _ => {}
        }
    }

    /// The Python frames of a raw stack of process `tgid`, when its
    /// interpreter is known and at least one Python frame was captured.
    pub fn python_frames(
        &mut self,
        tgid: u32,
        records: &[tracer_common::PyFrameRecord],
    ) -> Option<Vec<Frame>> {
        let frames = self.python.as_mut()?.frames(tgid, records)?;
        (!frames.is_empty()).then_some(frames)
    }

    /// A kernel event's frames: with the native stack under them when it
    /// came with one (`--native`), else its Python frames.
    pub fn event_frames(
        &mut self,
        tgid: u32,
        records: &[tracer_common::PyFrameRecord],
        native: Option<&NativeStack>,
    ) -> Option<Vec<Frame>> {
        if let (Some(native), Some(stacks), Some(tree)) =
            (native, self.native.as_mut(), self.python.as_mut())
            && let Some(frames) =
                native::event_frames(tree, stacks, tgid, records, native, &mut self.python_dirty)
        {
            return Some(frames);
        }
        self.python_frames(tgid, records)
    }

    /// Whether `pid` may run Python: sampled (`--no-python` has no lines
    /// to miss), and not found to run a program without an interpreter
    /// (a shell's or a node's other forks are not held for their thread).
    pub fn may_be_python(&self, pid: u32) -> bool {
        self.python
            .as_ref()
            .and_then(|tree| tree.process(pid))
            .is_some_and(|p| !p.not_python())
    }

    /// Process `pid` exec'd `program` at `exec_ns`. Returns whether the
    /// program it ran before was Python: the look that found an interpreter
    /// may have come after the exec, before its record (a launcher's
    /// helpers forked before it exec'd Python are not Python's).
    pub fn on_exec(&mut self, pid: u32, exec_ns: u64, program: &str) -> bool {
        let Some(tree) = self.python.as_mut() else {
            return false;
        };
        self.python_dirty = true;
        tree.on_exec(pid, exec_ns, program)
    }

    /// Whether the interpreter of `pid` was found.
    pub fn is_python(&self, pid: u32) -> bool {
        self.python
            .as_ref()
            .and_then(|tree| tree.process(pid))
            .is_some_and(|p| p.ready().is_some())
    }
}
