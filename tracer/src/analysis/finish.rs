//! `Collector::finish`: once the loop has stopped, every aggregator's
//! section built and the maps' snapshot merged in, into the one `Report`
//! (a one-off trace's, the continuous mode's last figures, or `--dump`'s).

use super::*;
use crate::report::{ProcessInfo, Python, ResetsBeforeExec, Sched, SignalGroup, Zombie};

/// The report's signal sections.
struct SignalSections {
    groups: Vec<SignalGroup>,
    log: SignalLog,
    resets_before_exec: Vec<ResetsBeforeExec>,
}

impl Collector {
    /// The report: every aggregator's section, the map snapshot merged in
    /// (the continuous mode's: its figures, from `modes`).
    pub fn finish(
        mut self,
        world: &mut World,
        mut maps: MapSnapshot,
        ending: Ending,
        modes: modes::ModeFigures,
    ) -> Report {
        if modes.metrics.is_some() {
            return self.finish_continuous(world, maps, ending, modes);
        }
        let (mut io, mut sched, names) = self.io_and_sched(world, &mut maps, &ending);
        let python = self.python_report(world, &maps, &ending, &mut io, &mut sched);
        let (processes, zombies, signals, changes) =
            self.processes_and_signals(world, &python, &ending);
        let complete = maps.lost() == 0 && self.decode_errors == 0;
        let mut warnings = ending.warnings;
        warnings.append(&mut self.warnings);
        let comm = |pid: u32| {
            processes
                .iter()
                .find(|p| p.pid == pid)
                .map_or_else(String::new, |p| p.comm.clone())
        };
        warnings
            .extend(std::mem::take(&mut self.early_forks).finish(|pid| world.is_python(pid), comm));
        if self.decode_errors > 0 {
            warnings.push(format!(
                "{} ring buffer records could not be decoded",
                thousands(self.decode_errors)
            ));
        }
        if python.samples > 0 && !python.timeline_complete {
            warnings.push(format!(
                "more Python samples than are kept in time order ({}): a speedscope profile \
                 has one entry per distinct stack instead",
                thousands(python.samples)
            ));
        }
        let target = processes::target_at_end(
            self.target,
            &processes,
            &names,
            ending.exit_code,
            ending.exit_signal,
        );
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            target,
            duration_s: ending.duration.as_secs_f64(),
            events: EventCounts {
                received: self.received,
                lost: maps.drops[drops::RINGBUF as usize],
                dropped: Dropped {
                    reads: maps.drops[drops::READ_STATS as usize],
                    threads: maps.drops[drops::THREADS as usize],
                    tables: maps.drops[drops::TABLES as usize],
                    lifecycle: maps.drops[drops::LIFECYCLE as usize],
                    skipped_runs: maps.skipped_runs,
                },
            },
            stopped: ending.stopped.into(),
            complete,
            reads: io.reads,
            writes: io.writes,
            sched,
            python,
            processes,
            zombies,
            signals: signals.groups,
            signal_log: signals.log,
            signal_resets_before_exec: signals.resets_before_exec,
            signal_actions: changes.actions,
            signal_masks: changes.masks,
            signal_masks_left_out: changes.masks_left_out,
            event_loops: Vec::new(),
            requests: std::mem::take(&mut self.requests).finish(self.settings.base_ns),
            memory: crate::report::Memory {
                oom_kills: std::mem::take(&mut self.oom_kills).finish(),
                ..Default::default()
            },
            findings: Vec::new(),
            warnings,
            timeline: None,
            metrics: None,
            start_unix_ns: 0,
            host_name: None,
        };
        report.event_loops = std::mem::take(&mut self.loops).finish(
            &maps.loops,
            self.settings.loop_stall_ns,
            &self.profile,
            world.python.as_ref(),
            &report.sched,
        );
        memory_growth_report(
            std::mem::take(&mut self.memory_growth),
            &self.settings,
            world.system.as_ref(),
            &mut report,
            (ending.fault_error, ending.faults_counted, maps.fault_runs),
        );
        derive(&mut report);
        if let Some(timeline) = self.timeline.take() {
            let timeline = timeline.finish(
                &world.files,
                self.settings.base_ns,
                ending.end_ns,
                self.settings.base_ns + crate::host::clock::boottime_offset_ns(),
            );
            report.warnings.extend(timeline::warnings(&timeline));
            report.timeline = Some(timeline);
        }
        report
    }

    /// The reads and writes per file and the scheduling per thread, from
    /// the maps (their rows are let go once folded), with every thread's
    /// name.
    fn io_and_sched(
        &mut self,
        world: &mut World,
        maps: &mut MapSnapshot,
        ending: &Ending,
    ) -> (io::Rows, Sched, HashMap<u32, String>) {
        if let Some(full) = std::mem::take(&mut self.closed).merge_into(maps) {
            self.warnings.push(full);
        }
        let ended = std::mem::take(&mut self.ended).merge_into(maps);
        let dropped_switches = maps.drops[drops::THREADS as usize];
        self.warnings
            .extend(sched::full_warning(maps, dropped_switches));
        let _ = self.read_signal_handlers(world);
        self.warnings
            .extend(python_bounds_reached(world.python.as_ref()));
        self.on_python_maps(world, &maps.python_event_stacks, &maps.python_entries);
        // Threads that exited: their last switch-out was their end.
        let exited: std::collections::HashSet<u32> = self.exit_comms.keys().copied().collect();
        if let Some(tree) = world.python.as_mut() {
            self.profile
                .on_sleeps_in_progress(tree, &maps.python_sleeping, ending.end_ns, &exited);
        }
        let mut names = std::mem::take(&mut self.exit_comms);
        names.extend(sched::running_names(&maps.threads, world.system.as_ref()));
        io::fold_sockets(&mut world.files, &maps.reads);
        let rows = io::Rows {
            reads: io::aggregate(&world.files, &maps.reads, &maps.opens, io::Direction::Read),
            writes: io::aggregate(&world.files, &maps.reads, &maps.opens, io::Direction::Write),
        };
        // The kernel's rows are in the report's rows now: a million files'
        // are not held while the rest is built.
        maps.reads = Vec::new();
        maps.opens = HashMap::new();
        let mut sched = sched::summarize(&maps.threads, &ended, &names, &exited, ending.end_ns);
        sched.inside_reads = io::total_switches(&rows.reads);
        sched.inside_writes = io::total_switches(&rows.writes);
        (rows, sched, names)
    }

    /// The Python section: the profile, the GIL, the threads and asyncio
    /// tasks at the start and the end (naming the threads of `sched`).
    fn python_report(
        &mut self,
        world: &mut World,
        maps: &MapSnapshot,
        ending: &Ending,
        io: &mut io::Rows,
        sched: &mut Sched,
    ) -> Python {
        let mut python = self.python_section(world, maps, ending, io);
        if let Some(tree) = &world.python
            && python.status != "disabled"
        {
            gil::fill(
                &mut python,
                &self.gil,
                tree,
                &maps.python_gil_waits,
                self.profile.timed_stacks(tracer_common::py_event::GIL_WAIT),
                sched,
                ending.end_ns.saturating_sub(self.settings.base_ns),
            );
        }
        for row in &mut python.processes {
            row.container = self.processes.container_of(world.system.as_mut(), row.pid);
        }
        python.threads_at_start = std::mem::take(&mut self.threads_at_start);
        python.threads_at_end = std::mem::take(&mut self.threads_at_end);
        python.asyncio = asyncio::section(
            std::mem::take(&mut self.tasks_at_end),
            std::mem::take(&mut self.tasks_at_start),
            std::mem::take(&mut self.asyncio_notes),
            std::mem::take(&mut python.asyncio.samples_by_task),
        );
        if let Some(tree) = &world.python {
            python::name_threads(&tree.thread_names(), sched, &mut python);
        }
        python::asleep_at_end(
            &mut python,
            sched,
            ending.end_ns.saturating_sub(self.settings.base_ns),
        );
        python
    }

    /// The process tree and its zombies, the signals (a main thread still
    /// holding a Python handler up at the stop says where), and the
    /// disposition and mask changes.
    fn processes_and_signals(
        &mut self,
        world: &mut World,
        python: &Python,
        ending: &Ending,
    ) -> (
        Vec<ProcessInfo>,
        Vec<Zombie>,
        SignalSections,
        signals::changes::Finished,
    ) {
        let mut signals = std::mem::take(&mut self.signals);
        for main in python.threads_at_end.iter().filter(|t| t.tid == t.pid) {
            signals.on_main_thread(
                main.pid,
                ending.end_ns,
                signals::SEEN_AT_STOP,
                main.frames.clone(),
            );
        }
        let (processes, zombies) = std::mem::take(&mut self.processes).finish(
            ending.end_ns,
            self.settings.base_ns,
            |pid| signals.killer_of(pid),
            |pid| world.system.is_zombie(pid),
            |pid| world.system.ns_pid(pid),
        );
        let (groups, log_entries, log_total) = signals.finish(self.settings.base_ns);
        let mut changes = std::mem::take(&mut self.signal_changes)
            .finish(self.settings.base_ns, |pid| world.is_python(pid));
        let resets_before_exec = signals::exec_resets::fold(&mut changes.actions, &processes);
        let signals = SignalSections {
            groups,
            log: SignalLog {
                total: log_total,
                entries: log_entries,
            },
            resets_before_exec,
        };
        (processes, zombies, signals, changes)
    }

    /// `--serve`: the final figures, with what the report says of the run.
    fn finish_continuous(
        mut self,
        world: &mut World,
        maps: MapSnapshot,
        ending: Ending,
        mut modes: modes::ModeFigures,
    ) -> Report {
        let lost = maps.lost();
        // Every descriptor counts as open: the last fold drops nothing.
        let open: Vec<(tracer_common::FdKey, u64)> = maps
            .reads
            .iter()
            .map(|(k, _)| {
                let fd = tracer_common::FdKey {
                    tgid: k.tgid,
                    fd: k.fd,
                };
                (fd, k.file_id)
            })
            .collect();
        modes.fold(
            metrics::MapsNow {
                reads: &maps.reads,
                threads: &maps.threads,
                open: &open,
                loops: &maps.loops,
                lost,
                last: true,
            },
            &self,
            world,
        );
        let metrics = modes.metrics.map(|figures| figures.snapshot());
        let mut warnings = ending.warnings;
        warnings.append(&mut self.warnings);
        Report {
            schema_version: SCHEMA_VERSION,
            target: self.target,
            duration_s: ending.duration.as_secs_f64(),
            events: EventCounts {
                received: self.received,
                lost: maps.drops[drops::RINGBUF as usize],
                ..EventCounts::default()
            },
            stopped: ending.stopped.into(),
            complete: lost == 0 && self.decode_errors == 0,
            warnings,
            metrics,
            ..Report::default()
        }
    }

    /// The report of `--dump`: the target, its interpreters and every
    /// Python thread's stack as it is now.
    pub fn finish_dump(self, world: &mut World) -> Report {
        let mut python = match &world.python {
            Some(tree) => self.profile.section(tree, &[], 0),
            None => python::disabled("no Python process"),
        };
        for row in &mut python.processes {
            row.container = self.processes.container_of(world.system.as_mut(), row.pid);
        }
        python.threads_at_start = self.threads_at_start;
        // The dump's one look is its `tasks`: the latest.
        python.asyncio = asyncio::section(
            self.tasks_at_start,
            Vec::new(),
            self.asyncio_notes,
            Vec::new(),
        );
        Report {
            schema_version: SCHEMA_VERSION,
            target: self.target,
            stopped: "dump".into(),
            complete: true,
            python,
            ..Report::default()
        }
    }

    /// The Python section; the read and write stacks go onto their files'
    /// rows.
    fn python_section(
        &self,
        world: &World,
        maps: &MapSnapshot,
        ending: &Ending,
        io: &mut io::Rows,
    ) -> crate::report::Python {
        if let Some(err) = &ending.sampler_error {
            return python::disabled(&format!("Python sampling could not start: {err}"));
        }
        let (Some(rate_hz), Some(tree)) = (self.settings.python_rate_hz, &world.python) else {
            return python::disabled("--no-python");
        };
        let mut section = self.profile.section(tree, &maps.python_ticks, rate_hz);
        if self.settings.count_entries {
            section.entries_from_c = self.profile.entries();
            section.entries_error = self.entries_error.clone();
        }
        for process in tree.processes().filter(|p| p.ready().is_some()) {
            for (rows, kind) in [
                (&mut io.reads, tracer_common::py_event::READ),
                (&mut io.writes, tracer_common::py_event::WRITE),
            ] {
                io::add_python_stacks(
                    rows,
                    &world.files,
                    process.pid(),
                    process.read_stack_every(),
                    self.profile.io_stacks(process.pid(), kind),
                );
            }
        }
        section.samples_lost = maps.drops[drops::PY_SAMPLES as usize];
        section.samples_torn = self.torn_samples;
        section.native = world.native.as_ref().map(native::figures);
        section
    }
}

