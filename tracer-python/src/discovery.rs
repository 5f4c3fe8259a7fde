//! Where the search for one process's interpreter stands ([`Discovery`]),
//! and the look itself (`find`): `interpreter` finds the ELF and its version,
//! `layout` the structure offsets of that build, and a layout found at run
//! time must decode the live interpreter's frames. `process` drives the
//! search and publishes what it finds.
//!
//! What belongs to the interpreter binary (version, build, structure layout:
//! [`Binary`]) is kept apart from what belongs to the process (where it
//! lives: [`Place`], its memory).

use std::collections::HashMap;

use super::{
    PythonError, SUPPORTED,
    interpreter::{self, Binaries, DiscoverError, Interpreter},
    layout::{self, LayoutError, Offsets},
    process_memory::{self, ProcessMemory},
    symbols::CodeSource,
    threads,
};
use crate::host::procfs;

/// What is true of an interpreter binary whatever process runs it: its
/// version and build, and the structure layout the sampler walks. (The
/// symbol addresses in `interpreter` are this process's mapped ones, which
/// the children it forks share; a process that execs the same file is
/// looked at afresh.)
#[derive(Clone)]
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
    pub(super) memory: ProcessMemory,
    /// `struct pthread` -> tid offset (<= 3.10).
    pub(super) tid_offset: Option<u64>,
    /// `PyConfig::tls_to_thread` (its libc's); `None` until its libc is
    /// mapped (see `tls::tls_to_thread`).
    pub(super) tls_to_thread: Option<u32>,
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

impl Ready {
    pub(super) fn code_source(&self) -> CodeSource<'_> {
        CodeSource {
            memory: &self.memory,
            offsets: &self.binary.offsets,
            code_type: self.binary.interpreter.code_type,
        }
    }

    /// The interpreter as the asyncio readers need it.
    pub(super) fn asyncio_interpreter(&self) -> super::asyncio::Interpreter<'_> {
        let interpreter = &self.binary.interpreter;
        super::asyncio::Interpreter {
            memory: &self.memory,
            offsets: &self.binary.offsets,
            minor: interpreter.minor,
            version: &interpreter.version,
            runtime: interpreter.runtime,
        }
    }

    /// Every thread whose kernel (host) id is known.
    pub(super) fn thread_states(&mut self, pid: u32) -> (Vec<KnownThread>, threads::Census) {
        let mut states = threads::thread_states(
            &self.memory,
            &self.binary.offsets,
            self.binary.interpreter.runtime,
        );
        // CPython and libc know threads by the ids they see; in a pid
        // namespace those are not the kernel's (host) ids the sampler is
        // keyed by.
        let own_pid = self.place.ns_pid.unwrap_or(pid);
        let host_of: HashMap<u32, u32> = if self.place.ns_pid.is_some() {
            procfs::thread_ids(pid)
        } else {
            procfs::threads(pid).into_iter().map(|t| (t, t)).collect()
        };
        // Only its own threads: a child forked a moment ago (or by a C
        // server that never runs CPython's after-fork clean-up) still lists
        // its parent's threads, and those are the parent's to publish.
        threads::resolve_tids(
            &self.memory,
            own_pid,
            |tid| host_of.contains_key(&tid),
            &mut states,
            &mut self.tid_offset,
        );
        let named: Vec<(u32, &threads::ThreadState)> = states
            .iter()
            .filter_map(|s| Some((*host_of.get(&s.tid?)?, s)))
            .collect();
        // Whether a state runs a frame is read only where several name
        // one thread (one read more each).
        let mut naming: HashMap<u32, usize> = HashMap::new();
        named
            .iter()
            .for_each(|&(tid, _)| *naming.entry(tid).or_default() += 1);
        let (memory, offsets) = (&self.memory, &self.binary.offsets);
        let candidates = named.into_iter().map(|(tid, s)| {
            let runs_frame = naming[&tid] > 1
                && !threads::frame_addresses(memory, offsets, s.tstate, 1).is_empty();
            (tid, s, (s.native, runs_frame))
        });
        let known: Vec<KnownThread> = threads::one_per_thread(candidates)
            .into_iter()
            .map(|(tid, s)| KnownThread {
                tid,
                tstate: s.tstate,
                pthread: s.pthread,
            })
            .collect();
        let census = threads::Census {
            interpreter_started: !states.is_empty()
                || threads::interpreter_started(
                    &self.memory,
                    &self.binary.offsets,
                    self.binary.interpreter.runtime,
                ),
            states: states.len(),
            own: known.len(),
        };
        (known, census)
    }
}

pub(super) struct KnownThread {
    pub(super) tid: u32,
    pub(super) tstate: u64,
    pub(super) pthread: u64,
}

/// Why there is no usable interpreter (yet).
pub struct NotReady {
    pub text: String,
    /// Not found yet: keep looking (the command may not have exec'd yet).
    pub searching: bool,
    /// Nothing mapped defines an interpreter (not Python, so far).
    pub not_python: bool,
    /// Found, but what it holds may be an interpreter still starting: keep
    /// looking while the process is young, then refuse it.
    pub settling: bool,
}

