//! `--serve`: the continuous mode's aggregator. Counters since tracing
//! started, fed by events and by folding the kernel's cumulative maps in
//! every second; bounded whatever the run's length: each labelled family
//! keeps at most a fixed number of series (the busiest recently; a series
//! idle for a minute gives its place to a busier one, the rest go to an
//! `other` series), and what it keeps per process or thread is forgotten
//! once that process is gone.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    hash::Hash,
};

use tracer_common::{FdKey, IoKey, IoStats, IoSyscall, LOOP_BUCKETS_NS, LoopThread, ThreadStats};

use super::{
    interval::LastSeen,
    native::SampleFrames,
    processes, signals,
    system::System,
    zombies::{Exited, Zombies},
};
use crate::host::files::table::FileTable;
use crate::{
    events::{Event, Forget},
    python::PythonTree,
    report::{
        Container, identity,
        metrics::{Histogram, IoSeries, Metrics, OTHER},
    },
};

/// Series per labelled family (a histogram series is its 10 lines).
const MAX_FILE_SERIES: usize = 200;
const MAX_PROCESS_SERIES: usize = 200;
const MAX_HISTOGRAM_SERIES: usize = 50;
const MAX_FUNCTION_SERIES: usize = 500;
/// Folds (seconds) a series may stay idle before a busier key may take its place.
const IDLE_FOLDS: u64 = 60;
/// Request size buckets: powers of two, 256 B to 1 MiB.
const REQUEST_BOUNDS: [f64; 13] = [
    256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0, 131072.0, 262144.0,
    524288.0, 1048576.0,
];
const ZOMBIE_BOUNDS: [f64; 9] = [0.001, 0.01, 0.1, 0.5, 1.0, 10.0, 60.0, 600.0, 3600.0];
/// Event loop iteration buckets: the kernel's ([`LOOP_BUCKETS_NS`]), in seconds.
const LOOP_BOUNDS_S: [f64; LOOP_BUCKETS_NS.len()] = {
    let mut bounds = [0.0; LOOP_BUCKETS_NS.len()];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = LOOP_BUCKETS_NS[i] as f64 / 1e9;
        i += 1;
    }
    bounds
};

/// A labelled family bounded to `limit` series, each keyed by its labels.
/// A key gets its own series when there is room, or when a series has
/// been idle for [`IDLE_FOLDS`] (it is dropped; Prometheus marks it
/// stale); else its counts go to the `other` series. Every series only
/// grows.
struct Bounded<K, V> {
    limit: usize,
    series: HashMap<K, (V, u64)>,
    other: V,
}

impl<K: Eq + Hash + Clone, V: Default> Bounded<K, V> {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            series: HashMap::new(),
            other: V::default(),
        }
    }

    /// The series `key` counts into at fold `now` (a fold number).
    fn slot(&mut self, key: &K, now: u64) -> &mut V {
        if !self.series.contains_key(key) && self.series.len() >= self.limit {
            let idle = self
                .series
                .iter()
                .filter(|(_, (_, last))| now.saturating_sub(*last) >= IDLE_FOLDS)
                .min_by_key(|(_, (_, last))| *last)
                .map(|(k, _)| k.clone());
            match idle {
                Some(idle) => {
                    self.series.remove(&idle);
                }
                None => return &mut self.other,
            }
        }
        let entry = self
            .series
            .entry(key.clone())
            .or_insert_with(|| (V::default(), now));
        entry.1 = now;
        &mut entry.0
    }
}

/// The kernel's cumulative maps as one fold reads them.
pub struct MapsNow<'a> {
    pub reads: &'a [(IoKey, IoStats)],
    pub threads: &'a [(u32, ThreadStats)],
    /// The descriptors open now (`FD_FILES`: tgid, fd, file id).
    pub open: &'a [(FdKey, u64)],
    /// The selector-waiting threads' loop iterations (`LOOPS`).
    pub loops: &'a [(u32, LoopThread)],
    /// Events lost so far.
    pub lost: u64,
    /// The last fold, every event drained: no row waits for its name.
    pub last: bool,
}

/// A read or write series per (process, file) and the other files' sum,
/// in pid and path order.
fn io_series(bounded: &Bounded<(u32, String, String), Counts>) -> Vec<IoSeries> {
    let series = |pid: String, path: &str, fs: &str, c: &Counts| IoSeries {
        pid,
        path: path.into(),
        fs: fs.into(),
        syscalls: c.syscalls,
        bytes: c.bytes,
        syncs: c.syncs,
    };
    let mut all: Vec<IoSeries> = bounded
        .series
        .iter()
        .map(|((p, path, fs), (c, _))| series(p.to_string(), path, fs, c))
        .collect();
    all.sort_by(|a, b| (&a.pid, &a.path).cmp(&(&b.pid, &b.path)));
    all.push(series(OTHER.into(), OTHER, OTHER, &bounded.other));
    all
}

