//! Loads the embedded BPF object, writes the configuration into it and
//! attaches every program: the raw tracepoints here, the Python sampler
//! and uprobes in `python`. What differs by kernel is decided in
//! `profile` ([`Variant`]); this module does what it says. `maps` gives
//! typed access to the maps' rows: written, read and forgotten.

mod features;
mod load;
mod maps;
mod profile;
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
use tracer_common::{PyConfig, ScopeConfig};

use crate::kernel::btf::BtfError;
pub use features::Features;
use load::{Attached, SIGNAL_CHECK_PROGRAM, load_and_attach};
use profile::{Chosen, KernelProfile, Variant};

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

const VERIFIER_LOG_TAIL_LINES: usize = 25;

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
    /// Reads what this kernel has ([`KernelProfile`]) and loads the
    /// programs of the variant `settings` get on it ([`Variant`]).
    pub fn load(settings: &ProbeSettings, warnings: &mut Vec<String>) -> Result<Self, ProbeError> {
        // aya's loader is made beside our own reading of the kernel.
        let started = std::time::Instant::now();
        let loader = load::loader_without_kernel_btf();
        let warming = settings
            .sample_rate
            .map(|_| std::thread::spawn(python::warm_task_events));
        let profile = KernelProfile::read(warnings);
        let offsets_read = started.elapsed();
        // aya probes the kernel's BPF features once, at the first load:
        // done here while its loader is still parsing BTF, not after.
        let _ = aya::features();
        let mut loader = loader.join().map_err(|_| ProbeError::LoaderPanicked)?;
        let btf_read = started.elapsed();
        let mut variant = Variant::of(&profile?, settings)?;
        log::debug!("{}", variant.summary());
        warnings.append(&mut variant.warnings);
        let object: &[u8] = if variant.bpf_loop {
            aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"))
        } else {
            aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-without-bpf-loop"))
        };
        let preallocated;
        let object: &[u8] = if variant.preallocated {
            preallocated = features::preallocated(object);
            // SAFETY: the words' bytes, as many as the object's.
            unsafe { std::slice::from_raw_parts(preallocated.as_ptr().cast(), object.len()) }
        } else {
            object
        };
        loader.override_global("CONFIG", &variant.config, true);
        for &(map, rows) in &variant.map_sizes {
            loader.map_max_entries(map, rows);
        }
        let mut ebpf = loader
            .load(object)
            .map_err(|err| ProbeError::Load(Box::new(err)))?;
        let maps_made = started.elapsed();

        let sample_rate = settings.sample_rate;
        let fault_period = settings.fault_period;
        let Attached {
            mut links,
            mut warnings,
            sampler_error,
            fault_error,
            signal_check_error,
        } = load_and_attach(
            &mut ebpf,
            &variant.programs,
            sample_rate.is_some(),
            fault_period.is_some(),
            variant.collapses,
            variant.oom_hook,
        )?;
        let covered = second_copies(&ebpf, &variant.programs, &mut links, &mut warnings)?;
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
                .filter(|_| !variant.bpf_loop)
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
            node_wide: settings.scope != ScopeConfig::default(),
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
}
