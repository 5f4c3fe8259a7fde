//! Native frames (on unless `--native=off`): what the kernel's unwinder needs of each
//! process (its executable mappings, each binary's unwind table compiled
//! from `.eh_frame` once for every process that maps it), and the names
//! of the addresses it sends back (ELF symbols, MiniDebugInfo's too, or
//! file and address); the vDSO from the tracer's own copy.
//! Kernel side: `tracer-ebpf/src/native.rs`.

mod learner;
mod symbols;
mod table;
mod vdso;

use std::{
    collections::{HashMap, HashSet},
    rc::Rc,
    time::{Duration, Instant},
};

use object::{Object, ObjectSection};
use tracer_common::{
    NATIVE_BLOCK_ROWS, NATIVE_MAX_MAPPINGS, NativeMapping, NativeMappings, NativeRow,
    NativeRowBlock, native_end,
};

use crate::{
    frame::Frame,
    host::procfs,
    host::procfs::maps::{Mapping, anonymous_code, parse_maps},
};
use learner::{Job, Learner, Learnt};
pub use symbols::{DebugDataError, Symbols};
pub use table::{TableError, UnwindTable, unwind_table};
use vdso::VDSO;

/// The function CPython runs Python code in: its native frames are
/// replaced by the Python frames each call runs.
pub const EVAL_FUNCTION: &str = "_PyEval_EvalFrameDefault";

/// Rows the kernel's table holds with native frames on (blocks of
/// [`NATIVE_BLOCK_ROWS`]): 1,048,576 rows, 12 MiB. CPython's static
/// executable is ~60,000 rows, libc ~25,000.
pub const TABLE_BLOCKS: u32 = 4096;

/// How often a process's mappings are read again, at most, when its
/// samples meet code outside them (a library loaded since): an import
/// loads one right after the interpreter is found; each sample until the
/// kernel has it is cut short.
const REREAD_EVERY: Duration = Duration::from_millis(5);

/// Which native frames a report shows (`--native=MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NativeMode {
    /// The native code a Python program calls (C extensions, libraries,
    /// and the C library as they call it); the interpreter's own frames,
    /// and the C library as the interpreter calls it, are left out (as
    /// py-spy does): a pure-Python function's time stays its own.
    #[default]
    Libraries,
    /// Every native frame, the interpreter's own too.
    All,
    /// No native unwinding: Python frames only.
    Off,
}

/// Whose code a native frame is, for [`NativeMode::Libraries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The binary that holds the eval loop (the executable or libpython),
    /// and executable memory that is no file (generated code).
    Interpreter,
    /// The C library and the kernel's vDSO: shown only as a library
    /// calls them.
    System,
    /// Anything else: C extensions, libraries, an embedding server.
    Library,
}

/// The C library's files (glibc and musl), and the vDSO.
pub fn is_system(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    const PREFIXES: [&str; 9] = [
        "libc.",
        "libc-",
        "libm.",
        "libm-",
        "libpthread",
        "libdl",
        "librt",
        "ld-linux",
        "ld-musl",
    ];
    path == "[vdso]" || PREFIXES.iter().any(|p| file.starts_with(p))
}

/// One mapped binary, learnt once.
#[derive(Debug)]
struct Binary {
    path: String,
    /// Its rows in the kernel's table (0 rows: none, the unwinder stops).
    first_row: u32,
    rows: u32,
    symbols: Symbols,
    /// `_PyEval_EvalFrameDefault`'s ranges, if it is here: its symbol's,
    /// and the parts the compiler moved out of it (`.cold`).
    eval: Vec<(u64, u64)>,
    /// (start, end) of each function its unwind table covers, sorted.
    functions: Vec<(u64, u64)>,
    /// (file offset, size, virtual address) of each loaded segment.
    segments: Vec<(u64, u64, u64)>,
}

impl Binary {
    /// Known by its path only: no table, no symbols (yet).
    fn unread(path: &str) -> Self {
        Self {
            path: path.to_string(),
            first_row: 0,
            rows: 0,
            symbols: Symbols::default(),
            eval: Vec::new(),
            functions: Vec::new(),
            segments: Vec::new(),
        }
    }

