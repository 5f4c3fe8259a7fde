//! Native frames (`--native`): what the kernel's unwinder needs of each
//! process (its executable mappings, each binary's unwind table compiled
//! from `.eh_frame` once for every process that maps it), and the names
//! of the addresses it sends back (ELF symbols, MiniDebugInfo's too, or
//! file and address); the vDSO from the tracer's own copy.
//! Kernel side: `tracer-ebpf/src/native.rs`.

mod symbols;
mod table;
mod vdso;

use std::{
    collections::HashMap,
    rc::Rc,
    time::{Duration, Instant},
};

use object::{Object, ObjectSection, ObjectSegment};
use tracer_common::{
    NATIVE_BLOCK_ROWS, NATIVE_MAX_MAPPINGS, NativeMapping, NativeMappings, NativeRow,
    NativeRowBlock, native_end,
};

use crate::{
    frame::Frame,
    procfs,
    python::discover::{Mapping, anonymous_code, parse_maps},
};
pub use symbols::{DebugDataError, Symbols};
pub use table::{TableError, UnwindTable, unwind_table};
use vdso::VDSO;

/// The function CPython runs Python code in: its native frames are
/// replaced by the Python frames each call runs.
pub const EVAL_FUNCTION: &str = "_PyEval_EvalFrameDefault";

/// Rows the kernel's table holds with `--native` (blocks of
/// [`NATIVE_BLOCK_ROWS`]): 1,048,576 rows, 12 MiB. CPython's static
/// executable is ~60,000 rows, libc ~25,000.
pub const TABLE_BLOCKS: u32 = 4096;

/// How often a process's mappings are read again, at most, when its
/// samples meet code outside them (a library loaded since): an import
/// loads one right after the interpreter is found; each sample until the
/// kernel has it is cut short.
const REREAD_EVERY: Duration = Duration::from_millis(5);

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
    Frame(Frame),
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
    row_writes: Vec<(u32, Box<NativeRowBlock>)>,
    mapping_writes: Vec<(u32, Box<NativeMappings>)>,
    pub counts: NativeCounts,
    pub warnings: Vec<String>,
}

impl NativeStacks {
    pub fn new(capacity_blocks: u32) -> Self {
        Self {
            binaries: HashMap::new(),
            vdso: None,
            processes: HashMap::new(),
            next_block: 0,
            capacity_blocks,
            row_writes: Vec::new(),
            mapping_writes: Vec::new(),
            counts: NativeCounts::default(),
            warnings: Vec::new(),
        }
    }

    pub fn knows(&self, pid: u32) -> bool {
        self.processes.contains_key(&pid)
    }

    /// Reads process `pid`'s executable mappings and the binaries behind
    /// them not seen before; the kernel gets them with the next
    /// [`Self::take_writes`]. False when its maps cannot be read (gone).
    pub fn load(&mut self, pid: u32) -> bool {
        let Ok(text) = procfs::maps(pid) else {
            return false;
        };
        let mut mappings = Vec::new();
        for mapping in parse_maps(&text).into_iter().filter(|m| m.executable) {
            let binary = self.binary(pid, &mapping);
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
    /// when it read them.
    pub fn before_sample(&mut self, pid: u32, end: u32, addr: Option<u64>) -> bool {
        let Some(process) = self.processes.get(&pid) else {
            return self.load(pid);
        };
        if end != native_end::NO_MAPPING {
            return false;
        }
        let known = addr.is_some_and(|a| process.mappings.iter().any(|m| m.0 <= a && a < m.1));
        !known && process.read_at.elapsed() >= REREAD_EVERY && self.load(pid)
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

    /// The binary behind `mapping`: learnt now if it is new.
    fn binary(&mut self, pid: u32, mapping: &Mapping) -> Rc<Binary> {
        if let Some(binary) = self.binaries.get(&mapping.cache_key()) {
            return binary.clone();
        }
        let binary = Rc::new(self.learn(pid, mapping));
        self.counts.binaries += 1;
        self.binaries.insert(mapping.cache_key(), binary.clone());
        binary
    }

    fn learn(&mut self, pid: u32, mapping: &Mapping) -> Binary {
        let mut binary = Binary::unread(&mapping.path);
        // The mapped file itself, whatever the namespaces (a container's).
        let data = std::fs::read(procfs::map_file(pid, mapping.start, mapping.end))
            .or_else(|_| std::fs::read(procfs::in_root(pid, &mapping.path)));
        let Ok(data) = data else {
            self.counts.binaries_without_table += 1;
            return binary;
        };
        if let Err(err) = self.read_elf(&mut binary, &data) {
            log::info!("no unwind table for {}: {err}", mapping.path);
            self.counts.binaries_without_table += 1;
        }
        binary
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

    /// The tracer's own vDSO and its size (0 when it could not be read).
    /// A failure is no binary without a table in the report: the vDSO
    /// never had one before; the log says why.
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
        if let Err(err) = self.read_elf(&mut binary, &image) {
            log::warn!("the vDSO is not unwound (native stacks stop there): {err}");
        }
        (image.len() as u64, Rc::new(binary))
    }

    /// What the unwinder and the names need of the ELF file `data`: its
    /// segments, symbols (MiniDebugInfo's too), unwind table (in the
    /// kernel's) and eval loop. An error: no table (no ELF, no
    /// `.eh_frame`).
    fn read_elf(&mut self, binary: &mut Binary, data: &[u8]) -> Result<(), TableError> {
        let file = object::File::parse(data)?;
        binary.segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, size, s.address())
            })
            .collect();
        binary.symbols = Symbols::read(&file);
        if let Err(err) = binary.symbols.add_debugdata(&file) {
            log::info!("{}: {err}", binary.path);
            self.counts.debugdata_unreadable += 1;
        }
        let rows = unwind_table(data).map(|table| {
            binary.functions = table.functions;
            table.rows
        });
        if let Some(range) = binary.symbols.range(EVAL_FUNCTION) {
            binary.eval = split_parts(&file, &binary.symbols, &binary.functions, range);
        }
        self.place(binary, rows?);
        Ok(())
    }

    /// Puts `rows` in the kernel's table, from a block of their own.
    fn place(&mut self, binary: &mut Binary, rows: Vec<NativeRow>) {
        let blocks = rows.len().div_ceil(NATIVE_BLOCK_ROWS) as u32;
        if rows.is_empty() {
            return;
        }
        if self.next_block + blocks > self.capacity_blocks {
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
        }
        binary.first_row = self.next_block * NATIVE_BLOCK_ROWS as u32;
        binary.rows = rows.len() as u32;
        for (i, chunk) in rows.chunks(NATIVE_BLOCK_ROWS).enumerate() {
            // Past the last row: copies of it (never reached, the search
            // is bounded by `rows`).
            let mut block = Box::new(NativeRowBlock {
                rows: [chunk[chunk.len() - 1]; NATIVE_BLOCK_ROWS],
            });
            block.rows[..chunk.len()].copy_from_slice(chunk);
            self.row_writes.push((self.next_block + i as u32, block));
        }
        self.next_block += blocks;
        self.counts.rows += rows.len() as u64;
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
        Resolved::Frame(native_frame(name, &binary.path))
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

/// A sample's native frames (innermost first) with the Python frames in
/// place of each eval-loop frame: `groups` are the Python frames each
/// call of the eval loop runs, innermost first. Native frames outside the
/// outermost Python frame (`main`, `_start`, a thread's start) are left
/// out: every stack is rooted in Python as without `--native`. Groups left
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
