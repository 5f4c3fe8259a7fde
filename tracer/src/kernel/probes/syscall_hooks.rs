//! How the syscall, fork and exit programs are hooked. Raw tracepoints:
//! the cheapest, detached in a millisecond. But since syscall tracepoints
//! may fault (6.14: `tracepoint_ext.faultable` in BTF), the kernel runs
//! raw tracepoint programs with only migration disabled, and a kernel that
//! preempts kernel code (7.x's lazy preemption, `preempt=full`, RT) can
//! preempt a run: the program stays marked running on that CPU for the rest
//! of the time slice, and every other task's event there skips it
//! (measured in Debian sid's 7.2: thousands of skipped runs a trace).
//! There the same programs are attached a second time, as perf-event
//! tracepoints, whose path keeps preemption off around a run: second
//! copies, which do the work only for the events the first skipped
//! (`tracer-ebpf/src/skips.rs`). They must run after the first: the order
//! is checked once ([`check_order`]).
//!
//! `TRACER_SYSCALL_HOOKS=perf` runs the programs as perf-event tracepoints
//! alone: none skipped, but a CPU sample that lands inside one of them is
//! not taken (the kernel runs one perf-path or sampler BPF program per CPU
//! at a time; about half the samples of a Python loop making a syscall per
//! iteration). `TRACER_SYSCALL_HOOKS=raw`: raw tracepoints alone, the
//! skipped runs counted; `both`: second copies on any kernel.

use std::{
    io::Read as _,
    os::fd::{BorrowedFd, OwnedFd},
    path::Path,
};

use crate::{
    host::procfs,
    kernel::{mount_ns, perf_event},
};

/// The environment variable that forces the hooks: `raw`, `perf` or
/// `both`.
pub const OVERRIDE: &str = "TRACER_SYSCALL_HOOKS";

/// The raw tracepoints whose programs fire in preemptible task context,
/// each with its perf-event program and the event's tracefs directory.
/// (`sched_process_exec` stays raw: its program reads the `linux_binprm`
/// the raw tracepoint passes, one exec per process.)
pub const PERF_PROGRAMS: [(&str, &str, &str); 4] = [
    ("sys_enter", "sys_enter_perf", "raw_syscalls/sys_enter"),
    ("sys_exit", "sys_exit_perf", "raw_syscalls/sys_exit"),
    (
        "sched_process_fork",
        "sched_process_fork_perf",
        "sched/sched_process_fork",
    ),
    (
        "sched_process_exit",
        "sched_process_exit_perf",
        "sched/sched_process_exit",
    ),
];

/// The perf events of the raw tracepoints' programs, from tracefs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfEvents {
    /// Each raw tracepoint's perf event id.
    ids: Vec<(&'static str, u64)>,
    /// Where the fork record has the child's pid.
    fork_child_pid_at: u32,
}

impl PerfEvents {
    /// Events with these ids, in `PERF_PROGRAMS`' order (tests).
    #[cfg(test)]
    pub fn numbered(first_id: u64, fork_child_pid_at: u32) -> Self {
        Self {
            ids: (first_id..)
                .zip(PERF_PROGRAMS)
                .map(|(id, (tracepoint, ..))| (tracepoint, id))
                .collect(),
            fork_child_pid_at,
        }
    }

    /// The perf event id for the raw tracepoint `tracepoint`, and the
    /// program for it.
    fn of(&self, tracepoint: &str) -> Option<(u64, &'static str)> {
        let id = self.ids.iter().find(|(name, _)| *name == tracepoint)?.1;
        let program = PERF_PROGRAMS.iter().find(|p| p.0 == tracepoint)?.1;
        Some((id, program))
    }
}

/// How those programs are hooked on this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hooks {
    Raw,
    /// Perf-event tracepoints instead of raw ones.
    Perf(PerfEvents),
    /// Raw tracepoints, each followed by its perf-event program as a
    /// second copy.
    RawWithSecondCopies(PerfEvents),
}

impl Hooks {
    /// The perf event id that replaces the raw tracepoint `tracepoint`,
    /// and the program for it, if hooked that way.
    pub fn perf(&self, tracepoint: &str) -> Option<(u64, &'static str)> {
        match self {
            Self::Perf(events) => events.of(tracepoint),
            _ => None,
        }
    }

