//! Loads the embedded BPF object, writes the configuration into it and
//! attaches every program: the raw tracepoints here, the Python sampler
//! and uprobes in `python`. `maps` gives typed access to the maps' rows:
//! written, read and forgotten.

pub(crate) mod features;
mod load;
mod maps;
mod python;
mod skipped;
#[cfg(test)]
mod stack_depth;
mod syscall_hooks;
mod syscall_numbers;
mod unpreempted;

use aya::{
    Ebpf, EbpfError,
    maps::{HashMap, MapData, ProgramArray},
    programs::{
        KProbe, PerfEvent, ProgramError, RawTracePoint, UProbe, kprobe::KProbeLinkId,
        perf_event::PerfEventLinkId, raw_trace_point::RawTracePointLinkId, uprobe::UProbeLinkId,
    },
};
use tracer_common::{Config, PyConfig, ScopeConfig};

use crate::kernel::btf::{BtfError, KernelOffsets};
use load::{Attached, SIGNAL_CHECK_PROGRAM, load_and_attach};

/// The programs' configuration for this kernel: this architecture's syscall
/// numbers, struct offsets and saved registers from BTF; and the program
/// chosen for each raw tracepoint ([`choose_programs`]). A missing optional
/// offset costs some detail, said in `warnings`.
fn kernel_config(
    follow_children: bool,
    timeline: bool,
    one_off: bool,
    fd_rows: bool,
    scope: ScopeConfig,
    loop_stall_ns: u64,
    warnings: &mut Vec<String>,
) -> Result<(Config, Vec<Chosen>), BtfError> {
    let tracepoints: Vec<&'static str> = ATTACHMENTS.iter().map(|a| a.tracepoint).collect();
    let kernel = KernelOffsets::read(&tracepoints, warnings)?;
    let mut chosen = choose_programs(&kernel.tracepoint_args, fd_rows, warnings)?;
    let hooks = syscall_hooks::choose(
        kernel.syscall_tracepoints_fault,
        features::atomic_fetch,
        warnings,
    );
    for chosen in &mut chosen {
        if let Some((id, program)) = hooks.perf(chosen.tracepoint) {
            chosen.perf_event = Some(id);
            chosen.program = program;
        }
    }
    // Each second copy attached right after its first.
    let chosen = chosen
        .into_iter()
        .flat_map(|first| {
            let second = hooks
                .second_copy(first.tracepoint)
                .map(|(id, program)| Chosen {
                    program,
                    perf_event: Some(id),
                    ..first
                });
            std::iter::once(first).chain(second)
        })
        .collect();
    let mut regs = kernel.regs;
    if features::task_pt_regs() {
        // The kernel's own helper rather than the stack arithmetic.
        regs.stack_to_regs = 0;
    }
    let config = Config {
        syscalls: syscall_numbers::syscall_numbers(),
        structs: kernel.structs,
        regs,
        follow_children: u32::from(follow_children),
        timeline: u32::from(timeline),
        pid_ns: kernel.pid_ns,
        file: kernel.file,
        scope,
        loop_stall_ns,
        fd_rows: u32::from(fd_rows),
        // The mode alone, whatever the kernel: a one-off trace's thread
        // rows leave at their thread's end, its stacks past the table's
        // room come as records.
        thread_rows: u32::from(one_off),
        stack_records: u32::from(one_off),
        fork_child_pid_at: hooks.fork_child_pid_at(),
        second_copies: u32::from(matches!(
            hooks,
            syscall_hooks::Hooks::RawWithSecondCopies(_)
        )),
        memory: kernel.memory,
        io_syscalls: syscall_numbers::io_syscalls(),
    };
    Ok((config, chosen))
}

