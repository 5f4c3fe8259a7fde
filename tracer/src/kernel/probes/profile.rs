//! Every difference between kernels, decided once. The [`KernelProfile`]
//! is what this kernel has, read at start-up: its BTF (offsets, each
//! tracepoint's arguments, whether syscall tracepoints may fault), the
//! features the verifier is asked about (`features.rs`), and how the
//! syscall programs are hooked (`syscall_hooks.rs`: the second copies).
//! [`Variant::of`] then picks, from the profile and what the trace asks
//! ([`ProbeSettings`]), with no I/O: the object, the program on each
//! tracepoint, the maps' shapes, the programs' configuration, and what the
//! report says the trace lacks on this kernel. The loader (`mod.rs`) does
//! what the variant says and decides nothing.

use tracer_common::Config;

use super::{
    ProbeSettings,
    features::Features,
    load::OomHook,
    syscall_hooks::{self, Hooks},
    syscall_numbers,
};
use crate::kernel::btf::{BtfError, KernelOffsets};

/// What this kernel has.
pub struct KernelProfile {
    pub features: Features,
    pub offsets: KernelOffsets,
    /// How the syscall, fork and exit programs are hooked.
    pub hooks: Hooks,
}

impl KernelProfile {
    /// Reads this kernel's BTF (the start-up's longest read: done beside
    /// aya's loader), probes its features and chooses the hooks. What it
    /// lacks that costs a detail is said in `warnings`.
    pub fn read(warnings: &mut Vec<String>) -> Result<Self, BtfError> {
        let tracepoints: Vec<&'static str> = ATTACHMENTS.iter().map(|a| a.tracepoint).collect();
        let offsets = KernelOffsets::read(&tracepoints, warnings)?;
        let features = Features::of_this_kernel();
        let hooks = syscall_hooks::choose(
            offsets.syscall_tracepoints_fault,
            features.fetching_atomics,
            warnings,
        );
        Ok(Self {
            features,
            offsets,
            hooks,
        })
    }
}

