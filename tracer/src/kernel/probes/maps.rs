//! The maps' rows: what the tracer writes into them (the traced set, each
//! interpreter's configuration and threads, old zombies), what it reads
//! from them (the `MapSnapshot` at the end; `--serve`'s folds while
//! tracing), and what it lets them forget (`Probes::forget`).

use std::collections::HashSet;

use aya::{
    Ebpf,
    maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
};
use tracer_common::{
    FdKey, FdRow, FileKey, InflightIo, IoKey, IoStats, NativeMappings, NativeRowBlock, PyConfig,
    PyEntryKey, PyEventKey, PyEventValue, PySleep, PyTicks, ThreadStats, ZombieEntry, drops,
};

use super::{ProbeError, Probes, take_map, unpreempted::Unpreempted};
use crate::events::MapSnapshot;

/// Writing: what the kernel side is to trace and how.
impl Probes {
    /// Adds a process to the traced set (its threads and, by default, its
    /// future children follow in the kernel).
    pub fn trace_pid(&mut self, pid: u32) -> Result<(), ProbeError> {
        let _cpu = self.hold_cpu();
        if !self.node_wide && self.skipped_before_tracing.is_none() {
            self.skipped_before_tracing = Some(self.skipped_runs_since_load());
        }
        self.traced
            .insert(pid, 1, 0)
            .map_err(|source| ProbeError::Map {
                map: "TRACED",
                source,
            })?;
        // The kernel side's cached "not traced" answers are asked again.
        let name = "TRACED_CHANGED";
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(ProbeError::MissingMap(name))?;
        aya::maps::Array::<_, u64>::try_from(map)
            .map_err(map_error(name))?
            .set(0, crate::host::clock::monotonic_ns(), 0)
            .map_err(map_error(name))
    }

    /// Adds a thread (not the leader) of a traced process, so signals sent
    /// to it are attributed to its process.
    pub fn trace_thread(&mut self, tid: u32, tgid: u32) -> Result<(), ProbeError> {
        self.insert("TASKS", tid, tgid)
    }

    /// Registers a zombie that existed before tracing, so whoever reaps it is seen.
    pub fn watch_zombie(&mut self, pid: u32, now_ns: u64) -> Result<(), ProbeError> {
        self.insert("ZOMBIES", pid, ZombieEntry { exit_ns: now_ns })
    }

    /// Publishes the frame-walk offsets of process `pid`'s interpreter.
    pub fn set_python_config(&mut self, pid: u32, config: PyConfig) -> Result<(), ProbeError> {
        let _cpu = self.hold_cpu();
        self.py_config
            .insert(pid, config, 0)
            .map_err(|source| ProbeError::Map {
                map: "PY_CONFIG",
                source,
            })
    }

    /// Gives the kernel's unwinder rows of its table (`--native`).
    pub fn write_native_rows(
        &mut self,
        block: u32,
        rows: &NativeRowBlock,
    ) -> Result<(), ProbeError> {
        let _cpu = self.hold_cpu();
        let name = "NATIVE_ROWS";
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(ProbeError::MissingMap(name))?;
        aya::maps::Array::<_, NativeRowBlock>::try_from(map)
            .map_err(map_error(name))?
            .set(block, rows, 0)
            .map_err(map_error(name))
    }

    /// Gives the kernel's unwinder process `pid`'s executable mappings.
    pub fn set_native_mappings(
        &mut self,
        pid: u32,
        mappings: &NativeMappings,
    ) -> Result<(), ProbeError> {
        self.insert("NATIVE_MAPPINGS", pid, *mappings)
    }

    /// Applies a thread-map refresh (tid -> PyThreadState address).
    pub fn update_python_threads(
        &mut self,
        insert: &[(u32, u64)],
        remove: &[u32],
    ) -> Result<(), ProbeError> {
        let _cpu = self.hold_cpu();
        for (tid, tstate) in insert {
            self.py_threads
                .insert(tid, tstate, 0)
                .map_err(|source| ProbeError::Map {
                    map: "PY_THREADS",
                    source,
                })?;
        }
        for tid in remove {
            // Already gone is fine.
            let _ = self.py_threads.remove(tid);
        }
        Ok(())
    }

