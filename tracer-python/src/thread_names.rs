//! Python thread names (`threading.Thread(name=...)`, "MainThread"), read
//! from the interpreter the way `threading.enumerate()` finds them: the
//! `threading` module's `_active` dict (`get_ident()` -> `Thread`), then
//! each `Thread`'s `_name`. The module's globals are found through the
//! frames (`f_globals` of any frame running `threading` code, or a module
//! that imported it), so no per-version offset of the interpreter's module
//! table is needed. Dicts and instance attributes are read per
//! [`ObjectModel`]; instance values kept apart from their keys (3.11+) use
//! the class's shared keys, found next to the class's name in the heap type.
//! Anything unexpected gives no name, never a wrong one.

use std::{cell::RefCell, collections::HashMap};

use super::{
    code::read_unicode,
    layout::{ObjectModel, Offsets},
    process_memory::Memory,
    threads::frame_addresses,
};

/// Bounds: a dict this large is not `_active` or a module's globals.
const MAX_ENTRIES: u64 = 1 << 16;
/// Frames looked at per thread for a `threading` globals dict.
const MAX_FRAMES: usize = 64;
/// How far into a heap type its `ht_name` is looked for (856-872 bytes in
/// 3.8-3.15).
const HEAP_TYPE_SCAN: usize = 2048;

const TPFLAGS_INLINE_VALUES: u64 = 1 << 2;
const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
/// `dk_kind` of a keys object shared by the instances of a class (3.11+).
const DICT_KEYS_SPLIT: u8 = 2;

/// What stays true for the life of a process (until it execs): where its
/// `threading._active` dict is, and each class's shared keys.
#[derive(Debug, Default, Clone)]
pub struct NameCache {
    active: Option<u64>,
    shared_keys: HashMap<u64, Option<u64>>,
}

/// `thread_id` (`pthread_t`, the key of `_active`) -> name, for the threads
/// whose `PyThreadState` is at `tstates` (looked through for `threading`).
pub fn thread_names(
    mem: &dyn Memory,
    o: &Offsets,
    tstates: &[u64],
    cache: &mut NameCache,
) -> HashMap<u64, String> {
    let objects = Objects::new(mem, o);
    let mut names = HashMap::new();
    if cache.active.is_none() {
        cache.active = find_active(&objects, tstates);
    }
    let Some(active) = cache.active else {
        return names;
    };
    let Some(entries) = objects.dict_entries(active) else {
        // Not a dict any more: look again next time.
        cache.active = None;
        return names;
    };
    for (key, thread) in entries {
        let Some(ident) = objects.int(key) else {
            continue;
        };
        if let Some(name) = objects
            .attr(thread, "_name", &mut cache.shared_keys)
            .and_then(|name| objects.str(name))
        {
            names.insert(ident, name);
        }
    }
    names
}

/// `threading._active`: in the globals of a frame running `threading`
/// code, or of a module that did `import threading`.
fn find_active(objects: &Objects, tstates: &[u64]) -> Option<u64> {
    let globals_at = objects.o.frame_globals?;
    let mut seen = std::collections::HashSet::new();
    for &tstate in tstates {
        // Outermost first: a thread's `<module>` or `Thread._bootstrap`.
        for frame in frame_addresses(objects.mem, objects.o, tstate, MAX_FRAMES)
            .into_iter()
            .rev()
        {
            let Ok(globals) = objects.mem.u64(frame.wrapping_add(globals_at)) else {
                continue;
            };
            if globals == 0 || !seen.insert(globals) {
                continue;
            }
            if let Some(active) = objects
                .lookup(globals, "_active")
                .filter(|&d| objects.is_a(d, "dict"))
            {
                return Some(active);
            }
            if let Some(module) = objects
                .lookup(globals, "threading")
                .filter(|&m| objects.is_a(m, "module"))
                && let Ok(dict) = objects.mem.u64(module.wrapping_add(objects.header()))
                && let Some(active) = objects
                    .lookup(dict, "_active")
                    .filter(|&d| objects.is_a(d, "dict"))
            {
                return Some(active);
            }
        }
    }
    None
}

pub(super) struct Objects<'a> {
    pub(super) mem: &'a dyn Memory,
    pub(super) o: &'a Offsets,
    /// Type names by type address, read once per look: a dict's keys are
    /// all `str`, checked one by one.
    types: RefCell<HashMap<u64, Option<String>>>,
}

impl<'a> Objects<'a> {
    pub(super) fn new(mem: &'a dyn Memory, o: &'a Offsets) -> Self {
        Self {
            mem,
            o,
            types: RefCell::default(),
        }
    }

    /// `sizeof(PyObject)`: 16, or 32 in a free-threaded build.
    pub(super) fn header(&self) -> u64 {
        self.o.ob_type + 8
    }

    /// Where a `PyTypeObject`'s own fields start (after its `PyVarObject`).
    fn type_fields(&self) -> u64 {
        self.o.var_size + 8
    }

