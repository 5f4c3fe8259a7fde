//! One trace from start to report: preflight, load and attach the probes,
//! adopt or launch the target (`start`), drain events until a stop
//! condition (the Python processes refreshed by `python_refresh`, the
//! continuous mode's folds by `continuous`), then snapshot the maps and let
//! the collector build the `Report`.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};
use tracer_common::drops;

use crate::{
    analysis::live::LiveFigures,
    analysis::{Collector, Ending, Settings, World, modes::ModeFigures},
    cli::Args,
    host::{self, scope::Scope},
    kernel::preflight,
    kernel::probes::Probes,
    live::{Live, QuitRequests},
    report::Report,
    session::continuous::Continuous,
    session::drain::{drain, drain_closes},
    session::dump::dump,
    session::loop_watch::{LoopWatch, timed},
    session::python_refresh,
    session::run_error::{RunError, io_err},
    session::start,
    session::status_line::StatusLine,
    session::target::Target,
};

/// Returns the report and the still-attached probes (none for `--dump`):
/// the caller writes the report first and detaches after, since detaching
/// takes a kernel grace period per tracepoint (~40 ms each here,
/// serialised by the kernel).
pub async fn run(args: &Args, started: Instant) -> Result<(Report, Option<Probes>), RunError> {
    if args.live {
        Live::check_terminal()?;
    }
    preflight::check()?;
    crate::host::keep_small_pages();
    if args.dump {
        return dump(args).map(|report| (report, None));
    }
    // Before anything is loaded: a port in use fails at once.
    let mut continuous = Continuous::open(args)?;
    // A pid (cgroup, container) that does not exist is the most common
    // mistake: say so before loading.
    let scope = Scope::of(args.all, args.container.as_deref(), args.cgroup.as_deref())?;
    let adopted = args
        .pid
        .or_else(|| scope.as_ref().and_then(Scope::init))
        .map(Target::attach)
        .transpose()?;
    let settings = Settings {
        base_ns: host::clock::monotonic_ns(),
        python_rate_hz: (!args.no_python).then_some(args.rate()),
        count_entries: args.count_entries && !args.no_python,
        timeline: args.perfetto.is_some(),
        continuous: args.continuous(),
        dump: false,
        loop_stall_ns: args.loop_stall * 1_000_000,
        redact_paths: args.redact_paths.clone(),
        native: start::native_mode(args),
        fault_period: args.fault_period(),
    };
    let mut world = World::new(
        &settings,
        Box::new(crate::session::host_system::HostSystem::default()),
    );
    let mut collector = Collector::new(settings);
    let mut probes = start::load_probes(args, scope.as_ref(), &mut collector)?;
    log::info!("programs attached after {:?}", started.elapsed());
    // Before the command starts (a terminal's Ctrl-C reaches it and the
    // tracer at once: it must stop the trace and write the report, not kill
    // the tracer while it looks at the new process), and before saying
    // "tracing".
    let stop_signals = StopSignals::install()?;
    let (mut target, threads, in_scope) = match (&scope, adopted) {
        (Some(scope), init) => {
            let pids = start::adopt_scope(scope, &mut probes, (&mut collector, &mut world))?;
            // `--container`: its init's exit ends the trace.
            (init.unwrap_or_else(Target::none), 0, Some(pids))
        }
        (None, Some(target)) => {
            let (target, threads) =
                start::adopt(args, &mut probes, (&mut collector, &mut world), target)?;
            (target, threads, None)
        }
        (None, None) => (start::launch(args, &mut probes)?, 0, None),
    };
    let looked_at = start::python_tree(
        args,
        &target,
        in_scope.as_deref(),
        &mut probes,
        (&mut collector, &mut world),
    );
    let looked_at = looked_at.and_then(|()| {
        start::hold_until_loaded(&mut target, &mut probes, (&mut collector, &mut world))
    });
    // Its interpreter published, the command runs.
    target.let_go();
    looked_at?;
    if let (Some(scope), Some(pids)) = (&scope, &in_scope) {
        if target.pid != 0 {
            start::add_root(args, &target, (&mut collector, &mut world), threads);
        }
        collector.set_scope(scope.describe());
        if !args.quiet {
            eprintln!(
                "tracer: tracing {} ({} processes now); Ctrl-C to stop and print the report",
                scope.describe(),
                pids.len()
            );
        }
    } else {
        start::start_target(args, &target, (&mut collector, &mut world), threads)?;
    }
    // The mode's own figures, from the processes taken in.
    let mut modes = ModeFigures::new(&collector, &mut world);
    continuous.start(args, &probes, (&world, &mut modes));
    let live = match args.live {
        true => Some(LiveView::start(&probes, &mut modes)?),
        false => None,
    };
    let trace_start = Instant::now();
    let (stopped, mut ring) = event_loop(
        args,
        &mut probes,
        &mut target,
        (&mut collector, &mut world, &mut modes),
        stop_signals,
        &mut continuous,
        live,
    )
    .await?;
    continuous.finish(
        args,
        &mut probes,
        (&mut collector, &mut world, &mut modes),
        target.pid,
    )?;
    // Where each thread is now: what a stuck program is stuck in.
    python_refresh::refresh(&mut probes, &mut collector, &mut world)?;
    collector.snapshot_threads(&mut world, true);
    let duration = trace_start.elapsed();
    let end_ns = host::clock::monotonic_ns();
    if let Some(first) = collector.first_event() {
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
        fault_error: probes.fault_error.clone(),
        faults_counted: probes.faults_counted(),
        warnings: std::mem::take(&mut probes.warnings),
    };
    let maps = probes.snapshot()?;
    // Descriptors closed and threads ended while the maps were read: their
    // records are the whole of their rows.
    collector.after_snapshot();
    drain_closes(&mut ring, (&mut collector, &mut world, &mut modes));
    let mut report = collector.finish(&mut world, maps, ending, modes);
    // --serve's final figures: --otlp's, counted to the last window.
    if let Some(metrics) = report.metrics.as_mut() {
        continuous.own_figures().add_to(metrics);
    }
    Ok((report, Some(probes)))
}

