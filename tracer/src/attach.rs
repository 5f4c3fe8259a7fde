//! Loads the embedded BPF object, writes the configuration into it, attaches
//! every program, and gives typed access to the maps.

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{ProgramError, TracePoint, trace_point::TracePointLinkId},
};
use tracer_common::{Config, FileKey, ReadKey, ReadStats, ThreadStats, ZombieEntry, drops};

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
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
        "attaching `{program}` to the tracepoint {category}:{name} failed: {source}. \
         Does this kernel have that tracepoint (CONFIG_FTRACE_SYSCALLS)?"
    )]
    Attach {
        program: String,
        category: &'static str,
        name: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("the BPF object has no map `{0}` (build mismatch)")]
    MissingMap(&'static str),
    #[error("BPF map `{map}`: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// One program attached to one or more tracepoints. Optional ones may be
/// missing on some kernels; the report then says what is not counted.
struct Attachment {
    program: &'static str,
    tracepoints: &'static [(&'static str, &'static str)],
    optional: bool,
}

const ATTACHMENTS: &[Attachment] = &[
    Attachment {
        program: "sys_enter_read",
        tracepoints: &[("syscalls", "sys_enter_read")],
        optional: false,
    },
    Attachment {
        program: "sys_enter_pread64",
        tracepoints: &[("syscalls", "sys_enter_pread64")],
        optional: true,
    },
    Attachment {
        program: "sys_enter_readv",
        tracepoints: &[("syscalls", "sys_enter_readv")],
        optional: true,
    },
    // preadv2 has preadv's arguments plus flags (same fd/vec/vlen fields),
    // and is what CPython's os.preadv calls: counted as "preadv".
    Attachment {
        program: "sys_enter_preadv",
        tracepoints: &[
            ("syscalls", "sys_enter_preadv"),
            ("syscalls", "sys_enter_preadv2"),
        ],
        optional: true,
    },
    Attachment {
        program: "sys_exit_read",
        tracepoints: &[
            ("syscalls", "sys_exit_read"),
            ("syscalls", "sys_exit_pread64"),
            ("syscalls", "sys_exit_readv"),
            ("syscalls", "sys_exit_preadv"),
            ("syscalls", "sys_exit_preadv2"),
        ],
        optional: false,
    },
    Attachment {
        program: "sys_enter_openat",
        tracepoints: &[("syscalls", "sys_enter_openat")],
        optional: false,
    },
    Attachment {
        program: "sys_exit_openat",
        tracepoints: &[("syscalls", "sys_exit_openat")],
        optional: false,
    },
    Attachment {
        program: "sys_enter_close",
        tracepoints: &[("syscalls", "sys_enter_close")],
        optional: false,
    },
    Attachment {
        program: "sched_switch",
        tracepoints: &[("sched", "sched_switch")],
        optional: false,
    },
    Attachment {
        program: "sched_process_fork",
        tracepoints: &[("sched", "sched_process_fork")],
        optional: false,
    },
    Attachment {
        program: "sched_process_exit",
        tracepoints: &[("sched", "sched_process_exit")],
        optional: false,
    },
    // Process lifecycle and signals: rare events, each optional (the report
    // then says what is missing).
    Attachment {
        program: "sched_process_exec",
        tracepoints: &[("sched", "sched_process_exec")],
        optional: true,
    },
    Attachment {
        program: "sched_process_free",
        tracepoints: &[("sched", "sched_process_free")],
        optional: true,
    },
    Attachment {
        program: "sys_exit_wait4",
        tracepoints: &[("syscalls", "sys_exit_wait4")],
        optional: true,
    },
    Attachment {
        program: "sys_exit_waitid",
        tracepoints: &[("syscalls", "sys_exit_waitid")],
        optional: true,
    },
    Attachment {
        program: "signal_generate",
        tracepoints: &[("signal", "signal_generate")],
        optional: true,
    },
    Attachment {
        program: "signal_deliver",
        tracepoints: &[("signal", "signal_deliver")],
        optional: true,
    },
];

const VERIFIER_LOG_TAIL_LINES: usize = 25;

/// The loaded programs and their maps. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    traced: HashMap<MapData, u32, u8>,
    links: Vec<(&'static str, TracePointLinkId)>,
    /// Optional tracepoints that could not be attached, for the report.
    pub warnings: Vec<String>,
}

impl Probes {
    pub fn load(config: Config) -> Result<Self, AttachError> {
        let object = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
        let mut ebpf = EbpfLoader::new()
            .override_global("CONFIG", &config, true)
            .load(object)
            .map_err(|err| AttachError::Load(Box::new(err)))?;

        let mut warnings = Vec::new();
        let mut links = Vec::new();
        for attachment in ATTACHMENTS {
            if let Err(err) = attach_one(&mut ebpf, attachment, &mut links) {
                if attachment.optional {
                    log::warn!("{err}");
                    warnings.push(format!("not counted: {err}"));
                } else {
                    return Err(err);
                }
            }
        }
        let traced = take_map(&mut ebpf, "TRACED")?;
        Ok(Self {
            ebpf,
            traced,
            links,
            warnings,
        })
    }

    /// Adds a process to the traced set (its threads and, by default, its
    /// future children follow in the kernel).
    pub fn trace_pid(&mut self, pid: u32) -> Result<(), AttachError> {
        self.traced
            .insert(pid, 1, 0)
            .map_err(|source| AttachError::Map {
                map: "TRACED",
                source,
            })
    }

    /// Adds a thread (not the leader) of a traced process, so signals sent
    /// to it are attributed to its process.
    pub fn trace_thread(&mut self, tid: u32, tgid: u32) -> Result<(), AttachError> {
        let map = self
            .ebpf
            .map_mut("TASKS")
            .ok_or(AttachError::MissingMap("TASKS"))?;
        let mut tasks =
            HashMap::<_, u32, u32>::try_from(map).map_err(|source| AttachError::Map {
                map: "TASKS",
                source,
            })?;
        tasks
            .insert(tid, tgid, 0)
            .map_err(|source| AttachError::Map {
                map: "TASKS",
                source,
            })
    }

    /// Registers a zombie that existed before tracing, so whoever reaps it is seen.
    pub fn watch_zombie(&mut self, pid: u32, now_ns: u64) -> Result<(), AttachError> {
        let map = self
            .ebpf
            .map_mut("ZOMBIES")
            .ok_or(AttachError::MissingMap("ZOMBIES"))?;
        let mut zombies =
            HashMap::<_, u32, ZombieEntry>::try_from(map).map_err(|source| AttachError::Map {
                map: "ZOMBIES",
                source,
            })?;
        zombies
            .insert(pid, ZombieEntry { exit_ns: now_ns }, 0)
            .map_err(|source| AttachError::Map {
                map: "ZOMBIES",
                source,
            })
    }

    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, AttachError> {
        take_map(&mut self.ebpf, "EVENTS")
    }

    /// Sums of the per-CPU `DROPS` counters, indexed by `tracer_common::drops`.
    pub fn drops(&self) -> Result<[u64; drops::COUNT as usize], AttachError> {
        let map = self
            .ebpf
            .map("DROPS")
            .ok_or(AttachError::MissingMap("DROPS"))?;
        let array = PerCpuArray::<_, u64>::try_from(map).map_err(|source| AttachError::Map {
            map: "DROPS",
            source,
        })?;
        let mut totals = [0u64; drops::COUNT as usize];
        for (index, total) in totals.iter_mut().enumerate() {
            let values = array
                .get(&(index as u32), 0)
                .map_err(|source| AttachError::Map {
                    map: "DROPS",
                    source,
                })?;
            *total = values.iter().sum();
        }
        Ok(totals)
    }

    /// Every `READ_STATS` row, summed across CPUs.
    pub fn read_stats(&self) -> Result<Vec<(ReadKey, ReadStats)>, AttachError> {
        let map = self
            .ebpf
            .map("READ_STATS")
            .ok_or(AttachError::MissingMap("READ_STATS"))?;
        let stats = PerCpuHashMap::<_, ReadKey, ReadStats>::try_from(map).map_err(|source| {
            AttachError::Map {
                map: "READ_STATS",
                source,
            }
        })?;
        let mut rows = Vec::new();
        for entry in stats.iter() {
            let (key, per_cpu) = entry.map_err(|source| AttachError::Map {
                map: "READ_STATS",
                source,
            })?;
            let mut sum = ReadStats::default();
            for v in per_cpu.iter() {
                sum.syscalls += v.syscalls;
                sum.bytes += v.bytes;
                sum.errors += v.errors;
                sum.kernel_ns += v.kernel_ns;
                sum.voluntary += v.voluntary;
                sum.involuntary += v.involuntary;
            }
            rows.push((key, sum));
        }
        Ok(rows)
    }

    /// Opens per (tgid, file_id), summed across CPUs.
    pub fn file_opens(&self) -> Result<std::collections::HashMap<(u32, u64), u64>, AttachError> {
        let map = self
            .ebpf
            .map("FILE_OPENS")
            .ok_or(AttachError::MissingMap("FILE_OPENS"))?;
        let opens =
            PerCpuHashMap::<_, FileKey, u64>::try_from(map).map_err(|source| AttachError::Map {
                map: "FILE_OPENS",
                source,
            })?;
        let mut totals = std::collections::HashMap::new();
        for entry in opens.iter() {
            let (key, per_cpu) = entry.map_err(|source| AttachError::Map {
                map: "FILE_OPENS",
                source,
            })?;
            totals.insert((key.tgid, key.file_id), per_cpu.iter().sum());
        }
        Ok(totals)
    }

    /// Detaches every program. Each tracepoint detach waits for RCU grace
    /// periods (~40 ms here) under a kernel mutex; doing them from parallel
    /// threads overlaps what the kernel lets overlap. Maps stay readable.
    pub fn detach(&mut self) {
        let mut owned = Vec::new();
        for (program, id) in self.links.drain(..) {
            let link = self
                .ebpf
                .program_mut(program)
                .and_then(|p| <&mut TracePoint>::try_from(p).ok())
                .and_then(|p| p.take_link(id).ok());
            owned.extend(link);
        }
        std::thread::scope(|scope| {
            for link in owned {
                scope.spawn(move || drop(link));
            }
        });
    }

    /// Every traced thread's scheduling figures (key: tid).
    pub fn threads(&self) -> Result<Vec<(u32, ThreadStats)>, AttachError> {
        let map = self
            .ebpf
            .map("THREADS")
            .ok_or(AttachError::MissingMap("THREADS"))?;
        let threads =
            HashMap::<_, u32, ThreadStats>::try_from(map).map_err(|source| AttachError::Map {
                map: "THREADS",
                source,
            })?;
        threads
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| AttachError::Map {
                map: "THREADS",
                source,
            })
    }
}

