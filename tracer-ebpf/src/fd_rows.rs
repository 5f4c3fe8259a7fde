//! One-off traces: reads are counted in their descriptor's row (`FD_ROWS`),
//! and the row is sent to userspace in one record when the descriptor is
//! closed (or its number reused by an open). The kernel holds only the
//! descriptors open now, so a trace may read any number of files; a read
//! costs one lookup here instead of `IO_STATS`'s.
//!
//! A row is shared by the process's threads (any CPU), so its figures are
//! added atomically and a slot is claimed by compare-and-swap.

use core::arch::asm;

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use tracer_common::{
    EventHeader, EventKind, FD_SLOTS, FdClosedEvent, FdKey, FdRow, FdSlot, InflightIo, MAX_FD_ROWS,
    drops,
};

use crate::{
    maps::{ALLOCATE_ON_INSERT, EVENTS, count_drop, lazy_wakeup},
    python::{HOOKS, Hook},
};

/// Descriptors open now in traced processes (and those a process still
/// held when it exited, sent by userspace's snapshot at the end).
/// Allocated on insert: a late read on another CPU may still write to a
/// row its close just removed (freed after an RCU grace period, not reused).
#[map]
static FD_ROWS: HashMap<FdKey, FdRow> = HashMap::with_max_entries(MAX_FD_ROWS, ALLOCATE_ON_INSERT);

/// Where a new row is built before it is inserted: a slot per `Hook` (an
/// open's return in a first copy, and in a second copy that runs while
/// the first is preempted inside it, on the kernels whose syscall programs
/// can be preempted, would otherwise build their rows in one place).
#[map]
static ROW_SCRATCH: PerCpuArray<FdRow> = PerCpuArray::with_max_entries(HOOKS, 0);

/// A new row for descriptor `fd`: opened by path (`opens` 1) or discovered
/// at its first read (`opens` 0). A row still there for that number (a
/// descriptor closed without `close`: `dup2`, `exec`'s close-on-exec) is
/// sent first. False: the table is full (counted). `hook`: the program
/// running (its scratch slot).
#[inline(always)]
pub fn open(tgid: u32, tid: u32, fd: i32, file_id: u64, opens: u64, now: u64, hook: Hook) -> bool {
    let key = FdKey { tgid, fd };
    send(tgid, tid, fd, &key, now);
    // Built in scratch space: a row is half the BPF stack.
    let Some(row) = ROW_SCRATCH.get_ptr_mut(hook as u32) else {
        return false;
    };
    // SAFETY: this CPU's slot for the running hook, for the length of this program.
    let row = unsafe { &mut *row };
    row.file_id = file_id;
    row.opened_ns = now;
    row.opens = opens;
    row.closing = 0;
    for i in 0..FD_SLOTS {
        row.slots[i] = FdSlot::default();
    }
    if FD_ROWS.insert(key, &*row, 0).is_err() {
        count_drop(drops::TABLES);
        return false;
    }
    true
}

/// `close(fd)`: the row goes to userspace.
#[inline(always)]
pub fn close(tgid: u32, tid: u32, fd: i32, now: u64) {
    send(tgid, tid, fd, &FdKey { tgid, fd }, now);
}

/// The file id the descriptor names, if it has a row.
#[inline(always)]
pub fn file_of(tgid: u32, fd: i32) -> Option<u64> {
    FD_ROWS
        .get_ptr(FdKey { tgid, fd })
        .map(|row| unsafe { (*row).file_id })
}

