use super::*;
use tracer_common::{PyForkEvent, PyStringCopy};

fn bytes_of<T>(value: &T) -> Vec<u8> {
    // SAFETY: test-only view of a plain #[repr(C)] value.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn header(kind: EventKind) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        tgid: 100,
        tid: 101,
        _pad: 0,
        ts_ns: 5_000,
    }
}

#[test]
fn decodes_thread_exited() {
    let stats = ThreadStats {
        tgid: 100,
        voluntary: 3,
        involuntary: 1,
        on_cpu_ns: 7,
        off_cpu_ns: 9,
        ..ThreadStats::default()
    };
    let event = ThreadExitedEvent {
        header: header(EventKind::ThreadExited),
        stats,
    };
    assert_eq!(
        decode(&bytes_of(&event)).unwrap(),
        Event::ThreadExited {
            tgid: 100,
            tid: 101,
            stats
        }
    );
    assert!(decode(&bytes_of(&event)[..50]).is_err());
}

/// A file record of `kind` with nothing read.
fn file_event(kind: EventKind) -> FileEvent {
    FileEvent {
        header: header(kind),
        fd: 0,
        path_len: 0,
        file_id: 0,
        path: [0; PATH_CAPTURE_LEN],
        ino: 0,
        fs_magic: 0,
        blksize: 0,
        truncated: 0,
        mode: 0,
        _pad: 0,
        socket: Default::default(),
    }
}

#[test]
fn decodes_file_opened() {
    let mut path = [0u8; PATH_CAPTURE_LEN];
    path[..18].copy_from_slice(b"/proc/self/status\0");
    let event = FileEvent {
        fd: 3,
        path_len: 18,
        file_id: 77,
        path,
        ..file_event(EventKind::FileOpened)
    };
    assert_eq!(
        decode(&bytes_of(&event)).unwrap(),
        Event::FileOpened {
            tgid: 100,
            fd: 3,
            file_id: 77,
            path: "/proc/self/status".into(),
            truncated: false,
            kernel: None,
        }
    );
}

#[test]
fn flags_truncated_paths() {
    let mut path = [b'a'; PATH_CAPTURE_LEN];
    path[PATH_CAPTURE_LEN - 1] = 0;
    let mut event = FileEvent {
        fd: 3,
        path_len: PATH_CAPTURE_LEN as u32 - 1,
        file_id: 1,
        path,
        ..file_event(EventKind::FileOpened)
    };
    let opened = |event: &FileEvent| match decode(&bytes_of(event)).unwrap() {
        Event::FileOpened {
            path, truncated, ..
        } => (path, truncated),
        other => panic!("wrong kind: {other:?}"),
    };
    // A path of exactly PATH_CAPTURE_LEN - 1 bytes is whole...
    let (path, truncated) = opened(&event);
    assert!(!truncated);
    assert_eq!(path.len(), PATH_CAPTURE_LEN - 1);
    // ...unless the kernel side saw more of it.
    event.truncated = 1;
    let (path, truncated) = opened(&event);
    assert!(truncated);
    assert_eq!(path.len(), PATH_CAPTURE_LEN - 1);
}

