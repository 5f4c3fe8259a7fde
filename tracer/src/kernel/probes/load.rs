//! Loading the programs: each verified on one of a few threads, heaviest
//! first (the verifier is most of the start-up), then each raw tracepoint's
//! attached in order.

use aya::{
    Ebpf, EbpfLoader,
    programs::{KProbe, PerfEvent, ProgramError, RawTracePoint, TracePoint, UProbe},
};

use super::{Chosen, Link, ProbeError, load_error};
use crate::kernel::mount_ns;

/// Makes aya's loader on a thread of its own, without the kernel's BTF.
/// `EbpfLoader::new` parses all of `/sys/kernel/btf/vmlinux` (~35 ms here,
/// longer than our own reading of the offsets beside it: the start-up's
/// critical path), which aya needs only for CO-RE relocations and
/// BTF-typed programs (fentry, `tp_btf`, LSM): our objects have neither
/// (Rust BPF emits no relocations; `kernel::btf` reads the offsets;
/// checked by a test). So the thread hides it, with an empty tmpfs over
/// `/sys/kernel/btf` in a mount namespace of its own; where that cannot be
/// done, aya parses it as usual.
pub(super) fn loader_without_kernel_btf() -> std::thread::JoinHandle<EbpfLoader<'static>> {
    std::thread::spawn(|| {
        let hidden = mount_ns::make_private_to_this_thread()
            .and_then(|()| mount_ns::mount(c"tmpfs", c"/sys/kernel/btf"));
        if let Err(err) = hidden {
            log::debug!("aya's loader parses the kernel's BTF: it could not be hidden ({err})");
        }
        EbpfLoader::new()
    })
}

/// Loads (verifies) the `chosen` program of each raw tracepoint and
/// (`sampler`) the CPU-clock sampler's and the signal-check uprobe in
/// parallel ([`load_in_parallel`]),
/// the verifier being the slow part of start-up, then attaches them in
/// order.
pub(super) fn load_and_attach(
    ebpf: &mut Ebpf,
    chosen: &[Chosen],
    sampler: bool,
    faults: bool,
    collapses: bool,
    oom: Option<OomHook>,
) -> Result<Attached, ProbeError> {
    let oom_program = oom.map(OomHook::program);
    let mut jobs: Vec<LoadJob> = Vec::new();
    for (name, program) in ebpf.programs_mut() {
        let wanted = if SAMPLER_PROGRAMS.contains(&name) || name == SIGNAL_CHECK_PROGRAM {
            sampler
        } else if name == FAULT_PROGRAM {
            sampler && faults
        } else if COLLAPSE_PROGRAMS.contains(&name) {
            sampler && faults && collapses
        } else if name == OOM_PROGRAM || name == MARK_VICTIM_PROGRAM {
            oom_program == Some(name)
        } else {
            chosen.iter().any(|c| c.program == name)
        };
        if wanted {
            jobs.push(LoadJob {
                name,
                program,
                result: Ok(()),
            });
        }
    }
    let mut done = load_in_parallel(jobs);
    // The sampler's error, its first program's first.
    let sampler_error = SAMPLER_PROGRAMS.iter().find_map(|sampler| {
        let at = done.iter().position(|job| job.name == *sampler)?;
        let err = done.swap_remove(at).result.err()?;
        log::warn!("{err}");
        Some(err.to_string())
    });
    let fault_error = done
        .iter()
        .position(|job| job.name == FAULT_PROGRAM)
        .and_then(|at| done.swap_remove(at).result.err())
        .map(|err| {
            log::warn!("{err}");
            err.to_string()
        });
    // Said when the signal checks are asked for (`Probes::load_signal_check`).
    let signal_check_error = done
        .iter()
        .position(|job| job.name == SIGNAL_CHECK_PROGRAM)
        .and_then(|at| done.swap_remove(at).result.err());
    let mut links = Vec::new();
    let mut warnings = Vec::new();
    // The OOM killer's hook: without it, a kill is a SIGKILL from the
    // kernel, said as such.
    if let Some(hook) = oom
        && let Some(at) = done.iter().position(|job| job.name == hook.program())
    {
        let job = done.swap_remove(at);
        if let Err(err) = job
            .result
            .and_then(|()| attach_oom(hook, job.program, &mut links))
        {
            log::warn!("{err}");
            warnings.push(format!(
                "OOM kills are said as a SIGKILL from the kernel, without the limit and the \
                 resident memory: {err}"
            ));
        }
    }
    // Huge pages collapsed: without them, a collapse's pages are charged
    // to the sample after it.
    for (program, tracepoint) in COLLAPSE_PROGRAMS.iter().zip(COLLAPSE_TRACEPOINTS) {
        let Some(at) = done.iter().position(|job| job.name == *program) else {
            continue;
        };
        let job = done.swap_remove(at);
        let attached = job.result.and_then(|()| {
            let error = |source| ProbeError::Program {
                program: (*program).into(),
                source: Box::new(source),
            };
            let raw: &mut RawTracePoint = job.program.try_into().map_err(error)?;
            let id = raw.attach(tracepoint).map_err(error)?;
            links.push(Link::RawTracePoint(program, id));
            Ok(())
        });
        if let Err(err) = attached {
            log::warn!("{err}");
            warnings.push(format!(
                "memory growth: the pages of huge pages khugepaged collapses are charged to \
                 the line sampled after them: {err}"
            ));
        }
    }
    let mut loaded = done;
    for attachment in chosen {
        let program = loaded
            .iter_mut()
            .position(|job| job.name == attachment.program)
            .map(|at| loaded.swap_remove(at));
        let attached = match program {
            Some(LoadJob {
                program,
                result: Ok(()),
                ..
            }) => attach_one(attachment, program, &mut links),
            Some(LoadJob {
                result: Err(err), ..
            }) => Err(err),
            None => Err(ProbeError::Program {
                program: attachment.program.into(),
                source: Box::new(ProgramError::NotLoaded),
            }),
        };
        if let Err(err) = attached {
            if attachment.optional {
                log::warn!("{err}");
                warnings.push(format!("not counted: {err}"));
            } else {
                return Err(err);
            }
        }
    }
    Ok(Attached {
        links,
        warnings,
        sampler_error,
        fault_error,
        signal_check_error,
    })
}

