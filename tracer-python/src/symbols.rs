//! Symbolization: a sampled frame (code-object address + instruction
//! position + the code object's fingerprint) -> [`Frame`], by reading the
//! code object out of the process. One cache per process, keyed by address
//! and fingerprint: a code object freed after it was sampled leaves its
//! address to another one (imports at start-up, `exec`), and the kernel's
//! fingerprint, taken when it sampled the frame, says which of them the
//! frame ran. Frames are interned in one [`FrameTable`] for the whole
//! trace, whatever process they came from.

use std::{collections::HashMap, rc::Rc};

use tracer_common::{CODE_CHECK_WORDS, PY_ENTRY_BIT, PyFrameRecord, code_check};

use super::{
    code::{self, CodeInfo, CopiedLines, CopiedNames},
    layout::Offsets,
    process_memory::Memory,
};
use crate::frame::Frame;

/// What symbolizing needs to know about the process.
pub struct CodeSource<'a> {
    pub memory: &'a dyn Memory,
    pub offsets: &'a Offsets,
    /// Run-time address of `PyCode_Type`, when known.
    pub code_type: Option<u64>,
}

/// Code objects kept per process before the cache starts over.
const MAX_CODES: usize = 65_536;

/// Code objects of one process read so far.
#[derive(Default)]
pub struct Symbols {
    /// (address, fingerprint) -> what was read of the code object.
    codes: HashMap<(u64, u64), CodeEntry>,
    /// Address -> the fingerprint of the object last read there (for frames
    /// that carry none: entry counters, a process that is gone).
    latest: HashMap<u64, u64>,
    /// Reads of code objects made so far (numbers each `CodeEntry`).
    reads: u64,
    /// (code object read, instruction position) -> its frame: a line table
    /// is walked once per position, not once per sample.
    positions: HashMap<(u64, u64), FrameId>,
    /// (address, fingerprint) -> the names the sampler copied when it met
    /// the object: for one freed before it could be read.
    copied: HashMap<(u64, u64), Rc<CodeInfo>>,
    /// (address, fingerprint) -> the line table the kernel copied of an
    /// object on a dying thread's stack, kept until its names come.
    copied_lines: HashMap<(u64, u64), CopiedLines>,
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

/// What was read of one code object (`None`: unreadable, or gone before
/// it could be read), and which read it was.
struct CodeEntry {
    info: Option<Rc<CodeInfo>>,
    read: u64,
}

impl Symbols {
    /// The names the sampler copied of the code object at `code` (as a
    /// frame record has it) with fingerprint `check`.
    pub fn on_copied_names(&mut self, o: &Offsets, code: u64, check: u64, names: CopiedNames) {
        if self.copied.len() >= MAX_CODES {
            self.copied.clear();
        }
        let code = mask_code(o, code);
        log::debug!("code object {code:#x} ({check:#x}): the sampler copied {names:?}");
        let info = Rc::new(match self.copied_lines.get(&(code, check)) {
            Some(lines) => names.with_lines(o, code, lines),
            None => names.into_code_info(o.line_table),
        });
        // Found freed by an earlier stack (a batch's last sample, a read's
        // stack): named from now on.
        if let Some(entry) = self.codes.get_mut(&(code, check))
            && entry.info.is_none()
        {
            self.reads += 1;
            *entry = CodeEntry {
                info: Some(info.clone()),
                read: self.reads,
            };
        }
        self.copied.insert((code, check), info);
    }

