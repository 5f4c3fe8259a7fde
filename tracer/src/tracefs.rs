//! tracefs: find (or mount) it, and read tracepoint field offsets from the
//! `format` files so the BPF programs never depend on one kernel's layout.

use std::{
    collections::HashMap,
    ffi::CString,
    fs,
    path::{Path, PathBuf},
};

use tracer_common::{LifecycleOffsets, TracepointOffsets};

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error(
        "cannot read tracefs at {path} ({source}): reading tracepoint formats needs root, or \
         read access to tracefs (it is mode {mode:o} here) besides CAP_BPF and CAP_PERFMON"
    )]
    Denied {
        path: PathBuf,
        mode: u32,
        source: std::io::Error,
    },
    #[error(
        "tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {0}. \
         Mount it by hand (`mount -t tracefs nodev /sys/kernel/tracing`) or enable \
         CONFIG_TRACING in the kernel"
    )]
    Mount(std::io::Error),
    #[error("cannot read {path}: {source}. Is the kernel built with CONFIG_FTRACE_SYSCALLS?")]
    ReadFormat {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tracepoint {event} has no field `{field}` (kernel too old or too new?)")]
    MissingField { event: String, field: String },
}

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Returns the tracefs root, mounting it at `/sys/kernel/tracing` if no
/// candidate is mounted (aya looks in these two places and never mounts).
pub fn ensure_mounted() -> Result<PathBuf, TracefsError> {
    for candidate in CANDIDATES {
        match fs::metadata(Path::new(candidate).join("events")) {
            Ok(meta) if meta.is_dir() => return Ok(PathBuf::from(candidate)),
            // Mounted, but this user may not look inside (tracefs is 0700):
            // mounting it again would not help.
            Err(source) if source.kind() == std::io::ErrorKind::PermissionDenied => {
                use std::os::unix::fs::PermissionsExt;
                let mode = fs::metadata(candidate).map_or(0, |m| m.permissions().mode() & 0o7777);
                return Err(TracefsError::Denied {
                    path: PathBuf::from(candidate),
                    mode,
                    source,
                });
            }
            _ => {}
        }
    }
    let target = CANDIDATES[0];
    let (source, dir, fstype) = (
        c"nodev",
        CString::new(target).unwrap_or_default(),
        c"tracefs",
    );
    // SAFETY: all pointers are valid NUL-terminated strings; data is null.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            dir.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(TracefsError::Mount(std::io::Error::last_os_error()));
    }
    log::info!("mounted tracefs at {target}");
    Ok(PathBuf::from(target))
}

/// The fields of one tracepoint: name -> byte offset.
#[derive(Debug, Default, Clone)]
pub struct EventFormat {
    pub event: String,
    pub fields: HashMap<String, u32>,
    pub print_fmt: String,
}

impl EventFormat {
    /// Parses a tracefs `format` file.
    pub fn parse(event: &str, text: &str) -> Self {
        let mut fields = HashMap::new();
        let mut print_fmt = String::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("print fmt:") {
                print_fmt = rest.trim().to_owned();
                continue;
            }
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let mut parts = rest.split(';').map(str::trim);
            let Some(decl) = parts.next() else { continue };
            let offset = parts
                .find_map(|p| p.strip_prefix("offset:"))
                .and_then(|o| o.trim().parse::<u32>().ok());
            if let (Some(name), Some(offset)) = (field_name(decl), offset) {
                fields.insert(name.to_owned(), offset);
            }
        }
        Self {
            event: event.to_owned(),
            fields,
            print_fmt,
        }
    }

    pub fn offset(&self, field: &str) -> Result<u32, TracefsError> {
        self.fields
            .get(field)
            .copied()
            .ok_or_else(|| TracefsError::MissingField {
                event: self.event.clone(),
                field: field.to_owned(),
            })
    }
}