#[test]
fn decodes_fd_discovered_and_process_events() {
    let event = FileEvent {
        fd: 7,
        file_id: 9,
        ..file_event(EventKind::FdDiscovered)
    };
    assert_eq!(
        decode(&bytes_of(&event)).unwrap(),
        Event::FdDiscovered {
            tgid: 100,
            fd: 7,
            file_id: 9,
            kernel: None,
        }
    );
    let pipe = FileEvent {
        ino: 4242,
        fs_magic: 0x5049_5045,
        blksize: 4096,
        ..event
    };
    assert_eq!(
        decode(&bytes_of(&pipe)).unwrap(),
        Event::FdDiscovered {
            tgid: 100,
            fd: 7,
            file_id: 9,
            kernel: Some(crate::host::files::KernelFile {
                ino: 4242,
                fs_magic: 0x5049_5045,
                blksize: 4096,
                mode: 0,
                socket: None,
            }),
        }
    );
    let mut comm = [0u8; COMM_LEN];
    comm[..7].copy_from_slice(b"python3");
    let exit = ProcessEvent {
        header: header(EventKind::ProcessExited),
        pid: 101,
        arg: 1,
        status: 3 << 8,
        flags: 0,
        comm,
        ns_pid: 1,
        peak_rss_pages: 2_560,
    };
    assert_eq!(
        decode(&bytes_of(&exit)).unwrap(),
        Event::ProcessExited {
            tgid: 100,
            tid: 101,
            group_dead: true,
            ts_ns: 5_000,
            comm: "python3".into(),
            status: Some(0x300),
            ns_pid: Some(1),
            peak_rss_pages: Some(2_560),
        }
    );
    let unknown = ProcessEvent {
        status: EXIT_STATUS_UNKNOWN,
        ns_pid: 0,
        peak_rss_pages: 0,
        ..exit
    };
    assert!(matches!(
        decode(&bytes_of(&unknown)).unwrap(),
        Event::ProcessExited {
            status: None,
            ns_pid: None,
            peak_rss_pages: None,
            ..
        }
    ));
    let fork = ProcessEvent {
        header: header(EventKind::ProcessForked),
        pid: 200,
        arg: 100,
        status: 0,
        flags: 0,
        comm,
        ns_pid: 0,
        peak_rss_pages: 0,
    };
    assert!(matches!(
        decode(&bytes_of(&fork)).unwrap(),
        Event::ProcessForked {
            parent_tgid: 100,
            parent_tid: 101,
            child: 200,
            is_thread: false,
            ..
        }
    ));
    let thread = ProcessEvent {
        flags: process_flags::THREAD,
        ..fork
    };
    assert!(matches!(
        decode(&bytes_of(&thread)).unwrap(),
        Event::ProcessForked {
            is_thread: true,
            ..
        }
    ));
    let freed = ProcessEvent {
        header: header(EventKind::ProcessFreed),
        pid: 300,
        ..fork
    };
    assert_eq!(
        decode(&bytes_of(&freed)).unwrap(),
        Event::ProcessFreed {
            pid: 300,
            ts_ns: 5_000
        }
    );
}

fn comm_of(name: &[u8]) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    comm[..name.len()].copy_from_slice(name);
    comm
}

#[test]
fn decodes_exec_with_its_command_line() {
    let mut filename = [0u8; FILENAME_LEN];
    filename[..20].copy_from_slice(b"/usr/bin/python3.11\0");
    let mut args = [0u8; ARGS_LEN];
    let cmdline = b"python3.11\0-c\0print(1)\0";
    args[..cmdline.len()].copy_from_slice(cmdline);
    let exec = ExecEvent {
        header: header(EventKind::ProcessExec),
        old_pid: 101,
        filename_len: 20,
        args_len: cmdline.len() as u32,
        args_truncated: 0,
        comm: comm_of(b"python3.11"),
        filename,
        args,
    };
    assert_eq!(
        decode(&bytes_of(&exec)).unwrap(),
        Event::ProcessExec {
            tgid: 100,
            old_pid: 101,
            ts_ns: 5_000,
            comm: "python3.11".into(),
            filename: "/usr/bin/python3.11".into(),
            argv: vec!["python3.11".into(), "-c".into(), "print(1)".into()],
            truncated: false,
        }
    );
    // Cut short in the middle of an argument; nothing captured.
    let cut = ExecEvent {
        args_len: 13,
        args_truncated: 1,
        ..exec
    };
    let Event::ProcessExec {
        argv, truncated, ..
    } = decode(&bytes_of(&cut)).unwrap()
    else {
        panic!("wrong kind");
    };
    assert_eq!(argv, ["python3.11", "-c"]);
    assert!(truncated);
    let none = ExecEvent {
        args_len: 0,
        ..exec
    };
    assert!(matches!(
        decode(&bytes_of(&none)).unwrap(),
        Event::ProcessExec { argv, .. } if argv.is_empty()
    ));
    assert_eq!(split_args(b"a\0\0b\0"), ["a", "", "b"]);
}

