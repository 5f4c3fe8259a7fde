//! Code objects -> function name, file and line. Line tables differ per
//! version: `co_lnotab` (3.8, 3.9), the 3.10 `co_linetable`, and the 3.11+
//! location table.

use super::{
    layout::{InstrKind, LineTableKind, Offsets},
    process_memory::{Memory, MemoryError},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("string object at {0:#x} is not a compact string")]
    NotCompact(u64),
    #[error("object at {0:#x} is not a code object (freed or reused?)")]
    NotCode(u64),
    #[error("implausible length {len} of the object at {addr:#x}")]
    Length { addr: u64, len: u64 },
}

/// Longest string / line table read from the target.
const MAX_STRING: u64 = 4096;
const MAX_TABLE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeInfo {
    pub name: String,
    pub qualname: String,
    pub filename: String,
    pub firstlineno: u32,
    pub linetable: Vec<u8>,
    pub kind: LineTableKind,
    /// Address of the first code unit (3.11+), to turn instruction pointers into offsets.
    pub code_start: u64,
    /// Free-threaded 3.14+: the other copies of the bytecode (one per
    /// thread that specialized it, `co_tlbc`), which instruction pointers of
    /// those threads point into; and the bytecode's length in bytes.
    pub copies: Vec<u64>,
    pub code_bytes: u64,
    /// Named from the sampler's copy ([`CopiedNames`]): the object was
    /// freed before it could be read. Its line table is the kernel's copy
    /// ([`CopiedLines`], a dying thread's code objects only) or none: its
    /// frames' line is then unknown (0), their `def` line known.
    pub copied: bool,
    /// False when `linetable` is only the start of the table (a copy): an
    /// instruction past it has no line rather than the last one's.
    pub table_whole: bool,
}

/// Most per-thread bytecode copies read of one code object.
const MAX_COPIES: u64 = 1024;

/// `co_tlbc` (`_PyCodeArray { Py_ssize_t size; char *entries[]; }`):
/// the bytecode copies other than `co_code_adaptive` itself (entry 0).
fn bytecode_copies(mem: &dyn Memory, tlbc: u64, code_start: u64) -> Result<Vec<u64>, CodeError> {
    if tlbc == 0 {
        return Ok(Vec::new());
    }
    let size = mem.u64(tlbc)?;
    if size > MAX_COPIES {
        return Err(CodeError::Length {
            addr: tlbc,
            len: size,
        });
    }
    let raw = mem.read_vec(tlbc.wrapping_add(8), size as usize * 8)?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .filter(|&entry| entry != 0 && entry != code_start)
        .collect())
}

/// Reads a `str` object (compact ASCII or compact UCS-1/2/4).
pub fn read_unicode(mem: &dyn Memory, o: &Offsets, addr: u64) -> Result<String, CodeError> {
    let len = mem.u64(addr.wrapping_add(o.unicode_length))?;
    if len > MAX_STRING {
        return Err(CodeError::Length { addr, len });
    }
    let state = mem.u32(addr.wrapping_add(o.unicode_state))?;
    let kind = (state >> 2) & 7;
    let compact = (state >> 5) & 1 == 1;
    let ascii = (state >> 6) & 1 == 1;
    if !compact {
        return Err(CodeError::NotCompact(addr));
    }
    if ascii {
        let bytes = mem.read_vec(addr.wrapping_add(o.ascii_size), len as usize)?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    let width = match kind {
        1 | 2 | 4 => kind as usize,
        _ => return Err(CodeError::NotCompact(addr)),
    };
    let bytes = mem.read_vec(addr.wrapping_add(o.compact_size), len as usize * width)?;
    Ok(decode_chars(&bytes, width))
}

/// The characters of a compact string: `width` bytes each (1: Latin-1, 2:
/// UCS-2, 4: UCS-4), little-endian.
pub fn decode_chars(bytes: &[u8], width: usize) -> String {
    bytes
        .chunks_exact(width)
        .map(|c| {
            let mut v = [0u8; 4];
            v[..width].copy_from_slice(c);
            char::from_u32(u32::from_le_bytes(v)).unwrap_or('\u{fffd}')
        })
        .collect()
}

/// The names of a code object as the sampler copied them when it met it
/// (`PyCodeNames`): what its frames are named by once it is freed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedNames {
    pub name: String,
    /// `None` before 3.11 (no `co_qualname`).
    pub qualname: Option<String>,
    pub filename: String,
    pub first_line: u32,
}

