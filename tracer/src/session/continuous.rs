//! The continuous mode (`--serve`, `--every`, `--otlp`): every second the kernel
//! maps are folded into the bounded figures of `analysis::metrics` and
//! the rows of what ended are forgotten (`Probes::forget`); `--serve`'s
//! endpoint answers from the exposition published after each fold, and
//! from the profile windows it asks for (opened here, closed when their
//! seconds are up, each one's report sent back); `--every` writes each
//! window's figures as a JSON report; `--otlp` hands each window's samples
//! to its exporter. The loop knows only [`Continuous`].

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{Instant, Interval, MissedTickBehavior},
};
use tracer_common::drops;

use crate::{
    analysis::{Collector, World, modes::ModeFigures},
    cli::Args,
    kernel::probes::{ProbeError, Probes},
    otlp_exporter::{Exporter, OtlpError},
    report::{
        Report,
        metrics::{Metrics, OtlpFigures, WebFigures},
    },
    serve::{Endpoint, ProfileRequest, ServeError, Web},
    session::output::{OutputError, WindowDir},
};

/// How often `--serve`'s figures are folded from the maps and published.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ContinuousError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
    #[error(transparent)]
    Otlp(#[from] OtlpError),
}

/// `--serve`, `--every` and `--otlp`, from before tracing to the last
/// window.
/// Without either, it does nothing.
pub struct Continuous {
    /// `--serve`: the address bound before tracing, served from `start`.
    listener: Option<std::net::TcpListener>,
    /// `--web-config`: read and checked before tracing.
    web: Option<Arc<Web>>,
    /// `--serve`: the latest exposition, for the endpoint.
    publisher: Option<watch::Sender<Arc<String>>>,
    /// `--serve`: the endpoint's profile requests, and the windows open.
    profiles: Option<mpsc::Receiver<ProfileRequest>>,
    open: Vec<Profiling>,
    /// `--every`: the window reports.
    windows: Option<Windows>,
    /// `--every` or `--otlp`: how long a window lasts.
    every: Option<Duration>,
    /// `--otlp`: the exporter, and the capture window open for it.
    otlp: Option<Otlp>,
    /// From `start`, in continuous mode.
    clock: Option<Clock>,
    /// `--serve`: the endpoint's thread, and what tells it to stop.
    serving: Option<(std::thread::JoinHandle<()>, oneshot::Sender<()>)>,
}

/// What is due in the loop: see [`Continuous::due`].
pub enum Due {
    /// The figures are folded from the maps (every second).
    Fold,
    /// An `--every` (or `--otlp`) window ended.
    Window,
    /// The endpoint asks for a profile window.
    Profile(ProfileRequest),
    /// A profile window's seconds are up.
    ProfileEnd,
}

/// A profile window open for a request.
struct Profiling {
    window: u64,
    ends: Instant,
    reply: oneshot::Sender<Result<Report, String>>,
}

/// `--otlp`'s exporter and its current window (`None` until the trace
/// starts, or when it could not be opened).
struct Otlp {
    exporter: Exporter,
    window: Option<u64>,
}

/// The continuous mode's tickers.
struct Clock {
    folds: Interval,
    windows: Interval,
}

impl Continuous {
    /// Before anything is loaded: `--web-config` is read and checked,
    /// `--serve`'s address bound (a port in use fails at once), `--every`'s
    /// directory opened and checked writable, and `--otlp`'s endpoint
    /// checked (its TLS roots loaded). An address other than loopback that
    /// nothing guards is warned about.
    pub fn open(args: &Args) -> Result<Self, ContinuousError> {
        let web = args
            .web_config
            .as_deref()
            .map(Web::load)
            .transpose()
            .map_err(ServeError::from)?
            .map(Arc::new);
        let listener = args.serve.map(crate::serve::bind).transpose()?;
        let otlp = match &args.otlp {
            Some(url) => {
                let url = (!url.is_empty()).then_some(url.as_str());
                let endpoint =
                    crate::otlp_exporter::endpoint(url, args.otlp_ca.as_deref(), |name| {
                        std::env::var(name).ok()
                    })?;
                Some(Otlp {
                    exporter: Exporter::start(endpoint)?,
                    window: None,
                })
            }
            None => None,
        };
        if let Some(addr) = args.serve
            && let Some(warning) =
                crate::serve::exposure_warning(addr, web.as_deref().map(|w| w.current()).as_deref())
        {
            log::warn!("{warning}");
        }
        let windows = match (args.every, &args.output) {
            (Some(_), Some(dir)) => Some(Windows {
                dir: WindowDir::open(dir, args.keep)?,
                started: SystemTime::now(),
                before: Metrics::default(),
                written: 0,
            }),
            _ => None,
        };
        Ok(Self {
            listener,
            web,
            publisher: None,
            profiles: None,
            open: Vec::new(),
            windows,
            every: args.every().map(Duration::from_secs),
            otlp,
            clock: None,
            serving: None,
        })
    }

