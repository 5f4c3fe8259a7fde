//! What this kernel can do beyond the 5.10 floor, probed once at start by
//! loading a tiny program (the way libbpf and aya probe helpers) or looking
//! for a file, never guessed from the version number: a backported feature
//! counts, a feature configured out does not. What the tracer does with
//! each is decided in `profile.rs`, and nowhere else.

use std::os::fd::{FromRawFd, OwnedFd};

/// This kernel's features, each a few microseconds to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// `bpf_loop` (Linux 5.17): the Python and native walks are its
    /// callbacks, which the verifier checks once. Without it the other
    /// object is loaded: the Python walk in pieces chained by tail calls
    /// (`python_walk`), no native unwind.
    pub bpf_loop: bool,
    /// The fetching atomics (`atomic_fetch_add`, `xchg`, `cmpxchg`: Linux
    /// 5.12), which claim the per-descriptor read rows a process's threads
    /// share.
    pub fetching_atomics: bool,
    /// `bpf_task_pt_regs` (Linux 5.15, with `bpf_get_current_task_btf` of
    /// 5.11): where a task's saved user registers are. Without it the
    /// programs find them at the top of the task's kernel stack.
    pub task_pt_regs: bool,
    /// Hash maps whose entries are allocated on insert, read from tracing
    /// programs (Linux 6.1, with the BPF memory allocator). Before, a
    /// perf_event program may not use one and the other tracing programs
    /// print a kernel warning for each: the maps are made preallocated.
    pub allocate_on_insert: bool,
    /// The kprobe PMU: OOM kills are seen at `oom_kill_process`, else at
    /// the `mark_victim` tracepoint (kernels built without kprobes).
    pub kprobes: bool,
    /// Transparent huge pages, and so khugepaged's collapses.
    pub huge_pages: bool,
}