/// The interpreter of `pid`, understood; else why not, with the
/// interpreter when one was found but is not supported.
pub(super) fn find(pid: u32, binaries: &mut Binaries) -> Result<Ready, (NotReady, Option<Found>)> {
    let interpreter = match interpreter::discover(pid, binaries) {
        Ok(interpreter) => interpreter,
        Err(err) => {
            let searching = matches!(
                err,
                DiscoverError::NotPython { .. } | DiscoverError::Maps { .. }
            );
            let not_python = matches!(err, DiscoverError::NotPython { .. });
            let text = PythonError::from(err).to_string();
            return Err((
                NotReady {
                    text,
                    searching,
                    not_python,
                    settling: false,
                },
                None,
            ));
        }
    };
    let mut interpreter = interpreter;
    // <= 3.10: the exact version is in Py_GetVersion()'s buffer once `sys`
    // is set up (re-read on every refresh until it is).
    if !interpreter.version_is_exact()
        && let Some(buffer) = interpreter.version_buffer
        && let Ok(text) = process_memory::Memory::read_vec(&ProcessMemory::new(pid), buffer, 250)
        && let Some(version) = interpreter::version_from_getversion(&text)
    {
        interpreter.version = version;
    }
    let place = Place::of(pid);
    let unsupported = |err: PythonError, interpreter: Interpreter, place: Place| {
        let text = match &err {
            PythonError::Layout(LayoutError::Unsupported(..) | LayoutError::NotARuntime { .. }) => {
                err.to_string()
            }
            _ => format!("{err} (supported: {SUPPORTED})"),
        };
        Err((
            NotReady {
                text,
                searching: false,
                not_python: false,
                settling: false,
            },
            Some(Box::new((interpreter, place))),
        ))
    };
    let memory = ProcessMemory::new(pid);
    let source = match layout::source_for(interpreter.major, interpreter.minor) {
        Ok(source) => source,
        Err(err) => return unsupported(err.into(), interpreter, place),
    };
    let offsets = match source.offsets(&memory, interpreter.runtime) {
        Ok(offsets) => offsets,
        Err(err) => return unsupported(err.into(), interpreter, place),
    };
    if let Err(err) = runtime_is_plausible(&memory, &offsets, interpreter.runtime) {
        // A starting interpreter's runtime can hold a stray value for a
        // moment; one that could never be a user-space address cannot.
        let settling = !matches!(err, LayoutError::NotARuntime { head } if head >= USER_SPACE_END);
        return match unsupported(err.into(), interpreter, place) {
            Err((reason, found)) => Err((NotReady { settling, ..reason }, found)),
            ok => ok,
        };
    }
    if !layout::is_known_version(interpreter.minor)
        && let Err(why) = frames_decode(&memory, &offsets, &interpreter)
    {
        let err = LayoutError::NotValidated {
            minor: interpreter.minor,
            why,
        };
        return unsupported(err.into(), interpreter, place);
    }
    Ok(Ready {
        binary: Binary {
            interpreter,
            offsets,
            origin: source.origin(),
        },
        place,
        memory,
        tid_offset: None,
        tls_to_thread: super::tls::tls_to_thread(pid),
    })
}

/// The end of user space on x86-64 and arm64 (48-bit addresses): a value
/// at or above it is no pointer of a process.
const USER_SPACE_END: u64 = 0x0000_8000_0000_0000;

/// Any version: the runtime's interpreter list is empty (not started yet)
/// or points to memory the process has. A program that exports a
/// `_PyRuntime` of its own (or garbage) is refused here, before its
/// memory is read as thread states.
fn runtime_is_plausible(
    memory: &ProcessMemory,
    offsets: &Offsets,
    runtime: u64,
) -> Result<(), LayoutError> {
    use super::process_memory::Memory as _;
    let head = memory.read_vec(runtime + offsets.runtime_interpreters_head, 8)?;
    let head = u64::from_ne_bytes(head.try_into().unwrap_or_default());
    if head != 0 && memory.read_vec(head, 8).is_err() {
        return Err(LayoutError::NotARuntime { head });
    }
    Ok(())
}

/// A layout found at run time (a version newer than this tracer) must
/// decode what the interpreter is running: its thread list, and on every
/// thread's current frames a code object of type `PyCode_Type` with a name.
fn frames_decode(
    memory: &ProcessMemory,
    offsets: &Offsets,
    interpreter: &Interpreter,
) -> Result<(), String> {
    let mut states = threads::thread_states(memory, offsets, interpreter.runtime);
    if states.is_empty() {
        return Err("no thread state was found through its interpreter list".into());
    }
    // The main thread's kernel id is the process id (in its namespace);
    // after a fork without CPython's clean-up, libc's record says so.
    let own = procfs::ns_pid(memory.pid).unwrap_or(memory.pid);
    threads::resolve_tids(memory, own, |tid| tid == own, &mut states, &mut None);
    if !states.iter().any(|s| s.tid == Some(own)) {
        return Err(format!(
            "no thread state holds the main thread's id {own} where they say the thread id is"
        ));
    }
    for state in states {
        let frames = threads::walk_frames(memory, offsets, state.tstate, 8);
        for (code, _, _) in frames
            .iter()
            .filter_map(|f| super::symbols::python_frame(offsets, f))
        {
            super::code::read_code(memory, offsets, code, interpreter.code_type).map_err(
                |err| format!("the current frame chain did not decode with them ({err})"),
            )?;
        }
    }
    Ok(())
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