/// Sends and removes the row of `key`, if there is one.
#[inline(always)]
fn send(tgid: u32, tid: u32, fd: i32, key: &FdKey, now: u64) {
    let Some(row) = FD_ROWS.get_ptr_mut(key) else {
        return;
    };
    // Reads that end from now on know they may be too late (see `add`).
    unsafe { xchg(&raw mut (*row).closing, 1) };
    let wake = lazy_wakeup();
    match EVENTS.reserve::<FdClosedEvent>(0) {
        Some(mut entry) => {
            // SAFETY: the reserved slot holds one FdClosedEvent, written in
            // place (it does not fit the stack); the row is a map value
            // whose concurrent adds are whole 8-byte words.
            unsafe {
                let event = entry.as_mut_ptr();
                (*event).header = EventHeader {
                    kind: EventKind::FdClosed as u32,
                    tgid,
                    tid,
                    _pad: 0,
                    ts_ns: now,
                };
                (*event).fd = fd;
                (*event)._pad = 0;
                core::ptr::copy_nonoverlapping(row as *const FdRow, &raw mut (*event).row, 1);
            }
            entry.submit(wake);
        }
        None => count_drop(drops::RINGBUF),
    }
    let _ = FD_ROWS.remove(key);
}

/// Adds a finished read to its descriptor's row. False: the descriptor has
/// no row, or no slot for this (syscall, request): count it elsewhere.
#[inline(always)]
pub fn add(tgid: u32, read: &InflightIo, ret: i64, elapsed: u64) -> bool {
    let Some(row) = FD_ROWS.get_ptr_mut(FdKey { tgid, fd: read.fd }) else {
        return false;
    };
    let Some(want) = FdSlot::key(read.syscall, read.request) else {
        return false;
    };
    let mut found: Option<*mut FdSlot> = None;
    for i in 0..FD_SLOTS {
        // SAFETY: a map value, valid until the program ends.
        let slot = unsafe { &raw mut (*row).slots[i] };
        let key = unsafe { &raw mut (*slot).key };
        let mut have = unsafe { core::ptr::read_volatile(key) };
        if have == 0 {
            // Two threads may claim this free slot at once: one wins.
            have = unsafe { cmpxchg(key, 0, want) };
            if have == 0 {
                have = want;
            }
        }
        if have == want {
            found = Some(slot);
            break;
        }
    }
    let Some(slot) = found else {
        return false;
    };
    let add = |field: *mut u64, n: u64| {
        if n != 0 {
            unsafe { crate::maps::add_relaxed(field, n) };
        }
    };
    unsafe {
        let stats = &raw mut (*slot).stats;
        if ret >= 0 {
            add(&raw mut (*stats).bytes, ret as u64);
        } else {
            add(&raw mut (*stats).errors, 1);
        }
        add(&raw mut (*stats).kernel_ns, elapsed);
        add(&raw mut (*stats).voluntary, read.voluntary);
        add(&raw mut (*stats).involuntary, read.involuntary);
        // Last and fully ordered: a close that has not set `closing` by
        // now copies all of this read.
        fetch_add(&raw mut (*stats).syscalls, 1);
        if core::ptr::read_volatile(&raw const (*row).closing) != 0 {
            count_drop(drops::READ_STATS);
        }
    }
    true
}

// The kernel's BPF atomics (Documentation/bpf/standardization): the
// fetching ones (`BPF_FETCH`, `xchg`, `cmpxchg`) are fully ordered, the
// plain add (`crate::maps::add_relaxed`) is not.

/// `*dst += n`, fully ordered; returns the old value.
#[inline(always)]
unsafe fn fetch_add(dst: *mut u64, n: u64) -> u64 {
    let mut value = n;
    unsafe {
        asm!(
            "{v} = atomic_fetch_add((u64 *)({dst} + 0), {v})",
            dst = in(reg) dst,
            v = inout(reg) value,
        )
    };
    value
}

/// Stores `new`, fully ordered; returns the old value.
#[inline(always)]
unsafe fn xchg(dst: *mut u64, new: u64) -> u64 {
    let mut value = new;
    unsafe { asm!("{v} = xchg_64({dst} + 0, {v})", dst = in(reg) dst, v = inout(reg) value) };
    value
}

/// Stores `new` if `*dst` is `old`, fully ordered; returns what `*dst` was.
#[inline(always)]
unsafe fn cmpxchg(dst: *mut u64, old: u64, new: u64) -> u64 {
    let mut value = old;
    unsafe {
        asm!(
            "r0 = cmpxchg_64({dst} + 0, r0, {new})",
            dst = in(reg) dst,
            new = in(reg) new,
            inout("r0") value,
        )
    };
    value
}
