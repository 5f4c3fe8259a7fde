//! Names of code objects, copied by the sampler the first time it meets
//! one: a module's `<module>` code is freed as soon as its import is done,
//! and code made by `exec` (dataclass methods, templates) once it has run,
//! often before userspace reads the sample (up to a drain later). Userspace
//! names a frame from the code object itself while it lives (the line
//! table gives the line) and from this copy once it is gone.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_user, generated},
    macros::map,
    maps::Array,
};
use tracer_common::{
    EventHeader, EventKind, PY_LINE_TABLE_BYTES, PY_NAME_BYTES, PY_NAMED_SLOTS, PY_NO_OFFSET,
    PyCodeLines, PyCodeNames, PyConfig, PyFrameRecord, PyNamedCode, PyStringCopy, drops,
    named_code_slot,
};

use super::read_u64;
use crate::maps::{EVENTS, RB_NO_WAKEUP, count_drop};

/// The code objects whose names were sent, direct-mapped by (process,
/// address, fingerprint), with the program they belong to (`exec`): one array lookup per distinct code object on a
/// sampled stack. A slot taken over by another object costs a second copy,
/// never a missing name.
#[map]
static PY_NAMED_CODE: Array<PyNamedCode> = Array::with_max_entries(PY_NAMED_SLOTS, 0);

/// What [`name_if_new`] did with a frame's code object.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Its names went out now.
    Sent,
    /// Sent before, not configured, or no room in the ring buffer.
    Skipped,
    /// Not a code object: the frame is stale (a code object is alive while
    /// a frame runs it), so the walk that reached it was torn.
    NotCode,
}

/// Sends the names of the frame's code object unless they were sent
/// before.
#[inline(always)]
pub fn name_if_new(cfg: &PyConfig, tgid: u32, frame: &PyFrameRecord) -> Naming {
    if cfg.code_name == PY_NO_OFFSET || frame.check == 0 || frame.code == 0 {
        return Naming::Skipped;
    }
    let index = named_code_slot(tgid, frame.code, frame.check);
    let Some(slot) = PY_NAMED_CODE.get_ptr_mut(index) else {
        return Naming::Skipped;
    };
    // SAFETY: a map value; another CPU writing the same slot at once can
    // only make it match nothing (the names are sent again).
    let slot = unsafe { &mut *slot };
    if slot.code == frame.code
        && slot.check == frame.check
        && slot.tgid == tgid
        && slot.epoch == cfg.code_names_epoch
    {
        return Naming::Skipped;
    }
    let code = if cfg.code_is_stackref != 0 {
        frame.code & !7
    } else {
        frame.code
    };
    // Freed memory keeps the name pointers the fingerprint is made of, but
    // not its type: the allocator writes its own links over the header.
    if cfg.code_type != 0
        && unsafe { bpf_probe_read_user((code + cfg.ob_type as u64) as *const u64) }.unwrap_or(0)
            != cfg.code_type
    {
        return Naming::NotCode;
    }
    // Every code object CPython compiles starts on a line (a module on
    // line 1): a 0 here is a read that failed or memory not (or no
    // longer) the object's. Not copied: the next sample that meets the
    // object tries again, rather than a name with no `def` line standing
    // for it once it is freed.
    let first_line: u32 =
        unsafe { bpf_probe_read_user((code + cfg.code_firstlineno as u64) as *const u32) }
            .unwrap_or(0);
    if first_line == 0 {
        return Naming::Skipped;
    }
    let Some(mut entry) = EVENTS.reserve::<PyCodeNames>(0) else {
        count_drop(drops::RINGBUF);
        return Naming::Skipped;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(EventKind::PyCodeNames, tgid));
        core::ptr::addr_of_mut!((*event).code).write(frame.code);
        core::ptr::addr_of_mut!((*event).check).write(frame.check);
        core::ptr::addr_of_mut!((*event).first_line).write(first_line);
        core::ptr::addr_of_mut!((*event)._pad).write(0);
    }
    // SAFETY: the reserved record's string fields, written in place.
    let copied = unsafe {
        copy_str(
            cfg,
            code,
            cfg.code_name,
            core::ptr::addr_of_mut!((*event).name),
        );
        copy_str(
            cfg,
            code,
            cfg.code_qualname,
            core::ptr::addr_of_mut!((*event).qualname),
        );
        copy_str(
            cfg,
            code,
            cfg.code_filename,
            core::ptr::addr_of_mut!((*event).filename),
        );
        (*event).name.copied != 0 && (*event).filename.copied != 0
    };
    // A name or file not read (a page not in memory yet): not sent, and
    // not remembered as sent, so the next sample that meets it copies
    // again (every code object has a name and a file).
    if !copied {
        entry.discard(RB_NO_WAKEUP);
        return Naming::Skipped;
    }
    // Behind the sample being written (reserved first): userspace applies
    // a drain's names before its samples.
    entry.submit(RB_NO_WAKEUP);
    *slot = PyNamedCode {
        code: frame.code,
        check: frame.check,
        tgid,
        epoch: cfg.code_names_epoch,
    };
    Naming::Sent
}