/// The tracer's kernel side for one trace on one kernel.
#[derive(Debug)]
pub struct Variant {
    /// The object whose walks are `bpf_loop`s (5.17), else the one whose
    /// Python walk is in pieces chained by tail calls.
    pub bpf_loop: bool,
    /// Its hash maps made preallocated (before 6.1).
    pub preallocated: bool,
    /// The program of each tracepoint, each second copy right after its
    /// first.
    pub programs: Vec<Chosen>,
    /// The programs' configuration (`CONFIG`, read-only in the kernel).
    pub config: Config,
    /// The maps sized for this trace: `(name, rows)`.
    pub map_sizes: Vec<(&'static str, u32)>,
    /// Where OOM kills are seen, if they are.
    pub oom_hook: Option<OomHook>,
    /// khugepaged's collapses are told (where memory growth is sampled).
    pub collapses: bool,
    /// What this trace lacks on this kernel, for the report.
    pub warnings: Vec<String>,
}

impl Variant {
    /// What `settings` get on the kernel `profile` describes.
    pub fn of(profile: &KernelProfile, settings: &ProbeSettings) -> Result<Self, BtfError> {
        let KernelProfile {
            features,
            offsets: kernel,
            hooks,
        } = profile;
        let mut warnings = Vec::new();
        // Reads per descriptor: the mode asks for them, the kernel can
        // claim their rows.
        let fd_rows = settings.one_off && features.fetching_atomics;
        if settings.one_off && !features.fetching_atomics {
            warnings.push(
                "this kernel's BPF has no fetching atomics (Linux 5.12): reads are counted per \
                 file in a table of 16,384 rows rather than per descriptor; past that many files \
                 at once, reads are dropped (counted)"
                    .into(),
            );
        }
        let programs = choose_programs(&kernel.tracepoint_args, fd_rows, &mut warnings)?;
        let programs = hooked(programs, hooks);
        let mut regs = kernel.regs;
        if features.task_pt_regs {
            // The kernel's own helper rather than the stack arithmetic.
            regs.stack_to_regs = 0;
        }
        let second_copies = matches!(hooks, Hooks::RawWithSecondCopies(_));
        let config = Config {
            syscalls: syscall_numbers::syscall_numbers(),
            structs: kernel.structs,
            regs,
            follow_children: u32::from(settings.follow_children),
            timeline: u32::from(settings.timeline),
            pid_ns: kernel.pid_ns,
            file: kernel.file,
            scope: settings.scope,
            loop_stall_ns: settings.loop_stall_ns,
            fd_rows: u32::from(fd_rows),
            // The mode alone, whatever the kernel: a one-off trace's thread
            // rows leave at their thread's end, its stacks past the table's
            // room come as records.
            thread_rows: u32::from(settings.one_off),
            stack_records: u32::from(settings.one_off),
            fork_child_pid_at: hooks.fork_child_pid_at(),
            second_copies: u32::from(second_copies),
            // The report's requests section (the continuous modes keep no
            // requests yet).
            requests: u32::from(settings.one_off),
            _pad: 0,
            memory: kernel.memory,
            io_syscalls: syscall_numbers::io_syscalls(),
        };
        let map_sizes = vec![
            // `--native`'s unwind tables; one block (unused) otherwise.
            ("NATIVE_ROWS", settings.native_blocks.max(1)),
            // Reads are counted per descriptor in FD_ROWS or per file
            // through FD_FILES, never both: the unused table is one row
            // (its bucket array would be made at every start, ~1-2 ms).
            (if fd_rows { "FD_FILES" } else { "FD_ROWS" }, 1),
            // The second copies' marks, where they run.
            ("FIRST_RAN", if second_copies { 16384 } else { 1 }),
        ];
        let memory = &kernel.memory;
        let faults = settings.sample_rate.is_some() && settings.fault_period.is_some();
        // `mark_victim` only where it passes the task.
        let oom_hook = match (memory.valid != 0, features.kprobes) {
            (false, _) => None,
            (true, true) => Some(OomHook::KProbe),
            (true, false) => (memory.mark_victim_task != 0).then_some(OomHook::MarkVictim),
        };
        if memory.valid != 0 && oom_hook.is_none() {
            warnings.push(
                "OOM kills are said as a SIGKILL from the kernel, without the limit and the \
                 resident memory: this kernel has no kprobes, and its `mark_victim` tracepoint \
                 passes only the pid"
                    .to_owned(),
            );
        }
        let collapsing = faults && features.huge_pages && memory.valid != 0;
        if collapsing && memory.isolate_args == 0 {
            warnings.push(
                "memory growth: the pages of huge pages khugepaged collapses are charged to the \
                 line sampled after them: this kernel's `mm_collapse_huge_page_isolate` passes \
                 arguments the tracer does not know"
                    .to_owned(),
            );
        }
        Ok(Self {
            bpf_loop: features.bpf_loop,
            preallocated: !features.allocate_on_insert,
            programs,
            config,
            map_sizes,
            oom_hook,
            collapses: collapsing && memory.isolate_args != 0,
            warnings,
        })
    }

    /// What was picked, in a line (`-v`).
    pub fn summary(&self) -> String {
        let perf_hooks = self.programs.iter().filter(|c| c.perf_event.is_some());
        format!(
            "this kernel's variant: the object {}{}; reads counted per {}; {} programs on \
             tracepoints, {} of them perf-event hooks{}",
            if self.bpf_loop {
                "with bpf_loop"
            } else {
                "without bpf_loop (the Python walk in pieces)"
            },
            if self.preallocated {
                ", its maps preallocated"
            } else {
                ""
            },
            if self.config.fd_rows != 0 {
                "descriptor"
            } else {
                "file"
            },
            self.programs.len(),
            perf_hooks.count(),
            if self.config.second_copies != 0 {
                " (second copies)"
            } else {
                ""
            },
        )
    }
}

/// The program attached to one raw tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen {
    pub tracepoint: &'static str,
    pub program: &'static str,
    pub optional: bool,
    /// Hooked as this perf-event tracepoint instead (`syscall_hooks`).
    pub perf_event: Option<u64>,
}

