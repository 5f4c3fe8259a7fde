//! Each event to the tables of its concern: the process tree, the Python
//! profile, the signals. [`Collector::on_event`] hands them here once the
//! files, the Python processes and the mode's figures have taken theirs.

use super::*;

impl Collector {
    /// Forks, execs, exits, reaps: the process tree and its zombies.
    pub(super) fn on_process_event(&mut self, event: Event, world: &mut World) {
        match event {
            Event::ProcessForked {
                parent_tgid,
                parent_tid,
                child,
                is_thread,
                ts_ns,
                comm,
                stack,
            } => {
                self.memory_growth.on_task_created();
                if !is_thread && !self.processes.has_spawn_stack(child) {
                    let python = world.is_python(parent_tgid);
                    let held = world.may_be_python(parent_tgid);
                    let level = if python {
                        log::Level::Info
                    } else {
                        log::Level::Debug
                    };
                    log::log!(
                        level,
                        "pid {parent_tgid}: its fork of {child} (thread {parent_tid}) has no \
                         Python line: {stack:?} (interpreter found: {python}, may run Python: \
                         {held})"
                    );
                    if held {
                        self.early_forks
                            .on_fork_without_line(parent_tgid, child, stack);
                    }
                }
                // Its pid in its own namespace comes with its exit record, or
                // from /proc at the end if it is still there.
                self.processes.on_fork(
                    world.system.as_mut(),
                    parent_tgid,
                    child,
                    is_thread,
                    ts_ns,
                    &comm,
                );
            }
            Event::PyForkStack {
                tgid,
                child,
                frames,
                native,
            } => {
                // A fork's stack, just before the fork record itself.
                if let Some(frames) = world.event_frames(tgid, &frames, native.as_ref()) {
                    self.profile.on_fork(frames.clone());
                    self.processes.on_spawn_stack(child, frames);
                }
            }
            Event::ProcessExited {
                tgid,
                tid,
                group_dead,
                ts_ns,
                comm,
                status,
                ns_pid,
                peak_rss_pages,
            } => {
                self.processes
                    .on_exit(tgid, group_dead, ts_ns, &comm, status);
                self.memory_growth.on_thread_exit(tgid, tid);
                if group_dead {
                    let python = world.is_python(tgid);
                    self.early_forks.on_process_exit(tgid, python);
                    self.signals.on_process_gone(tgid);
                    self.memory_growth.on_exit(tgid, peak_rss_pages);
                }
                if let Some(ns_pid) = ns_pid {
                    self.processes.set_ns_pid(tgid, ns_pid);
                }
                if let Some(timeline) = self.timeline.as_mut() {
                    timeline.on_thread_exit(tid, ts_ns);
                }
                self.exit_comms.insert(tid, comm);
            }
            Event::ProcessExec {
                tgid,
                ts_ns,
                comm,
                argv,
                truncated,
                ..
            } => {
                self.processes
                    .on_exec(world.system.as_mut(), tgid, ts_ns, &comm, argv, truncated);
            }
            Event::ProcessFreed { pid, ts_ns } => self.processes.on_freed(pid, ts_ns),
            Event::WaitDone(wait) => self.processes.on_wait(&wait),
            // Not this concern's.
            _ => {}
        }
    }

    /// A Python sample (`named`: its Python frames, named as it arrived)
    /// or a kernel event's stack: the profile, the GIL, a handler's wait.
    pub(super) fn on_python_event(
        &mut self,
        event: Event,
        named: Option<SampleFrames>,
        world: &mut World,
    ) {
        match event {
            Event::PySample {
                ts_ns,
                tgid,
                tid,
                frames,
                truncated,
                task,
                task_name,
                native,
                gil_held,
                ..
            } => {
                // A main thread holding up a Python signal handler: where.
                if tid == tgid
                    && self.signals.handler_waits(tgid)
                    && let (Some(tree), Some(named)) = (world.python.as_mut(), named.as_ref())
                    && let stack = tree.frames_of(tgid, named.python(), &frames)
                    && !stack.is_empty()
                {
                    self.signals
                        .on_main_thread(tgid, ts_ns, signals::SEEN_SAMPLED, stack);
                }
                if let Some(tree) = world.python.as_mut()
                    && let Some(ids) = native::sample_frame_ids(
                        tree,
                        world.native.as_mut(),
                        tgid,
                        named.as_ref(),
                        native.as_ref(),
                        &mut world.python_dirty,
                    )
                {
                    tree.on_sampled_thread(tgid, tid);
                    let t_ns = ts_ns.saturating_sub(self.settings.base_ns);
                    let process = (tgid, tree.generation(tgid));
                    let task = (task != 0).then(|| (task, tree.task_name(tgid, task, task_name)));
                    // The holder's line: its innermost Python frame.
                    let line = ids.iter().copied().find(|&id| !tree.frame(id).native);
                    self.gil.on_sample(tgid, tid, gil_held, line);
                    self.profile
                        .on_sample(t_ns, process, tid, ids, truncated, task);
                }
            }
            Event::PyStack { key, counts } => {
                if let Some(tree) = world.python.as_mut() {
                    self.profile.on_new_event_stack(tree, &key, counts);
                }
            }
            // Not this concern's.
            _ => {}
        }
    }