/// Where second copies are attached (`chosen` has a perf-event program
/// beside a raw tracepoint's), checks they run after the first ones; they
/// are detached where not (another tool's perf event there came first:
/// said). Returns the programs whose skipped runs are not losses: the
/// first copies, and the syscalls' second copies, whose lost events the
/// threads' next syscalls count (`EVENTS_SKIPPED`).
fn second_copies(
    ebpf: &Ebpf,
    chosen: &[Chosen],
    links: &mut Vec<Link>,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'static str>, ProbeError> {
    let covered: Vec<&'static str> = chosen
        .iter()
        .filter(|first| {
            first.perf_event.is_none()
                && chosen
                    .iter()
                    .any(|c| c.perf_event.is_some() && c.tracepoint == first.tracepoint)
        })
        .map(|first| first.program)
        .chain(chosen.iter().filter_map(|second| {
            let syscall = ["sys_enter", "sys_exit"].contains(&second.tracepoint);
            (second.perf_event.is_some() && syscall).then_some(second.program)
        }))
        .collect();
    if covered.is_empty() {
        return Ok(covered);
    }
    let marks: aya::maps::HashMap<&MapData, u64, u64> = ebpf
        .map("FIRST_RAN")
        .ok_or(ProbeError::MissingMap("FIRST_RAN"))?
        .try_into()
        .map_err(|source| ProbeError::Map {
            map: "FIRST_RAN",
            source,
        })?;
    let out_of_order = match syscall_hooks::check_order(|key| marks.get(&key, 0).ok()) {
        Ok(out_of_order) if out_of_order.is_empty() => return Ok(covered),
        Ok(out_of_order) => format!(
            "another tool's perf event on {} runs before the tracer's programs",
            out_of_order.join(", ")
        ),
        Err(err) => err,
    };
    links.retain(|link| !matches!(link, Link::PerfTracepoint(_)));
    warnings.push(format!(
        "this kernel may preempt the syscall, fork and exit programs' runs, making other \
         tasks' events on that CPU skip them meanwhile, and their second copies, which would \
         take those, cannot follow them ({out_of_order}): the skipped runs are counted"
    ));
    Ok(Vec::new())
}

/// The program attached to one raw tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chosen {
    tracepoint: &'static str,
    program: &'static str,
    optional: bool,
    /// Hooked as this perf-event tracepoint instead (`syscall_hooks`).
    perf_event: Option<u64>,
}