    /// The perf event id and program of the second copy that follows the
    /// program of the raw tracepoint `tracepoint`, if one does.
    pub fn second_copy(&self, tracepoint: &str) -> Option<(u64, &'static str)> {
        match self {
            Self::RawWithSecondCopies(events) => events.of(tracepoint),
            _ => None,
        }
    }

    pub fn fork_child_pid_at(&self) -> u32 {
        match self {
            Self::Perf(events) | Self::RawWithSecondCopies(events) => events.fork_child_pid_at,
            Self::Raw => 0,
        }
    }
}

/// How the kernel preempts kernel code, and who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    /// `none`, `voluntary`, `full`, `lazy` or `rt`.
    pub model: String,
    pub source: &'static str,
}

impl Preemption {
    /// Whether a run of kernel code may be preempted anywhere.
    pub fn preempts(&self) -> bool {
        matches!(self.model.as_str(), "full" | "lazy" | "rt")
    }
}

/// The preemption model, from the first that says: the scheduler's own
/// debugfs file (`sched_preempt`: "none voluntary full (lazy)", the
/// current one in parentheses), the command line's `preempt=`, the build
/// configuration (read only when the others say nothing: it is big).
pub fn preemption(
    sched_preempt: Option<&str>,
    cmdline: Option<&str>,
    config: impl FnOnce() -> Option<String>,
) -> Option<Preemption> {
    let current = sched_preempt.and_then(|text| {
        let open = text.find('(')?;
        let close = text[open..].find(')')? + open;
        Some(text[open + 1..close].trim().to_owned())
    });
    if let Some(model) = current.filter(|m| !m.is_empty()) {
        return Some(Preemption {
            model,
            source: "/sys/kernel/debug/sched/preempt",
        });
    }
    let asked = cmdline.and_then(|line| {
        line.split_whitespace()
            .filter_map(|word| word.strip_prefix("preempt="))
            .next_back()
            .map(str::to_owned)
    });
    if let Some(model) = asked {
        return Some(Preemption {
            model,
            source: "the kernel's command line",
        });
    }
    let config = config()?;
    let set = |option: &str| config.lines().any(|line| line == format!("{option}=y"));
    let model = [
        ("CONFIG_PREEMPT_RT", "rt"),
        ("CONFIG_PREEMPT_LAZY", "lazy"),
        ("CONFIG_PREEMPT", "full"),
        ("CONFIG_PREEMPT_VOLUNTARY", "voluntary"),
        ("CONFIG_PREEMPT_NONE", "none"),
    ]
    .into_iter()
    .find(|(option, _)| set(option))?
    .1;
    Some(Preemption {
        model: model.into(),
        source: "the kernel's build configuration",
    })
}

/// This kernel's preemption model, where it says.
fn this_kernel_preemption() -> Option<Preemption> {
    let sched_preempt = std::fs::read_to_string("/sys/kernel/debug/sched/preempt").ok();
    let config = || {
        procfs::kernel_config_gz()
            .and_then(|gz| {
                let mut text = String::new();
                flate2::read::GzDecoder::new(gz.as_slice())
                    .read_to_string(&mut text)
                    .ok()?;
                Some(text)
            })
            .or_else(|| {
                let release = procfs::kernel_release()?;
                std::fs::read_to_string(format!("/boot/config-{release}")).ok()
            })
    };
    preemption(
        sched_preempt.as_deref(),
        procfs::kernel_cmdline().as_deref(),
        config,
    )
}