    /// The line table the kernel copied of the code object at `code`
    /// with fingerprint `check` (a dying thread's): its frames get their
    /// lines from it once the process is gone.
    pub fn on_copied_lines(&mut self, o: &Offsets, code: u64, check: u64, lines: CopiedLines) {
        if self.copied_lines.len() >= MAX_CODES {
            self.copied_lines.clear();
        }
        let code = mask_code(o, code);
        log::debug!(
            "code object {code:#x} ({check:#x}): the kernel copied {} bytes of its line table",
            lines.table.len()
        );
        let key = (code, check);
        // Named before (the sampler met it earlier): named with lines now,
        // and so is an entry that was named from the copy.
        if let Some(copy) = self.copied.get_mut(&key)
            && copy.linetable.is_empty()
        {
            let names = CopiedNames {
                name: copy.name.clone(),
                qualname: Some(copy.qualname.clone()),
                filename: copy.filename.clone(),
                first_line: copy.firstlineno,
            };
            *copy = Rc::new(names.with_lines(o, code, &lines));
            if let Some(entry) = self.codes.get_mut(&key)
                && entry.info.as_ref().is_none_or(|info| info.copied)
            {
                self.reads += 1;
                *entry = CodeEntry {
                    info: Some(copy.clone()),
                    read: self.reads,
                };
            }
        }
        self.copied_lines.insert(key, lines);
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
            .map(|(code, instr, check)| self.frame_id(table, source, code, instr, check))
            .collect()
    }

    /// The same frames, in the groups one call of the eval loop runs
    /// each (innermost first): up to 3.10 a frame per call; 3.11 up to a
    /// frame marked `is_entry`; 3.12+ up to an entry frame (its `owner`).
    /// For `--native`, where each call's native frame is replaced by its
    /// group.
    pub fn frame_id_groups(
        &mut self,
        table: &mut FrameTable,
        source: &CodeSource,
        records: &[PyFrameRecord],
    ) -> Vec<Vec<FrameId>> {
        let o = source.offsets;
        let mut groups: Vec<Vec<FrameId>> = vec![Vec::new()];
        for record in records {
            let owner = (record.instr >> 56) as u8;
            let ends = if o.owner_skip_from.is_some_and(|skip| owner >= skip) {
                true
            } else if let Some((code, instr, check)) = python_frame(o, record) {
                let id = self.frame_id(table, source, code, instr, check);
                groups.last_mut().expect("never empty").push(id);
                match (o.frame_is_entry, o.owner_skip_from) {
                    (Some(_), _) => record.instr & (1 << PY_ENTRY_BIT) != 0,
                    (None, None) => true,
                    (None, Some(_)) => false,
                }
            } else {
                false
            };
            if ends && groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
        }
        groups.retain(|g| !g.is_empty());
        groups
    }

    fn frame_id(
        &mut self,
        table: &mut FrameTable,
        source: &CodeSource,
        code: u64,
        instr: u64,
        check: u64,
    ) -> FrameId {
        let (read, info) = self.code(source, code, check);
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
                native: false,
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
        match self.code(source, code, 0).1 {
            Some(info) => Frame {
                qualname: info.qualname.clone(),
                function: info.name.clone(),
                file: info.filename.clone(),
                line: info.firstlineno,
                first_line: info.firstlineno,
                native: false,
            },
            None => Frame::unresolved(code),
        }
    }

