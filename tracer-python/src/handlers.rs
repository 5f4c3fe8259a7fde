//! CPython's table of Python-level signal handlers: `{int tripped;
//! PyObject *func}` per signal (`Handlers[NSIG]` in signalmodule.c up to
//! 3.11, `_PyRuntime.signals.handlers` from 3.12). Neither has a symbol in a
//! stripped build, so the table is found by its shape in the interpreter's
//! writable data: 65 16-byte slots, slot 0 empty, every `tripped` 0 or 1,
//! and most `func`s the one `SIG_DFL` object. A signal's Python handler is
//! then its slot's `func`: a function, a bound method or a built-in.

use super::{
    layout::Offsets,
    process_memory::Memory,
    symbols::{CodeSource, Symbols},
    thread_names::Objects,
};
use crate::frame::Frame;

/// Linux's `NSIG` (signals 1-64, slot 0 unused).
pub const NSIG: usize = 65;
const SLOT: usize = 16;
/// Most data read when looking for the table.
const MAX_SCAN: u64 = 64 << 20;

/// Where the table is in `data` (the interpreter's `.data` .. `.bss`).
pub fn find_table(mem: &dyn Memory, data: (u64, u64)) -> Option<u64> {
    let len = data.1.checked_sub(data.0)?.min(MAX_SCAN) as usize;
    let raw = mem.read_vec(data.0, len).ok()?;
    let word = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
    let table_len = NSIG * SLOT;
    (0..len.saturating_sub(table_len))
        .step_by(8)
        .find(|&at| is_table(&raw[at..at + table_len], &word, at))
        .map(|at| data.0 + at as u64)
}

/// Whether the table is at `at` (where it was found in another process
/// of the same interpreter file: one read, not a search).
pub fn table_at(mem: &dyn Memory, at: u64) -> bool {
    let Ok(raw) = mem.read_vec(at, NSIG * SLOT) else {
        return false;
    };
    let word = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
    is_table(&raw, &word, 0)
}

fn is_table(slots: &[u8], word: &impl Fn(usize) -> u64, base: usize) -> bool {
    // Slot 0 is never used.
    if word(base) != 0 || word(base + 8) != 0 {
        return false;
    }
    // On the stack: this runs at every word of the data searched.
    let mut funcs = [0u64; NSIG - 1];
    for sig in 1..NSIG {
        let at = sig * SLOT;
        let tripped = u32::from_le_bytes(slots[at..at + 4].try_into().expect("4 bytes"));
        let pad = u32::from_le_bytes(slots[at + 4..at + 8].try_into().expect("4 bytes"));
        let func = word(base + at + 8);
        if tripped > 1 || pad != 0 || func == 0 || func & 7 != 0 {
            return false;
        }
        funcs[sig - 1] = func;
    }
    // SIG_DFL for most signals: one object in most slots.
    funcs.sort_unstable();
    let mut most = 0;
    let mut run = 0;
    for (i, f) in funcs.iter().enumerate() {
        run = if i > 0 && funcs[i - 1] == *f {
            run + 1
        } else {
            1
        };
        most = most.max(run);
    }
    most >= 30
}

/// What a signal's Python-level handler is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// `signal.SIG_DFL`, `signal.SIG_IGN`, or `None` (a handler not set
    /// from Python): no Python code runs.
    NotPython,
    /// A Python function (its name, file and `def` line), a bound method's
    /// function, a built-in (`default_int_handler`), or another callable
    /// (its type's name).
    Python(Frame),
}

/// The `func` of every slot of the table at `table` (index: the signal).
pub fn funcs(mem: &dyn Memory, table: u64) -> Option<Vec<u64>> {
    let raw = mem.read_vec(table, NSIG * SLOT).ok()?;
    Some(
        (0..NSIG)
            .map(|sig| {
                let at = sig * SLOT + 8;
                u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"))
            })
            .collect(),
    )
}

/// Offset of `func_code` in a `PyFunctionObject`: first up to 3.9; from
/// 3.10 after func_globals, func_builtins, func_name, func_qualname.
pub fn function_code(o: &Offsets, minor: u32) -> u64 {
    let header = o.ob_type + 8;
    if minor <= 9 { header } else { header + 32 }
}