/// Chooses the hooks. Raw tracepoints; where syscall tracepoints may fault
/// (`faultable`, from BTF) and the kernel preempts kernel code (or does not
/// say whether), each with its second copy, which takes the events the
/// kernel skips the first for. `TRACER_SYSCALL_HOOKS` forces `raw` (no
/// copies: the skipped runs are counted, and `warnings` say why), `both`
/// (the copies, on any kernel) or
/// `perf` (perf-event tracepoints: none skipped, but a CPU sample that
/// lands inside one of them is lost; measured, about half of them in a
/// Python loop that makes a syscall per iteration). A perf path that
/// cannot be set up falls back, said.
pub fn choose(faultable: bool, fetching_atomics: bool, warnings: &mut Vec<String>) -> Hooks {
    let mut forced = std::env::var(OVERRIDE).ok();
    if let Some(other) = forced
        .as_deref()
        .filter(|f| !["raw", "perf", "both"].contains(f))
    {
        warnings.push(format!(
            "{OVERRIDE}={other:?}: not `raw`, `perf` or `both`, ignored"
        ));
        forced = None;
    }
    let both = forced.as_deref() == Some("both");
    if both {
        forced = None;
    }
    if forced.as_deref() != Some("perf") {
        let preemption = faultable.then(this_kernel_preemption).flatten();
        if !both && (!faultable || preemption.as_ref().is_some_and(|p| !p.preempts())) {
            return Hooks::Raw;
        }
        let why = preemption.map_or_else(
            || "whether it preempts kernel code is not known".to_owned(),
            |p| format!("it preempts kernel code ({}: {})", p.source, p.model),
        );
        if forced.is_some() {
            warnings.push(format!(
                "{OVERRIDE}=raw: this kernel's syscall tracepoints may fault and {why}: a run \
                 of the syscall, fork or exit programs that is preempted makes other tasks' \
                 events on that CPU skip them meanwhile (counted as skipped runs), which by \
                 default second copies of them take"
            ));
            return Hooks::Raw;
        }
        return match perf_events() {
            Ok(events) => {
                log::debug!(
                    "this kernel's syscall tracepoints may fault and {why}: the syscall, fork \
                     and exit programs have second copies, for the runs the kernel skips"
                );
                Hooks::RawWithSecondCopies(events)
            }
            Err(err) => {
                warnings.push(format!(
                    "this kernel's syscall tracepoints may fault and {why}: a run of the \
                     syscall, fork or exit programs that is preempted makes other tasks' events \
                     on that CPU skip them meanwhile (counted as skipped runs), and the \
                     perf-event tracepoints that would take them are not usable ({err})"
                ));
                Hooks::Raw
            }
        };
    }
    // The perf programs are the ones with the per-descriptor rows.
    if !fetching_atomics {
        warnings.push(format!(
            "{OVERRIDE}=perf: this kernel's BPF has no fetching atomics (Linux 5.12), which the \
             perf-event programs use: raw tracepoints are used"
        ));
        return Hooks::Raw;
    }
    match perf_events() {
        Ok(events) => {
            warnings.push(format!(
                "{OVERRIDE}=perf: the syscall, fork and exit programs run as perf-event \
                 tracepoints (no run skipped); a CPU sample that lands inside one of them is \
                 not taken"
            ));
            Hooks::Perf(events)
        }
        Err(err) => {
            warnings.push(format!(
                "{OVERRIDE}=perf, but the perf-event tracepoints are not usable ({err}): raw \
                 tracepoints are used, and runs the kernel skips are counted"
            ));
            Hooks::Raw
        }
    }
}

/// Checks that the second copies run after the first ones (the kernel
/// runs a tracepoint's programs in the order they came, the perf-event
/// ones at the place of the first perf event on it, maybe another
/// tool's). A thread named `ORDER_CHECK_COMM` makes events the first
/// copies mark and, in order, the second ones take the marks of: a
/// `close` whose entry, then one whose exit, the syscall hooks take for a
/// traced thread's, and a thread it starts, which ends. `mark_left`: the
/// mark of a key, if left (for the syscalls, whose first 32 bits say the
/// hook the first copy ran for, 0 once taken). Returns the tracepoints
/// whose marks are left.
pub fn check_order(
    mark_left: impl Fn(u64) -> Option<u64> + Sync,
) -> Result<Vec<&'static str>, String> {
    use tracer_common::skips::{
        EXIT, FORK, ORDER_CHECK_COMM, ORDER_CHECK_ENTER_FD, ORDER_CHECK_EXIT_FD, SYS_ENTER, mark,
    };
    let name = String::from_utf8_lossy(&ORDER_CHECK_COMM)
        .trim_end_matches('\0')
        .to_owned();
    let syscall_hook_left = |tid: u32| mark_left(mark(SYS_ENTER, tid)).map_or(0, |m| m as u32);
    let mut out_of_order = Vec::new();
    let (checker, ended) = std::thread::scope(|scope| {
        let checker = std::thread::Builder::new()
            .name(name)
            .spawn_scoped(scope, || {
                // SAFETY: gettid has no arguments; close of descriptors no
                // process can have (past any limit).
                let tid = unsafe { libc::gettid() } as u32;
                unsafe { libc::close(ORDER_CHECK_ENTER_FD as i32) };
                let enter_left = syscall_hook_left(tid) != 0;
                unsafe { libc::close(ORDER_CHECK_EXIT_FD as i32) };
                let exit_left = syscall_hook_left(tid) != 0;
                // Named as its starter: a thread's name is inherited.
                let ended = std::thread::spawn(|| unsafe { libc::gettid() } as u32).join();
                (tid, enter_left, exit_left, ended)
            })
            .map_err(|err| format!("starting the order check's thread: {err}"))?;
        let (tid, enter_left, exit_left, ended) = checker
            .join()
            .map_err(|_| "the order check's thread panicked".to_owned())?;
        let ended = ended.map_err(|_| "the order check's thread panicked".to_owned())?;
        if enter_left {
            out_of_order.push("sys_enter");
        }
        if exit_left {
            out_of_order.push("sys_exit");
        }
        Ok::<_, String>((tid, ended))
    })?;
    // The thread's exit hooks have run once the kernel has released it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while procfs::own_thread_exists(ended) {
        if std::time::Instant::now() > deadline {
            return Err(format!("thread {ended} of the order check did not end"));
        }
        std::thread::yield_now();
    }
    if mark_left(mark(FORK, checker)).is_some() {
        out_of_order.push("sched_process_fork");
    }
    if mark_left(mark(EXIT, ended)).is_some() {
        out_of_order.push("sched_process_exit");
    }
    Ok(out_of_order)
}

