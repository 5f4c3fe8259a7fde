//! Every Python process of the trace: the target, the children it forks
//! (which start out as copies of it), the programs they exec, and the
//! descendants that already ran when `--pid` adopted the tree. Each is
//! looked at, sampled and symbolized on its own; their frames share one
//! [`FrameTable`].

use std::collections::{BTreeMap, HashMap};

use tracer_common::PyFrameRecord;

use super::{
    code::{CopiedLines, CopiedNames},
    interpreter::Binaries,
    process::{PythonProcess, ThreadUpdate},
    symbols::{FrameId, FrameTable},
};
use crate::frame::Frame;

pub struct PythonTree {
    /// The traced target (none in a node-wide trace).
    root: Option<u32>,
    /// A node-wide trace: most processes are not Python, and are looked
    /// at less often (see `PythonProcess::be_patient`).
    node_wide: bool,
    read_stack_every: u32,
    /// By pid: the process each pid names now.
    processes: BTreeMap<u32, PythonProcess>,
    /// Exited processes whose pid was reused since, kept for their rows
    /// (those found running Python, or found not to be sampleable).
    retired: HashMap<(u32, u32), PythonProcess>,
    /// (pid, generation) in the order first seen (the target first).
    order: Vec<(u32, u32)>,
    frames: FrameTable,
    /// What is known of each mapped file, for every process.
    binaries: Binaries,
    /// Children forked without exec (yet): child -> parent. They share the
    /// parent's code objects at the same addresses.
    forked_from: HashMap<u32, u32>,
    /// What the kernel copied of code objects (names, line tables) of a
    /// process not known yet: a child sampled before its fork record was
    /// handled (the drain takes the copies ahead of the records they came
    /// with). Applied once the process is inserted.
    early_copies: HashMap<u32, Vec<EarlyCopy>>,
    early_count: usize,
    /// Early copies let go (more than [`MAX_EARLY_COPIES`] waited at once).
    early_let_go: u64,
}

/// A copy of a code object's names or line table, by (address,
/// fingerprint), for a process not known yet.
enum EarlyCopy {
    Names(u64, u64, CopiedNames),
    Lines(u64, u64, CopiedLines),
}

/// Early copies held at most (a burst of forks' first samples); past it
/// they start over.
const MAX_EARLY_COPIES: usize = 65_536;

impl PythonTree {
    pub fn new(root: u32, read_stack_every: u32) -> Self {
        let mut tree = Self::empty(read_stack_every);
        tree.root = Some(root);
        tree.add(root);
        tree
    }

    /// A node-wide trace's: no root; the processes running when it starts
    /// are added with [`Self::add`], later ones as they fork and exec.
    pub fn node_wide(read_stack_every: u32) -> Self {
        Self {
            node_wide: true,
            ..Self::empty(read_stack_every)
        }
    }

    fn empty(read_stack_every: u32) -> Self {
        Self {
            root: None,
            node_wide: false,
            read_stack_every,
            processes: BTreeMap::new(),
            retired: HashMap::new(),
            order: Vec::new(),
            frames: FrameTable::default(),
            binaries: Binaries::default(),
            forked_from: Default::default(),
            early_copies: Default::default(),
            early_count: 0,
            early_let_go: 0,
        }
    }

    /// A process that is traced now (the target, or a descendant that
    /// already ran when the trace started): looked at on the next refresh.
    pub fn add(&mut self, pid: u32) {
        let mut process = PythonProcess::new(pid, self.read_stack_every);
        if self.node_wide {
            process.be_patient(true);
        }
        self.insert(process);
    }

    fn insert(&mut self, mut process: PythonProcess) {
        if self.node_wide {
            process.be_patient(false);
        }
        let pid = process.pid();
        match self.processes.remove(&pid) {
            // A pid reused: the exited process keeps a row of its own.
            Some(old) if old.exited() => {
                process.set_generation(old.generation() + 1);
                // One never found running Python has no row to keep (its
                // place in `order` names nothing from now on).
                if !matches!(old.discovery(), super::Discovery::Searching(_)) {
                    self.retired.insert((pid, old.generation()), old);
                }
                self.order.push((pid, process.generation()));
            }
            // Looked up again (adoption): the same process.
            Some(old) => process.set_generation(old.generation()),
            None => self.order.push((pid, 0)),
        }
        for copy in self.early_copies.remove(&pid).unwrap_or_default() {
            self.early_count -= 1;
            match copy {
                EarlyCopy::Names(code, check, names) => process.on_copied_names(code, check, names),
                EarlyCopy::Lines(code, check, lines) => process.on_copied_lines(code, check, lines),
            }
        }
        self.processes.insert(pid, process);
    }

