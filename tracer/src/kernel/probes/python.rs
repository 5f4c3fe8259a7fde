//! The Python programs: the CPU-clock sampler, one perf event per thread
//! (inherited by what it creates), the signal-check uprobe (attached off
//! the loop by `crate::kernel::uprobes`) and `--count-entries`' entry counter.

use aya::{
    Ebpf,
    programs::{
        PerfEvent, ProgramError, UProbe,
        perf_event::{
            PerfEventConfig, PerfEventLinkId, PerfEventScope, SamplePolicy, SoftwareEvent,
        },
    },
};

use super::{Link, ProbeError, Probes, load_error, typed_program};
use crate::kernel::perf_event::{self, Counted};

impl Probes {
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
                    self.sample_faults(Counted::Thread(tid));
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

    /// A node-wide trace (`--all`, `--cgroup`, `--container`): one sampling
    /// event per online CPU, whatever runs there (processes that start,
    /// join the scope or exec later are sampled as they run; the program
    /// skips those with no interpreter known). Returns the CPUs sampled.
    pub fn sample_cpus(&mut self) -> usize {
        let Some(rate) = self.sample_rate else {
            return 0;
        };
        if self.sampler_error.is_some() {
            return 0;
        }
        let cpus = match aya::util::online_cpus() {
            Ok(cpus) => cpus,
            Err((path, source)) => {
                self.sampler_error =
                    Some(format!("cannot list the online CPUs ({path}): {source}"));
                return 0;
            }
        };
        let mut sampled = 0;
        for cpu in cpus {
            let attached =
                typed_program::<PerfEvent>(&mut self.ebpf, "python_sample").and_then(|program| {
                    program
                        .attach(
                            PerfEventConfig::Software(SoftwareEvent::CpuClock),
                            PerfEventScope::AllProcessesOneCpu { cpu },
                            SamplePolicy::Frequency(rate),
                            false,
                        )
                        .map_err(|source| ProbeError::PerfEventCpu {
                            rate,
                            cpu,
                            source: Box::new(source),
                        })
                });
            match attached {
                Ok(link) => {
                    self.links.push(Link::PerfEvent("python_sample", link));
                    sampled += 1;
                    self.sample_faults(Counted::Cpu(cpu));
                }
                Err(err) => {
                    log::warn!("{err}");
                    self.sampler_error = Some(err.to_string());
                    return sampled;
                }
            }
        }
        sampled
    }

    /// Memory growth: a minor-page-fault event (every `fault_period`
    /// faults) where the CPU sampler has one, inherited the same way. The
    /// first failure other than a thread gone stops it, said in
    /// `fault_error`; the CPU sampler goes on.
    fn sample_faults(&mut self, counted: Counted) {
        let Some(period) = self.fault_period.filter(|_| self.fault_error.is_none()) else {
            return;
        };
        let name = super::load::FAULT_PROGRAM;
        let opened = typed_program::<PerfEvent>(&mut self.ebpf, name)
            .and_then(|program| {
                program.fd().map_err(|source| ProbeError::Program {
                    program: name.into(),
                    source: Box::new(source),
                })
            })
            .and_then(|fd| {
                use std::os::fd::AsFd as _;
                perf_event::open_page_faults(counted, period, fd.as_fd()).map_err(|source| {
                    ProbeError::Program {
                        program: format!("{name} (perf_event minor page faults every {period})"),
                        source: Box::new(ProgramError::IOError(source)),
                    }
                })
            });
        match opened {
            Ok(event) => self.fault_events.push(event),
            Err(err) if thread_is_gone(&err) => {}
            Err(err) => {
                log::warn!("{err}");
                self.fault_error = Some(err.to_string());
            }
        }
    }

    /// Minor page faults the per-thread fault events counted (sampled or
    /// not: see `perf_event::open_page_faults`), and the events; `None`
    /// for a node-wide trace (its events count every process on their
    /// CPUs) or none open.
    pub fn faults_counted(&self) -> Option<(u64, u64)> {
        use std::os::fd::AsFd as _;
        if self.node_wide || self.fault_events.is_empty() {
            return None;
        }
        let counted: Option<u64> = self
            .fault_events
            .iter()
            .map(|event| perf_event::count(event.as_fd()).ok())
            .sum();
        counted.map(|n| (n, self.fault_events.len() as u64))
    }

    /// Attach mode: a sampling event on every thread of the traced processes.
    /// Threads started while this runs inherit the event only from a thread
    /// that already had it, so list again until no thread is new.
    pub fn sample_existing_threads(&mut self, traced: &[u32]) {
        const MAX_PASSES: usize = 8;
        for _ in 0..MAX_PASSES {
            let tids: Vec<u32> = traced
                .iter()
                .flat_map(|&pid| crate::host::procfs::threads(pid))
                .collect();
            if self.sample_threads(&tids) == 0 {
                return;
            }
        }
    }

