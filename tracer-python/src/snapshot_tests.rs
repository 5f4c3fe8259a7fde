//! The layout tables and the stack walk, checked on memory recorded from
//! real interpreters (one JSON snapshot per version, in `snapshots/`) and on
//! a synthetic 3.14 image built from the header offsets.
//!
//! Each recording is `tests/workloads/python_snapshot.py` stopped in
//! `time.sleep` at `<module>:14 -> outer:11 -> inner:7`; the expected stack
//! comes from that script, not from the recording. `running_interpreters_decode`
//! checks the same against the live interpreters on every run; re-record (as
//! root) with `TRACER_RECORD_SNAPSHOTS=1 cargo test -p tracer running_interpreters_decode`.

use std::{cell::RefCell, io::BufRead};

use serde::{Deserialize, Serialize};

use super::{
    code, interpreter, layout,
    layout::Offsets,
    process_memory::{Memory, ProcessMemory, Recorder, Snapshot},
    symbols::python_frame,
    threads,
};

fn walk_stack(mem: &dyn Memory, o: &Offsets, tstate: u64) -> Vec<tracer_common::PyFrameRecord> {
    threads::walk_frames(mem, o, tstate, tracer_common::PY_MAX_DEPTH)
}

#[derive(Serialize, Deserialize)]
struct Recorded {
    label: String,
    version: String,
    major: u32,
    minor: u32,
    pid: u32,
    runtime: u64,
    code_type: Option<u64>,
    memory: Snapshot,
}

/// (qualname, file, line) innermost first, and the thread's tid.
fn decode(
    mem: &dyn Memory,
    major: u32,
    minor: u32,
    pid: u32,
    runtime: u64,
    code_type: Option<u64>,
) -> (Option<u32>, Vec<(String, String, u32)>) {
    let source = layout::source_for(major, minor).unwrap();
    let o = source.offsets(mem, runtime).unwrap();
    let mut states = threads::thread_states(mem, &o, runtime);
    threads::resolve_tids(mem, pid, |tid| tid == pid, &mut states, &mut None);
    assert_eq!(states.len(), 1, "one thread");
    let frames = walk_stack(mem, &o, states[0].tstate);
    let stack = frames
        .iter()
        .filter_map(|f| python_frame(&o, f))
        .map(|(code, instr, _)| {
            let info = code::read_code(mem, &o, code, code_type).unwrap();
            let line = info.line_at(o.instr_kind, instr).unwrap_or(0);
            (info.qualname, info.filename, line)
        })
        .collect();
    (states[0].tid, stack)
}

fn check(stack: &[(String, String, u32)]) {
    let names: Vec<&str> = stack.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["inner", "outer", "<module>"], "{stack:?}");
    let lines: Vec<u32> = stack.iter().map(|s| s.2).collect();
    assert_eq!(lines, [7, 11, 14], "{stack:?}");
    assert!(
        stack.iter().all(|s| s.1.ends_with("python_snapshot.py")),
        "{stack:?}"
    );
}

fn replay(json: &str) {
    let rec: Recorded = serde_json::from_str(json).unwrap();
    let (tid, stack) = decode(
        &rec.memory,
        rec.major,
        rec.minor,
        rec.pid,
        rec.runtime,
        rec.code_type,
    );
    assert_eq!(
        tid,
        Some(rec.pid),
        "{}: main thread's kernel tid",
        rec.label
    );
    check(&stack);
}

macro_rules! snapshot_test {
    ($name:ident, $file:literal) => {
        #[test]
        fn $name() {
            replay(include_str!(concat!("snapshots/", $file)));
        }
    };
}

snapshot_test!(snapshot_3_8, "3.8.18.json");
snapshot_test!(snapshot_3_9, "3.9.18.json");
snapshot_test!(snapshot_3_10, "3.10.13.json");
snapshot_test!(snapshot_3_11_shared, "3.11.7.json");
snapshot_test!(snapshot_3_11_static_debian, "3.11.2-debian.json");
snapshot_test!(snapshot_3_12, "3.12.1.json");
snapshot_test!(snapshot_3_13, "3.13.0.json");
snapshot_test!(snapshot_3_14, "3.14.10-debian.json");
snapshot_test!(snapshot_3_15, "3.15.2-debian.json");
snapshot_test!(snapshot_3_13_free_threaded, "3.13.5t.json");