/// What [`load_and_attach`] did.
pub(super) struct Attached {
    pub(super) links: Vec<Link>,
    /// Optional programs that could not be loaded or attached.
    pub(super) warnings: Vec<String>,
    /// Why the sampler cannot run, if so.
    pub(super) sampler_error: Option<String>,
    /// Why the page-fault sampler did not load, if so.
    pub(super) fault_error: Option<String>,
    /// Why the signal-check uprobe did not load, if so.
    pub(super) signal_check_error: Option<ProbeError>,
}

/// A program to load (the verifier's work, most of the start-up), and how
/// its load went.
struct LoadJob<'a> {
    name: &'a str,
    program: &'a mut aya::programs::Program,
    result: Result<(), ProbeError>,
}

/// The programs the verifier takes longest over, most first (measured on
/// 6.18 by the verified instructions of each, `RUST_LOG=debug`: `sys_exit`
/// ~18 k, the sampler ~12 k, `sys_enter` ~10 k, the rest under 7 k):
/// started first, they do not end the start-up alone on one thread.
const HEAVIEST_FIRST: [&str; 7] = [
    "sys_exit",
    "python_sample",
    "sys_enter",
    "sched_process_fork",
    "python_walk",
    "sched_switch",
    "signal_deliver",
];

/// Loads `jobs` on a few threads taking the next job as each is free,
/// heaviest first: the verifier runs one program on one CPU, so the
/// start-up is the longest thread's share, not the sum.
fn load_in_parallel(mut jobs: Vec<LoadJob<'_>>) -> Vec<LoadJob<'_>> {
    let weight = |name: &str| {
        HEAVIEST_FIRST
            .iter()
            .position(|heavy| name.starts_with(heavy))
            .unwrap_or(HEAVIEST_FIRST.len())
    };
    // Popped from the end: the heaviest last.
    jobs.sort_by_key(|job| std::cmp::Reverse(weight(job.name)));
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, 4);
    let queue = std::sync::Mutex::new(jobs);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    let Some(mut job) = next else { break };
                    let started = std::time::Instant::now();
                    job.result = load_program(job.name, job.program);
                    log_verified(job.name, job.program, started.elapsed());
                    done.lock().unwrap_or_else(|e| e.into_inner()).push(job);
                }
            });
        }
    });
    done.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// What the verifier made of a program (`RUST_LOG=debug`): the start-up's
