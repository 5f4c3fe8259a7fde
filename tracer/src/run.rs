//! One trace from start to report: preflight, load and attach, start or
//! adopt the target, drain events until a stop condition, then read the maps
//! and build the `Report`.

use std::time::{Duration, Instant};

use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};
use tracer_common::{Config, FileOffsets, PidNsOffsets, SyscallRegs, drops, py_stats};

use crate::{
    analysis::{Collector, processes, sched},
    attach::{AttachError, Probes},
    btf,
    cli::Args,
    events,
    preflight::{self, PreflightError},
    python::{self, PythonTracer},
    report::{Dropped, EventCounts, Report, SignalLog, Target as ReportTarget},
    status::StatusLine,
    target::{self, Target, TargetError},
    tracefs::{self, TracefsError},
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// The documented exit status (see `tracer --help`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Preflight(PreflightError::NotPrivileged { .. }) => 3,
            Self::Preflight(_) | Self::Tracefs(_) => 5,
            Self::Target(_) => 4,
            Self::Attach(AttachError::Verifier { .. }) | Self::Attach(AttachError::Load(_)) => 6,
            Self::Attach(AttachError::Attach { .. }) => 5,
            Self::Attach(_) | Self::Io { .. } => 1,
        }
    }
}

fn io_err(context: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { context, source }
}