/// Had 3.13 and 3.14 been released after this tracer, their
/// `_Py_DebugOffsets` would have been understood all the same: the scan for
/// a newer version's layout finds each recorded one's known table (3.15's
/// all but its moved thread ids).
#[test]
fn scan_finds_every_recorded_layout() {
    for json in [
        include_str!("snapshots/3.13.0.json"),
        include_str!("snapshots/3.14.10-debian.json"),
        include_str!("snapshots/3.15.2-debian.json"),
        include_str!("snapshots/3.13.5t.json"),
    ] {
        let rec: Recorded = serde_json::from_str(json).unwrap();
        let known = layout::known_debug_layout(rec.minor).unwrap();
        let raw = rec
            .memory
            .read_vec(rec.runtime, known.total as usize)
            .unwrap();
        let mut found = layout::scan_debug_layout(&raw).expect(&rec.label);
        if rec.minor == 15 {
            // 3.15 moved the thread ids (fields inserted after
            // current_frame): a day-one run would have refused it, saying
            // so (see `frames_decode`); every other section is found.
            assert_ne!(found.tstate_thread_id, known.tstate_thread_id);
            found.tstate_thread_id = known.tstate_thread_id;
            found.tstate_native_thread_id = known.tstate_native_thread_id;
        }
        // The scan reads up to the unicode section; the tables to the end.
        found.total = known.total;
        // A version newer than this tracer gets no GIL figures (its GIL
        // is not guessed).
        assert_eq!(found.interp_ceval_gil, None);
        found.interp_ceval_gil = known.interp_ceval_gil;
        assert_eq!(found, known, "{}", rec.label);
    }
}

