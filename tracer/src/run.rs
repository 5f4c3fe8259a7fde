//! One trace from start to report: preflight, load and attach the probes,
//! adopt or launch the target, drain events until a stop condition, then
//! snapshot the maps and let the collector build the `Report`.

use std::{
    io::IsTerminal,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    sync::watch,
};
use tracer_common::drops;

use crate::{
    analysis::{Collector, Ending, Settings},
    cli::Args,
    events,
    preflight::{self, PreflightError},
    probes::{ProbeError, Probes},
    procfs,
    python::PythonTree,
    report::{Report, Target as ReportTarget},
    status::StatusLine,
    target::{Target, TargetError},
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
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
            Self::Preflight(_) | Self::Probes(ProbeError::Btf(_)) => 5,
            Self::Target(_) => 4,
            Self::Serve(_) => 8,
            Self::Output(_) => 7,
            Self::Probes(ProbeError::Verifier { .. }) | Self::Probes(ProbeError::Load(_)) => 6,
            Self::Probes(ProbeError::Attach { .. }) => 5,
            Self::Probes(_) | Self::Io { .. } => 1,
        }
    }
}

fn io_err(context: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { context, source }
}

/// Returns the report and the still-attached probes (none for `--dump`):
/// the caller writes the report first and detaches after, since detaching
/// takes a kernel grace period per tracepoint (~40 ms each here,
/// serialised by the kernel).
pub async fn run(args: &Args, started: Instant) -> Result<(Report, Option<Probes>), RunError> {
    preflight::check()?;
    if args.dump {
        return dump(args).map(|report| (report, None));
    }
    // Before anything is loaded: a port in use fails at once.
    let listener = args.serve.map(crate::serve::bind).transpose()?;
    let mut windows = match (args.every, &args.output) {
        (Some(every), Some(dir)) => Some(Windows {
            dir: crate::output::WindowDir::open(dir, args.keep)?,
            every: Duration::from_secs(every),
            started: std::time::SystemTime::now(),
            before: crate::report::metrics::Metrics::default(),
            written: 0,
        }),
        _ => None,
    };
    // A pid that does not exist is the most common mistake: say so before loading.
    let adopted = args.pid.map(Target::attach).transpose()?;
    let mut collector = Collector::new(Settings {
        base_ns: events::monotonic_ns(),
        python_rate_hz: (!args.no_python).then_some(args.rate),
        count_entries: args.count_entries && !args.no_python,
        timeline: args.perfetto.is_some(),
        continuous: args.serve.is_some() || args.every.is_some(),
    });
    let mut probes = load_probes(args, &mut collector)?;
    log::info!("programs attached after {:?}", started.elapsed());
    // Before the command starts (a terminal's Ctrl-C reaches it and the
    // tracer at once: it must stop the trace and write the report, not kill
    // the tracer while it looks at the new process), and before saying
    // "tracing".
    let stop_signals = StopSignals::install()?;
    let (mut target, threads) = match adopted {
        Some(target) => adopt(args, &mut probes, &mut collector, target)?,
        None => (launch(args, &mut probes)?, 0),
    };
    if !args.no_python && probes.sampler_error.is_none() {
        let mut tree = PythonTree::new(target.pid, args.read_stacks);
        if target.launched && probes.sees_exec() {
            tree.await_exec(target.pid);
        }
        if !target.launched && !args.no_children {
            for pid in procfs::descendants(target.pid) {
                tree.add(pid);
            }
        }
        collector.python = Some(tree);
        refresh_python(&mut probes, &mut collector)?;
        collector.snapshot_threads(false);
    }
    let comm = add_root(args, &target, &mut collector, threads);
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

    // --serve: the endpoint answers from the latest figures, published
    // by the loop every second (and now).
    let publisher = match listener {
        Some(listener) => {
            // Nothing folded yet: the first fold comes after the first
            // drain (a file's name before its reads).
            let (publisher, latest) = watch::channel(Arc::new(String::new()));
            publish(&collector, &publisher);
            tokio::spawn(crate::serve::serve(listener, latest));
            if !args.quiet
                && let Some(addr) = args.serve
            {
                eprintln!("tracer: Prometheus metrics at http://{addr}/metrics");
            }
            Some(publisher)
        }
        None => None,
    };
    let trace_start = Instant::now();
    let stopped = event_loop(
        args,
        &mut probes,
        &mut target,
        &mut collector,
        stop_signals,
        publisher.as_ref(),
        windows.as_mut(),
    )
    .await?;
    // The last window, to the stop (with every event drained).
    if let Some(windows) = windows.as_mut() {
        fold(&mut probes, &mut collector)?;
        windows.write(&collector, target.pid)?;
        if !args.quiet {
            eprintln!(
                "tracer: {} window reports written to {} (the last {} kept)",
                windows.written,
                windows.dir.path().display(),
                args.keep
            );
        }
    }
    // Where each thread is now: what a stuck program is stuck in.
    refresh_python(&mut probes, &mut collector)?;
    collector.snapshot_threads(true);
    let duration = trace_start.elapsed();
    let end_ns = events::monotonic_ns();
    if let Some(first) = collector.first_event {
        log::info!("first event after {} ms", (first - started).as_millis());
    }
    let (exit_code, exit_signal) = target.reap();
    let ending = Ending {
        stopped,
        duration,
        end_ns,
        exit_code,
        exit_signal,
        sampler_error: probes.sampler_error.clone(),
        warnings: std::mem::take(&mut probes.warnings),
    };
    let maps = probes.snapshot()?;
    Ok((collector.finish(maps, ending), Some(probes)))
}