const STATUS_INTERVAL: Duration = Duration::from_millis(250);
const STOPPED_BY_SIGINT: &str = "interrupted (SIGINT)";
const STOPPED_BY_VIEW: &str = "quit from the live view";
/// How long a launched command that got the terminal's SIGINT with the
/// tracer is given to end before the report is written.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// How often the ring buffer is drained of Python samples (they are
/// submitted without wake-up) and the interpreter's thread list re-read.
const PYTHON_INTERVAL: Duration = Duration::from_millis(50);
const PYTHON_SEARCH_INTERVAL: Duration = Duration::from_millis(5);
/// How often samples are drained while a program starts (see `event_loop`).
const EARLY_DRAIN_INTERVAL: Duration = Duration::from_millis(1);
/// How often `--perfetto`'s read and switch records are drained: 16 MiB
/// of ring buffer holds 50 ms of ~2,000,000 reads a second.
const TIMELINE_DRAIN_INTERVAL: Duration = Duration::from_millis(50);
/// How long the fast search lasts (a target that is not Python is then
/// looked at every 50 ms, like the rest); samples are drained every 1 ms
/// for as long.
const PYTHON_SEARCH_FOR: Duration = Duration::from_secs(2);

/// `--live`: the view, what it needs of the last refresh, and its quit key.
struct LiveView {
    view: Live,
    figures: LiveFigures,
    quit: QuitRequests,
}

impl LiveView {
    fn start(probes: &Probes, modes: &mut ModeFigures) -> Result<Self, RunError> {
        let lost = probes.drops().map_or(0, |d| d[drops::PY_SAMPLES as usize]);
        let figures = LiveFigures::start(modes, lost);
        let (view, quit) = Live::start()?;
        Ok(Self {
            view,
            figures,
            quit,
        })
    }