/// Returns the report and the still-attached probes: the caller writes the
/// report first and detaches after, since detaching takes a kernel grace
/// period per tracepoint (~40 ms each here, serialised by the kernel).
pub async fn run(args: &Args, started: Instant) -> Result<(Report, Probes), RunError> {
    preflight::check()?;
    // A pid that does not exist is the most common mistake: say so before loading.
    let mut target = match args.pid {
        Some(pid) => Some(Target::attach(pid)?),
        None => None,
    };
    let tracefs_root = tracefs::ensure_mounted()?;
    let layout = tracefs::read_layout(&tracefs_root)?;
    let mut early_warnings = Vec::new();
    let (task_exit_code, regs, argv, pid_ns, file) = kernel_structs(&mut early_warnings);
    let mut lifecycle = layout.lifecycle;
    (
        lifecycle.task_mm,
        lifecycle.mm_arg_start,
        lifecycle.mm_arg_end,
    ) = argv;
    let config = Config {
        offsets: layout.offsets,
        lifecycle,
        regs,
        task_state_mask: layout.task_state_mask,
        follow_children: u32::from(!args.no_children),
        task_exit_code,
        pid_ns,
        file,
    };
    let sample_rate = (!args.no_python).then_some(args.rate);
    let mut probes = Probes::load(config, sample_rate)?;
    let mut entries_error = None;
    if args.count_entries
        && !args.no_python
        && let Err(err) = probes.load_entry_counter()
    {
        entries_error = Some(err.to_string());
    }
    probes.warnings.append(&mut early_warnings);
    log::info!("programs attached after {:?}", started.elapsed());

    let mut collector = Collector {
        base_ns: monotonic_ns(),
        ..Collector::default()
    };
    let mut root_threads = 0;
    let mut target = match target.take() {
        Some(target) => {
            probes.trace_pid(target.pid)?;
            let mut traced = vec![target.pid];
            if !args.no_children {
                for child in target::descendants(target.pid) {
                    probes.trace_pid(child)?;
                    traced.push(child);
                }
            }
            for &pid in &traced {
                let mut threads = 0;
                for tid in target::threads(pid) {
                    if tid != pid {
                        probes.trace_thread(tid, pid)?;
                        threads += 1;
                    }
                }
                if pid == target.pid {
                    root_threads = threads;
                } else {
                    let (comm, ppid, argv) = target::describe_pid(pid);
                    collector
                        .processes
                        .add_existing(pid, ppid, &comm, &argv, threads);
                }
            }
            // Zombies that predate the trace: listed, and their reaping watched.
            for zombie in processes::scan_zombies(&traced) {
                probes.watch_zombie(zombie.pid, collector.base_ns)?;
                collector
                    .processes
                    .add_preexisting_zombie(&zombie, collector.base_ns);
            }
            collector.files.remember_open_fds(target.pid);
            sample_existing_threads(&mut probes, &traced);
            target
        }
        None => {
            let mut target = Target::spawn_held(&args.command)?;
            probes.trace_pid(target.pid)?;
            // Held before exec: one inherited event covers every thread
            // and child it will have.
            probes.sample_threads(&[target.pid]);
            target.release()?;
            target
        }
    };
    if !args.no_python && probes.sampler_error.is_none() {
        collector.python_pid = Some(target.pid);
        collector.python = Some(PythonTracer::new(
            target.pid,
            args.read_stacks,
            !args.no_children,
        ));
        collector.count_entries = args.count_entries;
        collector.entries_error = entries_error.take();
        refresh_python(&mut probes, &mut collector)?;
    }
    let (comm, argv) = target.describe().unwrap_or_else(|_| {
        // It may already have exited; the report still has what it did.
        (
            args.command.first().cloned().unwrap_or_default(),
            args.command.clone(),
        )
    });
    let root_ppid = if target.launched {
        std::process::id()
    } else {
        target::describe_pid(target.pid).1
    };
    collector
        .processes
        .add_root(target.pid, root_ppid, &comm, &argv, root_threads);
    // Before saying "tracing": a Ctrl-C right after that line must stop the
    // trace and write the report, not kill the tracer.
    let signals = Signals::install()?;
    if !target.launched {
        if !target.is_alive() {
            return Err(TargetError::Gone { pid: target.pid }.into());
        }
        // Like strace's "Process N attached": from here on nothing is missed.
        if !args.quiet {
            eprintln!(
                "tracer: tracing pid {} ({comm}); Ctrl-C to stop and print the report",
                target.pid
            );
        }
    }

    let trace_start = Instant::now();
    let stopped = event_loop(args, &mut probes, &mut target, &mut collector, signals).await?;
    let duration = trace_start.elapsed();
    let end_ns = monotonic_ns();
    if let Some(first) = collector.first_event {
        log::info!("first event after {} ms", (first - started).as_millis());
    }

    let (exit_code, exit_signal) = target.reap();
    // Last look at the threads, then the samples still in the ring.
    let drop_counts = probes.drops()?;
    if let Some(tracer) = collector.python.as_mut() {
        tracer.on_event_stacks(&probes.python_event_stacks()?);
        if collector.count_entries {
            tracer.on_entries(&probes.python_entries()?);
        }
    }
    let py_stats = probes.python_stats()?;
    let sampler_error = probes.sampler_error.clone();
    let rows = probes.read_stats()?;
    let opens = probes.file_opens()?;
    let threads = probes.threads()?;
    let mut probes_warnings = std::mem::take(&mut probes.warnings);

    let mut names = collector.exit_comms.clone();
    names.extend(sched::live_names(&threads));
    let mut reads = collector.files.aggregate(&rows, &opens);
    let sched = sched::summarize(&threads, &names);
    let events = EventCounts {
        received: collector.received,
        lost: drop_counts[drops::RINGBUF as usize],
        dropped: Dropped {
            reads: drop_counts[drops::READ_STATS as usize],
            threads: drop_counts[drops::THREADS as usize],
            tables: drop_counts[drops::TABLES as usize],
            lifecycle: drop_counts[drops::LIFECYCLE as usize],
        },
    };
    let python = match (&collector.python, sampler_error) {
        (_, Some(err)) => python::disabled(&format!("Python sampling could not start: {err}")),
        (None, None) => python::disabled("--no-python"),
        (Some(tracer), None) => {
            let mut section = tracer.report(args.rate);
            let events = tracer.event_report();
            section.off_cpu = events.off_cpu;
            section.forks = events.forks;
            if args.count_entries {
                section.entries_from_c = tracer.entries_report();
                section.entries_error = collector.entries_error.clone();
            }
            attach_read_stacks(&mut reads, &collector.files, tracer, events.reads);
            section.ticks = py_stats[py_stats::SAMPLES as usize];
            section.ticks_without_thread_state = py_stats[py_stats::NO_THREAD_STATE as usize];
            section.ticks_outside_python = py_stats[py_stats::NO_FRAME as usize];
            section.samples_lost = drop_counts[drops::PY_SAMPLES as usize];
            section
        }
    };
    let complete = drop_counts.iter().all(|&n| n == 0) && collector.decode_errors == 0;
    let signals = std::mem::take(&mut collector.signals);
    let (processes, zombies) = std::mem::take(&mut collector.processes).finish(
        end_ns,
        collector.base_ns,
        |pid| signals.killer_of(pid),
        processes::is_zombie_now,
        crate::nspid::ns_pid,
    );
    let (signals, log_entries, log_total) = signals.finish();
    let mut warnings = std::mem::take(&mut probes_warnings);
    warnings.append(&mut collector.warnings);
    if collector.decode_errors > 0 {
        warnings.push(format!(
            "{} ring buffer records could not be decoded",
            collector.decode_errors
        ));
    }
    let report = Report {
        target: ReportTarget {
            pid: target.pid,
            ns_pid: processes
                .iter()
                .find(|p| p.pid == target.pid)
                .and_then(|p| p.ns_pid),
            comm: names.get(&target.pid).cloned().unwrap_or(comm),
            argv,
            exit_code,
            exit_signal,
        },
        duration_s: duration.as_secs_f64(),
        events,
        stopped: stopped.into(),
        complete,
        reads,
        sched,
        python,
        processes,
        zombies,
        signals,
        signal_log: SignalLog {
            total: log_total,
            entries: log_entries,
        },
        warnings,
    };
    Ok((report, probes))
}