#[test]
fn decodes_wait_records() {
    let wait = WaitEvent {
        header: header(EventKind::WaitDone),
        kind: wait_kind::WAIT4,
        pid: 300,
        ret: 300,
        status: 3 << 8,
        code: 0,
        options: 0,
        flags: wait_flags::STATUS_VALID,
        comm: comm_of(b"python3"),
    };
    assert_eq!(
        decode(&bytes_of(&wait)).unwrap(),
        Event::WaitDone(WaitDone {
            tgid: 100,
            tid: 101,
            comm: "python3".into(),
            ts_ns: 5_000,
            syscall: WaitSyscall::Wait4,
            pid: 300,
            ret: 300,
            status: Some(0x300),
            code: 0,
            options: 0,
            untraced_reaper: false,
        })
    );
    let reaper = WaitEvent {
        kind: wait_kind::WAITID,
        flags: wait_flags::UNTRACED_REAPER,
        ..wait
    };
    let Event::WaitDone(done) = decode(&bytes_of(&reaper)).unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!(done.syscall, WaitSyscall::Waitid);
    assert!(done.untraced_reaper);
    assert_eq!(done.status, None);
}

#[test]
fn decodes_signal_records() {
    let generated = SignalGenerateEvent {
        header: header(EventKind::SignalGenerated),
        sig: 10,
        errno: 0,
        code: 0,
        target_pid: 100,
        target_tgid: 100,
        group: 1,
        result: 0,
        syscall: SendSyscall::Kill as u32,
        target_comm: comm_of(b"python3"),
        sender_comm: comm_of(b"sender"),
    };
    assert_eq!(
        decode(&bytes_of(&generated)).unwrap(),
        Event::SignalGenerated(SignalGenerated {
            ts_ns: 5_000,
            tgid: 100,
            tid: 101,
            comm: "sender".into(),
            sig: 10,
            errno: 0,
            code: 0,
            target_pid: 100,
            target_tgid: 100,
            target_comm: "python3".into(),
            group: true,
            result: 0,
            syscall: Some(SendSyscall::Kill),
        })
    );
    let kernel = SignalGenerateEvent {
        syscall: 0,
        ..generated
    };
    let Event::SignalGenerated(g) = decode(&bytes_of(&kernel)).unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!(g.syscall, None);
    let mut delivered = SignalDeliverEvent {
        header: header(EventKind::SignalDelivered),
        sig: 10,
        errno: 0,
        code: -6,
        _pad: 0,
        sa_handler: 0x5555_0000_1234,
        sa_flags: 0x0400_0000,
        py_handler: 0x7f00_0000_0040,
        py_handler_code: 0x7f00_0000_0080,
        py_frames: Default::default(),
    };
    delivered.py_frames[0] = PyFrameRecord {
        code: 0x1000,
        instr: 0x10,
        check: 0,
    };
    delivered.py_frames[1] = PyFrameRecord {
        code: 0x2000,
        instr: 0x20,
        check: 0,
    };
    assert_eq!(
        decode(&bytes_of(&delivered)).unwrap(),
        Event::SignalDelivered(SignalDelivered {
            ts_ns: 5_000,
            tgid: 100,
            tid: 101,
            sig: 10,
            errno: 0,
            code: -6,
            sa_handler: 0x5555_0000_1234,
            sa_flags: 0x0400_0000,
            py_handler: 0x7f00_0000_0040,
            py_handler_code: 0x7f00_0000_0080,
            py_frames: delivered.py_frames[..2].to_vec(),
            native: None,
        })
    );
    // No Python state: no frames.
    let plain = SignalDeliverEvent {
        py_frames: Default::default(),
        ..delivered
    };
    let Event::SignalDelivered(d) = decode(&bytes_of(&plain)).unwrap() else {
        panic!("wrong kind");
    };
    assert!(d.py_frames.is_empty());
    // Each new record is rejected when cut short.
    let bytes = bytes_of(&delivered);
    assert!(matches!(
        decode(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Short { .. })
    ));
}

#[test]
fn rejects_short_and_unknown_records() {
    assert_eq!(
        decode(&[0u8; 4]),
        Err(DecodeError::Short { len: 4, need: 24 })
    );
    let mut unknown = bytes_of(&header(EventKind::FileOpened));
    unknown[0] = 99;
    assert_eq!(decode(&unknown), Err(DecodeError::UnknownKind(99)));
    let short_file = bytes_of(&header(EventKind::FileOpened));
    assert!(matches!(
        decode(&short_file),
        Err(DecodeError::Short { .. })
    ));
}