/// `--dump`: every Python thread's stack now, read from the processes'
/// memory; nothing is loaded into the kernel.
fn dump(args: &Args) -> Result<Report, RunError> {
    let pid = args.pid.ok_or(TargetError::DumpWithoutPid)?;
    let target = Target::attach(pid)?;
    let mut collector = Collector::new(Settings {
        base_ns: events::monotonic_ns(),
        ..Settings::default()
    });
    let mut tree = PythonTree::new(target.pid, 0);
    if !args.no_children {
        for pid in procfs::descendants(target.pid) {
            tree.add(pid);
        }
    }
    // The look for each interpreter, then each one's thread list.
    tree.refresh();
    collector.python = Some(tree);
    collector.snapshot_threads(false);
    add_root(args, &target, &mut collector, 0);
    Ok(collector.finish_dump())
}

/// The target as the report's root process; returns its name.
fn add_root(args: &Args, target: &Target, collector: &mut Collector, threads: u32) -> String {
    let (comm, argv) = target.describe().unwrap_or_else(|_| {
        // It may already have exited; the report still has what it did.
        (
            args.command
                .first()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
            args.command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        )
    });
    let ppid = if target.launched {
        std::process::id()
    } else {
        procfs::stat(target.pid).map_or(0, |s| s.ppid)
    };
    collector
        .processes
        .add_root(target.pid, ppid, &comm, &argv, threads);
    if let Some(live) = collector.metrics.as_mut() {
        live.on_process(target.pid, ppid);
    }
    collector.target = ReportTarget {
        pid: target.pid,
        comm: comm.clone(),
        argv,
        ..ReportTarget::default()
    };
    comm
}

/// Reads the kernel's layout (BTF offsets), loads and
/// attaches every program. Warnings go to the collector.
fn load_probes(args: &Args, collector: &mut Collector) -> Result<Probes, RunError> {
    let mut warnings = Vec::new();
    let mut probes = Probes::load(
        !args.no_children,
        collector.settings.python_rate_hz,
        collector.settings.timeline,
        &mut warnings,
    )?;
    if collector.settings.count_entries
        && let Err(err) = probes.load_entry_counter()
    {
        collector.entries_error = Some(err.to_string());
    }
    if collector.settings.python_rate_hz.is_some()
        && let Err(err) = probes.load_signal_check()
    {
        warnings.push(format!(
            "when Python signal handlers run is not traced (the uprobe did not load: {err})"
        ));
    }
    probes.warnings.append(&mut warnings);
    Ok(probes)
}