    /// Signals sent, delivered and handled, and disposition and mask changes.
    pub(super) fn on_signal_event(&mut self, event: Event, world: &mut World) {
        match event {
            Event::SignalGenerated(g) => {
                self.processes.on_signal_generated(&g);
                if g.sig == signals::SIGINT {
                    self.sigint_to.insert(g.target_pid);
                    self.sigint_to.insert(g.target_tgid);
                }
                let flow = self.signals.on_generate(&g, self.settings.base_ns);
                if let Some(timeline) = self.timeline.as_mut() {
                    timeline.on_generated(&g, flow);
                }
                let target = if g.target_tgid != 0 {
                    g.target_tgid
                } else {
                    g.target_pid
                };
                self.signal_changes.on_sent(target, g.sig, g.ts_ns);
            }
            Event::SignalAction(a) => {
                // Symbolized now: the caller's code objects are alive.
                let stack = world
                    .python_frames(a.tgid, &a.py_frames)
                    .unwrap_or_default();
                let (pid, sig, handler) = (a.tgid, a.sig, a.handler);
                if let Some(index) = self.signal_changes.on_action(a, stack)
                    && signals::changes::is_handler(handler)
                {
                    self.actions_to_name
                        .push((index, pid, sig, HANDLER_NAME_READS));
                }
            }
            Event::SignalMask(m) => {
                let stack = world
                    .python_frames(m.tgid, &m.py_frames)
                    .unwrap_or_default();
                self.signal_changes.on_mask(m, stack);
            }
            Event::SignalDelivered(d) => {
                // Symbolized now: a signal may end the process (and its code
                // objects) right after.
                let stack = if d.py_frames.is_empty() {
                    None
                } else {
                    world.event_frames(d.tgid, &d.py_frames, d.native.as_ref())
                };
                // To a C handler: is it CPython's, for a Python function?
                let handler = if d.sa_handler > 1 {
                    world.python.as_mut().and_then(|tree| {
                        tree.python_signal_handler(d.tgid, d.sig, d.py_handler, d.py_handler_code)
                    })
                } else {
                    None
                };
                let flow = self
                    .signals
                    .on_deliver(&d, self.settings.base_ns, stack, handler);
                if let Some(timeline) = self.timeline.as_mut() {
                    timeline.on_delivered(&d, flow);
                }
            }
            // A kill of a process the trace follows, or by one's allocation.
            Event::OomKill(kill)
                if self.processes.knows(kill.victim_tgid)
                    || self.processes.knows(kill.trigger_tgid) =>
            {
                self.oom_kills
                    .on_oom_kill(&kill, self.settings.base_ns, world.system.page_size());
                self.processes.on_oom_kill(kill.victim_tgid);
            }
            Event::SignalFatalStack {
                ts_ns,
                tgid,
                tid,
                py_frames,
                ..
            } => {
                // Symbolized now: the process is dying.
                if let Some(stack) = world.python_frames(tgid, &py_frames) {
                    self.signals
                        .on_fatal_stack(tgid, tid, ts_ns, self.settings.base_ns, stack);
                }
            }
            Event::SignalCheck {
                ts_ns, tgid, tid, ..
            } => {
                let ran = self.signals.on_signal_check(tgid, ts_ns);
                if let Some(timeline) = self.timeline.as_mut() {
                    timeline.on_handlers_ran(ts_ns, tgid, tid, ran);
                }
            }
            // Not this concern's.
            _ => {}
        }
    }
}
