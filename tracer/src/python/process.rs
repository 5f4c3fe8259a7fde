//! One Python process: finding its interpreter (a state machine: the
//! command may not have exec'd yet, or may be a wrapper whose child runs
//! Python), then keeping its thread list published to the BPF sampler and
//! symbolizing its frames.
//!
//! What belongs to the interpreter binary (version, build, structure layout:
//! [`Binary`]) is kept apart from what belongs to the process (where it
//! lives, its memory, its threads, its code objects).

use std::collections::{HashMap, HashSet};

use tracer_common::{PyConfig, PyFrameRecord};

use super::{
    PythonError, SUPPORTED,
    discover::{self, DiscoverError, Interpreter},
    layout::{self, LayoutError, Offsets},
    memory::{self, ProcessMemory},
    symbols::{CodeSource, FrameId, Symbols},
    threads,
};
use crate::{frame::Frame, procfs};

/// What is true of an interpreter binary whatever process runs it: its
/// version and build, and the structure layout the sampler walks. (The
/// symbol addresses in `interpreter` are still this process's mapped ones;
/// sharing one `Binary` between processes means keeping only their load
/// address per process.)
pub struct Binary {
    pub interpreter: Interpreter,
    pub offsets: Offsets,
    /// Where the offsets came from (a built-in table, `_Py_DebugOffsets`).
    pub origin: &'static str,
}

/// The interpreter of this process, understood.
pub struct Ready {
    pub binary: Binary,
    pub place: Place,
    memory: ProcessMemory,
    /// `struct pthread` -> tid offset (<= 3.10).
    tid_offset: Option<u64>,
}

/// Where the interpreter's process lives: its root directory and pid
/// namespace, when they are not the tracer's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The directory the process sees as `/` (`/proc/PID/root`), if not `/`.
    pub root: Option<String>,
    /// The process's pid in its own namespace (`NSpid`), if it is in a
    /// namespace below the tracer's: its threads' ids as CPython records
    /// them are then namespace ids, translated to host ids for the sampler.
    pub ns_pid: Option<u32>,
}

impl Place {
    pub fn of(pid: u32) -> Self {
        let ns_pid = procfs::in_child_namespace(pid)
            .then(|| procfs::ns_pid(pid))
            .flatten();
        Self {
            root: procfs::root(pid),
            ns_pid,
        }
    }

    /// `path` (as `/proc/PID/maps` shows it to the tracer) as the process sees it.
    pub fn inside(&self, path: &str) -> String {
        inside_root(self.root.as_deref(), path)
    }
}

/// A host path as a process whose root is `root` sees it: `root` stripped
/// when the path is under it.
pub fn inside_root(root: Option<&str>, path: &str) -> String {
    match root.and_then(|r| path.strip_prefix(r.trim_end_matches('/'))) {
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => path.to_owned(),
    }
}

/// Where the search for the interpreter stands.
pub enum Discovery {
    /// Not found yet (launch mode: the command may not have exec'd yet).
    Searching(String),
    Ready(Box<Ready>),
    /// Found something that will not become usable (and what, if it is an
    /// interpreter of a version or build that is not supported).
    Failed(String, Option<Found>),
}

/// An interpreter found but not usable, and where it is.
pub type Found = Box<(Interpreter, Place)>;

/// What the tracer must change in the BPF maps after a refresh.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ThreadUpdate {
    /// Offsets to publish (first time the interpreter is understood).
    pub config: Option<PyConfig>,
    /// The interpreter just found: (ELF path to open, file offset of
    /// `_PyEval_EvalFrameDefault`) for the entry counter.
    pub eval_frame: Option<(std::path::PathBuf, u64)>,
    pub insert: Vec<(u32, u64)>,
    pub remove: Vec<u32>,
}

pub struct PythonProcess {
    /// The process sampled: `root_pid`, or the child found running Python
    /// when `root_pid` is not Python (a wrapper: `unshare`, `chroot`, `sh -c`).
    pid: u32,
    /// The traced target.
    root_pid: u32,
    /// Children are followed: a Python child of a non-Python target is sampled.
    follow_children: bool,
    /// Capture the stack of 1 in this many reads (0: never).
    read_stack_every: u32,
    discovery: Discovery,
    symbols: Symbols,
    /// tid -> tstate as last written to the BPF map.
    published: HashMap<u32, u64>,
    /// Mapped files searched and found not to hold an interpreter.
    not_python: HashSet<String>,
}