    pub(super) fn type_of(&self, obj: u64) -> Option<u64> {
        self.mem
            .u64(obj.wrapping_add(self.o.ob_type))
            .ok()
            .filter(|&t| t != 0)
    }

    pub(super) fn type_name(&self, ty: u64) -> Option<String> {
        if let Some(known) = self.types.borrow().get(&ty) {
            return known.clone();
        }
        let read = || {
            let name = self.mem.u64(ty.wrapping_add(self.type_fields())).ok()?;
            let raw = self.mem.read_vec(name, 64).ok()?;
            let end = raw.iter().position(|&b| b == 0)?;
            String::from_utf8(raw[..end].to_vec()).ok()
        };
        let name = read();
        self.types.borrow_mut().insert(ty, name.clone());
        name
    }

    /// Whether `obj` is the `str` `name` (ASCII): one read of the object
    /// and its characters, where [`Self::str`] takes four.
    fn str_is(&self, obj: u64, name: &str) -> bool {
        let o = self.o;
        let fits = [o.ob_type + 8, o.unicode_length + 8, o.unicode_state + 4]
            .iter()
            .all(|&end| end <= o.ascii_size);
        if !fits {
            return self.str(obj).is_some_and(|s| s == name);
        }
        let Ok(raw) = self.mem.read_vec(obj, o.ascii_size as usize + name.len()) else {
            return false;
        };
        let word = |at: u64| {
            let at = at as usize;
            u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"))
        };
        let at = o.unicode_state as usize;
        let state = u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
        let (compact, ascii) = ((state >> 5) & 1 == 1, (state >> 6) & 1 == 1);
        word(o.unicode_length) == name.len() as u64
            && compact
            && ascii
            && &raw[o.ascii_size as usize..] == name.as_bytes()
            && self.type_name(word(o.ob_type)).is_some_and(|t| t == "str")
    }

    fn is_a(&self, obj: u64, name: &str) -> bool {
        self.type_of(obj)
            .and_then(|ty| self.type_name(ty))
            .is_some_and(|n| n == name)
    }

    fn str(&self, obj: u64) -> Option<String> {
        if !self.is_a(obj, "str") {
            return None;
        }
        read_unicode(self.mem, self.o, obj).ok()
    }

    /// A non-negative `int` below 2**64 (thread idents).
    pub(super) fn int(&self, obj: u64) -> Option<u64> {
        if !self.is_a(obj, "int") {
            return None;
        }
        let h = self.header();
        let (ndigits, digits) = match self.o.objects {
            // PyVarObject: ob_size is the signed digit count.
            ObjectModel::Py38 | ObjectModel::Py311 => {
                let size = self.mem.u64(obj.wrapping_add(self.o.var_size)).ok()? as i64;
                (u64::try_from(size).ok()?, self.o.var_size + 8)
            }
            // lv_tag: digit count << 3 | sign (0 positive, 1 zero, 2 negative).
            ObjectModel::Py312 | ObjectModel::Py313 => {
                let tag = self.mem.u64(obj.wrapping_add(h)).ok()?;
                if tag & 3 == 2 {
                    return None;
                }
                (tag >> 3, h + 8)
            }
        };
        if ndigits > 3 {
            return None;
        }
        let mut value: u128 = 0;
        for i in (0..ndigits).rev() {
            let digit = self.mem.u32(obj.wrapping_add(digits + 4 * i)).ok()? & 0x3fff_ffff;
            value = (value << 30) | u128::from(digit);
        }
        u64::try_from(value).ok()
    }

    /// (key, value) of every live entry of the dict at `dict`.
    fn dict_entries(&self, dict: u64) -> Option<Vec<(u64, u64)>> {
        if !self.is_a(dict, "dict") {
            return None;
        }
        let h = self.header();
        let keys = self.mem.u64(dict.wrapping_add(h + 16)).ok()?;
        let values = self.mem.u64(dict.wrapping_add(h + 24)).ok()?;
        let slots = match (values, self.o.objects) {
            (0, _) => None,
            // PyDictValues: capacity, size, embedded, valid, then the values.
            (v, ObjectModel::Py313) => Some(v.wrapping_add(8)),
            (v, _) => Some(v),
        };
        self.keys_entries(keys, slots)
    }