    /// Inserts `key -> value` into the hash map `name`.
    fn insert<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
        key: K,
        value: V,
    ) -> Result<(), ProbeError> {
        let _cpu = self.hold_cpu();
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(ProbeError::MissingMap(name))?;
        HashMap::<_, K, V>::try_from(map)
            .map_err(map_error(name))?
            .insert(key, value, 0)
            .map_err(map_error(name))
    }

    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        take_map(&mut self.ebpf, "EVENTS")
    }
}

impl Probes {
    /// Held around the map syscalls: unpreemptible by the traced tasks
    /// where the kernel preempts the syscall programs ([`Unpreempted`]).
    fn hold_cpu(&self) -> Unpreempted {
        Unpreempted::hold(self.unpreempted_maps)
    }
}

/// Reading: every row, summed across CPUs where the map is per CPU.
impl Probes {
    /// Every map the report is built from, read once after tracing stopped.
    /// What `--live` reads at each refresh.
    pub fn live_maps(&self) -> Result<crate::events::LiveMaps, ProbeError> {
        let _cpu = self.hold_cpu();
        Ok(crate::events::LiveMaps {
            drops: self.drops()?,
            fd_rows: self.fd_rows()?,
            read_stats: self.read_stats()?,
            threads: self.threads()?,
            sampler_error: self.sampler_error.clone(),
        })
    }

    pub fn snapshot(&self) -> Result<MapSnapshot, ProbeError> {
        let _cpu = self.hold_cpu();
        Ok(MapSnapshot {
            drops: self.drops()?,
            skipped_runs: self.skipped_runs(),
            python_ticks: self.python_ticks()?,
            reads: self.read_stats()?,
            opens: self.file_opens()?,
            fd_rows: self.fd_rows()?,
            threads: self.threads()?,
            python_event_stacks: self.python_event_stacks()?,
            python_entries: self.python_entries()?,
            python_sleeping: self.python_sleeping()?,
            python_gil_waits: self.python_gil_waits()?,
            loops: self.loops()?,
            // Only loaded with memory sampling.
            fault_runs: per_cpu_totals::<2>(&self.ebpf, "FAULT_RUNS").unwrap_or_default(),
        })
    }

