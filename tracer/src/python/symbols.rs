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
    memory::{Memory, ProcessMemory},
};
use crate::frame::Frame;

/// What symbolizing needs to know about the process.
pub struct CodeSource<'a> {
    pub memory: &'a ProcessMemory,
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
