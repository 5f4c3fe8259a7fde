//! Native stacks (`--native`): the sampler unwinds the interrupted thread's
//! user stack in the kernel, with no frame pointers and no stop, from the
//! unwind tables userspace compiled out of each mapped binary's
//! `.eh_frame` (`NATIVE_ROWS`) and the process's executable mappings
//! (`NATIVE_MAPPINGS`). Each step: find the mapping of the address, the
//! table row that covers it (binary search), compute the CFA from the
//! stack or frame pointer, read the return address where the row says
//! (below the CFA on x86-64; on arm64 the link register until a prologue
//! saves it), and the saved frame pointer if the row says where.
//! Userspace names the addresses and puts the Python frames in place of
//! the eval loop's. A process fork and a signal delivery (rare) are
//! unwound too, from the user registers saved at the kernel entry.

use aya_ebpf::{
    helpers::bpf_probe_read_user,
    macros::map,
    maps::{Array, HashMap},
    programs::PerfEventContext,
};
use tracer_common::{
    NATIVE_BLOCK_ROWS, NATIVE_MAX_DEPTH, NATIVE_MAX_MAPPINGS, NativeMapping, NativeMappings,
    NativeRow, NativeRowBlock, cfa_rule, native_end,
};

use crate::maps::{config, current_regs, read_reg};

/// Every unwind table, end to end, in blocks of [`NATIVE_BLOCK_ROWS`]
/// rows; sized by userspace at load (1 block without `--native`).
#[map]
pub static NATIVE_ROWS: Array<NativeRowBlock> = Array::with_max_entries(1, 0);

/// Executable mappings of each process unwound (key: tgid).
#[map]
pub static NATIVE_MAPPINGS: HashMap<u32, NativeMappings> =
    HashMap::with_max_entries(4096, crate::maps::ALLOCATE_ON_INSERT);

/// Whether process `tgid` is unwound natively.
#[inline(always)]
pub fn mappings_of(tgid: u32) -> Option<&'static NativeMappings> {
    unsafe { NATIVE_MAPPINGS.get(&tgid) }
}

/// A traced process forked `child` without `exec`: the same mappings.
#[inline(always)]
pub fn inherit(tgid: u32, child: u32) {
    if let Some(mappings) = mappings_of(tgid)
        && NATIVE_MAPPINGS.insert(&child, mappings, 0).is_err()
    {
        crate::maps::count_drop(tracer_common::drops::TABLES);
    }
}

/// Process `tgid` runs a new program: its mappings are gone.
#[inline(always)]
pub fn forget_process(tgid: u32) {
    let _ = NATIVE_MAPPINGS.remove(&tgid);
}

/// One unwind, on the sampler's stack, for `bpf_loop`.
#[repr(C)]
struct Unwind {
    mappings: *const NativeMappings,
    out: *mut u64,
    pc: u64,
    sp: u64,
    bp: u64,
    /// arm64's link register at the sample (0 on x86-64): the innermost
    /// frame's return address until its prologue saves it.
    lr: u64,
    depth: u32,
    end: u32,
    /// The mapping of the frame before (`end == 0`: none yet): callers are
    /// mostly in the same binary, and the search is skipped for them.
    last: NativeMapping,
}

/// Steps of the searches: 2^7 = 128 > [`NATIVE_MAX_MAPPINGS`] mappings,
/// 2^22 rows.
const MAPPING_STEPS: u32 = 7;
const ROW_STEPS: u32 = 22;

/// A binary search, on the stack, for `bpf_loop` (a plain loop of them
/// inside the unwind's callback is more than the verifier will walk).
#[repr(C)]
struct Search {
    /// The mappings, or the first row of a table.
    mappings: *const NativeMappings,
    first_row: u32,
    target: u64,
    /// Every entry before `lo` is at or below `target`; every one from
    /// `hi` on above it.
    lo: u32,
    hi: u32,
}

#[inline(never)]
extern "C" fn mapping_step(_index: u64, ctx: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `ctx` is the `Search` find_mapping passed to bpf_loop.
    let s = unsafe { &mut *ctx.cast::<Search>() };
    if s.lo >= s.hi {
        return 1;
    }
    let mid = (s.lo + s.hi) / 2;
    // SAFETY: a map value that outlives the program run.
    let m = unsafe { &(*s.mappings).mappings[(mid as usize) & (NATIVE_MAX_MAPPINGS - 1)] };
    if m.start <= s.target {
        s.lo = mid + 1;
    } else {
        s.hi = mid;
    }
    0
}

#[inline(never)]
extern "C" fn row_step(_index: u64, ctx: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `ctx` is the `Search` find_row passed to bpf_loop.
    let s = unsafe { &mut *ctx.cast::<Search>() };
    if s.lo >= s.hi {
        return 1;
    }
    let mid = s.lo + (s.hi - s.lo) / 2;
    let Some(row) = row_at(s.first_row.wrapping_add(mid)) else {
        s.lo = 0;
        return 1;
    };
    if u64::from(row.pc) <= s.target {
        s.lo = mid + 1;
    } else {
        s.hi = mid;
    }
    0
}