    /// Once the target is traced, just before the loop: `--serve`'s
    /// endpoint answers from the latest figures (published by
    /// [`Continuous::tick`] every second, and now), and the tickers start.
    pub fn start(
        &mut self,
        args: &Args,
        probes: &Probes,
        (world, modes): (&World, &mut ModeFigures),
    ) {
        if let Some(listener) = self.listener.take() {
            // Nothing folded yet: the first fold comes after the first
            // drain (a file's name before its reads).
            let (publisher, exposition) = watch::channel(Arc::new(String::new()));
            publish(modes, &publisher, self.own_figures());
            let max_profiles = crate::analysis::capture::MAX_WINDOWS;
            let (profiles, requests) = mpsc::channel(max_profiles);
            let endpoint = Endpoint {
                exposition,
                profiles,
                web: self.web.clone(),
                max_profiles,
            };
            // On a thread of its own: a trace loop busy with a churning
            // host (thousands of process starts) must not leave a scrape
            // or a profile request unanswered.
            let (stop, stopped) = oneshot::channel();
            let serving = std::thread::Builder::new()
                .name("tracer-serve".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => {
                            runtime.block_on(crate::serve::serve(listener, endpoint, stopped))
                        }
                        Err(err) => log::warn!("serving metrics: cannot start its runtime: {err}"),
                    }
                });
            match serving {
                Ok(thread) => self.serving = Some((thread, stop)),
                Err(err) => log::warn!("serving metrics: cannot start its thread: {err}"),
            }
            if !args.quiet
                && let Some(addr) = args.serve
            {
                let config = self.web.as_ref().map(|web| web.current());
                let scheme = match config.as_ref().and_then(|c| c.tls.as_ref()) {
                    Some(_) => "https",
                    None => "http",
                };
                let profiles = if world.python.is_some() {
                    format!(
                        ", Python CPU profiles at {scheme}://{addr}/debug/pprof/profile?seconds=N"
                    )
                } else {
                    String::new()
                };
                let guard = config.map_or(String::new(), |c| format!(" ({})", c.describe()));
                eprintln!(
                    "tracer: Prometheus metrics at {scheme}://{addr}/metrics{profiles}{guard}"
                );
            }
            self.publisher = Some(publisher);
            self.profiles = Some(requests);
        }
        if let Some(otlp) = self.otlp.as_mut() {
            otlp.window = open_export(probes, (world, modes), crate::host::clock::monotonic_ns());
            if !args.quiet {
                eprintln!(
                    "tracer: pushing OTLP profiles every {} s to {}",
                    self.every.unwrap_or_default().as_secs(),
                    otlp.exporter.url()
                );
            }
        }
        if modes.metrics.is_none() {
            return;
        }
        let mut folds = tokio::time::interval(METRICS_INTERVAL);
        folds.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let every = self.every.unwrap_or(Duration::from_secs(3600));
        let mut windows = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        windows.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.clock = Some(Clock { folds, windows });
    }

    /// Whether the loop waits for [`Continuous::due`].
    pub fn running(&self) -> bool {
        self.clock.is_some()
    }

    /// The next fold, window end, profile request or profile window end.
    pub async fn due(&mut self) -> Due {
        let Some(clock) = self.clock.as_mut() else {
            return std::future::pending().await;
        };
        let profile_end = self.open.iter().map(|p| p.ends).min();
        tokio::select! {
            _ = clock.folds.tick() => Due::Fold,
            _ = clock.windows.tick(), if self.every.is_some() => Due::Window,
            request = next_request(&mut self.profiles) => Due::Profile(request),
            _ = tokio::time::sleep_until(profile_end.unwrap_or_else(Instant::now)),
                if profile_end.is_some() => Due::ProfileEnd,
        }
    }

    /// What is `due`, with every event drained: the maps folded (and the
    /// gone forgotten), then the exposition published or the window
    /// written; or a profile window opened or closed. A window that cannot
    /// be written (disk full) is said; the trace and the next windows go on.
    pub fn tick(
        &mut self,
        due: Due,
        probes: &mut Probes,
        (collector, world, modes): (&mut Collector, &mut World, &mut ModeFigures),
        pid: u32,
    ) -> Result<(), ContinuousError> {
        match due {
            Due::Fold => {
                fold(probes, (collector, world, modes), false)?;
                if let Some(publisher) = &self.publisher {
                    publish(modes, publisher, self.own_figures());
                }
            }
            Due::Window => {
                // The next window starts before this one's last drain: a
                // sample taken while this one is closed is in the next.
                let next = crate::host::clock::monotonic_ns();
                fold(probes, (collector, world, modes), false)?;
                if let Some(otlp) = self.otlp.as_mut() {
                    otlp.export(probes, (collector, world, modes), Some(next))?;
                }
                let own = self.own_figures();
                if let Some(windows) = self.windows.as_mut()
                    && let Err(err) = windows.write(modes, pid, own)
                {
                    log::warn!("{err}");
                }
            }
            Due::Profile(request) => self.open_profile(request, probes, world, modes)?,
            Due::ProfileEnd => self.close_profiles(probes, (collector, world, modes), false)?,
        }
        Ok(())
    }

    /// A profile window from now, unless Python is not sampled (the
    /// request is answered with why).
    fn open_profile(
        &mut self,
        request: ProfileRequest,
        probes: &Probes,
        world: &World,
        modes: &mut ModeFigures,
    ) -> Result<(), ProbeError> {
        let refused = if let Some(err) = &probes.sampler_error {
            Some(format!("Python sampling failed: {err}"))
        } else if world.python.is_none() {
            Some("Python stacks are not sampled in this trace (--no-python)".to_owned())
        } else {
            None
        };
        if let Some(why) = refused {
            let _ = request.reply.send(Err(why));
            return Ok(());
        }
        let lost = probes.drops()?[drops::PY_SAMPLES as usize];
        match modes.open_window(lost) {
            Some(window) => {
                log::info!("pprof: profile {window} open for {} s", request.seconds);
                self.open.push(Profiling {
                    window,
                    ends: Instant::now() + Duration::from_secs(request.seconds),
                    reply: request.reply,
                })
            }
            None => {
                let _ = request.reply.send(Err("too many profiles at once".into()));
            }
        }
        Ok(())
    }

    /// The windows whose seconds are up (`stopped`: every one, the trace
    /// has stopped): each one's report to its request. A window cut short
    /// by the stop says so, and by how much.
    fn close_profiles(
        &mut self,
        probes: &Probes,
        (collector, world, modes): (&Collector, &World, &mut ModeFigures),
        stopped: bool,
    ) -> Result<(), ProbeError> {
        let lost = probes.drops()?[drops::PY_SAMPLES as usize];
        let now = Instant::now();
        let (ended, open) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|p| stopped || p.ends <= now);
        self.open = open;
        for profiling in ended {
            if profiling.reply.is_closed() {
                modes.discard_window(profiling.window);
                continue;
            }
            let report = modes
                .close_window(
                    profiling.window,
                    lost,
                    probes.sampler_error.as_deref(),
                    (collector, world),
                )
                .map(|mut report| {
                    let short = profiling.ends.saturating_duration_since(now);
                    if !short.is_zero() {
                        report.complete = false;
                        report.warnings.push(format!(
                            "the trace stopped {:.1} s before the profile's end (the target exited)",
                            short.as_secs_f64()
                        ));
                    }
                    report
                })
                .ok_or_else(|| "the window was not open".to_owned());
            let _ = profiling.reply.send(report);
        }
        Ok(())
    }

    /// After the loop: the last window, to the stop (with every event
    /// drained).
    pub fn finish(
        &mut self,
        args: &Args,
        probes: &mut Probes,
        (collector, world, modes): (&mut Collector, &mut World, &mut ModeFigures),
        pid: u32,
    ) -> Result<(), ContinuousError> {
        // Profiles still open get what was sampled until the stop, and
        // are written before the tracer exits; requests not taken yet are
        // refused.
        self.close_profiles(probes, (collector, world, modes), true)?;
        self.profiles = None;
        if let Some((thread, stop)) = self.serving.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
        // The last window pushed, and what is left given its time to go:
        // what never reached the collector is counted before the last
        // window report says it.
        if let Some(otlp) = self.otlp.as_mut() {
            fold(probes, (collector, world, modes), true)?;
            otlp.export(probes, (collector, world, modes), None)?;
            let figures = otlp.exporter.finish();
            if !args.quiet {
                eprintln!(
                    "tracer: {} OTLP exports ({} samples) to {}; {} failed attempts, {} windows ({} samples) dropped",
                    figures.exports,
                    figures.samples_exported,
                    otlp.exporter.url(),
                    figures.export_failures,
                    figures.windows_dropped,
                    figures.samples_dropped
                );
            }
        }
        if self.windows.is_some() {
            fold(probes, (collector, world, modes), true)?;
        }
        // After the fold, as the figures: the exporter's thread may count
        // its last drops until then.
        let own = self.own_figures();
        if let Some(windows) = self.windows.as_mut() {
            windows.write(modes, pid, own)?;
            if !args.quiet {
                eprintln!(
                    "tracer: {} window reports written to {} (the last {} kept)",
                    windows.written,
                    windows.dir.path().display(),
                    args.keep
                );
            }
        }
        Ok(())
    }
}

