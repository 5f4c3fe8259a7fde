//! asyncio tasks of one process, read from its memory as CPython's own
//! `python -m asyncio ps` does (3.14+): every task of each thread's list
//! (`asyncio_tasks_head` in the thread state) and of the interpreter's (the
//! tasks of threads that exited), with its name, state, coroutine chain
//! (frame of each coroutine, following what each awaits) and the tasks
//! that await it. The offsets come from the interpreter itself
//! (`asyncio_offsets`); any read that does not check out fails the whole
//! look with its reason rather than give a wrong row.

use std::collections::HashSet;

use tracer_common::PyFrameRecord;

use super::{
    asyncio_offsets::{
        self, AsyncioOffsets, MAX_TASK_SIZE, ObjectOffsets, OffsetsError, SECTION, SECTION_SIZE,
    },
    code::{self, CodeError},
    interpreter,
    layout::Offsets,
    process_memory::{Memory, MemoryError},
    threads,
};
use crate::host::procfs;

#[derive(Debug, thiserror::Error)]
pub enum AsyncioError {
    #[error(transparent)]
    Offsets(#[from] OffsetsError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("a task name: {0}")]
    Name(#[from] CodeError),
    #[error("{0}")]
    Corrupt(String),
}

/// What a look for a process's tasks found.
#[derive(Debug)]
pub enum Look<F> {
    /// Every task (none when asyncio has none).
    Tasks(Vec<Task<F>>),
    /// asyncio is not imported (3.14: its `_asyncio` module is not mapped).
    NotImported,
    /// CPython before 3.14, which has no `.AsyncioDebug` section;
    /// `loaded`: its `_asyncio` module is mapped (asyncio is imported).
    TooOld { version: String, loaded: bool },
    /// The tasks could not be read, and why.
    Failed(String),
}

impl<F> Look<F> {
    pub fn map_frames<G>(self, mut f: impl FnMut(Vec<F>) -> Vec<G>) -> Look<G> {
        match self {
            Look::Tasks(tasks) => Look::Tasks(
                tasks
                    .into_iter()
                    .map(|t| Task {
                        tid: t.tid,
                        address: t.address,
                        name: t.name,
                        state: t.state,
                        coroutine: f(t.coroutine),
                        awaited_by: t.awaited_by,
                    })
                    .collect(),
            ),
            Look::NotImported => Look::NotImported,
            Look::TooOld { version, loaded } => Look::TooOld { version, loaded },
            Look::Failed(why) => Look::Failed(why),
        }
    }
}

/// One task; `F` is how its coroutine frames are held (raw records, then
/// interned ids, then frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task<F> {
    /// The thread whose list holds it (host tid); `None`: the
    /// interpreter's list (its thread exited).
    pub tid: Option<u32>,
    /// The task object's address: its id in `asyncio ps`.
    pub address: u64,
    pub name: String,
    pub state: TaskState,
    /// Innermost first.
    pub coroutine: Vec<F>,
    /// (address, name) of each task (or future: no name) awaiting it.
    pub awaited_by: Vec<(u64, Option<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Created, its coroutine not started.
    Pending,
    /// Its thread's running task.
    Running,
    /// Waiting in an `await`.
    Suspended,
    /// Its coroutine has finished.
    Done,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Suspended => "suspended",
            TaskState::Done => "done",
        }
    }
}

/// `Py_TPFLAGS_LONG_SUBCLASS`, `Py_TPFLAGS_UNICODE_SUBCLASS`.
const LONG_SUBCLASS: u64 = 1 << 24;
const UNICODE_SUBCLASS: u64 = 1 << 28;
/// Stack references carry tags in their low bits; objects are 16-byte aligned.
const TAG_BITS: u64 = 7;
/// Bounds on what garbage could make endless: tasks per list, coroutines
/// per chain, slots of an awaiter set.
const MAX_TASKS: usize = 1 << 16;
const MAX_CHAIN: usize = tracer_common::PY_MAX_DEPTH;
const MAX_SET_SLOTS: u64 = 1 << 16;
/// A live process changes under the reader: a look that trips over a
/// half-made change is made again.
const ATTEMPTS: usize = 3;

