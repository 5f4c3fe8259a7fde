//! Loads the embedded BPF object, writes the configuration into it, attaches
//! every program, and gives typed access to the maps.

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{
        PerfEvent, ProgramError, RawTracePoint, UProbe,
        perf_event::{
            PerfEventConfig, PerfEventLinkId, PerfEventScope, SamplePolicy, SoftwareEvent,
        },
        raw_trace_point::RawTracePointLinkId,
        uprobe::UProbeLinkId,
    },
};
use tracer_common::{
    Config, FdKey, FileKey, InflightRead, PyConfig, PyEntryKey, PyEventKey, PyEventValue, PySleep,
    PyTicks, ReadKey, ReadStats, SyscallNumbers, ThreadStats, ZombieEntry, drops,
};

use crate::{
    btf::{BtfError, KernelOffsets},
    events::MapSnapshot,
};

/// The programs' configuration for this kernel: this architecture's syscall
/// numbers, struct offsets and saved registers from BTF. A missing optional
/// offset costs some detail, said in `warnings`.
fn kernel_config(
    follow_children: bool,
    timeline: bool,
    warnings: &mut Vec<String>,
) -> Result<Config, BtfError> {
    // An optional one that does not fit is said when it fails to attach.
    let tracepoints: Vec<(&str, u32)> = ATTACHMENTS
        .iter()
        .filter(|a| !a.optional)
        .map(|a| (a.program, a.arguments))
        .collect();
    let kernel = KernelOffsets::read(&tracepoints, warnings)?;
    Ok(Config {
        syscalls: syscall_numbers(),
        structs: kernel.structs,
        regs: kernel.regs,
        follow_children: u32::from(follow_children),
        timeline: u32::from(timeline),
        pid_ns: kernel.pid_ns,
        file: kernel.file,
    })
}

/// This architecture's numbers of the syscalls the programs look at.
fn syscall_numbers() -> SyscallNumbers {
    let nr = |n: libc::c_long| n as u32;
    SyscallNumbers {
        read: nr(libc::SYS_read),
        pread64: nr(libc::SYS_pread64),
        readv: nr(libc::SYS_readv),
        preadv: nr(libc::SYS_preadv),
        preadv2: nr(libc::SYS_preadv2),
        openat: nr(libc::SYS_openat),
        #[cfg(target_arch = "x86_64")]
        open: nr(libc::SYS_open),
        #[cfg(not(target_arch = "x86_64"))]
        open: tracer_common::NO_SYSCALL,
        close: nr(libc::SYS_close),
        rt_sigaction: nr(libc::SYS_rt_sigaction),
        rt_sigprocmask: nr(libc::SYS_rt_sigprocmask),
        wait4: nr(libc::SYS_wait4),
        waitid: nr(libc::SYS_waitid),
        clone: nr(libc::SYS_clone),
        clone3: nr(libc::SYS_clone3),
        kill: nr(libc::SYS_kill),
        tkill: nr(libc::SYS_tkill),
        tgkill: nr(libc::SYS_tgkill),
        rt_sigqueueinfo: nr(libc::SYS_rt_sigqueueinfo),
        rt_tgsigqueueinfo: nr(libc::SYS_rt_tgsigqueueinfo),
        pidfd_send_signal: nr(libc::SYS_pidfd_send_signal),
    }
}