    fn origin(&self) -> Origin {
        if !self.eval.is_empty() || self.path == "[anonymous]" {
            Origin::Interpreter
        } else if is_system(&self.path) {
            Origin::System
        } else {
            Origin::Library
        }
    }

    /// What its address `addr` mapped by `mapping` is in the file.
    fn bias(&self, mapping: &Mapping) -> Option<u64> {
        self.bias_at(mapping.start, mapping.offset)
    }

    /// The bias of a mapping at `start` of its file from `file_offset`.
    fn bias_at(&self, start: u64, file_offset: u64) -> Option<u64> {
        let &(offset, _, vaddr) = self
            .segments
            .iter()
            .find(|(offset, size, _)| *offset <= file_offset && file_offset < offset + size)?;
        Some(
            start
                .wrapping_sub(file_offset)
                .wrapping_add(offset)
                .wrapping_sub(vaddr),
        )
    }
}

/// A process's executable mappings as the unwinder has them.
#[derive(Debug)]
struct ProcessMaps {
    /// (start, end, bias, binary), sorted by start.
    mappings: Vec<(u64, u64, u64, Rc<Binary>)>,
    read_at: Instant,
    /// Its samples met code outside these mappings.
    stale: bool,
}

/// A native address, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// In `_PyEval_EvalFrameDefault`: Python frames go there.
    Eval,
    Frame(Frame, Origin),
    /// In no mapping known (yet): named by the address alone.
    Unknown(Frame),
}

/// Counts for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NativeCounts {
    pub binaries: u64,
    pub rows: u64,
    /// Binaries left without a table: the kernel's table was full, or the
    /// file had none that could be read (the unwinder stops there).
    pub binaries_without_table: u64,
    /// Executable mappings past [`NATIVE_MAX_MAPPINGS`] in a process.
    pub mappings_left_out: u64,
    /// Samples with a native stack, by why its unwind ended
    /// (`tracer_common::native_end`, indexed by it).
    pub samples_by_end: [u64; 6],
    /// Samples whose eval frames and Python frames did not pair up.
    pub unmatched: u64,
    /// Binaries whose `.gnu_debugdata` (MiniDebugInfo) could not be read:
    /// named from their own symbol tables only.
    pub debugdata_unreadable: u64,
}

/// The kernel's table and every process's mappings, with the writes the
/// kernel side still has to get.
#[derive(Debug)]
pub struct NativeStacks {
    binaries: HashMap<String, Rc<Binary>>,
    /// The tracer's own vDSO and its size, read at the first process that
    /// maps one (`None`: not yet; a binary without a table when it could
    /// not be read).
    vdso: Option<(u64, Rc<Binary>)>,
    processes: HashMap<u32, ProcessMaps>,
    next_block: u32,
    capacity_blocks: u32,
    /// Runs of free blocks (first, count) below `next_block`.
    free: Vec<(u32, u32)>,
    /// Reads binaries off the event loop.
    learner: Option<Learner>,
    /// Binaries the learner is reading (their cache keys).
    pending: HashSet<String>,
    /// Processes whose mappings wait for binaries being read.
    waiting: HashSet<u32>,
    /// Which frames samples show.
    pub mode: NativeMode,
    row_writes: Vec<(u32, Box<NativeRowBlock>)>,
    mapping_writes: Vec<(u32, Box<NativeMappings>)>,
    pub counts: NativeCounts,
    pub warnings: Vec<String>,
}

impl NativeStacks {
    pub fn new(capacity_blocks: u32, mode: NativeMode) -> Self {
        Self {
            mode,
            binaries: HashMap::new(),
            vdso: None,
            processes: HashMap::new(),
            next_block: 0,
            capacity_blocks,
            free: Vec::new(),
            learner: None,
            pending: HashSet::new(),
            waiting: HashSet::new(),
            row_writes: Vec::new(),
            mapping_writes: Vec::new(),
            counts: NativeCounts::default(),
            warnings: Vec::new(),
        }
    }

