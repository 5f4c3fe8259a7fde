//! The check that every program of both embedded objects fits the BPF
//! stack of the oldest verifiers it loads on, before any kernel is booted.
//!
//! A program's stack is its own frame plus the deepest chain of the
//! functions it calls or hands to `bpf_loop`. Until 6.8 the verifier rounds
//! each frame up to 32 bytes before adding (`round_up(depth, 32)` in
//! `check_max_stack_depth`), and refuses a chain over 512 bytes ("combined
//! stack size of N calls is M. Too large"). A frame's depth is read off its
//! instructions: the deepest byte below `r10` it reads, writes, or takes
//! the address of.

use std::collections::{BTreeMap, HashMap};

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind, SymbolKind};

/// The BPF stack, in bytes.
const STACK_LIMIT: u64 = 512;
/// What the verifiers before 6.8 round each frame up to.
const FRAME_ROUNDING: u64 = 32;
const INSN: usize = 8;

/// One function: where it is, how deep its frame goes, which functions
/// it calls or passes as callbacks, as (section, offset), and whether it
/// tail-calls (`bpf_tail_call`).
struct Function {
    name: String,
    frame: u64,
    callees: Vec<(usize, u64)>,
    tail_calls: bool,
}

/// `bpf_tail_call`'s helper number.
const BPF_TAIL_CALL: i64 = 12;

/// Functions by (section index, offset).
type Functions = BTreeMap<(usize, u64), Function>;

/// Every function of the object, with the keys of the ones that are
/// programs (not in `.text`).
fn functions(elf: &object::File) -> (Functions, Vec<(usize, u64)>) {
    let mut functions = BTreeMap::new();
    let mut programs = Vec::new();
    let symbols: HashMap<usize, object::Symbol> = elf.symbols().map(|s| (s.index().0, s)).collect();
    for section in elf.sections() {
        if section.kind() != SectionKind::Text {
            continue;
        }
        let code = section.data().unwrap();
        let relocations: HashMap<u64, object::Relocation> = section.relocations().collect();
        let is_text = section.name() == Ok(".text");
        for symbol in elf.symbols() {
            if symbol.kind() != SymbolKind::Text || symbol.section_index() != Some(section.index())
            {
                continue;
            }
            let start = symbol.address() as usize;
            let end = start + symbol.size() as usize;
            let mut frame = 0;
            let mut callees = Vec::new();
            let mut tail_calls = false;
            // Registers holding `r10 + offset`: the frame's addresses taken.
            let mut from_r10: [Option<i64>; 11] = [None; 11];
            let mut at = start;
            while at + INSN <= end {
                let insn = &code[at..at + INSN];
                let (opcode, dst, src) =
                    (insn[0], (insn[1] & 0xf) as usize, (insn[1] >> 4) as usize);
                let off = i16::from_le_bytes([insn[2], insn[3]]) as i64;
                let imm = i32::from_le_bytes(insn[4..8].try_into().unwrap()) as i64;
                let mut deepest = |offset: i64| frame = frame.max((-offset).max(0) as u64);
                match opcode & 0x07 {
                    // LDX: a load from the stack.
                    0x01 if src == 10 => deepest(off),
                    // ST, STX: a store to it.
                    0x02 | 0x03 if dst == 10 => deepest(off),
                    _ => {}
                }
                let relocation = relocations.get(&(at as u64));
                let callee = match relocation.map(|r| (r.target(), r.size())) {
                    Some((RelocationTarget::Symbol(index), size)) => {
                        let target = &symbols[&index.0];
                        let section = target.section_index().map(|s| s.0);
                        match (target.kind(), size, section) {
                            (SymbolKind::Text, _, Some(section)) => {
                                Some((section, target.address()))
                            }
                            (SymbolKind::Section, 32, Some(section)) if opcode == 0x85 => {
                                Some((section, target.address() + ((imm + 1) as u64) * INSN as u64))
                            }
                            // `ld_imm64` of a callback: the offset in the immediate.
                            (SymbolKind::Section, 64, Some(section))
                                if elf
                                    .section_by_index(object::SectionIndex(section))
                                    .unwrap()
                                    .kind()
                                    == SectionKind::Text =>
                            {
                                Some((section, target.address() + imm as u64))
                            }
                            _ => None,
                        }
                    }
                    _ if opcode == 0x85 && src == 1 => Some((
                        section.index().0,
                        (at as i64 + (imm + 1) * INSN as i64) as u64,
                    )),
                    _ => None,
                };
                callees.extend(callee);
                tail_calls |= opcode == 0x85 && src == 0 && imm == BPF_TAIL_CALL;
                match opcode {
                    // mov64 dst, r10
                    0xbf if src == 10 => from_r10[dst] = Some(0),
                    // add64 dst, imm: an address in the frame moves.
                    0x07 if dst <= 10 && from_r10[dst].is_some() => {
                        let offset = from_r10[dst].unwrap() + imm;
                        from_r10[dst] = Some(offset);
                        deepest(offset);
                    }
                    // Any other write of a register forgets what it held.
                    _ if matches!(opcode & 0x07, 0x04 | 0x07 | 0x01 | 0x00) && dst <= 10 => {
                        from_r10[dst] = None
                    }
                    // A call clobbers r0-r5.
                    0x85 => from_r10[..6].fill(None),
                    _ => {}
                }
                // `ld_imm64` takes two slots.
                at += if opcode == 0x18 { 2 * INSN } else { INSN };
            }
            let key = (section.index().0, symbol.address());
            if !is_text {
                programs.push(key);
            }
            let name = symbol.name().unwrap_or("?").to_string();
            functions.insert(
                key,
                Function {
                    name,
                    frame,
                    callees,
                    tail_calls,
                },
            );
        }
    }
    (functions, programs)
}