/// A 3.14 process image built by hand from `pycore_debug_offsets.h` /
/// `pycore_frame.h` / `pycore_code.h` of 3.14: tagged `f_executable`, a
/// C-stack entry frame (owner 4) between two Python frames, the location table.
#[test]
fn synthetic_3_14() {
    let mut mem = Snapshot::default();
    let runtime = 0x10000u64;
    let interp = 0x20000u64;
    let tstate = 0x30000u64;
    let (frame_a, frame_b, frame_c) = (0x40000u64, 0x40100u64, 0x40200u64);
    let (code1, code2) = (0x50000u64, 0x51000u64);
    let code_type = 0x60000u64;
    let put = |buf: &mut Vec<u8>, at: u64, v: u64| {
        let at = at as usize;
        if buf.len() < at + 8 {
            buf.resize(at + 8, 0);
        }
        buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
    };
    // _Py_DebugOffsets (values as a 3.14 x86-64 build writes them).
    let d = layout::DEBUG_LAYOUT_3_14;
    let mut rt = vec![0u8; d.total as usize];
    rt[..8].copy_from_slice(layout::DEBUG_COOKIE);
    put(&mut rt, 8, 0x030e_00f0);
    for (at, v) in [
        (d.interpreters_head, 808),
        (d.interp_next, 7272),
        (d.interp_threads_head, 7344),
        (d.tstate_prev, 0),
        (d.tstate_next, 8),
        (d.tstate_interp, 16),
        (d.tstate_current_frame, 72),
        (d.tstate_thread_id, 152),
        (d.tstate_native_thread_id, 160),
        (d.frame_previous, 8),
        (d.frame_executable, 0),
        (d.frame_instr_ptr, 56),
        (d.frame_owner, 74),
        (d.code_filename, 112),
        (d.code_name, 120),
        (d.code_qualname, 128),
        (d.code_linetable, 136),
        (d.code_firstlineno, 68),
        (d.code_adaptive, 208),
        (d.bytes_size, 16),
        (d.bytes_data, 32),
        (d.unicode_state, 32),
        (d.unicode_length, 16),
        (d.unicode_ascii_size, 40),
        (d.ob_type, 8),
    ] {
        put(&mut rt, at, v);
    }
    put(&mut rt, 808, interp);
    mem.insert(runtime, &rt);
    let mut it = Vec::new();
    put(&mut it, 7272, 0);
    put(&mut it, 7344, tstate);
    mem.insert(interp, &it);
    let mut ts = Vec::new();
    put(&mut ts, 8, 0);
    put(&mut ts, 72, frame_a);
    put(&mut ts, 152, 0x7f00_0000_1000);
    put(&mut ts, 160, 4242);
    mem.insert(tstate, &ts);
    let frame = |code: u64, instr: u64, owner: u8, previous: u64| {
        let mut f = Vec::new();
        put(&mut f, 0, code);
        put(&mut f, 8, previous);
        put(&mut f, 56, instr);
        f.resize(80, 0);
        f[74] = owner;
        f
    };
    // inner frame: tagged reference to code1, 3rd code unit; then a C entry
    // frame (owner FRAME_OWNED_BY_CSTACK = 4, f_executable = None); then code2.
    mem.insert(frame_a, &frame(code1 | 1, code1 + 208 + 2 * 2, 0, frame_b));
    mem.insert(frame_b, &frame(0x9999_0000, 0, 4, frame_c));
    mem.insert(frame_c, &frame(code2, code2 + 208, 0, 0));
    let mut string_at = 0x70000u64;
    let mut object = |mem: &mut Snapshot, text: &str| {
        let mut s = Vec::new();
        put(&mut s, 16, text.len() as u64);
        put(&mut s, 32, (1 << 2) | (1 << 5) | (1 << 6)); // kind 1, compact, ascii
        s.resize(40, 0);
        s.extend_from_slice(text.as_bytes());
        mem.insert(string_at, &s);
        string_at += 0x100;
        string_at - 0x100
    };
    let file = object(&mut mem, "/app/synthetic.py");
    let mut code_object = |mem: &mut Snapshot, addr: u64, name: &str, first: u32, table: &[u8]| {
        let name = object(mem, name);
        let table_at = addr + 0x800;
        let mut t = Vec::new();
        put(&mut t, 16, table.len() as u64);
        t.resize(32, 0);
        t.extend_from_slice(table);
        mem.insert(table_at, &t);
        let mut c = Vec::new();
        put(&mut c, 8, code_type);
        put(&mut c, 112, file);
        put(&mut c, 120, name);
        put(&mut c, 128, name);
        put(&mut c, 136, table_at);
        put(&mut c, 208, 0);
        c[68..72].copy_from_slice(&first.to_le_bytes());
        mem.insert(addr, &c);
    };
    // code1 "work" (def on line 3): unit 0 on line 3, units 1-3 on line 5 (one-line form +2).
    code_object(
        &mut mem,
        code1,
        "work",
        3,
        &[0x80, 0, 0x80 | (12 << 3) | 2, 4, 9],
    );
    // code2 "<module>" (line 1): unit 0 on line 9 (no-column form, +8).
    code_object(&mut mem, code2, "<module>", 1, &[0x80 | (13 << 3), 16]);

    let (tid, stack) = decode(&mem, 3, 14, 4242, runtime, Some(code_type));
    assert_eq!(tid, Some(4242));
    assert_eq!(
        stack,
        [
            ("work".to_string(), "/app/synthetic.py".to_string(), 5),
            ("<module>".to_string(), "/app/synthetic.py".to_string(), 9),
        ]
    );
}

/// "ready" is printed on the line before `time.sleep`: wait until the
/// process is blocked in the sleep (/proc/PID/syscall names the syscall a
/// blocked task is in: clock_nanosleep from 3.11, select before), so the
/// stack is at the sleep line.
fn wait_until_sleeping(pid: u32) {
    let sleeps = [
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_select,
        libc::SYS_pselect6,
    ]
    .map(|nr| nr.to_string());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        let nr = syscall.split_whitespace().next().unwrap_or_default();
        if sleeps.iter().any(|s| s == nr) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid} never blocked in a sleep: {syscall}"
        );
        std::thread::yield_now();
    }
}