/// The interpreter of the process, as the look needs it.
pub struct Interpreter<'a> {
    pub memory: &'a dyn Memory,
    pub offsets: &'a Offsets,
    pub minor: u32,
    pub version: &'a str,
    /// Run-time address of `_PyRuntime`.
    pub runtime: u64,
}

/// The tasks of process `pid`, whose threads are `tstates` (host tid,
/// `PyThreadState` address).
pub fn look(pid: u32, interp: &Interpreter, tstates: &[(u32, u64)]) -> Look<PyFrameRecord> {
    let (address, size) = match section(pid, interp) {
        Ok(found) => found,
        Err(look) => return look,
    };
    let mut result = read_offsets(interp, address, size)
        .and_then(|(aio, obj)| Walk::new(interp, aio, obj).tasks(interp.runtime, tstates));
    for _ in 1..ATTEMPTS {
        if result.is_ok() {
            break;
        }
        result = read_offsets(interp, address, size)
            .and_then(|(aio, obj)| Walk::new(interp, aio, obj).tasks(interp.runtime, tstates));
    }
    match result {
        Ok(tasks) => Look::Tasks(tasks),
        Err(err) => Look::Failed(format!("cannot read its asyncio tasks: {err}")),
    }
}

/// The offsets of process `pid`'s asyncio, read from its `.AsyncioDebug`
/// section: `Err` with what a look would say when there are none (yet).
pub fn offsets<T>(
    pid: u32,
    interp: &Interpreter,
) -> Result<(AsyncioOffsets, ObjectOffsets), Look<T>> {
    let (address, size) = section(pid, interp)?;
    read_offsets(interp, address, size)
        .map_err(|err| Look::Failed(format!("cannot read its asyncio offsets: {err}")))
}

/// Where the `.AsyncioDebug` section is mapped in process `pid`.
fn section<T>(pid: u32, interp: &Interpreter) -> Result<(u64, u64), Look<T>> {
    let maps = match procfs::maps(pid) {
        Ok(text) => crate::host::procfs::maps::parse_maps(&text),
        Err(err) => return Err(Look::Failed(format!("cannot read /proc/{pid}/maps: {err}"))),
    };
    let is_asyncio_module = |path: &str| {
        std::path::Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("_asyncio."))
    };
    if interp.minor < 14 {
        return Err(Look::TooOld {
            version: interp.version.to_owned(),
            loaded: maps.iter().any(|m| is_asyncio_module(&m.path)),
        });
    }
    // 3.14 keeps the section in the `_asyncio` module, 3.15 in the interpreter.
    let wanted = |path: &str| is_asyncio_module(path) || interpreter::name_hint(path).is_some();
    interpreter::mapped_section(pid, &maps, wanted, SECTION).ok_or_else(|| {
        if interp.minor == 14 {
            Look::NotImported
        } else {
            Look::Failed(format!(
                "no {SECTION} section in the interpreter of CPython {}",
                interp.version
            ))
        }
    })
}

fn read_offsets(
    interp: &Interpreter,
    address: u64,
    size: u64,
) -> Result<(AsyncioOffsets, ObjectOffsets), AsyncioError> {
    if size != SECTION_SIZE as u64 {
        return Err(OffsetsError::SectionSize { got: size as usize }.into());
    }
    let aio = asyncio_offsets::parse_section(&interp.memory.read_vec(address, SECTION_SIZE)?)?;
    let len = asyncio_offsets::debug_offsets_len(interp.minor)?;
    let raw = interp.memory.read_vec(interp.runtime, len)?;
    let obj = asyncio_offsets::decode_object_offsets(&raw, interp.minor)?;
    Ok((aio, obj))
}

/// The walk over one process's memory.
pub struct Walk<'a> {
    mem: &'a dyn Memory,
    o: &'a Offsets,
    aio: AsyncioOffsets,
    obj: ObjectOffsets,
}

fn corrupt(what: impl Into<String>) -> AsyncioError {
    AsyncioError::Corrupt(what.into())
}

impl<'a> Walk<'a> {
    pub fn new(interp: &Interpreter<'a>, aio: AsyncioOffsets, obj: ObjectOffsets) -> Self {
        Self {
            mem: interp.memory,
            o: interp.offsets,
            aio,
            obj,
        }
    }

