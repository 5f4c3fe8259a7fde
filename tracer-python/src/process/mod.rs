//! One Python process: the search for its interpreter (a state machine,
//! its states in `discovery`: the command may not have exec'd yet, or may
//! load libpython late), then keeping its thread list published to the BPF
//! sampler, its thread names and signal handlers read, and its frames
//! symbolized. `tree` holds every such process of the trace.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tracer_common::{PY_NO_OFFSET, PyConfig, PyFrameRecord};

use super::{
    asyncio,
    code::{CopiedLines, CopiedNames},
    discovery::{Discovery, Place, Ready, find},
    gil, handlers,
    interpreter::{self, Binaries},
    process_memory::{self, ProcessMemory},
    running_task::RunningTasks,
    symbols::{FrameId, FrameTable, Symbols},
    thread_names::{self, NameCache},
    threads,
};
use crate::{frame::Frame, host::procfs};

mod program;
mod signal_handlers;

/// What the tracer must change in the BPF maps after a refresh.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ThreadUpdate {
    /// Offsets to publish (first time the interpreter is understood).
    pub config: Option<PyConfig>,
    /// The interpreter just found: (ELF path to open, file offset of
    /// `_PyEval_EvalFrameDefault`) for the entry counter.
    pub eval_frame: Option<(std::path::PathBuf, u64)>,
    /// The same file and the offsets of its signal checks (handler runs).
    pub signal_checks: Option<(std::path::PathBuf, Vec<u64>)>,
    pub insert: Vec<(u32, u64)>,
    pub remove: Vec<u32>,
}

/// A process is searched on every refresh for this long after it appears
/// or execs (a shared libpython is mapped by the dynamic loader a few ms
/// after `exec`), then once a second (a program may load libpython late,
/// as uwsgi does).
const EAGER_SEARCH_FOR: Duration = Duration::from_secs(2);
const LATE_SEARCH_EVERY: Duration = Duration::from_secs(1);
/// A node-wide trace looks at every process on the host, most of them not
/// Python: a new program is looked at as it starts, then less and less
/// often (when half its age has passed since the last look: about ten
/// looks in its first two seconds), then every ten seconds.
const PATIENT_LATE_SEARCH_EVERY: Duration = Duration::from_secs(10);

pub struct PythonProcess {
    pid: u32,
    /// How many processes had this pid before it in this trace (a pid
    /// reused on a busy host names another process: a row of its own).
    generation: u32,
    /// Capture the stack of 1 in this many reads (0: never).
    read_stack_every: u32,
    discovery: Discovery,
    symbols: Symbols,
    /// The program it runs, numbered across the trace (`PyConfig::code_names_epoch`).
    program_epoch: u32,
    /// The kernel side has this process's offsets (`PY_CONFIG`).
    config_published: bool,
    /// tid -> tstate as last written to the BPF map.
    published: HashMap<u32, u64>,
    /// What the last read of the thread list found.
    census: Option<threads::Census>,
    /// The most thread states one read of its lists found.
    most_thread_states: usize,
    /// When the process appeared or last exec'd, and was last searched.
    since: Instant,
    last_search: Option<Instant>,
    /// A node-wide trace's search (see [`PATIENT_LATE_SEARCH_EVERY`]).
    patient: bool,
    /// The process has exited: nothing to refresh, its symbols stay for
    /// the events still in the ring buffer.
    exited: bool,
    /// tid -> `pthread_t` (the key of `threading._active`) of the published threads.
    pthreads: HashMap<u32, u64>,
    /// tid -> Python thread name, as last read (kept after the thread exits).
    names: HashMap<u32, String>,
    /// tid -> the kernel's name (comm) of a published thread `threading`
    /// does not know (made in C and attached with `PyGILState_Ensure`, as
    /// embedding servers do): its name when no Python name is read.
    kernel_names: HashMap<u32, String>,
    name_cache: NameCache,
    names_read: Option<Instant>,
    /// How long until names are read again while a thread has none.
    names_every: Duration,
    /// Where CPython's signal handler table is, once found, and when it
    /// was last searched for.
    handler_table: Option<u64>,
    handler_table_searched: Option<Instant>,
    handler_table_searches: u32,
    /// Per signal: the table slot's `func` as last read, and what it is. Kept
    /// after the process exits: a delivery handled after its exit still
    /// names its handler.
    handlers: HashMap<i32, (u64, handlers::Handler)>,
    /// CLOCK_MONOTONIC ns when the interpreter was last looked for.
    looked_at_ns: u64,
    /// Its signal checks were handed out for the uprobe.
    signal_checks_published: bool,
    /// The kernel side has the handler table's address (or it is unknown).
    handler_table_published: bool,
    /// A launched command not looked at before its exec record: the exec
    /// drops what the kernel side was given, and may come after a look that
    /// already saw the new program.
    awaiting_exec: bool,
    /// A launched command looked at while stopped by its exec: that exec's
    /// record, still to come, is of the program already looked at.
    held_at_exec: bool,
    /// Held while its loader maps libpython: what a look finds there may
    /// be the file's bytes where the library's zeroed data will be, so no
    /// look refuses it yet.
    loading: bool,
    /// The asyncio task each sample ran in (3.14+).
    tasks: RunningTasks,
    /// The kernel side has the GIL's address (or the build has no GIL);
    /// false while a 3.12+ main interpreter has not made its GIL yet.
    gil_published: bool,
    /// What it runs holds no interpreter: the last look found none, or it
    /// exited, never looked at, after exec'ing a program that holds none.
    not_python: bool,
    /// The program it exec'd, and the process it was forked from (whose
    /// root it sees), until a look at the new program.
    exec: Option<(String, Option<u32>)>,
}