    /// The code object the frame ran, and which read of it this is: from
    /// the cache when it was read before, else read now if the object at
    /// `code` is still the one the kernel saw (`check`; 0: the kernel took
    /// no fingerprint, the object there now is taken).
    fn code(&mut self, source: &CodeSource, code: u64, check: u64) -> (u64, Option<Rc<CodeInfo>>) {
        if check != 0
            && let Some(entry) = self.codes.get(&(code, check))
        {
            return (entry.read, entry.info.clone());
        }
        let now = fingerprint_now(source, code);
        let check = match (check, now) {
            (0, Some(now)) => now,
            // Unreadable now (the process has exited): trust what was read
            // while it ran.
            (0, None) => self.latest.get(&code).copied().unwrap_or(0),
            (check, _) => check,
        };
        if let Some(entry) = self.codes.get(&(code, check)) {
            return (entry.read, entry.info.clone());
        }
        // Another object took the address (or none is there now): the one
        // the kernel saw was freed before it could be read.
        let alive = now.is_none_or(|now| now == check);
        let mut info = match alive
            .then(|| code::read_code(source.memory, source.offsets, code, source.code_type))
        {
            Some(Ok(info)) => Some(Rc::new(info)),
            Some(Err(err)) => {
                log::debug!("code object {code:#x}: {err}");
                None
            }
            None => {
                log::debug!("code object {code:#x} ({check:#x}): freed before it was read");
                None
            }
        };
        // Freed before it was read: the sampler's copy. Read while the
        // process was making another object at that address (this tracer
        // reads its memory while it runs): no `def` line yet, the copy
        // says more.
        let unfinished = info.as_ref().is_some_and(|info| info.firstlineno == 0);
        if let Some(info) = info.as_ref().filter(|_| unfinished) {
            log::debug!(
                "code object {code:#x} ({check:#x}): read with no def line: {} {}",
                info.qualname,
                info.filename
            );
        }
        if (info.is_none() || unfinished)
            && let Some(copied) = self.copied.get(&(code, check))
        {
            info = Some(copied.clone());
        }
        self.reads += 1;
        if self.codes.len() >= MAX_CODES {
            // A process that compiles code all its life (templates, `exec`)
            // leaves an entry per object: start over, the live ones are
            // read again on their next sample.
            self.codes.clear();
            self.positions.clear();
            self.latest.clear();
        }
        if info.as_ref().is_some_and(|info| !info.copied) {
            self.latest.insert(code, check);
        }
        self.codes.insert(
            (code, check),
            CodeEntry {
                info: info.clone(),
                read: self.reads,
            },
        );
        (self.reads, info)
    }
}

/// The fingerprint of the code object at `code` now, as the kernel takes it
/// ([`code_check`] of its check window); `None` when unreadable or when the
/// layout has no window.
fn fingerprint_now(source: &CodeSource, code: u64) -> Option<u64> {
    let (at, mask) = source.offsets.code_check_window()?;
    let bytes = source
        .memory
        .read_vec(code + at, 8 * CODE_CHECK_WORDS)
        .ok()?;
    let mut words = [0u64; CODE_CHECK_WORDS];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        *word = u64::from_le_bytes(chunk.try_into().ok()?);
    }
    Some(code_check(&words, mask))
}

/// 3.14: `f_executable` is a `_PyStackRef` whose low bits are tags.
pub fn mask_code(o: &Offsets, code: u64) -> u64 {
    if o.code_is_stackref { code & !7 } else { code }
}

