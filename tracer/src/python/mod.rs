//! Python frames: find the interpreter in the target, publish its threads'
//! `PyThreadState` addresses to the BPF sampler, and turn the sampled raw
//! stacks (code-object pointers + instruction positions) into functions,
//! files and lines by reading the target's memory.

pub mod code;
pub mod discover;
pub mod layout;
pub mod memory;
pub mod threads;

#[cfg(test)]
mod snapshot_tests;

use std::{
    collections::{BTreeMap, HashMap},
    rc::Rc,
};

use code::CodeInfo;
use discover::{DiscoverError, Interpreter};
use layout::{LayoutError, Offsets};
use memory::ProcessMemory;

use tracer_common::{PyEntryKey, PyEventKey, PyEventValue, py_event};

use crate::report::{
    Entries, EventStack, Hotspot, LineHotspot, Python, PythonFrame, PythonStack, PythonThread,
    merge_stacks,
};

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The CPython versions this tracer samples, for messages.
pub const SUPPORTED: &str = "CPython 3.8 to 3.14 (default builds, with the GIL)";

/// One interpreter found and understood.
pub struct Ready {
    pub interpreter: Interpreter,
    pub place: Place,
    pub offsets: Offsets,
    pub origin: &'static str,
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
        let root = std::fs::read_link(format!("/proc/{pid}/root"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|r| r != "/");
        let ns_pid = crate::nspid::in_child_namespace(pid)
            .then(|| crate::nspid::ns_pid(pid))
            .flatten();
        Self { root, ns_pid }
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

enum State {
    /// Not found yet (launch mode: the command may not have exec'd yet).
    Searching(String),
    Ready(Box<Ready>),
    /// Found something that will not become usable (and what, if it is an
    /// interpreter of a version or build that is not supported).
    Failed(String, Option<Found>),
}

/// An interpreter found but not usable, and where it is.
type Found = Box<(Interpreter, Place)>;

/// Raw stack: (index into `PythonTracer::infos`, raw instruction value), innermost first.
type RawStack = Vec<(usize, u64)>;

/// What is cached per code-object address: the fields that identify the
/// object (a freed code object's address is soon reused by another one) and
/// the index of its symbolized form.
struct CodeEntry {
    identity: Vec<u8>,
    info: usize,
}

pub struct PythonTracer {
    /// The process sampled: `root_pid`, or the child found running Python
    /// when `root_pid` is not Python (a wrapper: `unshare`, `chroot`, `sh -c`).
    pid: u32,
    /// The traced target.
    root_pid: u32,
    /// Children are followed: a Python child of a non-Python target is sampled.
    follow_children: bool,
    state: State,
    codes: HashMap<u64, CodeEntry>,
    /// Symbolized code objects (None: unreadable), with their address.
    infos: Vec<(u64, Option<Rc<CodeInfo>>)>,
    /// Addresses whose identity was checked since the last refresh tick.
    checked: std::collections::HashSet<u64>,
    stacks: HashMap<(u32, RawStack), u64>,
    samples: u64,
    truncated: u64,
    /// tid -> tstate as last written to the BPF map.
    published: HashMap<u32, u64>,
    /// Capture the stack of 1 in this many reads (0: never).
    read_stack_every: u32,
    /// Kernel-event stacks: symbolized when first seen, latest counts.
    event_stacks: HashMap<PyEventKey, (RawStack, PyEventValue)>,
    /// fork / clone calls per stack (every one: one record per fork).
    forks: HashMap<RawStack, u64>,
    /// `--count-entries`: code address -> (symbol index, latest count).
    entries: HashMap<u64, (usize, u64)>,
}

/// What the tracer must change in the BPF maps after a refresh.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ThreadUpdate {
    /// Offsets to publish (first time the interpreter is understood).
    pub config: Option<tracer_common::PyConfig>,
    /// The interpreter just found: (ELF path to open, file offset of
    /// `_PyEval_EvalFrameDefault`) for the entry counter.
    pub eval_frame: Option<(std::path::PathBuf, u64)>,
    pub insert: Vec<(u32, u64)>,
    pub remove: Vec<u32>,
}

impl PythonTracer {
    pub fn new(pid: u32, read_stack_every: u32, follow_children: bool) -> Self {
        Self {
            pid,
            root_pid: pid,
            follow_children,
            state: State::Searching(format!("process {pid} has not been looked at yet")),
            codes: HashMap::new(),
            infos: Vec::new(),
            checked: Default::default(),
            stacks: HashMap::new(),
            samples: 0,
            truncated: 0,
            published: HashMap::new(),
            read_stack_every,
            event_stacks: HashMap::new(),
            forks: HashMap::new(),
            entries: HashMap::new(),
        }
    }