impl CopiedNames {
    /// The strings of the sampler's record, decoded; `None` when its name
    /// or file could not be read (every code object has a name and a
    /// file): a frame is rather unnamed than named "" by a torn copy.
    pub fn from_record(record: &tracer_common::PyCodeNames) -> Option<Self> {
        let copied = |s: &tracer_common::PyStringCopy| {
            let n = (s.copied as usize).min(s.bytes.len());
            copied_str(s.length, s.state, &s.bytes[..n])
        };
        Some(CopiedNames {
            name: copied(&record.name).filter(|name| !name.is_empty())?,
            // No code object has an empty qualname: a copy that reads
            // empty was torn (a 3.11 `<module>` came out nameless); its
            // name stands in, as before 3.11.
            qualname: copied(&record.qualname).filter(|q| !q.is_empty()),
            filename: copied(&record.filename)?,
            first_line: record.first_line,
        })
    }

    /// As a [`CodeInfo`] without a line table.
    pub fn into_code_info(self, kind: LineTableKind) -> CodeInfo {
        CodeInfo {
            qualname: self.qualname.unwrap_or_else(|| self.name.clone()),
            name: self.name,
            filename: self.filename,
            firstlineno: self.first_line,
            linetable: Vec::new(),
            kind,
            code_start: 0,
            copies: Vec::new(),
            code_bytes: 0,
            copied: true,
            table_whole: false,
        }
    }

    /// As a [`CodeInfo`] with the line table the kernel copied; `code`
    /// is the object's address (3.11+ frames point into its bytecode).
    pub fn with_lines(self, o: &Offsets, code: u64, lines: &CopiedLines) -> CodeInfo {
        CodeInfo {
            linetable: lines.table.clone(),
            table_whole: lines.whole,
            code_start: o.code_adaptive.map_or(0, |off| code.wrapping_add(off)),
            ..self.into_code_info(o.line_table)
        }
    }
}

/// The start of a code object's line table as the kernel copied it
/// (`PyCodeLines`), when a signal killed a thread running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedLines {
    pub table: Vec<u8>,
    /// The copy holds the whole table.
    pub whole: bool,
}

impl CopiedLines {
    pub fn from_record(record: &tracer_common::PyCodeLines) -> Self {
        let n = (record.copied as usize).min(record.bytes.len());
        CopiedLines {
            table: record.bytes[..n].to_vec(),
            whole: record.copied == record.length,
        }
    }
}

/// A string the sampler copied: its length in characters, its state word
/// and the last bytes of its characters. A string longer than the copy
/// starts with `…`; `None` when nothing was copied.
pub fn copied_str(length: u64, state: u32, tail: &[u8]) -> Option<String> {
    let compact = (state >> 5) & 1 == 1;
    let width = if (state >> 6) & 1 == 1 {
        1
    } else {
        ((state >> 2) & 7) as usize
    };
    if !compact || !matches!(width, 1 | 2 | 4) || (tail.is_empty() && length != 0) {
        return None;
    }
    let text = if width == 1 && (state >> 6) & 1 == 1 {
        String::from_utf8_lossy(tail).into_owned()
    } else {
        decode_chars(tail, width)
    };
    let whole = tail.len() as u64 >= length.saturating_mul(width as u64);
    Some(if whole { text } else { format!("…{text}") })
}

pub fn read_bytes(mem: &dyn Memory, o: &Offsets, addr: u64) -> Result<Vec<u8>, CodeError> {
    let len = mem.u64(addr.wrapping_add(o.bytes_size))?;
    if len > MAX_TABLE {
        return Err(CodeError::Length { addr, len });
    }
    Ok(mem.read_vec(addr.wrapping_add(o.bytes_data), len as usize)?)
}