/// The mapping that holds `pc` (sorted by start: the last one starting at
/// or below it, if it ends above).
#[inline(always)]
fn find_mapping(mappings: &NativeMappings, pc: u64) -> Option<NativeMapping> {
    let mut search = Search {
        mappings,
        first_row: 0,
        target: pc,
        lo: 0,
        hi: mappings.count.min(NATIVE_MAX_MAPPINGS as u32),
    };
    // ``search`` outlives the loop.
    crate::steps::repeat_with_bpf_loop!(
        MAPPING_STEPS,
        mapping_step,
        core::ptr::addr_of_mut!(search)
    );
    if search.lo == 0 {
        return None;
    }
    let m = mappings.mappings[((search.lo - 1) as usize) & (NATIVE_MAX_MAPPINGS - 1)];
    (pc < m.end).then_some(m)
}

#[inline(always)]
fn row_at(index: u32) -> Option<NativeRow> {
    let block = NATIVE_ROWS.get(index / NATIVE_BLOCK_ROWS as u32)?;
    Some(block.rows[(index as usize) & (NATIVE_BLOCK_ROWS - 1)])
}

/// The row of `mapping`'s table that covers binary address `vaddr`: the
/// last one starting at or below it.
#[inline(always)]
fn find_row(mapping: &NativeMapping, vaddr: u32) -> Option<NativeRow> {
    let mut search = Search {
        mappings: core::ptr::null(),
        first_row: mapping.first_row,
        target: u64::from(vaddr),
        lo: 0,
        hi: mapping.rows,
    };
    // ``search`` outlives the loop.
    crate::steps::repeat_with_bpf_loop!(ROW_STEPS, row_step, core::ptr::addr_of_mut!(search));
    if search.lo == 0 {
        return None;
    }
    row_at(mapping.first_row.wrapping_add(search.lo - 1))
}

/// One frame of the unwind: a `bpf_loop` callback.
#[inline(never)]
extern "C" fn unwind_step(index: u64, ctx: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `ctx` is the `Unwind` unwind_user passed to bpf_loop.
    let u = unsafe { &mut *ctx.cast::<Unwind>() };
    if index >= NATIVE_MAX_DEPTH as u64 {
        u.end = native_end::TRUNCATED;
        return 1;
    }
    // SAFETY: index < NATIVE_MAX_DEPTH, inside the reserved record.
    unsafe { u.out.add(index as usize).write(u.pc) };
    u.depth = index as u32 + 1;
    // SAFETY: a map value that outlives the program run.
    let mappings = unsafe { &*u.mappings };
    // A return address is the instruction after the call: its row may
    // already be the next function's (a call as a function's last act).
    let pc = if index == 0 { u.pc } else { u.pc - 1 };
    let mapping = if u.last.start <= pc && pc < u.last.end {
        u.last
    } else {
        let Some(mapping) = find_mapping(mappings, pc) else {
            u.end = native_end::NO_MAPPING;
            return 1;
        };
        u.last = mapping;
        mapping
    };
    let vaddr = pc.wrapping_sub(mapping.bias) as u32;
    let Some(row) = find_row(&mapping, vaddr) else {
        u.end = native_end::NO_TABLE;
        return 1;
    };
    let cfa = match row.cfa_rule {
        cfa_rule::SP => u.sp.wrapping_add(row.cfa_offset as i64 as u64),
        cfa_rule::FP => u.bp.wrapping_add(row.cfa_offset as i64 as u64),
        cfa_rule::PLT => u.sp + 8 + if pc & 15 >= 11 { 8 } else { 0 },
        cfa_rule::END => {
            u.end = native_end::COMPLETE;
            return 1;
        }
        _ => {
            u.end = if row.cfa_rule == cfa_rule::UNKNOWN && row.cfa_offset == 0 {
                native_end::NO_TABLE
            } else {
                native_end::UNKNOWN_RULE
            };
            return 1;
        }
    };
    let ra = if row.ra_slot == 0 {
        // Still in the link register: the innermost frame's only.
        if index != 0 || u.lr == 0 {
            u.end = native_end::COMPLETE;
            return 1;
        }
        u.lr
    } else {
        let at = cfa.wrapping_add((row.ra_slot as i64 * 8) as u64);
        let Ok(ra) = (unsafe { bpf_probe_read_user(at as *const u64) }) else {
            u.end = native_end::UNREADABLE;
            return 1;
        };
        ra
    };
    // arm64 signs return addresses (pointer authentication) in the bits
    // above the 48-bit user address: masked here, in x30 or saved.
    #[cfg(bpf_target_arch = "aarch64")]
    let ra = ra & USER_ADDRESS_MASK;
    if row.fp_offset != 0 {
        let at = cfa.wrapping_add(row.fp_offset as i64 as u64);
        match unsafe { bpf_probe_read_user(at as *const u64) } {
            Ok(bp) => u.bp = bp,
            Err(_) => {
                u.end = native_end::UNREADABLE;
                return 1;
            }
        }
    }
    if ra == 0 {
        u.end = native_end::COMPLETE;
        return 1;
    }
    u.sp = cfa;
    u.pc = ra;
    0
}