    /// Symbolizes raw frames of this process now (its code objects may be
    /// gone by report time); frames that are not Python code are left out.
    fn symbolize(&mut self, frames: &[tracer_common::PyFrameRecord]) -> RawStack {
        let State::Ready(ready) = &self.state else {
            return Vec::new();
        };
        frames
            .iter()
            .filter_map(|f| python_frame(&ready.offsets, f))
            .map(|(code, instr)| {
                let index = code_index(
                    ready,
                    &mut self.codes,
                    &mut self.infos,
                    &mut self.checked,
                    code,
                );
                (index, instr)
            })
            .collect()
    }

    /// `"func (file:line)"` for each frame of a raw stack.
    fn stack_text(&self, raw: &RawStack) -> Vec<String> {
        raw.iter()
            .map(|&(index, instr)| self.frame_text(index, instr))
            .collect()
    }

    /// One fork / clone by a thread of process `tgid`: counted per stack
    /// for `python.forks`. Returns the stack as text, innermost first, for
    /// the child's records; `None` when it is not this process or no
    /// Python frame was captured.
    pub fn on_fork(
        &mut self,
        tgid: u32,
        frames: &[tracer_common::PyFrameRecord],
    ) -> Option<Vec<String>> {
        if tgid != self.pid {
            return None;
        }
        let raw = self.symbolize(frames);
        if raw.is_empty() {
            return None;
        }
        let text = self.stack_text(&raw);
        *self.forks.entry(raw).or_default() += 1;
        Some(text)
    }

    /// The Python stack a kernel event of thread-group `tgid` carried
    /// (signal deliveries), as text, innermost first; `None` when it is not
    /// this process or no Python frame was captured.
    pub fn event_frames(
        &mut self,
        tgid: u32,
        frames: &[tracer_common::PyFrameRecord],
    ) -> Option<Vec<String>> {
        if tgid != self.pid || frames.is_empty() {
            return None;
        }
        let raw = self.symbolize(frames);
        (!raw.is_empty()).then(|| self.stack_text(&raw))
    }

    /// Rows of `PY_ENTRIES` (cumulative): symbolizes new code objects.
    pub fn on_entries(&mut self, rows: &[(PyEntryKey, u64)]) {
        let State::Ready(ready) = &self.state else {
            return;
        };
        for (key, count) in rows {
            if key.tgid != self.pid {
                continue;
            }
            let code = if ready.offsets.code_is_stackref {
                key.code & !7
            } else {
                key.code
            };
            if let Some(entry) = self.entries.get_mut(&code) {
                entry.1 = *count;
                continue;
            }
            let index = code_index(
                ready,
                &mut self.codes,
                &mut self.infos,
                &mut self.checked,
                code,
            );
            self.entries.insert(code, (index, *count));
        }
    }

    /// Entries per function, most first.
    pub fn entries_report(&self) -> Vec<Entries> {
        let mut by_fn: BTreeMap<(String, String, String, u32), u64> = BTreeMap::new();
        for &(index, count) in self.entries.values() {
            let key = match &self.infos[index] {
                (_, Some(info)) => (
                    info.qualname.clone(),
                    info.name.clone(),
                    info.filename.clone(),
                    info.firstlineno,
                ),
                (code, None) => (
                    format!("<code {code:#x}>"),
                    format!("<code {code:#x}>"),
                    "?".into(),
                    0,
                ),
            };
            *by_fn.entry(key).or_default() += count;
        }
        let mut out: Vec<Entries> = by_fn
            .into_iter()
            .map(|((qualname, function, file, line), entries)| Entries {
                function,
                qualname,
                file,
                line,
                entries,
            })
            .collect();
        out.sort_by(|a, b| b.entries.cmp(&a.entries).then(a.qualname.cmp(&b.qualname)));
        out.truncate(100);
        out
    }