/// For each raw tracepoint, the first of its programs that reads no more
/// arguments than this kernel passes (`args`: the count each passes, from
/// BTF; unknown: the first program). A required tracepoint none of whose
/// programs fits refuses the trace; an optional one is left out (and said
/// when the report lists what is not counted).
fn choose_programs(
    args: &[(&'static str, Option<u32>)],
    fd_rows: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Chosen>, BtfError> {
    let rows = if fd_rows {
        FdRows::With
    } else {
        FdRows::Without
    };
    let mut chosen = Vec::new();
    for attachment in ATTACHMENTS {
        let passed = args
            .iter()
            .find(|(name, _)| *name == attachment.tracepoint)
            .and_then(|(_, n)| *n);
        let fits = attachment.programs.iter().find(|(_, reads, holds)| {
            passed.is_none_or(|passed| *reads <= passed) && [rows, FdRows::Either].contains(holds)
        });
        match (fits, passed) {
            (Some(&(program, ..)), _) => chosen.push(Chosen {
                tracepoint: attachment.tracepoint,
                program,
                optional: attachment.optional,
                perf_event: None,
            }),
            (None, Some(found)) if !attachment.optional => {
                return Err(BtfError::TracepointArgs {
                    tracepoint: attachment.tracepoint.into(),
                    found,
                    wanted: attachment.programs.iter().map(|p| p.1).min().unwrap_or(0),
                });
            }
            (None, found) => warnings.push(format!(
                "not counted: this kernel's tracepoint `{}` passes {} argument(s), fewer than \
                 any of the tracer's programs for it reads",
                attachment.tracepoint,
                found.unwrap_or(0)
            )),
        }
    }
    Ok(chosen)
}

/// One attachment made by [`Probes`], kept so [`Probes::detach`] can take
/// and drop every link (raw tracepoints, the sampler's perf events, uprobes).
enum Link {
    RawTracePoint(&'static str, RawTracePointLinkId),
    /// A syscall program as a perf-event tracepoint (`syscall_hooks`).
    PerfTracepoint(std::os::fd::OwnedFd),
    PerfEvent(&'static str, PerfEventLinkId),
    UProbe(&'static str, UProbeLinkId),
    KProbe(&'static str, KProbeLinkId),
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("loading the BPF object failed: {0}")]
    Load(#[source] Box<EbpfError>),
    #[error(
        "the kernel's verifier rejected the BPF program `{program}`: {io_error}\n\
         last lines of the verifier log:\n{log_tail}"
    )]
    Verifier {
        program: String,
        io_error: std::io::Error,
        log_tail: String,
    },
    #[error("loading the BPF program `{program}` failed: {source}")]
    Program {
        program: String,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(
        "attaching `{program}` to the raw tracepoint {tracepoint} failed: {source}. \
         Does this kernel have that tracepoint?"
    )]
    Attach {
        program: String,
        tracepoint: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(
        "attaching the Python sampler (perf_event CPU clock at {rate} Hz on thread {tid}) failed: {source}"
    )]
    PerfEvent {
        rate: u64,
        tid: u32,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(
        "attaching the Python sampler (perf_event CPU clock at {rate} Hz on CPU {cpu}) failed: {source}"
    )]
    PerfEventCpu {
        rate: u64,
        cpu: u32,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("attaching the uprobe `{program}` to {path} at {offset:#x}: {source}")]
    Uprobe {
        program: &'static str,
        path: String,
        offset: u64,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("the thread making aya's loader panicked")]
    LoaderPanicked,
    #[error("the BPF object has no map `{0}` (build mismatch)")]
    MissingMap(&'static str),
    #[error("BPF map `{map}`: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// The programs of one raw tracepoint (their arguments are the kernel's
/// `TP_PROTO`, which grew over the versions): one of them is loaded.
/// Optional ones may be missing on some kernels; the report then says
/// what is not counted.
struct Attachment {
    tracepoint: &'static str,
    /// (program, how many of the tracepoint's arguments it reads, whether
    /// it holds the per-descriptor read rows), the newest kernels' first:
    /// [`choose_programs`] takes the first this kernel passes enough
    /// arguments for, with the rows if the trace counts reads by them.
    programs: &'static [(&'static str, u32, FdRows)],
    optional: bool,
}

/// Whether a program holds the one-off traces' per-descriptor read rows
/// (`tracer-ebpf/src/fd_rows.rs`), whose fetching atomics a kernel before
/// 5.12 refuses anywhere in a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FdRows {
    With,
    Without,
    /// Not a syscall program: the rows are not its concern.
    Either,
}

const ATTACHMENTS: &[Attachment] = &[
    // Every syscall, picked by number in the program: reads, opens,
    // closes, rt_sigaction, rt_sigprocmask, then their returns and the wait
    // returns (who reaped a zombie).
    Attachment {
        tracepoint: "sys_enter",
        programs: &[
            ("sys_enter", 2, FdRows::With),
            ("sys_enter_no_fd_rows", 2, FdRows::Without),
        ],
        optional: false,
    },
    Attachment {
        tracepoint: "sys_exit",
        programs: &[
            ("sys_exit", 2, FdRows::With),
            ("sys_exit_no_fd_rows", 2, FdRows::Without),
        ],
        optional: false,
    },
    // `prev_state` is an argument since 5.18.
    Attachment {
        tracepoint: "sched_switch",
        programs: &[
            ("sched_switch", 4, FdRows::Either),
            ("sched_switch_no_prev_state", 3, FdRows::Either),
        ],
        optional: false,
    },
    Attachment {
        tracepoint: "sched_process_fork",
        programs: &[("sched_process_fork", 2, FdRows::Either)],
        optional: false,
    },
    // `group_dead` is an argument since 6.16.
    Attachment {
        tracepoint: "sched_process_exit",
        programs: &[
            ("sched_process_exit", 2, FdRows::Either),
            ("sched_process_exit_no_group_dead", 1, FdRows::Either),
        ],
        optional: false,
    },
    // Process lifecycle and signals: rare events, each optional (the report
    // then says what is missing).
    Attachment {
        tracepoint: "sched_process_exec",
        programs: &[("sched_process_exec", 3, FdRows::Either)],
        optional: true,
    },
    Attachment {
        tracepoint: "sched_process_free",
        programs: &[("sched_process_free", 1, FdRows::Either)],
        optional: true,
    },
    Attachment {
        tracepoint: "signal_generate",
        programs: &[("signal_generate", 5, FdRows::Either)],
        optional: true,
    },
    Attachment {
        tracepoint: "signal_deliver",
        programs: &[("signal_deliver", 3, FdRows::Either)],
        optional: true,
    },
];

const VERIFIER_LOG_TAIL_LINES: usize = 25;

/// Whether khugepaged's collapses are told: the kernel has them, and the
/// tracer knows its isolation's arguments (and the memory offsets).
fn collapses_told(memory: &tracer_common::MemoryOffsets) -> bool {
    memory.valid != 0 && memory.isolate_args != 0 && load::huge_pages_collapse()
}

/// What the report says where memory growth is sampled and the kernel
/// collapses huge pages, but the tracer does not know its scan's arguments.
fn collapses_not_told(memory: &tracer_common::MemoryOffsets, faults: bool) -> Option<String> {
    (faults && memory.valid != 0 && memory.isolate_args == 0 && load::huge_pages_collapse()).then(
        || {
            "memory growth: the pages of huge pages khugepaged collapses are charged to the line \
             sampled after them: this kernel's `mm_collapse_huge_page_isolate` passes arguments \
             the tracer does not know"
                .to_owned()
        },
    )
}

/// The loaded programs and their maps. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    traced: HashMap<MapData, u32, u8>,
    py_threads: HashMap<MapData, u32, u64>,
    py_config: HashMap<MapData, u32, PyConfig>,
    /// Why Python sampling is not running (it failed to load or attach), if so.
    pub sampler_error: Option<String>,
    /// The sampling rate, when the sampler is loaded.
    sample_rate: Option<u64>,
    /// Minor page faults per memory sample, when the fault sampler is
    /// loaded (beside the CPU sampler, on the same threads or CPUs).
    fault_period: Option<u64>,
    /// Why memory growth is not sampled (it failed to load or attach), if so.
    pub fault_error: Option<String>,
    /// The page-fault events (opened here, not by aya: their counts are
    /// read at the end).
    fault_events: Vec<std::os::fd::OwnedFd>,
    /// Threads that carry a sampling perf event of their own (their later
    /// threads and children inherit it).
    sampled_tids: std::collections::HashSet<u32>,
    links: Vec<Link>,
    /// Optional tracepoints that could not be attached, for the report.
    pub warnings: Vec<String>,
    /// Interpreter files (device, inode, offset) whose signal checks carry the
    /// uprobe (one attachment per file serves every process running it);
    /// `None`: the program could not be loaded.
    signal_checks: Option<std::collections::HashSet<(u64, u64, u64)>>,
    /// Why the signal-check uprobe, loaded with the other programs, did not
    /// load (taken by [`Probes::load_signal_check`]).
    signal_check_error: Option<ProbeError>,
    /// Attaches the signal-check uprobe off the event loop.
    signal_check_attacher: Option<crate::kernel::uprobes::Attacher>,
    /// Interpreter files (device, inode) whose signal checks the uprobe
    /// sees.
    signal_checks_attached: std::collections::HashSet<(u64, u64)>,
    /// Processes waiting for their file's uprobe to be attached.
    signal_checks_waiting: std::collections::HashMap<(u64, u64), Vec<u32>>,
    /// `--serve`: gone processes whose rows of the tables searched every
    /// few forgets are still there, and the forgets so far.
    forgetting: std::collections::HashSet<u32>,
    forgets: u64,
    /// Runs the kernel skipped before the first process was traced (the
    /// programs did nothing for anyone then: nothing lost); `None` until
    /// then, and always for a node-wide scope (traced from the start).
    skipped_before_tracing: Option<u64>,
    node_wide: bool,
    /// The programs whose skipped runs their second copies take
    /// (`syscall_hooks`): none lost.
    covered: Vec<&'static str>,
    /// Where second copies run (the kernel preempts the syscall programs'
    /// runs), the tracer's map operations run at `SCHED_FIFO`
    /// ([`unpreempted`]).
    unpreempted_maps: bool,
    /// Turned the kernel's per-thread perf hooks on during the start-up
    /// ([`python::warm_task_events`]), so the sampler's events open at
    /// once; held for the trace (a disabled counter: nothing runs for it).
    _task_events_warm: Option<std::os::fd::OwnedFd>,
}

/// The per-descriptor rows are claimed with the fetching atomics: without
/// them, reads are counted per file (said in `warnings`).
fn fd_rows_supported(warnings: &mut Vec<String>) -> bool {
    let supported = features::atomic_fetch();
    if !supported {
        warnings.push(
            "this kernel's BPF has no fetching atomics (Linux 5.12): reads are counted per \
             file in a table of 16,384 rows rather than per descriptor; past that many files \
             at once, reads are dropped (counted)"
                .into(),
        );
    }
    supported
}

/// What a trace asks of the kernel side.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeSettings {
    /// Trace the processes the traced ones fork (not `--no-children`).
    pub follow_children: bool,
    /// Load the Python CPU sampler too, for [`Probes::sample_threads`] to
    /// attach at that frequency.
    pub sample_rate: Option<u64>,
    /// Sample the Python stack every that many minor page faults too
    /// (with the CPU sampler only).
    pub fault_period: Option<u64>,
    /// Send every read and context switch as a record (`--perfetto`).
    pub timeline: bool,
    /// A one-off trace: rows are sent as their descriptor, thread or stack
    /// ends (reads per descriptor where the kernel has fetching atomics),
    /// not folded every second (`--serve`, `--every`).
    pub one_off: bool,
    /// What a node-wide trace takes in as it execs.
    pub scope: ScopeConfig,
    /// An event loop iteration this long is a stall.
    pub loop_stall_ns: u64,
    /// Room for the native unwind tables (0: `--native=off`).
    pub native_blocks: u32,
}

impl Probes {
    /// Reads this kernel's layout ([`kernel_config`]) and loads the
    /// programs `settings` ask for.
    pub fn load(settings: &ProbeSettings, warnings: &mut Vec<String>) -> Result<Self, ProbeError> {
        let ProbeSettings {
            follow_children,
            sample_rate,
            fault_period,
            timeline,
            one_off,
            scope,
            loop_stall_ns,
            native_blocks,
        } = *settings;
        // aya's loader is made beside our own reading of the offsets.
        let started = std::time::Instant::now();
        let loader = load::loader_without_kernel_btf();
        let warming = sample_rate.map(|_| std::thread::spawn(python::warm_task_events));
        // Reads per descriptor: the mode, and a kernel that can claim rows.
        let fd_rows = one_off && fd_rows_supported(warnings);
        let config = kernel_config(
            follow_children,
            timeline,
            one_off,
            fd_rows,
            scope,
            loop_stall_ns,
            warnings,
        );
        let offsets_read = started.elapsed();
        // aya probes the kernel's BPF features once, at the first load:
        // done here while its loader is still parsing BTF, not after.
        let _ = aya::features();
        let mut loader = loader.join().map_err(|_| ProbeError::LoaderPanicked)?;
        let btf_read = started.elapsed();
        let (config, chosen) = config?;
        let object: &[u8] = if features::bpf_loop() {
            aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"))
        } else {
            aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-without-bpf-loop"))
        };
        // Before 6.1, tracing programs' hash maps must be preallocated.
        let preallocated;
        let object: &[u8] = if features::allocate_on_insert() {
            object
        } else {
            preallocated = features::preallocated(object);
            // SAFETY: the words' bytes, as many as the object's.
            unsafe { std::slice::from_raw_parts(preallocated.as_ptr().cast(), object.len()) }
        };
        let mut ebpf = loader
            .override_global("CONFIG", &config, true)
            // `--native`'s unwind tables; one block (unused) otherwise.
            .map_max_entries("NATIVE_ROWS", native_blocks.max(1))
            // Reads are counted per descriptor in FD_ROWS or per file
            // through FD_FILES, never both: the unused table is one row
            // (its bucket array would be made at every start, ~1-2 ms).
            .map_max_entries(if fd_rows { "FD_FILES" } else { "FD_ROWS" }, 1)
            // The second copies' marks, where they run (`syscall_hooks`).
            .map_max_entries(
                "FIRST_RAN",
                if config.second_copies != 0 { 16384 } else { 1 },
            )
            .load(object)
            .map_err(|err| ProbeError::Load(Box::new(err)))?;
        let maps_made = started.elapsed();

        // Where OOM kills are seen, if the offsets were found: `mark_victim`
        // only where it passes the task.
        let oom_hook = (config.memory.valid != 0)
            .then(load::oom_hook)
            .filter(|&hook| hook == load::OomHook::KProbe || config.memory.mark_victim_task != 0);
        let Attached {
            links,
            warnings,
            sampler_error,
            fault_error,
            signal_check_error,
        } = load_and_attach(
            &mut ebpf,
            &chosen,
            sample_rate.is_some(),
            fault_period.is_some(),
            collapses_told(&config.memory),
            oom_hook,
        )?;
        let mut links = links;
        let mut warnings = warnings;
        warnings.extend(collapses_not_told(&config.memory, fault_period.is_some()));
        if config.memory.valid != 0 && oom_hook.is_none() {
            warnings.push(
                "OOM kills are said as a SIGKILL from the kernel, without the limit and the \
                 resident memory: this kernel has no kprobes, and its `mark_victim` tracepoint \
                 passes only the pid"
                    .to_owned(),
            );
        }
        let covered = second_copies(&ebpf, &chosen, &mut links, &mut warnings)?;
        // Where the start-up goes (`RUST_LOG=debug`), cumulative.
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        log::debug!(
            "start-up: offsets from BTF {:.1} ms, aya's loader {:.1} ms, \
             maps {:.1} ms, programs verified and attached {:.1} ms",
            ms(offsets_read),
            ms(btf_read),
            ms(maps_made),
            ms(started.elapsed())
        );
        let sampler_error = sampler_error.or_else(|| {
            sample_rate
                .filter(|_| !features::bpf_loop())
                .and_then(|_| chain_walk_pieces(&mut ebpf).err())
                .map(|err| {
                    log::warn!("{err}");
                    err.to_string()
                })
        });
        let task_events_warm = warming.and_then(|warming| warming.join().ok().flatten());
        let traced = take_map(&mut ebpf, "TRACED")?;
        let py_threads = take_map(&mut ebpf, "PY_THREADS")?;
        let py_config = take_map(&mut ebpf, "PY_CONFIG")?;
        Ok(Self {
            ebpf,
            traced,
            py_threads,
            py_config,
            sampler_error,
            sample_rate,
            fault_period: fault_period.filter(|_| sample_rate.is_some() && fault_error.is_none()),
            fault_error,
            fault_events: Vec::new(),
            sampled_tids: Default::default(),
            links,
            warnings,
            signal_checks: None,
            signal_check_error,
            signal_check_attacher: None,
            signal_checks_attached: Default::default(),
            signal_checks_waiting: Default::default(),
            forgetting: Default::default(),
            forgets: 0,
            skipped_before_tracing: None,
            node_wide: scope != ScopeConfig::default(),
            unpreempted_maps: !covered.is_empty(),
            covered,
            _task_events_warm: task_events_warm,
        })
    }

    /// Whether exec records come (the optional `sched_process_exec` is attached).
    pub fn sees_exec(&self) -> bool {
        self.links
            .iter()
            .any(|link| matches!(link, Link::RawTracePoint("sched_process_exec", _)))
    }

    /// Detaches every program: raw tracepoints (~1 ms), the Python sampler's
    /// perf events, the entry-counter uprobe, and hands the signal-check
    /// uprobes to a child that closes them once this process has exited
    /// ([`crate::kernel::uprobes::close_after_exit`]). Maps stay readable.
    pub fn detach(&mut self) {
        // Takes a program's link out of aya, as an owned value to drop anywhere.
        macro_rules! take {
            ($program_type:ty, $program:expr, $id:expr) => {
                self.ebpf
                    .program_mut($program)
                    .and_then(|p| <&mut $program_type>::try_from(p).ok())
                    .and_then(|p| p.take_link($id).ok())
                    .map(|link| Box::new(link) as Box<dyn Send>)
            };
        }
        let mut owned: Vec<Box<dyn Send>> = Vec::new();
        let uprobes = self
            .signal_check_attacher
            .as_mut()
            .map(|attacher| attacher.stop())
            .unwrap_or_default();
        for link in self.links.drain(..) {
            owned.extend(match link {
                Link::RawTracePoint(program, id) => take!(RawTracePoint, program, id),
                // Its close waits for an RCU grace period: on a thread too.
                Link::PerfTracepoint(event) => Some(Box::new(event) as Box<dyn Send>),
                Link::PerfEvent(program, id) => take!(PerfEvent, program, id),
                Link::UProbe(program, id) => take!(UProbe, program, id),
                Link::KProbe(program, id) => take!(KProbe, program, id),
            });
        }
        owned.extend(
            self.fault_events
                .drain(..)
                .map(|event| Box::new(event) as Box<dyn Send>),
        );
        std::thread::scope(|scope| {
            for link in owned {
                scope.spawn(move || drop(link));
            }
        });
        // Forked only now: the child holds a copy of every descriptor until
        // it closes all but the uprobes', and one of a perf event's would
        // keep the event on its tracepoint meanwhile, where a tracer started
        // right after would find it before its own programs.
        let count = uprobes.len();
        if let Some(child) = crate::kernel::uprobes::close_after_exit(uprobes) {
            log::info!(
                "{count} signal-check uprobes are closed by pid {child} once this process exits \
                 (a grace period each)"
            );
        }
    }
}

/// Without `bpf_loop`: the sampler's walk continues in `python_walk`,
/// reached by a tail call through `PY_WALK_PIECES` (the map keeps its
/// slot while the object is loaded).
fn chain_walk_pieces(ebpf: &mut Ebpf) -> Result<(), ProbeError> {
    const PIECES: &str = "PY_WALK_PIECES";
    let program_error = |source| ProbeError::Program {
        program: "python_walk".into(),
        source: Box::new(source),
    };
    let fd = typed_program::<PerfEvent>(ebpf, "python_walk")?
        .fd()
        .and_then(|fd| fd.try_clone().map_err(ProgramError::IOError))
        .map_err(program_error)?;
    let map = ebpf.map_mut(PIECES).ok_or(ProbeError::MissingMap(PIECES))?;
    ProgramArray::try_from(map)
        .and_then(|mut pieces| pieces.set(0, &fd, 0))
        .map_err(|source| ProbeError::Map {
            map: PIECES,
            source,
        })
}

/// The program `name` of the object, as its type `P` (`TracePoint`, ...).
fn typed_program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, ProbeError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program_error = |source| ProbeError::Program {
        program: name.into(),
        source: Box::new(source),
    };
    ebpf.program_mut(name)
        .ok_or_else(|| program_error(ProgramError::NotLoaded))?
        .try_into()
        .map_err(program_error)
}

fn load_error(program_name: &str, source: ProgramError) -> ProbeError {
    match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            // The whole log at -v: the tail may not hold the reason.
            log::debug!("the verifier's log of `{program_name}`:\n{log}");
            ProbeError::Verifier {
                program: program_name.into(),
                io_error,
                log_tail: log_tail(&log, VERIFIER_LOG_TAIL_LINES),
            }
        }
        source => ProbeError::Program {
            program: program_name.into(),
            source: Box::new(source),
        },
    }
}