/// The perf events of [`PERF_PROGRAMS`], from tracefs (mounted where it
/// usually is, or else in a mount namespace of a thread's own), after
/// checking their records have what the programs read: `id` at byte 8 and
/// `ret` at 16 for the syscalls, and where the fork's `child_pid` is.
fn perf_events() -> Result<PerfEvents, String> {
    for events in [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ] {
        if Path::new(events).join("raw_syscalls").is_dir() {
            return events_in(Path::new(events));
        }
    }
    std::thread::spawn(|| {
        private_tracefs(c"/sys/kernel/tracing")?;
        events_in(Path::new("/sys/kernel/tracing/events"))
    })
    .join()
    .map_err(|_| "the thread reading tracefs panicked".to_owned())?
}

/// Mounts tracefs at `dir` in a mount namespace of this thread alone (its
/// own file-system context first): nothing outside sees it.
fn private_tracefs(dir: &std::ffi::CStr) -> Result<(), String> {
    mount_ns::make_private_to_this_thread()?;
    mount_ns::mount(c"tracefs", dir)
}

fn events_in(events: &Path) -> Result<PerfEvents, String> {
    let mut ids = Vec::new();
    let mut fork_child_pid_at = 0;
    for (tracepoint, _, event) in PERF_PROGRAMS {
        let dir = events.join(event);
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map_err(|err| format!("{}: {err}", dir.join(file).display()))
        };
        let format = read("format")?;
        let wrong = |what: &str| format!("{event}'s record has no {what}");
        match tracepoint {
            "sys_enter" | "sys_exit" if field_offset(&format, "id") != Some(8) => {
                return Err(wrong("`id` at byte 8"));
            }
            "sys_exit" if field_offset(&format, "ret") != Some(16) => {
                return Err(wrong("`ret` at byte 16"));
            }
            "sched_process_fork" => {
                fork_child_pid_at =
                    field_offset(&format, "child_pid").ok_or_else(|| wrong("`child_pid`"))?;
            }
            _ => {}
        }
        let id = read("id")?
            .trim()
            .parse()
            .map_err(|err| format!("{}: {err}", dir.join("id").display()))?;
        ids.push((tracepoint, id));
    }
    Ok(PerfEvents {
        ids,
        fork_child_pid_at,
    })
}

/// Where a tracefs event `format` has the field `name`
/// (`field:long id;\toffset:8;\tsize:8;\tsigned:1;`).
fn field_offset(format: &str, name: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let mut parts = line.trim().split(';').map(str::trim);
        let declared = parts.next()?.strip_prefix("field:")?;
        let last = declared.split_whitespace().next_back()?;
        if last != name && !last.starts_with(&format!("{name}[")) {
            return None;
        }
        parts.find_map(|p| p.strip_prefix("offset:")?.parse().ok())
    })
}

const PERF_TYPE_TRACEPOINT: u32 = 2;