/// Decodes the stack of every interpreter on this machine (pyenv 3.8-3.13,
/// Debian's 3.11, Debian's 3.14 in the root `cargo xtask test` makes) from
/// its live memory; with TRACER_RECORD_SNAPSHOTS=1 also records
/// `snapshots/*.json` from them.
#[test]
fn running_interpreters_decode() {
    let record = std::env::var_os("TRACER_RECORD_SNAPSHOTS").is_some();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/workloads/python_snapshot.py"
    );
    let chroot = std::env::var("TRACER_PY314_ROOT")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/sid-python3.14".into());
    let chroot = chroot.as_str();
    let mut runs: Vec<(String, Vec<String>)> =
        ["3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"]
            .iter()
            .map(|v| {
                let minor = &v[..v.rfind('.').unwrap()];
                (
                    v.to_string(),
                    vec![
                        format!("/root/.pyenv/versions/{v}/bin/python{minor}"),
                        script.into(),
                    ],
                )
            })
            .collect();
    runs.push((
        "3.11.2-debian".into(),
        vec!["/usr/bin/python3.11".into(), script.into()],
    ));
    assert!(
        std::path::Path::new(chroot)
            .join("usr/bin/python3.14")
            .exists(),
        "no Debian 3.14 root at {chroot}: `cargo xtask test` makes it (or set TRACER_PY314_ROOT)"
    );
    {
        std::fs::copy(script, format!("{chroot}/tmp/python_snapshot.py")).unwrap();
        runs.push((
            "3.14.10-debian".into(),
            vec![
                "chroot".into(),
                chroot.into(),
                "python3.14".into(),
                "/tmp/python_snapshot.py".into(),
            ],
        ));
    }
    {
        std::fs::copy(script, format!("{chroot}/tmp/python_snapshot.py")).unwrap();
        assert!(
            std::path::Path::new(chroot)
                .join("usr/bin/python3.15")
                .exists(),
            "no python3.15 in {chroot}: `cargo xtask test` installs it"
        );
        runs.push((
            "3.15.2-debian".into(),
            vec![
                "chroot".into(),
                chroot.into(),
                "python3.15".into(),
                "/tmp/python_snapshot.py".into(),
            ],
        ));
    }
    let free_threaded = std::env::var("TRACER_PY313T")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/python3.13t/bin/python3.13t".into());
    assert!(
        std::path::Path::new(&free_threaded).exists(),
        "no free-threaded 3.13 at {free_threaded}: `cargo xtask test` builds it (or set TRACER_PY313T)"
    );
    runs.push(("3.13.5t".into(), vec![free_threaded, script.into()]));
    for (label, argv) in runs {
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let pid = child.id();
        wait_until_sleeping(pid);
        let interp = interpreter::discover(pid, &mut Default::default()).unwrap();
        let live = ProcessMemory::new(pid);
        let recorder = Recorder {
            inner: &live,
            snapshot: RefCell::new(Snapshot::default()),
        };
        let (tid, stack) = decode(
            &recorder,
            interp.major,
            interp.minor,
            pid,
            interp.runtime,
            interp.code_type,
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(tid, Some(pid), "{label}");
        check(&stack);
        if !record {
            continue;
        }
        let rec = Recorded {
            label: label.clone(),
            version: interp.version.clone(),
            major: interp.major,
            minor: interp.minor,
            pid,
            runtime: interp.runtime,
            code_type: interp.code_type,
            memory: recorder.snapshot.into_inner(),
        };
        let out = format!("{}/src/snapshots/{label}.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&out, serde_json::to_string_pretty(&rec).unwrap()).unwrap();
        println!("{label}: {} regions -> {out}", rec.memory.regions.len());
    }
}

/// The GIL's place as the recorded interpreters' `_Py_DebugOffsets` give
/// it (the values gdb and a live read agree on: `ceval.gil` at 16 in the
/// interpreter state, `last_holder` at 8 and `locked` at 16 in the GIL);
/// none in the free-threaded build.
#[test]
fn recorded_debug_offsets_place_the_gil() {
    use super::gil::{GilLayout, GilPlace};
    let with_gil = GilLayout {
        place: GilPlace::Interpreter(16),
        holder: 8,
        locked: 16,
    };
    for (json, expected) in [
        (include_str!("snapshots/3.13.0.json"), Some(with_gil)),
        (
            include_str!("snapshots/3.14.10-debian.json"),
            Some(with_gil),
        ),
        (include_str!("snapshots/3.15.2-debian.json"), Some(with_gil)),
        (include_str!("snapshots/3.13.5t.json"), None),
    ] {
        let rec: Recorded = serde_json::from_str(json).unwrap();
        let source = layout::source_for(rec.major, rec.minor).unwrap();
        let o = source.offsets(&rec.memory, rec.runtime).unwrap();
        assert_eq!(o.gil, expected, "{}", rec.label);
    }
}
