//! Symbolization: a sampled frame (code-object address + instruction
//! position) -> [`Frame`], by reading the code object out of the process.
//! One cache per process; a code object is read once, and its identity is
//! re-checked once per refresh tick, since a freed code object's address is
//! soon reused by another one. Frames are interned in one [`FrameTable`]
//! for the whole trace, whatever process they came from.

use std::{
    collections::{HashMap, HashSet},
    rc::Rc,
};

use tracer_common::PyFrameRecord;

use super::{
    code::{self, CodeInfo},
    layout::Offsets,
    memory::Memory,
};
use crate::frame::Frame;

/// What symbolizing needs to know about the process.
pub struct CodeSource<'a> {
    pub memory: &'a dyn Memory,
    pub offsets: &'a Offsets,
    /// Run-time address of `PyCode_Type`, when known.
    pub code_type: Option<u64>,
}

/// Code objects of one process read so far, by address.
#[derive(Default)]
pub struct Symbols {
    codes: HashMap<u64, CodeEntry>,
    /// Addresses whose identity was checked since the last refresh tick.
    checked: HashSet<u64>,
    /// Reads of code objects made so far (numbers each `CodeEntry`).
    reads: u64,
    /// (code object read, instruction position) -> its frame: a line table
    /// is walked once per position, not once per sample.
    positions: HashMap<(u64, u64), FrameId>,
}

/// Every distinct frame symbolized in the trace, by [`FrameId`].
#[derive(Default)]
pub struct FrameTable {
    frames: Vec<Frame>,
    ids: HashMap<Frame, FrameId>,
}

impl FrameTable {
    pub fn intern(&mut self, frame: Frame) -> FrameId {
        if let Some(&id) = self.ids.get(&frame) {
            return id;
        }
        let id = FrameId(self.frames.len() as u32);
        self.frames.push(frame.clone());
        self.ids.insert(frame, id);
        id
    }

    pub fn get(&self, id: FrameId) -> &Frame {
        &self.frames[id.0 as usize]
    }
}

/// A frame interned by [`FrameTable`]: sampled stacks are kept as these, so
/// a sample costs no string copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameId(u32);

/// What is cached per code-object address: the fields that identify the
/// object, what was read of it (`None`: unreadable), and which read it was.
struct CodeEntry {
    identity: Vec<u8>,
    info: Option<Rc<CodeInfo>>,
    read: u64,
}

impl Symbols {
    /// A new refresh tick: identities are checked again on next use.
    pub fn new_tick(&mut self) {
        self.checked.clear();
    }

    /// [`Symbols::frame_ids`] for a stack seen once (a kernel event's: a
    /// read, a sleep, a fork, a signal delivery), kept for the whole report:
    /// each code object's identity is checked now, even if it was this tick,
    /// since an address freed and reused by another code object a moment
    /// ago (imports at start-up) must not name this stack for good.
    pub fn frame_ids_verified(
        &mut self,
        table: &mut FrameTable,
        source: &CodeSource,
        records: &[PyFrameRecord],
    ) -> Vec<FrameId> {
        for record in records {
            if let Some((code, _)) = python_frame(source.offsets, record) {
                self.checked.remove(&code);
            }
        }
        self.frame_ids(table, source, records)
    }

    /// The Python frames of a raw stack, innermost first; frames that are
    /// not Python code (C-stack entry frames, no code object) are left out.
    pub fn frame_ids(
        &mut self,
        table: &mut FrameTable,
        source: &CodeSource,
        records: &[PyFrameRecord],
    ) -> Vec<FrameId> {
        records
            .iter()
            .filter_map(|record| python_frame(source.offsets, record))
            .map(|(code, instr)| self.frame_id(table, source, code, instr))
            .collect()
    }

    fn frame_id(
        &mut self,
        table: &mut FrameTable,
        source: &CodeSource,
        code: u64,
        instr: u64,
    ) -> FrameId {
        let (read, info) = self.code(source, code);
        if let Some(&id) = self.positions.get(&(read, instr)) {
            return id;
        }
        let frame = match info {
            Some(info) => Frame {
                qualname: info.qualname.clone(),
                function: info.name.clone(),
                file: info.filename.clone(),
                line: info.line_at(source.offsets.instr_kind, instr).unwrap_or(0),
                first_line: info.firstlineno,
            },
            None => Frame::unresolved(code),
        };
        let id = table.intern(frame);
        self.positions.insert((read, instr), id);
        id
    }

    /// The function of the code object at `code` (an address as the entry
    /// counter keys it), its `def` line as `line`.
    pub fn function(&mut self, source: &CodeSource, code: u64) -> Frame {
        let code = mask_code(source.offsets, code);
        match self.code(source, code).1 {
            Some(info) => Frame {
                qualname: info.qualname.clone(),
                function: info.name.clone(),
                file: info.filename.clone(),
                line: info.firstlineno,
                first_line: info.firstlineno,
            },
            None => Frame::unresolved(code),
        }
    }