    /// Rows of `PY_EVENT_STACKS` (cumulative counts): symbolizes the stacks
    /// not seen before, while the process is alive.
    pub fn on_event_stacks(&mut self, rows: &[(PyEventKey, PyEventValue)]) {
        let State::Ready(ready) = &self.state else {
            return;
        };
        for (key, value) in rows {
            if key.tgid != self.pid {
                continue;
            }
            if let Some(entry) = self.event_stacks.get_mut(key) {
                entry.1 = *value;
                continue;
            }
            let mut frames = Vec::new();
            for (code, instr) in key
                .frames
                .iter()
                .filter_map(|f| python_frame(&ready.offsets, f))
            {
                let index = code_index(
                    ready,
                    &mut self.codes,
                    &mut self.infos,
                    &mut self.checked,
                    code,
                );
                frames.push((index, instr));
            }
            self.event_stacks.insert(*key, (frames, *value));
        }
    }

    /// A stack sent by the kernel side: symbolize it now (counts come with
    /// the next read of the map).
    pub fn note_event_stack(&mut self, key: &PyEventKey) {
        if key.kind == py_event::ENTRY {
            let code = key.frames[0].code;
            let masked = self.ready().map_or(code, |r| {
                if r.offsets.code_is_stackref {
                    code & !7
                } else {
                    code
                }
            });
            if !self.entries.contains_key(&masked) {
                let entry = PyEntryKey {
                    tgid: key.tgid,
                    _pad: 0,
                    code,
                };
                self.on_entries(&[(entry, 0)]);
            }
            return;
        }
        if !self.event_stacks.contains_key(key) {
            self.on_event_stacks(&[(*key, PyEventValue::default())]);
        }
    }

    /// `"func (file:line)"` for a symbolized frame.
    fn frame_text(&self, index: usize, instr: u64) -> String {
        let Some(ready) = self.ready() else {
            return String::new();
        };
        match &self.infos[index] {
            (_, Some(info)) => format!(
                "{} ({}:{})",
                info.qualname,
                info.filename,
                info.line_at(ready.offsets.instr_kind, instr).unwrap_or(0)
            ),
            (code, None) => format!("<code {code:#x}> (?:0)"),
        }
    }

