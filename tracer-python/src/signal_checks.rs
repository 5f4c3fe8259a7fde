//! Where the signal-check uprobe goes in CPython's signal checks. C code
//! calls `PyErr_CheckSignals` often (every `str(int)` does, twice, through
//! `_PyErr_CheckSignalsTstate`), and a uprobe is a trap at every call
//! (~1 µs): at their entries it made an allocation-heavy loop 4x slower.
//! Handlers run only past the test of `is_tripped` (which the C signal
//! handler sets), in a path that first clears it: so the probe goes where
//! that path starts. It is found in the machine code: a load of a word
//! (RIP-relative, or at a displacement from a register), a `test` of the
//! register loaded, a conditional jump; the path it leads to when the word
//! is set must store to the same word (`xchg`, `mov reg`, `movl $0`) within
//! its first instructions (or those of the function it then tail-calls).
//! A function with no such test of its own that
//! calls one that has it (a wrapper) is probed in the one it calls. A
//! function where none is found (another compiler's code) keeps its probe
//! at its entry, as before. Functions the
//! eval loop calls only when a request is pending (`_PyErr_CheckSignals`
//! of 3.8, `_Py_HandlePending` of 3.13+) are probed at their entries.
//! The search reads x86-64 code; on arm64 every check is probed at its
//! entry.

/// Functions probed at their entry: called only when something is pending.
pub const ENTRY_PROBED: [&str; 2] = ["_PyErr_CheckSignals", "_Py_HandlePending"];

/// How far into a function the test is looked for.
const SCAN_BYTES: u64 = 192;
/// How far past the load its `test` is, and into the path its store (the
/// path may save registers first).
const NEAR: usize = 16;
const PATH_SCAN: usize = 48;

/// A memory operand: a RIP-relative address, or a register and a
/// displacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memory {
    Absolute(u64),
    Based { reg: u8, disp: i32 },
}

/// The address where the path that runs when the word the function tests
/// first is set begins, if that path clears the word: the probe's place.
/// `code(vaddr, len)`: the file's bytes at a virtual address (the path
/// may be in another section: a compiler's cold code).
/// `plt`: the function a PLT stub's slot is bound to, by the stub's GOT
/// slot address (a shared libpython calls its own exported functions
/// through its PLT).
pub fn tripped_path(
    entry: u64,
    code: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
    plt: &dyn Fn(u64) -> Option<u64>,
) -> Option<u64> {
    // x86-64 machine code only: elsewhere (arm64) the probe stays at the
    // function's entry.
    if cfg!(not(target_arch = "x86_64")) {
        return None;
    }
    if let Some(path) = own_tripped_path(entry, code) {
        return Some(path);
    }
    // A wrapper (`PyErr_CheckSignals` calling `_PyErr_CheckSignalsTstate`,
    // which may be a local symbol): the path of the function it calls.
    let body = code(entry, SCAN_BYTES as usize)?;
    (0..body.len().saturating_sub(5)).find_map(|i| {
        if !matches!(body[i], 0xe8 | 0xe9) {
            return None;
        }
        let target = (entry as i64 + i as i64 + 5 + i64::from(disp32(&body, i + 1)?)) as u64;
        let target = plt_slot(target, code).and_then(plt).unwrap_or(target);
        own_tripped_path(target, code)
    })
}

/// The GOT slot a PLT stub at `at` jumps through: `[endbr64] [bnd] jmp
/// *disp32(%rip)`.
fn plt_slot(at: u64, code: &dyn Fn(u64, usize) -> Option<Vec<u8>>) -> Option<u64> {
    let stub = code(at, 16)?;
    let mut i = 0;
    if stub.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        i += 4;
    }
    if stub.get(i) == Some(&0xf2) {
        i += 1;
    }
    if stub.get(i..i + 2) != Some(&[0xff, 0x25]) {
        return None;
    }
    Some((at as i64 + i as i64 + 6 + i64::from(disp32(&stub, i + 2)?)) as u64)
}