/// The deepest chain's stack from `key` down, each frame rounded, and the
/// chain's names.
fn deepest_chain(functions: &Functions, key: (usize, u64), depth: usize) -> (u64, Vec<String>) {
    let function = &functions[&key];
    assert!(depth < 16, "a call cycle through {}", function.name);
    let own = function.frame.max(1).div_ceil(FRAME_ROUNDING) * FRAME_ROUNDING;
    let (below, mut chain) = function
        .callees
        .iter()
        .map(|callee| {
            assert!(
                functions.contains_key(callee),
                "{} calls {callee:?}, not a function",
                function.name
            );
            deepest_chain(functions, *callee, depth + 1)
        })
        .max_by_key(|(bytes, _)| *bytes)
        .unwrap_or_default();
    chain.insert(0, format!("{} ({} B)", function.name, function.frame));
    (own + below, chain)
}

#[test]
fn every_program_fits_the_bpf_stack_of_the_oldest_verifiers() {
    for object in [
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer")),
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-without-bpf-loop")),
    ] {
        let elf = object::File::parse(object).unwrap();
        let (functions, programs) = functions(&elf);
        assert!(programs.len() > 10);
        let mut too_deep = Vec::new();
        for program in programs {
            let (bytes, chain) = deepest_chain(&functions, program, 0);
            if bytes > STACK_LIMIT {
                too_deep.push(format!("{bytes} B: {}", chain.join(" -> ")));
            }
        }
        assert!(
            too_deep.is_empty(),
            "programs over the {STACK_LIMIT}-byte stack with frames rounded to {FRAME_ROUNDING} (5.10-6.7 refuse them):\n{}",
            too_deep.join("\n")
        );
    }
}

/// arm64 before 6.0 (Debian 11's 5.10) refuses a program that both
/// tail-calls and calls a function ("tail_calls are not allowed in
/// non-JITed programs with bpf-to-bpf calls": only x86-64's JIT mixed them
/// then). The sampler's pieces, which tail-call on the kernels without
/// `bpf_loop`, must call none: not even the `memset` LLVM emits as a call
/// for a few zeroed fields in a row.
#[test]
fn no_program_that_tail_calls_calls_a_function_before_bpf_loop() {
    let object = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-without-bpf-loop"));
    let elf = object::File::parse(object).unwrap();
    let (functions, programs) = functions(&elf);
    let tail_calling: Vec<&Function> = programs
        .iter()
        .map(|key| &functions[key])
        .filter(|f| f.tail_calls)
        .collect();
    assert!(
        tail_calling.iter().any(|f| f.name == "python_sample"),
        "the sampler's first piece no longer tail-calls: {:?}",
        tail_calling.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
    let calling: Vec<String> = tail_calling
        .iter()
        .filter(|f| !f.callees.is_empty())
        .map(|f| {
            let callees: Vec<&str> = f
                .callees
                .iter()
                .map(|c| functions[c].name.as_str())
                .collect();
            format!("{} calls {}", f.name, callees.join(", "))
        })
        .collect();
    assert!(calling.is_empty(), "{}", calling.join("\n"));
}

/// The reading itself: a program known to have a frame and a `bpf_loop`
/// callback is read as such.
#[test]
fn frames_and_callbacks_are_read() {
    let object = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
    let elf = object::File::parse(object).unwrap();
    let (functions, _) = functions(&elf);
    let sys_exit = functions.values().find(|f| f.name == "sys_exit").unwrap();
    assert!(sys_exit.frame >= 64, "{}", sys_exit.frame);
    let callees: Vec<&str> = sys_exit
        .callees
        .iter()
        .map(|c| functions[c].name.as_str())
        .collect();
    assert!(
        callees
            .iter()
            .any(|name| name.contains("step_of") && name.contains("Capture")),
        "{callees:?}"
    );
}