/// Kernel struct offsets from BTF: `task_struct.exit_code`, the saved
/// syscall registers, where argv is. Without them the trace still runs,
/// with less detail.
#[allow(clippy::type_complexity)]
fn kernel_structs(
    warnings: &mut Vec<String>,
) -> (u32, SyscallRegs, (u32, u32, u32), PidNsOffsets, FileOffsets) {
    let btf = match btf::vmlinux() {
        Ok(btf) => btf,
        Err(err) => {
            warnings.push(format!(
                "no kernel BTF ({err}): exit statuses come only from traced wait4 calls, \
                 threads may be listed as processes and all signals as sent by the kernel"
            ));
            return (
                0,
                SyscallRegs::default(),
                (0, 0, 0),
                PidNsOffsets::default(),
                FileOffsets::default(),
            );
        }
    };
    let exit_code = btf::task_exit_code_offset(&btf).unwrap_or_else(|err| {
        warnings.push(format!(
            "exit statuses come only from traced wait4/waitid calls: {err}"
        ));
        0
    });
    let regs = btf::syscall_regs(&btf).unwrap_or_else(|err| {
        warnings.push(format!(
            "threads may be listed as processes, signals not told from kernel ones, wait \
             statuses not read: {err}"
        ));
        SyscallRegs::default()
    });
    let argv = btf::argv_offsets(&btf).unwrap_or_else(|err| {
        warnings.push(format!("command lines after exec are not captured: {err}"));
        (0, 0, 0)
    });
    let pid_ns = btf::pid_ns_offsets(&btf).unwrap_or_else(|err| {
        warnings.push(format!(
            "the pid in its own namespace of a process that exits during the trace is not \
             captured (only read from /proc while it is there): {err}"
        ));
        PidNsOffsets::default()
    });
    let file = btf::file_offsets(&btf).unwrap_or_else(|err| {
        warnings.push(format!(
            "pipes and sockets closed right after their first read may stay unnamed: {err}"
        ));
        FileOffsets::default()
    });
    (exit_code, regs, argv, pid_ns, file)
}

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Puts each file's Python read stacks on its `FileReads` row.
/// Attach mode: a sampling event on every thread of the traced processes.
/// Threads started while this runs inherit the event only from a thread
/// that already had it, so list again until no thread is new.
fn sample_existing_threads(probes: &mut Probes, traced: &[u32]) {
    const MAX_PASSES: usize = 8;
    for _ in 0..MAX_PASSES {
        let tids: Vec<u32> = traced
            .iter()
            .flat_map(|&pid| target::threads(pid))
            .collect();
        if probes.sample_threads(&tids) == 0 {
            return;
        }
    }
}

fn attach_read_stacks(
    reads: &mut [crate::report::FileReads],
    files: &crate::analysis::reads::FileTable,
    tracer: &PythonTracer,
    stacks: std::collections::HashMap<u64, Vec<crate::report::EventStack>>,
) {
    let Some(pid) = tracer.ready().map(|_| tracer.pid()) else {
        return;
    };
    for (file_id, list) in stacks {
        let path = files.path_of(pid, file_id);
        if let Some(row) = reads.iter_mut().find(|r| r.pid == pid && r.path == path) {
            row.python_stacks_every = u64::from(tracer.read_stack_every());
            for stack in list {
                match row
                    .python_stacks
                    .iter_mut()
                    .find(|s| s.frames == stack.frames)
                {
                    Some(existing) => existing.samples += stack.samples,
                    None => row.python_stacks.push(stack),
                }
            }
            row.python_stacks
                .sort_by_key(|s| std::cmp::Reverse(s.samples));
        }
    }
}

const STATUS_INTERVAL: Duration = Duration::from_millis(250);
/// How often the ring buffer is drained of Python samples (they are
/// submitted without wake-up) and the interpreter's thread list re-read.
const PYTHON_INTERVAL: Duration = Duration::from_millis(50);
const PYTHON_SEARCH_INTERVAL: Duration = Duration::from_millis(5);
/// How long the fast search lasts (a target that is not Python is then
/// looked at every 50 ms, like the rest); samples are drained every 5 ms
/// for as long.
const PYTHON_SEARCH_FOR: Duration = Duration::from_secs(2);