    /// Every task: each thread's list (in tid order), then the interpreter's.
    pub fn tasks(
        &self,
        runtime: u64,
        tstates: &[(u32, u64)],
    ) -> Result<Vec<Task<PyFrameRecord>>, AsyncioError> {
        let mut tstates = tstates.to_vec();
        tstates.sort_unstable();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for &(tid, tstate) in &tstates {
            let running = if self.ptr(tstate + self.aio.tstate_running_loop)? != 0 {
                self.ptr(tstate + self.aio.tstate_running_task)?
            } else {
                0
            };
            let head = tstate + self.aio.tstate_tasks_head;
            self.list(head, Some(tid), running, &mut seen, &mut out)?;
        }
        let interp = self.mem.u64(runtime + self.o.runtime_interpreters_head)?;
        if interp != 0 {
            let head = interp + self.aio.interp_tasks_head;
            self.list(head, None, 0, &mut seen, &mut out)?;
        }
        Ok(out)
    }

    fn ptr(&self, addr: u64) -> Result<u64, AsyncioError> {
        Ok(self.mem.u64(addr)? & !TAG_BITS)
    }

    /// The tasks of the circular list at `head` (a `struct llist_node`
    /// each task holds at `task_node`).
    fn list(
        &self,
        head: u64,
        tid: Option<u32>,
        running: u64,
        seen: &mut HashSet<u64>,
        out: &mut Vec<Task<PyFrameRecord>>,
    ) -> Result<(), AsyncioError> {
        let mut node = self.mem.u64(head + self.obj.llist_next)?;
        // A thread state that never ran asyncio has a zeroed head.
        if node == 0 {
            return Ok(());
        }
        let mut count = 0;
        while node != head {
            count += 1;
            if count > MAX_TASKS {
                return Err(corrupt(format!("more than {MAX_TASKS} tasks in one list")));
            }
            let address = node.wrapping_sub(self.aio.task_node);
            if !seen.insert(address) {
                return Err(corrupt(format!("task {address:#x} is listed twice")));
            }
            out.push(self.task(address, tid, running)?);
            node = self.mem.u64(node + self.obj.llist_next)?;
            if node == 0 {
                return Err(corrupt("a null link in a task list"));
            }
        }
        Ok(())
    }

    fn task(
        &self,
        address: u64,
        tid: Option<u32>,
        running: u64,
    ) -> Result<Task<PyFrameRecord>, AsyncioError> {
        let raw = self
            .mem
            .read_vec(address, self.aio.task_size.min(MAX_TASK_SIZE) as usize)?;
        let field = |at: u64| {
            let at = at as usize;
            u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes")) & !TAG_BITS
        };
        let coro = field(self.aio.task_coro);
        let states = self.obj.states;
        let (coroutine, frame_state) = if coro == 0 {
            (Vec::new(), states.cleared)
        } else {
            self.coroutine_chain(coro)?
        };
        let state = if address == running || frame_state == states.executing {
            TaskState::Running
        } else if frame_state == states.created {
            TaskState::Pending
        } else if states.finished.contains(&frame_state) {
            TaskState::Done
        } else {
            TaskState::Suspended
        };
        let awaited_by = field(self.aio.task_awaited_by);
        let is_set = raw[self.aio.task_awaited_by_is_set as usize] != 0;
        let awaiters = match (awaited_by, is_set) {
            (0, _) => Vec::new(),
            (set, true) => self.set_members(set)?,
            (one, false) => vec![one],
        };
        let awaited_by = awaiters
            .into_iter()
            .map(|a| Ok((a, self.awaiter_name(a)?)))
            .collect::<Result<_, AsyncioError>>()?;
        Ok(Task {
            tid,
            address,
            name: self.name(field(self.aio.task_name))?,
            state,
            coroutine,
            awaited_by,
        })
    }

    /// A task's name: a `str`, or the number of a `Task-N` name asyncio
    /// has not made yet (3.13+ names tasks lazily).
    pub fn name(&self, object: u64) -> Result<String, AsyncioError> {
        if object == 0 {
            return Err(corrupt("a task without a name"));
        }
        let ty = self.ptr(object + self.o.ob_type)?;
        let flags = self.mem.u64(ty + self.obj.type_flags)?;
        if flags & LONG_SUBCLASS != 0 {
            return Ok(format!("Task-{}", self.small_int(object)?));
        }
        if flags & UNICODE_SUBCLASS != 0 {
            return Ok(code::read_unicode(self.mem, self.o, object)?);
        }
        Err(corrupt(format!(
            "the name at {object:#x} is neither str nor int"
        )))
    }