/// [`tripped_path`] in the function at `entry` itself.
fn own_tripped_path(entry: u64, code: &dyn Fn(u64, usize) -> Option<Vec<u8>>) -> Option<u64> {
    let body = code(entry, SCAN_BYTES as usize)?;
    for i in 0..body.len() {
        let Some((memory, reg, len)) = load(&body, i, entry) else {
            continue;
        };
        let Some(slow) = tested_then_jump(&body, i + len, reg, entry) else {
            continue;
        };
        let path = code(slow, PATH_SCAN + 10)?;
        if clears(&path, slow, memory) || tail_call_clears(&path, slow, memory, code) {
            return Some(slow);
        }
    }
    None
}

/// An optional REX prefix (0x40-0x4f) at `i`: (its length, its bits).
fn rex(code: &[u8], i: usize) -> (usize, u8) {
    match code.get(i) {
        Some(&b) if b & 0xf0 == 0x40 => (1, b & 0x0f),
        _ => (0, 0),
    }
}

fn disp32(code: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(code.get(at..at + 4)?.try_into().ok()?))
}

/// The memory operand of the ModRM byte at `code[m]` (no SIB; `code` at
/// `addr`), and the bytes of ModRM and displacement; `extra`: the bytes
/// of immediate after them (a RIP-relative address counts from the
/// instruction's end).
fn operand(code: &[u8], m: usize, rex_b: u8, extra: usize, addr: u64) -> Option<(Memory, usize)> {
    let modrm = *code.get(m)?;
    let (md, rm) = (modrm >> 6, modrm & 7);
    match (md, rm) {
        (0, 5) => {
            let disp = disp32(code, m + 1)?;
            let next = addr as i64 + (m + 5 + extra) as i64;
            Some((Memory::Absolute((next + i64::from(disp)) as u64), 5))
        }
        (1, r) if r != 4 => {
            let disp = i32::from(*code.get(m + 1)? as i8);
            Some((
                Memory::Based {
                    reg: r | (rex_b << 3),
                    disp,
                },
                2,
            ))
        }
        (2, r) if r != 4 => Some((
            Memory::Based {
                reg: r | (rex_b << 3),
                disp: disp32(code, m + 1)?,
            },
            5,
        )),
        _ => None,
    }
}

/// `mov reg32, mem` at `i`: the operand, the register, the length.
fn load(code: &[u8], i: usize, base: u64) -> Option<(Memory, u8, usize)> {
    let (p, bits) = rex(code, i);
    if bits & 0x8 != 0 || *code.get(i + p)? != 0x8b {
        return None;
    }
    let modrm = *code.get(i + p + 1)?;
    let reg = ((modrm >> 3) & 7) | ((bits & 4) << 1);
    let (memory, len) = operand(code, i + p + 1, bits & 1, 0, base)?;
    Some((memory, reg, p + 1 + len))
}

/// A `test reg, reg` of `reg` within a few bytes of `from`, then a
/// `jne` / `je`: where the code goes when the register is not zero.
fn tested_then_jump(code: &[u8], from: usize, reg: u8, base: u64) -> Option<u64> {
    let low = reg & 7;
    let wanted = 0xc0 | (low << 3) | low;
    (from..(from + NEAR).min(code.len())).find_map(|t| {
        let (p, _) = rex(code, t);
        if code.get(t + p) != Some(&0x85) || code.get(t + p + 1) != Some(&wanted) {
            return None;
        }
        let j = t + p + 2;
        let at = |offset: i64| (base as i64 + offset) as u64;
        match *code.get(j)? {
            0x75 => Some(at(j as i64 + 2 + i64::from(*code.get(j + 1)? as i8))),
            0x74 => Some(at(j as i64 + 2)),
            0x0f => match *code.get(j + 1)? {
                0x85 => Some(at(j as i64 + 6 + i64::from(disp32(code, j + 2)?))),
                0x84 => Some(at(j as i64 + 6)),
                _ => None,
            },
            _ => None,
        }
    })
}