/// One attachment made by [`Probes`], kept so [`Probes::detach`] can take
/// and drop every link (raw tracepoints, the sampler's perf events, uprobes).
enum Link {
    RawTracePoint(&'static str, RawTracePointLinkId),
    PerfEvent(&'static str, PerfEventLinkId),
    UProbe(&'static str, UProbeLinkId),
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("loading the BPF object failed: {0}")]
    Load(#[source] Box<EbpfError>),
    #[error(
        "the kernel's verifier rejected the BPF program `{program}`: {io_error}\n\
         last lines of the verifier log:\n{log_tail}"
    )]
    Verifier {
        program: String,
        io_error: std::io::Error,
        log_tail: String,
    },
    #[error("loading the BPF program `{program}` failed: {source}")]
    Program {
        program: String,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(
        "attaching `{program}` to the raw tracepoint {tracepoint} failed: {source}. \
         Does this kernel have that tracepoint?"
    )]
    Attach {
        program: String,
        tracepoint: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(
        "attaching the Python sampler (perf_event CPU clock at {rate} Hz on thread {tid}) failed: {source}"
    )]
    PerfEvent {
        rate: u64,
        tid: u32,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("attaching the uprobe `{program}` to {path} at {offset:#x}: {source}")]
    Uprobe {
        program: &'static str,
        path: String,
        offset: u64,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("aya's loader panicked while reading the kernel's BTF")]
    LoaderPanicked,
    #[error("the BPF object has no map `{0}` (build mismatch)")]
    MissingMap(&'static str),
    #[error("BPF map `{map}`: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// One program attached to the raw tracepoint of the same name (its
/// arguments are the kernel's `TP_PROTO`). Optional ones may be missing on
/// some kernels; the report then says what is not counted.
struct Attachment {
    program: &'static str,
    /// How many of the tracepoint's arguments the program reads (checked
    /// against the kernel's BTF before loading).
    arguments: u32,
    optional: bool,
}

const ATTACHMENTS: &[Attachment] = &[
    // Every syscall, picked by number in the program: reads, opens,
    // closes, rt_sigaction, rt_sigprocmask, then their returns and the wait
    // returns (who reaped a zombie).
    Attachment {
        program: "sys_enter",
        arguments: 2,
        optional: false,
    },
    Attachment {
        program: "sys_exit",
        arguments: 2,
        optional: false,
    },
    Attachment {
        program: "sched_switch",
        arguments: 4,
        optional: false,
    },
    Attachment {
        program: "sched_process_fork",
        arguments: 2,
        optional: false,
    },
    Attachment {
        program: "sched_process_exit",
        arguments: 2,
        optional: false,
    },
    // Process lifecycle and signals: rare events, each optional (the report
    // then says what is missing).
    Attachment {
        program: "sched_process_exec",
        arguments: 3,
        optional: true,
    },
    Attachment {
        program: "sched_process_free",
        arguments: 1,
        optional: true,
    },
    Attachment {
        program: "signal_generate",
        arguments: 5,
        optional: true,
    },
    Attachment {
        program: "signal_deliver",
        arguments: 3,
        optional: true,
    },
];

const VERIFIER_LOG_TAIL_LINES: usize = 25;

/// The loaded programs and their maps. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    traced: HashMap<MapData, u32, u8>,
    py_threads: HashMap<MapData, u32, u64>,
    py_config: HashMap<MapData, u32, PyConfig>,
    /// Why Python sampling is not running (it failed to load or attach), if so.
    pub sampler_error: Option<String>,
    /// The sampling rate, when the sampler is loaded.
    sample_rate: Option<u64>,
    /// Threads that carry a sampling perf event of their own (their later
    /// threads and children inherit it).
    sampled_tids: std::collections::HashSet<u32>,
    links: Vec<Link>,
    /// Optional tracepoints that could not be attached, for the report.
    pub warnings: Vec<String>,
    /// Interpreter files (device, inode, offset) whose signal checks carry the
    /// uprobe (one attachment per file serves every process running it);
    /// `None`: the program could not be loaded.
    signal_checks: Option<std::collections::HashSet<(u64, u64, u64)>>,
    /// Attaches the signal-check uprobe off the event loop.
    signal_check_attacher: Option<crate::uprobes::Attacher>,
}

impl Probes {
    /// Reads this kernel's layout ([`kernel_config`]) and loads the
    /// programs. `sample_rate`: load the Python CPU sampler too, for
    /// [`Probes::sample_threads`] to attach at that frequency. `timeline`:
    /// send every read and context switch as a record (`--perfetto`).
    pub fn load(
        follow_children: bool,
        sample_rate: Option<u64>,
        timeline: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ProbeError> {
        // aya's loader parses the kernel's BTF as it is made (~50 ms here),
        // whether the object needs it or not: done beside our own reading
        // of the offsets, not after it.
        let loader = std::thread::spawn(EbpfLoader::new);
        let config = kernel_config(follow_children, timeline, warnings);
        let mut loader = loader.join().map_err(|_| ProbeError::LoaderPanicked)?;
        let config = config?;
        let object = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
        let mut ebpf = loader
            .override_global("CONFIG", &config, true)
            .load(object)
            .map_err(|err| ProbeError::Load(Box::new(err)))?;

        let (links, warnings, sampler_error) = load_and_attach(&mut ebpf, sample_rate.is_some())?;
        let traced = take_map(&mut ebpf, "TRACED")?;
        let py_threads = take_map(&mut ebpf, "PY_THREADS")?;
        let py_config = take_map(&mut ebpf, "PY_CONFIG")?;
        Ok(Self {
            ebpf,
            traced,
            py_threads,
            py_config,
            sampler_error,
            sample_rate,
            sampled_tids: Default::default(),
            links,
            warnings,
            signal_checks: None,
            signal_check_attacher: None,
        })
    }

    /// Attaches the CPU-clock sampler to each thread in `tids` that does not
    /// have it yet; returns how many were new. One perf event per thread,
    /// inherited by the threads and processes it creates later, so only the
    /// target is interrupted (a per-CPU event would tick every CPU of the
    /// machine, busy or idle, 999 times a second). A thread that exited in
    /// the meantime is skipped. The first failure disables sampling and is
    /// kept in `sampler_error` for the report.
    pub fn sample_threads(&mut self, tids: &[u32]) -> usize {
        let Some(rate) = self.sample_rate else {
            return 0;
        };
        if self.sampler_error.is_some() {
            return 0;
        }
        if self.sampled_tids.is_empty() {
            raise_fd_limit();
        }
        let mut new = 0;
        for &tid in tids {
            if self.sampled_tids.contains(&tid) {
                continue;
            }
            match attach_sampler(&mut self.ebpf, rate, tid) {
                Ok(link) => {
                    self.links.push(Link::PerfEvent("python_sample", link));
                    self.sampled_tids.insert(tid);
                    new += 1;
                }
                Err(err) if thread_is_gone(&err) => {}
                Err(err) => {
                    log::warn!("{err}");
                    self.sampler_error = Some(err.to_string());
                    return new;
                }
            }
        }
        new
    }

    /// Whether exec records come (the optional `sched_process_exec` is attached).
    pub fn sees_exec(&self) -> bool {
        self.links
            .iter()
            .any(|link| matches!(link, Link::RawTracePoint("sched_process_exec", _)))
    }

    /// Publishes the frame-walk offsets of process `pid`'s interpreter.
    pub fn set_python_config(&mut self, pid: u32, config: PyConfig) -> Result<(), ProbeError> {
        self.py_config
            .insert(pid, config, 0)
            .map_err(|source| ProbeError::Map {
                map: "PY_CONFIG",
                source,
            })
    }

    /// Applies a thread-map refresh (tid -> PyThreadState address).
    pub fn update_python_threads(
        &mut self,
        insert: &[(u32, u64)],
        remove: &[u32],
    ) -> Result<(), ProbeError> {
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

    /// Loads (not attaches) the signal-check uprobe: when a Python-level
    /// signal handler runs. Optional: without it, the report says handler
    /// runs are not known.
    pub fn load_signal_check(&mut self) -> Result<(), ProbeError> {
        let name = "py_signal_check";
        let program = typed_program::<UProbe>(&mut self.ebpf, name)?;
        program.load().map_err(|source| load_error(name, source))?;
        let fd = program
            .fd()
            .and_then(|fd| {
                use std::os::fd::AsFd as _;
                fd.as_fd()
                    .try_clone_to_owned()
                    .map_err(ProgramError::IOError)
            })
            .map_err(|source| ProbeError::Program {
                program: name.into(),
                source: Box::new(source),
            })?;
        self.signal_check_attacher = Some(crate::uprobes::Attacher::start(fd));
        self.signal_checks = Some(Default::default());
        Ok(())
    }

    /// Signal-check attachments finished since the last call. A file that
    /// failed may be attached again (by the next process that runs it).
    pub fn signal_checks_attached(&mut self) -> Vec<crate::uprobes::Attached> {
        let finished = self
            .signal_check_attacher
            .as_ref()
            .map(crate::uprobes::Attacher::finished)
            .unwrap_or_default();
        if let Some(done) = self.signal_checks.as_mut() {
            for failed in finished.iter().filter(|a| a.result.is_err()) {
                for &offset in &failed.offsets {
                    done.remove(&(failed.file.0, failed.file.1, offset));
                }
            }
        }
        finished
    }

    /// Attaches (soon, on the attacher's thread: see
    /// [`Probes::signal_checks_attached`]) the signal-check uprobe to
    /// CPython's signal checks in the interpreter file `path` (at
    /// `offsets`), for every process running it (the program keeps to traced
    /// ones), once per file.
    pub fn attach_signal_checks(
        &mut self,
        path: &std::path::Path,
        offsets: &[u64],
    ) -> Result<(), ProbeError> {
        use std::os::unix::fs::MetadataExt as _;
        if self.signal_checks.is_none() {
            return Ok(());
        }
        let file = std::fs::metadata(path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|source| ProbeError::Uprobe {
                program: "py_signal_check",
                path: path.display().to_string(),
                offset: offsets.first().copied().unwrap_or(0),
                source: Box::new(ProgramError::IOError(source)),
            })?;
        let Some(done) = self.signal_checks.as_mut() else {
            return Ok(());
        };
        let new: Vec<u64> = offsets
            .iter()
            .copied()
            .filter(|&offset| done.insert((file.0, file.1, offset)))
            .collect();
        if let (false, Some(attacher)) = (new.is_empty(), &self.signal_check_attacher) {
            attacher.request(path, file, &new);
        }
        Ok(())
    }

    /// Loads (not attaches) the `_PyEval_EvalFrameDefault` entry counter.
    pub fn load_entry_counter(&mut self) -> Result<(), ProbeError> {
        let name = "py_eval_entry";
        typed_program::<UProbe>(&mut self.ebpf, name)?
            .load()
            .map_err(|source| load_error(name, source))
    }

    /// Attaches the entry counter to the interpreter of process `pid` (in
    /// that process only).
    pub fn attach_entry_counter(
        &mut self,
        path: &std::path::Path,
        offset: u64,
        pid: u32,
    ) -> Result<(), ProbeError> {
        use aya::programs::uprobe::{UProbeAttachLocation, UProbeScope};
        let name = "py_eval_entry";
        let err = |source| ProbeError::Uprobe {
            program: name,
            path: path.display().to_string(),
            offset,
            source: Box::new(source),
        };
        let pid = std::num::NonZeroU32::new(pid).ok_or_else(|| err(ProgramError::NotAttached))?;
        let link = typed_program::<UProbe>(&mut self.ebpf, name)?
            .attach(
                UProbeAttachLocation::AbsoluteOffset(offset),
                path,
                UProbeScope::OneProcess(pid),
            )
            .map_err(err)?;
        self.links.push(Link::UProbe(name, link));
        Ok(())
    }

    /// Entries per (pid, code object), summed across CPUs.
    pub fn python_entries(&self) -> Result<Vec<(PyEntryKey, u64)>, ProbeError> {
        self.per_cpu_rows("PY_ENTRIES", |sum: &mut u64, v: &u64| *sum += v)
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

    /// Sampler ticks per process, summed across CPUs.
    pub fn python_ticks(&self) -> Result<Vec<(u32, PyTicks)>, ProbeError> {
        self.per_cpu_rows("PY_TICKS", |sum: &mut PyTicks, v: &PyTicks| {
            sum.ticks += v.ticks;
            sum.no_interpreter += v.no_interpreter;
            sum.no_thread_state += v.no_thread_state;
            sum.no_frame += v.no_frame;
        })
    }

    /// Adds a process to the traced set (its threads and, by default, its
    /// future children follow in the kernel).
    pub fn trace_pid(&mut self, pid: u32) -> Result<(), ProbeError> {
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
            .set(0, crate::events::monotonic_ns(), 0)
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

    /// Inserts `key -> value` into the hash map `name`.
    fn insert<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
        key: K,
        value: V,
    ) -> Result<(), ProbeError> {
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

    /// Attach mode: a sampling event on every thread of the traced processes.
    /// Threads started while this runs inherit the event only from a thread
    /// that already had it, so list again until no thread is new.
    pub fn sample_existing_threads(&mut self, traced: &[u32]) {
        const MAX_PASSES: usize = 8;
        for _ in 0..MAX_PASSES {
            let tids: Vec<u32> = traced
                .iter()
                .flat_map(|&pid| crate::procfs::threads(pid))
                .collect();
            if self.sample_threads(&tids) == 0 {
                return;
            }
        }
    }

    /// `--serve`: drops the rows of exited threads and gone processes from
    /// the kernel's tables (after their last figures were folded in), so
    /// that a long run with many short-lived processes never fills them.
    pub fn forget(&mut self, forget: &crate::analysis::metrics::Forget) -> Result<(), ProbeError> {
        let tids: std::collections::HashSet<u32> = forget.tids.iter().copied().collect();
        let pids: std::collections::HashSet<u32> = forget.pids.iter().copied().collect();
        let rows: std::collections::HashSet<ReadKey> = forget.read_rows.iter().copied().collect();
        if !rows.is_empty() {
            self.remove_per_cpu_rows::<ReadKey, ReadStats>("READ_STATS", |key| rows.contains(key))?;
        }
        if tids.is_empty() && pids.is_empty() {
            return Ok(());
        }
        self.remove_rows::<u32, ThreadStats>("THREADS", |tid| tids.contains(tid))?;
        self.remove_rows::<u32, InflightRead>("INFLIGHT", |tid| tids.contains(tid))?;
        self.remove_rows::<u32, PySleep>("PY_SLEEPING", |tid| tids.contains(tid))?;
        self.remove_rows::<FdKey, u64>("FD_FILES", |key| pids.contains(&key.tgid))?;
        self.remove_per_cpu_rows::<ReadKey, ReadStats>("READ_STATS", |key| {
            pids.contains(&key.tgid)
        })?;
        self.remove_per_cpu_rows::<FileKey, u64>("FILE_OPENS", |key| pids.contains(&key.tgid))?;
        self.remove_per_cpu_rows::<u32, PyTicks>("PY_TICKS", |pid| pids.contains(pid))?;
        self.remove_per_cpu_rows::<PyEventKey, PyEventValue>("PY_EVENT_STACKS", |key| {
            pids.contains(&key.tgid)
        })
    }

    fn remove_rows<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
        doomed: impl Fn(&K) -> bool,
    ) -> Result<(), ProbeError> {
        remove_doomed!(self, HashMap, name, doomed)
    }

    fn remove_per_cpu_rows<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
        doomed: impl Fn(&K) -> bool,
    ) -> Result<(), ProbeError> {
        remove_doomed!(self, PerCpuHashMap, name, doomed)
    }

    /// `--serve`: the descriptors open now, as `FD_FILES` has them.
    pub fn open_files(&self) -> Result<Vec<(FdKey, u64)>, ProbeError> {
        const NAME: &str = "FD_FILES";
        let map = HashMap::<_, FdKey, u64>::try_from(self.map(NAME)?).map_err(map_error(NAME))?;
        map.iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    /// Every map the report is built from, read once after tracing stopped.
    pub fn snapshot(&self) -> Result<MapSnapshot, ProbeError> {
        Ok(MapSnapshot {
            drops: self.drops()?,
            python_ticks: self.python_ticks()?,
            reads: self.read_stats()?,
            opens: self.file_opens()?,
            threads: self.threads()?,
            python_event_stacks: self.python_event_stacks()?,
            python_entries: self.python_entries()?,
            python_sleeping: self.python_sleeping()?,
        })
    }

    /// Sums of the per-CPU `DROPS` counters, indexed by `tracer_common::drops`.
    pub fn drops(&self) -> Result<[u64; drops::COUNT as usize], ProbeError> {
        per_cpu_totals::<{ drops::COUNT as usize }>(&self.ebpf, "DROPS")
    }

    /// Every `READ_STATS` row, summed across CPUs.
    pub fn read_stats(&self) -> Result<Vec<(ReadKey, ReadStats)>, ProbeError> {
        self.per_cpu_rows("READ_STATS", |sum: &mut ReadStats, v: &ReadStats| {
            sum.syscalls += v.syscalls;
            sum.bytes += v.bytes;
            sum.errors += v.errors;
            sum.kernel_ns += v.kernel_ns;
            sum.voluntary += v.voluntary;
            sum.involuntary += v.involuntary;
        })
    }

    /// Opens per (tgid, file_id), summed across CPUs.
    pub fn file_opens(&self) -> Result<std::collections::HashMap<(u32, u64), u64>, ProbeError> {
        let rows = self.per_cpu_rows("FILE_OPENS", |sum: &mut u64, v: &u64| *sum += v)?;
        Ok(rows
            .into_iter()
            .map(|(key, n): (FileKey, u64)| ((key.tgid, key.file_id), n))
            .collect())
    }

    /// Every row of a per-CPU hash map, its values folded across CPUs by `add`.
    fn per_cpu_rows<K: aya::Pod, V: aya::Pod, S: Default>(
        &self,
        name: &'static str,
        add: impl Fn(&mut S, &V),
    ) -> Result<Vec<(K, S)>, ProbeError> {
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

    /// Detaches every program: raw tracepoints (~1 ms), the Python sampler's
    /// perf events, the entry-counter uprobe, and hands the signal-check
    /// uprobes to a child that closes them once this process has exited
    /// ([`crate::uprobes::close_after_exit`]). Maps stay readable.
    pub fn detach(&mut self) {
        // Takes a program's link out of aya, as an owned value to drop anywhere.
        macro_rules! take {
            ($program_type:ty, $program:expr, $id:expr) => {
                self.ebpf
                    .program_mut($program)
                    .and_then(|p| <&mut $program_type>::try_from(p).ok())
                    .and_then(|p| p.take_link($id).ok())
                    .map(|link| Box::new(link) as Box<dyn Send>)
            };
        }
        let mut owned: Vec<Box<dyn Send>> = Vec::new();
        if let Some(attacher) = self.signal_check_attacher.as_mut() {
            let uprobes = attacher.stop();
            let count = uprobes.len();
            if let Some(child) = crate::uprobes::close_after_exit(uprobes) {
                log::info!(
                    "{count} signal-check uprobes are closed by pid {child} once this process exits \
                     (a grace period each)"
                );
            }
        }
        for link in self.links.drain(..) {
            owned.extend(match link {
                Link::RawTracePoint(program, id) => take!(RawTracePoint, program, id),
                Link::PerfEvent(program, id) => take!(PerfEvent, program, id),
                Link::UProbe(program, id) => take!(UProbe, program, id),
            });
        }
        std::thread::scope(|scope| {
            for link in owned {
                scope.spawn(move || drop(link));
            }
        });
    }

    /// Every traced thread's scheduling figures (key: tid).
    /// Python threads asleep after a voluntary switch, with the stack they
    /// went to sleep in (`start_ns` 0: the slot is idle, the thread woke).
    pub fn python_sleeping(&self) -> Result<Vec<(u32, PySleep)>, ProbeError> {
        const NAME: &str = "PY_SLEEPING";
        let sleeping =
            HashMap::<_, u32, PySleep>::try_from(self.map(NAME)?).map_err(map_error(NAME))?;
        sleeping
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    pub fn threads(&self) -> Result<Vec<(u32, ThreadStats)>, ProbeError> {
        const NAME: &str = "THREADS";
        let threads =
            HashMap::<_, u32, ThreadStats>::try_from(self.map(NAME)?).map_err(map_error(NAME))?;
        threads
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error(NAME))
    }

    fn map(&self, name: &'static str) -> Result<&aya::maps::Map, ProbeError> {
        self.ebpf.map(name).ok_or(ProbeError::MissingMap(name))
    }
}

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

/// Loads (verifies) every program of [`ATTACHMENTS`] and (`sampler`) the
/// CPU-clock sampler on two threads, the verifier being the slow part of
/// start-up (~45 ms of work here), then attaches them in order. Returns the
/// links, the warnings of optional programs that failed, and why the
/// sampler cannot run, if so.
#[allow(clippy::type_complexity)]
fn load_and_attach(
    ebpf: &mut Ebpf,
    sampler: bool,
) -> Result<(Vec<Link>, Vec<String>, Option<String>), ProbeError> {
    type Loaded<'a> = Vec<(
        &'a str,
        &'a mut aya::programs::Program,
        Result<(), ProbeError>,
    )>;
    let mut sample_program = None;
    let mut halves: [Loaded; 2] = [Vec::new(), Vec::new()];
    for (name, program) in ebpf.programs_mut() {
        if name == "python_sample" {
            sample_program = sampler.then_some(program);
        } else if let Some(index) = ATTACHMENTS.iter().position(|a| a.program == name) {
            halves[index % 2].push((name, program, Ok(())));
        }
    }
    let load_all = |loaded: &mut Loaded| {
        for (name, program, result) in loaded.iter_mut() {
            *result = load_raw_tracepoint(name, program);
        }
    };
    let [mut first, mut second] = halves;
    let sampler_result = std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            let sampler = sample_program.map(|program| {
                <&mut PerfEvent>::try_from(program)
                    .map_err(|source| ProbeError::Program {
                        program: "python_sample".into(),
                        source: Box::new(source),
                    })?
                    .load()
                    .map_err(|source| load_error("python_sample", source))
            });
            load_all(&mut second);
            sampler
        });
        load_all(&mut first);
        other.join()
    });
    let sampler_error = match sampler_result {
        Ok(None | Some(Ok(()))) => None,
        Ok(Some(Err(err))) => {
            log::warn!("{err}");
            Some(err.to_string())
        }
        Err(_) => Some("loading the sampler panicked".into()),
    };
    let mut loaded: Loaded = first.into_iter().chain(second).collect();
    let mut links = Vec::new();
    let mut warnings = Vec::new();
    for attachment in ATTACHMENTS {
        let program = loaded
            .iter_mut()
            .position(|(name, ..)| *name == attachment.program)
            .map(|at| loaded.swap_remove(at));
        let attached = match program {
            Some((_, program, Ok(()))) => attach_one(attachment.program, program, &mut links),
            Some((_, _, Err(err))) => Err(err),
            None => Err(ProbeError::Program {
                program: attachment.program.into(),
                source: Box::new(ProgramError::NotLoaded),
            }),
        };
        if let Err(err) = attached {
            if attachment.optional {
                log::warn!("{err}");
                warnings.push(format!("not counted: {err}"));
            } else {
                return Err(err);
            }
        }
    }
    Ok((links, warnings, sampler_error))
}

/// The program `name` of the object, as its type `P` (`TracePoint`, ...).
fn typed_program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, ProbeError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program_error = |source| ProbeError::Program {
        program: name.into(),
        source: Box::new(source),
    };
    ebpf.program_mut(name)
        .ok_or_else(|| program_error(ProgramError::NotLoaded))?
        .try_into()
        .map_err(program_error)
}