#[test]
fn py_sample_keeps_depth_frames() {
    let mut sample = PySample {
        header: header(EventKind::PySample),
        depth: 2,
        truncated: 1,
        task: 0x7000,
        task_name: 0x8000,
        gil: tracer_common::py_gil::HELD,
        _gil_pad: 0,
        frames: [PyFrameRecord::default(); PY_MAX_DEPTH],
    };
    sample.frames[0] = PyFrameRecord {
        code: 0x1000,
        instr: 0x2000,
        check: 0,
    };
    sample.frames[1] = PyFrameRecord {
        code: 0x3000,
        instr: 0x4000,
        check: 0,
    };
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&sample as *const PySample).cast::<u8>(),
            size_of::<PySample>(),
        )
    };
    match decode(bytes).unwrap() {
        Event::PySample {
            tgid,
            frames,
            truncated,
            task,
            task_name,
            gil_held,
            ..
        } => {
            assert_eq!(gil_held, Some(true));
            assert_eq!(tgid, 100);
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[1].code, 0x3000);
            assert!(truncated);
            assert_eq!((task, task_name), (0x7000, 0x8000));
        }
        other => panic!("{other:?}"),
    }
    assert!(decode(&bytes[..100]).is_err());
    // A torn walk: flagged, and not taken for a deep stack.
    sample.truncated = PY_SAMPLE_TORN;
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&sample as *const PySample).cast::<u8>(),
            size_of::<PySample>(),
        )
    };
    assert!(matches!(
        decode(bytes).unwrap(),
        Event::PySample {
            torn: true,
            truncated: false,
            ..
        }
    ));
}

#[test]
fn py_stack_event_carries_the_key() {
    let mut event = PyStackEvent {
        header: header(EventKind::PyStack),
        ..PyStackEvent::default()
    };
    event.key.tgid = 100;
    event.key.kind = tracer_common::py_event::OFF_CPU;
    event.key.frames[0].code = 0xabc;
    event.counts.count = 3;
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&event as *const PyStackEvent).cast::<u8>(),
            size_of::<PyStackEvent>(),
        )
    };
    assert_eq!(
        decode(bytes).unwrap(),
        Event::PyStack {
            key: event.key,
            counts: event.counts
        }
    );
    assert!(decode(&bytes[..60]).is_err());
}

/// A copied string: its length, state (compact ASCII / compact UCS-2)
/// and the last bytes of its characters.
fn copy(text: &[u8], length: u64, state: u32) -> PyStringCopy {
    let mut copy = PyStringCopy {
        length,
        state,
        copied: text.len() as u32,
        bytes: [0xee; tracer_common::PY_NAME_BYTES],
    };
    copy.bytes[..text.len()].copy_from_slice(text);
    copy
}

