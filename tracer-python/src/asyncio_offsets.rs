//! The offsets a reader of asyncio tasks needs, decoded and checked: the
//! interpreter's `_Py_AsyncioModuleDebugOffsets` (an ELF section
//! `.AsyncioDebug`: in the `_asyncio` extension module on 3.14, in the
//! interpreter itself from 3.15) for the task, interpreter and thread
//! fields, and the generator, set, long and list-node fields of
//! `_Py_DebugOffsets` (at the start of `_PyRuntime`) that the task walk
//! needs besides the sampler's. Pure functions over bytes: the reads are
//! `asyncio`'s.

/// The section's name in the ELF file.
pub const SECTION: &str = ".AsyncioDebug";

/// `_Py_AsyncioModuleDebugOffsets`: 13 `uint64_t` (3.14 and 3.15).
pub const SECTION_SIZE: usize = 13 * 8;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OffsetsError {
    #[error("the .AsyncioDebug section is {got} bytes, {SECTION_SIZE} expected")]
    SectionSize { got: usize },
    #[error("the .AsyncioDebug section does not describe a plausible {what}")]
    Implausible { what: &'static str },
    #[error("_Py_DebugOffsets does not start with its cookie")]
    NoCookie,
    #[error("_Py_DebugOffsets' {what} is not where CPython 3.{minor} keeps it")]
    UnknownLayout { what: &'static str, minor: u32 },
    #[error("no asyncio task reader for CPython 3.{minor} (3.14 and 3.15 are read)")]
    Unsupported { minor: u32 },
}

/// The fields of `_Py_AsyncioModuleDebugOffsets`, in bytes from the start
/// of each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncioOffsets {
    pub task_size: u64,
    pub task_name: u64,
    pub task_awaited_by: u64,
    pub task_is_task: u64,
    pub task_awaited_by_is_set: u64,
    pub task_coro: u64,
    pub task_node: u64,
    pub interp_size: u64,
    pub interp_tasks_head: u64,
    pub tstate_size: u64,
    pub tstate_running_loop: u64,
    pub tstate_running_task: u64,
    pub tstate_tasks_head: u64,
}

/// A task object is a few hundred bytes; this bounds what one read takes.
pub const MAX_TASK_SIZE: u64 = 4096;
const MAX_INTERP_SIZE: u64 = 16 << 20;
const MAX_TSTATE_SIZE: u64 = 1 << 20;

fn u64_at(raw: &[u8], at: usize) -> u64 {
    raw.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(u64::MAX, u64::from_le_bytes)
}

/// Decodes the section's bytes (as read from the process), refusing
/// offsets that do not fit inside their objects: a section of another
/// layout must give a reason, never a walk through wrong fields.
pub fn parse_section(raw: &[u8]) -> Result<AsyncioOffsets, OffsetsError> {
    if raw.len() != SECTION_SIZE {
        return Err(OffsetsError::SectionSize { got: raw.len() });
    }
    let f = |i: usize| u64_at(raw, i * 8);
    let o = AsyncioOffsets {
        task_size: f(0),
        task_name: f(1),
        task_awaited_by: f(2),
        task_is_task: f(3),
        task_awaited_by_is_set: f(4),
        task_coro: f(5),
        task_node: f(6),
        interp_size: f(7),
        interp_tasks_head: f(8),
        tstate_size: f(9),
        tstate_running_loop: f(10),
        tstate_running_task: f(11),
        tstate_tasks_head: f(12),
    };
    // (field, bytes it spans, object size): every field inside its object.
    let task = [
        (o.task_name, 8),
        (o.task_awaited_by, 8),
        (o.task_is_task, 1),
        (o.task_awaited_by_is_set, 1),
        (o.task_coro, 8),
        (o.task_node, 16),
    ];
    let fits = |fields: &[(u64, u64)], size: u64| {
        fields
            .iter()
            .all(|&(at, len)| at >= 16 && at.checked_add(len).is_some_and(|end| end <= size))
    };
    if !(32..=MAX_TASK_SIZE).contains(&o.task_size) || !fits(&task, o.task_size) {
        return Err(OffsetsError::Implausible {
            what: "task object",
        });
    }
    if o.interp_size > MAX_INTERP_SIZE || !fits(&[(o.interp_tasks_head, 16)], o.interp_size) {
        return Err(OffsetsError::Implausible {
            what: "interpreter state",
        });
    }
    let tstate = [
        (o.tstate_running_loop, 8),
        (o.tstate_running_task, 8),
        (o.tstate_tasks_head, 16),
    ];
    if o.tstate_size > MAX_TSTATE_SIZE || !fits(&tstate, o.tstate_size) {
        return Err(OffsetsError::Implausible {
            what: "thread state",
        });
    }
    Ok(o)
}

/// The object fields of `_Py_DebugOffsets` the task walk needs (the
/// sampler's own are `layout::Offsets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectOffsets {
    /// `_PyInterpreterFrame.stackpointer`: what a suspended coroutine awaits
    /// is the value below its top of stack.
    pub frame_stackpointer: u64,
    /// How far below the top of stack a suspended coroutine keeps what it
    /// awaits: one slot on 3.14, two on 3.15 (the value `SEND` passes in
    /// is on top).
    pub awaited_below_top: u64,
    /// `PyFrameState`'s values, renumbered in 3.15.
    pub states: FrameStates,
    pub type_flags: u64,
    pub set_used: u64,
    pub set_table: u64,
    pub set_mask: u64,
    pub long_tag: u64,
    pub long_digits: u64,
    pub gen_size: u64,
    pub gen_iframe: u64,
    pub gen_frame_state: u64,
    pub llist_next: u64,
}