/// One CPU-clock perf event on thread `tid` (any CPU), inherited by what it
/// creates from now on, running `python_sample` on each tick.
fn attach_sampler(ebpf: &mut Ebpf, rate: u64, tid: u32) -> Result<PerfEventLinkId, ProbeError> {
    typed_program::<PerfEvent>(ebpf, "python_sample")?
        .attach(
            PerfEventConfig::Software(SoftwareEvent::CpuClock),
            PerfEventScope::OneProcess {
                pid: tid,
                cpu: None,
            },
            SamplePolicy::Frequency(rate),
            true,
        )
        .map_err(|source| ProbeError::PerfEvent {
            rate,
            tid,
            source: Box::new(source),
        })
}

/// One file descriptor per sampled thread: a target with a thousand
/// threads must not hit the usual soft limit of 1024.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// perf_event_open on a thread that has exited: ESRCH.
fn thread_is_gone(err: &ProbeError) -> bool {
    let ProbeError::PerfEvent { source, .. } = err else {
        return false;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.raw_os_error() == Some(libc::ESRCH);
        }
        cause = err.source();
    }
    false
}

fn load_error(program_name: &str, source: ProgramError) -> ProbeError {
    match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => ProbeError::Verifier {
            program: program_name.into(),
            io_error,
            log_tail: log_tail(&verifier_log.to_string(), VERIFIER_LOG_TAIL_LINES),
        },
        source => ProbeError::Program {
            program: program_name.into(),
            source: Box::new(source),
        },
    }
}