    /// A snapshot of now (every event drained), to the view.
    fn show(
        &mut self,
        probes: &Probes,
        (collector, world, modes): (&mut Collector, &mut World, &mut ModeFigures),
    ) -> Result<(), RunError> {
        let snapshot =
            collector.live_snapshot(world, modes, &mut self.figures, &probes.live_maps()?);
        self.view.show(snapshot);
        Ok(())
    }
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
    (collector, world, modes): (&mut Collector, &mut World, &mut ModeFigures),
    stop_signals: StopSignals,
    continuous: &mut Continuous,
    mut live: Option<LiveView>,
) -> Result<(&'static str, aya::maps::RingBuf<aya::maps::MapData>), RunError> {
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
    let mut status = StatusLine::new(args.quiet || live.is_some(), shares_terminal);
    let mut refresh = tokio::time::interval(Duration::from_secs_f64(args.refresh));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticker = tokio::time::interval(STATUS_INTERVAL);
    let mut python_ticker = tokio::time::interval(PYTHON_SEARCH_INTERVAL);
    let mut last_python_refresh = Instant::now();
    let mut early_drain = tokio::time::interval(EARLY_DRAIN_INTERVAL);
    let mut timeline_drain = tokio::time::interval(TIMELINE_DRAIN_INTERVAL);
    timeline_drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    early_drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    python_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let _watch = LoopWatch::start();
    let exited = target.exited();
    tokio::pin!(exited);

    let stopped = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(io_err("polling the ring buffer"))?;
                drain(guard.get_inner_mut(), (collector, world, modes));
                guard.clear_ready();
                if world.python_dirty {
                    timed("python: a refresh", || python_refresh::refresh(probes, collector, world))?;
                    // What came meanwhile (samples do not wake the loop).
                    drain(guard.get_inner_mut(), (collector, world, modes));
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
            _ = python_ticker.tick(), if world.python.is_some() => {
                // Every 5 ms until the interpreter's first thread is known
                // (a launched script may fork or read within its first tens
                // of ms), then every 50 ms.
                let early = started.elapsed() < PYTHON_SEARCH_FOR;
                let searching =
                    early && world.python.as_ref().is_some_and(|p| !p.has_threads());
                if searching || last_python_refresh.elapsed() >= PYTHON_INTERVAL {
                    drain(ring.get_mut(), (collector, world, modes));
                    timed("python: a refresh", || python_refresh::refresh(probes, collector, world))?;
                    drain(ring.get_mut(), (collector, world, modes));
                    last_python_refresh = Instant::now();
                }
                // Past the search: wake every 50 ms, not 200 times a second
                // for the whole trace (an always-on agent's steady cost).
                if !early && python_ticker.period() < PYTHON_INTERVAL {
                    python_ticker = tokio::time::interval(PYTHON_INTERVAL);
                    python_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
            }
            // A starting program imports: module bodies run once and their
            // code objects are freed at once, their addresses soon reused by
            // the next ones. Samples (which do not wake the loop) are named
            // within a millisecond then, not five.
            _ = early_drain.tick(), if started.elapsed() < PYTHON_SEARCH_FOR
                && world.python.as_ref().is_some_and(|p| p.has_threads()) => {
                drain(ring.get_mut(), (collector, world, modes));
            }
            // --perfetto: reads and switches do not wake the loop either,
            // nor (one-off traces) most closed descriptors' records.
            _ = timeline_drain.tick(), if collector.settings().timeline
                || !collector.settings().continuous => {
                drain(ring.get_mut(), (collector, world, modes));
            }
            // --serve, --every: the maps folded every second, a window
            // written every --every seconds.
            due = continuous.due(), if continuous.running() => {
                drain(ring.get_mut(), (collector, world, modes));
                timed("a window", || continuous.tick(due, probes, (collector, world, modes), target.pid))?;
            }
            // --live: the figures of now, to the view.
            _ = refresh.tick(), if live.is_some() => {
                drain(ring.get_mut(), (collector, world, modes));
                if let Some(live) = live.as_mut() {
                    timed("the live view", || live.show(probes, (collector, world, modes)))?;
                }
            }
            _ = async { live.as_mut().map(|l| &mut l.quit).expect("live").recv().await },
                if live.is_some() => break STOPPED_BY_VIEW,
            _ = ticker.tick() => {
                timed("the status line", || {
                    let lost = probes.drops().map(|d| d[drops::RINGBUF as usize]).unwrap_or(0);
                    status.update(started.elapsed(), collector.progress(modes, lost));
                });
            }
        }
    };
    // The terminal back first: what follows may take seconds.
    if let Some(live) = live.take() {
        live.view.close();
    }
    // Everything the kernel wrote before we stopped.
    drain(ring.get_mut(), (collector, world, modes));
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
        drain(ring.get_mut(), (collector, world, modes));
    }
    if target.launched && target.is_alive() {
        collector.warn(format!(
            "the launched command (pid {}) is still running; tracing stopped before it exited",
            target.pid
        ));
    }
    Ok((stopped, ring.into_inner()))
}
