//! The program a process runs: the launched command held by its exec or
//! awaiting that exec's record, the loader stepped, a new program exec'd
//! (what was known of the old one dropped), its exit (a program never
//! looked at told by its file).

use std::time::Instant;

use super::{NAMES_EVERY, PythonProcess, next_program_epoch};
use crate::{
    discovery::{Discovery, find},
    interpreter::Binaries,
    running_task::RunningTasks,
    symbols::Symbols,
    thread_names::NameCache,
};

impl PythonProcess {
    /// Not looked at until its exec record has come (see `awaiting_exec`).
    pub fn await_exec(&mut self) {
        self.awaiting_exec = true;
    }

    /// Stopped by its exec (see `held_at_exec`).
    pub fn held_at_exec(&mut self) {
        self.held_at_exec = true;
    }

    /// Held while its loader runs, or no longer (see `loading`).
    pub fn set_loading(&mut self, loading: bool) {
        self.loading = loading;
    }

    /// The process runs a new program: what was known no longer holds (the
    /// kernel side has dropped its offsets and the exec'ing thread's entry;
    /// the other threads are gone).
    /// The process exec'd `program` (forked from `parent`) at `exec_ns`
    /// (CLOCK_MONOTONIC).
    /// `binaries`: what is known of each mapped file (shared by the tree).
    /// Returns whether the program it ran before was Python: its
    /// interpreter was found, by a look that did not see the new one.
    pub fn on_exec(
        &mut self,
        exec_ns: u64,
        program: (String, Option<u32>),
        binaries: &mut Binaries,
    ) -> bool {
        let pid = self.pid;
        log::debug!(
            "pid {pid}: exec record of {} (held by its exec: {}, awaited: {}, last look at {} ns, \
             exec at {exec_ns} ns)",
            program.0,
            self.held_at_exec,
            self.awaiting_exec,
            self.looked_at_ns
        );
        self.awaiting_exec = false;
        // The exec it was held by is the one before the look: a later one
        // (its record handled first, or the held one's never) is a new
        // program, which a shell's `exec python` must not be taken for.
        if std::mem::take(&mut self.held_at_exec) && exec_ns < self.looked_at_ns {
            // Looked at after this exec, before its program ran: what was
            // found (and published) stands; a program the look could not
            // tell is told by its file if it exits before the next look.
            if matches!(self.discovery, Discovery::Searching(_)) && !self.not_python {
                self.exec = Some(program);
            }
            // Before it: the tracer's own child, stopped.
            return false;
        }
        self.not_python = false;
        self.exec = Some(program);
        self.program_epoch = next_program_epoch();
        // Looked at after the exec already (its record comes through the
        // ring buffer, the look may come first): what it found is the new
        // program. A look that began before the exec's record time may
        // still have seen the new program (the exec maps it before the
        // record), so that one is checked by looking again now: the same
        // interpreter at the same address is the new program's. The kernel
        // side dropped its config and threads at the exec: publish again.
        if let Discovery::Ready(ready) = &self.discovery {
            let runtime = ready.binary.interpreter.runtime;
            let path = ready.binary.interpreter.path.clone();
            // (A child forked from a Python process holds a copy of its
            // parent's: never looked at itself, it is looked at afresh.)
            let kept = self.looked_at_ns > exec_ns
                || self.looked_at_ns != 0
                    && find(pid, binaries).is_ok_and(|now| {
                        now.binary.interpreter.runtime == runtime
                            && now.binary.interpreter.path == path
                    });
            if kept {
                log::info!(
                    "pid {pid}: exec'd, and the look that found its interpreter saw the new program"
                );
                self.config_published = false;
                self.published.clear();
                return false;
            }
            log::info!("pid {pid}: exec'd, its interpreter is looked for again");
        }
        let was_python = matches!(self.discovery, Discovery::Ready(_));
        // Not Python before either: what the last look found stands until
        // the new program is looked at (it may exit first).
        if !matches!(self.discovery, Discovery::Searching(_)) {
            self.discovery = Discovery::Searching(format!(
                "process {pid} exec'd a program that has not been looked at yet"
            ));
        }
        self.symbols = Symbols::default();
        self.config_published = false;
        self.signal_checks_published = false;
        self.handler_table_published = true;
        self.published.clear();
        self.pthreads.clear();
        self.name_cache = NameCache::default();
        self.names_every = NAMES_EVERY;
        self.handler_table = None;
        self.handler_table_searched = None;
        self.handler_table_searches = 0;
        self.handlers.clear();
        self.tasks = RunningTasks::default();
        self.since = Instant::now();
        self.last_search = None;
        was_python
    }

    /// The process has exited (the kernel side dropped its entries). One
    /// that exited before its new program was looked at (a short-lived
    /// `uname` of a Python parent) is told by that program's file.
    pub fn on_exit(&mut self, binaries: &mut Binaries) {
        self.exited = true;
        self.published.clear();
        if let (Discovery::Searching(_), Some((program, parent))) = (&self.discovery, &self.exec)
            && program.starts_with('/')
        {
            // As its parent saw it (containers), else as the tracer does.
            let file = parent
                .map(|parent| crate::host::procfs::in_root(parent, program))
                .filter(|path| path.exists())
                .unwrap_or_else(|| program.into());
            if binaries.exec_is_not_python(&file) {
                self.not_python = true;
                self.discovery = Discovery::Searching(format!(
                    "process {} exec'd {program}, which holds no Python interpreter",
                    self.pid
                ));
            }
        }
    }

    /// What it ran holds no interpreter (not a Python process).
    pub fn not_python(&self) -> bool {
        self.not_python
    }
}