fn take_map<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, AttachError>
where
    M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(AttachError::MissingMap(name))?;
    M::try_from(map).map_err(|source| AttachError::Map { map: name, source })
}

fn attach_one(
    ebpf: &mut Ebpf,
    attachment: &Attachment,
    links: &mut Vec<(&'static str, TracePointLinkId)>,
) -> Result<(), AttachError> {
    let program_name = attachment.program;
    let program: &mut TracePoint = ebpf
        .program_mut(program_name)
        .ok_or_else(|| AttachError::Program {
            program: program_name.into(),
            source: Box::new(ProgramError::NotLoaded),
        })?
        .try_into()
        .map_err(|source| AttachError::Program {
            program: program_name.into(),
            source: Box::new(source),
        })?;
    program.load().map_err(|source| match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => AttachError::Verifier {
            program: program_name.into(),
            io_error,
            log_tail: log_tail(&verifier_log.to_string(), VERIFIER_LOG_TAIL_LINES),
        },
        source => AttachError::Program {
            program: program_name.into(),
            source: Box::new(source),
        },
    })?;
    for &(category, name) in attachment.tracepoints {
        let link = program
            .attach(category, name)
            .map_err(|source| AttachError::Attach {
                program: program_name.into(),
                category,
                name,
                source: Box::new(source),
            })?;
        links.push((program_name, link));
    }
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