    /// The code object now at `code`, and which read of it this is.
    /// Re-reads it when the address now holds another object.
    fn code(&mut self, source: &CodeSource, code: u64) -> (u64, Option<Rc<CodeInfo>>) {
        if let Some(entry) = self.codes.get(&code)
            && self.checked.contains(&code)
        {
            return (entry.read, entry.info.clone());
        }
        let identity = code_identity(source, code);
        self.checked.insert(code);
        // Unreadable now (the process has exited): trust what was read while it ran.
        if let Some(entry) = self.codes.get(&code)
            && (entry.identity == identity || identity.is_empty())
        {
            return (entry.read, entry.info.clone());
        }
        let info = match code::read_code(source.memory, source.offsets, code, source.code_type) {
            Ok(info) => Some(Rc::new(info)),
            Err(err) => {
                log::debug!("code object {code:#x}: {err}");
                // Freed since it was read (an event drained late, while the
                // process finalizes): the event saw it alive, and what was
                // read then is what it saw.
                if let Some(entry) = self.codes.get(&code)
                    && entry.info.is_some()
                {
                    return (entry.read, entry.info.clone());
                }
                None
            }
        };
        self.reads += 1;
        self.codes.insert(
            code,
            CodeEntry {
                identity,
                info: info.clone(),
                read: self.reads,
            },
        );
        (self.reads, info)
    }
}

/// 3.14: `f_executable` is a `_PyStackRef` whose low bits are tags.
pub fn mask_code(o: &Offsets, code: u64) -> u64 {
    if o.code_is_stackref { code & !7 } else { code }
}

/// A sampled frame's code object and instruction value, or `None` for
/// frames that are not Python code (C-stack entry frames, no code object).
pub fn python_frame(o: &Offsets, f: &PyFrameRecord) -> Option<(u64, u64)> {
    let owner = (f.instr >> 56) as u8;
    if o.owner_skip_from.is_some_and(|skip| owner >= skip) {
        return None;
    }
    let code = mask_code(o, f.code);
    (code != 0).then_some((code, f.instr & 0x00ff_ffff_ffff_ffff))
}

/// The bytes of a code object that tell one object from another at the same
/// address (see [`identity_of`]), read in one go; empty when unreadable.
fn code_identity(source: &CodeSource, code: u64) -> Vec<u8> {
    let fields = identity_fields(source.offsets);
    let end = fields
        .iter()
        .map(|&(off, len)| off + len)
        .max()
        .unwrap_or(0);
    match source.memory.read_vec(code, end as usize) {
        Ok(prefix) => identity_of(&prefix, &fields),
        Err(_) => Vec::new(),
    }
}

/// (offset, length) of the fields that identify a code object: its type,
/// first line and name, filename, line-table and qualname pointers. Not
/// the reference count nor the interpreter's own counters in between,
/// which change all the time.
fn identity_fields(o: &Offsets) -> Vec<(u64, u64)> {
    let mut fields = vec![(o.ob_type, 8), (o.code_firstlineno, 4)];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::layout;

    /// A synthetic 3.11 code object named `name` at `addr` in `mem`.
    /// Its name and line table live at `strings` (another object's elsewhere).
    fn put_code(mem: &mut crate::python::memory::Snapshot, addr: u64, name: &str, strings: u64) {
        let o = layout::static_offsets(11).unwrap();
        let string = strings;
        let mut s = vec![0u8; 48];
        s[16..24].copy_from_slice(&(name.len() as u64).to_le_bytes());
        s[32..36].copy_from_slice(&((1u32 << 2) | (1 << 5) | (1 << 6)).to_le_bytes());
        s.extend_from_slice(name.as_bytes());
        mem.insert(string, &s);
        let table = strings + 0x400;
        let mut t = vec![0u8; 32];
        t[16..24].copy_from_slice(&1u64.to_le_bytes());
        t.push(0x80 | (13 << 3));
        mem.insert(table, &t);
        let mut c = vec![0u8; 256];
        let mut put =
            |at: u64, v: u64| c[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
        put(8, 0x7000);
        put(o.code_name, string);
        put(o.code_qualname.unwrap(), string);
        put(o.code_filename, string);
        put(o.code_linetable, table);
        c[o.code_firstlineno as usize..o.code_firstlineno as usize + 4]
            .copy_from_slice(&1u32.to_le_bytes());
        mem.insert(addr, &c);
    }

    /// A code object freed and its address reused by another within one
    /// refresh tick: samples trust the tick's check (cheap), a stack seen
    /// once is checked again and named by the object there now.
    #[test]
    fn stacks_seen_once_are_named_by_the_object_there_now() {
        let o = layout::static_offsets(11).unwrap();
        let mut mem = crate::python::memory::Snapshot::default();
        put_code(&mut mem, 0x10000, "site_module", 0x20000);
        let record = [PyFrameRecord {
            code: 0x10000,
            instr: 0x10000 + o.code_adaptive.unwrap(),
        }];
        let mut symbols = Symbols::default();
        let mut table = FrameTable::default();
        let name = |symbols: &mut Symbols, table: &mut FrameTable, mem, verified: bool| {
            let source = CodeSource {
                memory: mem,
                offsets: &o,
                code_type: Some(0x7000),
            };
            let ids = if verified {
                symbols.frame_ids_verified(table, &source, &record)
            } else {
                symbols.frame_ids(table, &source, &record)
            };
            table.get(ids[0]).qualname.clone()
        };
        assert_eq!(name(&mut symbols, &mut table, &mem, false), "site_module");
        // Freed; the address now holds the script's own module code.
        let mut reused = crate::python::memory::Snapshot::default();
        put_code(&mut reused, 0x10000, "app_module", 0x30000);
        assert_eq!(
            name(&mut symbols, &mut table, &reused, false),
            "site_module"
        );
        assert_eq!(name(&mut symbols, &mut table, &reused, true), "app_module");
        // And from the next tick on, samples see it too.
        symbols.new_tick();
        assert_eq!(name(&mut symbols, &mut table, &reused, false), "app_module");
    }

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
}
