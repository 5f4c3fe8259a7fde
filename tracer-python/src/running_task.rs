//! The asyncio task each sample ran in (CPython 3.14+): the offsets the
//! sampler reads a thread's running task with (from the `.AsyncioDebug`
//! section, which 3.14 maps only once asyncio is imported: searched for
//! until found, less and less often), and each task's name, read from the
//! name object the sampler saw in the task (so a task freed and its
//! address reused is not named after the next one), cached per (task,
//! name object).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tracer_common::{PY_NO_OFFSET, PyConfig};

use super::{
    asyncio::{self, Interpreter, Look, Walk},
    asyncio_offsets::{AsyncioOffsets, ObjectOffsets},
};

/// The first searches for the section come this often; each miss doubles
/// the wait up to [`SEARCH_EVERY_AT_MOST`] (a 3.14 program that never
/// imports asyncio must not cost a look at its files every refresh).
const SEARCH_EVERY: Duration = Duration::from_millis(100);
const SEARCH_EVERY_AT_MOST: Duration = Duration::from_secs(10);

/// Task names kept per process before the cache starts over (the live
/// tasks' names are read again on their next sample).
const MAX_NAMES: usize = 16_384;

#[derive(Default, Clone)]
pub struct RunningTasks {
    offsets: Option<(AsyncioOffsets, ObjectOffsets)>,
    /// No search will find them (before 3.14, or the section does not check out).
    never: bool,
    searched: Option<Instant>,
    every: Duration,
    /// (task, name object) -> its name (`None`: could not be read). A
    /// string object does not change while it lives: read once.
    names: HashMap<(u64, u64), Option<String>>,
}

impl RunningTasks {
    /// Looks for the offsets if due; true when they were just found (the
    /// sampler's config must be published again with them).
    pub fn search(&mut self, pid: u32, interp: &Interpreter) -> bool {
        if self.offsets.is_some() || self.never {
            return false;
        }
        if self.searched.is_some_and(|at| at.elapsed() < self.every) {
            return false;
        }
        self.searched = Some(Instant::now());
        self.every = (self.every * 2).clamp(SEARCH_EVERY, SEARCH_EVERY_AT_MOST);
        match asyncio::offsets::<()>(pid, interp) {
            Ok(found) => {
                log::info!("pid {pid}: asyncio tasks are attributed in samples");
                self.offsets = Some(found);
                true
            }
            Err(Look::NotImported) => false,
            Err(Look::Failed(why)) => {
                log::info!("pid {pid}: samples name no asyncio task: {why}");
                self.never = true;
                false
            }
            Err(_) => {
                self.never = true;
                false
            }
        }
    }

    /// The sampler's fields for the running task.
    pub fn configure(&self, config: &mut PyConfig) {
        let (running, name) = match &self.offsets {
            Some((aio, _)) => (aio.tstate_running_task as u32, aio.task_name as u32),
            None => (PY_NO_OFFSET, PY_NO_OFFSET),
        };
        config.tstate_running_task = running;
        config.task_name = name;
    }

    /// The name of `task` from the name object `name` the sampler read in
    /// it (`None`: not readable, e.g. freed before it could be read).
    pub fn name(&mut self, interp: &Interpreter, task: u64, name: u64) -> Option<String> {
        let (aio, obj) = self.offsets?;
        // A server makes a task per request: the names of tasks long gone
        // must not pile up in an agent that runs for weeks.
        if self.names.len() >= MAX_NAMES && !self.names.contains_key(&(task, name)) {
            self.names.clear();
        }
        self.names
            .entry((task, name))
            .or_insert_with(|| match name {
                0 => None,
                object => Walk::new(interp, aio, obj).name(object).ok(),
            })
            .clone()
    }
}
