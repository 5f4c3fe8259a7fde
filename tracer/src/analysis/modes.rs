//! What a mode keeps beside the report's tables: the continuous mode's
//! bounded figures (`--serve`, `--every`, `--otlp`) and the capture windows
//! (a `/debug/pprof/profile` request's, `--otlp`'s, `--live`'s interval).
//! Owned by the run (`run.rs`) and lent to the collector for each event and
//! to the mode's own code (`session/continuous.rs`, the live view), so that the
//! [`Collector`] holds what every trace shares and a one-off trace's tables.

use super::{Collector, World, capture::Captures, metrics, native::SampleFrames};
use crate::{
    events::{Event, Forget},
    report::Report,
};

#[derive(Default)]
pub struct ModeFigures {
    /// The continuous mode's figures (the report's sections are not kept then).
    pub metrics: Option<metrics::Aggregator>,
    /// The open capture windows.
    captures: Captures,
}

impl ModeFigures {
    /// For the run the collector's settings describe, once its processes
    /// are taken in: the continuous figures start from the processes (and
    /// the zombies that predate the trace) the collector knows.
    pub fn new(collector: &Collector, world: &mut World) -> Self {
        let settings = &collector.settings;
        let mut metrics = settings
            .continuous
            .then(|| metrics::Aggregator::redacting(settings.redact_paths.clone()));
        if let Some(figures) = metrics.as_mut() {
            for (pid, ppid, old_zombie) in collector.processes.known() {
                match old_zombie {
                    true => figures.on_old_zombie(pid, ppid),
                    false => figures.on_process(world.system.as_mut(), pid, ppid),
                }
            }
        }
        Self {
            metrics,
            captures: Captures::default(),
        }
    }

    /// An event, after the world has kept track of it (`named`: a Python
    /// sample's frames, named once for every concern): into the open
    /// windows and the continuous figures. Returns it when the report's
    /// tables take it too (a one-off trace's, `--live`'s).
    pub fn on_event(
        &mut self,
        event: Event,
        named: Option<&SampleFrames>,
        world: &mut World,
    ) -> Option<Event> {
        let World {
            python,
            native,
            python_dirty,
            system,
            ..
        } = world;
        let system = system.as_mut();
        let Some(figures) = self.metrics.as_mut() else {
            // `--live`: the interval's samples, besides the report's (Python
            // frames: the view shows Python functions; the report's path
            // names native frames and counts their unwinds, once).
            if !self.captures.is_empty() {
                self.captures
                    .on_event(&event, named, python.as_mut(), None, python_dirty, system);
            }
            return Some(event);
        };
        self.captures.on_event(
            &event,
            named,
            python.as_mut(),
            native.as_mut(),
            python_dirty,
            &mut *system,
        );
        figures.on_event(event, named, python.as_ref(), system);
        None
    }

    /// Folds the kernel's cumulative rows into the continuous figures and
    /// forgets what the gone processes left; returns the rows the kernel
    /// maps should drop.
    pub fn fold(
        &mut self,
        mut maps: metrics::MapsNow,
        collector: &Collector,
        world: &mut World,
    ) -> Option<Forget> {
        let figures = self.metrics.as_mut()?;
        maps.lost += collector.decode_errors;
        let forget = figures.fold_maps(maps, &mut world.files, world.python.as_mut());
        if let Some(native) = world.native.as_mut() {
            native.forget(&forget.pids);
        }
        Some(forget)
    }

    /// Python samples the continuous figures counted.
    pub fn samples(&self) -> u64 {
        self.metrics.as_ref().map_or(0, |m| m.samples_seen)
    }

    /// Opens a window for `/debug/pprof/profile` now; `None` when
    /// [`super::capture::MAX_WINDOWS`] are open. `lost`: the kernel's count of
    /// lost Python samples now.
    pub fn open_window(&mut self, lost: u64) -> Option<u64> {
        self.captures
            .open(crate::host::clock::monotonic_ns(), lost, false)
    }

    /// Opens `--otlp`'s (or `--live`'s) window, whose samples are those
    /// taken from `start_ns` on (CLOCK_MONOTONIC): windows that follow one
    /// another without a gap, whatever the endpoint has open.
    pub fn open_export_window(&mut self, start_ns: u64, lost: u64) -> Option<u64> {
        self.captures.open(start_ns, lost, true)
    }

    /// Closes window `id` (every sample taken until now drained) and
    /// returns its report. `lost`: the kernel's count of lost Python
    /// samples now; `sampler_error`: why sampling stopped, if it did.
    pub fn close_window(
        &mut self,
        id: u64,
        lost: u64,
        sampler_error: Option<&str>,
        (collector, world): (&Collector, &World),
    ) -> Option<Report> {
        let mut report = self
            .captures
            .close(id, (collector, world), lost, sampler_error)?;
        // Gone before it was first looked at: the container its series
        // have (from its fork or exec).
        if let Some(figures) = &self.metrics {
            for process in report
                .processes
                .iter_mut()
                .filter(|p| p.container.is_none())
            {
                process.container = figures.container_of(process.pid).cloned();
            }
        }
        Some(report)
    }

    /// Forgets window `id` (its client is gone).
    pub fn discard_window(&mut self, id: u64) {
        self.captures.discard(id);
    }
}