    /// A compact `int` of at most two 30-bit digits (a task counter).
    fn small_int(&self, object: u64) -> Result<i64, AsyncioError> {
        let tag = self.mem.u64(object + self.obj.long_tag)?;
        let digits = tag >> 3;
        if digits > 2 {
            return Err(corrupt(format!("a task number of {digits} digits")));
        }
        let mut value: i64 = 0;
        for i in 0..digits {
            let digit = self.mem.u32(object + self.obj.long_digits + 4 * i)?;
            value |= i64::from(digit & 0x3fff_ffff) << (30 * i);
        }
        Ok(if tag & 3 == 2 { -value } else { value })
    }

    /// The name of an awaiter that is a task; `None` for a plain future.
    fn awaiter_name(&self, object: u64) -> Result<Option<String>, AsyncioError> {
        let mut is_task = [0u8];
        self.mem
            .read(object + self.aio.task_is_task, &mut is_task)?;
        if is_task[0] == 0 {
            return Ok(None);
        }
        let name = self.ptr(object + self.aio.task_name)?;
        Ok(Some(self.name(name)?))
    }

    /// The members of a `set` (the awaiters of a task awaited by several).
    fn set_members(&self, set: u64) -> Result<Vec<u64>, AsyncioError> {
        let used = self.mem.u64(set + self.obj.set_used)?;
        let mask = self.mem.u64(set + self.obj.set_mask)?;
        let table = self.mem.u64(set + self.obj.set_table)?;
        if mask >= MAX_SET_SLOTS || used > mask + 1 || table == 0 {
            return Err(corrupt(format!(
                "an awaiter set of {used} in {} slots",
                mask.wrapping_add(1)
            )));
        }
        // Slots are `setentry` { key, hash }; a removed key leaves a dummy
        // whose hash is -1.
        let raw = self.mem.read_vec(table, (mask as usize + 1) * 16)?;
        let members: Vec<u64> = raw
            .chunks_exact(16)
            .filter_map(|slot| {
                let key = u64::from_le_bytes(slot[..8].try_into().expect("8 bytes"));
                let hash = i64::from_le_bytes(slot[8..].try_into().expect("8 bytes"));
                (key != 0 && hash != -1).then_some(key)
            })
            .collect();
        if members.len() as u64 != used {
            return Err(corrupt(format!(
                "an awaiter set says {used} members, its table holds {}",
                members.len()
            )));
        }
        Ok(members)
    }

    /// The frames of coroutine `coro` and of the coroutines it awaits,
    /// innermost first, and the state of `coro`'s own frame.
    fn coroutine_chain(&self, coro: u64) -> Result<(Vec<PyFrameRecord>, i8), AsyncioError> {
        let mut chain = Vec::new();
        let mut first_state = None;
        let mut coro = coro;
        while chain.len() < MAX_CHAIN {
            let raw = self.mem.read_vec(coro, self.obj.gen_size as usize)?;
            let state = raw[self.obj.gen_frame_state as usize] as i8;
            first_state.get_or_insert(state);
            if state == self.obj.states.cleared {
                break;
            }
            let at = self.o.ob_type as usize;
            let gen_type = u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
            let frame = coro + self.obj.gen_iframe;
            chain.push(threads::frame_record(self.mem, self.o, frame));
            if !self.obj.states.suspended_yield_from.contains(&state) {
                break;
            }
            // What a coroutine awaits sits below its top of stack; only
            // another coroutine of the same type continues the chain (not
            // an iterator, a future).
            let stack = self.ptr(frame + self.obj.frame_stackpointer)?;
            if stack < self.obj.awaited_below_top {
                break;
            }
            let awaited = self.ptr(stack - self.obj.awaited_below_top)?;
            if awaited == 0 || self.mem.u64(awaited + self.o.ob_type)? != gen_type {
                break;
            }
            coro = awaited;
        }
        chain.reverse();
        Ok((chain, first_state.unwrap_or(self.obj.states.cleared)))
    }
}