/// The programs as `hooks` has them hooked: a perf-event tracepoint
/// instead of a raw one, or a second copy right after its first.
fn hooked(programs: Vec<Chosen>, hooks: &Hooks) -> Vec<Chosen> {
    programs
        .into_iter()
        .flat_map(|first| {
            let first = match hooks.perf(first.tracepoint) {
                Some((id, program)) => Chosen {
                    program,
                    perf_event: Some(id),
                    ..first
                },
                None => first,
            };
            let second = hooks
                .second_copy(first.tracepoint)
                .map(|(id, program)| Chosen {
                    program,
                    perf_event: Some(id),
                    ..first
                });
            std::iter::once(first).chain(second)
        })
        .collect()
}

/// For each raw tracepoint, the first of its programs that reads no more
/// arguments than this kernel passes (`args`: the count each passes, from
/// BTF; unknown: the first program). A required tracepoint none of whose
/// programs fits refuses the trace; an optional one is left out (and said
/// when the report lists what is not counted).
fn choose_programs(
    args: &[(&'static str, Option<u32>)],
    fd_rows: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Chosen>, BtfError> {
    let rows = if fd_rows {
        FdRows::With
    } else {
        FdRows::Without
    };
    let mut chosen = Vec::new();
    for attachment in ATTACHMENTS {
        let passed = args
            .iter()
            .find(|(name, _)| *name == attachment.tracepoint)
            .and_then(|(_, n)| *n);
        let fits = attachment.programs.iter().find(|(_, reads, holds)| {
            passed.is_none_or(|passed| *reads <= passed) && [rows, FdRows::Either].contains(holds)
        });
        match (fits, passed) {
            (Some(&(program, ..)), _) => chosen.push(Chosen {
                tracepoint: attachment.tracepoint,
                program,
                optional: attachment.optional,
                perf_event: None,
            }),
            (None, Some(found)) if !attachment.optional => {
                return Err(BtfError::TracepointArgs {
                    tracepoint: attachment.tracepoint.into(),
                    found,
                    wanted: attachment.programs.iter().map(|p| p.1).min().unwrap_or(0),
                });
            }
            (None, found) => warnings.push(format!(
                "not counted: this kernel's tracepoint `{}` passes {} argument(s), fewer than \
                 any of the tracer's programs for it reads",
                attachment.tracepoint,
                found.unwrap_or(0)
            )),
        }
    }
    Ok(chosen)
}

/// The programs of one raw tracepoint (their arguments are the kernel's
/// `TP_PROTO`, which grew over the versions): one of them is loaded.
/// Optional ones may be missing on some kernels; the report then says
/// what is not counted.
struct Attachment {
    tracepoint: &'static str,
    /// (program, how many of the tracepoint's arguments it reads, whether
    /// it holds the per-descriptor read rows), the newest kernels' first:
    /// [`choose_programs`] takes the first this kernel passes enough
    /// arguments for, with the rows if the trace counts reads by them.
    programs: &'static [(&'static str, u32, FdRows)],
    optional: bool,
}

/// Whether a program holds the one-off traces' per-descriptor read rows
/// (`tracer-ebpf/src/fd_rows.rs`), whose fetching atomics a kernel before
/// 5.12 refuses anywhere in a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FdRows {
    With,
    Without,
    /// Not a syscall program: the rows are not its concern.
    Either,
}