/// Runs `program` (a loaded tracepoint program) at every CPU's
/// occurrences of the tracepoint `id`: one event puts it in the
/// tracepoint's program list, which runs wherever the tracepoint fires.
/// Closing the returned descriptor detaches it.
pub fn attach(program: BorrowedFd<'_>, id: u64) -> std::io::Result<OwnedFd> {
    let mut attr = perf_event::attr(PERF_TYPE_TRACEPOINT);
    attr[8..16].copy_from_slice(&id.to_ne_bytes()); // config
    attr[16..24].copy_from_slice(&1u64.to_ne_bytes()); // sample_period
    perf_event::open_with_program(&attr, program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preemption_model_comes_from_the_first_that_says() {
        let model = |p: Option<Preemption>| p.map(|p| (p.model.clone(), p.preempts()));
        // The configuration is not read when debugfs or the command line say.
        let unread = || -> Option<String> { panic!("the configuration was read") };
        let config = |text: &'static str| move || Some(text.to_owned());
        // sid's 7.2, as its debugfs says it.
        assert_eq!(
            model(preemption(Some("full (lazy)\n"), None, unread)),
            Some(("lazy".into(), true))
        );
        assert_eq!(
            model(preemption(
                Some("(none) voluntary full lazy\n"),
                Some("preempt=full"),
                unread
            )),
            Some(("none".into(), false))
        );
        assert_eq!(
            model(preemption(
                None,
                Some("ro preempt=lazy quiet preempt=voluntary"),
                unread
            )),
            Some(("voluntary".into(), false))
        );
        let voluntary_off = "# CONFIG_PREEMPT_VOLUNTARY is not set\nCONFIG_PREEMPT_NONE=y\nCONFIG_PREEMPT_DYNAMIC=y\n";
        assert_eq!(
            model(preemption(None, Some("ro quiet"), config(voluntary_off))),
            Some(("none".into(), false))
        );
        let lazy = "CONFIG_PREEMPT_BUILD=y\nCONFIG_PREEMPT_LAZY=y\nCONFIG_PREEMPT_COUNT=y\n";
        assert_eq!(
            model(preemption(None, None, config(lazy))),
            Some(("lazy".into(), true))
        );
        assert_eq!(
            model(preemption(None, Some("ro"), config("CONFIG_X=y\n"))),
            None
        );
        assert_eq!(model(preemption(Some(""), None, || None)), None);
    }

    #[test]
    fn a_field_is_found_at_its_offset_in_a_tracefs_format() {
        let format = "name: sys_enter\nID: 22\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
            \tfield:long id;\toffset:8;\tsize:8;\tsigned:1;\n\
            \tfield:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;\n";
        assert_eq!(field_offset(format, "id"), Some(8));
        assert_eq!(field_offset(format, "args"), Some(16));
        assert_eq!(field_offset(format, "common_pid"), Some(4));
        assert_eq!(field_offset(format, "ret"), None);
        assert_eq!(field_offset(format, "i"), None);
    }

    /// The development kernel's tracefs has every event, laid out as the
    /// programs read them (found mounted, or mounted privately).
    #[test]
    fn the_perf_events_are_found() {
        let events = perf_events().unwrap();
        let ids: Vec<u64> = PERF_PROGRAMS
            .iter()
            .map(|p| events.of(p.0).unwrap().0)
            .collect();
        assert!(ids.iter().all(|&id| id > 0), "{ids:?}");
        assert_eq!(events.of("sys_exit").unwrap().1, "sys_exit_perf");
        assert!(events.of("sched_switch").is_none());
        // Mounted privately on a thread of its own, tracefs says the same,
        // and this process's mounts are as they were.
        let tracefs_mounts = || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .matches(" - tracefs ")
                .count()
        };
        let before = tracefs_mounts();
        let dir = std::env::temp_dir().join(format!("tracer-tracefs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let at = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        let events_dir = dir.join("events");
        let private = std::thread::spawn(move || {
            private_tracefs(&at)?;
            events_in(&events_dir)
        })
        .join()
        .unwrap();
        assert_eq!(private.as_ref(), Ok(&events));
        assert_eq!(tracefs_mounts(), before);
        std::fs::remove_dir(&dir).unwrap();
        // After the 8 bytes of `common_*` fields and the parent's.
        let at = events.fork_child_pid_at;
        assert!(at > 8 && at.is_multiple_of(4), "{events:?}");
    }
}