/// Finds the interpreter (once) and re-publishes the tid -> thread state map.
fn refresh_python(probes: &mut Probes, collector: &mut Collector) -> Result<(), RunError> {
    let Some(tracer) = collector.python.as_mut() else {
        return Ok(());
    };
    let update = tracer.refresh();
    // The sampled process may be a child of the target (a wrapper's).
    collector.python_pid = Some(tracer.pid());
    if update.config.is_some()
        && let Some(ready) = tracer.ready()
    {
        // Its files can then be described after it exits, inside its root.
        let root = ready.place.root.as_deref().unwrap_or("/");
        collector.files.note_root(tracer.pid(), root);
    }
    if let Some((path, offset)) = &update.eval_frame
        && collector.count_entries
        && collector.entries_error.is_none()
        && let Err(err) = probes.attach_entry_counter(path, *offset, tracer.pid())
    {
        // With the cause (e.g. the process has already exited).
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        collector.entries_error = Some(message);
    }
    if collector.count_entries && tracer.ready().is_some() {
        tracer.on_entries(&probes.python_entries()?);
    }
    if let Some(config) = update.config {
        probes.set_python_config(config)?;
    }
    probes.update_python_threads(&update.insert, &update.remove)?;
    if tracer.ready().is_some() {
        tracer.on_event_stacks(&probes.python_event_stacks()?);
    }
    collector.python_dirty = false;
    Ok(())
}

/// The signals that stop tracing (and produce the report).
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, RunError> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())
                .map_err(io_err("installing SIGINT handler"))?,
            terminate: signal(SignalKind::terminate())
                .map_err(io_err("installing SIGTERM handler"))?,
        })
    }
}

/// Drains the ring buffer until the target exits, the duration elapses, or
/// SIGINT / SIGTERM arrives. Returns why it stopped.
async fn event_loop(
    args: &Args,
    probes: &mut Probes,
    target: &mut Target,
    collector: &mut Collector,
    signals: Signals,
) -> Result<&'static str, RunError> {
    let ring = probes.take_events()?;
    // SAFETY: the AsyncFd owns the ring buffer, so its fd outlives the registration.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|err| io_err("polling the ring buffer")(err.into_parts().1))?;
    let Signals {
        mut interrupt,
        mut terminate,
    } = signals;
    let deadline = args
        .duration
        .map(|secs| tokio::time::Instant::now() + Duration::from_secs_f64(secs));
    let mut status = StatusLine::new(args.quiet);
    let mut ticker = tokio::time::interval(STATUS_INTERVAL);
    let mut python_ticker = tokio::time::interval(PYTHON_SEARCH_INTERVAL);
    let mut last_python_refresh = Instant::now();
    python_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let exited = target.exited();
    tokio::pin!(exited);

    let stopped = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(io_err("polling the ring buffer"))?;
                drain(guard.get_inner_mut(), collector);
                guard.clear_ready();
                if collector.python_dirty {
                    refresh_python(probes, collector)?;
                }
            }
            result = &mut exited => {
                result?;
                break "target exited";
            }
            _ = interrupt.recv() => break "interrupted (SIGINT)",
            _ = terminate.recv() => break "terminated (SIGTERM)",
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await },
                if deadline.is_some() => break "duration elapsed",
            _ = python_ticker.tick(), if collector.python.is_some() => {
                // Every 5 ms until the interpreter's first thread is known
                // (a launched script may fork or read within its first tens
                // of ms), then every 50 ms.
                let early = started.elapsed() < PYTHON_SEARCH_FOR;
                let searching =
                    early && collector.python.as_ref().is_some_and(|p| !p.has_threads());
                if searching || last_python_refresh.elapsed() >= PYTHON_INTERVAL {
                    drain(ring.get_mut(), collector);
                    refresh_python(probes, collector)?;
                    last_python_refresh = Instant::now();
                } else if early {
                    // Start-up is when a program imports: module bodies run
                    // once and their code objects are freed at once, so
                    // samples in them are symbolized within ~5 ms, not 50.
                    drain(ring.get_mut(), collector);
                }
            }
            _ = ticker.tick() => {
                let lost = probes.drops().map(|d| d[drops::RINGBUF as usize]).unwrap_or(0);
                status.update(started.elapsed(), collector.received, lost);
            }
        }
    };
    // Everything the kernel wrote before we stopped.
    drain(ring.get_mut(), collector);
    status.clear();
    if target.launched && target.is_alive() {
        collector.warnings.push(format!(
            "the launched command (pid {}) is still running; tracing stopped before it exited",
            target.pid
        ));
    }
    Ok(stopped)
}

fn drain(ring: &mut aya::maps::RingBuf<aya::maps::MapData>, collector: &mut Collector) {
    while let Some(item) = ring.next() {
        match events::decode(&item) {
            Ok(event) => collector.on_event(event),
            Err(err) => {
                log::warn!("{err}");
                collector.decode_errors += 1;
            }
        }
    }
}