/// Whether the path tail-calls (`jmp rel32`, after restoring registers) a
/// function that clears `memory` first (3.14's `PyErr_CheckSignals`).
fn tail_call_clears(
    path: &[u8],
    addr: u64,
    memory: Memory,
    code: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
) -> bool {
    (0..PATH_SCAN.min(path.len().saturating_sub(5))).any(|i| {
        path[i] == 0xe9
            && disp32(path, i + 1).is_some_and(|disp| {
                let target = (addr as i64 + i as i64 + 5 + i64::from(disp)) as u64;
                code(target, PATH_SCAN + 10).is_some_and(|callee| clears(&callee, target, memory))
            })
    })
}

/// Whether the first bytes of `path` (at `addr`) store to `memory`:
/// `xchg mem, reg32`, `mov mem, reg32` or `movl $0, mem`.
fn clears(path: &[u8], addr: u64, memory: Memory) -> bool {
    (0..PATH_SCAN.min(path.len())).any(|i| {
        let (p, bits) = rex(path, i);
        let Some(&op) = path.get(i + p) else {
            return false;
        };
        let (extra, zero_imm) = match op {
            0x87 | 0x89 => (0, false),
            0xc7 => (4, true),
            _ => return false,
        };
        if bits & 0x8 != 0 {
            return false;
        }
        let m = i + p + 1;
        if zero_imm && path.get(m).is_some_and(|modrm| (modrm >> 3) & 7 != 0) {
            return false;
        }
        let Some((found, len)) = operand(path, m, bits & 1, extra, addr) else {
            return false;
        };
        let imm_zero = !zero_imm || disp32(path, m + len) == Some(0);
        found == memory && imm_zero
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `code` at `base`, readable anywhere inside it.
    fn reader(base: u64, code: Vec<u8>) -> impl Fn(u64, usize) -> Option<Vec<u8>> {
        move |at, len| {
            let start = usize::try_from(at.checked_sub(base)?).ok()?;
            let end = (start + len).min(code.len());
            (start < end).then(|| code[start..end].to_vec())
        }
    }

    /// pyenv's 3.11.7 `_PyErr_CheckSignalsTstate` at 0x2d4f50 (gcc -O3):
    /// pushes, `mov 0x2e4468(%rip),%eax` (is_tripped, at 0x5b93d0),
    /// `test`, `jne 2d4f80`, the fast return; at 2d4f80 `xor %eax,%eax`,
    /// `xchg %eax,0x2e4448(%rip)`.
    #[test]
    fn a_rip_relative_word_tested_and_cleared() {
        let mut code = vec![
            0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x55, 0x53, // pushes
            0x48, 0x83, 0xec, 0x18, // sub $0x18,%rsp
            0x48, 0x89, 0x3c, 0x24, // mov %rdi,(%rsp)
            0x8b, 0x05, 0x68, 0x44, 0x2e, 0x00, // mov 0x2e4468(%rip),%eax
            0x85, 0xc0, // test %eax,%eax
            0x75, 0x14, // jne 0x30
            0x48, 0x83, 0xc4, 0x18, 0x31, 0xc0, 0x5b, 0x5d, // the fast return...
            0x41, 0x5c, 0x41, 0x5d, 0x41, 0x5e, 0x41, 0x5f, 0xc3, // ...ret
            0x0f, 0x1f, 0x00, // nopl (%rax)
            0x31, 0xc0, // 0x30: xor %eax,%eax
            0x87, 0x05, 0x48, 0x44, 0x2e, 0x00, // 0x32: xchg %eax,0x2e4448(%rip)
        ];
        code.extend([0x90; 32]);
        let read = reader(0x2d4f50, code.clone());
        let no_plt = |_| None;
        assert_eq!(tripped_path(0x2d4f50, &read, &no_plt), Some(0x2d4f80));
        // A wrapper that jumps to it (3.13's `PyErr_CheckSignals`).
        let mut wrapper = vec![0x55, 0x53, 0xe9];
        wrapper.extend(((0x2d4f50i64 - 0x1005) as i32).to_le_bytes());
        wrapper.extend([0x90; 16]);
        let both = move |at: u64, len: usize| {
            reader(0x1000, wrapper.clone())(at, len).or_else(|| read(at, len))
        };
        assert_eq!(tripped_path(0x1000, &both, &no_plt), Some(0x2d4f80));
        // Through a PLT stub (`jmp *0x3000(%rip)` at 0x5000) whose slot
        // is bound to it.
        let mut caller = vec![0xe8];
        caller.extend(((0x5000i64 - 0x6005) as i32).to_le_bytes());
        caller.extend([0x90; 16]);
        let stub = vec![0xff, 0x25, 0x00, 0x30, 0x00, 0x00, 0x90, 0x90];
        let read = reader(0x2d4f50, code.clone());
        let all = move |at: u64, len: usize| {
            reader(0x6000, caller.clone())(at, len)
                .or_else(|| reader(0x5000, stub.clone())(at, len))
                .or_else(|| read(at, len))
        };
        let bound = |slot| (slot == 0x8006).then_some(0x2d4f50);
        assert_eq!(tripped_path(0x6000, &all, &bound), Some(0x2d4f80));
        // A path that stores elsewhere is not the one: entry kept.
        code[0x34] = 0x00;
        assert_eq!(
            tripped_path(0x2d4f50, &reader(0x2d4f50, code), &no_plt),
            None
        );
    }

    /// pyenv's 3.12.1: the word at a displacement from a register that
    /// holds `&_PyRuntime`: `mov 0x5e8(%rbp),%eax; test; jne`, then
    /// `xor %eax,%eax; xchg %eax,0x5e8(%rbp)`.
    #[test]
    fn a_word_at_a_displacement_from_a_register() {
        let mut code = vec![
            0x48, 0x8b, 0x2d, 0x7b, 0x40, 0x22, 0x00, // mov 0x22407b(%rip),%rbp
            0x48, 0x89, 0x3c, 0x24, // mov %rdi,(%rsp)
            0x8b, 0x85, 0xe8, 0x05, 0x00, 0x00, // mov 0x5e8(%rbp),%eax
            0x85, 0xc0, // test %eax,%eax
            0x75, 0x05, // jne +5
            0x31, 0xc0, 0xc3, 0x90, 0x90, // xor, ret, nops
            0x31, 0xc0, // 0x1a: xor %eax,%eax
            0x87, 0x85, 0xe8, 0x05, 0x00, 0x00, // xchg %eax,0x5e8(%rbp)
        ];
        code.extend([0x90; 32]);
        assert_eq!(
            tripped_path(0x1000, &reader(0x1000, code), &|_| None),
            Some(0x101a)
        );
    }

    /// Debian's 3.11 (PGO): the test and a `jne` to cold code elsewhere,
    /// which clears the word with `movl $0`; the test of another word
    /// before it (its path does not clear that word) is passed over.
    #[test]
    fn a_path_in_cold_code_after_another_test() {
        let mut code = vec![
            0x8b, 0x05, 0x00, 0x02, 0x00, 0x00, // mov 0x200(%rip),%eax: 0x1206
            0x85, 0xc0, // test
            0x74, 0x02, // je +2: the path at 0x100a clears nothing
            0x31, 0xc0, // 0x100a: xor
            0x8b, 0x05, 0x00, 0x01, 0x00, 0x00, // 0x100c: mov 0x100(%rip),%eax: 0x1112
            0x85, 0xc0, // test
            0x0f, 0x85, 0xe6, 0x0f, 0x00, 0x00, // jne +0xfe6: 0x2000
            0x31, 0xc0, 0xc3, // xor, ret
        ];
        code.resize(0x1000, 0x90);
        // 0x2000: movl $0x0, X(%rip) with X = 0x1112: next is 0x200a.
        let disp = (0x1112i64 - 0x200a) as i32;
        code.extend([0xc7, 0x05]);
        code.extend(disp.to_le_bytes());
        code.extend([0, 0, 0, 0]);
        code.extend([0x90; 32]);
        assert_eq!(
            tripped_path(0x1000, &reader(0x1000, code), &|_| None),
            Some(0x2000)
        );
    }
}