impl Features {
    /// Probed at the first call (start-up asks in more than one place).
    pub fn of_this_kernel() -> Self {
        static PROBED: std::sync::OnceLock<Features> = std::sync::OnceLock::new();
        *PROBED.get_or_init(|| Self {
            bpf_loop: bpf_loop(),
            fetching_atomics: atomic_fetch(),
            task_pt_regs: task_pt_regs(),
            allocate_on_insert: allocate_on_insert(),
            kprobes: std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists(),
            huge_pages: std::path::Path::new("/sys/kernel/mm/transparent_hugepage/khugepaged")
                .exists(),
        })
    }
}

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`, the rest zero (the
/// kernel refuses non-zero bytes past the fields it knows).
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    rest: [u8; 96],
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// Whether the kernel loads `program` as a socket filter.
fn loads(program: &[Insn]) -> bool {
    loads_as(BPF_PROG_TYPE_SOCKET_FILTER, program)
}

fn loads_as(prog_type: u32, program: &[Insn]) -> bool {
    let license = c"GPL";
    let attr = ProgLoad {
        prog_type,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        rest: [0; 96],
    };
    // SAFETY: `attr` and what it points to outlive the call; the kernel
    // reads `size_of::<ProgLoad>()` bytes of it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: a new descriptor the kernel just returned, ours alone.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    true
}

/// The fetching atomics ([`Features::fetching_atomics`]).
fn atomic_fetch() -> bool {
    const BPF_ATOMIC_DW_STX: u8 = 0xdb;
    const BPF_ADD_FETCH: i32 = 0x01;
    loads(&[
        // r1 = 0; *(u64 *)(r10 - 8) = r1
        insn(0xb7, 1, 0, 0, 0),
        insn(0x7b, 10, 1, -8, 0),
        // r2 = 1; r2 = atomic_fetch_add((u64 *)(r10 - 8), r2)
        insn(0xb7, 2, 0, 0, 1),
        insn(BPF_ATOMIC_DW_STX, 10, 2, -8, BPF_ADD_FETCH),
        // r0 = 0; exit
        insn(0xb7, 0, 0, 0, 0),
        insn(0x95, 0, 0, 0, 0),
    ])
}

/// `bpf_loop` ([`Features::bpf_loop`]).
fn bpf_loop() -> bool {
    use aya::{
        programs::ProgramType,
        sys::{BpfHelper, is_helper_supported},
    };
    is_helper_supported(ProgramType::RawTracePoint, BpfHelper::BPF_FUNC_loop).unwrap_or(false)
}

/// `bpf_task_pt_regs` ([`Features::task_pt_regs`]).
fn task_pt_regs() -> bool {
    use aya::{
        programs::ProgramType,
        sys::{BpfHelper, is_helper_supported},
    };
    is_helper_supported(ProgramType::RawTracePoint, BpfHelper::BPF_FUNC_task_pt_regs)
        .unwrap_or(false)
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_PROG_TYPE_PERF_EVENT: u32 = 7;
/// `BPF_F_NO_PREALLOC`.
const NO_PREALLOC: u32 = 1;

/// The head of `union bpf_attr` for `BPF_MAP_CREATE`, the rest zero.
#[repr(C)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    rest: [u8; 108],
}

/// Hash maps allocated on insert ([`Features::allocate_on_insert`]),
/// probed with a perf_event program, which the kernel refuses quietly.
fn allocate_on_insert() -> bool {
    let attr = MapCreate {
        map_type: BPF_MAP_TYPE_HASH,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        map_flags: NO_PREALLOC,
        rest: [0; 108],
    };
    // SAFETY: `attr` outlives the call.
    let map = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            &attr as *const MapCreate,
            std::mem::size_of::<MapCreate>(),
        )
    };
    if map < 0 {
        return false;
    }
    // SAFETY: a new descriptor the kernel just returned, ours alone.
    let map = unsafe { OwnedFd::from_raw_fd(map as i32) };
    use std::os::fd::AsRawFd;
    const BPF_PSEUDO_MAP_FD: u8 = 1;
    loads_as(
        BPF_PROG_TYPE_PERF_EVENT,
        &[
            // r1 = the map (a 16-byte load of its descriptor)
            insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map.as_raw_fd()),
            insn(0, 0, 0, 0, 0),
            // *(u32 *)(r10 - 4) = 0; r2 = r10 - 4
            insn(0x62, 10, 0, -4, 0),
            insn(0xbf, 2, 10, 0, 0),
            insn(0x07, 2, 0, 0, -4),
            // call bpf_map_lookup_elem; r0 = 0; exit
            insn(0x85, 0, 0, 0, 1),
            insn(0xb7, 0, 0, 0, 0),
            insn(0x95, 0, 0, 0, 0),
        ],
    )
}

/// A copy of the BPF object whose maps are all preallocated: their
/// `bpf_map_def.map_flags` (the legacy `maps` section, 28 bytes a map)
/// without `BPF_F_NO_PREALLOC`. Aligned as the object parser wants.
pub fn preallocated(object: &[u8]) -> Vec<u64> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let mut words = vec![0u64; object.len().div_ceil(8)];
    // SAFETY: the words' bytes, as many as the object's.
    let bytes: &mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), object.len()) };
    bytes.copy_from_slice(object);
    let Ok(elf) = object::File::parse(object) else {
        return words;
    };
    let Some(maps) = elf.section_by_name("maps") else {
        return words;
    };
    let Some((start, _)) = maps.file_range() else {
        return words;
    };
    for symbol in elf.symbols() {
        if symbol.section_index() != Some(maps.index()) || symbol.size() != 28 {
            continue;
        }
        let flags = start as usize + symbol.address() as usize + 16;
        if let Some(field) = bytes.get_mut(flags..flags + 4) {
            let value = u32::from_le_bytes(field.try_into().expect("4 bytes")) & !NO_PREALLOC;
            field.copy_from_slice(&value.to_le_bytes());
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain program loads (the tests run as root): the probe tells
    /// features apart, not a failing syscall. The development kernel has both.
    #[test]
    fn the_development_kernel_has_the_fetching_atomics() {
        assert!(loads(&[insn(0xb7, 0, 0, 0, 0), insn(0x95, 0, 0, 0, 0)]));
        assert!(atomic_fetch());
        // An instruction with reserved bits set is refused.
        assert!(!loads(&[
            insn(0xdb, 10, 2, -8, 0x7f),
            insn(0x95, 0, 0, 0, 0)
        ]));
        assert!(allocate_on_insert());
        assert!(bpf_loop());
        let features = Features::of_this_kernel();
        assert!(features.bpf_loop && features.fetching_atomics && features.allocate_on_insert);
    }

    #[test]
    fn a_preallocated_copy_clears_the_flag_of_every_map_and_nothing_else() {
        let object = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
        let words = preallocated(object);
        // SAFETY: the words' bytes, as many as the object's.
        let copy: &[u8] =
            unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), object.len()) };
        let changed: Vec<usize> = (0..object.len())
            .filter(|&i| object[i] != copy[i])
            .collect();
        // FD_ROWS and the per-CPU tables are allocated on insert: one byte each.
        assert!(changed.len() >= 5, "{changed:?}");
        assert!(
            changed
                .iter()
                .all(|&i| object[i] & 1 == 1 && copy[i] == object[i] & !1)
        );
    }
}