/// `--pid`: traces the process, its threads and (unless `--no-children`)
/// its descendants as they are now, and the zombies they already have.
/// Returns the target and its thread count besides the main thread.
fn adopt(
    args: &Args,
    probes: &mut Probes,
    collector: &mut Collector,
    target: Target,
) -> Result<(Target, u32), RunError> {
    let mut root_threads = 0;
    let mut traced = vec![target.pid];
    if !args.no_children {
        traced.extend(procfs::descendants(target.pid));
    }
    for &pid in &traced {
        probes.trace_pid(pid)?;
        let mut threads = 0;
        for tid in procfs::threads(pid) {
            if tid != pid {
                probes.trace_thread(tid, pid)?;
                threads += 1;
            }
        }
        if pid == target.pid {
            root_threads = threads;
        } else {
            let (comm, ppid, argv) = procfs::describe(pid);
            if let Some(live) = collector.metrics.as_mut() {
                live.on_process(pid, ppid);
            }
            collector
                .processes
                .add_existing(pid, ppid, &comm, &argv, threads);
        }
    }
    // Zombies that predate the trace: listed, and their reaping watched.
    let now_ns = collector.settings.base_ns;
    for zombie in procfs::zombie_children(&traced) {
        probes.watch_zombie(zombie.pid, now_ns)?;
        if let Some(live) = collector.metrics.as_mut() {
            live.on_old_zombie(zombie.pid, zombie.ppid);
        }
        collector.processes.add_preexisting_zombie(&zombie, now_ns);
    }
    collector.files.remember_open_fds(target.pid);
    probes.sample_existing_threads(&traced);
    Ok((target, root_threads))
}

/// Launch mode: the command is held before `exec` until it is traced.
fn launch(args: &Args, probes: &mut Probes) -> Result<Target, RunError> {
    let mut target = Target::spawn_held(&args.command)?;
    probes.trace_pid(target.pid)?;
    // Held before exec: one inherited event covers every thread and child
    // it will have.
    probes.sample_threads(&[target.pid]);
    target.release()?;
    Ok(target)
}

const STATUS_INTERVAL: Duration = Duration::from_millis(250);
const STOPPED_BY_SIGINT: &str = "interrupted (SIGINT)";
/// How long a launched command that got the terminal's SIGINT with the
/// tracer is given to end before the report is written.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// How often the ring buffer is drained of Python samples (they are
/// submitted without wake-up) and the interpreter's thread list re-read.
const PYTHON_INTERVAL: Duration = Duration::from_millis(50);
const PYTHON_SEARCH_INTERVAL: Duration = Duration::from_millis(5);
/// How often samples are drained while a program starts (see `event_loop`).
const EARLY_DRAIN_INTERVAL: Duration = Duration::from_millis(1);
/// How often `--perfetto`'s read and switch records are drained: 4 MiB of
/// ring buffer holds 50 ms of ~500,000 reads a second.
const TIMELINE_DRAIN_INTERVAL: Duration = Duration::from_millis(50);
/// How often `--serve`'s figures are folded from the maps and published.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// `--every`: the window reports' directory, and the figures at the
/// start of the current window.
struct Windows {
    dir: crate::output::WindowDir,
    every: Duration,
    started: std::time::SystemTime,
    before: crate::report::metrics::Metrics,
    written: u64,
}