/// Names the frame's code object if new, and sends its line table: for a
/// thread a signal is killing, whose process is gone before userspace
/// could read either.
#[inline(always)]
pub fn name_with_lines(cfg: &PyConfig, tgid: u32, frame: &PyFrameRecord) {
    if name_if_new(cfg, tgid, frame) != Naming::NotCode {
        send_lines(cfg, tgid, frame);
    }
}

/// Sends the line table of the frame's code object: with its names the
/// first time a sample meets it too, since a short-lived process (or a
/// thread's last moments in it) may exit before userspace reads the
/// samples, and with them the code object's lines.
#[inline(always)]
pub fn send_lines(cfg: &PyConfig, tgid: u32, frame: &PyFrameRecord) {
    if cfg.code_linetable == PY_NO_OFFSET || frame.check == 0 || frame.code == 0 {
        return;
    }
    let code = if cfg.code_is_stackref != 0 {
        frame.code & !7
    } else {
        frame.code
    };
    let table = read_u64(code + cfg.code_linetable as u64);
    if table == 0 {
        return;
    }
    let length = read_u64(table + cfg.bytes_size as u64);
    let Some(mut entry) = EVENTS.reserve::<PyCodeLines>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: the reserved record's fields, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(EventKind::PyCodeLines, tgid));
        core::ptr::addr_of_mut!((*event).code).write(frame.code);
        core::ptr::addr_of_mut!((*event).check).write(frame.check);
        let to = core::ptr::addr_of_mut!((*event).bytes).cast();
        let from = (table + cfg.bytes_data as u64) as *const core::ffi::c_void;
        // The size the verifier sees: a constant, or masked in a register
        // just before the call (as `copy_str`'s).
        let (n, read) = if length >= PY_LINE_TABLE_BYTES as u64 {
            let n = PY_LINE_TABLE_BYTES as u32;
            (n, generated::bpf_probe_read_user(to, n, from))
        } else {
            let n = super::below::<PY_LINE_TABLE_BYTES>(length) as u32;
            (n, generated::bpf_probe_read_user(to, n, from))
        };
        // A table is never near 4 GiB: a length that large is no table.
        core::ptr::addr_of_mut!((*event).length).write(length.min(u32::MAX as u64) as u32);
        core::ptr::addr_of_mut!((*event).copied).write(if read == 0 { n } else { 0 });
    }
    entry.submit(RB_NO_WAKEUP);
}

/// The header of a record about one of process `tgid`'s code objects.
#[inline(always)]
fn header(kind: EventKind, tgid: u32) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        tgid,
        tid: 0,
        _pad: 0,
        // SAFETY: a helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
    }
}

/// Copies the `str` the code object's field at `field` points to: its
/// length, state and the last [`PY_NAME_BYTES`] bytes of its characters
/// (compact strings only: every name CPython makes).
#[inline(always)]
unsafe fn copy_str(cfg: &PyConfig, code: u64, field: u32, out: *mut PyStringCopy) {
    let (mut length, mut state, mut copied) = (0u64, 0u32, 0u32);
    let object = if field == PY_NO_OFFSET {
        0
    } else {
        read_u64(code + field as u64)
    };
    if object != 0 {
        length = read_u64(object + cfg.str_length as u64);
        state = unsafe { bpf_probe_read_user((object + cfg.str_state as u64) as *const u32) }
            .unwrap_or(0);
        let compact = (state >> 5) & 1 == 1;
        let (data, width) = if (state >> 6) & 1 == 1 {
            (cfg.str_ascii_data, 1)
        } else {
            (cfg.str_compact_data, (state >> 2) & 7)
        };
        // A name is never near this long: a bound for the arithmetic.
        if compact && matches!(width, 1 | 2 | 4) && length < 1 << 20 {
            let bytes = length * width as u64;
            // The size the verifier sees: a constant, or masked in a
            // register just before the call (6.1's loses the bound of a
            // value spilled to the stack and filled back).
            // SAFETY: `out` is the record being written.
            let to = unsafe { core::ptr::addr_of_mut!((*out).bytes) }.cast();
            let (n, read) = if bytes >= PY_NAME_BYTES as u64 {
                let from = object + data as u64 + (bytes - PY_NAME_BYTES as u64);
                // SAFETY: PY_NAME_BYTES bytes into the record's buffer.
                let read = unsafe {
                    generated::bpf_probe_read_user(
                        to,
                        PY_NAME_BYTES as u32,
                        from as *const core::ffi::c_void,
                    )
                };
                (PY_NAME_BYTES as u32, read)
            } else {
                let n = super::below::<PY_NAME_BYTES>(bytes) as u32;
                let from = object + data as u64;
                // SAFETY: fewer than PY_NAME_BYTES bytes into the buffer.
                let read = unsafe {
                    generated::bpf_probe_read_user(to, n, from as *const core::ffi::c_void)
                };
                (n, read)
            };
            if read == 0 {
                copied = n;
            }
        }
    }
    unsafe {
        core::ptr::addr_of_mut!((*out).length).write(length);
        core::ptr::addr_of_mut!((*out).state).write(state);
        core::ptr::addr_of_mut!((*out).copied).write(copied);
    }
}