#[test]
fn py_code_names_carry_the_copied_strings() {
    const ASCII: u32 = (1 << 2) | (1 << 5) | (1 << 6);
    const UCS2: u32 = (2 << 2) | (1 << 5);
    let long_path = format!("/srv/{}/app.py", "d".repeat(200));
    let tail = &long_path.as_bytes()[long_path.len() - tracer_common::PY_NAME_BYTES..];
    let event = PyCodeNames {
        header: EventHeader {
            tgid: 100,
            ..header(EventKind::PyCodeNames)
        },
        code: 0x5000,
        check: 0x77,
        first_line: 12,
        _pad: 0,
        name: copy(b"<module>", 8, ASCII),
        // "é1" in UCS-2.
        qualname: copy(&[0xe9, 0, b'1', 0], 2, UCS2),
        filename: copy(tail, long_path.len() as u64, ASCII),
    };
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&event as *const PyCodeNames).cast::<u8>(),
            size_of::<PyCodeNames>(),
        )
    };
    let Event::PyCodeNames(record) = decode(bytes).unwrap() else {
        panic!("not code names");
    };
    assert_eq!(*record, event);
    let names = crate::python::CopiedNames::from_record(&record).unwrap();
    assert_eq!(names.name, "<module>");
    assert_eq!(names.qualname.as_deref(), Some("é1"));
    // Cut at the front: the end of a path is what tells files apart.
    assert_eq!(
        names.filename,
        format!("…{}", String::from_utf8_lossy(tail))
    );
    assert!(names.filename.ends_with("ddd/app.py"));
    assert_eq!(names.first_line, 12);
    assert!(decode(&bytes[..200]).is_err());
    // A qualname copied empty was torn: the name stands in for it.
    let torn = PyCodeNames {
        qualname: copy(b"", 0, ASCII),
        ..event
    };
    let names = crate::python::CopiedNames::from_record(&torn).unwrap();
    assert_eq!(names.qualname, None);
    assert_eq!(
        names
            .into_code_info(crate::python::layout::LineTableKind::Locations)
            .qualname,
        "<module>"
    );
    // A name or file whose characters could not be read is no copy: the
    // frame is not named "" by it.
    let unread_file = PyCodeNames {
        filename: PyStringCopy {
            copied: 0,
            ..event.filename
        },
        ..event
    };
    assert_eq!(crate::python::CopiedNames::from_record(&unread_file), None);
    let nameless = PyCodeNames {
        name: copy(b"", 0, ASCII),
        ..event
    };
    assert_eq!(crate::python::CopiedNames::from_record(&nameless), None);
}

/// Before 3.11 there is no `co_qualname`: nothing copied, no qualname.
#[test]
fn a_string_not_copied_is_none() {
    assert_eq!(crate::python::copied_str(0, 0, &[]), None);
    // Not compact (a legacy string): not read.
    assert_eq!(crate::python::copied_str(3, 1 << 6, b"abc"), None);
    // The empty string is a string.
    let ascii = (1 << 2) | (1 << 5) | (1 << 6);
    assert_eq!(
        crate::python::copied_str(0, ascii, &[]).as_deref(),
        Some("")
    );
}

#[test]
fn py_fork_stack_carries_the_child_and_its_frames_up_to_the_first_empty() {
    let mut event = PyForkEvent {
        header: header(EventKind::PyForkStack),
        child: 4243,
        ..PyForkEvent::default()
    };
    event.header.tgid = 100;
    for (i, frame) in event.frames.iter_mut().take(6).enumerate() {
        frame.code = 0x1000 * (i as u64 + 1);
        frame.instr = i as u64;
    }
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&event as *const PyForkEvent).cast::<u8>(),
            size_of::<PyForkEvent>(),
        )
    };
    assert_eq!(
        decode(bytes).unwrap(),
        Event::PyForkStack {
            tgid: 100,
            child: 4243,
            frames: event.frames[..6].to_vec(),
            native: None,
        }
    );
    assert!(decode(&bytes[..100]).is_err());
}

/// A process unwound natively: the fork's record carries the forking
/// thread's native stack after its Python frames, up to its depth.
#[test]
fn py_native_fork_stack_carries_the_native_addresses() {
    let mut record = PyNativeForkEvent {
        fork: PyForkEvent {
            header: header(EventKind::PyNativeForkStack),
            child: 4243,
            ..PyForkEvent::default()
        },
        native_depth: 3,
        native_end: tracer_common::native_end::COMPLETE,
        native: [0; tracer_common::NATIVE_MAX_DEPTH],
    };
    record.fork.frames[0].code = 0x1000;
    record.native[..4].copy_from_slice(&[0x7f00, 0x7f10, 0x5500, 0xdead]);
    let Event::PyForkStack {
        tgid,
        child,
        frames,
        native: Some(native),
    } = decode(&bytes_of(&record)).unwrap()
    else {
        panic!("not a fork stack with a native stack");
    };
    assert_eq!((tgid, child), (100, 4243));
    assert_eq!(frames, record.fork.frames[..1].to_vec());
    assert_eq!(native.addresses, vec![0x7f00, 0x7f10, 0x5500]);
    assert_eq!(native.end, tracer_common::native_end::COMPLETE);
    let bytes = bytes_of(&record);
    assert!(decode(&bytes[..bytes.len() - 1]).is_err());
}