    /// A process gone for good (`--serve`): its mappings are dropped (the
    /// kernel's went with its exit). Its binaries' rows stay, for the
    /// next process that maps them.
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
        self.waiting.remove(&pid);
    }

    /// Whether the kernel has (or is about to get) process `pid`'s mappings.
    pub fn knows_mappings(&self, pid: u32) -> bool {
        self.processes.contains_key(&pid) && !self.waiting.contains(&pid)
    }

    /// Reads process `pid`'s executable mappings and the binaries behind
    /// them not seen before; the kernel gets them with the next
    /// [`Self::take_writes`]. False when its maps cannot be read (gone).
    pub fn load(&mut self, pid: u32) -> bool {
        let Ok(text) = procfs::maps(pid) else {
            return false;
        };
        let mut mappings = Vec::new();
        let mut unread = false;
        for mapping in parse_maps(&text).into_iter().filter(|m| m.executable) {
            let Some(binary) = self.binary(pid, &mapping) else {
                unread = true;
                continue;
            };
            let Some(bias) = binary.bias(&mapping) else {
                continue;
            };
            mappings.push((mapping.start, mapping.end, bias, binary));
        }
        // Executable memory that is no file: the vDSO, unwound and named
        // from the tracer's own; generated code (and a vDSO unlike the
        // tracer's) known without a table, so that the unwinder stops
        // there without taking it for a library loaded since.
        for (start, end, name) in anonymous_code(&text) {
            if name == VDSO
                && let Some((bias, binary)) = self.vdso_at(start, end)
            {
                mappings.push((start, end, bias, binary));
                continue;
            }
            let binary = self
                .binaries
                .entry(name.clone())
                .or_insert_with(|| Rc::new(Binary::unread(&name)))
                .clone();
            mappings.push((start, end, start, binary));
        }
        log::debug!(
            "pid {pid}: {} executable mappings{} ({} bytes of maps)",
            mappings.len(),
            if unread { ", binaries being read" } else { "" },
            text.len()
        );
        // The kernel gets them once every binary is read (`poll`).
        if unread {
            self.waiting.insert(pid);
            return true;
        }
        mappings.sort_by_key(|m| m.0);
        if let Some(known) = self.processes.get_mut(&pid)
            && known.mappings.len() == mappings.len()
            && known
                .mappings
                .iter()
                .zip(&mappings)
                .all(|(a, b)| (a.0, a.1, a.2) == (b.0, b.1, b.2) && Rc::ptr_eq(&a.3, &b.3))
        {
            known.read_at = Instant::now();
            known.stale = false;
            return true;
        }
        if mappings.len() > NATIVE_MAX_MAPPINGS {
            self.counts.mappings_left_out += (mappings.len() - NATIVE_MAX_MAPPINGS) as u64;
            // The interpreter and libraries come first in the address
            // space of a typical process; the ones past the limit are
            // extension modules loaded late.
            mappings.truncate(NATIVE_MAX_MAPPINGS);
        }
        let mut value = Box::new(NativeMappings {
            count: mappings.len() as u32,
            _pad: 0,
            mappings: [NativeMapping::default(); NATIVE_MAX_MAPPINGS],
        });
        for (slot, (start, end, bias, binary)) in value.mappings.iter_mut().zip(&mappings) {
            *slot = NativeMapping {
                start: *start,
                end: *end,
                bias: *bias,
                first_row: binary.first_row,
                rows: binary.rows,
            };
        }
        self.mapping_writes.push((pid, value));
        self.processes.insert(
            pid,
            ProcessMaps {
                mappings,
                read_at: Instant::now(),
                stale: false,
            },
        );
        true
    }

    /// A sample of process `pid` whose unwind stopped at `addr`, outside
    /// every mapping known: its mappings are read again now (at most every
    /// [`REREAD_EVERY`]), so that the address is named, and the kernel
    /// gets them at the next refresh.
    /// A process unknown here (a child forked without `exec`: the kernel
    /// gave it its parent's mappings) is read at its first sample. True
    /// when it read them, or took in binaries it waited for.
    pub fn before_sample(&mut self, pid: u32, end: u32, addr: Option<u64>) -> bool {
        if self.waiting.contains(&pid) {
            // Its binaries may be read by now: the kernel gets them at the
            // refresh a true brings, not at the next one due.
            return self.poll();
        }
        let Some(process) = self.processes.get(&pid) else {
            return self.load(pid);
        };
        if end != native_end::NO_MAPPING {
            return false;
        }
        let known = addr.is_some_and(|a| process.mappings.iter().any(|m| m.0 <= a && a < m.1));
        !known && process.read_at.elapsed() >= REREAD_EVERY && self.load(pid)
    }

    /// A sample of process `pid` came without a native stack: the kernel
    /// has no mappings of it yet. A process unknown here is read now; one
    /// waiting for its binaries gets those read by now. True when there
    /// is something for the kernel.
    pub fn before_sample_without_stack(&mut self, pid: u32) -> bool {
        if self.waiting.contains(&pid) {
            self.poll()
        } else {
            !self.processes.contains_key(&pid) && self.load(pid)
        }
    }

    /// A sample of process `pid` came with a native stack that ended so
    /// (`native_end`); `matched`: its eval frames and Python frames paired.
    pub fn on_sample(&mut self, pid: u32, end: u32, matched: bool) {
        if let Some(count) = self.counts.samples_by_end.get_mut(end as usize) {
            *count += 1;
        }
        self.counts.unmatched += u64::from(!matched);
        // Code outside its known mappings: a library loaded since.
        if end == native_end::NO_MAPPING
            && let Some(process) = self.processes.get_mut(&pid)
        {
            process.stale = true;
        }
    }

    /// Processes whose mappings are to be read again now.
    pub fn stale(&self) -> Vec<u32> {
        self.processes
            .iter()
            .filter(|(_, p)| p.stale && p.read_at.elapsed() >= REREAD_EVERY)
            .map(|(&pid, _)| pid)
            .collect()
    }

    /// The rows and mappings the kernel side does not have yet.
    #[allow(clippy::type_complexity)]
    pub fn take_writes(
        &mut self,
    ) -> (
        Vec<(u32, Box<NativeRowBlock>)>,
        Vec<(u32, Box<NativeMappings>)>,
    ) {
        (
            std::mem::take(&mut self.row_writes),
            std::mem::take(&mut self.mapping_writes),
        )
    }

    /// The binary behind `mapping`, if it is known; else it is read on
    /// the learner's thread, and `None` till [`Self::poll`] has it.
    fn binary(&mut self, pid: u32, mapping: &Mapping) -> Option<Rc<Binary>> {
        let key = mapping.cache_key();
        if let Some(binary) = self.binaries.get(&key) {
            return Some(binary.clone());
        }
        if self.pending.insert(key.clone()) {
            self.learner.get_or_insert_with(Learner::start).send(Job {
                sent: Instant::now(),
                key,
                path: mapping.path.clone(),
                // The mapped file itself, whatever the namespaces (a
                // container's), else by its path in the process's root.
                sources: vec![
                    procfs::map_file(pid, mapping.start, mapping.end),
                    procfs::in_root(pid, &mapping.path),
                ],
            });
        }
        None
    }

    /// Takes in the binaries the learner has read since, and loads again
    /// the processes that waited for them. True when there were some.
    pub fn poll(&mut self) -> bool {
        let Some(learner) = &self.learner else {
            return false;
        };
        let learnt = learner.finished();
        if learnt.is_empty() {
            return false;
        }
        for Learnt {
            key,
            mut binary,
            rows,
            debugdata_unreadable,
        } in learnt
        {
            self.pending.remove(&key);
            self.counts.binaries += 1;
            self.counts.debugdata_unreadable += u64::from(debugdata_unreadable);
            match rows {
                Some(rows) => self.place(&mut binary, rows),
                None => self.counts.binaries_without_table += 1,
            }
            self.binaries.insert(key, Rc::new(binary));
        }
        for pid in std::mem::take(&mut self.waiting) {
            self.load(pid);
        }
        true
    }

    /// The vDSO mapped at `start..end` of a process, as the tracer's own
    /// (learnt now if it was not), with its bias; `None` when its size is
    /// not the tracer's (another image: a 32-bit process's).
    fn vdso_at(&mut self, start: u64, end: u64) -> Option<(u64, Rc<Binary>)> {
        if self.vdso.is_none() {
            let learnt = self.learn_vdso();
            self.vdso = Some(learnt);
        }
        let (size, binary) = self.vdso.as_ref()?;
        if *size != end - start {
            return None;
        }
        Some((binary.bias_at(start, 0)?, binary.clone()))
    }

    /// The tracer's own vDSO and its size (0 when it could not be read),
    /// read here (a few KiB, no thread needed). A failure is no binary
    /// without a table in the report: the vDSO never had one before; the
    /// log says why.
    fn learn_vdso(&mut self) -> (u64, Rc<Binary>) {
        let mut binary = Binary::unread(VDSO);
        let image = match vdso::own_image() {
            Ok(image) => image,
            Err(err) => {
                log::warn!("the vDSO is not unwound (native stacks stop there): {err}");
                return (0, Rc::new(binary));
            }
        };
        self.counts.binaries += 1;
        let read = learner::read_elf(&mut binary, &image);
        self.counts.debugdata_unreadable += u64::from(read.debugdata_unreadable);
        match read.rows {
            Ok(rows) => self.place(&mut binary, rows),
            Err(err) => log::warn!("the vDSO is not unwound (native stacks stop there): {err}"),
        }
        (image.len() as u64, Rc::new(binary))
    }

    /// Puts `rows` in the kernel's table, from a block of their own.
    fn place(&mut self, binary: &mut Binary, rows: Vec<NativeRow>) {
        let blocks = rows.len().div_ceil(NATIVE_BLOCK_ROWS) as u32;
        if rows.is_empty() {
            return;
        }
        let Some(first_block) = self.allocate(blocks).or_else(|| {
            self.reclaim();
            self.allocate(blocks)
        }) else {
            if self.counts.binaries_without_table == 0 {
                self.warnings.push(format!(
                    "native unwind tables full ({} rows): {} and binaries learnt after it have \
                     no native frames",
                    self.capacity_blocks as usize * NATIVE_BLOCK_ROWS,
                    binary.path
                ));
            }
            self.counts.binaries_without_table += 1;
            return;
        };
        binary.first_row = first_block * NATIVE_BLOCK_ROWS as u32;
        binary.rows = rows.len() as u32;
        for (i, chunk) in rows.chunks(NATIVE_BLOCK_ROWS).enumerate() {
            // Past the last row: copies of it (never reached, the search
            // is bounded by `rows`).
            let mut block = Box::new(NativeRowBlock {
                rows: [chunk[chunk.len() - 1]; NATIVE_BLOCK_ROWS],
            });
            block.rows[..chunk.len()].copy_from_slice(chunk);
            self.row_writes.push((first_block + i as u32, block));
        }
        self.counts.rows += rows.len() as u64;
    }

    /// `blocks` blocks of the kernel's table: the first free run that
    /// holds them, else past the last used block.
    fn allocate(&mut self, blocks: u32) -> Option<u32> {
        if let Some(i) = self.free.iter().position(|&(_, n)| n >= blocks) {
            let (start, n) = self.free[i];
            if n == blocks {
                self.free.remove(i);
            } else {
                self.free[i] = (start + blocks, n - blocks);
            }
            return Some(start);
        }
        let start = self.next_block;
        (start + blocks <= self.capacity_blocks).then(|| {
            self.next_block += blocks;
            start
        })
    }

    /// The table is full: the rows of binaries that no process known maps
    /// any more (the processes `--serve` forgot) are freed, and those
    /// binaries forgotten (a process that maps one again learns it anew).
    fn reclaim(&mut self) {
        let unused: Vec<String> = self
            .binaries
            .iter()
            .filter(|(_, b)| Rc::strong_count(b) == 1 && b.rows > 0)
            .map(|(key, _)| key.clone())
            .collect();
        for key in unused {
            let Some(binary) = self.binaries.remove(&key) else {
                continue;
            };
            let block = binary.first_row / NATIVE_BLOCK_ROWS as u32;
            let blocks = (binary.rows as usize).div_ceil(NATIVE_BLOCK_ROWS) as u32;
            self.free.push((block, blocks));
            self.counts.rows -= u64::from(binary.rows);
            log::info!("native: rows of {} freed (no process maps it)", binary.path);
        }
        // Adjacent runs become one.
        self.free.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.free.len());
        for &(start, n) in &self.free {
            match merged.last_mut() {
                Some(last) if last.0 + last.1 == start => last.1 += n,
                _ => merged.push((start, n)),
            }
        }
        self.free = merged;
    }

    /// The name of native address `addr` of process `pid`; `inner`: the
    /// interrupted instruction (else a return address, named by the call
    /// before it).
    pub fn resolve(&self, pid: u32, addr: u64, inner: bool) -> Resolved {
        let at = if inner { addr } else { addr.saturating_sub(1) };
        let found = self.processes.get(&pid).and_then(|p| {
            let i = p.mappings.partition_point(|m| m.0 <= at).checked_sub(1)?;
            let m = &p.mappings[i];
            (at < m.1).then_some(m)
        });
        let Some((_, _, bias, binary)) = found else {
            return Resolved::Unknown(native_frame(format!("{addr:#x}"), "[unknown]"));
        };
        let vaddr = at.wrapping_sub(*bias);
        if binary
            .eval
            .iter()
            .any(|&(start, end)| start <= vaddr && vaddr < end)
        {
            return Resolved::Eval;
        }
        let name = match binary.symbols.name(vaddr) {
            Some(name) => name.to_string(),
            None => {
                // A function no symbol names (a static function of a
                // stripped library): by its start, so that its samples
                // add up, else by the address itself.
                let at = binary.functions.partition_point(|f| f.0 <= vaddr);
                let start = at
                    .checked_sub(1)
                    .map(|i| binary.functions[i])
                    .filter(|f| vaddr < f.1)
                    .map_or(vaddr, |f| f.0);
                let file = binary.path.rsplit('/').next().unwrap_or(&binary.path);
                format!("{file}+{start:#x}")
            }
        };
        Resolved::Frame(native_frame(name, &binary.path), binary.origin())
    }
}

