//! Where CPython keeps `is_tripped`, the flag its C signal handler sets and
//! its signal check clears right before it runs the Python-level handlers.
//! The tracer watches writes to it with a hardware breakpoint (see
//! `tracer-ebpf/src/signals.rs`): a program that gets no signal never
//! writes it, so it pays nothing, however often C code calls
//! `PyErr_CheckSignals()`.
//!
//! Three ways, each checked against the file:
//! - 3.12+: `_PyRuntime.signals` is `{handlers[65] {int tripped; PyObject
//!   *func}, wakeup {int fd = -1; int warn_on_full_buffer = 1},
//!   is_tripped, ...}`, and `_PyRuntime` is initialised data: its image in
//!   the file holds 1,040 zero bytes, then -1, 1 and 0 exactly once.
//! - `is_tripped`, a static of `signalmodule.c` (3.8-3.11), in the full
//!   symbol table of an unstripped build.
//! - The signal check's first instruction (3.8 `_PyErr_CheckSignals`,
//!   3.9-3.11 `_PyErr_CheckSignalsTstate`, whose first statement is `if
//!   (!is_tripped) return 0;`) when it is a load or compare of a 32-bit
//!   RIP-relative operand, as optimised builds (Debian's) compile it.

/// Slots of CPython's handler table (`Py_NSIG` on Linux), 16 bytes each.
const HANDLER_SLOTS: usize = 65;
const HANDLERS_BYTES: usize = HANDLER_SLOTS * 16;
/// `wakeup = {.fd = INVALID_FD, .warn_on_full_buffer = 1}`, then `is_tripped = 0`.
const AFTER_HANDLERS: [u8; 12] = [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0];
/// `is_tripped`'s offset from the start of the handler table (3.12+).
pub const FROM_HANDLERS: u64 = HANDLERS_BYTES as u64 + 8;

/// 3.12+: the offset in `_PyRuntime`'s initial image of `signals.is_tripped`,
/// if the image holds the shape of `_PyRuntime.signals` exactly once.
pub fn in_runtime_image(image: &[u8]) -> Option<usize> {
    let mut found = None;
    let mut zeros = 0usize;
    for (at, &byte) in image.iter().enumerate() {
        // Where a run of at least HANDLERS_BYTES zeros ends, the tail must follow.
        if byte == 0 {
            zeros += 1;
            continue;
        }
        if zeros >= HANDLERS_BYTES
            && image.get(at..at + AFTER_HANDLERS.len()) == Some(&AFTER_HANDLERS[..])
        {
            if found.is_some() {
                return None;
            }
            // After `wakeup`'s two ints.
            found = Some(at + 8);
        }
        zeros = 0;
    }
    found
}

/// The link-time address a function's first instruction reads a 32-bit
/// value from, when it is `mov r32, [rip + disp]` or `cmp dword [rip +
/// disp], imm8` (after an optional `endbr64`); `code` starts at `addr`.
pub fn first_rip_load(code: &[u8], addr: u64) -> Option<u64> {
    const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
    let (code, addr) = match code.strip_prefix(&ENDBR64) {
        Some(rest) => (rest, addr + 4),
        None => (code, addr),
    };
    // An optional REX prefix without W (a 32-bit operand), for r8d-r15d.
    let (code, rex) = match code.first() {
        Some(&b) if (0x40..=0x47).contains(&b) => (&code[1..], 1u64),
        _ => (code, 0),
    };
    let disp = |at: usize| -> Option<i64> {
        Some(i32::from_le_bytes(code.get(at..at + 4)?.try_into().ok()?) as i64)
    };
    // ModRM with mod = 00, r/m = 101: RIP-relative.
    let rip_relative = |modrm: u8| modrm & 0xc7 == 0x05;
    let (disp, len) = match code {
        // mov r32, r/m32
        [0x8b, modrm, ..] if rip_relative(*modrm) => (disp(2)?, 6),
        // cmp r/m32, imm8 (/7)
        [0x83, modrm, ..] if rip_relative(*modrm) && (modrm >> 3) & 7 == 7 => (disp(2)?, 7),
        _ => return None,
    };
    Some((addr + rex + len).wrapping_add_signed(disp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_image_shape() {
        let mut image = vec![7u8; 64];
        image.extend([0u8; HANDLERS_BYTES + 24]);
        let tail = image.len();
        image.extend(AFTER_HANDLERS);
        image.extend([9u8; 16]);
        // A longer run of zeros before the table is fine: is_tripped is
        // the last four bytes of the tail.
        assert_eq!(in_runtime_image(&image), Some(tail + 8));
        // Twice: not trusted.
        let mut twice = image.clone();
        twice.extend([0u8; HANDLERS_BYTES]);
        twice.extend(AFTER_HANDLERS);
        twice.push(1);
        assert_eq!(in_runtime_image(&twice), None);
        // Too few zeros before the tail.
        let mut short = vec![5u8];
        short.extend([0u8; HANDLERS_BYTES - 1]);
        short.extend(AFTER_HANDLERS);
        assert_eq!(in_runtime_image(&short), None);
    }

    #[test]
    fn rip_relative_loads() {
        // Debian's 3.11 `_PyErr_CheckSignalsTstate` at 0x570020:
        // mov 0x555afa(%rip),%eax -> 0xac5b20.
        let code = [0x8b, 0x05, 0xfa, 0x5a, 0x55, 0x00, 0x85, 0xc0];
        assert_eq!(first_rip_load(&code, 0x570020), Some(0xac5b20));
        // With endbr64 and a REX prefix (mov r8d).
        let code = [0xf3, 0x0f, 0x1e, 0xfa, 0x44, 0x8b, 0x05, 0x10, 0, 0, 0];
        assert_eq!(first_rip_load(&code, 0x1000), Some(0x1000 + 4 + 7 + 0x10));
        // cmpl $0x0,-0x20(%rip).
        let code = [0x83, 0x3d, 0xe0, 0xff, 0xff, 0xff, 0x00];
        assert_eq!(first_rip_load(&code, 0x2000), Some(0x2000 + 7 - 0x20));
        // push %r15 first (an unoptimised prologue): not known.
        assert_eq!(first_rip_load(&[0x41, 0x57, 0x41, 0x56], 0x1000), None);
        // mov with W (a 64-bit load) or a register operand: not it.
        assert_eq!(first_rip_load(&[0x48, 0x8b, 0x05, 0, 0, 0, 0], 0), None);
        assert_eq!(first_rip_load(&[0x8b, 0xc7, 0, 0, 0, 0], 0), None);
        // cmp /0 is add-like, not a compare.
        assert_eq!(first_rip_load(&[0x83, 0x05, 0, 0, 0, 0, 0], 0), None);
    }
}