/// The Python bounds reached: processes whose thread lists were longer
/// than the tracer reads (`threads::MAX_THREADS` thread states), and code
/// object copies let go before their process was known.
fn python_bounds_reached(tree: Option<&crate::python::PythonTree>) -> Vec<String> {
    let Some(tree) = tree else {
        return Vec::new();
    };
    let let_go = tree.early_copies_let_go();
    let let_go = (let_go > 0).then(|| {
        format!(
            "python: {} copies of code objects were let go before their process was known \
             (too many waited at once): the frames they named may be unresolved",
            crate::report::format::thousands(let_go)
        )
    });
    tree.processes()
        .filter(|process| process.thread_lists_capped())
        .map(|process| {
            format!(
                "python: pid {} had more than {} thread states: threads_at_end lists that \
                 many (the others are sampled all the same: the kernel finds their states)",
                process.pid(),
                crate::report::format::thousands(crate::python::threads::MAX_THREADS as u64)
            )
        })
        .chain(let_go)
        .collect()
}

/// Memory growth's rows: the processes' names from their rows. `faults`:
/// why sampling did not start, the faults the events counted (and how
/// many events), the sampler's runs.
fn memory_growth_report(
    growth: memory_growth::MemoryGrowth,
    settings: &Settings,
    system: &dyn system::System,
    report: &mut Report,
    faults: (Option<String>, Option<(u64, u64)>, [u64; 2]),
) {
    let Some(period) = settings.fault_period else {
        return;
    };
    let (fault_error, counted, [runs, without_interpreter]) = faults;
    if fault_error.is_some() {
        report.memory.growth_error = fault_error;
        return;
    }
    let page = system.page_size();
    report.memory.growth_sample_bytes = period * page;
    report.memory.faults_counted = counted.map(|(faults, _)| faults);
    report.memory.fault_samples_taken = runs;
    report.memory.fault_samples_without_interpreter = without_interpreter;
    // Each event, and each copy a new thread or process inherited, leaves
    // less than a period unsampled at the end; past that, samples the
    // kernel did not take.
    if let Some((faults, events)) = counted {
        let expected = faults / period;
        let missed = expected.saturating_sub(runs);
        if missed > events + growth.tasks_created() {
            report.memory.fault_samples_missed = missed;
            report.warnings.push(format!(
                "the kernel took {} of {} page-fault samples (it throttles a sampling \
                 event whose program runs more often than kernel.perf_event_max_sample_rate \
                 allows): memory growth is charged to fewer, coarser samples",
                thousands(runs),
                thousands(expected)
            ));
        }
    }
    // A pid reused: its last row's name.
    let comms: HashMap<u32, &str> = report
        .processes
        .iter()
        .map(|p| (p.pid, p.comm.as_str()))
        .collect();
    report.memory.processes = growth.finish(
        period * page,
        page,
        settings.base_ns,
        |pid| {
            comms
                .get(&pid)
                .map_or_else(String::new, |c| (*c).to_owned())
        },
        |pid| system.peak_rss(pid),
    );
}
