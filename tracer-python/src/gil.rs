//! Where a process's GIL is (`struct _gil_runtime_state`), per version, and
//! what the kernel side is told of it. Every build with a GIL lays the
//! struct out the same way (checked with gdb on the pyenv 3.8-3.13 builds'
//! DWARF, and on live Debian 3.9, 3.11, 3.13, 3.14 and 3.15: `locked` == 1
//! and `last_holder` == `PyThreadState_Get()` while Python code runs):
//! `interval`, `last_holder`, `locked`, `switch_number`, then the
//! `pthread_cond_t cond` (48 bytes), `pthread_mutex_t mutex` (40) and,
//! with `FORCE_SWITCHING` (every POSIX build), `switch_cond` and
//! `switch_mutex`. Where the struct is: `_PyRuntime.ceval.gil` up to 3.11;
//! from 3.12 each interpreter has one, reached through its `ceval.gil`
//! pointer (the main interpreter's, what a subinterpreter sharing it also
//! points to). 3.13+ say both in `_Py_DebugOffsets`.

use tracer_common::PyConfig;

use super::process_memory::Memory;

/// How to find the GIL from `_PyRuntime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GilPlace {
    /// At this offset in `_PyRuntime` (3.8-3.11: `ceval.gil`).
    Runtime(u64),
    /// Pointed to by the field at this offset of the main interpreter's
    /// `PyInterpreterState` (3.12+: `ceval.gil`).
    Interpreter(u64),
}

/// The GIL of a build that has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GilLayout {
    pub place: GilPlace,
    /// Offsets in the struct of `last_holder` and `locked`.
    pub holder: u64,
    pub locked: u64,
}

/// `pthread_cond_t` and `pthread_mutex_t` of glibc on LP64.
const COND_BYTES: u64 = 48;
const MUTEX_BYTES: u64 = 40;

impl GilLayout {
    /// Where `cond` starts: after `locked` (an int) and `switch_number`.
    fn cond(&self) -> u64 {
        self.locked + 16
    }

    /// Fills in the GIL's address and its fields for the kernel side.
    pub fn configure(&self, config: &mut PyConfig, gil: u64) {
        let take = self.cond();
        let switch = take + COND_BYTES + MUTEX_BYTES;
        config.gil = gil;
        config.gil_holder = self.holder as u32;
        config.gil_locked = self.locked as u32;
        config.gil_take = take as u32;
        config.gil_switch = switch as u32;
        config.gil_end = (switch + COND_BYTES + MUTEX_BYTES) as u32;
    }

    /// The GIL's run-time address in a process whose `_PyRuntime` is at
    /// `runtime`: `None` while the main interpreter has none yet (start-up).
    /// `interpreters_head` / `interp_next`: where the interpreter list is
    /// (the main interpreter is its last entry).
    pub fn address(
        &self,
        memory: &dyn Memory,
        runtime: u64,
        interpreters_head: u64,
        interp_next: u64,
    ) -> Option<u64> {
        match self.place {
            GilPlace::Runtime(offset) => Some(runtime + offset),
            GilPlace::Interpreter(offset) => {
                let mut interp = memory.u64(runtime + interpreters_head).ok()?;
                // Newest first: the main interpreter is the last one.
                for _ in 0..64 {
                    match memory.u64(interp + interp_next).ok()? {
                        0 => break,
                        next => interp = next,
                    }
                }
                let gil = memory.u64(interp.checked_add(offset)?).ok()?;
                (gil != 0).then_some(gil)
            }
        }
    }
}

/// 3.8-3.12 (`Include/internal/pycore_runtime.h`, `pycore_interp.h`; gdb
/// `print &((_PyRuntimeState*)0)->ceval.gil` on the pyenv builds).
pub fn static_gil(minor: u32) -> Option<GilLayout> {
    let place = match minor {
        8 => GilPlace::Runtime(0x480),
        9 | 10 => GilPlace::Runtime(0x160),
        11 => GilPlace::Runtime(0x168),
        12 => GilPlace::Interpreter(0x180),
        _ => return None,
    };
    Some(GilLayout {
        place,
        holder: 8,
        locked: 16,
    })
}

/// From `_Py_DebugOffsets` (3.13+): `raw[at..]` holds the interpreter
/// section's `ceval_gil`, `gil_runtime_state`, `gil_runtime_state_enabled`,
/// `_locked` and `_holder` (offsets in `PyInterpreterState`). `None` for a
/// free-threaded build (no GIL) or values that do not describe one.
pub fn debug_gil(field: impl Fn(u64) -> u64, at: u64, free_threaded: bool) -> Option<GilLayout> {
    if free_threaded {
        return None;
    }
    let (ceval_gil, state, locked, holder) =
        (field(at), field(at + 8), field(at + 24), field(at + 32));
    let (locked, holder) = (locked.checked_sub(state)?, holder.checked_sub(state)?);
    // Both inside the struct's head, before `cond`.
    if ceval_gil >= state || holder >= locked || locked > 32 || holder % 8 != 0 {
        return None;
    }
    Some(GilLayout {
        place: GilPlace::Interpreter(ceval_gil),
        holder,
        locked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_with_a_gil_has_its_place() {
        for minor in 8..=12 {
            let gil = static_gil(minor).unwrap();
            assert_eq!((gil.holder, gil.locked), (8, 16), "3.{minor}");
        }
        assert_eq!(static_gil(11).unwrap().place, GilPlace::Runtime(0x168));
        assert_eq!(static_gil(12).unwrap().place, GilPlace::Interpreter(0x180));
        assert_eq!(static_gil(13), None);
    }

    #[test]
    fn the_kernel_gets_the_take_and_switch_ranges() {
        let mut config = PyConfig::default();
        static_gil(11).unwrap().configure(&mut config, 0x1000);
        // cond at 32, mutex at 80, switch_cond at 120, switch_mutex at 168,
        // sizeof(struct _gil_runtime_state) = 208 (gdb, every build).
        assert_eq!(
            (config.gil, config.gil_holder, config.gil_locked),
            (0x1000, 8, 16)
        );
        assert_eq!(
            (config.gil_take, config.gil_switch, config.gil_end),
            (32, 120, 208)
        );
    }

    /// The values 3.14's `_Py_DebugOffsets` hold (read off sid's 3.14.10).
    fn debug_3_14(at: u64) -> u64 {
        match at {
            120 => 16,
            128 => 7784,
            136 => 0,
            144 => 7800,
            152 => 7792,
            _ => u64::MAX,
        }
    }

    #[test]
    fn debug_offsets_give_the_interpreters_gil() {
        let gil = debug_gil(debug_3_14, 120, false).unwrap();
        assert_eq!(gil.place, GilPlace::Interpreter(16));
        assert_eq!((gil.holder, gil.locked), (8, 16));
        // Free-threaded: no GIL, whatever the offsets say.
        assert_eq!(debug_gil(debug_3_14, 120, true), None);
        // The wrong place in the struct: not a GIL.
        assert_eq!(debug_gil(debug_3_14, 112, false), None);
    }
}