    /// Copies of code objects let go before their process was known (the
    /// frames they named may show unresolved).
    pub fn early_copies_let_go(&self) -> u64 {
        self.early_let_go
    }

    /// Keeps a copy for process `tgid`, not known yet.
    fn keep_early(&mut self, tgid: u32, copy: EarlyCopy) {
        if self.early_count >= MAX_EARLY_COPIES {
            log::debug!("{} early copies of code objects let go", self.early_count);
            self.early_let_go += self.early_count as u64;
            self.early_copies.clear();
            self.early_count = 0;
        }
        self.early_copies.entry(tgid).or_default().push(copy);
        self.early_count += 1;
    }

    /// How many processes had pid `pid` before the one it names now.
    pub fn generation(&self, pid: u32) -> u32 {
        self.processes
            .get(&pid)
            .map_or(0, PythonProcess::generation)
    }

    /// `parent` forked `child` (a process): it runs its parent's interpreter
    /// until it execs.
    pub fn on_fork(&mut self, parent: u32, child: u32) {
        let process = match self.processes.get(&parent) {
            Some(process) => {
                self.forked_from.insert(child, parent);
                process.forked(child)
            }
            None => PythonProcess::new(child, self.read_stack_every),
        };
        self.insert(process);
    }

    /// The launched root is looked at once its exec record has come: a
    /// look between the exec's mapping of the new program and its record
    /// would publish what the exec then drops in the kernel.
    pub fn await_exec(&mut self, pid: u32) {
        if let Some(process) = self.processes.get_mut(&pid) {
            process.await_exec();
        }
    }

    /// The launched root is stopped by its exec: looked at now, its exec's
    /// record (still to come) changes nothing.
    pub fn held_at_exec(&mut self, pid: u32) {
        if let Some(process) = self.processes.get_mut(&pid) {
            process.held_at_exec();
        }
    }

    /// The launched root is held while its loader maps libpython, or no
    /// longer: no look refuses what it finds meanwhile.
    pub fn set_loading(&mut self, pid: u32, loading: bool) {
        if let Some(process) = self.processes.get_mut(&pid) {
            process.set_loading(loading);
        }
    }

    /// Process `pid` exec'd `program` at `exec_ns` (CLOCK_MONOTONIC).
    /// Returns whether the program it ran before was found to be Python.
    pub fn on_exec(&mut self, pid: u32, exec_ns: u64, program: &str) -> bool {
        let parent = self.forked_from.remove(&pid);
        match self.processes.get_mut(&pid) {
            Some(process) => {
                process.on_exec(exec_ns, (program.to_owned(), parent), &mut self.binaries)
            }
            // A process taken in as it execs (node-wide): its program starts now.
            None => {
                self.insert(PythonProcess::new(pid, self.read_stack_every));
                false
            }
        }
    }

    /// `--serve`: a process gone for good is forgotten (its caches too),
    /// unless its pid names a live process again.
    pub fn forget(&mut self, pid: u32) {
        self.retired.retain(|&(at, _), _| at != pid);
        if self.processes.get(&pid).is_some_and(PythonProcess::exited) {
            self.processes.remove(&pid);
            self.forked_from.remove(&pid);
        }
        self.order
            .retain(|&(at, _)| at != pid || self.processes.contains_key(&pid));
    }

    pub fn on_exit(&mut self, pid: u32) {
        if let Some(process) = self.processes.get_mut(&pid) {
            process.on_exit(&mut self.binaries);
        }
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.processes.contains_key(&pid)
    }