/// The values of `gi_frame_state` (`pycore_frame.h`) the walk tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStates {
    pub created: i8,
    /// Suspended in an `await` (`yield from`): what it awaits is on its
    /// stack. 3.15's free-threaded builds also have a locked variant.
    pub suspended_yield_from: &'static [i8],
    pub executing: i8,
    /// Finished: completed (before 3.15) or cleared.
    pub finished: &'static [i8],
    pub cleared: i8,
}

const STATES_3_14: FrameStates = FrameStates {
    created: -3,
    suspended_yield_from: &[-1],
    executing: 0,
    finished: &[1, 4],
    cleared: 4,
};

const STATES_3_15: FrameStates = FrameStates {
    created: 0,
    suspended_yield_from: &[2, 3],
    executing: 4,
    finished: &[5],
    cleared: 5,
};

/// Where each field sits in `_Py_DebugOffsets` of one version, with the
/// size field of its block (for the checks).
#[derive(Debug, Clone, Copy)]
struct Positions {
    frame_size: usize,
    frame_stackpointer: usize,
    type_size: usize,
    type_flags: usize,
    set_size: usize,
    set_used: usize,
    set_table: usize,
    set_mask: usize,
    long_size: usize,
    long_tag: usize,
    long_digits: usize,
    gen_size: usize,
    gen_iframe: usize,
    gen_frame_state: usize,
    llist_next: usize,
    llist_prev: usize,
    /// Not in `_Py_DebugOffsets`: see [`ObjectOffsets`].
    awaited_below_top: u64,
    states: FrameStates,
}

/// 3.14 (read off Debian's 3.14): `set_object` before `dict_object`, a
/// two-field `gc` block, then `gen_object` and `llist_node`.
const POSITIONS_3_14: Positions = Positions {
    frame_size: 248,
    frame_stackpointer: 296,
    type_size: 416,
    type_flags: 440,
    set_size: 496,
    set_used: 504,
    set_table: 512,
    set_mask: 520,
    long_size: 568,
    long_tag: 576,
    long_digits: 584,
    gen_size: 664,
    gen_iframe: 680,
    gen_frame_state: 688,
    llist_next: 696,
    llist_prev: 704,
    awaited_below_top: 8,
    states: STATES_3_14,
};