impl Continuous {
    /// `--otlp`'s counters now.
    /// What the continuous mode counted itself: its OTLP pushes, and its
    /// endpoint's refusals and reloads.
    pub fn own_figures(&self) -> OwnFigures {
        OwnFigures {
            otlp: self.otlp.as_ref().map(|o| o.exporter.figures()),
            web: self.web.as_ref().map(|web| web.stats.figures()),
        }
    }
}

impl Otlp {
    /// The window's samples to the exporter (`next`: and the next window
    /// opened, from now).
    fn export(
        &mut self,
        probes: &Probes,
        (collector, world, modes): (&Collector, &World, &mut ModeFigures),
        next: Option<u64>,
    ) -> Result<(), ProbeError> {
        let lost = probes.drops()?[drops::PY_SAMPLES as usize];
        if let Some(window) = self.window.take()
            && let Some(report) = modes.close_window(
                window,
                lost,
                probes.sampler_error.as_deref(),
                (collector, world),
            )
        {
            for warning in &report.warnings {
                log::info!("otlp: window: {warning}");
            }
            self.exporter.push(report);
        }
        if let Some(start_ns) = next {
            self.window = open_export(probes, (world, modes), start_ns);
        }
        Ok(())
    }
}

/// A capture window for `--otlp` from `start_ns` (CLOCK_MONOTONIC; none
/// without Python sampling).
fn open_export(
    probes: &Probes,
    (world, modes): (&World, &mut ModeFigures),
    start_ns: u64,
) -> Option<u64> {
    if world.python.is_none() || probes.sampler_error.is_some() {
        return None;
    }
    let lost = probes.drops().ok()?[drops::PY_SAMPLES as usize];
    modes.open_export_window(start_ns, lost)
}