/// A function's range and the parts of it the compiler moved elsewhere
/// (GCC's `-freorder-blocks-and-partition`: `NAME.cold`, which only a
/// `.symtab` names; Debian's CPython 3.14 runs its bytecodes there): the
/// functions of the unwind table that no symbol covers (or a `.cold` one
/// of its own) and that the function's code jumps to the start of (`jmp`
/// / `jcc` rel32).
fn split_parts(
    file: &object::File<'_>,
    symbols: &Symbols,
    functions: &[(u64, u64)],
    (start, end): (u64, u64),
) -> Vec<(u64, u64)> {
    let mut parts = vec![(start, end)];
    let Some(code) = file.sections().find_map(|s| {
        let (at, size) = (s.address(), s.size());
        (at <= start && end <= at + size)
            .then(|| s.data_range(start, end - start).ok().flatten())
            .flatten()
    }) else {
        return parts;
    };
    let target = |at: usize, len: usize| -> Option<u64> {
        let rel = i32::from_le_bytes(code.get(at..at + 4)?.try_into().ok()?);
        Some((start + (at + 4) as u64).wrapping_add(rel as i64 as u64)).filter(|_| len > 0)
    };
    for i in 0..code.len() {
        let jump = match (code[i], code.get(i + 1)) {
            (0xe9, _) => target(i + 1, 5),
            (0x0f, Some(&op)) if (0x80..=0x8f).contains(&op) => target(i + 2, 6),
            _ => None,
        };
        let Some(to) = jump.filter(|&to| to < start || to >= end) else {
            continue;
        };
        // Unnamed, or named as its part by a `.symtab` (MiniDebugInfo's).
        let part = symbols
            .name(to)
            .is_none_or(|name| name.starts_with(EVAL_FUNCTION) && name.ends_with(".cold"));
        if let Ok(at) = functions.binary_search_by_key(&to, |f| f.0)
            && part
            && !parts.contains(&functions[at])
        {
            parts.push(functions[at]);
        }
    }
    parts
}

