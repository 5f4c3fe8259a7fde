//! The interpreter matrix: the same calibrated workloads, with the same
//! exact figures, on every CPython this machine can run end to end:
//!
//! | interpreter              | build                 | where                                  |
//! |--------------------------|-----------------------|----------------------------------------|
//! | Debian bullseye 3.9.2    | static `python3.9`    | debootstrap root (`TRACER_PY39_ROOT`)  |
//! | Debian bookworm 3.11.2   | static `python3.11`   | the host's `/usr/bin/python3.11`       |
//! | pyenv 3.11.7             | shared `libpython`    | the host's `/root/.pyenv`              |
//! | Debian trixie 3.13.5     | static `python3.13`   | debootstrap root (`TRACER_PY313_ROOT`) |
//! | the same, debug build    | static `python3.13d`  | the trixie root (package python3.13-dbg) |
//! | Debian sid 3.14.x        | static `python3.14`   | debootstrap root (`TRACER_PY314_ROOT`) |
//!
//! `cargo xtask test` makes the roots once (cached in /var/cache/tracer-tests)
//! and passes their directories in the variables above; a root it could not
//! make is passed as `<VAR>_ERROR` and the tests that need it fail with that
//! reason. Nothing is skipped.
//!
//! Workloads, one test each per interpreter (`<interpreter>::<workload>`):
//! - `calibrated_hotspots`: 70/30 CPU shares within 5 points, `main;outer;inner`
//!   in folded output (rooted interpreters under plain `chroot`);
//! - `proc_reads`: 37 `os.read` of /proc/self/stat, 40 buffered openings of
//!   /proc/self/status in the request size that version really uses (1 KiB,
//!   or 128 KiB from 3.14 on: gh-117151), exact syscall counts;
//! - `proc_reads_agree_with_strace`: the same run seen by strace and by the
//!   tracer (which follows strace's child: the Python process);
//! - `signals`: 25 `kill` + 3 `pthread_kill` SIGUSR1 to a Python handler;
//! - `zombies`: Popen children never waited for, and the `Popen` line;
//! - `container_attach` / `container_launch`: the interpreter as pid 1 of
//!   its own pid namespace and root (`unshare --pid --fork --mount
//!   --mount-proc --root=ROOT`), traced by host pid and by launching
//!   `unshare` (the tracer follows its child);
//! - `text_names_the_interpreter`: the text report's PYTHON line and pids.
//!
//! The rooted interpreters run with `unshare --mount --mount-proc
//! --root=ROOT` (their own root and a /proc; the host's pid namespace) unless
//! said otherwise: a plain `chroot` has no /proc inside.
//!
//! Run: sudo -E cargo test --release -p tracer --test matrix -- --test-threads=1

#[path = "../common/mod.rs"]
mod common;
mod containers;
mod interpreters;
mod names;
mod processes;
mod reads;
mod signals;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use common::{
    Proc, Scratch, assert_complete, assert_exit, attach_tracer, calibrated, entry, load_json,
    parse_strace, pid_of, read_syscalls_of, require_root, signal_groups, trace_command, tracer,
    u64_of, zombie,
};
use containers::*;
use interpreters::*;
use names::*;
use processes::*;
use reads::*;
use serde_json::{Value, json};
use signals::*;

/// A file-name-safe short name of the interpreter.
pub(crate) fn slug(interpreter: &Interpreter) -> String {
    interpreter
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

// ---------------------------------------------------------------------------
// One #[test] per (interpreter, workload): a failure names the version.

macro_rules! interpreter_tests {
    ($module:ident, $interpreter:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn calibrated_hotspots() {
                super::calibrated_hotspots(&$interpreter);
            }

            #[test]
            fn proc_reads() {
                super::proc_reads(&$interpreter);
            }

            #[test]
            fn proc_reads_agree_with_strace() {
                super::proc_reads_agree_with_strace(&$interpreter);
            }

            #[test]
            fn signals() {
                super::signals(&$interpreter);
            }

            #[test]
            fn zombies() {
                super::zombies(&$interpreter);
            }

            #[test]
            fn container_attach() {
                super::container_attach(&$interpreter);
            }

            #[test]
            fn container_launch() {
                super::container_launch(&$interpreter);
            }

            #[test]
            fn text_names_the_interpreter() {
                super::text_names_the_interpreter(&$interpreter);
            }

            #[test]
            fn thread_names() {
                super::thread_names(&$interpreter);
            }

            #[test]
            fn signal_changes() {
                super::signal_changes(&$interpreter);
            }

            #[test]
            fn signal_handler_runs() {
                super::signal_handler_runs(&$interpreter);
            }
        }
    };
}

interpreter_tests!(debian_bullseye_3_9, BULLSEYE_3_9);
interpreter_tests!(debian_static_3_11, HOST_STATIC_3_11);
interpreter_tests!(pyenv_shared_3_11, PYENV_SHARED_3_11);
interpreter_tests!(debian_trixie_3_13, TRIXIE_3_13);
interpreter_tests!(debian_sid_3_14, SID_3_14);
interpreter_tests!(debian_sid_3_15, SID_3_15);
interpreter_tests!(free_threaded_3_13, FREE_THREADED_3_13);

/// The debug build: named as one, and sampled like the release build
/// (`_Py_DebugOffsets` describe its layout too).
mod debian_trixie_3_13_debug_build {
    use super::*;

    #[test]
    pub(crate) fn calibrated_hotspots() {
        super::calibrated_hotspots(&TRIXIE_3_13_DEBUG);
    }

    #[test]
    pub(crate) fn text_names_the_interpreter() {
        super::text_names_the_interpreter(&TRIXIE_3_13_DEBUG);
    }
}