const ATTACHMENTS: &[Attachment] = &[
    // Every syscall, picked by number in the program: reads, opens,
    // closes, rt_sigaction, rt_sigprocmask, then their returns and the wait
    // returns (who reaped a zombie).
    Attachment {
        tracepoint: "sys_enter",
        programs: &[
            ("sys_enter", 2, FdRows::With),
            ("sys_enter_no_fd_rows", 2, FdRows::Without),
        ],
        optional: false,
    },
    Attachment {
        tracepoint: "sys_exit",
        programs: &[
            ("sys_exit", 2, FdRows::With),
            ("sys_exit_no_fd_rows", 2, FdRows::Without),
        ],
        optional: false,
    },
    // `prev_state` is an argument since 5.18.
    Attachment {
        tracepoint: "sched_switch",
        programs: &[
            ("sched_switch", 4, FdRows::Either),
            ("sched_switch_no_prev_state", 3, FdRows::Either),
        ],
        optional: false,
    },
    Attachment {
        tracepoint: "sched_process_fork",
        programs: &[("sched_process_fork", 2, FdRows::Either)],
        optional: false,
    },
    // `group_dead` is an argument since 6.16.
    Attachment {
        tracepoint: "sched_process_exit",
        programs: &[
            ("sched_process_exit", 2, FdRows::Either),
            ("sched_process_exit_no_group_dead", 1, FdRows::Either),
        ],
        optional: false,
    },
    // Process lifecycle and signals: rare events, each optional (the report
    // then says what is missing).
    Attachment {
        tracepoint: "sched_process_exec",
        programs: &[("sched_process_exec", 3, FdRows::Either)],
        optional: true,
    },
    Attachment {
        tracepoint: "sched_process_free",
        programs: &[("sched_process_free", 1, FdRows::Either)],
        optional: true,
    },
    Attachment {
        tracepoint: "signal_generate",
        programs: &[("signal_generate", 5, FdRows::Either)],
        optional: true,
    },
    Attachment {
        tracepoint: "signal_deliver",
        programs: &[("signal_deliver", 3, FdRows::Either)],
        optional: true,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::probes::syscall_hooks::PerfEvents;

    #[test]
    fn every_tracepoint_and_program_is_listed_once() {
        let mut tracepoints: Vec<_> = ATTACHMENTS.iter().map(|a| a.tracepoint).collect();
        tracepoints.sort();
        tracepoints.dedup();
        assert_eq!(tracepoints.len(), ATTACHMENTS.len());
        let mut programs: Vec<_> = ATTACHMENTS
            .iter()
            .flat_map(|a| a.programs)
            .map(|p| p.0)
            .collect();
        let count = programs.len();
        programs.sort();
        programs.dedup();
        assert_eq!(programs.len(), count);
    }

    /// The argument counts of Debian's kernels' `TP_PROTO`s, from their BTF.
    fn kernel(sched_switch: u32, sched_process_exit: u32) -> Vec<(&'static str, Option<u32>)> {
        let mut args: Vec<_> = ATTACHMENTS
            .iter()
            .map(|a| (a.tracepoint, Some(a.programs[0].1)))
            .collect();
        for (name, n) in args.iter_mut() {
            match *name {
                "sched_switch" => *n = Some(sched_switch),
                "sched_process_exit" => *n = Some(sched_process_exit),
                _ => {}
            }
        }
        args
    }

    fn program_of(chosen: &[Chosen], tracepoint: &str) -> &'static str {
        chosen
            .iter()
            .find(|c| c.tracepoint == tracepoint)
            .unwrap()
            .program
    }

    #[test]
    fn each_kernel_gets_the_programs_its_tracepoints_fit() {
        let mut warnings = Vec::new();
        // 5.10: no prev_state, no group_dead.
        let chosen = choose_programs(&kernel(3, 1), true, &mut warnings).unwrap();
        assert_eq!(
            program_of(&chosen, "sched_switch"),
            "sched_switch_no_prev_state"
        );
        assert_eq!(
            program_of(&chosen, "sched_process_exit"),
            "sched_process_exit_no_group_dead"
        );
        // 6.1, 6.12: prev_state, no group_dead.
        let chosen = choose_programs(&kernel(4, 1), true, &mut warnings).unwrap();
        assert_eq!(program_of(&chosen, "sched_switch"), "sched_switch");
        assert_eq!(
            program_of(&chosen, "sched_process_exit"),
            "sched_process_exit_no_group_dead"
        );
        // 6.16 on: both; a BTF that does not say: the newest.
        for args in [kernel(4, 2), Vec::new()] {
            let chosen = choose_programs(&args, true, &mut warnings).unwrap();
            assert_eq!(
                program_of(&chosen, "sched_process_exit"),
                "sched_process_exit"
            );
            assert_eq!(chosen.len(), ATTACHMENTS.len());
            assert_eq!(program_of(&chosen, "sys_exit"), "sys_exit");
        }
        // Without the rows (--serve, or a kernel without the fetching
        // atomics): the syscall programs that do not hold their code.
        let chosen = choose_programs(&kernel(3, 1), false, &mut warnings).unwrap();
        assert_eq!(program_of(&chosen, "sys_enter"), "sys_enter_no_fd_rows");
        assert_eq!(program_of(&chosen, "sys_exit"), "sys_exit_no_fd_rows");
        assert_eq!(
            program_of(&chosen, "sched_switch"),
            "sched_switch_no_prev_state"
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_tracepoint_no_program_fits_refuses_only_if_required() {
        let mut warnings = Vec::new();
        let err = choose_programs(&kernel(2, 1), true, &mut warnings).unwrap_err();
        assert!(
            err.to_string().contains(
                "`sched_switch` passes 2 argument(s), the tracer's programs read at least 3"
            ),
            "{err}"
        );
        let mut args = kernel(4, 2);
        args.iter_mut()
            .find(|(name, _)| *name == "signal_deliver")
            .unwrap()
            .1 = Some(2);
        let chosen = choose_programs(&args, true, &mut warnings).unwrap();
        assert!(chosen.iter().all(|c| c.tracepoint != "signal_deliver"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("signal_deliver"));
    }

    /// Debian 11's 5.10: none of the features past the floor, the tracepoints'
    /// old arguments, kprobes and the memory offsets but not the collapse's.
    fn debian_11() -> KernelProfile {
        let mut offsets = KernelOffsets {
            tracepoint_args: kernel(3, 1),
            ..KernelOffsets::default()
        };
        offsets.memory.valid = 1;
        offsets.regs.stack_to_regs = 8;
        KernelProfile {
            features: Features {
                bpf_loop: false,
                fetching_atomics: false,
                task_pt_regs: false,
                allocate_on_insert: false,
                kprobes: true,
                huge_pages: true,
            },
            offsets,
            hooks: Hooks::Raw,
        }
    }

    /// Debian sid's 7.x: every feature, syscall tracepoints that may fault on
    /// a kernel that preempts kernel code (second copies).
    fn debian_sid() -> KernelProfile {
        let mut offsets = KernelOffsets {
            tracepoint_args: kernel(4, 2),
            syscall_tracepoints_fault: true,
            ..KernelOffsets::default()
        };
        offsets.memory.valid = 1;
        offsets.memory.isolate_args = 1;
        offsets.regs.stack_to_regs = 8;
        KernelProfile {
            features: Features {
                bpf_loop: true,
                fetching_atomics: true,
                task_pt_regs: true,
                allocate_on_insert: true,
                kprobes: true,
                huge_pages: true,
            },
            offsets,
            hooks: Hooks::RawWithSecondCopies(PerfEvents::numbered(100, 24)),
        }
    }

    fn one_off() -> ProbeSettings {
        ProbeSettings {
            one_off: true,
            sample_rate: Some(99),
            fault_period: Some(16),
            native_blocks: 64,
            ..ProbeSettings::default()
        }
    }

    fn size_of(variant: &Variant, map: &str) -> Option<u32> {
        variant
            .map_sizes
            .iter()
            .find(|(name, _)| *name == map)
            .map(|&(_, rows)| rows)
    }

    /// 5.10: the object without `bpf_loop`, preallocated maps, reads per file
    /// (the capability missing, said), while the thread rows and stack
    /// records follow the mode alone: a one-off trace sends them as 6.x does.
    #[test]
    fn debian_11_gets_reads_per_file_and_the_one_off_thread_rows() {
        let variant = Variant::of(&debian_11(), &one_off()).unwrap();
        assert!(!variant.bpf_loop && variant.preallocated);
        assert_eq!(variant.config.fd_rows, 0);
        assert_eq!(variant.config.thread_rows, 1);
        assert_eq!(variant.config.stack_records, 1);
        assert_eq!(variant.config.second_copies, 0);
        assert_eq!(variant.config.regs.stack_to_regs, 8);
        assert_eq!(
            program_of(&variant.programs, "sys_enter"),
            "sys_enter_no_fd_rows"
        );
        assert_eq!(variant.programs.len(), ATTACHMENTS.len());
        assert!(variant.programs.iter().all(|c| c.perf_event.is_none()));
        // FD_ROWS unused, one row; FD_FILES counts the reads.
        assert_eq!(size_of(&variant, "FD_ROWS"), Some(1));
        assert_eq!(size_of(&variant, "FD_FILES"), None);
        assert_eq!(size_of(&variant, "FIRST_RAN"), Some(1));
        assert_eq!(size_of(&variant, "NATIVE_ROWS"), Some(64));
        assert_eq!(variant.oom_hook, Some(OomHook::KProbe));
        // The collapse's arguments unknown: charged to the next sample, said.
        assert!(!variant.collapses);
        assert_eq!(variant.warnings.len(), 2, "{:?}", variant.warnings);
        assert!(variant.warnings[0].contains("no fetching atomics"));
        assert!(variant.warnings[1].contains("khugepaged"));

        // `--serve` on it: the same object, nothing said of the atomics (the
        // mode counts per file anyway), the rows folded every second.
        let serve = ProbeSettings {
            one_off: false,
            ..one_off()
        };
        let variant = Variant::of(&debian_11(), &serve).unwrap();
        assert_eq!(
            (variant.config.thread_rows, variant.config.stack_records),
            (0, 0)
        );
        assert!(variant.warnings.iter().all(|w| !w.contains("atomics")));
    }

    /// 7.x: reads per descriptor, and each syscall, fork and exit program
    /// followed by its second copy on its perf event, with room for the marks.
    #[test]
    fn debian_sid_gets_second_copies_after_their_firsts() {
        let variant = Variant::of(&debian_sid(), &one_off()).unwrap();
        assert!(variant.bpf_loop && !variant.preallocated);
        assert_eq!(variant.config.fd_rows, 1);
        assert_eq!(variant.config.second_copies, 1);
        assert_eq!(variant.config.fork_child_pid_at, 24);
        assert_eq!(variant.config.regs.stack_to_regs, 0);
        assert_eq!(size_of(&variant, "FD_FILES"), Some(1));
        assert_eq!(size_of(&variant, "FIRST_RAN"), Some(16384));
        let hooks: Vec<(&str, &str, Option<u64>)> = variant
            .programs
            .iter()
            .map(|c| (c.tracepoint, c.program, c.perf_event))
            .take(7)
            .collect();
        assert_eq!(
            hooks,
            [
                ("sys_enter", "sys_enter", None),
                ("sys_enter", "sys_enter_perf", Some(100)),
                ("sys_exit", "sys_exit", None),
                ("sys_exit", "sys_exit_perf", Some(101)),
                ("sched_switch", "sched_switch", None),
                ("sched_process_fork", "sched_process_fork", None),
                ("sched_process_fork", "sched_process_fork_perf", Some(102)),
            ]
        );
        assert_eq!(variant.programs.len(), ATTACHMENTS.len() + 4);
        assert!(variant.collapses);
        assert!(variant.warnings.is_empty(), "{:?}", variant.warnings);
    }

    /// `TRACER_SYSCALL_HOOKS=perf`: the perf-event programs instead of the raw
    /// ones, no second copy.
    #[test]
    fn perf_hooks_replace_the_raw_programs() {
        let profile = KernelProfile {
            hooks: Hooks::Perf(PerfEvents::numbered(7, 24)),
            ..debian_sid()
        };
        let variant = Variant::of(&profile, &one_off()).unwrap();
        assert_eq!(variant.programs.len(), ATTACHMENTS.len());
        assert_eq!(variant.config.second_copies, 0);
        assert_eq!(size_of(&variant, "FIRST_RAN"), Some(1));
        let exit = variant
            .programs
            .iter()
            .find(|c| c.tracepoint == "sched_process_exit")
            .unwrap();
        assert_eq!(
            (exit.program, exit.perf_event),
            ("sched_process_exit_perf", Some(10))
        );
    }

    /// A kernel without kprobes: `mark_victim` where it passes the task, else
    /// OOM kills are the kernel's SIGKILL, said.
    #[test]
    fn oom_kills_are_seen_where_the_kernel_lets_them() {
        let mut profile = debian_sid();
        profile.features.kprobes = false;
        let variant = Variant::of(&profile, &one_off()).unwrap();
        assert_eq!(variant.oom_hook, None);
        assert!(variant.warnings[0].contains("OOM kills"));
        profile.offsets.memory.mark_victim_task = 8;
        let variant = Variant::of(&profile, &one_off()).unwrap();
        assert_eq!(variant.oom_hook, Some(OomHook::MarkVictim));
        assert!(variant.warnings.is_empty());
    }
}