/// A sampled frame's code object, instruction value and fingerprint, or
/// `None` for frames that are not Python code (C-stack entry frames, no
/// code object).
pub fn python_frame(o: &Offsets, f: &PyFrameRecord) -> Option<(u64, u64, u64)> {
    let owner = (f.instr >> 56) as u8;
    if o.owner_skip_from.is_some_and(|skip| owner >= skip) {
        return None;
    }
    let code = mask_code(o, f.code);
    // Below the owner byte and the 3.11 entry bit: the instruction.
    (code != 0).then_some((code, f.instr & 0x007f_ffff_ffff_ffff, f.check))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout;

    /// A synthetic 3.11 code object named `name` at `addr` in `mem`.
    /// Its name and line table live at `strings` (another object's elsewhere).
    fn put_code(mem: &mut crate::process_memory::Snapshot, addr: u64, name: &str, strings: u64) {
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

    fn source<'a>(mem: &'a dyn Memory, o: &'a Offsets) -> CodeSource<'a> {
        CodeSource {
            memory: mem,
            offsets: o,
            code_type: Some(0x7000),
        }
    }

    /// The frame of the code object at 0x10000 as the kernel would record
    /// it from `mem`: with its fingerprint, or with none.
    fn record(
        mem: &crate::process_memory::Snapshot,
        o: &Offsets,
        fingerprint: bool,
    ) -> PyFrameRecord {
        let source = source(mem, o);
        PyFrameRecord {
            code: 0x10000,
            instr: 0x10000 + o.code_adaptive.unwrap(),
            check: if fingerprint {
                fingerprint_now(&source, 0x10000).unwrap()
            } else {
                0
            },
        }
    }

    /// A 3.11 layout and two memories in which the code object at 0x10000
    /// is another one: `site_module`, then (freed, its address reused)
    /// `app_module`.
    fn one_address_two_objects() -> (
        Offsets,
        crate::process_memory::Snapshot,
        crate::process_memory::Snapshot,
    ) {
        let o = layout::static_offsets(11).unwrap();
        let mut site = crate::process_memory::Snapshot::default();
        put_code(&mut site, 0x10000, "site_module", 0x20000);
        let mut app = crate::process_memory::Snapshot::default();
        put_code(&mut app, 0x10000, "app_module", 0x30000);
        (o, site, app)
    }

    fn copied(name: &str, qualname: Option<&str>, filename: &str, first_line: u32) -> CopiedNames {
        CopiedNames {
            name: name.into(),
            qualname: qualname.map(Into::into),
            filename: filename.into(),
            first_line,
        }
    }

    /// The symbols of one process and the trace's frame table.
    type Cache = (Symbols, FrameTable);

    fn name(cache: &mut Cache, mem: &dyn Memory, o: &Offsets, record: PyFrameRecord) -> String {
        let ids = cache.0.frame_ids(&mut cache.1, &source(mem, o), &[record]);
        cache.1.get(ids[0]).qualname.clone()
    }

    /// A code object freed and its address reused by another: each frame is
    /// named by the object the kernel saw (its fingerprint), whichever is
    /// at the address when userspace gets to it.
    #[test]
    fn a_frame_is_named_by_the_code_object_it_was_sampled_from() {
        let (o, site, app) = one_address_two_objects();
        let (site_frame, app_frame) = (record(&site, &o, true), record(&app, &o, true));
        assert_ne!(site_frame.check, app_frame.check);

        let mut symbols = Cache::default();
        assert_eq!(name(&mut symbols, &site, &o, site_frame), "site_module");
        // Freed; the address now holds the script's own module code.
        assert_eq!(name(&mut symbols, &app, &o, app_frame), "app_module");
        assert_eq!(name(&mut symbols, &app, &o, site_frame), "site_module");
        // Without a fingerprint: the object there now.
        assert_eq!(
            name(&mut symbols, &app, &o, record(&app, &o, false)),
            "app_module"
        );
    }

    /// Sampled, then freed and its address reused before userspace read
    /// it: unresolved, never named after the object that took its place.
    #[test]
    fn a_code_object_freed_before_it_was_read_is_unresolved() {
        let (o, site, app) = one_address_two_objects();
        let mut symbols = Cache::default();
        let ids = symbols.0.frame_ids(
            &mut symbols.1,
            &source(&app, &o),
            &[record(&site, &o, true)],
        );
        let frame = symbols.1.get(ids[0]);
        assert!(!frame.is_resolved(), "{frame:?}");
        // The object there now is still named by its own frames.
        assert_eq!(
            name(&mut symbols, &app, &o, record(&app, &o, true)),
            "app_module"
        );
    }

    /// Freed before it was read, but the sampler copied its names when it
    /// met it: named from that copy (line unknown), and only the frames of
    /// that object (its fingerprint), not those of the one there now.
    #[test]
    fn a_code_object_freed_before_it_was_read_is_named_from_the_samplers_copy() {
        let (o, site, app) = one_address_two_objects();
        let site_frame = record(&site, &o, true);
        let mut symbols = Cache::default();
        let copied = copied(
            "<module>",
            Some("<module>"),
            "/usr/lib/python3.11/site.py",
            1,
        );
        symbols
            .0
            .on_copied_names(&o, site_frame.code, site_frame.check, copied);
        let ids = symbols
            .0
            .frame_ids(&mut symbols.1, &source(&app, &o), &[site_frame]);
        let frame = symbols.1.get(ids[0]).clone();
        assert_eq!(
            (
                frame.qualname.as_str(),
                frame.file.as_str(),
                frame.line,
                frame.first_line
            ),
            ("<module>", "/usr/lib/python3.11/site.py", 0, 1)
        );
        assert_eq!(
            name(&mut symbols, &app, &o, record(&app, &o, true)),
            "app_module"
        );
    }

    /// A thread killed by a signal: its code objects' names and line
    /// tables as the kernel copied them, read after the process is gone.
    /// Lines from the copy, whichever came first; a frame named from the
    /// names alone is named again with its line once the table comes; an
    /// instruction past a partial copy has no line, never a wrong one.
    #[test]
    fn a_dying_threads_frames_get_their_lines_from_the_kernels_copy() {
        let (o, site, app) = one_address_two_objects();
        let at_unit = |unit: u64| PyFrameRecord {
            instr: 0x10000 + o.code_adaptive.unwrap() + 2 * unit,
            ..record(&site, &o, true)
        };
        // 3.11+ entries (no columns, a line delta): unit 0 on line 14,
        // units 1-2 on line 16 (`def` on line 10).
        let table = vec![0x80 | 13 << 3, 8, 0x80 | 13 << 3 | 1, 4];
        let names = || copied("work", Some("Job.work"), "/srv/job.py", 10);
        let lines = |table: &[u8], whole| CopiedLines {
            table: table.to_vec(),
            whole,
        };
        let line = |symbols: &mut Cache, frame: PyFrameRecord| {
            let ids = symbols
                .0
                .frame_ids(&mut symbols.1, &source(&app, &o), &[frame]);
            let frame = symbols.1.get(ids[0]);
            assert_eq!(frame.qualname, "Job.work");
            frame.line
        };
        let check = at_unit(0).check;

        let mut names_first = Cache::default();
        names_first.0.on_copied_names(&o, 0x10000, check, names());
        assert_eq!(line(&mut names_first, at_unit(1)), 0);
        names_first
            .0
            .on_copied_lines(&o, 0x10000, check, lines(&table, true));
        assert_eq!(line(&mut names_first, at_unit(1)), 16);
        assert_eq!(line(&mut names_first, at_unit(0)), 14);

        let mut lines_first = Cache::default();
        lines_first
            .0
            .on_copied_lines(&o, 0x10000, check, lines(&table, true));
        lines_first.0.on_copied_names(&o, 0x10000, check, names());
        assert_eq!(line(&mut lines_first, at_unit(2)), 16);
        assert_eq!(line(&mut lines_first, at_unit(3)), 0, "past the table");

        let mut partial = Cache::default();
        partial
            .0
            .on_copied_lines(&o, 0x10000, check, lines(&table[..2], false));
        partial.0.on_copied_names(&o, 0x10000, check, names());
        assert_eq!(line(&mut partial, at_unit(0)), 14);
        assert_eq!(line(&mut partial, at_unit(1)), 0, "past the copy");
    }

    /// A copy that comes after the object was found freed (the last
    /// sample of a drain's batch) names its later frames.
    #[test]
    fn a_copy_that_comes_late_names_the_frames_after_it() {
        let (o, site, app) = one_address_two_objects();
        let site_frame = record(&site, &o, true);
        let mut symbols = Cache::default();
        assert!(name(&mut symbols, &app, &o, site_frame).starts_with("<code 0x"));
        let copied = copied("work", Some("Job.work"), "/srv/job.py", 7);
        symbols
            .0
            .on_copied_names(&o, site_frame.code, site_frame.check, copied);
        assert_eq!(name(&mut symbols, &app, &o, site_frame), "Job.work");
    }

    /// While the object lives it is read, for the line its copy lacks.
    #[test]
    fn a_live_code_object_is_read_rather_than_named_from_the_copy() {
        let (o, site, _) = one_address_two_objects();
        let frame = record(&site, &o, true);
        let mut symbols = Cache::default();
        let copied = copied("copy", None, "copy.py", 1);
        symbols
            .0
            .on_copied_names(&o, frame.code, frame.check, copied);
        let ids = symbols
            .0
            .frame_ids(&mut symbols.1, &source(&site, &o), &[frame]);
        let frame = symbols.1.get(ids[0]);
        assert_eq!(
            (frame.qualname.as_str(), frame.file.as_str()),
            ("site_module", "site_module")
        );
    }

    /// The sampler's slots for the code objects it has named spread: 10,000
    /// code objects of one process (addresses 0x90 apart, as CPython
    /// allocates them) take nearly as many slots.
    #[test]
    fn named_code_slots_spread() {
        use tracer_common::{PY_NAMED_SLOTS, named_code_slot};
        let mut slots = std::collections::HashSet::new();
        for i in 0..10_000u64 {
            let code = 0x7f00_0000_0000 + i * 0x90;
            let check = code_check(&[code + 8, code + 16, 0, 0], 3);
            let slot = named_code_slot(4242, code, check);
            assert!(slot < PY_NAMED_SLOTS);
            slots.insert(slot);
        }
        assert!(slots.len() > 9_000, "{} slots", slots.len());
        assert_ne!(named_code_slot(1, 0x1000, 5), named_code_slot(2, 0x1000, 5));
    }

    /// The fingerprint reads the identifying pointers (name, filename,
    /// qualname, line table) and nothing else of the object: not the
    /// reference count nor the interpreter's counters, which change all
    /// the time.
    #[test]
    fn the_fingerprint_is_the_identifying_pointers() {
        for minor in 8..=12 {
            let o = layout::static_offsets(minor).unwrap();
            let (at, mask) = o.code_check_window().unwrap();
            let expected = 2 + u32::from(o.code_qualname.is_some()) + 1;
            assert_eq!(mask.count_ones(), expected, "3.{minor}");
            for field in [o.code_name, o.code_filename, o.code_linetable] {
                assert!(mask & (1 << ((field - at) / 8)) != 0, "3.{minor}: {field}");
            }
        }
        let o = layout::static_offsets(11).unwrap();
        let mut mem = crate::process_memory::Snapshot::default();
        put_code(&mut mem, 0x10000, "a", 0x20000);
        let before = fingerprint_now(&source(&mem, &o), 0x10000).unwrap();
        let mut other = crate::process_memory::Snapshot::default();
        put_code(&mut other, 0x10000, "a", 0x28000);
        assert_ne!(
            fingerprint_now(&source(&other, &o), 0x10000).unwrap(),
            before
        );
    }

    /// A sample is named once, in groups (`--native` splices them under
    /// its eval-loop frames): flattened, they are the frames
    /// [`Symbols::frame_ids`] names, in its order, so with the same ids.
    #[test]
    fn the_groups_flattened_are_the_python_frames() {
        let mut mem = crate::process_memory::Snapshot::default();
        put_code(&mut mem, 0x10000, "outer", 0x20000);
        put_code(&mut mem, 0x40000, "inner", 0x50000);
        let eleven = layout::static_offsets(11).unwrap();
        // 3.12's C-stack entry frames: an owner byte to skip from.
        let twelve = Offsets {
            owner_skip_from: Some(3),
            frame_is_entry: None,
            ..eleven
        };
        let at = |code: u64| PyFrameRecord {
            code,
            instr: code + eleven.code_adaptive.unwrap(),
            check: 0,
        };
        let entry = PyFrameRecord {
            instr: at(0x10000).instr | (1 << PY_ENTRY_BIT),
            ..at(0x10000)
        };
        let cstack = PyFrameRecord {
            instr: at(0x40000).instr | (3 << 56),
            ..at(0x40000)
        };
        let records = [at(0x40000), entry, at(0), cstack, at(0x40000), at(0x10000)];
        for o in [eleven, twelve] {
            let (mut grouped, mut flat) = (Cache::default(), Cache::default());
            let source = source(&mem, &o);
            let groups = grouped.0.frame_id_groups(&mut grouped.1, &source, &records);
            assert!(groups.len() > 1);
            let ids = flat.0.frame_ids(&mut flat.1, &source, &records);
            assert_eq!(groups.concat(), ids);
            let names = |table: &FrameTable| -> Vec<String> {
                ids.iter()
                    .map(|&id| table.get(id).qualname.clone())
                    .collect()
            };
            assert_eq!(names(&grouped.1), names(&flat.1));
        }
    }
}