/// `--every`: the window reports' directory, and the figures at the
/// start of the current window.
struct Windows {
    dir: WindowDir,
    started: SystemTime,
    before: Metrics,
    written: u64,
}

impl Windows {
    /// The window from `started` to now, as `report-<start ms>.json`.
    fn write(&mut self, modes: &ModeFigures, pid: u32, own: OwnFigures) -> Result<(), OutputError> {
        let Some(metrics) = &modes.metrics else {
            return Ok(());
        };
        let now = SystemTime::now();
        let ms = |t: SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        let mut figures = metrics.snapshot();
        own.add_to(&mut figures);
        let report = serde_json::json!({
            "window_start_unix_ms": ms(self.started),
            "window_end_unix_ms": ms(now),
            "target_pid": pid,
            "figures": crate::report::metrics::window_json(&crate::analysis::interval::metrics_since(
                &figures,
                &self.before,
            )),
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

/// The endpoint's next profile request (none once it is gone).
async fn next_request(requests: &mut Option<mpsc::Receiver<ProfileRequest>>) -> ProfileRequest {
    if let Some(requests) = requests
        && let Some(request) = requests.recv().await
    {
        return request;
    }
    std::future::pending().await
}

/// Folds the maps into the continuous figures and lets the kernel forget
/// the gone. `last`: after the loop, every event drained (no row waits for
/// the record naming its file).
fn fold(
    probes: &mut Probes,
    (collector, world, modes): (&mut Collector, &mut World, &mut ModeFigures),
    last: bool,
) -> Result<(), ProbeError> {
    let reads = probes.read_stats()?;
    let threads = probes.threads()?;
    let open = probes.open_files()?;
    let loops = probes.loops()?;
    // Drops and the runs the kernel skipped (on kernels whose syscall
    // programs can be preempted), as the one-off report counts them.
    let lost = probes.drops()?.iter().sum::<u64>() + probes.skipped_runs();
    let maps = crate::analysis::metrics::MapsNow {
        reads: &reads,
        threads: &threads,
        open: &open,
        loops: &loops,
        lost,
        last,
    };
    if let Some(forget) = modes.fold(maps, collector, world) {
        probes.forget(&forget, &reads, &open)?;
    }
    Ok(())
}

/// What the continuous mode counts itself, beside the trace's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnFigures {
    /// `--otlp`: what became of the windows pushed.
    pub otlp: Option<OtlpFigures>,
    /// `--web-config`: what the endpoint refused and reloaded.
    pub web: Option<WebFigures>,
}

impl OwnFigures {
    pub fn add_to(self, figures: &mut Metrics) {
        figures.otlp = self.otlp;
        figures.web = self.web;
    }
}

fn publish(modes: &ModeFigures, publisher: &watch::Sender<Arc<String>>, own: OwnFigures) {
    if let Some(metrics) = &modes.metrics {
        let mut figures = metrics.snapshot();
        own.add_to(&mut figures);
        let text = crate::report::metrics::prometheus_text(&figures);
        publisher.send_replace(Arc::new(text));
    }
}