    /// Looks for interpreters not found yet and re-reads every live
    /// process's thread list: what to change in the BPF maps, per pid.
    pub fn refresh(&mut self) -> Vec<(u32, ThreadUpdate)> {
        let binaries = &mut self.binaries;
        self.processes
            .values_mut()
            .map(|process| (process.pid(), process.refresh(binaries)))
            .filter(|(_, update)| *update != ThreadUpdate::default())
            .collect()
    }

    /// True once a thread of any process has been published to the sampler.
    pub fn has_threads(&self) -> bool {
        self.processes.values().any(PythonProcess::has_threads)
    }

    /// A raw stack of process `tgid`, symbolized now, interned.
    pub fn frame_ids(&mut self, tgid: u32, records: &[PyFrameRecord]) -> Option<Vec<FrameId>> {
        self.processes
            .get_mut(&tgid)?
            .frame_ids(&mut self.frames, records)
    }

    /// A raw stack of process `tgid`, symbolized now, interned, in the
    /// groups each call of the eval loop runs
    /// ([`super::symbols::Symbols::frame_id_groups`]): flattened, its
    /// [`Self::frame_ids`].
    pub fn frame_id_groups(
        &mut self,
        tgid: u32,
        records: &[PyFrameRecord],
    ) -> Option<Vec<Vec<FrameId>>> {
        self.processes
            .get_mut(&tgid)?
            .frame_id_groups(&mut self.frames, records)
    }

    /// `frame` (a native frame, `--native`) in the trace's frame table.
    pub fn intern(&mut self, frame: Frame) -> FrameId {
        self.frames.intern(frame)
    }

    /// Thread `tid` of process `tgid` was sampled (see
    /// [`PythonProcess::on_sampled_thread`]).
    pub fn on_sampled_thread(&mut self, tgid: u32, tid: u32) {
        if let Some(process) = self.processes.get_mut(&tgid) {
            process.on_sampled_thread(tid);
        }
    }

    /// The names the sampler copied of a code object.
    pub fn on_copied_names(&mut self, record: &tracer_common::PyCodeNames) {
        let Some(names) = CopiedNames::from_record(record) else {
            return;
        };
        let (tgid, code, check) = (record.header.tgid, record.code, record.check);
        match self.processes.get_mut(&tgid) {
            Some(process) => process.on_copied_names(code, check, names),
            None => self.keep_early(tgid, EarlyCopy::Names(code, check, names)),
        }
    }

    /// The line table the kernel copied of a code object on a dying
    /// thread's stack.
    pub fn on_copied_lines(&mut self, record: &tracer_common::PyCodeLines) {
        let lines = CopiedLines::from_record(record);
        let (tgid, code, check) = (record.header.tgid, record.code, record.check);
        match self.processes.get_mut(&tgid) {
            Some(process) => process.on_copied_lines(code, check, lines),
            None => self.keep_early(tgid, EarlyCopy::Lines(code, check, lines)),
        }
    }

    /// The name of asyncio task `task` of process `tgid`, from the name
    /// object `name` a sample saw in it (`None`: not readable).
    pub fn task_name(&mut self, tgid: u32, task: u64, name: u64) -> Option<String> {
        self.processes.get_mut(&tgid)?.task_name(task, name)
    }

    /// A raw stack seen once (a kernel event's: read, sleep, fork, signal
    /// delivery) as frames, kept for the whole report.
    pub fn frames(&mut self, tgid: u32, records: &[PyFrameRecord]) -> Option<Vec<Frame>> {
        let ids = self.frame_ids(tgid, records)?;
        Some(self.frames_of(tgid, ids, records))
    }

    /// The frames of `ids`, the Python frames of `records` (a raw stack of
    /// process `tgid`) named already; its parent's names for them when
    /// those name more.
    pub fn frames_of(
        &mut self,
        tgid: u32,
        ids: Vec<FrameId>,
        records: &[PyFrameRecord],
    ) -> Vec<Frame> {
        // A child forked without exec that is gone or has exec'd since (a
        // Popen child resetting its signals just before its exec): its
        // parent holds the same code objects at the same addresses. A frame
        // named from the kernel's copy of its names, with no line (its line
        // table was in the child's memory), is not resolved yet either.
        // Counted on the ids: the frames are cloned once, those kept.
        let resolved = |tree: &Self, ids: &[FrameId]| {
            ids.iter()
                .map(|&id| tree.frame(id))
                .filter(|f| f.is_resolved() && f.line != 0)
                .count()
        };
        let mut ids = ids;
        if resolved(self, &ids) < ids.len()
            && let Some(&parent) = self.forked_from.get(&tgid)
            && let Some(from_parent) = self
                .processes
                .get_mut(&parent)
                .and_then(|p| p.frame_ids(&mut self.frames, records))
            && resolved(self, &from_parent) > resolved(self, &ids)
        {
            ids = from_parent;
        }
        ids.into_iter().map(|id| self.frame(id).clone()).collect()
    }