/// `char prev_comm[16]` -> `prev_comm`; `__data_loc char[] comm` -> `comm`.
fn field_name(decl: &str) -> Option<&str> {
    let last = decl.split_whitespace().last()?;
    let name = last.split('[').next()?;
    let name = name.trim_start_matches('*');
    (!name.is_empty()).then_some(name)
}

/// Reads `events/<category>/<name>/format` under `root`.
pub fn read_format(root: &Path, category: &str, name: &str) -> Result<EventFormat, TracefsError> {
    let path = root.join("events").join(category).join(name).join("format");
    let text = fs::read_to_string(&path).map_err(|source| TracefsError::ReadFormat {
        path: path.clone(),
        source,
    })?;
    Ok(EventFormat::parse(&format!("{category}:{name}"), &text))
}

/// The mask of `prev_state` bits that mean "went to sleep". The kernel reports
/// preemption as `TASK_REPORT_MAX` (one bit above the report states), which
/// the print fmt of `sched_switch` shows as `R+`. Derived from the highest
/// flag in `__print_flags(...)`; 0xff (kernel 4.14+) if it cannot be found.
pub fn task_state_mask(sched_switch_print_fmt: &str) -> u64 {
    const DEFAULT: u64 = 0xff;
    let Some(flags) = sched_switch_print_fmt.split("__print_flags(").nth(1) else {
        return DEFAULT;
    };
    let highest = flags
        .split('{')
        .skip(1)
        .filter_map(|entry| entry.split(',').next())
        .filter_map(|hex| u64::from_str_radix(hex.trim().trim_start_matches("0x"), 16).ok())
        .max();
    match highest {
        Some(high) if high.is_power_of_two() => (high << 1) - 1,
        _ => DEFAULT,
    }
}

/// Everything the programs need from tracefs.
pub struct KernelLayout {
    pub offsets: TracepointOffsets,
    pub lifecycle: LifecycleOffsets,
    pub task_state_mask: u64,
}

pub fn read_layout(root: &Path) -> Result<KernelLayout, TracefsError> {
    let switch = read_format(root, "sched", "sched_switch")?;
    let fork = read_format(root, "sched", "sched_process_fork")?;
    let exit = read_format(root, "sched", "sched_process_exit")?;
    let read = read_format(root, "syscalls", "sys_enter_read")?;
    let pread = read_format(root, "syscalls", "sys_enter_pread64")?;
    let readv = read_format(root, "syscalls", "sys_enter_readv")?;
    let preadv = read_format(root, "syscalls", "sys_enter_preadv")?;
    let openat = read_format(root, "syscalls", "sys_enter_openat")?;
    let close = read_format(root, "syscalls", "sys_enter_close")?;
    let exit_read = read_format(root, "syscalls", "sys_exit_read")?;

    let offsets = TracepointOffsets {
        switch_prev_pid: switch.offset("prev_pid")?,
        switch_prev_state: switch.offset("prev_state")?,
        switch_next_pid: switch.offset("next_pid")?,
        fork_parent_pid: fork.offset("parent_pid")?,
        fork_child_pid: fork.offset("child_pid")?,
        exit_pid: exit.offset("pid")?,
        exit_group_dead: exit.offset("group_dead")?,
        read_fd: read.offset("fd")?,
        read_count: read.offset("count")?,
        pread_fd: pread.offset("fd")?,
        pread_count: pread.offset("count")?,
        readv_fd: readv.offset("fd")?,
        readv_vec: readv.offset("vec")?,
        readv_vlen: readv.offset("vlen")?,
        preadv_fd: preadv.offset("fd")?,
        preadv_vec: preadv.offset("vec")?,
        preadv_vlen: preadv.offset("vlen")?,
        openat_filename: openat.offset("filename")?,
        close_fd: close.offset("fd")?,
        exit_ret: exit_read.offset("ret")?,
        // open(2) is x86-64 only: 0 (not named by it) elsewhere.
        open_filename: read_format(root, "syscalls", "sys_enter_open")
            .ok()
            .and_then(|open| open.offset("filename").ok())
            .unwrap_or(0),
        _pad: 0,
    };
    Ok(KernelLayout {
        offsets,
        lifecycle: read_lifecycle(root)?,
        task_state_mask: task_state_mask(&switch.print_fmt),
    })
}