/// While a published thread has no name, names are read again at most this
/// often; each read that names no new thread doubles the wait, up to
/// [`NAMES_EVERY_AT_MOST`] (a program that never imports `threading` would
/// otherwise be searched for it 5 times a second for its whole life: a
/// node agent's steady cost per Python process); a new thread resets it.
const NAMES_EVERY: Duration = Duration::from_millis(200);
const NAMES_EVERY_AT_MOST: Duration = Duration::from_secs(10);

/// A number for each program a process runs (at its first look, at every
/// exec), unique across the trace.
fn next_program_epoch() -> u32 {
    static EPOCHS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    EPOCHS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl PythonProcess {
    pub fn new(pid: u32, read_stack_every: u32) -> Self {
        Self {
            pid,
            generation: 0,
            read_stack_every,
            discovery: Discovery::Searching(format!("process {pid} has not been looked at yet")),
            symbols: Symbols::default(),
            program_epoch: next_program_epoch(),
            config_published: false,
            published: HashMap::new(),
            census: None,
            most_thread_states: 0,
            since: Instant::now(),
            last_search: None,
            patient: false,
            exited: false,
            pthreads: HashMap::new(),
            names: HashMap::new(),
            kernel_names: HashMap::new(),
            name_cache: NameCache::default(),
            names_read: None,
            names_every: NAMES_EVERY,
            handler_table: None,
            handler_table_searched: None,
            handler_table_searches: 0,
            handlers: HashMap::new(),
            looked_at_ns: 0,
            signal_checks_published: false,
            handler_table_published: true,
            awaiting_exec: false,
            held_at_exec: false,
            loading: false,
            tasks: RunningTasks::default(),
            gil_published: false,
            not_python: false,
            exec: None,
        }
    }

    /// A process whose interpreter is known, with `offsets`: for tests that
    /// symbolize (its pid names no process: nothing is read from it).
    #[cfg(test)]
    pub fn ready_for_test(pid: u32, offsets: super::layout::Offsets) -> Self {
        let interpreter = super::interpreter::Interpreter {
            path: "/usr/bin/python3.11".into(),
            file: "0:0 /usr/bin/python3.11".into(),
            major: 3,
            minor: 11,
            version: "3.11.7".into(),
            free_threaded: false,
            shared: false,
            debug_build: false,
            runtime: 0,
            eval_frame: 0,
            eval_frame_file_offset: None,
            code_type: None,
            signal_checks: Vec::new(),
            data_range: None,
            version_buffer: None,
        };
        let mut process = Self::new(pid, 1);
        process.discovery = Discovery::Ready(Box::new(Ready {
            binary: super::discovery::Binary {
                interpreter,
                offsets,
                origin: "test",
            },
            place: Place::default(),
            memory: ProcessMemory::new(pid),
            tid_offset: None,
            tls_to_thread: Some(0),
        }));
        process
    }

    /// The process `child`, forked (without `exec`) by this one: the same
    /// interpreter at the same addresses, its own memory and threads from
    /// now on.
    pub fn forked(&self, child: u32) -> Self {
        let mut process = Self::new(child, self.read_stack_every);
        process.discovery = match &self.discovery {
            Discovery::Ready(ready) => {
                let mut place = Place::of(child);
                // Already gone: it lived where its parent does.
                if place.root.is_none() {
                    place.root = ready.place.root.clone();
                }
                Discovery::Ready(Box::new(Ready {
                    binary: ready.binary.clone(),
                    place,
                    memory: ProcessMemory::new(child),
                    tid_offset: ready.tid_offset,
                    tls_to_thread: ready.tls_to_thread,
                }))
            }
            Discovery::Failed(reason, found) => Discovery::Failed(reason.clone(), found.clone()),
            Discovery::Searching(_) => process.discovery,
        };
        process.name_cache = self.name_cache.clone();
        process.handler_table = self.handler_table;
        process.handlers = self.handlers.clone();
        process.tasks = self.tasks.clone();
        process
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub(super) fn set_generation(&mut self, generation: u32) {
        self.generation = generation;
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

    pub fn exited(&self) -> bool {
        self.exited
    }

    /// True once at least one Python thread has been published to the sampler.
    pub fn has_threads(&self) -> bool {
        !self.published.is_empty()
    }

    /// The Python frames of a raw stack, innermost first, symbolized now
    /// (the process and its code objects may be gone by report time);
    /// `None` when its interpreter is not understood.
    pub fn frame_ids(
        &mut self,
        table: &mut FrameTable,
        records: &[PyFrameRecord],
    ) -> Option<Vec<FrameId>> {
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        let source = ready.code_source();
        Some(self.symbols.frame_ids(table, &source, records))
    }

    /// The frames of a raw stack in the groups each call of the eval loop
    /// runs ([`super::symbols::Symbols::frame_id_groups`]).
    pub fn frame_id_groups(
        &mut self,
        table: &mut FrameTable,
        records: &[PyFrameRecord],
    ) -> Option<Vec<Vec<FrameId>>> {
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        let source = ready.code_source();
        Some(self.symbols.frame_id_groups(table, &source, records))
    }

    /// The names the sampler copied of a code object it met, for its
    /// frames if the object is freed before it is read.
    pub fn on_copied_names(&mut self, code: u64, check: u64, names: CopiedNames) {
        if let Discovery::Ready(ready) = &self.discovery {
            let offsets = &ready.binary.offsets;
            self.symbols.on_copied_names(offsets, code, check, names);
        }
    }

    /// The line table the kernel copied of a code object on the stack of
    /// a thread dying of a signal.
    pub fn on_copied_lines(&mut self, code: u64, check: u64, lines: CopiedLines) {
        if let Discovery::Ready(ready) = &self.discovery {
            let offsets = &ready.binary.offsets;
            self.symbols.on_copied_lines(offsets, code, check, lines);
        }
    }

    /// Every known thread's Python stack as it is now, innermost first,
    /// walked in userspace from the thread's `PyThreadState` (the walk the
    /// sampler does, for threads that are not running): (tid, frames).
    pub fn stacks_now(&mut self, table: &mut FrameTable) -> Vec<(u32, Vec<FrameId>)> {
        if self.exited {
            return Vec::new();
        }
        self.read_names();
        let Discovery::Ready(ready) = &self.discovery else {
            return Vec::new();
        };
        let source = ready.code_source();
        let mut threads: Vec<(u32, u64)> = self.published.iter().map(|(&t, &s)| (t, s)).collect();
        threads.sort_unstable();
        threads
            .into_iter()
            .map(|(tid, tstate)| {
                let records = threads::walk_frames(
                    &ready.memory,
                    &ready.binary.offsets,
                    tstate,
                    tracer_common::PY_MAX_DEPTH,
                );
                (tid, self.symbols.frame_ids(table, &source, &records))
            })
            .collect()
    }

    /// Every asyncio task of the process now (`asyncio::look`), its
    /// coroutine frames symbolized; `None` when its interpreter is not
    /// understood or it has exited.
    pub fn asyncio_tasks(&mut self, table: &mut FrameTable) -> Option<asyncio::Look<FrameId>> {
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        if self.exited {
            return None;
        }
        let interpreter = &ready.binary.interpreter;
        let tstates: Vec<(u32, u64)> = self.published.iter().map(|(&t, &s)| (t, s)).collect();
        let look = asyncio::look(
            self.pid,
            &asyncio::Interpreter {
                memory: &ready.memory,
                offsets: &ready.binary.offsets,
                minor: interpreter.minor,
                version: &interpreter.version,
                runtime: interpreter.runtime,
            },
            &tstates,
        );
        let source = ready.code_source();
        let symbols = &mut self.symbols;
        Some(look.map_frames(|records| symbols.frame_ids(table, &source, &records)))
    }

    /// The kernel side's view of this process: its interpreter's layout,
    /// how often reads get a stack, where its signal handlers are, and
    /// which program it runs.
    fn config_of(
        read_stack_every: u32,
        handler_table: Option<u64>,
        ready: &Ready,
        tasks: &RunningTasks,
        program_epoch: u32,
    ) -> PyConfig {
        let mut config = ready.binary.offsets.bpf_config();
        config.code_names_epoch = program_epoch;
        config.code_type = ready.binary.interpreter.code_type.unwrap_or(0);
        config.tls_to_thread = ready.tls_to_thread.unwrap_or(PY_NO_OFFSET);
        config.read_stack_every = read_stack_every;
        config.signal_handlers = handler_table.unwrap_or(0);
        config.interpreters_head = ready
            .binary
            .interpreter
            .runtime
            .wrapping_add(ready.binary.offsets.runtime_interpreters_head);
        config.function_code =
            handlers::function_code(&ready.binary.offsets, ready.binary.interpreter.minor) as u32;
        tasks.configure(&mut config);
        if let Some((gil, at)) = Self::gil_of(ready) {
            gil.configure(&mut config, at);
        }
        config
    }

    /// The build's GIL and its address now, if it has one and it exists.
    fn gil_of(ready: &Ready) -> Option<(gil::GilLayout, u64)> {
        let offsets = &ready.binary.offsets;
        let gil = offsets.gil?;
        let at = gil.address(
            &ready.memory,
            ready.binary.interpreter.runtime,
            offsets.runtime_interpreters_head,
            offsets.interp_next,
        )?;
        Some((gil, at))
    }

    /// A reading of its thread lists stopped at their bound: the threads
    /// past it are sampled (the kernel finds their thread states) but are
    /// not in `threads_at_end`.
    pub fn thread_lists_capped(&self) -> bool {
        self.most_thread_states >= threads::MAX_THREADS
    }

    /// Why none of its threads is sampled, when that is so and known (as
    /// the last read of its thread list found).
    pub fn why_no_thread(&self) -> Option<String> {
        self.census.as_ref()?.why_no_thread()
    }

    /// The Python name of thread `tid` (`threading.Thread.name`), once
    /// read; else, for a thread `threading` does not know, the kernel's.
    pub fn thread_name(&self, tid: u32) -> Option<&str> {
        self.names
            .get(&tid)
            .or_else(|| self.kernel_names.get(&tid))
            .map(String::as_str)
    }

    pub fn thread_names(&self) -> impl Iterator<Item = (u32, &str)> {
        let unnamed = self
            .kernel_names
            .iter()
            .filter(|(tid, _)| !self.names.contains_key(tid));
        self.names
            .iter()
            .chain(unnamed)
            .map(|(&tid, name)| (tid, name.as_str()))
    }

    /// Thread `tid` was sampled: with no name yet, its kernel name is read
    /// now, while it surely lives (a C thread that is in the interpreter's
    /// list only while it calls into Python may be missed by every look;
    /// a Python name read later still wins).
    pub fn on_sampled_thread(&mut self, tid: u32) {
        if self.exited || self.names.contains_key(&tid) || self.kernel_names.contains_key(&tid) {
            return;
        }
        if let Some(comm) = procfs::thread_comm(self.pid, tid) {
            self.kernel_names.insert(tid, comm);
        }
    }

    /// Reads the names of the published threads from the interpreter.
    fn read_names(&mut self) {
        let Discovery::Ready(ready) = &self.discovery else {
            return;
        };
        if self.exited {
            return;
        }
        self.names_read = Some(Instant::now());
        let named_before = self.names.len();
        let tstates: Vec<u64> = self.published.values().copied().collect();
        let by_ident = thread_names::thread_names(
            &ready.memory,
            &ready.binary.offsets,
            &tstates,
            &mut self.name_cache,
        );
        for (&tid, pthread) in &self.pthreads {
            if let Some(name) = by_ident.get(pthread) {
                self.names.insert(tid, name.clone());
            } else if !self.kernel_names.contains_key(&tid)
                && let Some(comm) = procfs::thread_comm(self.pid, tid)
            {
                self.kernel_names.insert(tid, comm);
            }
        }
        if self.names.len() == named_before {
            self.names_every = (self.names_every * 2).min(NAMES_EVERY_AT_MOST);
        }
    }

    /// The name of asyncio task `task`, from the name object `name` a
    /// sample saw in it (`None`: not readable).
    pub fn task_name(&mut self, task: u64, name: u64) -> Option<String> {
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        self.tasks.name(&ready.asyncio_interpreter(), task, name)
    }

    /// The function whose code object is at `code` (entry counter keys).
    pub fn function(&mut self, code: u64) -> Option<Frame> {
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        Some(self.symbols.function(&ready.code_source(), code))
    }

    fn should_search(&self) -> bool {
        let age = self.since.elapsed();
        let Some(last) = self.last_search else {
            return true;
        };
        match (age < EAGER_SEARCH_FOR, self.patient) {
            (true, false) => true,
            (true, true) => last.elapsed() >= age / 2,
            (false, false) => last.elapsed() >= LATE_SEARCH_EVERY,
            (false, true) => last.elapsed() >= PATIENT_LATE_SEARCH_EVERY,
        }
    }

    /// A node-wide trace's search: see [`PATIENT_LATE_SEARCH_EVERY`].
    /// `running`: the process ran before the trace began (its program is
    /// not starting now: one look, then the late looks).
    pub fn be_patient(&mut self, running: bool) {
        self.patient = true;
        if running {
            self.since = Instant::now()
                .checked_sub(EAGER_SEARCH_FOR)
                .unwrap_or(self.since);
        }
    }

    /// Finds the interpreter if not yet known, then re-reads its thread
    /// list. `binaries`: what is known of each mapped file (shared by the tree).
    pub fn refresh(&mut self, binaries: &mut Binaries) -> ThreadUpdate {
        let mut update = ThreadUpdate::default();
        if self.exited || self.awaiting_exec {
            return update;
        }
        if let Discovery::Searching(_) = self.discovery {
            if !self.should_search() {
                return update;
            }
            self.last_search = Some(Instant::now());
            self.looked_at_ns = crate::host::clock::monotonic_ns();
            let found = find(self.pid, binaries);
            self.not_python = matches!(&found, Err((reason, None)) if reason.not_python);
            // A look that could not read it (gone) leaves the program to tell.
            if found.is_ok() || self.not_python {
                self.exec = None;
            }
            match found {
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
                    self.discovery = Discovery::Ready(Box::new(ready));
                    // Counted from now (see HANDLER_TABLE_FIRST_SEARCH_AFTER).
                    self.handler_table_searched = Some(Instant::now());
                }
                Err((reason, None)) if reason.searching => {
                    if !matches!(&self.discovery, Discovery::Searching(was) if *was == reason.text)
                    {
                        log::info!("pid {}: no Python yet: {}", self.pid, reason.text);
                    }
                    self.discovery = Discovery::Searching(reason.text);
                    return update;
                }
                Err((reason, _))
                    if self.loading
                        || reason.settling && self.since.elapsed() < EAGER_SEARCH_FOR =>
                {
                    log::info!("pid {}: not Python yet: {}", self.pid, reason.text);
                    self.discovery = Discovery::Searching(reason.text);
                    return update;
                }
                Err((reason, found)) => {
                    log::info!("pid {}: not Python: {}", self.pid, reason.text);
                    self.discovery = Discovery::Failed(reason.text, found);
                    return update;
                }
            }
        }
        let Discovery::Ready(ready) = &mut self.discovery else {
            return update;
        };
        // Asyncio's offsets (3.14: once it is imported) join the config.
        let tasks_found = self.tasks.search(self.pid, &ready.asyncio_interpreter());
        let gil_found = !self.gil_published && Self::gil_of(ready).is_some();
        // arm64: the kernel finds a new thread's state by its TLS base, told
        // by the libc, which may be mapped after the interpreter was found.
        let tls_found = ready.tls_to_thread.is_none() && {
            ready.tls_to_thread = super::tls::tls_to_thread(self.pid);
            ready.tls_to_thread.is_some()
        };
        if !self.config_published
            || !self.handler_table_published
            || tasks_found
            || gil_found
            || tls_found
        {
            let config = Self::config_of(
                self.read_stack_every,
                self.handler_table,
                ready,
                &self.tasks,
                self.program_epoch,
            );
            self.gil_published = config.gil != 0 || ready.binary.offsets.gil.is_none();
            update.config = Some(config);
            self.handler_table_published = true;
        }
        if !self.config_published {
            let interpreter = &ready.binary.interpreter;
            let path = interpreter::openable_path(self.pid, &interpreter.path);
            update.eval_frame = interpreter
                .eval_frame_file_offset
                .map(|offset| (path.clone(), offset));
            self.config_published = true;
        }
        let interpreter = &mut ready.binary.interpreter;
        if !interpreter.version_is_exact()
            && let Some(buffer) = interpreter.version_buffer
            && let Ok(text) = process_memory::Memory::read_vec(&ready.memory, buffer, 250)
            && let Some(version) = interpreter::version_from_getversion(&text)
        {
            interpreter.version = version;
        }
        let (states, census) = ready.thread_states(self.pid);
        if ready.tls_to_thread.is_none() && !states.is_empty() {
            // The interpreter runs with no libc mapped: none is (static).
            ready.tls_to_thread = Some(PY_NO_OFFSET);
        }
        self.most_thread_states = self.most_thread_states.max(census.states);
        self.census = Some(census);
        let current: HashMap<u32, u64> = states.iter().map(|s| (s.tid, s.tstate)).collect();
        self.pthreads = states.iter().map(|s| (s.tid, s.pthread)).collect();
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
        if !update.insert.is_empty() {
            self.names_every = NAMES_EVERY;
        }
        self.published = current;
        // The signal-check uprobe takes milliseconds to attach: once the
        // sampler has the threads (at start-up a fork or a read may come
        // within milliseconds), and before any signal can reach a handler.
        if !self.published.is_empty() && !self.signal_checks_published {
            let interpreter = &ready.binary.interpreter;
            update.signal_checks = (!interpreter.signal_checks.is_empty()).then(|| {
                (
                    interpreter::openable_path(self.pid, &interpreter.path),
                    interpreter.signal_checks.clone(),
                )
            });
            self.signal_checks_published = true;
        }
        // A new thread is named by `threading` a moment after it starts.
        if self
            .published
            .keys()
            .any(|tid| !self.names.contains_key(tid))
            && self
                .names_read
                .is_none_or(|at| at.elapsed() >= self.names_every)
        {
            self.read_names();
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child gone before its new program was looked at (a short-lived
    /// `uname` of a Python parent) is told by the program it exec'd.
    #[test]
    fn a_child_gone_before_a_look_is_told_by_its_program() {
        let mut binaries = Binaries::default();
        // Pids no process has: nothing is read from /proc.
        let mut uname = PythonProcess::new(u32::MAX - 1, 1);
        uname.on_exec(1, ("/usr/bin/uname".into(), None), &mut binaries);
        assert!(!uname.not_python());
        uname.on_exit(&mut binaries);
        assert!(uname.not_python());
        let Discovery::Searching(reason) = uname.discovery() else {
            panic!("not searching");
        };
        assert!(
            reason.ends_with("exec'd /usr/bin/uname, which holds no Python interpreter"),
            "{reason}"
        );
        let mut python = PythonProcess::new(u32::MAX - 2, 1);
        python.on_exec(1, ("/usr/bin/python3.11".into(), None), &mut binaries);
        python.on_exit(&mut binaries);
        assert!(!python.not_python());
        // Never exec'd (a forked Python child): nothing to tell it by.
        let mut forked = PythonProcess::new(u32::MAX - 3, 1);
        forked.on_exit(&mut binaries);
        assert!(!forked.not_python());
    }

    /// A launched command looked at while its exec held it: the record of
    /// that exec, come later, leaves what was found and published (and the
    /// program's number) as they are; an exec after it starts afresh.
    #[test]
    fn the_exec_it_was_held_by_changes_nothing() {
        let mut binaries = Binaries::default();
        let offsets = super::super::layout::static_offsets(11).unwrap();
        // A pid no process has: nothing is read from /proc.
        let mut python = PythonProcess::ready_for_test(u32::MAX - 4, offsets);
        python.held_at_exec();
        python.looked_at_ns = 10;
        python.config_published = true;
        let epoch = python.program_epoch;
        python.on_exec(5, ("/usr/bin/python3.11".into(), None), &mut binaries);
        assert!(python.ready().is_some() && python.config_published);
        assert_eq!(python.program_epoch, epoch);
        python.on_exec(20, ("/usr/bin/python3.11".into(), None), &mut binaries);
        assert!(python.ready().is_none() && !python.config_published);
        assert_ne!(python.program_epoch, epoch);
    }

    /// A look that found the interpreter after an exec whose record is
    /// handled later (a launcher that forked helpers, then exec'd Python)
    /// saw the new program: the exec says the program before it was not
    /// Python. One found by a look before the exec was.
    #[test]
    fn an_exec_says_whether_the_program_before_it_was_python() {
        let mut binaries = Binaries::default();
        let offsets = super::super::layout::static_offsets(11).unwrap();
        let exec = || ("/usr/bin/python3.11".to_owned(), None);
        // A pid no process has: nothing is read from /proc.
        let mut python = PythonProcess::ready_for_test(u32::MAX - 4, offsets);
        python.looked_at_ns = 30;
        assert!(!python.on_exec(20, exec(), &mut binaries));
        assert!(python.ready().is_some());
        let mut python = PythonProcess::ready_for_test(u32::MAX - 4, offsets);
        python.looked_at_ns = 10;
        assert!(python.on_exec(20, exec(), &mut binaries));
        assert!(python.ready().is_none());
        let mut shell = PythonProcess::new(u32::MAX - 4, 0);
        assert!(!shell.on_exec(20, exec(), &mut binaries));
    }

    /// The held look found no interpreter (a shell), and the first exec
    /// record handled is of the program the shell exec'd after it (the
    /// held exec's record handled before the hold was noted): that program
    /// is looked for, not taken for the shell.
    #[test]
    fn an_exec_after_the_held_look_is_a_new_program() {
        let mut binaries = Binaries::default();
        let mut python = PythonProcess::new(u32::MAX - 4, 0);
        python.discovery = Discovery::Failed(
            "no libpython or python executable with _PyRuntime".into(),
            None,
        );
        python.held_at_exec();
        python.looked_at_ns = 10;
        python.on_exec(20, ("/usr/bin/python3.11".into(), None), &mut binaries);
        assert!(matches!(python.discovery, Discovery::Searching(_)));
        assert!(!python.held_at_exec);
    }
}