    /// Every known Python thread's stack now: (pid, tid, frames innermost first).
    pub fn stacks_now(&mut self) -> Vec<(u32, u32, Vec<Frame>)> {
        let mut out = Vec::new();
        for process in self.processes.values_mut() {
            for (tid, ids) in process.stacks_now(&mut self.frames) {
                let frames = ids.iter().map(|&id| self.frames.get(id).clone()).collect();
                out.push((process.pid(), tid, frames));
            }
        }
        out
    }

    /// Every asyncio task of each Python process now, by pid (see
    /// `asyncio::look`).
    pub fn asyncio_tasks_now(&mut self) -> Vec<(u32, super::asyncio::Look<Frame>)> {
        let mut out = Vec::new();
        for process in self.processes.values_mut() {
            if let Some(look) = process.asyncio_tasks(&mut self.frames) {
                let frames = &self.frames;
                let look =
                    look.map_frames(|ids| ids.iter().map(|&id| frames.get(id).clone()).collect());
                out.push((process.pid(), look));
            }
        }
        out
    }

    /// The Python function that handles signal `sig` in process `pid`,
    /// when it is Python code: the object `object` (and its `func_code`,
    /// `code`) the kernel read from the handler table at delivery, or (0)
    /// the table's slot read now.
    pub fn python_signal_handler(
        &mut self,
        pid: u32,
        sig: i32,
        object: u64,
        code: u64,
    ) -> Option<Frame> {
        match self
            .processes
            .get_mut(&pid)?
            .signal_handler(sig, object, code, &mut self.binaries)?
        {
            super::handlers::Handler::Python(frame) => Some(frame),
            super::handlers::Handler::NotPython => None,
        }
    }

    /// The same, as last read (by [`Self::read_signal_handlers`]).
    pub fn known_signal_handler(&self, pid: u32, sig: i32) -> Option<Frame> {
        match self.processes.get(&pid)?.known_signal_handler(sig)? {
            super::handlers::Handler::Python(frame) => Some(frame.clone()),
            super::handlers::Handler::NotPython => None,
        }
    }

    /// Whether process `pid` has exited (or is unknown).
    pub fn exited(&self, pid: u32) -> bool {
        self.processes.get(&pid).is_none_or(PythonProcess::exited)
    }

    /// Whether process `pid`'s handler table may still be found (its
    /// handler changes wait for it to be named).
    pub fn handler_table_pending(&self, pid: u32) -> bool {
        self.processes
            .get(&pid)
            .is_some_and(|p| p.handler_table_pending())
    }

    /// Reads what changed in every live Python process's signal handler
    /// table; the sampler configs to publish again (a table just found).
    pub fn read_signal_handlers(&mut self) -> Vec<(u32, tracer_common::PyConfig)> {
        let binaries = &mut self.binaries;
        self.processes
            .values_mut()
            .filter_map(|p| Some((p.pid(), p.read_signal_handlers(binaries)?)))
            .collect()
    }

    /// The Python name of thread `tid` of process `pid`, once read.
    pub fn thread_name(&self, pid: u32, tid: u32) -> Option<&str> {
        self.processes.get(&pid)?.thread_name(tid)
    }

    /// tid -> Python thread name, over every process.
    pub fn thread_names(&self) -> std::collections::HashMap<u32, String> {
        self.processes
            .values()
            .flat_map(|p| p.thread_names())
            .map(|(tid, name)| (tid, name.to_string()))
            .collect()
    }

    pub fn frame(&self, id: FrameId) -> &Frame {
        self.frames.get(id)
    }