/// A delivery in a process unwound natively: its native stack where the
/// signal interrupted the thread; none when no Python stack was captured.
#[test]
fn signal_native_delivered_carries_the_native_addresses() {
    let mut record = SignalNativeDeliverEvent {
        deliver: SignalDeliverEvent {
            header: header(EventKind::SignalNativeDelivered),
            sig: 10,
            ..SignalDeliverEvent::default()
        },
        native_depth: 2,
        native_end: tracer_common::native_end::NO_MAPPING,
        native: [0; tracer_common::NATIVE_MAX_DEPTH],
    };
    record.deliver.py_frames[0].code = 0x1000;
    record.native[..2].copy_from_slice(&[0x7f00, 0x7f10]);
    let Event::SignalDelivered(d) = decode(&bytes_of(&record)).unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!((d.tgid, d.tid, d.sig), (100, 101, 10));
    assert_eq!(d.py_frames, record.deliver.py_frames[..1].to_vec());
    let native = d.native.expect("a native stack");
    assert_eq!(native.addresses, vec![0x7f00, 0x7f10]);
    assert_eq!(native.end, tracer_common::native_end::NO_MAPPING);
    record.native_depth = 0;
    record.deliver.py_frames[0].code = 0;
    let Event::SignalDelivered(d) = decode(&bytes_of(&record)).unwrap() else {
        panic!("wrong kind");
    };
    assert!(d.py_frames.is_empty() && d.native.is_none());
}

/// What a report (and the continuous modes' `tracer_events_lost`) counts
/// as lost: every drop and every program run the kernel skipped.
#[test]
fn runs_the_kernel_skipped_are_events_lost() {
    let mut maps = MapSnapshot::default();
    assert_eq!(maps.lost(), 0);
    maps.drops[tracer_common::drops::RINGBUF as usize] = 3;
    maps.drops[tracer_common::drops::TABLES as usize] = 2;
    assert_eq!(maps.lost(), 5);
    maps.skipped_runs = 7;
    assert_eq!(maps.lost(), 12);
}

#[test]
fn decodes_oom_kills_with_their_cgroup_path_outermost_first() {
    let name = |text: &str| {
        let mut bytes = [0u8; tracer_common::OOM_CGROUP_NAME];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        bytes
    };
    let mut event = tracer_common::OomKillEvent {
        header: header(EventKind::OomKill),
        victim_tgid: 200,
        victim_tid: 201,
        totalpages: 51_200,
        memcg_max_pages: 51_200,
        memcg_usage_pages: 51_190,
        memcg_id: 77,
        rss_pages: [10, 20, 0, 3],
        total_vm_pages: 90,
        cgroup_depth: 2,
        ..Default::default()
    };
    event.victim_comm[..7].copy_from_slice(b"python3");
    event.cgroup_names[0] = name("worker");
    event.cgroup_names[1] = name("app.slice");
    let Event::OomKill(kill) = decode(&bytes_of(&event)).unwrap() else {
        panic!("not an OOM kill");
    };
    assert_eq!((kill.trigger_tgid, kill.trigger_tid), (100, 101));
    assert_eq!((kill.victim_tgid, kill.victim_tid), (200, 201));
    assert_eq!(kill.victim_comm, "python3");
    assert_eq!(kill.rss_pages, [10, 20, 0, 3]);
    let cgroup = kill.cgroup.clone().expect("a cgroup's limit");
    assert_eq!(cgroup.path, "/app.slice/worker");
    assert_eq!(
        (cgroup.id, cgroup.max_pages, cgroup.usage_pages),
        (77, 51_200, 51_190)
    );
    // Deeper than was read: said; no cgroup: the node.
    event.cgroup_truncated = 1;
    let Event::OomKill(kill) = decode(&bytes_of(&event)).unwrap() else {
        panic!("not an OOM kill");
    };
    assert_eq!(kill.cgroup.unwrap().path, "/.../app.slice/worker");
    event.memcg_max_pages = u64::MAX;
    let Event::OomKill(kill) = decode(&bytes_of(&event)).unwrap() else {
        panic!("not an OOM kill");
    };
    assert_eq!(kill.cgroup, None);
}