    /// Read stacks per file_id, the off-CPU stacks and the fork stacks.
    pub fn event_report(&self) -> EventReport {
        let mut reads: HashMap<u64, Vec<EventStack>> = HashMap::new();
        let mut off_cpu: BTreeMap<Vec<String>, EventStack> = BTreeMap::new();
        for (key, (frames, value)) in &self.event_stacks {
            let texts = self.stack_text(frames);
            if key.kind == py_event::READ {
                let list = reads.entry(key.file_id).or_default();
                match list.iter_mut().find(|s| s.frames == texts) {
                    Some(stack) => stack.samples += value.count,
                    None => list.push(EventStack {
                        frames: texts,
                        samples: value.count,
                        off_cpu_ns: 0,
                    }),
                }
            } else if key.kind == py_event::OFF_CPU {
                let stack = off_cpu.entry(texts.clone()).or_insert_with(|| EventStack {
                    frames: texts,
                    ..EventStack::default()
                });
                stack.samples += value.count;
                stack.off_cpu_ns += value.off_cpu_ns;
            }
        }
        for list in reads.values_mut() {
            list.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.frames.cmp(&b.frames)));
        }
        let mut off_cpu: Vec<EventStack> = off_cpu.into_values().collect();
        off_cpu.sort_by(|a, b| {
            b.off_cpu_ns
                .cmp(&a.off_cpu_ns)
                .then(a.frames.cmp(&b.frames))
        });
        let forks = merge_stacks(
            self.forks
                .iter()
                .map(|(raw, &count)| (self.stack_text(raw), count)),
        );
        EventReport {
            reads,
            off_cpu,
            forks,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn read_stack_every(&self) -> u32 {
        self.read_stack_every
    }

    /// True once at least one Python thread has been published to the sampler.
    pub fn has_threads(&self) -> bool {
        !self.published.is_empty()
    }

    pub fn ready(&self) -> Option<&Ready> {
        match &self.state {
            State::Ready(ready) => Some(ready),
            _ => None,
        }
    }

    /// Finds the interpreter if not yet known, then re-reads its thread list.
    pub fn refresh(&mut self) -> ThreadUpdate {
        let mut update = ThreadUpdate::default();
        if let State::Searching(_) = self.state {
            match self.search() {
                Ok(ready) => {
                    log::info!(
                        "python {} in {} of pid {} (_PyRuntime at {:#x}, offsets: {})",
                        ready.interpreter.version,
                        ready.interpreter.path,
                        self.pid,
                        ready.interpreter.runtime,
                        ready.origin
                    );
                    let mut config = ready.offsets.bpf_config();
                    config.read_stack_every = self.read_stack_every;
                    update.config = Some(config);
                    update.eval_frame = ready.interpreter.eval_frame_file_offset.map(|offset| {
                        (
                            discover::openable_path(self.pid, &ready.interpreter.path),
                            offset,
                        )
                    });
                    self.state = State::Ready(Box::new(ready));
                }
                Err((reason, None)) if reason.searching => {
                    self.state = State::Searching(reason.text);
                    return update;
                }
                Err((reason, found)) => {
                    self.state = State::Failed(reason.text, found);
                    return update;
                }
            }
        }
        let State::Ready(ready) = &mut self.state else {
            return update;
        };
        self.checked.clear();
        if !ready.interpreter.version_is_exact()
            && let Some(buffer) = ready.interpreter.version_buffer
            && let Ok(text) = memory::Memory::read_vec(&ready.memory, buffer, 250)
            && let Some(version) = discover::version_from_getversion(&text)
        {
            ready.interpreter.version = version;
        }
        let mut states =
            threads::thread_states(&ready.memory, &ready.offsets, ready.interpreter.runtime);
        // CPython knows its threads by the ids they see; in a pid namespace
        // those are not the kernel's (host) ids the sampler is keyed by.
        let own_pid = ready.place.ns_pid.unwrap_or(self.pid);
        threads::resolve_tids(&ready.memory, own_pid, &mut states, &mut ready.tid_offset);
        if ready.place.ns_pid.is_some() {
            let host = crate::nspid::thread_ids(self.pid);
            for state in &mut states {
                state.tid = state.tid.and_then(|tid| host.get(&tid).copied());
            }
        }
        let current: HashMap<u32, u64> = states
            .iter()
            .filter_map(|s| Some((s.tid?, s.tstate)))
            .collect();
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
        let first = find(self.root_pid);
        let Err((reason, None)) = &first else {
            return first;
        };
        if !reason.searching || !self.follow_children {
            return first;
        }
        let children = crate::target::live_descendants(self.root_pid);
        for &child in &children {
            match find(child) {
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

    /// One sampled stack (raw frames from BPF, innermost first).
    pub fn on_sample(
        &mut self,
        tid: u32,
        frames: &[tracer_common::PyFrameRecord],
        truncated: bool,
    ) {
        let State::Ready(ready) = &self.state else {
            return;
        };
        let o = &ready.offsets;
        let mut stack = Vec::with_capacity(frames.len());
        for (code, instr) in frames.iter().filter_map(|f| python_frame(o, f)) {
            // Symbolize now: the process (and its code objects) may be gone by report time.
            let info = code_index(
                ready,
                &mut self.codes,
                &mut self.infos,
                &mut self.checked,
                code,
            );
            stack.push((info, instr));
        }
        self.samples += 1;
        self.truncated += u64::from(truncated);
        *self.stacks.entry((tid, stack)).or_insert(0) += 1;
    }

    pub fn report(&self, rate_hz: u64) -> Python {
        let mut report = Python {
            rate_hz,
            ..Python::default()
        };
        match &self.state {
            State::Searching(reason) => {
                report.status = "unavailable".into();
                report.reason = Some(reason.clone());
                return report;
            }
            State::Failed(reason, found) => {
                report.status = "unavailable".into();
                report.reason = Some(reason.clone());
                if let Some(found) = found {
                    describe(&mut report, self.pid, &found.0, &found.1);
                }
                return report;
            }
            State::Ready(ready) => {
                report.status = "sampled".into();
                describe(&mut report, self.pid, &ready.interpreter, &ready.place);
                report.layout = Some(ready.origin.into());
            }
        }
        let Some(ready) = self.ready() else {
            return report;
        };
        let mut stacks = Vec::new();
        for ((tid, raw), &count) in &self.stacks {
            let mut frames = Vec::with_capacity(raw.len());
            for &(index, instr) in raw {
                let (code, info) = &self.infos[index];
                match info {
                    Some(info) => frames.push(Symbol {
                        function: info.qualname.clone(),
                        name: info.name.clone(),
                        file: info.filename.clone(),
                        first_line: info.firstlineno,
                        line: info.line_at(ready.offsets.instr_kind, instr).unwrap_or(0),
                    }),
                    None => {
                        report.unresolved_frames += count;
                        frames.push(Symbol::unknown(*code));
                    }
                }
            }
            stacks.push((*tid, frames, count));
        }
        report.samples = self.samples;
        report.truncated = self.truncated;
        fill(&mut report, &stacks);
        report
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
fn find(pid: u32) -> Result<Ready, (NotReady, Option<Found>)> {
    let interpreter = match discover::discover(pid) {
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
        interpreter,
        place,
        offsets,
        origin: source.origin(),
        memory,
        tid_offset: None,
    })
}

/// The interpreter's description in the report: what it is and where.
fn describe(report: &mut Python, pid: u32, interpreter: &Interpreter, place: &Place) {
    report.pid = Some(pid);
    report.version = Some(interpreter.version.clone());
    report.binary = Some(place.inside(&interpreter.path));
    report.root = place.root.clone();
    report.linkage = Some(
        if interpreter.shared {
            "shared"
        } else {
            "static"
        }
        .into(),
    );
    report.debug_build = interpreter.debug_build;
    report.free_threaded = interpreter.free_threaded;
}

/// The bytes of a code object that tell one object from another at the same
/// address (see [`identity_of`]), read in one go; empty when unreadable.
fn code_identity(ready: &Ready, code: u64) -> Vec<u8> {
    let fields = identity_fields(&ready.offsets);
    let end = fields
        .iter()
        .map(|&(off, len)| off + len)
        .max()
        .unwrap_or(0);
    match memory::Memory::read_vec(&ready.memory, code, end as usize) {
        Ok(prefix) => identity_of(&prefix, &fields),
        Err(_) => Vec::new(),
    }
}

/// (offset, length) of the fields that identify a code object: its type,
/// first line and name, filename, line-table and qualname pointers. Not
/// the reference count nor the interpreter's own counters in between,
/// which change all the time.
fn identity_fields(o: &Offsets) -> Vec<(u64, u64)> {
    let mut fields = vec![(code::OB_TYPE, 8), (o.code_firstlineno, 4)];
    let pointers = [
        Some(o.code_name),
        Some(o.code_filename),
        Some(o.code_linetable),
        o.code_qualname,
    ];
    fields.extend(pointers.into_iter().flatten().map(|off| (off, 8)));
    fields
}

/// The identifying fields out of the first bytes of a code object.
fn identity_of(prefix: &[u8], fields: &[(u64, u64)]) -> Vec<u8> {
    fields
        .iter()
        .filter_map(|&(off, len)| prefix.get(off as usize..(off + len) as usize))
        .flatten()
        .copied()
        .collect()
}

/// Index of the symbolized code object now at `code`. Re-checks the
/// object's identity once per refresh tick (one read) and re-reads it when
/// the address now holds another object.
fn code_index(
    ready: &Ready,
    codes: &mut HashMap<u64, CodeEntry>,
    infos: &mut Vec<(u64, Option<Rc<CodeInfo>>)>,
    checked: &mut std::collections::HashSet<u64>,
    code: u64,
) -> usize {
    if let Some(entry) = codes.get(&code)
        && checked.contains(&code)
    {
        return entry.info;
    }
    let identity = code_identity(ready, code);
    checked.insert(code);
    // Unreadable now (the process has exited): trust what was read while it ran.
    if let Some(entry) = codes.get(&code)
        && (entry.identity == identity || identity.is_empty())
    {
        return entry.info;
    }
    let info = match code::read_code(
        &ready.memory,
        &ready.offsets,
        code,
        ready.interpreter.code_type,
    ) {
        Ok(info) => Some(Rc::new(info)),
        Err(err) => {
            log::debug!("code object {code:#x}: {err}");
            // Freed since it was read (an event drained late, while the
            // process finalizes): the event saw it alive, and what was read
            // then is what it saw.
            if let Some(entry) = codes.get(&code)
                && infos[entry.info].1.is_some()
            {
                return entry.info;
            }
            None
        }
    };
    infos.push((code, info));
    let index = infos.len() - 1;
    codes.insert(
        code,
        CodeEntry {
            identity,
            info: index,
        },
    );
    index
}

/// Python stacks behind kernel events, for the report.
pub struct EventReport {
    /// file_id -> stacks behind reads of that file.
    pub reads: HashMap<u64, Vec<EventStack>>,
    pub off_cpu: Vec<EventStack>,
    pub forks: Vec<EventStack>,
}

/// A sampled frame's code object and instruction value, or `None` for
/// frames that are not Python code (C-stack entry frames, no code object).
pub fn python_frame(o: &Offsets, f: &tracer_common::PyFrameRecord) -> Option<(u64, u64)> {
    let owner = (f.instr >> 56) as u8;
    if o.owner_skip_from.is_some_and(|skip| owner >= skip) {
        return None;
    }
    // 3.14: f_executable is a _PyStackRef whose low bits are tags.
    let code = if o.code_is_stackref {
        f.code & !7
    } else {
        f.code
    };
    (code != 0).then_some((code, f.instr & 0x00ff_ffff_ffff_ffff))
}

/// The walk the BPF sampler does, in userspace (snapshot tests, recording).
#[cfg(test)]
pub fn walk_stack(
    mem: &dyn memory::Memory,
    o: &Offsets,
    tstate: u64,
) -> Vec<tracer_common::PyFrameRecord> {
    let mut out = Vec::new();
    let mut frame = mem.u64(tstate + o.tstate_frame).unwrap_or(0);
    if let Some(off) = o.cframe_current_frame {
        frame = if frame == 0 {
            0
        } else {
            mem.u64(frame + off).unwrap_or(0)
        };
    }
    for _ in 0..tracer_common::PY_MAX_DEPTH {
        if frame == 0 {
            break;
        }
        let code = mem.u64(frame + o.frame_code).unwrap_or(0);
        let mut instr = mem.u64(frame + o.frame_instr).unwrap_or(0) & 0x00ff_ffff_ffff_ffff;
        if let Some(off) = o.frame_owner {
            let mut owner = [0u8];
            if mem.read(frame + off, &mut owner).is_ok() {
                instr |= (owner[0] as u64) << 56;
            }
        }
        out.push(tracer_common::PyFrameRecord { code, instr });
        frame = mem.u64(frame + o.frame_back).unwrap_or(0);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Symbol {
    function: String,
    name: String,
    file: String,
    first_line: u32,
    line: u32,
}

impl Symbol {
    fn unknown(code: u64) -> Self {
        Self {
            function: format!("<code {code:#x}>"),
            name: format!("<code {code:#x}>"),
            file: "?".into(),
            first_line: 0,
            line: 0,
        }
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10000.0 / whole as f64).round() / 100.0
    }
}

type FunctionKey = (String, String, String, u32);

fn hotspots(
    stacks: &[(u32, Vec<Symbol>, u64)],
    tid: Option<u32>,
    limit: usize,
) -> (u64, Vec<Hotspot>) {
    let mut by_fn: BTreeMap<FunctionKey, (u64, u64)> = BTreeMap::new();
    let mut total = 0;
    for (t, frames, count) in stacks {
        if tid.is_some_and(|want| want != *t) {
            continue;
        }
        total += count;
        let mut seen: Vec<FunctionKey> = Vec::new();
        for (depth, f) in frames.iter().enumerate() {
            let key = (
                f.function.clone(),
                f.name.clone(),
                f.file.clone(),
                f.first_line,
            );
            let entry = by_fn.entry(key.clone()).or_default();
            if depth == 0 {
                entry.0 += count;
            }
            // Recursion counts once per sample in the total.
            if !seen.contains(&key) {
                entry.1 += count;
                seen.push(key);
            }
        }
    }
    let mut out: Vec<Hotspot> = by_fn
        .into_iter()
        .map(
            |((qualname, name, file, line), (self_samples, total_samples))| Hotspot {
                function: name,
                qualname,
                file,
                line,
                self_samples,
                total_samples,
                self_share: share(self_samples, total),
                total_share: share(total_samples, total),
            },
        )
        .collect();
    out.sort_by(|a, b| {
        b.self_samples
            .cmp(&a.self_samples)
            .then(b.total_samples.cmp(&a.total_samples))
            .then(a.qualname.cmp(&b.qualname))
    });
    out.truncate(limit);
    (total, out)
}

fn fill(report: &mut Python, stacks: &[(u32, Vec<Symbol>, u64)]) {
    let (total, hot) = hotspots(stacks, None, 100);
    report.hotspots = hot;
    let mut lines: BTreeMap<(String, String, u32), u64> = BTreeMap::new();
    for (_, frames, count) in stacks {
        if let Some(top) = frames.first() {
            *lines
                .entry((top.function.clone(), top.file.clone(), top.line))
                .or_default() += count;
        }
    }
    let mut lines: Vec<LineHotspot> = lines
        .into_iter()
        .map(|((function, file, line), n)| LineHotspot {
            function,
            file,
            line,
            self_samples: n,
            self_share: share(n, total),
        })
        .collect();
    lines.sort_by(|a, b| {
        b.self_samples
            .cmp(&a.self_samples)
            .then(a.line.cmp(&b.line))
    });
    lines.truncate(100);
    report.lines = lines;
    let mut tids: Vec<u32> = stacks.iter().map(|s| s.0).collect();
    tids.sort_unstable();
    tids.dedup();
    report.threads = tids
        .into_iter()
        .map(|tid| {
            let (samples, hotspots) = hotspots(stacks, Some(tid), 20);
            PythonThread {
                tid,
                samples,
                hotspots,
            }
        })
        .collect();
    let mut out: Vec<PythonStack> = stacks
        .iter()
        .map(|(tid, frames, count)| PythonStack {
            tid: *tid,
            samples: *count,
            frames: frames
                .iter()
                .map(|f| PythonFrame {
                    function: f.function.clone(),
                    file: f.file.clone(),
                    line: f.line,
                })
                .collect(),
        })
        .collect();
    out.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.frames.cmp(&b.frames)));
    report.stacks = out;
}

/// The Python section when sampling was not asked for.
pub fn disabled(reason: &str) -> Python {
    Python {
        status: "disabled".into(),
        reason: Some(reason.into()),
        ..Python::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_identity_ignores_the_reference_count_and_counters() {
        let o = layout::static_offsets(11).unwrap();
        let fields = identity_fields(&o);
        let end = fields.iter().map(|&(off, len)| off + len).max().unwrap() as usize;
        let mut code = vec![0u8; end];
        code[8..16].copy_from_slice(&0x7f00_1234u64.to_le_bytes());
        let name = o.code_name as usize;
        code[name..name + 8].copy_from_slice(&0x5555_0000u64.to_le_bytes());
        let before = identity_of(&code, &fields);
        assert_eq!(
            before.len(),
            fields.iter().map(|f| f.1 as usize).sum::<usize>()
        );
        // The reference count and every field not named above may change.
        let mut later = code.clone();
        later[0] = 7;
        for (i, byte) in later.iter_mut().enumerate() {
            if !fields
                .iter()
                .any(|&(off, len)| (off as usize..(off + len) as usize).contains(&i))
            {
                *byte = byte.wrapping_add(1);
            }
        }
        assert_eq!(identity_of(&later, &fields), before);
        // Another name (or type) is another object.
        let mut other = code.clone();
        other[name] = 1;
        assert_ne!(identity_of(&other, &fields), before);
        let mut freed = code;
        freed[9] = 0xff;
        assert_ne!(identity_of(&freed, &fields), before);
    }

    fn sym(f: &str, line: u32) -> Symbol {
        Symbol {
            function: f.into(),
            name: f.into(),
            file: "/w.py".into(),
            first_line: 1,
            line,
        }
    }

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

    #[test]
    fn self_and_total_shares() {
        let stacks = vec![
            (
                1,
                vec![sym("inner", 5), sym("outer", 9), sym("main", 12)],
                70,
            ),
            (1, vec![sym("outer", 8), sym("main", 12)], 20),
            (2, vec![sym("fib", 3), sym("fib", 3), sym("main", 12)], 10),
        ];
        let mut report = Python::default();
        fill(&mut report, &stacks);
        let get = |f: &str| {
            report
                .hotspots
                .iter()
                .find(|h| h.qualname == f)
                .unwrap()
                .clone()
        };
        assert_eq!(get("inner").self_samples, 70);
        assert_eq!(get("inner").self_share, 70.0);
        assert_eq!(get("outer").self_samples, 20);
        assert_eq!(get("outer").total_samples, 90);
        assert_eq!(get("main").total_samples, 100);
        assert_eq!(get("main").self_samples, 0);
        // Recursion counted once per sample.
        assert_eq!(get("fib").total_samples, 10);
        assert_eq!(report.hotspots[0].qualname, "inner");
        assert_eq!(report.lines[0].line, 5);
        assert_eq!(report.threads.len(), 2);
        assert_eq!(report.threads[1].samples, 10);
        assert_eq!(report.stacks[0].frames[0].function, "inner");
    }
}