    /// The function whose code object is at `code` in process `tgid`.
    pub fn function(&mut self, tgid: u32, code: u64) -> Option<Frame> {
        self.processes.get_mut(&tgid)?.function(code)
    }

    pub fn process(&self, pid: u32) -> Option<&PythonProcess> {
        self.processes.get(&pid)
    }

    /// Every process, in the order they were first seen: those whose pid
    /// was reused since too.
    pub fn processes(&self) -> impl Iterator<Item = &PythonProcess> {
        self.order.iter().filter_map(|&(pid, generation)| {
            self.processes
                .get(&pid)
                .filter(|p| p.generation() == generation)
                .or_else(|| self.retired.get(&(pid, generation)))
        })
    }

    /// The process the report's top-level interpreter keys describe: the
    /// target when it runs Python (or an interpreter the tracer cannot
    /// sample), else the first process found running Python (the target
    /// may be a wrapper: `sh -c`, `unshare`, a supervisor), else the target.
    /// A node-wide trace has no target: the first process found running
    /// Python, if any.
    pub fn main(&self) -> Option<&PythonProcess> {
        let root = self.root.and_then(|root| self.processes.get(&root));
        if let Some(root) = root
            && !matches!(root.discovery(), super::Discovery::Searching(_))
        {
            return Some(root);
        }
        self.processes()
            .find(|p| p.ready().is_some())
            .or_else(|| {
                self.processes()
                    .find(|p| matches!(p.discovery(), super::Discovery::Failed(_, Some(_))))
            })
            .or(root)
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::{EventHeader, EventKind, PY_NAME_BYTES, PyCodeNames, PyStringCopy};

    use super::*;
    use crate::layout;

    fn ascii(text: &str) -> PyStringCopy {
        let mut bytes = [0u8; PY_NAME_BYTES];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        PyStringCopy {
            length: text.len() as u64,
            // compact, ascii, 1 byte a character
            state: (1 << 2) | (1 << 5) | (1 << 6),
            copied: text.len() as u32,
            bytes,
        }
    }

    /// The kernel's copy of the names of `Job.work` (/srv/job.py, line 5),
    /// code object `code` of process `tgid`.
    fn job_work(tgid: u32, code: u64) -> PyCodeNames {
        PyCodeNames {
            header: EventHeader {
                kind: EventKind::PyCodeNames as u32,
                tgid,
                ..Default::default()
            },
            code,
            check: 0x77,
            first_line: 5,
            _pad: 0,
            name: ascii("work"),
            qualname: ascii("Job.work"),
            filename: ascii("/srv/job.py"),
        }
    }

    /// A child's first sample's copy of a code object's names, handled
    /// before its fork record (the drain takes copies first): kept, and
    /// given to the child the fork makes; its frames are named by it once
    /// the object is gone.
    #[test]
    fn copies_for_a_child_not_known_yet_wait_for_its_fork() {
        // Pids no process has: nothing is read from /proc.
        let (parent, child) = (u32::MAX - 10, u32::MAX - 11);
        let offsets = layout::static_offsets(11).unwrap();
        let mut tree = PythonTree::empty(1);
        tree.insert(PythonProcess::ready_for_test(parent, offsets));
        tree.on_copied_names(&job_work(child, 0x10000));
        tree.on_fork(parent, child);
        let frame = PyFrameRecord {
            code: 0x10000,
            instr: 0x10000 + offsets.code_adaptive.unwrap(),
            check: 0x77,
        };
        let frames = tree.frames(child, &[frame]).expect("the child is known");
        assert_eq!(
            (frames[0].qualname.as_str(), frames[0].file.as_str()),
            ("Job.work", "/srv/job.py")
        );
        assert!(tree.early_copies.is_empty() && tree.early_count == 0);
    }

    /// Copies for processes never known pile up to a bound, then are let
    /// go, and the count says how many.
    #[test]
    fn early_copies_let_go_are_counted() {
        let mut tree = PythonTree::empty(1);
        for i in 0..=MAX_EARLY_COPIES as u64 {
            tree.on_copied_names(&job_work(u32::MAX - 20, 0x10000 + 64 * i));
        }
        assert_eq!(tree.early_copies_let_go(), MAX_EARLY_COPIES as u64);
        assert_eq!(tree.early_count, 1);
    }
}