/// `code_type`: address of `PyCode_Type`; when known, anything whose
/// `ob_type` differs is rejected rather than misnamed.
pub fn read_code(
    mem: &dyn Memory,
    o: &Offsets,
    code: u64,
    code_type: Option<u64>,
) -> Result<CodeInfo, CodeError> {
    if let Some(expected) = code_type
        && mem.u64(code.wrapping_add(o.ob_type))? != expected
    {
        return Err(CodeError::NotCode(code));
    }
    let name = read_unicode(mem, o, mem.u64(code.wrapping_add(o.code_name))?)?;
    let qualname = match o.code_qualname {
        Some(off) => read_unicode(mem, o, mem.u64(code.wrapping_add(off))?)?,
        None => name.clone(),
    };
    // CPython names every code object (`<module>`, `<lambda>`, ...): an
    // empty name is memory being freed or reused, not this object.
    if name.is_empty() || qualname.is_empty() {
        return Err(CodeError::NotCode(code));
    }
    let filename = read_unicode(mem, o, mem.u64(code.wrapping_add(o.code_filename))?)?;
    let firstlineno = mem.u32(code.wrapping_add(o.code_firstlineno))?;
    let linetable = read_bytes(mem, o, mem.u64(code.wrapping_add(o.code_linetable))?)?;
    let code_start = o.code_adaptive.map_or(0, |off| code.wrapping_add(off));
    let (copies, code_bytes) = match o.code_tlbc {
        Some(off) => (
            bytecode_copies(mem, mem.u64(code.wrapping_add(off))?, code_start)?,
            mem.u64(code.wrapping_add(o.var_size))?.saturating_mul(2),
        ),
        None => (Vec::new(), 0),
    };
    Ok(CodeInfo {
        name,
        qualname,
        filename,
        firstlineno,
        linetable,
        kind: o.line_table,
        code_start,
        copies,
        code_bytes,
        copied: false,
        table_whole: true,
    })
}

impl CodeInfo {
    /// The line being executed, from a sampled frame's raw instruction value.
    pub fn line_at(&self, instr_kind: InstrKind, raw: u64) -> Option<u32> {
        if self.linetable.is_empty() {
            return None;
        }
        let raw = raw & 0x007f_ffff_ffff_ffff;
        match instr_kind {
            InstrKind::LastiBytes => {
                let lasti = (raw as u32 as i32).max(0) as u64;
                self.line_for_offset(lasti)
            }
            InstrKind::LastiUnits => {
                let lasti = (raw as u32 as i32).max(0) as u64;
                self.line_for_offset(lasti * 2)
            }
            InstrKind::Pointer => {
                let start = self.bytecode_of(raw);
                // A copy knows no bytecode copies (free-threaded): a
                // pointer into one is not below the object's own.
                if self.copied && raw < start {
                    return None;
                }
                let units = raw.saturating_sub(start) / 2;
                self.line_for_offset(units * 2)
            }
        }
    }

    /// The start of the bytecode copy an instruction pointer points into:
    /// `co_code_adaptive`, or (free-threaded 3.14+) a thread's own copy.
    fn bytecode_of(&self, instr: u64) -> u64 {
        let inside = |start: u64| (start..start.saturating_add(self.code_bytes)).contains(&instr);
        if self.copies.is_empty() || inside(self.code_start) {
            return self.code_start;
        }
        self.copies
            .iter()
            .copied()
            .find(|&start| inside(start))
            .unwrap_or(self.code_start)
    }

    /// Line of the instruction at `offset` bytes into the bytecode.
    pub fn line_for_offset(&self, offset: u64) -> Option<u32> {
        // `co_lnotab` says nothing of where the code ends: an offset past a
        // copied start of it has no line (the later tables end in entries).
        if !self.table_whole && self.kind == LineTableKind::Lnotab {
            let covered: u64 = self.linetable.iter().step_by(2).map(|&b| b as u64).sum();
            if offset >= covered {
                return None;
            }
        }
        let line = match self.kind {
            LineTableKind::Lnotab => lnotab_line(&self.linetable, self.firstlineno, offset),
            LineTableKind::Linetable310 => {
                linetable310_line(&self.linetable, self.firstlineno, offset)
            }
            LineTableKind::Locations => {
                locations_line(&self.linetable, self.firstlineno, offset / 2)
            }
        }?;
        u32::try_from(line).ok().filter(|&l| l > 0)
    }
}