fn take_map<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, ProbeError>
where
    M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(ProbeError::MissingMap(name))?;
    M::try_from(map).map_err(|source| ProbeError::Map { map: name, source })
}

/// Loads the raw tracepoint program `name` (the verifier runs here).
fn load_raw_tracepoint(name: &str, program: &mut aya::programs::Program) -> Result<(), ProbeError> {
    <&mut RawTracePoint>::try_from(program)
        .map_err(|source| ProbeError::Program {
            program: name.into(),
            source: Box::new(source),
        })?
        .load()
        .map_err(|source| load_error(name, source))
}

/// Attaches the loaded program `name` to the raw tracepoint of that name.
fn attach_one(
    name: &'static str,
    program: &mut aya::programs::Program,
    links: &mut Vec<Link>,
) -> Result<(), ProbeError> {
    let program: &mut RawTracePoint = program.try_into().map_err(|source| ProbeError::Program {
        program: name.into(),
        source: Box::new(source),
    })?;
    let link = program.attach(name).map_err(|source| ProbeError::Attach {
        program: name.into(),
        tracepoint: name,
        source: Box::new(source),
    })?;
    links.push(Link::RawTracePoint(name, link));
    Ok(())
}

/// The last `lines` lines of a verifier log: where the rejection is explained.
pub fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_log_tail_keeps_the_end() {
        let log = (1..=100)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let tail = log_tail(&log, 3);
        assert_eq!(tail, "line 98\nline 99\nline 100");
        assert_eq!(log_tail("a\n\nb\n", 10), "a\nb");
    }

    #[test]
    fn every_required_program_is_listed_once() {
        let mut names: Vec<_> = ATTACHMENTS.iter().map(|a| a.program).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ATTACHMENTS.len());
    }
}