/// Offsets for the process-lifecycle and signal programs (all required:
/// every kernel with tracing has these tracepoints).
pub fn read_lifecycle(root: &Path) -> Result<LifecycleOffsets, TracefsError> {
    let generate = read_format(root, "signal", "signal_generate")?;
    let deliver = read_format(root, "signal", "signal_deliver")?;
    let exec = read_format(root, "sched", "sched_process_exec")?;
    let free = read_format(root, "sched", "sched_process_free")?;
    // Optional: without them, disposition and mask changes are not traced.
    let field = |name: &str, field: &str| {
        read_format(root, "syscalls", name)
            .and_then(|f| f.offset(field))
            .unwrap_or(0)
    };
    Ok(LifecycleOffsets {
        gen_sig: generate.offset("sig")?,
        gen_errno: generate.offset("errno")?,
        gen_code: generate.offset("code")?,
        gen_pid: generate.offset("pid")?,
        gen_group: generate.offset("group")?,
        gen_result: generate.offset("result")?,
        gen_comm: generate.offset("comm")?,
        deliver_sig: deliver.offset("sig")?,
        deliver_errno: deliver.offset("errno")?,
        deliver_code: deliver.offset("code")?,
        deliver_sa_handler: deliver.offset("sa_handler")?,
        deliver_sa_flags: deliver.offset("sa_flags")?,
        exec_filename: exec.offset("filename")?,
        exec_pid: exec.offset("pid")?,
        exec_old_pid: exec.offset("old_pid")?,
        free_pid: free.offset("pid")?,
        // From BTF, filled in by the caller.
        task_mm: 0,
        mm_arg_start: 0,
        mm_arg_end: 0,
        task_blocked: 0,
        sigaction_sig: field("sys_enter_rt_sigaction", "sig"),
        sigaction_act: field("sys_enter_rt_sigaction", "act"),
        sigprocmask_how: field("sys_enter_rt_sigprocmask", "how"),
        sigprocmask_nset: field("sys_enter_rt_sigprocmask", "nset"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHED_SWITCH: &str = r#"name: sched_switch
ID: 316
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:char prev_comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t prev_pid;	offset:24;	size:4;	signed:1;
	field:int prev_prio;	offset:28;	size:4;	signed:1;
	field:long prev_state;	offset:32;	size:8;	signed:1;
	field:char next_comm[16];	offset:40;	size:16;	signed:0;
	field:pid_t next_pid;	offset:56;	size:4;	signed:1;
	field:int next_prio;	offset:60;	size:4;	signed:1;

print fmt: "prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d", REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1), "|", { 0x00000001, "S" }, { 0x00000002, "D" }, { 0x00000004, "T" }, { 0x00000008, "t" }, { 0x00000010, "X" }, { 0x00000020, "Z" }, { 0x00000040, "P" }, { 0x00000080, "I" }) : "R", REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) ? "+" : "", REC->next_comm, REC->next_pid, REC->next_prio
"#;

    const FORK_6_18: &str = r#"format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:__data_loc char[] parent_comm;	offset:8;	size:4;	signed:0;
	field:pid_t parent_pid;	offset:12;	size:4;	signed:1;
	field:__data_loc char[] child_comm;	offset:16;	size:4;	signed:0;
	field:pid_t child_pid;	offset:20;	size:4;	signed:1;
"#;

    #[test]
    fn parses_sched_switch_offsets() {
        let f = EventFormat::parse("sched:sched_switch", SCHED_SWITCH);
        assert_eq!(f.offset("prev_pid").unwrap(), 24);
        assert_eq!(f.offset("prev_state").unwrap(), 32);
        assert_eq!(f.offset("next_pid").unwrap(), 56);
        assert_eq!(f.offset("prev_comm").unwrap(), 8);
        assert_eq!(f.offset("common_pid").unwrap(), 4);
    }

    #[test]
    fn parses_data_loc_fields() {
        let f = EventFormat::parse("sched:sched_process_fork", FORK_6_18);
        assert_eq!(f.offset("parent_comm").unwrap(), 8);
        assert_eq!(f.offset("child_pid").unwrap(), 20);
    }

    #[test]
    fn missing_field_names_the_event() {
        let f = EventFormat::parse("sched:sched_process_fork", FORK_6_18);
        let err = f.offset("child_tgid").unwrap_err().to_string();
        assert!(
            err.contains("sched:sched_process_fork") && err.contains("child_tgid"),
            "{err}"
        );
    }

    #[test]
    fn task_state_mask_from_print_fmt() {
        let f = EventFormat::parse("sched:sched_switch", SCHED_SWITCH);
        assert_eq!(task_state_mask(&f.print_fmt), 0xff);
        // An older kernel whose highest report state is 0x40.
        let old =
            r#"__print_flags(REC->prev_state & 127, "|", { 0x01, "S" }, { 0x40, "P" }) : "R""#;
        assert_eq!(task_state_mask(old), 0x7f);
        assert_eq!(task_state_mask("garbage"), 0xff);
    }

    const SIGNAL_GENERATE_6_18: &str = r#"name: signal_generate
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:int sig;	offset:8;	size:4;	signed:1;
	field:int errno;	offset:12;	size:4;	signed:1;
	field:int code;	offset:16;	size:4;	signed:1;
	field:char comm[16];	offset:20;	size:16;	signed:0;
	field:pid_t pid;	offset:36;	size:4;	signed:1;
	field:int group;	offset:40;	size:4;	signed:1;
	field:int result;	offset:44;	size:4;	signed:1;
"#;

    const SIGNAL_DELIVER_6_18: &str = r#"format:
	field:int sig;	offset:8;	size:4;	signed:1;
	field:int errno;	offset:12;	size:4;	signed:1;
	field:int code;	offset:16;	size:4;	signed:1;
	field:unsigned long sa_handler;	offset:24;	size:8;	signed:0;
	field:unsigned long sa_flags;	offset:32;	size:8;	signed:0;
"#;

    #[test]
    fn parses_signal_tracepoints() {
        let g = EventFormat::parse("signal:signal_generate", SIGNAL_GENERATE_6_18);
        assert_eq!(g.offset("sig").unwrap(), 8);
        assert_eq!(g.offset("comm").unwrap(), 20);
        assert_eq!(g.offset("pid").unwrap(), 36);
        assert_eq!(g.offset("group").unwrap(), 40);
        assert_eq!(g.offset("result").unwrap(), 44);
        let d = EventFormat::parse("signal:signal_deliver", SIGNAL_DELIVER_6_18);
        assert_eq!(d.offset("sa_handler").unwrap(), 24);
        assert_eq!(d.offset("sa_flags").unwrap(), 32);
    }

    #[test]
    fn reads_this_kernels_lifecycle_layout() {
        let root = Path::new("/sys/kernel/tracing");
        if !root.join("events/signal").is_dir() {
            eprintln!("skipped: tracefs not mounted or not readable");
            return;
        }
        let l = read_lifecycle(root).unwrap();
        assert!(l.gen_pid > l.gen_sig && l.deliver_sa_flags > l.deliver_sa_handler);
        assert!(l.exec_old_pid > l.exec_pid && l.free_pid > 0);
    }

    #[test]
    fn field_names() {
        assert_eq!(field_name("const char * filename"), Some("filename"));
        assert_eq!(field_name("char *buf"), Some("buf"));
        assert_eq!(field_name("unsigned int fd"), Some("fd"));
    }
}