/// cost is the verifier's, and this says where it goes.
fn log_verified(name: &str, program: &aya::programs::Program, took: std::time::Duration) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let insns = program
        .info()
        .ok()
        .and_then(|info| info.verified_instruction_count());
    log::debug!(
        "loaded {name} in {:.1} ms: {} instructions verified",
        took.as_secs_f64() * 1e3,
        insns.map_or("?".into(), |n| n.to_string())
    );
}

/// Loads one program of the object: the sampler's as perf event programs,
/// the signal check as a uprobe, the syscall programs' perf variants as
/// tracepoints, every other as a raw tracepoint's.
fn load_program(name: &str, program: &mut aya::programs::Program) -> Result<(), ProbeError> {
    if super::syscall_hooks::PERF_PROGRAMS
        .iter()
        .any(|(_, perf, _)| *perf == name)
    {
        load_as(name, program, TracePoint::load)
    } else if name == SIGNAL_CHECK_PROGRAM {
        load_as(name, program, UProbe::load)
    } else if name == OOM_PROGRAM {
        load_as(name, program, KProbe::load)
    } else if SAMPLER_PROGRAMS.contains(&name) || name == FAULT_PROGRAM {
        load_as(name, program, PerfEvent::load)
    } else {
        load_as(name, program, RawTracePoint::load)
    }
}

/// Loads `program` as the program type `P` (the verifier runs here).
fn load_as<'a, P: 'a>(
    name: &str,
    program: &'a mut aya::programs::Program,
    load: fn(&mut P) -> Result<(), ProgramError>,
) -> Result<(), ProbeError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let typed: &mut P = program.try_into().map_err(|source| ProbeError::Program {
        program: name.into(),
        source: Box::new(source),
    })?;
    load(typed).map_err(|source| load_error(name, source))
}

/// The OOM killer's kprobe (`tracer-ebpf/src/memory.rs`) and the kernel
/// function it is attached to; `mark_victim`'s program, for kernels
/// without kprobes.
pub(super) const OOM_PROGRAM: &str = "oom_kill";
const OOM_FUNCTION: &str = "oom_kill_process";
const MARK_VICTIM_PROGRAM: &str = "mark_victim";

/// Where OOM kills are seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomHook {
    /// A kprobe on `oom_kill_process` (the kernel has the kprobe PMU).
    KProbe,
    /// The `mark_victim` tracepoint: kernels built without kprobes.
    MarkVictim,
}

impl OomHook {
    fn program(self) -> &'static str {
        match self {
            Self::KProbe => OOM_PROGRAM,
            Self::MarkVictim => MARK_VICTIM_PROGRAM,
        }
    }
}

fn attach_oom(
    hook: OomHook,
    program: &mut aya::programs::Program,
    links: &mut Vec<Link>,
) -> Result<(), ProbeError> {
    let error = |source| ProbeError::Program {
        program: match hook {
            OomHook::KProbe => format!("{OOM_PROGRAM} (kprobe on {OOM_FUNCTION})"),
            OomHook::MarkVictim => MARK_VICTIM_PROGRAM.to_owned(),
        },
        source: Box::new(source),
    };
    match hook {
        OomHook::KProbe => {
            let kprobe: &mut KProbe = program.try_into().map_err(error)?;
            let id = kprobe.attach(OOM_FUNCTION, 0).map_err(error)?;
            links.push(Link::KProbe(OOM_PROGRAM, id));
        }
        OomHook::MarkVictim => {
            let tracepoint: &mut RawTracePoint = program.try_into().map_err(error)?;
            let id = tracepoint.attach(MARK_VICTIM_PROGRAM).map_err(error)?;
            links.push(Link::RawTracePoint(MARK_VICTIM_PROGRAM, id));
        }
    }
    Ok(())
}