fn native_frame(name: String, file: &str) -> Frame {
    Frame {
        qualname: name.clone(),
        function: name,
        file: file.to_string(),
        native: true,
        ..Frame::default()
    }
}

/// [`NativeMode::Libraries`]: a sample's native slots (innermost first;
/// `None`: an eval-loop frame) without the interpreter's own frames, nor
/// the C library's where the interpreter calls it. Each run of native
/// frames is read from its caller's end: code the interpreter runs is
/// left out up to a library's frame; what that library calls is kept.
pub fn leave_out_interpreter<T>(slots: Vec<Option<(T, Origin)>>) -> Vec<Option<T>> {
    let mut kept = Vec::with_capacity(slots.len());
    let mut from_interpreter = true;
    for slot in slots.into_iter().rev() {
        let Some((frame, origin)) = slot else {
            from_interpreter = true;
            kept.push(None);
            continue;
        };
        let keep = match origin {
            Origin::Interpreter => {
                from_interpreter = true;
                false
            }
            Origin::System => !from_interpreter,
            Origin::Library => {
                from_interpreter = false;
                true
            }
        };
        if keep {
            kept.push(Some(frame));
        }
    }
    kept.reverse();
    kept
}

/// A sample's native frames (innermost first) with the Python frames in
/// place of each eval-loop frame: `groups` are the Python frames each
/// call of the eval loop runs, innermost first. Native frames outside the
/// outermost Python frame (`main`, `_start`, a thread's start) are left
/// out: every stack is rooted in Python as with `--native=off`. Groups left
/// when the native stack ends (an unwind that stopped early) go outside
/// it. Returns the frames and whether every eval frame met its group.
pub fn splice<T>(native: Vec<Option<T>>, groups: Vec<Vec<T>>) -> (Vec<T>, bool) {
    let mut groups = groups.into_iter();
    let mut out = Vec::new();
    let mut rooted_at = None;
    let mut matched = true;
    for slot in native {
        match slot {
            Some(frame) => out.push(frame),
            None => match groups.next() {
                Some(group) => {
                    out.extend(group);
                    rooted_at = Some(out.len());
                }
                // An eval call with no Python frame of its own yet.
                None => matched = false,
            },
        }
    }
    let rest: Vec<T> = groups.flatten().collect();
    if rest.is_empty() {
        if let Some(len) = rooted_at {
            out.truncate(len);
        }
    } else {
        matched = false;
        out.extend(rest);
    }
    (out, matched)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The system's zlib, as the tests' workloads use it.
    pub(crate) fn system_zlib() -> Vec<u8> {
        [
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
        ]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .expect("zlib1g is installed (CPython needs it)")
    }

    #[test]
    fn executable_memory_that_is_no_file_is_known() {
        let maps = "\
55d0c0a00000-55d0c0b00000 r-xp 00001000 fd:01 1234 /usr/bin/python3.11
7f0000000000-7f0000001000 rwxp 00000000 00:00 0 
7ffd5a7f2000-7ffd5a7f4000 r-xp 00000000 00:00 0                          [vdso]
7ffd5a7f4000-7ffd5a7f6000 r--p 00000000 00:00 0                          [vvar]
";
        assert_eq!(
            anonymous_code(maps),
            vec![
                (
                    0x7f00_0000_0000,
                    0x7f00_0000_1000,
                    "[anonymous]".to_string()
                ),
                (0x7ffd_5a7f_2000, 0x7ffd_5a7f_4000, "[vdso]".to_string()),
            ]
        );
    }

    #[test]
    fn eval_frames_become_their_python_frames_and_the_root_is_python() {
        // deflate <- zlib_compress <- eval(compress_loop, <module>) <- main
        let native = vec![
            Some("deflate"),
            Some("zlib_compress"),
            None,
            Some("PyObject_Call"),
            None,
            Some("Py_RunMain"),
            Some("main"),
        ];
        let groups = vec![vec!["compress_loop", "run"], vec!["<module>"]];
        assert_eq!(
            splice(native, groups),
            (
                vec![
                    "deflate",
                    "zlib_compress",
                    "compress_loop",
                    "run",
                    "PyObject_Call",
                    "<module>"
                ],
                true
            )
        );
    }

    #[test]
    fn the_interpreter_and_the_c_library_it_calls_are_left_out() {
        use Origin::*;
        // memcpy <- deflate <- zlib_compress <- eval <- PyObject_Call <- eval <- main
        let native = vec![
            Some(("memcpy", System)),
            Some(("deflate", Library)),
            Some(("zlib_compress", Interpreter)),
            None,
            Some(("PyObject_Call", Interpreter)),
            None,
            Some(("main", Library)),
            Some(("__libc_start_main", System)),
        ];
        assert_eq!(
            leave_out_interpreter(native),
            vec![Some("memcpy"), Some("deflate"), None, None, Some("main")]
        );
        // A pure-Python function's leaves: the interpreter's, and libc's
        // as the interpreter calls it.
        let native = vec![
            Some(("__memmove_avx_unaligned", System)),
            Some(("list_resize", Interpreter)),
            None,
        ];
        assert_eq!(leave_out_interpreter(native), vec![None]);
        // An extension's function called straight from the eval loop
        // keeps the C library it calls; a stop before any eval frame is
        // read as called by the interpreter.
        let native = vec![
            Some(("sem_wait", System)),
            Some(("wait_for_result", Library)),
            None,
            Some(("clock_gettime", System)),
        ];
        assert_eq!(
            leave_out_interpreter(native),
            vec![Some("sem_wait"), Some("wait_for_result"), None]
        );
    }

    /// A binary of `rows` rows placed as `learn` does, and kept in the
    /// cache under `key`.
    fn placed(stacks: &mut NativeStacks, key: &str, rows: usize) -> Rc<Binary> {
        let mut binary = Binary::unread(key);
        stacks.place(&mut binary, vec![NativeRow::default(); rows]);
        let binary = Rc::new(binary);
        stacks.binaries.insert(key.to_string(), binary.clone());
        binary
    }

    #[test]
    fn a_full_table_takes_back_the_rows_no_process_maps() {
        let mut stacks = NativeStacks::new(4, NativeMode::Libraries);
        let a = placed(&mut stacks, "a", 2 * NATIVE_BLOCK_ROWS);
        let b = placed(&mut stacks, "b", NATIVE_BLOCK_ROWS + 1);
        assert_eq!(
            (a.first_row, b.first_row),
            (0, 2 * NATIVE_BLOCK_ROWS as u32)
        );
        // Full: a third binary has no table while both are in use.
        let c = placed(&mut stacks, "c", 1);
        assert_eq!((c.rows, stacks.counts.binaries_without_table), (0, 1));
        stacks.binaries.remove("c");
        // `a` is mapped by no process any more: its two blocks are reused.
        drop(a);
        let d = placed(&mut stacks, "d", 10);
        let e = placed(&mut stacks, "e", NATIVE_BLOCK_ROWS);
        assert_eq!((d.first_row, d.rows), (0, 10));
        assert_eq!(e.first_row, NATIVE_BLOCK_ROWS as u32);
        assert!(!stacks.binaries.contains_key("a"));
        assert_eq!(
            stacks.counts.rows,
            (NATIVE_BLOCK_ROWS + 1 + 10 + NATIVE_BLOCK_ROWS) as u64
        );
        // All freed: their runs, adjacent, are merged into one.
        drop((b, d, e));
        let f = placed(&mut stacks, "f", 4 * NATIVE_BLOCK_ROWS);
        assert_eq!((f.first_row, f.rows), (0, 4 * NATIVE_BLOCK_ROWS as u32));
    }

    #[test]
    fn system_libraries_are_known_by_file_name() {
        for path in [
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/usr/lib64/ld-linux-x86-64.so.2",
            "/lib/ld-musl-x86_64.so.1",
            "[vdso]",
        ] {
            assert!(is_system(path), "{path}");
        }
        for path in [
            "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
            "/tmp/libcurl.so.4",
        ] {
            assert!(!is_system(path), "{path}");
        }
    }

    #[test]
    fn an_unwind_that_stopped_early_keeps_every_python_frame() {
        let native = vec![Some("deflate"), None, Some("PyObject_Call")];
        let groups = vec![vec!["inner"], vec!["outer"]];
        assert_eq!(
            splice(native, groups),
            (vec!["deflate", "inner", "PyObject_Call", "outer"], false)
        );
        // No eval frame found at all: native first, then Python.
        assert_eq!(
            splice(vec![Some("x")], vec![vec!["f"]]),
            (vec!["x", "f"], false)
        );
        // More eval frames than groups: nothing invented.
        assert_eq!(
            splice(vec![None, Some("c"), None], vec![vec!["f"]]),
            (vec!["f"], false)
        );
    }
}