/// What a process left behind: its pid, gone at fold number `at`.
struct Gone {
    pid: u32,
    at: u64,
}

#[derive(Default)]
struct Counts {
    syscalls: u64,
    bytes: u64,
    /// A write series' syncs (`fsync`, `fdatasync`, `sync_file_range`).
    syncs: u64,
}

/// The continuous mode's figures while tracing.
pub struct Aggregator {
    folds: u64,
    /// Last values seen per kernel row, to add what grew since.
    reads_seen: LastSeen<IoKey, (u64, u64)>,
    /// Rows read while their file had no name: the fold that first read
    /// each (see [`Aggregator::awaits_name`]).
    unnamed: HashMap<IoKey, u64>,
    threads_seen: LastSeen<u32, (u64, u64)>,
    reads: Bounded<(u32, String, String), Counts>,
    /// The same for writes and syncs.
    writes: Bounded<(u32, String, String), Counts>,
    request_sizes: Bounded<(u32, String), Histogram>,
    switches: Bounded<u32, (u64, u64)>,
    signals: BTreeMap<(i32, &'static str), u64>,
    samples: Bounded<(u32, String), u64>,
    /// Per live Python process: its resident memory at its last sampled
    /// page fault (bytes); gone with the process.
    resident: BTreeMap<u32, u64>,
    /// Per Python process: its event loops' iteration times (`LOOPS`, the
    /// last rows seen per thread).
    loops_seen: LastSeen<u32, LoopThread>,
    loop_iterations: Bounded<u32, Histogram>,
    /// Per process: the keys of its kernel rows that only a record names
    /// (each row's first insert sends one), removed by key once it is gone.
    opened: HashMap<u32, Vec<u64>>,
    event_stacks: HashMap<u32, Vec<tracer_common::PyEventKey>>,
    /// Parent of every process seen forked or adopted.
    parents: HashMap<u32, u32>,
    /// The container of each process in one, known or with a series (its
    /// labels): read when it was adopted, forked or exec'd.
    in_containers: HashMap<u32, Container>,
    /// Exited, not reaped (by a wait, or released without one).
    zombies: Zombies,
    zombie_seconds: Histogram,
    /// Threads and processes that exited, forgotten a few folds later.
    exited_threads: Vec<Gone>,
    freed: Vec<Gone>,
    pub events_lost: u64,
    /// Python samples seen, for the status line.
    pub samples_seen: u64,
    /// `--redact-paths`: path labels under these are the prefix alone.
    redact: Vec<String>,
}

/// `path` as labelled: the longest of `prefixes` it is under (a whole
/// directory: `/home` covers `/home/a`, not `/homework`), else itself.
fn redacted(path: String, prefixes: &[String]) -> String {
    let under = |prefix: &&String| {
        (prefix.as_str() == "/" && path.starts_with('/'))
            || path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    match prefixes.iter().filter(under).max_by_key(|p| p.len()) {
        Some(prefix) => prefix.clone(),
        None => path,
    }
}

/// Folds after an exit before its rows are forgotten: its last switch-out
/// and reads land after its exit record.
const GRACE_FOLDS: u64 = 2;

/// Folds a row whose file has no name yet is held back for, waiting for
/// the record that names it, before it is counted as "fd N (name lost)".
/// Each fold drains the ring buffer first, so the record of a row read
/// by one fold is drained by the next (unless a program that reserved an
/// earlier record is preempted before it submits it): counted in folds,
/// not seconds, so a tracer starved of CPU waits as many drains.
const NAME_WAIT_FOLDS: u64 = 5;

impl Default for Aggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregator {
    /// `redact`: `--redact-paths`' prefixes.
    pub fn redacting(redact: Vec<String>) -> Self {
        Self {
            redact,
            ..Self::new()
        }
    }

    pub fn new() -> Self {
        Self {
            folds: 0,
            reads_seen: LastSeen::default(),
            unnamed: HashMap::new(),
            threads_seen: LastSeen::default(),
            reads: Bounded::new(MAX_FILE_SERIES),
            writes: Bounded::new(MAX_FILE_SERIES),
            request_sizes: Bounded::new(MAX_HISTOGRAM_SERIES),
            switches: Bounded::new(MAX_PROCESS_SERIES),
            signals: BTreeMap::new(),
            samples: Bounded::new(MAX_FUNCTION_SERIES),
            resident: BTreeMap::new(),
            loops_seen: LastSeen::default(),
            loop_iterations: Bounded::new(MAX_HISTOGRAM_SERIES),
            opened: HashMap::new(),
            event_stacks: HashMap::new(),
            parents: HashMap::new(),
            in_containers: HashMap::new(),
            zombies: Zombies::default(),
            redact: Vec::new(),
            zombie_seconds: Histogram::new(&ZOMBIE_BOUNDS),
            exited_threads: Vec::new(),
            freed: Vec::new(),
            events_lost: 0,
            samples_seen: 0,
        }
    }

    pub fn on_process(&mut self, system: &mut dyn System, pid: u32, parent: u32) {
        self.parents.insert(pid, parent);
        let container =
            identity::container_when_met(system.container(pid), self.in_containers.get(&parent));
        self.set_container(pid, container);
    }

    /// The container of `pid` as its series say it (`None` on the host).
    pub fn container_of(&self, pid: u32) -> Option<&Container> {
        self.in_containers.get(&pid)
    }

    fn set_container(&mut self, pid: u32, container: Option<Container>) {
        match container {
            Some(c) => self.in_containers.insert(pid, c),
            None => self.in_containers.remove(&pid),
        };
    }

    /// A child that was a zombie before tracing started.
    pub fn on_old_zombie(&mut self, pid: u32, parent: u32) {
        let exited = Exited {
            exit_ns: None,
            parent,
            ns_pid: None,
        };
        self.zombies.on_exit(pid, exited);
    }

    /// `ns_pid`: a whole process's pid in its own namespace, when known;
    /// `parent_now`: its parent as the system says, for one not seen forked.
    pub fn on_exit(
        &mut self,
        tgid: u32,
        tid: u32,
        group_dead: bool,
        ts_ns: u64,
        ns_pid: Option<u32>,
        parent_now: Option<u32>,
    ) {
        self.exited_threads.push(Gone {
            pid: tid,
            at: self.folds,
        });
        if group_dead {
            self.resident.remove(&tgid);
            let parent = self.parents.get(&tgid).copied().or(parent_now).unwrap_or(0);
            let exited = Exited {
                exit_ns: Some(ts_ns),
                parent,
                ns_pid,
            };
            self.zombies.on_exit(tgid, exited);
        }
    }

    /// Process `waiter` reaped its child `pid` (as the waiter's pid
    /// namespace numbers it) at `ts_ns`.
    pub fn on_wait_reaped(&mut self, waiter: u32, pid: u32, ts_ns: u64) {
        if let Some(child) = self.zombies.reported_child(waiter, pid) {
            self.on_reaped(child, ts_ns);
        }
    }

    /// `pid` was reaped (by a wait, or released without one) at `ts_ns`:
    /// what is kept about it is forgotten a few folds later.
    fn on_reaped(&mut self, pid: u32, ts_ns: u64) {
        if let Some(Exited {
            exit_ns: Some(exit),
            ..
        }) = self.zombies.reap(pid)
        {
            let seconds = ts_ns.saturating_sub(exit) as f64 / 1e9;
            self.zombie_seconds.observe(seconds, 1);
        }
        self.parents.remove(&pid);
        self.freed.push(Gone {
            pid,
            at: self.folds,
        });
    }

    /// The kernel released `pid` without a wait (an ignored SIGCHLD).
    pub fn on_freed(&mut self, pid: u32, ts_ns: u64) {
        self.on_reaped(pid, ts_ns);
    }

    pub fn on_signal(&mut self, signo: i32, event: &'static str) {
        *self.signals.entry((signo, event)).or_default() += 1;
    }

    /// One Python sample of process `pid`, its innermost function.
    pub fn on_sample(&mut self, pid: u32, function: String) {
        *self.samples.slot(&(pid, function), self.folds) += 1;
    }

    /// What the continuous figures need of an event; nothing that grows
    /// with the run. `named`, `python`: a sample's Python frames, to name
    /// its innermost function.
    pub fn on_event(
        &mut self,
        event: Event,
        named: Option<&SampleFrames>,
        python: Option<&PythonTree>,
        system: &mut dyn System,
    ) {
        match event {
            Event::FileOpened { tgid, file_id, .. } => {
                self.opened.entry(tgid).or_default().push(file_id);
            }
            Event::PyStack { key, .. } => {
                self.event_stacks.entry(key.tgid).or_default().push(key);
            }
            Event::ProcessForked {
                parent_tgid,
                child,
                is_thread: false,
                ..
            } => self.on_process(system, child, parent_tgid),
            // Taken in as it execs (node-wide): its parent from /proc.
            Event::ProcessExec { tgid, .. } if !self.parents.contains_key(&tgid) => {
                let parent = system.parent(tgid).unwrap_or(0);
                self.on_process(system, tgid, parent);
            }
            Event::ProcessExited {
                tgid,
                tid,
                group_dead,
                ts_ns,
                ns_pid,
                ..
            } => {
                // Taken in as it exits (node-wide): its parent from /proc.
                let parent = (group_dead && !self.parents.contains_key(&tgid))
                    .then(|| system.parent(tgid))
                    .flatten();
                self.on_exit(tgid, tid, group_dead, ts_ns, ns_pid, parent);
            }
            Event::ProcessFreed { pid, ts_ns } => self.on_freed(pid, ts_ns),
            // `podman exec`: a program that joined a container.
            Event::ProcessExec { tgid, .. } => {
                let had = self.in_containers.remove(&tgid);
                let now = identity::container_after_exec(system.container(tgid), had);
                self.set_container(tgid, now);
            }
            Event::WaitDone(w) if processes::reap_status(&w).is_some() => {
                self.on_wait_reaped(w.tgid, w.pid, w.ts_ns);
            }
            Event::SignalGenerated(g) => {
                self.on_signal(g.sig, "generated");
                if signals::result_name(g.result) == "ignored" {
                    self.on_signal(g.sig, "ignored");
                }
            }
            Event::SignalDelivered(d) => {
                self.on_signal(d.sig, "delivered");
                if signals::disposition(d.sa_handler) == "ignored" {
                    self.on_signal(d.sig, "ignored");
                }
            }
            Event::PySample { tgid, .. } => {
                self.samples_seen += 1;
                let Some(tree) = python else {
                    return;
                };
                // Not named (an interpreter not understood, a code object
                // freed): counted under one name, not lost, and no label
                // value per address.
                let function = named
                    .and_then(SampleFrames::innermost)
                    .map(|id| tree.frame(id))
                    .filter(|frame| frame.is_resolved())
                    .map_or_else(|| "[unresolved]".to_owned(), |frame| frame.qualname.clone());
                self.on_sample(tgid, function);
            }
            Event::PyFaultSample(fault) if fault.rss_pages != 0 => {
                let page = system.page_size();
                self.resident.insert(fault.tgid, fault.rss_pages * page);
            }
            _ => {}
        }
    }

    /// Adds what the kernel's cumulative rows gained since the last fold;
    /// returns the rows the kernel maps should drop now. `open`: the
    /// descriptors open now, as (tgid, fd, file id): a row of one closed
    /// since, that did not grow in this fold, is dropped (a service that
    /// reads a new pipe per request must not fill the table); a new row
    /// of the same file starts again from zero. A row whose file has no
    /// name yet waits for it (see [`Aggregator::awaits_name`]), unless
    /// this is the `last` fold or its process is forgotten now.
    pub fn fold(
        &mut self,
        reads: &[(IoKey, IoStats)],
        threads: &[(u32, ThreadStats)],
        files: &FileTable,
        open: &HashSet<(u32, i32, u64)>,
        last: bool,
    ) -> Forget {
        self.folds += 1;
        let now = self.folds;
        let due = |gone: &Gone| now.saturating_sub(gone.at) > GRACE_FOLDS;
        let pids: Vec<u32> = self
            .freed
            .iter()
            .filter(|g| due(g))
            .map(|g| g.pid)
            .collect();
        let gone: HashSet<u32> = pids.iter().copied().collect();
        let mut grown: Vec<(IoKey, u64, u64)> = Vec::new();
        let mut read_rows = Vec::new();
        for (key, stats) in reads {
            let waits = !last && !gone.contains(&key.tgid);
            if waits && self.awaits_name(key, files, now) {
                continue;
            }
            let (syscalls, bytes) = self.reads_seen.grown(*key, (stats.syscalls, stats.bytes));
            if syscalls > 0 {
                grown.push((*key, syscalls, bytes));
            } else if !open.contains(&(key.tgid, key.fd, key.file_id)) {
                read_rows.push(*key);
            }
        }
        for key in &read_rows {
            self.reads_seen.forget(key);
            self.unnamed.remove(key);
        }
        // Busiest first: they take free places before quieter files.
        grown.sort_by_key(|&(_, syscalls, _)| std::cmp::Reverse(syscalls));
        for (key, syscalls, bytes) in grown {
            let info = files.describe(key.tgid, key.fd, key.file_id);
            let path = redacted(info.series_name(), &self.redact);
            let syscall = IoSyscall::from_u32(key.syscall);
            let series = match syscall {
                Some(s) if s.is_write() => &mut self.writes,
                _ => &mut self.reads,
            };
            let counts = series.slot(&(key.tgid, path, info.fs.to_string()), now);
            if syscall.is_some_and(IoSyscall::is_sync) {
                counts.syncs += syscalls;
                continue;
            }
            counts.bytes += bytes;
            counts.syscalls += syscalls;
            // Request sizes: the reads' (CPython's buffer sizes).
            if syscall.is_some_and(IoSyscall::is_write) {
                continue;
            }
            let sizes = self
                .request_sizes
                .slot(&(key.tgid, info.fs.into_owned()), now);
            if sizes.bounds.is_empty() {
                *sizes = Histogram::new(&REQUEST_BOUNDS);
            }
            sizes.observe(key.request as f64, syscalls);
        }
        for (tid, stats) in threads {
            let (voluntary, involuntary) = self
                .threads_seen
                .grown(*tid, (stats.voluntary, stats.involuntary));
            if voluntary + involuntary > 0 {
                let counts = self.switches.slot(&stats.tgid, now);
                counts.0 += voluntary;
                counts.1 += involuntary;
            }
        }
        let tids: Vec<u32> = self
            .exited_threads
            .iter()
            .filter(|g| due(g))
            .map(|g| g.pid)
            .collect();
        self.exited_threads.retain(|g| !due(g));
        self.freed.retain(|g| !due(g));
        for tid in &tids {
            self.threads_seen.forget(tid);
            self.loops_seen.forget(tid);
        }
        self.reads_seen.retain(|key, _| !gone.contains(&key.tgid));
        self.unnamed.retain(|key, _| !gone.contains(&key.tgid));
        if !self.in_containers.is_empty() {
            // Kept while a series has the pid: its labels must not change.
            let labelled = self.series_pids();
            let (parents, zombies) = (&self.parents, &self.zombies);
            self.in_containers.retain(|pid, _| {
                parents.contains_key(pid) || zombies.contains(*pid) || labelled.contains(pid)
            });
        }
        let mut file_opens = Vec::new();
        let mut event_stacks = Vec::new();
        for pid in &pids {
            let opened = self.opened.remove(pid).unwrap_or_default();
            file_opens.extend(opened.into_iter().map(|id| (*pid, id)));
            event_stacks.extend(self.event_stacks.remove(pid).unwrap_or_default());
        }
        Forget {
            tids,
            pids,
            read_rows,
            file_opens,
            event_stacks,
        }
    }

    /// Whether row `key` is held back at fold `now`: its file has no name
    /// yet. The record naming a file (its open, or the first read of a
    /// descriptor opened otherwise) is sent before the row's first count,
    /// but the fold drains the records before it reads the rows: a file
    /// opened and written in between has its row read before its name.
    /// Counted then, its figures would be "fd N (name lost)" for good (a
    /// series only grows); held back, they are counted whole at the fold
    /// the name has come by. A row still unnamed after
    /// [`NAME_WAIT_FOLDS`] folds is counted as it is (its record was lost).
    fn awaits_name(&mut self, key: &IoKey, files: &FileTable, now: u64) -> bool {
        if key.file_id == 0 || files.knows(key.tgid, key.file_id) {
            self.unnamed.remove(key);
            return false;
        }
        let since = *self.unnamed.entry(*key).or_insert(now);
        now - since < NAME_WAIT_FOLDS
    }

    /// [`Aggregator::fold`] from the maps as read now, then forgets what the
    /// gone left in userspace: the names of files neither open nor in a
    /// kept row, the files and Python state of gone processes. `open`: the
    /// descriptors open now (`FD_FILES`: tgid, fd, file id); `lost`:
    /// events lost so far. Returns the rows the kernel maps should drop.
    pub fn fold_maps(
        &mut self,
        maps: MapsNow,
        files: &mut FileTable,
        mut python: Option<&mut PythonTree>,
    ) -> Forget {
        self.events_lost = maps.lost;
        let open: HashSet<(u32, i32, u64)> = maps
            .open
            .iter()
            .map(|(k, id)| (k.tgid, k.fd, *id))
            .collect();
        let forget = self.fold(maps.reads, maps.threads, files, &open, maps.last);
        self.fold_loops(maps.loops, python.as_deref());
        // The names of files neither open nor in a kept row.
        let mut keep: HashSet<(u32, u64)> = self.files_read();
        keep.extend(open.iter().map(|&(tgid, _, id)| (tgid, id)));
        files.retain(|tgid, file_id| keep.contains(&(tgid, file_id)));
        log::debug!(
            "metrics: {}; {} Python processes, {} files",
            self.sizes(),
            python.as_deref().map_or(0, |t| t.processes().count()),
            files.len()
        );
        for &pid in &forget.pids {
            files.forget(pid);
            if let Some(tree) = python.as_deref_mut() {
                tree.forget(pid);
            }
        }
        forget
    }

    /// The pids of every per-process series.
    /// Adds what each event loop iterated since the last fold to its
    /// process's histogram: Python processes' loops only (every daemon of
    /// a host waits in `poll`).
    fn fold_loops(&mut self, loops: &[(u32, LoopThread)], python: Option<&PythonTree>) {
        let now = self.folds;
        for (tid, row) in loops {
            let grown = self.loops_seen.grown(*tid, *row);
            let is_python = python
                .and_then(|tree| tree.process(row.tgid))
                .is_some_and(|p| p.ready().is_some());
            if !is_python || grown.buckets.iter().all(|&n| n == 0) {
                continue;
            }
            let histogram = self.loop_iterations.slot(&row.tgid, now);
            if histogram.bounds.is_empty() {
                *histogram = Histogram::new(&LOOP_BOUNDS_S);
            }
            histogram.add(&grown.buckets, grown.busy_ns as f64 / 1e9);
        }
    }

    fn series_pids(&self) -> HashSet<u32> {
        let reads = self.reads.series.keys().map(|k| k.0);
        let writes = self.writes.series.keys().map(|k| k.0);
        let sizes = self.request_sizes.series.keys().map(|k| k.0);
        let switches = self.switches.series.keys().copied();
        let samples = self.samples.series.keys().map(|k| k.0);
        let loops = self.loop_iterations.series.keys().copied();
        let parents = self.zombies.parents();
        let resident = self.resident.keys().copied();
        reads
            .chain(writes)
            .chain(resident)
            .chain(sizes)
            .chain(switches)
            .chain(samples)
            .chain(loops)
            .chain(parents)
            .collect()
    }

    /// The (tgid, file id) of every read row kept.
    pub fn files_read(&self) -> HashSet<(u32, u64)> {
        self.reads_seen
            .keys()
            .map(|k| (k.tgid, k.file_id))
            .collect()
    }

    /// How much it holds, for `RUST_LOG=debug`.
    pub fn sizes(&self) -> String {
        format!(
            "{} read rows, {} threads, {} parents, {} in containers, {} zombies, \
             {}+{}+{}+{}+{} series",
            self.reads_seen.len(),
            self.threads_seen.len(),
            self.parents.len(),
            self.in_containers.len(),
            self.zombies.len(),
            self.reads.series.len(),
            self.writes.series.len(),
            self.request_sizes.series.len(),
            self.switches.series.len(),
            self.samples.series.len()
        )
    }

    /// The figures now.
    pub fn snapshot(&self) -> Metrics {
        let pid = |pid: u32| pid.to_string();
        let reads = io_series(&self.reads);
        let writes = io_series(&self.writes);
        let mut request_sizes: Vec<(String, String, Histogram)> = self
            .request_sizes
            .series
            .iter()
            .map(|((p, fs), (h, _))| (pid(*p), fs.clone(), h.clone()))
            .collect();
        request_sizes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        if !self.request_sizes.other.bounds.is_empty() {
            let other = self.request_sizes.other.clone();
            request_sizes.push((OTHER.into(), OTHER.into(), other));
        }
        let mut switches: Vec<(String, u64, u64)> = self
            .switches
            .series
            .iter()
            .map(|(p, ((v, i), _))| (pid(*p), *v, *i))
            .collect();
        switches.sort();
        let (v, i) = self.switches.other;
        switches.push((OTHER.into(), v, i));
        let signals = self
            .signals
            .iter()
            .map(|(&(signo, event), &n)| (super::signals::signal_name(signo), event, n))
            .collect();
        let zombies = self
            .zombies
            .per_parent()
            .into_iter()
            .map(|(p, n)| (pid(p), n))
            .collect();
        let mut python_samples: Vec<(String, String, u64)> = self
            .samples
            .series
            .iter()
            .map(|((p, function), (n, _))| (pid(*p), function.clone(), *n))
            .collect();
        python_samples.sort();
        python_samples.push((OTHER.into(), OTHER.into(), self.samples.other));
        let mut event_loop_iterations: Vec<(String, Histogram)> = self
            .loop_iterations
            .series
            .iter()
            .map(|(p, (h, _))| (pid(*p), h.clone()))
            .collect();
        event_loop_iterations.sort_by(|a, b| a.0.cmp(&b.0));
        if !self.loop_iterations.other.bounds.is_empty() {
            event_loop_iterations.push((OTHER.into(), self.loop_iterations.other.clone()));
        }
        let labelled = self.series_pids();
        let containers = self
            .in_containers
            .iter()
            .filter(|(p, _)| labelled.contains(p))
            .map(|(p, c)| (pid(*p), c.clone()))
            .collect();
        Metrics {
            reads,
            writes,
            request_sizes,
            switches,
            signals,
            zombies,
            zombie_seconds: self.zombie_seconds.clone(),
            python_samples,
            resident_bytes: self.resident.iter().map(|(p, b)| (pid(*p), *b)).collect(),
            event_loop_iterations,
            events_lost: self.events_lost,
            containers,
            otlp: None,
            // The continuous mode's own: set where they are counted.
            web: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::system::{MadeUp, made_up};
    use crate::host::files::FileInfo;

    #[test]
    fn paths_under_a_prefix_are_the_prefix() {
        let prefixes = ["/home".to_owned(), "/home/alice/secret".to_owned()];
        let label = |path: &str| redacted(path.to_owned(), &prefixes);
        assert_eq!(label("/home/bob/notes.txt"), "/home");
        assert_eq!(label("/home"), "/home");
        assert_eq!(label("/home/alice/secret/token"), "/home/alice/secret");
        assert_eq!(label("/homework/x"), "/homework/x");
        assert_eq!(label("/etc/passwd"), "/etc/passwd");
        assert_eq!(
            label("TCP 127.0.0.1:80 <- 127.0.0.1:*"),
            "TCP 127.0.0.1:80 <- 127.0.0.1:*"
        );
        assert_eq!(redacted("/etc/passwd".into(), &["/".into()]), "/");
        // Sockets and pipes are not paths.
        let socket = "TCP 127.0.0.1:80 <- 127.0.0.1:*";
        assert_eq!(redacted(socket.into(), &["/".into()]), socket);
    }

    #[test]
    fn a_bounded_family_lends_idle_places_and_never_shrinks_a_series() {
        let mut family: Bounded<u32, u64> = Bounded::new(2);
        *family.slot(&1, 0) += 5;
        *family.slot(&2, 0) += 5;
        // Full, nobody idle long enough: the third key counts as other.
        *family.slot(&3, 10) += 1;
        assert_eq!(family.other, 1);
        *family.slot(&2, 30) += 1;
        // Key 1 idle since fold 0: at fold 61 key 3 takes its place.
        *family.slot(&3, IDLE_FOLDS + 1) += 2;
        assert_eq!(family.series.get(&3).map(|s| s.0), Some(2));
        assert!(!family.series.contains_key(&1));
        assert_eq!(family.series.get(&2).map(|s| s.0), Some(6));
    }

    #[test]
    fn container_labels_last_as_long_as_their_series() {
        const ID: &str = "88f77ad080408287b4160044c306776b1ce4465b454c4b9e9a7b434e156f911a";
        let mut live = Aggregator::new();
        // 500 and 501 in the container (501 gone when read: its parent's).
        let mut system = MadeUp {
            processes: [(
                500,
                made_up::Process {
                    container: Some(Container {
                        id: ID.into(),
                        runtime: "docker".into(),
                        ..Container::default()
                    }),
                    ..made_up::Process::default()
                },
            )]
            .into(),
        };
        live.on_process(&mut system, 500, 1);
        live.on_process(&mut system, 501, 500);
        let files = FileTable::default();
        let switched = ThreadStats {
            tgid: 500,
            voluntary: 3,
            ..ThreadStats::default()
        };
        live.fold(&[], &[(500, switched)], &files, &HashSet::new(), false);
        let metrics = live.snapshot();
        assert_eq!(metrics.containers["500"].runtime, "docker");
        // 501 has no series: not in the figures.
        assert_eq!(metrics.containers.len(), 1);
        assert_eq!(live.in_containers[&501].id, ID);
        for pid in [500, 501] {
            live.on_exit(pid, pid, true, 1, None, None);
            live.on_freed(pid, 2);
        }
        for _ in 0..=GRACE_FOLDS {
            live.fold(&[], &[], &files, &HashSet::new(), false);
        }
        // 500's series remains, labelled as before; 501 is forgotten.
        assert!(live.snapshot().containers.contains_key("500"));
        assert!(!live.in_containers.contains_key(&501));
    }

    #[test]
    fn the_rows_only_a_record_named_are_forgotten_by_their_keys() {
        let mut live = Aggregator::new();
        let files = FileTable::default();
        let opened = |tgid, file_id| Event::FileOpened {
            tgid,
            fd: 3,
            file_id,
            path: "/x.py".into(),
            truncated: false,
            kernel: None,
        };
        let system = &mut MadeUp::default();
        live.on_event(opened(7, 11), None, None, system);
        live.on_event(opened(7, 12), None, None, system);
        live.on_event(opened(8, 13), None, None, system);
        let stack = tracer_common::PyEventKey {
            tgid: 7,
            ..Default::default()
        };
        live.on_event(
            Event::PyStack {
                key: stack,
                counts: Default::default(),
            },
            None,
            None,
            system,
        );
        live.on_process(&mut MadeUp::default(), 7, 1);
        live.on_exit(7, 7, true, 1_000_000_000, None, None);
        live.on_freed(7, 2_000_000_000);
        let mut forgot = Forget::default();
        for _ in 0..=GRACE_FOLDS {
            forgot = live.fold(&[], &[], &files, &HashSet::new(), false);
        }
        assert_eq!(forgot.file_opens, vec![(7, 11), (7, 12)]);
        assert_eq!(forgot.event_stacks, vec![stack]);
        // Process 8 lives on: its rows stay.
        assert_eq!(live.opened.get(&8), Some(&vec![13]));
    }

    /// The flake of `prometheus_scrapes_the_figures_a_service_knows`: a
    /// log opened and written 10 times between a fold's drain and its
    /// read of the rows had those writes counted as "fd 3 (name lost)".
    #[test]
    fn a_row_read_before_its_files_name_waits_for_it() {
        let mut live = Aggregator::new();
        let mut files = FileTable::default();
        let write = |fd, file_id, request| IoKey {
            tgid: 7,
            fd,
            file_id,
            request,
            syscall: IoSyscall::Write as u32,
            _pad: 0,
        };
        let (log, lost) = (write(3, 0x11, 8), write(4, 0x22, 4));
        let stats = |syscalls| IoStats {
            syscalls,
            bytes: syscalls * log.request,
            ..IoStats::default()
        };
        let open = HashSet::from([(7, 3, 0x11), (7, 4, 0x22)]);
        let writes = |live: &Aggregator| -> Vec<(String, u64, u64)> {
            let metrics = live.snapshot();
            metrics
                .writes
                .iter()
                .filter(|s| s.pid != OTHER)
                .map(|s| (s.path.clone(), s.syscalls, s.bytes))
                .collect()
        };
        // Read before the log's open record: nothing counted, nothing forgotten.
        let forgot = live.fold(&[(log, stats(10))], &[], &files, &open, false);
        assert_eq!(forgot, Forget::default());
        assert!(writes(&live).is_empty());
        // The record drained before the next fold: every write under its name.
        files.insert(
            7,
            0x11,
            FileInfo {
                path: "/tmp/app.log".into(),
                fs: "ext4".into(),
                ..FileInfo::default()
            },
        );
        live.fold(&[(log, stats(30))], &[], &files, &open, false);
        live.fold(&[(log, stats(40))], &[], &files, &open, false);
        assert_eq!(writes(&live), [("/tmp/app.log".into(), 40, 320)]);
        // A record that never comes: counted as lost once waited for.
        for _ in 0..NAME_WAIT_FOLDS {
            live.fold(&[(lost, stats(1))], &[], &files, &open, false);
            assert_eq!(writes(&live).len(), 1);
        }
        live.fold(&[(lost, stats(2))], &[], &files, &open, false);
        assert!(writes(&live).contains(&("fd 4 (name lost)".into(), 2, 16)));
        // Not waited for again: it grows as it goes.
        live.fold(&[(lost, stats(3))], &[], &files, &open, false);
        assert!(writes(&live).contains(&("fd 4 (name lost)".into(), 3, 24)));
        // The last fold (every record drained) holds nothing back.
        let late = write(5, 0x33, 8);
        live.fold(&[(late, stats(1))], &[], &files, &open, true);
        assert!(writes(&live).contains(&("fd 5 (name lost)".into(), 1, 8)));
    }

    #[test]
    fn folds_add_what_grew_and_forget_the_gone() {
        let mut live = Aggregator::new();
        let files = FileTable::default();
        let key = IoKey {
            tgid: 7,
            fd: 3,
            file_id: 0,
            request: 1024,
            ..IoKey::default()
        };
        let stats = |syscalls| IoStats {
            syscalls,
            bytes: syscalls * 10,
            ..IoStats::default()
        };
        let open = HashSet::from([(7, 3, 0)]);
        live.fold(&[(key, stats(3))], &[], &files, &open, false);
        live.fold(&[(key, stats(5))], &[], &files, &open, false);
        let metrics = live.snapshot();
        assert_eq!((metrics.reads[0].syscalls, metrics.reads[0].bytes), (5, 50));
        let (_, _, sizes) = &metrics.request_sizes[0];
        assert_eq!((sizes.count(), sizes.sum), (5, 5.0 * 1024.0));
        live.on_process(&mut MadeUp::default(), 7, 1);
        live.on_exit(7, 7, true, 1_000_000_000, None, None);
        assert_eq!(live.snapshot().zombies, vec![("1".into(), 1)]);
        live.on_freed(7, 3_000_000_000);
        assert_eq!(live.zombie_seconds.count(), 1);
        assert!(live.snapshot().zombies.is_empty());
        let mut forgot = Forget::default();
        for _ in 0..=GRACE_FOLDS {
            forgot = live.fold(&[(key, stats(5))], &[], &files, &open, false);
        }
        assert_eq!(
            forgot,
            Forget {
                tids: vec![7],
                pids: vec![7],
                ..Forget::default()
            }
        );
        assert!(live.reads_seen.is_empty());
        // Closed, not growing: the row goes; reopened, it counts from zero.
        live.fold(&[(key, stats(1))], &[], &files, &open, false);
        let forgot = live.fold(&[(key, stats(1))], &[], &files, &HashSet::new(), false);
        assert_eq!(forgot.read_rows, vec![key]);
        live.fold(&[(key, stats(2))], &[], &files, &open, false);
        assert_eq!(live.snapshot().reads[0].syscalls, 5 + 1 + 2);
    }
}