impl PythonProcess {
    pub fn new(pid: u32, read_stack_every: u32, follow_children: bool) -> Self {
        Self {
            pid,
            root_pid: pid,
            follow_children,
            read_stack_every,
            discovery: Discovery::Searching(format!("process {pid} has not been looked at yet")),
            symbols: Symbols::default(),
            published: HashMap::new(),
            not_python: HashSet::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn read_stack_every(&self) -> u32 {
        self.read_stack_every
    }

    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    pub fn ready(&self) -> Option<&Ready> {
        match &self.discovery {
            Discovery::Ready(ready) => Some(ready),
            _ => None,
        }
    }

    /// True once at least one Python thread has been published to the sampler.
    pub fn has_threads(&self) -> bool {
        !self.published.is_empty()
    }

    /// The Python frames of a raw stack of thread group `tgid`, innermost
    /// first, symbolized now (the process and its code objects may be gone
    /// by report time); `None` when it is not this process or its
    /// interpreter is not understood.
    pub fn frames(&mut self, tgid: u32, records: &[PyFrameRecord]) -> Option<Vec<Frame>> {
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        if tgid != self.pid {
            return None;
        }
        Some(self.symbols.frames(&ready.code_source(), records))
    }

    /// [`PythonProcess::frames`], interned: what a sample keeps.
    pub fn frame_ids(&mut self, tgid: u32, records: &[PyFrameRecord]) -> Option<Vec<FrameId>> {
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        if tgid != self.pid {
            return None;
        }
        Some(self.symbols.frame_ids(&ready.code_source(), records))
    }

    pub fn frame(&self, id: FrameId) -> &Frame {
        self.symbols.frame(id)
    }

    /// The function whose code object is at `code` (entry counter keys).
    pub fn function(&mut self, tgid: u32, code: u64) -> Option<Frame> {
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        (tgid == self.pid).then(|| self.symbols.function(&ready.code_source(), code))
    }

    /// Finds the interpreter if not yet known, then re-reads its thread list.
    pub fn refresh(&mut self) -> ThreadUpdate {
        let mut update = ThreadUpdate::default();
        if let Discovery::Searching(_) = self.discovery {
            match self.search() {
                Ok(ready) => {
                    let interpreter = &ready.binary.interpreter;
                    log::info!(
                        "python {} in {} of pid {} (_PyRuntime at {:#x}, offsets: {})",
                        interpreter.version,
                        interpreter.path,
                        self.pid,
                        interpreter.runtime,
                        ready.binary.origin
                    );
                    let mut config = ready.binary.offsets.bpf_config();
                    config.read_stack_every = self.read_stack_every;
                    update.config = Some(config);
                    update.eval_frame = interpreter.eval_frame_file_offset.map(|offset| {
                        (discover::openable_path(self.pid, &interpreter.path), offset)
                    });
                    self.discovery = Discovery::Ready(Box::new(ready));
                }
                Err((reason, None)) if reason.searching => {
                    self.discovery = Discovery::Searching(reason.text);
                    return update;
                }
                Err((reason, found)) => {
                    self.discovery = Discovery::Failed(reason.text, found);
                    return update;
                }
            }
        }
        let Discovery::Ready(ready) = &mut self.discovery else {
            return update;
        };
        self.symbols.new_tick();
        let interpreter = &mut ready.binary.interpreter;
        if !interpreter.version_is_exact()
            && let Some(buffer) = interpreter.version_buffer
            && let Ok(text) = memory::Memory::read_vec(&ready.memory, buffer, 250)
            && let Some(version) = discover::version_from_getversion(&text)
        {
            interpreter.version = version;
        }
        let current = ready.thread_states(self.pid);
        for (&tid, &tstate) in &current {
            if self.published.get(&tid) != Some(&tstate) {
                update.insert.push((tid, tstate));
            }
        }
        for &tid in self.published.keys() {
            if !current.contains_key(&tid) {
                update.remove.push(tid);
            }
        }
        self.published = current;
        update
    }

    /// The target's interpreter; when the target is not Python and children
    /// are followed, the first descendant's that is (switching `pid` to it).
    fn search(&mut self) -> Result<Ready, (NotReady, Option<Found>)> {
        let first = find(self.root_pid, &mut self.not_python);
        let Err((reason, None)) = &first else {
            return first;
        };
        if !reason.searching || !self.follow_children {
            return first;
        }
        let children = procfs::live_descendants(self.root_pid);
        for &child in &children {
            match find(child, &mut self.not_python) {
                Err((next, None)) if next.searching => continue,
                found => {
                    self.pid = child;
                    return found;
                }
            }
        }
        let Err((mut reason, None)) = first else {
            unreachable!("checked above")
        };
        if !children.is_empty() {
            reason.text.push_str(&format!(
                "; nor in its {} followed child process{}",
                children.len(),
                if children.len() == 1 { "" } else { "es" }
            ));
        }
        Err((reason, None))
    }
}

impl Ready {
    fn code_source(&self) -> CodeSource<'_> {
        CodeSource {
            memory: &self.memory,
            offsets: &self.binary.offsets,
            code_type: self.binary.interpreter.code_type,
        }
    }

    /// tid (host) -> `PyThreadState` address of every thread whose kernel
    /// id is known.
    fn thread_states(&mut self, pid: u32) -> HashMap<u32, u64> {
        let mut states = threads::thread_states(
            &self.memory,
            &self.binary.offsets,
            self.binary.interpreter.runtime,
        );
        // CPython knows its threads by the ids they see; in a pid namespace
        // those are not the kernel's (host) ids the sampler is keyed by.
        let own_pid = self.place.ns_pid.unwrap_or(pid);
        threads::resolve_tids(&self.memory, own_pid, &mut states, &mut self.tid_offset);
        if self.place.ns_pid.is_some() {
            let host = procfs::thread_ids(pid);
            for state in &mut states {
                state.tid = state.tid.and_then(|tid| host.get(&tid).copied());
            }
        }
        states
            .iter()
            .filter_map(|s| Some((s.tid?, s.tstate)))
            .collect()
    }
}

/// Why there is no usable interpreter (yet).
pub struct NotReady {
    pub text: String,
    /// Not found yet: keep looking (the command may not have exec'd yet).
    pub searching: bool,
}

/// The interpreter of `pid`, understood; else why not, with the
/// interpreter when one was found but is not supported.
fn find(pid: u32, not_python: &mut HashSet<String>) -> Result<Ready, (NotReady, Option<Found>)> {
    let interpreter = match discover::discover(pid, not_python) {
        Ok(interpreter) => interpreter,
        Err(err) => {
            let searching = matches!(
                err,
                DiscoverError::NotPython { .. } | DiscoverError::Maps { .. }
            );
            let text = PythonError::from(err).to_string();
            return Err((NotReady { text, searching }, None));
        }
    };
    let mut interpreter = interpreter;
    // <= 3.10: the exact version is in Py_GetVersion()'s buffer once `sys`
    // is set up (re-read on every refresh until it is).
    if !interpreter.version_is_exact()
        && let Some(buffer) = interpreter.version_buffer
        && let Ok(text) = memory::Memory::read_vec(&ProcessMemory { pid }, buffer, 250)
        && let Some(version) = discover::version_from_getversion(&text)
    {
        interpreter.version = version;
    }
    let place = Place::of(pid);
    let unsupported = |err: PythonError, interpreter: Interpreter, place: Place| {
        let text = match &err {
            PythonError::Layout(LayoutError::Unsupported(..)) => err.to_string(),
            _ => format!("{err} (supported: {SUPPORTED})"),
        };
        Err((
            NotReady {
                text,
                searching: false,
            },
            Some(Box::new((interpreter, place))),
        ))
    };
    if interpreter.free_threaded {
        return unsupported(LayoutError::FreeThreaded.into(), interpreter, place);
    }
    let memory = ProcessMemory { pid };
    let source = match layout::source_for(interpreter.major, interpreter.minor) {
        Ok(source) => source,
        Err(err) => return unsupported(err.into(), interpreter, place),
    };
    let offsets = match source.offsets(&memory, interpreter.runtime) {
        Ok(offsets) => offsets,
        Err(err) => return unsupported(err.into(), interpreter, place),
    };
    Ok(Ready {
        binary: Binary {
            interpreter,
            offsets,
            origin: source.origin(),
        },
        place,
        memory,
        tid_offset: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_a_chrooted_process_sees_them() {
        let root = Some("/var/cache/tracer-tests/trixie-python3.13");
        assert_eq!(
            inside_root(
                root,
                "/var/cache/tracer-tests/trixie-python3.13/usr/bin/python3.13"
            ),
            "/usr/bin/python3.13"
        );
        // Not under the root (a bind mount, another namespace's view): as is.
        assert_eq!(
            inside_root(root, "/usr/bin/python3.11"),
            "/usr/bin/python3.11"
        );
        // A sibling directory that merely shares the prefix is not inside.
        assert_eq!(
            inside_root(root, "/var/cache/tracer-tests/trixie-python3.13x/lib.so"),
            "/var/cache/tracer-tests/trixie-python3.13x/lib.so"
        );
        assert_eq!(inside_root(Some("/srv/c/"), "/srv/c/app.py"), "/app.py");
        assert_eq!(
            inside_root(None, "/usr/bin/python3.11"),
            "/usr/bin/python3.11"
        );
    }
}