impl Windows {
    /// The window from `started` to now, as `report-<start ms>.json`.
    fn write(&mut self, collector: &Collector, pid: u32) -> Result<(), RunError> {
        let Some(live) = &collector.metrics else {
            return Ok(());
        };
        let now = std::time::SystemTime::now();
        let ms = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        let figures = live.snapshot();
        let report = serde_json::json!({
            "window_start_unix_ms": ms(self.started),
            "window_end_unix_ms": ms(now),
            "target_pid": pid,
            "figures": crate::report::metrics::window_json(&figures.since(&self.before)),
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
        let name = format!("report-{}.json", ms(self.started));
        self.dir.write(&name, text.as_bytes())?;
        self.written += 1;
        self.before = figures;
        self.started = now;
        Ok(())
    }
}

/// `--serve`, `--every`: folds the maps into the continuous figures and
/// lets the kernel forget the gone.
fn fold(probes: &mut Probes, collector: &mut Collector) -> Result<(), RunError> {
    let reads = probes.read_stats()?;
    let threads = probes.threads()?;
    let open = probes.open_files()?;
    let lost = probes.drops()?.iter().sum();
    if let Some(forget) = collector.fold_metrics(&reads, &threads, &open, lost) {
        probes.forget(&forget)?;
    }
    Ok(())
}

fn publish(collector: &Collector, publisher: &watch::Sender<Arc<String>>) {
    if let Some(live) = &collector.metrics {
        let text = crate::report::metrics::prometheus_text(&live.snapshot());
        publisher.send_replace(Arc::new(text));
    }
}
/// How long the fast search lasts (a target that is not Python is then
/// looked at every 50 ms, like the rest); samples are drained every 1 ms
/// for as long.
const PYTHON_SEARCH_FOR: Duration = Duration::from_secs(2);

/// Looks for interpreters not found yet, re-publishes every process's
/// tid -> thread state map, and symbolizes the new stacks of the
/// kernel-side Python maps.
fn refresh_python(probes: &mut Probes, collector: &mut Collector) -> Result<(), RunError> {
    let Some(tree) = collector.python.as_mut() else {
        return Ok(());
    };
    let updates = tree.refresh();
    let mut ready = false;
    let mut sampled = Vec::new();
    for (pid, update) in updates {
        if update.config.is_some()
            && let Some(found) = tree.process(pid).and_then(|p| p.ready())
        {
            // Its files can then be described after it exits, inside its root.
            let root = found.place.root.as_deref().unwrap_or("/");
            collector.files.note_root(pid, root);
        }
        if let Some((path, offset)) = &update.eval_frame
            && collector.settings.count_entries
            && collector.entries_error.is_none()
            && let Err(err) = probes.attach_entry_counter(path, *offset, pid)
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
        if let Some(config) = update.config {
            probes.set_python_config(pid, config)?;
        }
        probes.update_python_threads(&update.insert, &update.remove)?;
        sampled.extend(update.insert.iter().map(|&(tid, _)| (pid, tid)));
        // After the sampler has the process; attached on a thread of its
        // own (a uprobe takes milliseconds), the loop goes on draining.
        // A process gone already (a short-lived fork) needs no probe; the
        // next process running the same file gets it.
        if let Some((path, offsets)) = &update.signal_checks
            && let Err(err) = probes.attach_signal_checks(path, offsets)
            && procfs::exists(pid)
            && !procfs::is_zombie(pid)
        {
            collector.warnings.push(format!(
                "when Python signal handlers run is not traced: {err}"
            ));
        }
    }
    for attached in probes.signal_checks_attached() {
        match attached.result {
            Ok(took) => log::info!(
                "signal checks of {} probed after {took:?}",
                attached.path.display()
            ),
            // Seen through a process gone already (a short-lived fork): the
            // next process running the file gets the probe.
            Err(err) if err.file_gone() => log::info!("{err}"),
            Err(err) => collector.warnings.push(format!(
                "when Python signal handlers run is not traced: {err}"
            )),
        }
    }
    if let Some(tree) = &collector.python {
        ready = tree.processes().any(|p| p.ready().is_some());
    }
    // (--serve keeps no stacks of kernel events.)
    if ready && !collector.settings.continuous {
        let entries = if collector.settings.count_entries {
            probes.python_entries()?
        } else {
            Vec::new()
        };
        collector.on_python_maps(&probes.python_event_stacks()?, &entries);
    }
    // After the threads are published (start-up is when a fork or a read
    // may come first): CPython's signal handler tables, which the kernel
    // side reads each delivery's handler from.
    for (pid, config) in collector.read_signal_handlers() {
        probes.set_python_config(pid, config)?;
        // Said once the kernel side has it: a handler fired from now on is
        // named from the table (the tests' handshake waits for this line).
        if config.signal_handlers != 0 {
            log::info!(
                "pid {pid}: Python signal handlers known (table at {:#x})",
                config.signal_handlers
            );
        }
    }
    for (pid, tid) in sampled {
        log::info!("pid {pid}: Python thread {tid} is sampled from now on");
    }
    collector.python_dirty = false;
    Ok(())
}

/// The tracer's own SIGINT / SIGTERM: they stop tracing and produce the report.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
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
    stop_signals: StopSignals,
    publisher: Option<&watch::Sender<Arc<String>>>,
    mut windows: Option<&mut Windows>,
) -> Result<&'static str, RunError> {
    let ring = probes.take_events()?;
    // SAFETY: the AsyncFd owns the ring buffer, so its fd outlives the registration.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|err| io_err("polling the ring buffer")(err.into_parts().1))?;
    let StopSignals {
        mut interrupt,
        mut terminate,
    } = stop_signals;
    let deadline = args
        .duration
        .map(|secs| tokio::time::Instant::now() + Duration::from_secs_f64(secs));
    // A launched command writes to the tracer's terminal: a live line there
    // would garble its output.
    let shares_terminal =
        target.launched && (std::io::stdout().is_terminal() || std::io::stderr().is_terminal());
    let mut status = StatusLine::new(args.quiet, shares_terminal);
    let mut ticker = tokio::time::interval(STATUS_INTERVAL);
    let mut python_ticker = tokio::time::interval(PYTHON_SEARCH_INTERVAL);
    let mut last_python_refresh = Instant::now();
    let mut early_drain = tokio::time::interval(EARLY_DRAIN_INTERVAL);
    let mut timeline_drain = tokio::time::interval(TIMELINE_DRAIN_INTERVAL);
    let mut metrics_ticker = tokio::time::interval(METRICS_INTERVAL);
    metrics_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let window_every = windows
        .as_ref()
        .map_or(Duration::from_secs(3600), |w| w.every);
    let mut window_ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + window_every, window_every);
    window_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timeline_drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    early_drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                    // What came meanwhile (samples do not wake the loop).
                    drain(guard.get_inner_mut(), collector);
                }
            }
            result = &mut exited => {
                result?;
                break "target exited";
            }
            _ = interrupt.recv() => break STOPPED_BY_SIGINT,
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
                    drain(ring.get_mut(), collector);
                    last_python_refresh = Instant::now();
                }
            }
            // A starting program imports: module bodies run once and their
            // code objects are freed at once, their addresses soon reused by
            // the next ones. Samples (which do not wake the loop) are named
            // within a millisecond then, not five.
            _ = early_drain.tick(), if started.elapsed() < PYTHON_SEARCH_FOR
                && collector.python.as_ref().is_some_and(|p| p.has_threads()) => {
                drain(ring.get_mut(), collector);
            }
            // --perfetto: reads and switches do not wake the loop either.
            _ = timeline_drain.tick(), if collector.settings.timeline => {
                drain(ring.get_mut(), collector);
            }
            _ = metrics_ticker.tick(), if collector.metrics.is_some() => {
                drain(ring.get_mut(), collector);
                fold(probes, collector)?;
                if let Some(publisher) = publisher {
                    publish(collector, publisher);
                }
            }
            _ = window_ticker.tick(), if windows.is_some() => {
                if let Some(windows) = windows.as_deref_mut() {
                    drain(ring.get_mut(), collector);
                    fold(probes, collector)?;
                    // A window that cannot be written (disk full) is said;
                    // the trace and the next windows go on.
                    if let Err(err) = windows.write(collector, target.pid) {
                        log::warn!("{err}");
                    }
                }
            }
            _ = ticker.tick() => {
                let lost = probes.drops().map(|d| d[drops::RINGBUF as usize]).unwrap_or(0);
                status.update(started.elapsed(), collector.progress(lost));
            }
        }
    };
    // Everything the kernel wrote before we stopped.
    drain(ring.get_mut(), collector);
    status.clear();
    // Ctrl-C on a terminal reaches the launched command too (one
    // foreground process group): the kernel side saw its SIGINT. Let it
    // end, so the report says how, rather than "still running".
    if target.launched
        && stopped == STOPPED_BY_SIGINT
        && collector.got_sigint(target.pid)
        && target.is_alive()
    {
        let _ = tokio::time::timeout(INTERRUPT_GRACE, &mut exited).await;
        drain(ring.get_mut(), collector);
    }
    if target.launched && target.is_alive() {
        collector.warnings.push(format!(
            "the launched command (pid {}) is still running; tracing stopped before it exited",
            target.pid
        ));
    }
    Ok(stopped)
}

fn drain(ring: &mut aya::maps::RingBuf<aya::maps::MapData>, collector: &mut Collector) {
    if let Some(tree) = collector.python.as_mut() {
        tree.new_tick();
    }
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