    /// Every `LOOPS` row: the selector-waiting threads' iterations.
    pub fn loops(&self) -> Result<Vec<(u32, tracer_common::LoopThread)>, ProbeError> {
        let _cpu = self.hold_cpu();
        const NAME: &str = "LOOPS";
        let map = HashMap::<_, u32, tracer_common::LoopThread>::try_from(self.map(NAME)?)
            .map_err(map_error(NAME))?;
        map.iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    /// Sums of the per-CPU `DROPS` counters, indexed by `tracer_common::drops`.
    pub fn drops(&self) -> Result<[u64; drops::COUNT as usize], ProbeError> {
        let _cpu = self.hold_cpu();
        per_cpu_totals::<{ drops::COUNT as usize }>(&self.ebpf, "DROPS")
    }

    /// Runs of the loaded programs the kernel skipped (one already running
    /// on that CPU, or on the perf path any BPF program) since the first
    /// process was traced.
    pub fn skipped_runs(&self) -> u64 {
        self.skipped_runs_since_load()
            .saturating_sub(self.skipped_before_tracing.unwrap_or(0))
    }

    /// Runs the kernel skipped since the programs were loaded, summed;
    /// each program's said at debug level.
    fn skipped_runs_since_load(&self) -> u64 {
        let _cpu = self.hold_cpu();
        // Where second copies run, the syscall events both skipped.
        let lost_both = if self.covered.is_empty() {
            0
        } else {
            per_cpu_totals::<1>(&self.ebpf, "EVENTS_SKIPPED").map_or(0, |[lost]| lost)
        };
        if lost_both > 0 {
            log::debug!("{lost_both} syscall event(s) of the second copies' skipped too");
        }
        lost_both
            + self
                .ebpf
                .programs()
                .filter_map(|(name, program)| {
                    let misses = super::skipped::recursion_misses(program.fd().ok()?)?;
                    if misses > 0 {
                        // Debug: the continuous modes ask at every fold.
                        log::debug!("the kernel skipped {misses} run(s) of {name}");
                    }
                    // What these skipped lost nothing, or is in `lost_both`.
                    (!self.covered.contains(&name)).then_some(misses)
                })
                .sum::<u64>()
    }

    /// Every `IO_STATS` row, summed across CPUs.
    pub fn read_stats(&self) -> Result<Vec<(IoKey, IoStats)>, ProbeError> {
        self.per_cpu_rows("IO_STATS", IoStats::add)
    }

    /// One-off traces: every `FD_ROWS` row (descriptors not closed yet).
    pub fn fd_rows(&self) -> Result<Vec<(FdKey, FdRow)>, ProbeError> {
        let _cpu = self.hold_cpu();
        const NAME: &str = "FD_ROWS";
        let map = HashMap::<_, FdKey, FdRow>::try_from(self.map(NAME)?).map_err(map_error(NAME))?;
        map.iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    /// Opens per (tgid, file_id), summed across CPUs.
    pub fn file_opens(&self) -> Result<std::collections::HashMap<(u32, u64), u64>, ProbeError> {
        let rows = self.per_cpu_rows("FILE_OPENS", |sum: &mut u64, v: &u64| *sum += v)?;
        Ok(rows
            .into_iter()
            .map(|(key, n): (FileKey, u64)| ((key.tgid, key.file_id), n))
            .collect())
    }

    /// Every traced thread's scheduling figures (key: tid).
    pub fn threads(&self) -> Result<Vec<(u32, ThreadStats)>, ProbeError> {
        let _cpu = self.hold_cpu();
        const NAME: &str = "THREADS";
        let threads =
            HashMap::<_, u32, ThreadStats>::try_from(self.map(NAME)?).map_err(map_error(NAME))?;
        threads
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    /// `--serve`: the descriptors open now, as `FD_FILES` has them.
    pub fn open_files(&self) -> Result<Vec<(FdKey, u64)>, ProbeError> {
        let _cpu = self.hold_cpu();
        const NAME: &str = "FD_FILES";
        let map = HashMap::<_, FdKey, u64>::try_from(self.map(NAME)?).map_err(map_error(NAME))?;
        map.iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    /// Sampler ticks per process, summed across CPUs.
    pub fn python_ticks(&self) -> Result<Vec<(u32, PyTicks)>, ProbeError> {
        self.per_cpu_rows("PY_TICKS", |sum: &mut PyTicks, v: &PyTicks| {
            sum.ticks += v.ticks;
            sum.no_interpreter += v.no_interpreter;
            sum.no_thread_state += v.no_thread_state;
            sum.no_frame += v.no_frame;
        })
    }

    /// Kernel events by the top of their Python stack, summed across CPUs.
    pub fn python_event_stacks(&self) -> Result<Vec<(PyEventKey, PyEventValue)>, ProbeError> {
        self.per_cpu_rows(
            "PY_EVENT_STACKS",
            |sum: &mut PyEventValue, v: &PyEventValue| {
                sum.count += v.count;
                sum.off_cpu_ns += v.off_cpu_ns;
            },
        )
    }

    /// Entries per (pid, code object), summed across CPUs.
    pub fn python_entries(&self) -> Result<Vec<(PyEntryKey, u64)>, ProbeError> {
        self.per_cpu_rows("PY_ENTRIES", |sum: &mut u64, v: &u64| *sum += v)
    }

    /// Each Python thread's futex waits on its process's GIL.
    pub fn python_gil_waits(
        &self,
    ) -> Result<Vec<(tracer_common::PyGilThread, tracer_common::PyGilWait)>, ProbeError> {
        let _cpu = self.hold_cpu();
        const NAME: &str = "PY_GIL_WAITS";
        let map = HashMap::<_, tracer_common::PyGilThread, tracer_common::PyGilWait>::try_from(
            self.map(NAME)?,
        )
        .map_err(map_error(NAME))?;
        map.iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    /// Python threads asleep after a voluntary switch, with the stack they
    /// went to sleep in (`start_ns` 0: the slot is idle, the thread woke).
    pub fn python_sleeping(&self) -> Result<Vec<(u32, PySleep)>, ProbeError> {
        let _cpu = self.hold_cpu();
        const NAME: &str = "PY_SLEEPING";
        let sleeping =
            HashMap::<_, u32, PySleep>::try_from(self.map(NAME)?).map_err(map_error(NAME))?;
        sleeping
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    /// Every row of a per-CPU hash map, its values folded across CPUs by `add`.
    fn per_cpu_rows<K: aya::Pod, V: aya::Pod, S: Default>(
        &self,
        name: &'static str,
        add: impl Fn(&mut S, &V),
    ) -> Result<Vec<(K, S)>, ProbeError> {
        let _cpu = self.hold_cpu();
        let map = PerCpuHashMap::<_, K, V>::try_from(self.map(name)?).map_err(map_error(name))?;
        let mut rows = Vec::new();
        for entry in map.iter() {
            let (key, per_cpu) = entry.map_err(map_error(name))?;
            let mut sum = S::default();
            for value in per_cpu.iter() {
                add(&mut sum, value);
            }
            rows.push((key, sum));
        }
        Ok(rows)
    }

    fn map(&self, name: &'static str) -> Result<&aya::maps::Map, ProbeError> {
        self.ebpf.map(name).ok_or(ProbeError::MissingMap(name))
    }
}

/// Forgetting: `--serve`'s long runs keep the maps to the living.
impl Probes {
    /// `--serve`: drops the rows of exited threads and gone processes from
    /// the kernel's tables (after their last figures were folded in), so
    /// that a long run with many short-lived processes never fills them.
    /// `reads` and `open`: `IO_STATS` and `FD_FILES` as this fold read
    /// them. Every row is removed by its key (one syscall each): a node
    /// starting dozens of processes a second must not walk every row of
    /// every table each second. The two tables keyed by more than a pid
    /// and not read at each fold have their keys from the record each
    /// row's first insert sent; they are also searched for the gone every
    /// [`SEARCH_EVERY`] forgets, for the rows whose record was lost.
    pub fn forget(
        &mut self,
        forget: &crate::events::Forget,
        reads: &[(IoKey, IoStats)],
        open: &[(FdKey, u64)],
    ) -> Result<(), ProbeError> {
        let _cpu = self.hold_cpu();
        let pids: HashSet<u32> = forget.pids.iter().copied().collect();
        let mut read_rows: Vec<IoKey> = forget.read_rows.clone();
        read_rows.extend(
            reads
                .iter()
                .map(|(key, _)| *key)
                .filter(|key| pids.contains(&key.tgid)),
        );
        remove_keys!(self, PerCpuHashMap, "IO_STATS", IoKey, IoStats, read_rows);
        let tids = forget.tids.iter().copied();
        remove_keys!(self, HashMap, "THREADS", u32, ThreadStats, tids.clone());
        remove_keys!(self, HashMap, "INFLIGHT", u32, InflightIo, tids.clone());
        remove_keys!(self, HashMap, "PY_SLEEPING", u32, PySleep, tids.clone());
        remove_keys!(self, HashMap, "LOOPS", u32, tracer_common::LoopThread, tids);
        let fds = open
            .iter()
            .map(|(key, _)| *key)
            .filter(|key| pids.contains(&key.tgid));
        remove_keys!(self, HashMap, "FD_FILES", FdKey, u64, fds);
        let gone = forget.pids.iter().copied();
        remove_keys!(self, PerCpuHashMap, "PY_TICKS", u32, PyTicks, gone);
        let opens = forget.file_opens.iter().map(|&(tgid, file_id)| FileKey {
            tgid,
            _pad: 0,
            file_id,
        });
        remove_keys!(self, PerCpuHashMap, "FILE_OPENS", FileKey, u64, opens);
        let stacks = forget.event_stacks.iter().copied();
        remove_keys!(
            self,
            PerCpuHashMap,
            "PY_EVENT_STACKS",
            PyEventKey,
            PyEventValue,
            stacks
        );
        self.forgetting.extend(pids);
        self.forgets += 1;
        if !self.forgets.is_multiple_of(SEARCH_EVERY) || self.forgetting.is_empty() {
            return Ok(());
        }
        let pids = std::mem::take(&mut self.forgetting);
        self.remove_per_cpu_rows::<FileKey, u64>("FILE_OPENS", |key| pids.contains(&key.tgid))?;
        self.remove_per_cpu_rows::<PyEventKey, PyEventValue>("PY_EVENT_STACKS", |key| {
            pids.contains(&key.tgid)
        })
    }

    fn remove_per_cpu_rows<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
        doomed: impl Fn(&K) -> bool,
    ) -> Result<(), ProbeError> {
        let _cpu = self.hold_cpu();
        remove_doomed!(self, PerCpuHashMap, name, doomed)
    }
}

/// Forgets before the tables keyed by more than a pid are searched for
/// the gone processes' rows whose first-insert record was lost (a fold a
/// second: a minute).
const SEARCH_EVERY: u64 = 60;

/// Removes keys `$keys` from hash map `$name` of type `$map`. A key gone
/// already (the kernel side removed it) is nothing to do.
macro_rules! remove_keys {
    ($probes:ident, $map:ident, $name:literal, $k:ty, $v:ty, $keys:expr) => {{
        let map = $probes
            .ebpf
            .map_mut($name)
            .ok_or(ProbeError::MissingMap($name))?;
        let mut map = $map::<_, $k, $v>::try_from(map).map_err(map_error($name))?;
        for key in $keys {
            let _ = map.remove(&key);
        }
    }};
}
use remove_keys;

/// Removes the keys `doomed` picks from hash map `name` of type `$map`
/// (the two hash map types share no trait for `keys` and `remove`).
macro_rules! remove_doomed {
    ($probes:ident, $map:ident, $name:ident, $doomed:ident) => {{
        let map = $probes
            .ebpf
            .map_mut($name)
            .ok_or(ProbeError::MissingMap($name))?;
        let mut map = $map::<_, K, V>::try_from(map).map_err(map_error($name))?;
        let keys: Vec<K> = map.keys().filter_map(Result::ok).filter(&$doomed).collect();
        for key in keys {
            // Gone already (the kernel side removed it): nothing to do.
            let _ = map.remove(&key);
        }
        Ok(())
    }};
}
use remove_doomed;

/// Turns an aya map error into ours, naming the map.
fn map_error(map: &'static str) -> impl Fn(aya::maps::MapError) -> ProbeError {
    move |source| ProbeError::Map { map, source }
}

fn per_cpu_totals<const N: usize>(ebpf: &Ebpf, name: &'static str) -> Result<[u64; N], ProbeError> {
    let map = ebpf.map(name).ok_or(ProbeError::MissingMap(name))?;
    let array = PerCpuArray::<_, u64>::try_from(map)
        .map_err(|source| ProbeError::Map { map: name, source })?;
    let mut totals = [0u64; N];
    for (index, total) in totals.iter_mut().enumerate() {
        let values = array
            .get(&(index as u32), 0)
            .map_err(|source| ProbeError::Map { map: name, source })?;
        *total = values.iter().sum();
    }
    Ok(totals)
}