/// The CPU-clock sampler's programs: the sampler, and in the object for
/// kernels without `bpf_loop` the pieces of its walk after the first.
pub(super) const SAMPLER_PROGRAMS: [&str; 2] = ["python_sample", "python_walk"];

/// The page-fault sampler (memory growth by Python line), loaded beside
/// the CPU-clock sampler: the same walk, run every Nth minor page fault.
pub(super) const FAULT_PROGRAM: &str = "memory_fault";

/// Huge pages collapsed (`tracer-ebpf/src/memory.rs`), beside the
/// page-fault sampler: a collapse's isolation of its range, then its end.
pub(super) const COLLAPSE_PROGRAMS: [&str; 2] = ["huge_page_isolated", "huge_page_collapse"];
const COLLAPSE_TRACEPOINTS: [&str; 2] = ["mm_collapse_huge_page_isolate", "mm_collapse_huge_page"];

/// The signal-check uprobe, loaded beside the sampler (a Python program's
/// handlers are timed where its stacks are sampled) and attached per
/// interpreter file as they are found ([`Probes::load_signal_check`]).
pub(super) const SIGNAL_CHECK_PROGRAM: &str = "py_signal_check";

/// Attaches the loaded program chosen for a raw tracepoint (or its
/// perf-event tracepoint, `syscall_hooks`).
fn attach_one(
    chosen: &Chosen,
    program: &mut aya::programs::Program,
    links: &mut Vec<Link>,
) -> Result<(), ProbeError> {
    if let Some(id) = chosen.perf_event {
        let attach_error = |source: std::io::Error| ProbeError::Attach {
            program: chosen.program.into(),
            tracepoint: chosen.tracepoint,
            source: Box::new(ProgramError::IOError(source)),
        };
        use std::os::fd::AsFd as _;
        let fd = program.fd().map_err(|source| ProbeError::Program {
            program: chosen.program.into(),
            source: Box::new(source),
        })?;
        let event = super::syscall_hooks::attach(fd.as_fd(), id).map_err(attach_error)?;
        links.push(Link::PerfTracepoint(event));
        return Ok(());
    }
    let program: &mut RawTracePoint = program.try_into().map_err(|source| ProbeError::Program {
        program: chosen.program.into(),
        source: Box::new(source),
    })?;
    let link = program
        .attach(chosen.tracepoint)
        .map_err(|source| ProbeError::Attach {
            program: chosen.program.into(),
            tracepoint: chosen.tracepoint,
            source: Box::new(source),
        })?;
    links.push(Link::RawTracePoint(chosen.program, link));
    Ok(())
}

#[cfg(test)]
mod tests {
    use aya_obj::ProgramSection;

    /// What lets aya's loader go without the kernel's BTF
    /// ([`super::loader_without_kernel_btf`]): neither object has a CO-RE
    /// relocation or a program whose kind needs the kernel's BTF.
    #[test]
    fn the_objects_need_no_kernel_btf() {
        for object in [
            aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer")),
            aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-without-bpf-loop")),
        ] {
            let object = aya_obj::Object::parse(object).unwrap();
            assert!(!object.has_btf_relocations());
            assert!(object.programs.len() > 10);
            for (name, program) in &object.programs {
                assert!(
                    !matches!(
                        program.section,
                        ProgramSection::BtfTracePoint
                            | ProgramSection::FEntry { .. }
                            | ProgramSection::FExit { .. }
                            | ProgramSection::Lsm { .. }
                            | ProgramSection::LsmCgroup
                            | ProgramSection::Iter { .. }
                            | ProgramSection::Extension
                    ),
                    "{name}: {:?}",
                    program.section
                );
            }
        }
    }
}