/// The Python function whose code object is `code`, when `code` is one (a
/// handler's `func_code` read by the kernel at delivery: the function
/// object may be gone since, its code lives on with the code defining it).
pub fn function_of_code(source: &CodeSource, symbols: &mut Symbols, code: u64) -> Option<Handler> {
    let objects = Objects::new(source.memory, source.offsets);
    let ty = objects.type_of(code)?;
    let is_code = match source.code_type {
        Some(code_type) => ty == code_type,
        None => objects.type_name(ty)? == "code",
    };
    if !is_code {
        return None;
    }
    let mut frame = symbols.function(source, code);
    frame.line = frame.first_line;
    Some(Handler::Python(frame))
}

/// What the handler object `func` (a slot's `func`) is. `minor`: the
/// CPython version (the function object's layout).
pub fn handler(
    source: &CodeSource,
    symbols: &mut Symbols,
    minor: u32,
    mut func: u64,
) -> Option<Handler> {
    let mem = source.memory;
    let o: &Offsets = source.offsets;
    let objects = Objects::new(mem, o);
    let h = objects.header();
    let mut kind = objects.type_name(objects.type_of(func)?)?;
    if kind == "method" {
        // PyMethodObject: im_func, then im_self.
        func = mem.u64(func + h).ok()?;
        kind = objects.type_name(objects.type_of(func)?)?;
    }
    Some(match kind.as_str() {
        "int" | "NoneType" => Handler::NotPython,
        "function" => {
            let code = mem.u64(func + function_code(o, minor)).ok()?;
            let mut frame = symbols.function(source, code);
            frame.line = frame.first_line;
            Handler::Python(frame)
        }
        "builtin_function_or_method" => {
            // PyCFunctionObject: m_ml (PyMethodDef *), whose ml_name is first.
            let ml = mem.u64(func + h).ok()?;
            let name = mem.u64(ml).ok()?;
            let raw = mem.read_vec(name, 64).ok()?;
            let end = raw.iter().position(|&b| b == 0)?;
            let name = String::from_utf8_lossy(&raw[..end]).into_owned();
            Handler::Python(Frame {
                qualname: name.clone(),
                function: name,
                file: "<built-in>".into(),
                line: 0,
                first_line: 0,
                native: false,
            })
        }
        other => Handler::Python(Frame {
            qualname: format!("<{other} object>"),
            function: other.to_owned(),
            file: "?".into(),
            line: 0,
            first_line: 0,
            native: false,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(funcs: &[u64]) -> Vec<u8> {
        let mut raw = vec![0u8; 64];
        for sig in 0..NSIG {
            let func = if sig == 0 {
                0
            } else {
                funcs[sig % funcs.len()]
            };
            raw.extend_from_slice(&0u64.to_le_bytes());
            raw.extend_from_slice(&func.to_le_bytes());
        }
        raw.extend_from_slice(&[0u8; 64]);
        raw
    }

    #[test]
    fn the_table_is_found_by_its_shape() {
        struct Raw(Vec<u8>);
        impl Memory for Raw {
            fn read(
                &self,
                addr: u64,
                buf: &mut [u8],
            ) -> Result<(), super::super::process_memory::MemoryError> {
                let at = (addr - 0x1000) as usize;
                buf.copy_from_slice(&self.0[at..at + buf.len()]);
                Ok(())
            }
        }
        // SIG_DFL (0x7000) almost everywhere, a handler here and there.
        let mut funcs = vec![0x7000u64; 10];
        funcs[2] = 0x8000;
        let mem = Raw(table(&funcs));
        let end = 0x1000 + mem.0.len() as u64;
        assert_eq!(find_table(&mem, (0x1000, end)), Some(0x1000 + 64));
        // Not the shape: too few slots share one object.
        let funcs: Vec<u64> = (1..=64).map(|i| 0x7000 + i * 8).collect();
        let mem = Raw(table(&funcs));
        assert_eq!(find_table(&mem, (0x1000, end)), None);
    }
}
