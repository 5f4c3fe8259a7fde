//! The line that spawned each process: the caller past the standard
//! library's spawning machinery (`subprocess`, `threading`, the C library's
//! `fork`...), picked out of the frames of its fork and set in the report,
//! so no renderer picks it.

use crate::{frame::Frame, report::Report};

/// Sets each process's and zombie's `spawned_line`: the index of its
/// spawning line in the frames of its fork.
pub fn mark(report: &mut Report) {
    for p in &mut report.processes {
        p.spawned_line = p
            .python_stacks
            .first()
            .and_then(|s| spawned_line(&s.frames));
    }
    for z in &mut report.zombies {
        z.spawned_line = z.spawned_from.as_deref().and_then(spawned_line);
    }
}

/// Standard-library modules whose frames stand between user code and a
/// fork (`subprocess.Popen`, `Thread.start`, `os.popen`, `pty.spawn`,
/// `multiprocessing`, `asyncio.create_subprocess_exec`, executors).
const SPAWNING_MODULES: [&str; 7] = [
    "subprocess",
    "threading",
    "os",
    "pty",
    "multiprocessing",
    "asyncio",
    "concurrent",
];

/// The line that spawned a child, out of the frames of its fork (innermost
/// first), by its index: the innermost frame not inside the standard
/// library's spawning modules (`subprocess`, `threading`, `os`...) nor their
/// native code ([`native_machinery`]) and resolved, else the innermost one.
/// With native frames, a C extension that called `fork()` is that line.
pub fn spawned_line(frames: &[Frame]) -> Option<usize> {
    frames
        .iter()
        .position(|f| {
            f.is_resolved()
                && !native_machinery(f)
                && !f
                    .stdlib_module()
                    .is_some_and(|m| SPAWNING_MODULES.contains(&m))
        })
        .or((!frames.is_empty()).then_some(0))
}

/// A native frame between a spawning line and the kernel that is no
/// program's own: the C library's (`fork`, `_Fork`, `posix_spawn`), the
/// interpreter's (`os.fork`, a built-in `_posixsubprocess`), the standard
/// library's extension modules (`lib-dynload`), and code in no file.
fn native_machinery(frame: &Frame) -> bool {
    if !frame.native {
        return false;
    }
    let file = frame.file.rsplit('/').next().unwrap_or(&frame.file);
    crate::native::is_system(&frame.file)
        || ["python", "libpython", "["]
            .iter()
            .any(|p| file.starts_with(p))
        || frame.file.contains("/lib-dynload/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(list: &[&str]) -> Vec<Frame> {
        list.iter().map(|f| Frame::parse(f).unwrap()).collect()
    }

    fn line(frames: &[Frame]) -> Option<String> {
        spawned_line(frames).map(|i| frames[i].to_string())
    }

    #[test]
    fn spawned_line_skips_the_spawning_machinery() {
        let popen = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "spawn (/abs/wl.py:7)",
            "<module> (/abs/wl.py:12)",
        ]);
        assert_eq!(line(&popen), Some("spawn (/abs/wl.py:7)".into()));
        // os.popen -> subprocess.Popen: the caller of os.popen.
        let os_popen = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "popen (<frozen os>:1016)",
            "list_files (/abs/app.py:30)",
        ]);
        assert_eq!(line(&os_popen), Some("list_files (/abs/app.py:30)".into()));
        let thread = frames(&[
            "Thread.start (/usr/lib/python3.11/threading.py:957)",
            "start_workers (/abs/app.py:40)",
        ]);
        assert_eq!(line(&thread), Some("start_workers (/abs/app.py:40)".into()));
        // An unreadable frame is not a line.
        let unresolved = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "<code 0x55aa> (?:0)",
            "main (/abs/app.py:3)",
        ]);
        assert_eq!(line(&unresolved), Some("main (/abs/app.py:3)".into()));
        // Only machinery (the user frames were deeper than the 4 kept):
        // the innermost frame.
        let deep = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "run (/usr/lib/python3.11/subprocess.py:548)",
            "check_output (/usr/lib/python3.11/subprocess.py:466)",
        ]);
        assert_eq!(
            line(&deep),
            Some("Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)".into())
        );
        // Direct os.fork() from user code.
        assert_eq!(
            line(&frames(&["main (/abs/app.py:9)"])),
            Some("main (/abs/app.py:9)".into())
        );
        assert_eq!(spawned_line(&[]), None);
    }

    #[test]
    fn a_c_extension_that_forks_is_the_spawned_line() {
        let c = frames(&[
            "_Fork [/usr/lib/x86_64-linux-gnu/libc.so.6]",
            "__fork [/usr/lib/x86_64-linux-gnu/libc.so.6]",
            "tracer_test_fork_child [/tmp/spin.cpython-311-x86_64-linux-gnu.so]",
            "PyObject_Vectorcall [/usr/bin/python3.11]",
            "fork_in_c (/abs/app.py:25)",
        ]);
        assert_eq!(
            line(&c),
            Some("tracer_test_fork_child [/tmp/spin.cpython-311-x86_64-linux-gnu.so]".into())
        );
        // os.fork() and subprocess: the interpreter's and the standard
        // library's C code is machinery, the Python line spawned it.
        let os_fork = frames(&[
            "_Fork [/usr/lib/x86_64-linux-gnu/libc.so.6]",
            "python3.11+0x673f20 [/usr/bin/python3.11]",
            "spawn (/abs/app.py:30)",
        ]);
        assert_eq!(line(&os_fork), Some("spawn (/abs/app.py:30)".into()));
        let popen = frames(&[
            "vfork [/usr/lib/x86_64-linux-gnu/libc.so.6]",
            "do_fork_exec [/usr/lib/python3.12/lib-dynload/_posixsubprocess.cpython-312-x86_64-linux-gnu.so]",
            "PyObject_Vectorcall [/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0]",
            "Popen._execute_child (/usr/lib/python3.12/subprocess.py:1883)",
            "spawn (/abs/app.py:7)",
        ]);
        assert_eq!(line(&popen), Some("spawn (/abs/app.py:7)".into()));
    }
}
