//! Small reports and rows that several tests build on.

use super::{
    FileIo, Frame, Latency, ProcessInfo, Report, SignalGroup, SignalPeer, SignalTarget, Zombie,
};

/// `/proc/self/status` read in 1 KiB requests: 200 opens of a 1.4 KB file.
pub fn proc_status(syscalls: u64) -> FileIo {
    let mut f = FileIo {
        pid: 5,
        path: "/proc/self/status".into(),
        fs: "proc".into(),
        blksize: Some(1024),
        syscalls,
        bytes: 200 * 1400,
        opens: 200,
        kernel_ns: 2_000_000,
        ..Default::default()
    };
    f.request_sizes.insert("1024".into(), syscalls);
    f.by_syscall.insert("read".into(), syscalls);
    f
}

pub fn zombie(pid: u32, ppid: u32, ns: u64, how: &str) -> Zombie {
    Zombie {
        pid,
        ppid,
        comm: "true".into(),
        exit_code: Some(0),
        zombie_ns: ns,
        reaped_how: how.into(),
        reaped_by: (how == "wait4").then_some(ppid),
        reaped_by_comm: (how == "wait4").then(|| "python3".into()),
        sigchld: Some("ignored".into()),
        ..Default::default()
    }
}

/// podman's container `tr-probe`.
pub fn container() -> super::Container {
    super::Container {
        id: "88f77ad080408287b4160044c306776b1ce4465b454c4b9e9a7b434e156f911a".into(),
        runtime: "podman".into(),
        name: Some("tr-probe".into()),
        ..Default::default()
    }
}

/// A worker (pid 812) that never waits: 37 zombies still there at the end,
/// one reaped, and a child killed by SIGKILL.
pub fn worker_report() -> Report {
    let mut r = Report::default();
    r.processes.push(ProcessInfo {
        pid: 812,
        comm: "python3".into(),
        argv: vec!["python3".into(), "worker.py".into()],
        ..Default::default()
    });
    r.processes.push(ProcessInfo {
        pid: 900,
        ppid: 812,
        comm: "sleep".into(),
        exit_signal: Some("SIGKILL".into()),
        exit_signo: Some(9),
        exit_s: Some(1.5),
        ..Default::default()
    });
    for i in 0..37 {
        r.zombies.push(zombie(
            1000 + i,
            812,
            12_400_000_000 - i as u64,
            "still_zombie",
        ));
    }
    r.zombies.push(zombie(2000, 812, 5_000, "wait4"));
    r
}

/// SIGUSR1 from python3 (pid 812) to itself, 5 generated and delivered.
pub fn signal_group() -> SignalGroup {
    SignalGroup {
        signal: "SIGUSR1".into(),
        signo: 10,
        sender: SignalPeer {
            pid: 812,
            tid: 812,
            comm: "python3".into(),
            kernel: false,
            oom_killer: false,
        },
        target: SignalTarget {
            pid: 812,
            tid: None,
            comm: "python3".into(),
        },
        target_traced: true,
        code: "SI_USER".into(),
        generated: 5,
        delivered: 5,
        disposition: Some("handler".into()),
        latency_ns: Some(Latency {
            p50: 1_000,
            p99: 2_000,
            max: 3_000,
        }),
        ..Default::default()
    }
}

/// `signal_group` plus a SIGTERM never delivered and a SIGPIPE ignored.
pub fn signals_report() -> Report {
    let mut r = Report::default();
    r.signals.push(signal_group());
    let mut term = signal_group();
    term.signal = "SIGTERM".into();
    term.signo = 15;
    term.sender.pid = 1;
    term.sender.comm = "systemd".into();
    term.generated = 1;
    term.delivered = 0;
    term.pending_at_end = 1;
    term.disposition = None;
    term.latency_ns = None;
    r.signals.push(term);
    let mut pipe = signal_group();
    pipe.signal = "SIGPIPE".into();
    pipe.sender = SignalPeer {
        comm: "kernel".into(),
        kernel: true,
        ..Default::default()
    };
    pipe.generated = 1;
    pipe.delivered = 0;
    pipe.ignored = 1;
    pipe.disposition = Some("ignored".into());
    pipe.latency_ns = None;
    r.signals.push(pipe);
    r
}

/// A Python frame of function `name` running line `line` of `file` (its
/// `def` on line 1).
pub fn python_frame(name: &str, file: &str, line: u32) -> crate::frame::Frame {
    crate::frame::Frame {
        qualname: name.into(),
        function: name.into(),
        file: file.into(),
        line,
        first_line: 1,
        native: false,
    }
}

/// The frames of a `subprocess.Popen` made on line `line` of /abs/wl.py.
pub fn popen_frames(line: u32) -> Vec<crate::frame::Frame> {
    [
        "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)".to_owned(),
        "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)".to_owned(),
        format!("spawn (/abs/wl.py:{line})"),
        "<module> (/abs/wl.py:20)".to_owned(),
    ]
    .iter()
    .map(|f| frame(f))
    .collect()
}

/// A frame from its text form (as `Frame`'s `Display` writes it).
pub fn frame(text: &str) -> Frame {
    Frame::parse(text).unwrap_or_else(|| panic!("not a frame: {text}"))
}