/// `PyCode_Addr2Line` of 3.8/3.9.
pub fn lnotab_line(table: &[u8], first: u32, offset: u64) -> Option<i64> {
    let mut line = first as i64;
    let mut addr = 0u64;
    for pair in table.chunks_exact(2) {
        addr += pair[0] as u64;
        if addr > offset {
            break;
        }
        line += pair[1] as i8 as i64;
    }
    Some(line)
}

/// 3.10 `co_linetable`: (byte delta, line delta) pairs; -128 means "no line".
pub fn linetable310_line(table: &[u8], first: u32, offset: u64) -> Option<i64> {
    let mut line = first as i64;
    let mut start = 0u64;
    for pair in table.chunks_exact(2) {
        let end = start + pair[0] as u64;
        let delta = pair[1] as i8;
        let this = if delta == -128 {
            None
        } else {
            line += delta as i64;
            Some(line)
        };
        if start <= offset && offset < end {
            return this;
        }
        start = end;
    }
    None
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut b = self.byte()?;
        let mut value = (b & 63) as u64;
        let mut shift = 0;
        while b & 64 != 0 {
            b = self.byte()?;
            shift += 6;
            if shift > 60 {
                return None;
            }
            value |= ((b & 63) as u64) << shift;
        }
        Some(value)
    }

    fn svarint(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some(if v & 1 == 1 {
            -((v >> 1) as i64)
        } else {
            (v >> 1) as i64
        })
    }
}