    /// The entries of a keys object; a split table's values are at `slots`.
    fn keys_entries(&self, keys: u64, slots: Option<u64>) -> Option<Vec<(u64, u64)>> {
        let (entries, nentries, entry_size) = match self.o.objects {
            ObjectModel::Py38 => {
                // dk_refcnt, dk_size, dk_lookup, dk_usable, dk_nentries, dk_indices.
                let size = self.mem.u64(keys.wrapping_add(8)).ok()?;
                let width = match size {
                    0..=0xff => 1,
                    0x100..=0xffff => 2,
                    0x1_0000..=0xffff_ffff => 4,
                    _ => 8,
                };
                let nentries = self.mem.u64(keys.wrapping_add(32)).ok()?;
                (
                    keys.wrapping_add(40).wrapping_add(size.checked_mul(width)?),
                    nentries,
                    24,
                )
            }
            _ => {
                // dk_refcnt, dk_log2_size, dk_log2_index_bytes, dk_kind, ...,
                // dk_usable (16), dk_nentries (24), dk_indices (32).
                let head = self.mem.read_vec(keys.wrapping_add(8), 3).ok()?;
                let index_bytes = 1u64.checked_shl(u32::from(head[1]))?;
                let nentries = self.mem.u64(keys.wrapping_add(24)).ok()?;
                let size = if head[2] == 0 { 24 } else { 16 };
                (
                    keys.wrapping_add(32).wrapping_add(index_bytes),
                    nentries,
                    size,
                )
            }
        };
        if nentries > MAX_ENTRIES {
            return None;
        }
        let raw = self
            .mem
            .read_vec(entries, (nentries * entry_size) as usize)
            .ok()?;
        let values = match slots {
            Some(at) => Some(self.mem.read_vec(at, (nentries * 8) as usize).ok()?),
            None => None,
        };
        let word = |bytes: &[u8], at: usize| {
            u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
        };
        let size = entry_size as usize;
        Some(
            (0..nentries as usize)
                .filter_map(|i| {
                    // The key and value are the entry's last two words.
                    let key = word(&raw, i * size + size - 16);
                    let value = match &values {
                        Some(values) => word(values, i * 8),
                        None => word(&raw, i * size + size - 8),
                    };
                    (key != 0 && value != 0).then_some((key, value))
                })
                .collect(),
        )
    }

    fn lookup(&self, dict: u64, name: &str) -> Option<u64> {
        self.find(self.dict_entries(dict)?, name)
    }

    fn find(&self, entries: Vec<(u64, u64)>, name: &str) -> Option<u64> {
        entries
            .into_iter()
            .find(|&(key, _)| self.str_is(key, name))
            .map(|(_, value)| value)
    }

    /// The instance attribute `name` of `obj` (from its `__dict__`).
    fn attr(&self, obj: u64, name: &str, shared: &mut HashMap<u64, Option<u64>>) -> Option<u64> {
        let ty = self.type_of(obj)?;
        let fields = ty.wrapping_add(self.type_fields());
        let basicsize = self.mem.u64(fields.wrapping_add(8)).ok()?;
        let flags = self.mem.u64(fields.wrapping_add(144)).ok()?;
        let dictoffset = self.mem.u64(fields.wrapping_add(264)).ok()? as i64;
        let managed = self.o.objects != ObjectModel::Py38 && flags & TPFLAGS_MANAGED_DICT != 0;
        if !managed {
            if dictoffset <= 0 {
                return None;
            }
            let dict = self.mem.u64(obj.wrapping_add(dictoffset as u64)).ok()?;
            return self.lookup(dict, name);
        }
        // The managed dict pointer sits before the object: 3 words back
        // (behind the GC links), 1 in a free-threaded build (no GC links).
        let back = if self.header() == 32 { 8 } else { 24 };
        let word = self.mem.u64(obj.wrapping_sub(back)).ok()?;
        let slots = match self.o.objects {
            ObjectModel::Py38 => unreachable!("not managed"),
            ObjectModel::Py311 if word == 0 => self
                .mem
                .u64(obj.wrapping_sub(32))
                .ok()
                .filter(|&v| v != 0)?,
            // Tagged: the values' address - 1 (odd) or the dict's (even).
            ObjectModel::Py312 if word & 1 == 1 => word.wrapping_add(1),
            ObjectModel::Py313 if word == 0 && flags & TPFLAGS_INLINE_VALUES != 0 => {
                let values = obj.wrapping_add(basicsize);
                let valid = self.mem.read_vec(values.wrapping_add(3), 1).ok()?[0];
                if valid == 0 {
                    return None;
                }
                values.wrapping_add(8)
            }
            _ if word != 0 => return self.lookup(word, name),
            _ => return None,
        };
        let keys = *shared
            .entry(ty)
            .or_insert_with(|| self.shared_keys_of(ty))
            .as_ref()?;
        self.find(self.keys_entries(keys, Some(slots))?, name)
    }

    /// `PyHeapTypeObject.ht_cached_keys` of class `ty`: it follows
    /// `ht_name`, `ht_slots` and `ht_qualname`, found as the two `str`
    /// objects 16 bytes apart whose first is the class's name.
    fn shared_keys_of(&self, ty: u64) -> Option<u64> {
        let name = self.type_name(ty)?;
        let raw = self.mem.read_vec(ty, HEAP_TYPE_SCAN).ok()?;
        let word = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
        let start = (self.type_fields() + 264) as usize;
        (start..HEAP_TYPE_SCAN - 32)
            .step_by(8)
            .filter(|&at| {
                word(at) != 0
                    && self.str(word(at)).is_some_and(|n| n == name)
                    && self.is_a(word(at + 16), "str")
            })
            .map(|at| word(at + 24))
            .find(|&keys| {
                keys != 0
                    && self
                        .mem
                        .read_vec(keys.wrapping_add(10), 1)
                        .is_ok_and(|kind| kind[0] == DICT_KEYS_SPLIT)
            })
    }
}
