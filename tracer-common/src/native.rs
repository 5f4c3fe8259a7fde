//! Native frames (`--native`): the unwind tables userspace compiles from
//! each mapped binary's `.eh_frame`, the executable mappings of each
//! process the sampler unwinds, and the records that carry both stacks (a
//! sample's, a fork's, a signal delivery's).

use crate::{python::PyForkEvent, python::PySample, signals::SignalDeliverEvent};

/// Native frames a sample records, at most (innermost first).
pub const NATIVE_MAX_DEPTH: usize = 128;

/// Rows of one [`NativeRowBlock`] (a value of `NATIVE_ROWS`): a power of two.
pub const NATIVE_BLOCK_ROWS: usize = 256;

/// Executable mappings of one process the unwinder knows, at most.
pub const NATIVE_MAX_MAPPINGS: usize = 64;

/// How the canonical frame address (CFA: the caller's stack pointer) of
/// an instruction is found ([`NativeRow::cfa_rule`]).
pub mod cfa_rule {
    /// The stack pointer (x86-64 `rsp`, arm64 `sp`) + `cfa_offset`.
    pub const SP: u8 = 0;
    /// The frame pointer (x86-64 `rbp`, arm64 `x29`) + `cfa_offset`.
    pub const FP: u8 = 1;
    /// An x86-64 PLT stub (`.eh_frame`'s usual expression for it):
    /// `rsp + 8`, plus 8 past the stub's push (instruction byte 11 of 16).
    pub const PLT: u8 = 2;
    /// The outermost frame (the return address is undefined: `_start`,
    /// a thread's start): the stack ends here.
    pub const END: u8 = 3;
    /// Not covered by any FDE, or a rule the unwinder does not follow
    /// (an expression, a register other than the stack or frame pointer).
    pub const UNKNOWN: u8 = 4;
}

/// One row of an unwind table: from `pc` (the binary's virtual address,
/// low 32 bits) to the next row's, how to find the caller's registers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeRow {
    pub pc: u32,
    pub cfa_offset: i32,
    /// Where the caller's frame pointer was saved, from the CFA (0:
    /// unchanged).
    pub fp_offset: i16,
    /// [`cfa_rule`]
    pub cfa_rule: u8,
    /// Where the return address was saved, in 8-byte words from the CFA
    /// (x86-64: always -1, the call's push); 0: still in the link register
    /// (arm64's x30, as at a function's entry), which only the innermost
    /// frame has: in an outer frame it means the stack ends.
    pub ra_slot: i8,
}

/// A value of `NATIVE_ROWS`: the rows of every table, end to end.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NativeRowBlock {
    pub rows: [NativeRow; NATIVE_BLOCK_ROWS],
}

/// One executable mapping of a process: `[start, end)`, its addresses as
/// the binary's (`address - bias`), and its table in `NATIVE_ROWS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeMapping {
    pub start: u64,
    pub end: u64,
    pub bias: u64,
    /// Index of its first row in `NATIVE_ROWS` (block * rows + slot).
    pub first_row: u32,
    /// 0: mapped, no table (the unwinder stops there).
    pub rows: u32,
}

/// Value of `NATIVE_MAPPINGS` (key: tgid): the process's executable
/// mappings, sorted by `start`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NativeMappings {
    pub count: u32,
    pub _pad: u32,
    pub mappings: [NativeMapping; NATIVE_MAX_MAPPINGS],
}

/// Why a native unwind stopped ([`PyNativeSample::native_end`]).
pub mod native_end {
    /// The outermost frame: a complete stack.
    pub const COMPLETE: u32 = 0;
    /// An address in no mapping the unwinder knows (a library loaded since
    /// userspace last looked, the vDSO, generated code).
    pub const NO_MAPPING: u32 = 1;
    /// A mapping with no table, or an address its table does not cover.
    pub const NO_TABLE: u32 = 2;
    /// A rule the unwinder does not follow.
    pub const UNKNOWN_RULE: u32 = 3;
    /// The stack could not be read (paged out: a perf event cannot fault).
    pub const UNREADABLE: u32 = 4;
    /// Deeper than [`super::NATIVE_MAX_DEPTH`].
    pub const TRUNCATED: u32 = 5;
}

/// A [`PySample`] of a process unwound natively too
/// (`EventKind::PyNativeSample`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyNativeSample {
    pub sample: PySample,
    /// Valid entries of `native`.
    pub native_depth: u32,
    /// [`native_end`]
    pub native_end: u32,
    /// Instruction addresses, innermost first: the interrupted one, then
    /// return addresses.
    pub native: [u64; NATIVE_MAX_DEPTH],
}

/// A [`PyForkEvent`] of a process unwound natively
/// (`EventKind::PyNativeForkStack`): the forking thread's native stack
/// from its user registers at the fork (the `fork()` call and its callers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyNativeForkEvent {
    pub fork: PyForkEvent,
    /// Valid entries of `native`.
    pub native_depth: u32,
    /// [`native_end`]
    pub native_end: u32,
    /// Instruction addresses, innermost first.
    pub native: [u64; NATIVE_MAX_DEPTH],
}

/// A [`SignalDeliverEvent`] in a process unwound natively
/// (`EventKind::SignalNativeDelivered`): the receiving thread's native
/// stack where the signal interrupted it (`native_depth` 0 when its
/// Python stack was not captured either).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SignalNativeDeliverEvent {
    pub deliver: SignalDeliverEvent,
    pub native_depth: u32,
    pub native_end: u32,
    pub native: [u64; NATIVE_MAX_DEPTH],
}

const _: () = assert!(core::mem::size_of::<NativeRow>() == 12);
const _: () = assert!(core::mem::size_of::<NativeRowBlock>() == 12 * NATIVE_BLOCK_ROWS);
const _: () = assert!(core::mem::size_of::<NativeMapping>() == 32);
const _: () = assert!(core::mem::size_of::<NativeMappings>() == 8 + 32 * NATIVE_MAX_MAPPINGS);
const _: () = assert!(
    core::mem::size_of::<PyNativeSample>()
        == core::mem::size_of::<PySample>() + 8 + 8 * NATIVE_MAX_DEPTH
);
const _: () = assert!(
    core::mem::size_of::<PyNativeForkEvent>()
        == core::mem::size_of::<PyForkEvent>() + 8 + 8 * NATIVE_MAX_DEPTH
);
const _: () = assert!(
    core::mem::size_of::<SignalNativeDeliverEvent>()
        == core::mem::size_of::<SignalDeliverEvent>() + 8 + 8 * NATIVE_MAX_DEPTH
);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for NativeRowBlock {}
    unsafe impl aya::Pod for NativeMappings {}
}