    /// The signal-check uprobe, loaded (not attached): when a Python-level
    /// signal handler runs. Optional: without it, the report says handler
    /// runs are not known.
    pub fn load_signal_check(&mut self) -> Result<(), ProbeError> {
        if let Some(err) = self.signal_check_error.take() {
            return Err(err);
        }
        let name = super::SIGNAL_CHECK_PROGRAM;
        // Loaded with the other programs (`load_and_attach`).
        let program = typed_program::<UProbe>(&mut self.ebpf, name)?;
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
        self.signal_check_attacher = Some(crate::kernel::uprobes::Attacher::start(fd));
        self.signal_checks = Some(Default::default());
        Ok(())
    }

    /// Signal-check attachments finished since the last call, each with
    /// the processes whose checks it now sees (those that asked for its file
    /// while it was being attached). A file that failed may be attached
    /// again (by the next process that runs it).
    pub fn signal_checks_attached(&mut self) -> Vec<(crate::kernel::uprobes::Attached, Vec<u32>)> {
        let finished = self
            .signal_check_attacher
            .as_ref()
            .map(crate::kernel::uprobes::Attacher::finished)
            .unwrap_or_default();
        finished
            .into_iter()
            .map(|attached| {
                let mut pids = Vec::new();
                if attached.result.is_ok() {
                    self.signal_checks_attached.insert(attached.file);
                    pids = self
                        .signal_checks_waiting
                        .remove(&attached.file)
                        .unwrap_or_default();
                } else if let Some(done) = self.signal_checks.as_mut() {
                    for &offset in &attached.offsets {
                        done.remove(&(attached.file.0, attached.file.1, offset));
                    }
                }
                (attached, pids)
            })
            .collect()
    }

    /// Attaches (soon, on the attacher's thread: see
    /// [`Probes::signal_checks_attached`]) the signal-check uprobe to
    /// CPython's signal checks in the interpreter file `path` (at
    /// `offsets`), for every process running it (the program keeps to traced
    /// ones), once per file. True when its file's probe is live already:
    /// process `pid`'s checks are seen from now on (else from when it is
    /// attached, said by [`Probes::signal_checks_attached`]).
    pub fn attach_signal_checks(
        &mut self,
        path: &std::path::Path,
        offsets: &[u64],
        pid: u32,
    ) -> Result<bool, ProbeError> {
        use std::os::unix::fs::MetadataExt as _;
        if self.signal_checks.is_none() {
            return Ok(false);
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
            return Ok(false);
        };
        let new: Vec<u64> = offsets
            .iter()
            .copied()
            .filter(|&offset| done.insert((file.0, file.1, offset)))
            .collect();
        if let (false, Some(attacher)) = (new.is_empty(), &self.signal_check_attacher) {
            attacher.request(path, file, &new);
        }
        if new.is_empty() && self.signal_checks_attached.contains(&file) {
            return Ok(true);
        }
        self.signal_checks_waiting
            .entry(file)
            .or_default()
            .push(pid);
        Ok(false)
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
    let (ProbeError::PerfEvent { source, .. } | ProbeError::Program { source, .. }) = err else {
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

/// Opens a disabled CPU-clock counter on the calling thread and keeps it:
/// the first per-thread perf event the kernel has open at a time switches
/// its context-switch hooks on and waits for an RCU grace period (10-14 ms
/// here), which done on a thread while BTF is parsed is off the start-up's
/// path; the sampler's own events then open at once. `None`: not opened
/// (the sampler's attach says why, if it fails too).
pub(super) fn warm_task_events() -> Option<std::os::fd::OwnedFd> {
    /// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (112 bytes).
    #[repr(C)]
    struct Attr {
        kind: u32,
        size: u32,
        config: u64,
        sample_period: u64,
        sample_type: u64,
        read_format: u64,
        /// Bit 0: `disabled`.
        flags: u64,
        rest: [u64; 8],
    }
    const _: () = assert!(std::mem::size_of::<Attr>() == 112);
    // <linux/perf_event.h>: PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK,
    // PERF_FLAG_FD_CLOEXEC.
    const SOFTWARE: u32 = 1;
    const CPU_CLOCK: u64 = 0;
    const FD_CLOEXEC: libc::c_ulong = 8;
    let attr = Attr {
        kind: SOFTWARE,
        size: std::mem::size_of::<Attr>() as u32,
        config: CPU_CLOCK,
        sample_period: 0,
        sample_type: 0,
        read_format: 0,
        flags: 1,
        rest: [0; 8],
    };
    // SAFETY: perf_event_open with a valid attr for this thread (pid 0),
    // any CPU; the returned descriptor is ours alone.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const Attr,
            0,
            -1,
            -1,
            FD_CLOEXEC,
        )
    };
    (fd >= 0).then(|| {
        // SAFETY: a descriptor just returned by the kernel, owned here.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) }
    })
}