/// The 3.11+ location table (`Objects/locations.md`); `unit` counts 2-byte code units.
pub fn locations_line(table: &[u8], first: u32, unit: u64) -> Option<i64> {
    let mut c = Cursor {
        bytes: table,
        at: 0,
    };
    let mut line = first as i64;
    let mut start = 0u64;
    while let Some(head) = c.byte() {
        if head & 0x80 == 0 {
            return None; // not at an entry start: corrupt table
        }
        let code = (head >> 3) & 15;
        let end = start + (head & 7) as u64 + 1;
        let this = match code {
            15 => None,
            14 => {
                line += c.svarint()?;
                c.varint()?; // end line delta
                c.varint()?; // column
                c.varint()?; // end column
                Some(line)
            }
            13 => {
                line += c.svarint()?;
                Some(line)
            }
            10..=12 => {
                line += (code - 10) as i64;
                c.byte()?;
                c.byte()?;
                Some(line)
            }
            _ => {
                c.byte()?;
                Some(line)
            }
        };
        if start <= unit && unit < end {
            return this;
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copied start of a 3.8/3.9 `co_lnotab`: lines inside it, none
    /// past it (the table does not say where the code ends).
    #[test]
    fn an_offset_past_a_copied_lnotab_has_no_line() {
        let names = CopiedNames {
            name: "f".into(),
            qualname: None,
            filename: "f.py".into(),
            first_line: 5,
        };
        let o = crate::layout::static_offsets(9).unwrap();
        // Offset 0: line 5; from byte 4: line 6; from byte 10: line 8.
        let lines = |whole| CopiedLines {
            table: vec![4, 1, 6, 2],
            whole,
        };
        let partial = names.clone().with_lines(&o, 0x1000, &lines(false));
        let whole = names.with_lines(&o, 0x1000, &lines(true));
        for (offset, line) in [(0, Some(5)), (6, Some(6)), (9, Some(6)), (10, None)] {
            assert_eq!(partial.line_for_offset(offset), line, "{offset}");
        }
        assert_eq!(whole.line_for_offset(10), Some(8));
        assert_eq!(whole.line_for_offset(400), Some(8));
    }

    /// A frame's code pointer is whatever the target's memory held: one
    /// near the top of the address space is an error, not an overflow.
    #[test]
    fn a_wild_code_pointer_is_an_error() {
        let mem = crate::process_memory::Snapshot::default();
        let o = crate::layout::static_offsets(11).unwrap();
        for code in [u64::MAX, u64::MAX - 8, 1u64 << 63] {
            assert!(read_code(&mem, &o, code, Some(0x1000)).is_err());
            assert!(read_code(&mem, &o, code, None).is_err());
            assert!(read_unicode(&mem, &o, code).is_err());
        }
    }

    /// Free-threaded 3.14+: a thread that specialized a function runs its
    /// own copy of the bytecode; its instruction pointers point there, and
    /// mean the same lines as in `co_code_adaptive`.
    #[test]
    fn per_thread_bytecode_copies_have_the_same_lines() {
        // unit 0 on the def line (3), units 1-3 on line 5 (one-line form +2).
        let table = vec![0x80, 0, 0x80 | (12 << 3) | 2, 4, 9];
        let code = CodeInfo {
            name: "work".into(),
            qualname: "work".into(),
            filename: "/w.py".into(),
            firstlineno: 3,
            linetable: table,
            kind: LineTableKind::Locations,
            code_start: 0x1000,
            copies: vec![0x9000, 0xa000],
            code_bytes: 8,
            copied: false,
            table_whole: true,
        };
        let line = |instr| code.line_at(InstrKind::Pointer, instr);
        assert_eq!(line(0x1000), Some(3));
        assert_eq!(line(0x1004), Some(5));
        assert_eq!(line(0x9004), Some(5));
        assert_eq!(line(0xa000), Some(3));
        assert_eq!(line(0xa006), Some(5));
    }

    #[test]
    fn bytecode_copies_come_from_co_tlbc() {
        use super::super::process_memory::Snapshot;
        let mut mem = Snapshot::default();
        // _PyCodeArray: size 3; entry 0 is co_code_adaptive itself, entry 2 unused.
        let mut array = 3u64.to_le_bytes().to_vec();
        for entry in [0x1000u64, 0x9000, 0] {
            array.extend_from_slice(&entry.to_le_bytes());
        }
        mem.insert(0x5000, &array);
        assert_eq!(bytecode_copies(&mem, 0x5000, 0x1000), Ok(vec![0x9000]));
        assert_eq!(bytecode_copies(&mem, 0, 0x1000), Ok(vec![]));
    }

    #[test]
    fn lnotab() {
        // def f():        line 10
        //     a = 1       11: bytes 0..4
        //     b = 2       12: bytes 4..8
        //     return a+b  13: bytes 8..
        let table = [0, 1, 4, 1, 4, 1];
        assert_eq!(lnotab_line(&table, 10, 0), Some(11));
        assert_eq!(lnotab_line(&table, 10, 5), Some(12));
        assert_eq!(lnotab_line(&table, 10, 12), Some(13));
    }

    #[test]
    fn linetable_310() {
        // 2 bytes on line+0 (def), 6 bytes on +1, 4 bytes without line, 4 bytes on +2
        let table = [2, 0, 6, 1, 4, 0x80, 4, 1];
        assert_eq!(linetable310_line(&table, 5, 0), Some(5));
        assert_eq!(linetable310_line(&table, 5, 7), Some(6));
        assert_eq!(linetable310_line(&table, 5, 9), None);
        assert_eq!(linetable310_line(&table, 5, 12), Some(7));
        assert_eq!(linetable310_line(&table, 5, 99), None);
    }

    #[test]
    fn locations_311() {
        // RESUME on the def line (short form, 1 unit), then one-line form +1
        // (2 units), no-location (1 unit), long form +3 (3 units), no-column -1 (1 unit).
        let table = [
            0x80,
            0x00, // code 0, len 1, col byte
            0x80 | (11 << 3) | 1,
            4,
            9,                // code 11: line +1, len 2
            0x80 | (15 << 3), // no location, len 1
            0x80 | (14 << 3) | 2,
            6,
            0,
            4,
            10, // long: +3, len 3
            0x80 | (13 << 3),
            3, // no column: -1, len 1
        ];
        assert_eq!(locations_line(&table, 20, 0), Some(20));
        assert_eq!(locations_line(&table, 20, 2), Some(21));
        assert_eq!(locations_line(&table, 20, 3), None);
        assert_eq!(locations_line(&table, 20, 4), Some(24));
        assert_eq!(locations_line(&table, 20, 6), Some(24));
        assert_eq!(locations_line(&table, 20, 7), Some(23));
        assert_eq!(locations_line(&table, 20, 8), None);
    }
}