/// 3.15 (read off Debian's 3.15.2): the longer thread-state block and the
/// blocks after `type_object` and `unicode_object` move every section.
const POSITIONS_3_15: Positions = Positions {
    frame_size: 312,
    frame_stackpointer: 360,
    type_size: 480,
    type_flags: 504,
    set_size: 592,
    set_used: 600,
    set_table: 608,
    set_mask: 616,
    long_size: 664,
    long_tag: 672,
    long_digits: 680,
    gen_size: 792,
    gen_iframe: 808,
    gen_frame_state: 816,
    llist_next: 824,
    llist_prev: 832,
    awaited_below_top: 16,
    states: STATES_3_15,
};

fn positions(minor: u32) -> Option<Positions> {
    match minor {
        14 => Some(POSITIONS_3_14),
        15 => Some(POSITIONS_3_15),
        _ => None,
    }
}

/// How many bytes of `_Py_DebugOffsets` [`decode_object_offsets`] needs
/// for CPython 3.`minor`.
pub fn debug_offsets_len(minor: u32) -> Result<usize, OffsetsError> {
    positions(minor)
        .map(|p| p.llist_prev + 8)
        .ok_or(OffsetsError::Unsupported { minor })
}

/// Decodes the task walk's fields from `_Py_DebugOffsets` of 3.`minor`,
/// checking that each lies inside its object as that block's size says.
pub fn decode_object_offsets(raw: &[u8], minor: u32) -> Result<ObjectOffsets, OffsetsError> {
    let p = positions(minor).ok_or(OffsetsError::Unsupported { minor })?;
    if raw.get(..8) != Some(&b"xdebugpy"[..]) {
        return Err(OffsetsError::NoCookie);
    }
    let f = |at: usize| u64_at(raw, at);
    let bad = |what| Err(OffsetsError::UnknownLayout { what, minor });
    // `struct llist_node` is { next, prev } on every version.
    if (f(p.llist_next), f(p.llist_prev)) != (0, 8) {
        return bad("llist_node");
    }
    let inside = |field: usize, size: usize, len: u64| {
        f(field)
            .checked_add(len)
            .is_some_and(|end| end <= f(size) && f(size) <= MAX_TASK_SIZE * 4)
    };
    if !inside(p.frame_stackpointer, p.frame_size, 8) {
        return bad("interpreter_frame.stackpointer");
    }
    if !inside(p.type_flags, p.type_size, 8) {
        return bad("type_object.tp_flags");
    }
    if ![p.set_used, p.set_table, p.set_mask]
        .iter()
        .all(|&at| inside(at, p.set_size, 8))
    {
        return bad("set_object");
    }
    if !inside(p.long_tag, p.long_size, 8) || f(p.long_digits) < f(p.long_tag) + 8 {
        return bad("long_object");
    }
    if !inside(p.gen_frame_state, p.gen_size, 1)
        || !inside(p.gen_iframe, p.gen_size, 8)
        || f(p.gen_size) > MAX_TASK_SIZE
    {
        return bad("gen_object");
    }
    Ok(ObjectOffsets {
        frame_stackpointer: f(p.frame_stackpointer),
        awaited_below_top: p.awaited_below_top,
        states: p.states,
        type_flags: f(p.type_flags),
        set_used: f(p.set_used),
        set_table: f(p.set_table),
        set_mask: f(p.set_mask),
        long_tag: f(p.long_tag),
        long_digits: f(p.long_digits),
        gen_size: f(p.gen_size),
        gen_iframe: f(p.gen_iframe),
        gen_frame_state: f(p.gen_frame_state),
        llist_next: f(p.llist_next),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian sid's 3.14 `_asyncio` module's section, as `readelf -x` shows it.
    fn section_3_14() -> Vec<u8> {
        [
            0xa8, 0x88, 0x60, 0x6c, 0x6d, 0x80, 0x98, 0x37248, 0x2a80, 0x3a8, 0x360, 0x368, 0x370,
        ]
        .iter()
        .flat_map(|v: &u64| v.to_le_bytes())
        .collect()
    }

    #[test]
    fn the_3_14_section_decodes() {
        let o = parse_section(&section_3_14()).unwrap();
        assert_eq!(o.task_size, 0xa8);
        assert_eq!(o.task_node, 0x98);
        assert_eq!(o.interp_tasks_head, 0x2a80);
        assert_eq!(o.tstate_tasks_head, 0x370);
    }

    #[test]
    fn a_section_of_another_layout_is_refused() {
        assert_eq!(
            parse_section(&section_3_14()[..96]),
            Err(OffsetsError::SectionSize { got: 96 })
        );
        let mut raw = section_3_14();
        // task_node past the task's end.
        raw[48..56].copy_from_slice(&0xa0u64.to_le_bytes());
        assert_eq!(
            parse_section(&raw),
            Err(OffsetsError::Implausible {
                what: "task object"
            })
        );
        let mut raw = section_3_14();
        raw[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_section(&raw).is_err());
        let mut raw = section_3_14();
        raw[96..104].copy_from_slice(&0x3a0u64.to_le_bytes());
        assert_eq!(
            parse_section(&raw),
            Err(OffsetsError::Implausible {
                what: "thread state"
            })
        );
        assert!(parse_section(&[0u8; SECTION_SIZE]).is_err());
    }

    /// `_Py_DebugOffsets` with the fields of 3.`minor` set as Debian's build has them.
    fn debug_offsets(minor: u32) -> Vec<u8> {
        let p = positions(minor).unwrap();
        let mut raw = vec![0u8; debug_offsets_len(minor).unwrap()];
        raw[..8].copy_from_slice(b"xdebugpy");
        let mut set = |at: usize, v: u64| raw[at..at + 8].copy_from_slice(&v.to_le_bytes());
        for (at, v) in [
            (p.frame_size, 0x58),
            (p.frame_stackpointer, 0x40),
            (p.type_size, 0x1a0),
            (p.type_flags, 0xa8),
            (p.set_size, 0xc8),
            (p.set_used, 0x18),
            (p.set_table, 0x28),
            (p.set_mask, 0x20),
            (p.long_size, 0x20),
            (p.long_tag, 0x10),
            (p.long_digits, 0x18),
            (p.gen_size, 0xa0),
            (p.gen_iframe, 0x48),
            (p.gen_frame_state, 0x43),
            (p.llist_next, 0),
            (p.llist_prev, 8),
        ] {
            set(at, v);
        }
        raw
    }

    #[test]
    fn object_offsets_of_3_14_and_3_15() {
        for minor in [14, 15] {
            let o = decode_object_offsets(&debug_offsets(minor), minor).unwrap();
            assert_eq!(o.gen_iframe, 0x48);
            assert_eq!(o.gen_frame_state, 0x43);
            assert_eq!(o.frame_stackpointer, 0x40);
            assert_eq!(o.set_table, 0x28);
            assert_eq!(o.llist_next, 0);
        }
        // 3.15 renumbered the frame states and keeps the awaited value
        // under the one `SEND` passes in.
        let o = decode_object_offsets(&debug_offsets(14), 14).unwrap();
        assert_eq!(
            (o.awaited_below_top, o.states.suspended_yield_from),
            (8, &[-1][..])
        );
        let o = decode_object_offsets(&debug_offsets(15), 15).unwrap();
        assert_eq!(
            (o.awaited_below_top, o.states.suspended_yield_from),
            (16, &[2, 3][..])
        );
        assert_eq!((o.states.created, o.states.cleared), (0, 5));
        // 3.14's bytes read as 3.15's: the list node is not where 3.15 has it.
        assert!(decode_object_offsets(&debug_offsets(14), 15).is_err());
        assert_eq!(
            decode_object_offsets(&debug_offsets(14), 16),
            Err(OffsetsError::Unsupported { minor: 16 })
        );
        let mut raw = debug_offsets(15);
        raw[..8].copy_from_slice(b"notdebug");
        assert_eq!(decode_object_offsets(&raw, 15), Err(OffsetsError::NoCookie));
    }

    #[test]
    fn a_field_outside_its_object_is_refused() {
        let p = POSITIONS_3_14;
        let mut raw = debug_offsets(14);
        raw[p.gen_frame_state..p.gen_frame_state + 8].copy_from_slice(&0x400u64.to_le_bytes());
        assert_eq!(
            decode_object_offsets(&raw, 14),
            Err(OffsetsError::UnknownLayout {
                what: "gen_object",
                minor: 14
            })
        );
    }
}