fn take_map<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, ProbeError>
where
    M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(ProbeError::MissingMap(name))?;
    M::try_from(map).map_err(|source| ProbeError::Map { map: name, source })
}

/// The last `lines` lines of a verifier log: where the rejection is explained.
pub fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_log_tail_keeps_the_end() {
        let log = (1..=100)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let tail = log_tail(&log, 3);
        assert_eq!(tail, "line 98\nline 99\nline 100");
        assert_eq!(log_tail("a\n\nb\n", 10), "a\nb");
    }

    #[test]
    fn every_tracepoint_and_program_is_listed_once() {
        let mut tracepoints: Vec<_> = ATTACHMENTS.iter().map(|a| a.tracepoint).collect();
        tracepoints.sort();
        tracepoints.dedup();
        assert_eq!(tracepoints.len(), ATTACHMENTS.len());
        let mut programs: Vec<_> = ATTACHMENTS
            .iter()
            .flat_map(|a| a.programs)
            .map(|p| p.0)
            .collect();
        let count = programs.len();
        programs.sort();
        programs.dedup();
        assert_eq!(programs.len(), count);
    }

    /// The argument counts of Debian's kernels' `TP_PROTO`s, from their BTF.
    fn kernel(sched_switch: u32, sched_process_exit: u32) -> Vec<(&'static str, Option<u32>)> {
        let mut args: Vec<_> = ATTACHMENTS
            .iter()
            .map(|a| (a.tracepoint, Some(a.programs[0].1)))
            .collect();
        for (name, n) in args.iter_mut() {
            match *name {
                "sched_switch" => *n = Some(sched_switch),
                "sched_process_exit" => *n = Some(sched_process_exit),
                _ => {}
            }
        }
        args
    }

    fn program_of(chosen: &[Chosen], tracepoint: &str) -> &'static str {
        chosen
            .iter()
            .find(|c| c.tracepoint == tracepoint)
            .unwrap()
            .program
    }

    #[test]
    fn each_kernel_gets_the_programs_its_tracepoints_fit() {
        let mut warnings = Vec::new();
        // 5.10: no prev_state, no group_dead.
        let chosen = choose_programs(&kernel(3, 1), true, &mut warnings).unwrap();
        assert_eq!(
            program_of(&chosen, "sched_switch"),
            "sched_switch_no_prev_state"
        );
        assert_eq!(
            program_of(&chosen, "sched_process_exit"),
            "sched_process_exit_no_group_dead"
        );
        // 6.1, 6.12: prev_state, no group_dead.
        let chosen = choose_programs(&kernel(4, 1), true, &mut warnings).unwrap();
        assert_eq!(program_of(&chosen, "sched_switch"), "sched_switch");
        assert_eq!(
            program_of(&chosen, "sched_process_exit"),
            "sched_process_exit_no_group_dead"
        );
        // 6.16 on: both; a BTF that does not say: the newest.
        for args in [kernel(4, 2), Vec::new()] {
            let chosen = choose_programs(&args, true, &mut warnings).unwrap();
            assert_eq!(
                program_of(&chosen, "sched_process_exit"),
                "sched_process_exit"
            );
            assert_eq!(chosen.len(), ATTACHMENTS.len());
            assert_eq!(program_of(&chosen, "sys_exit"), "sys_exit");
        }
        // Without the rows (--serve, or a kernel without the fetching
        // atomics): the syscall programs that do not hold their code.
        let chosen = choose_programs(&kernel(3, 1), false, &mut warnings).unwrap();
        assert_eq!(program_of(&chosen, "sys_enter"), "sys_enter_no_fd_rows");
        assert_eq!(program_of(&chosen, "sys_exit"), "sys_exit_no_fd_rows");
        assert_eq!(
            program_of(&chosen, "sched_switch"),
            "sched_switch_no_prev_state"
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_tracepoint_no_program_fits_refuses_only_if_required() {
        let mut warnings = Vec::new();
        let err = choose_programs(&kernel(2, 1), true, &mut warnings).unwrap_err();
        assert!(
            err.to_string().contains(
                "`sched_switch` passes 2 argument(s), the tracer's programs read at least 3"
            ),
            "{err}"
        );
        let mut args = kernel(4, 2);
        args.iter_mut()
            .find(|(name, _)| *name == "signal_deliver")
            .unwrap()
            .1 = Some(2);
        let chosen = choose_programs(&args, true, &mut warnings).unwrap();
        assert!(chosen.iter().all(|c| c.tracepoint != "signal_deliver"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("signal_deliver"));
    }
}