/// Where an unwind starts: the user registers it follows.
#[derive(Clone, Copy)]
struct UserRegisters {
    pc: u64,
    sp: u64,
    bp: u64,
    /// arm64's link register (x30), as read (signed, maybe); 0 on x86-64.
    lr: u64,
}

/// The user address bits (48-bit virtual addresses, x86-64 and arm64).
#[cfg(bpf_target_arch = "aarch64")]
const USER_ADDRESS_MASK: u64 = (1 << 48) - 1;

/// The interrupted thread's user registers: the sample's own when it
/// interrupted user code, else those saved at its entry into the kernel
/// (a syscall, a fault).
#[inline(always)]
// The sampler without bpf_loop unwinds no native stack.
#[cfg_attr(feature = "without-bpf-loop", allow(dead_code))]
fn user_registers(ctx: &PerfEventContext) -> Option<UserRegisters> {
    let regs = ctx.ctx as *const aya_ebpf::bindings::pt_regs;
    // SAFETY: a perf event program's context starts with the pt_regs of
    // the interrupted context (`bpf_user_pt_regs_t`, UAPI).
    #[cfg(bpf_target_arch = "x86_64")]
    let (sample, in_user) = unsafe {
        let r = &*regs;
        let sample = UserRegisters {
            pc: r.rip,
            sp: r.rsp,
            bp: r.rbp,
            lr: 0,
        };
        (sample, r.cs & 3 == 3)
    };
    // arm64's `struct user_pt_regs`: x0-x30, sp, pc, pstate (EL0: the
    // mode bits 0).
    #[cfg(bpf_target_arch = "aarch64")]
    let (sample, in_user) = unsafe {
        let r = &*regs;
        let sample = UserRegisters {
            pc: r.pc,
            sp: r.sp,
            bp: r.regs[29],
            lr: r.regs[30],
        };
        (sample, r.pstate & 0xf == 0)
    };
    if in_user {
        return Some(sample);
    }
    saved_user_registers()
}

/// The current thread's user registers as saved at its entry into the
/// kernel: in a fork, the `fork()` call; on a signal's way back to user
/// mode, where the signal interrupted it.
#[inline(always)]
fn saved_user_registers() -> Option<UserRegisters> {
    let saved = current_regs()?;
    let lr = match config!(regs.lr) {
        0 => 0,
        offset => read_reg(saved, offset)?,
    };
    Some(UserRegisters {
        pc: read_reg(saved, config!(regs.ip))?,
        sp: read_reg(saved, config!(regs.sp))?,
        bp: read_reg(saved, config!(regs.bp))?,
        lr,
    })
}

/// Unwinds the current thread's user stack into `out`
/// ([`NATIVE_MAX_DEPTH`] entries) from the sample's registers: returns
/// (frames, [`native_end`]).
#[inline(always)]
// The sampler without bpf_loop unwinds no native stack.
#[cfg_attr(feature = "without-bpf-loop", allow(dead_code))]
pub fn unwind_user(ctx: &PerfEventContext, mappings: &NativeMappings, out: *mut u64) -> (u32, u32) {
    unwind(user_registers(ctx), mappings, out)
}

/// [`unwind_user`] for a kernel event in the current thread (a fork, a
/// signal delivery): from the user registers saved at its kernel entry.
#[inline(always)]
pub fn unwind_current(mappings: &NativeMappings, out: *mut u64) -> (u32, u32) {
    unwind(saved_user_registers(), mappings, out)
}

#[inline(always)]
fn unwind(regs: Option<UserRegisters>, mappings: &NativeMappings, out: *mut u64) -> (u32, u32) {
    let Some(regs) = regs else {
        return (0, native_end::UNREADABLE);
    };
    let mut unwind = Unwind {
        mappings,
        out,
        pc: regs.pc,
        sp: regs.sp,
        bp: regs.bp,
        lr: regs.lr,
        depth: 0,
        end: native_end::TRUNCATED,
        last: NativeMapping::default(),
    };
    // ``unwind`` outlives the loop.
    crate::steps::repeat_with_bpf_loop!(
        NATIVE_MAX_DEPTH as u32 + 1,
        unwind_step,
        core::ptr::addr_of_mut!(unwind)
    );
    (unwind.depth, unwind.end)
}
