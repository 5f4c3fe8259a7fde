//! One Python process's signal handlers: CPython's handler table found in
//! its memory (searched for a while after start-up), read when a delivery
//! needs it or a `sigaction` changed it, and the Python function each
//! delivery goes to named.

use std::time::{Duration, Instant};

use tracer_common::PyConfig;

use super::PythonProcess;
use crate::{discovery::Discovery, handlers, interpreter::Binaries};

/// While the signal handler table is not found, it is searched for again
/// at most this often (the `signal` module sets it up during start-up):
/// by the first refreshes, then only for deliveries to a handler.
const HANDLER_TABLE_SEARCH_EVERY: Duration = Duration::from_millis(250);
const HANDLER_TABLE_SEARCHES: u32 = 8;
/// The first search waits this long after the interpreter is found: the
/// look that found it has just kept the loop from draining for a few ms,
/// while a starting program's samples (in module bodies freed at once)
/// wait to be named.
const HANDLER_TABLE_FIRST_SEARCH_AFTER: Duration = Duration::from_millis(20);

impl PythonProcess {
    /// The Python-level handler of signal `sig`: read now, or as last read
    /// when the process is gone.
    /// `object`: the slot's object as the kernel read it at delivery (0:
    /// unknown), named from the cache or read now.
    /// `code`: its `func_code` as read then, if it is a function.
    pub fn signal_handler(
        &mut self,
        sig: i32,
        object: u64,
        code: u64,
        binaries: &mut Binaries,
    ) -> Option<handlers::Handler> {
        if object != 0 {
            if let Some((cached, handler)) = self.handlers.get(&sig)
                && *cached == object
            {
                return Some(handler.clone());
            }
            if let Discovery::Ready(ready) = &self.discovery
                && !self.exited
            {
                let source = ready.code_source();
                let found = match code {
                    0 => None,
                    code => handlers::function_of_code(&source, &mut self.symbols, code),
                };
                if let Some(handler) = found.or_else(|| {
                    handlers::handler(
                        &source,
                        &mut self.symbols,
                        ready.binary.interpreter.minor,
                        object,
                    )
                }) {
                    return Some(handler);
                }
            }
        }
        self.read_handlers(true, binaries);
        self.handlers.get(&sig).map(|(_, handler)| handler.clone())
    }

    /// Whether its handler table may still be found: it lives and the
    /// table is not known yet.
    pub fn handler_table_pending(&self) -> bool {
        !self.exited && self.handler_table.is_none()
    }

    /// The handler of signal `sig` as last read.
    pub fn known_signal_handler(&self, sig: i32) -> Option<&handlers::Handler> {
        self.handlers.get(&sig).map(|(_, handler)| handler)
    }

    /// Reads what changed in the handler table (looked for at most every
    /// 250 ms until found). Read at every refresh while the process lives, a
    /// delivery handled after it exits still names its handler.
    /// Returns the process's sampler config when the table was just found
    /// (the kernel side reads each delivery's handler from it: published at
    /// once).
    pub fn read_signal_handlers(&mut self, binaries: &mut Binaries) -> Option<PyConfig> {
        if self.published.is_empty() {
            return None;
        }
        let known = self.handler_table.is_some();
        self.read_handlers(false, binaries);
        if known || self.handler_table.is_none() || !self.config_published {
            return None;
        }
        let Discovery::Ready(ready) = &self.discovery else {
            return None;
        };
        self.handler_table_published = true;
        Some(Self::config_of(
            self.read_stack_every,
            self.handler_table,
            ready,
            &self.tasks,
            self.program_epoch,
        ))
    }

    /// `search`: look for the table even if it was just looked for.
    /// `binaries`: where the table was found in other processes of the
    /// same interpreter file.
    fn read_handlers(&mut self, search: bool, binaries: &mut Binaries) {
        let Discovery::Ready(ready) = &self.discovery else {
            return;
        };
        if self.exited {
            return;
        }
        let interpreter = &ready.binary.interpreter;
        if self.handler_table.is_none() {
            // Each search reads the interpreter's data (~1.4 MiB for 3.11):
            // a few while the `signal` module may still be setting up, then
            // only for a delivery to a handler.
            let every = if self.handler_table_searches == 0 {
                HANDLER_TABLE_FIRST_SEARCH_AFTER
            } else if search || self.handler_table_searches < HANDLER_TABLE_SEARCHES {
                HANDLER_TABLE_SEARCH_EVERY
            } else {
                return;
            };
            if self
                .handler_table_searched
                .is_some_and(|at| at.elapsed() < every)
            {
                return;
            }
            self.handler_table_searched = Some(Instant::now());
            self.handler_table_searches += 1;
            // Known from another process of the same file: there or not yet.
            self.handler_table = match (interpreter.data_range, binaries.handler_table(interpreter))
            {
                (Some((data, _)), Some(offset)) => {
                    let at = data.wrapping_add(offset);
                    handlers::table_at(&ready.memory, at).then_some(at)
                }
                (Some(range), None) => {
                    let found = handlers::find_table(&ready.memory, range);
                    if let Some(at) = found {
                        binaries.found_handler_table(interpreter, at.wrapping_sub(range.0));
                    }
                    found
                }
                (None, _) => None,
            };
            // The kernel side reads the slot of each delivery from there.
            self.handler_table_published = self.handler_table.is_none();
        }
        let Some(funcs) = self
            .handler_table
            .and_then(|table| handlers::funcs(&ready.memory, table))
        else {
            return;
        };
        let source = ready.code_source();
        for (sig, &func) in funcs.iter().enumerate().skip(1) {
            let sig = sig as i32;
            if self.handlers.get(&sig).is_some_and(|(was, _)| *was == func) {
                continue;
            }
            if let Some(handler) =
                handlers::handler(&source, &mut self.symbols, interpreter.minor, func)
            {
                self.handlers.insert(sig, (func, handler));
            }
        }
    }
}
