//! A minimal reader of the kernel's BTF (`/sys/kernel/btf/vmlinux`): just
//! enough to find the byte offset of a struct member, so the BPF programs can
//! read a kernel field (e.g. `task_struct.exit_code`) without hard-coding one
//! kernel's layout. Rust eBPF has no CO-RE relocations yet; this is the
//! userspace half of the same idea.

use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("cannot read {path}: {message}. Is the kernel built with CONFIG_DEBUG_INFO_BTF?")]
    Read { path: String, message: String },
    #[error("not a little-endian BTF blob (bad magic or header)")]
    BadHeader,
    #[error("BTF type section is truncated or has an unknown kind {0}")]
    Malformed(u32),
    #[error("BTF has no struct `{0}`")]
    NoStruct(String),
    #[error("struct `{structure}` has no member `{member}` in this kernel's BTF")]
    NoMember { structure: String, member: String },
    #[error(
        "this kernel's tracepoint `{tracepoint}` passes {found} argument(s), the tracer's \
         programs read at least {wanted}"
    )]
    TracepointArgs {
        tracepoint: String,
        found: u32,
        wanted: u32,
    },
    #[error("`{structure}.{member}` is a bitfield")]
    Bitfield { structure: String, member: String },
}

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;
const KIND_FUNC_PROTO: u32 = 13;

#[derive(Debug, Clone, Copy)]
struct Member {
    name_off: u32,
    type_id: u32,
    /// In bits.
    offset: u32,
    bitfield: bool,
}

#[derive(Debug, Clone, Copy)]
struct Type {
    name_off: u32,
    kind: u32,
    /// Referenced type for modifiers / typedefs.
    type_id: u32,
    /// Members, parameters or entries.
    vlen: u32,
    /// Where its records follow it in the type section (struct or union
    /// members, enum entries), and whether its members' offsets hold a
    /// bitfield size (`kind_flag`).
    records_at: u32,
    kind_flag: bool,
}

/// One BTF blob (id 0 is `void`): its types indexed, their names and
/// members read in place. (Copies of the string section and of the
/// members, each under 2 MiB, were freed page by page at every start,
/// with a TLB flush each: seconds on an emulated arm64 CPU.)
pub struct Btf {
    data: Vec<u8>,
    /// The type and string sections, in `data`.
    types_at: usize,
    strings: std::ops::Range<usize>,
    types: Vec<Type>,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

impl Btf {
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|err| BtfError::Read {
            path: path.display().to_string(),
            message: err.to_string(),
        })?;
        Self::parse(data)
    }

    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(BtfError::BadHeader);
        }
        let field = |at| u32_at(&data, at).ok_or(BtfError::BadHeader);
        let hdr_len = field(4)? as usize;
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let types_at = hdr_len + type_off;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        let type_data = data
            .get(types_at..types_at + type_len)
            .ok_or(BtfError::BadHeader)?;
        data.get(strings.clone()).ok_or(BtfError::BadHeader)?;

        // Each type takes 12 bytes or more: sized once (grown by doubling,
        // each step would move the old pages).
        let mut types = Vec::with_capacity(type_len / 12 + 1);
        types.push(Type {
            name_off: 0,
            kind: 0,
            type_id: 0,
            vlen: 0,
            records_at: 0,
            kind_flag: false,
        });
        let mut at = 0usize;
        while at < type_data.len() {
            let bad = || BtfError::Malformed(0);
            let name_off = u32_at(type_data, at).ok_or_else(bad)?;
            let info = u32_at(type_data, at + 4).ok_or_else(bad)?;
            let size_or_type = u32_at(type_data, at + 8).ok_or_else(bad)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let extra = match kind {
                1 | 14 | 17 => 4,                            // INT, VAR, DECL_TAG
                2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0, // PTR, FWD, modifiers, FUNC, FLOAT
                3 => 12,                                     // ARRAY
                KIND_STRUCT | KIND_UNION => 12 * vlen,       // members
                KIND_ENUM => 8 * vlen,                       // (name, value) entries
                13 => 8 * vlen,                              // FUNC_PROTO
                15 | 19 => 12 * vlen,                        // DATASEC, ENUM64
                other => return Err(BtfError::Malformed(other)),
            };
            if at + extra > type_data.len() {
                return Err(bad());
            }
            types.push(Type {
                name_off,
                kind,
                type_id: size_or_type,
                vlen: vlen as u32,
                records_at: at as u32,
                kind_flag: info >> 31 != 0,
            });
            at += extra;
        }
        Ok(Self {
            data,
            types_at,
            strings,
            types,
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let strings = &self.data[self.strings.clone()];
        let rest = strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// A struct's or union's members, or an enum's entries (as members
    /// whose offset is the value); none for any other kind.
    fn members(&self, t: &Type) -> impl Iterator<Item = Member> + '_ {
        let (count, size) = match t.kind {
            KIND_STRUCT | KIND_UNION => (t.vlen as usize, 12),
            KIND_ENUM => (t.vlen as usize, 8),
            _ => (0, 0),
        };
        let at = self.types_at + t.records_at as usize;
        let kind_flag = t.kind_flag && size == 12;
        (0..count).map(move |i| {
            let word = |n: usize| u32_at(&self.data, at + i * size + 4 * n).unwrap_or(0);
            if size == 8 {
                return Member {
                    name_off: word(0),
                    type_id: 0,
                    offset: word(1),
                    bitfield: false,
                };
            }
            let offset = word(2);
            Member {
                name_off: word(0),
                type_id: word(1),
                offset: if kind_flag {
                    offset & 0x00ff_ffff
                } else {
                    offset
                },
                bitfield: kind_flag && offset >> 24 != 0,
            }
        })
    }

    /// Follows typedefs and qualifiers to the underlying type id.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.type_id
                }
                _ => break,
            }
        }
        id
    }

    /// Bit offset of `member` within type `id`, looking inside anonymous
    /// struct/union members too; whether it is a bit field; its type.
    fn find_member(&self, id: u32, member: &[u8], depth: u32) -> Option<(u32, bool, u32)> {
        let t = self.types.get(id as usize)?;
        for m in self.members(t) {
            let name = self.name(m.name_off);
            if name == member {
                return Some((m.offset, m.bitfield, m.type_id));
            }
            if name.is_empty() && depth < 8 {
                let inner = self.resolve(m.type_id);
                let aggregate = matches!(
                    self.types.get(inner as usize),
                    Some(t) if t.kind == KIND_STRUCT || t.kind == KIND_UNION
                );
                if let Some((off, bitfield, type_id)) = aggregate
                    .then(|| self.find_member(inner, member, depth + 1))
                    .flatten()
                {
                    return Some((m.offset + off, bitfield, type_id));
                }
            }
        }
        None
    }

    /// How many arguments the kernel passes to the raw tracepoint `name`
    /// (its `TP_PROTO`): the typedef `btf_trace_<name>` is a pointer to a
    /// function whose first parameter is the probe's private data.
    pub fn tracepoint_args(&self, name: &str) -> Option<u32> {
        let typedef = format!("btf_trace_{name}");
        let t = self
            .types
            .iter()
            .find(|t| t.kind == KIND_TYPEDEF && self.name(t.name_off) == typedef.as_bytes())?;
        let pointer = self.types.get(t.type_id as usize)?;
        let proto = self.types.get(self.resolve(pointer.type_id) as usize)?;
        (proto.kind == KIND_FUNC_PROTO).then(|| proto.vlen.saturating_sub(1))
    }

    /// The value of the enumerator `name` (`memory_cgrp_id`).
    pub fn enum_value(&self, name: &str) -> Option<u32> {
        self.types
            .iter()
            .filter(|t| t.kind == KIND_ENUM)
            .flat_map(|t| self.members(t))
            .find(|m| self.name(m.name_off) == name.as_bytes())
            .map(|m| m.offset)
    }

    /// `sizeof(struct structure)`.
    pub fn struct_size(&self, structure: &str) -> Result<u32, BtfError> {
        self.types
            .iter()
            .find(|t| {
                t.kind == KIND_STRUCT
                    && t.vlen != 0
                    && self.name(t.name_off) == structure.as_bytes()
            })
            // A struct's `size_or_type` is its size.
            .map(|t| t.type_id)
            .ok_or_else(|| BtfError::NoStruct(structure.into()))
    }

    /// Whether `structure` has `member` (a bitfield too).
    pub fn has_member(&self, structure: &str, member: &str) -> bool {
        matches!(
            self.member_offset(structure, member),
            Ok(_) | Err(BtfError::Bitfield { .. })
        )
    }

    /// Byte offset of `structure.path[0].path[1]...`: members of members,
    /// whose types may have no name (`task_struct.thread.uw.tp_value`).
    pub fn member_path_offset(&self, structure: &str, path: &[&str]) -> Result<u32, BtfError> {
        let missing = || BtfError::NoMember {
            structure: structure.into(),
            member: path.join("."),
        };
        let (first, rest) = path.split_first().ok_or_else(missing)?;
        let (mut offset, mut id) = self.member_at(structure, first)?;
        for member in rest {
            let (bits, bitfield, type_id) = self
                .find_member(self.resolve(id), member.as_bytes(), 0)
                .ok_or_else(missing)?;
            if bitfield || bits % 8 != 0 {
                return Err(missing());
            }
            offset += bits / 8;
            id = type_id;
        }
        Ok(offset)
    }

    /// Byte offset of `structure.member`.
    pub fn member_offset(&self, structure: &str, member: &str) -> Result<u32, BtfError> {
        self.member_at(structure, member).map(|(offset, _)| offset)
    }

    /// Byte offset and type id of `structure.member` (the first struct of
    /// that name that has it).
    fn member_at(&self, structure: &str, member: &str) -> Result<(u32, u32), BtfError> {
        let candidates = self.types.iter().enumerate().filter(|(_, t)| {
            t.kind == KIND_STRUCT && t.vlen != 0 && self.name(t.name_off) == structure.as_bytes()
        });
        let mut found_struct = false;
        for (id, _) in candidates {
            found_struct = true;
            if let Some((bits, bitfield, type_id)) =
                self.find_member(id as u32, member.as_bytes(), 0)
            {
                if bitfield || bits % 8 != 0 {
                    return Err(BtfError::Bitfield {
                        structure: structure.into(),
                        member: member.into(),
                    });
                }
                return Ok((bits / 8, type_id));
            }
        }
        if found_struct {
            Err(BtfError::NoMember {
                structure: structure.into(),
                member: member.into(),
            })
        } else {
            Err(BtfError::NoStruct(structure.into()))
        }
    }
}

/// What the programs need to know of the running kernel, from its BTF. The
/// saved syscall registers, `task_struct.pid` / `comm` and the signal
/// structures the tracepoints pass are required (the raw tracepoints read
/// every syscall argument, task and signal there); each other offset
/// missing costs some detail, said in a warning, never the trace.
#[derive(Debug, Default)]
pub struct KernelOffsets {
    pub regs: tracer_common::SyscallRegs,
    pub structs: tracer_common::StructOffsets,
    pub pid_ns: tracer_common::PidNsOffsets,
    pub file: tracer_common::FileOffsets,
    pub memory: tracer_common::MemoryOffsets,
    /// How many arguments each raw tracepoint asked about passes on this
    /// kernel (`None`: its BTF does not say).
    pub tracepoint_args: Vec<(&'static str, Option<u32>)>,
    /// Syscall tracepoints may fault (6.14): their raw tracepoint programs
    /// run with only migration disabled (see `probes/syscall_hooks.rs`).
    pub syscall_tracepoints_fault: bool,
}

impl KernelOffsets {
    /// Parses `/sys/kernel/btf/vmlinux` (once per trace): the offsets, and
    /// how many arguments each raw tracepoint of `tracepoints` passes.
    pub fn read(
        tracepoints: &[&'static str],
        warnings: &mut Vec<String>,
    ) -> Result<Self, BtfError> {
        let btf = vmlinux()?;
        let mut offsets = Self::from_btf(&btf, warnings)?;
        offsets.tracepoint_args = tracepoints
            .iter()
            .map(|&name| (name, btf.tracepoint_args(name)))
            .collect();
        offsets.syscall_tracepoints_fault = btf.has_member("tracepoint_ext", "faultable");
        Ok(offsets)
    }

    pub fn from_btf(btf: &Btf, warnings: &mut Vec<String>) -> Result<Self, BtfError> {
        let (task_mm, mm_arg_start, mm_arg_end) = match argv_offsets(btf) {
            Ok(argv) => argv,
            Err(err) => {
                warnings.push(format!("command lines after exec are not captured: {err}"));
                (0, 0, 0)
            }
        };
        let mut optional = |what: &str, found: Result<u32, BtfError>| {
            found.unwrap_or_else(|err| {
                warnings.push(format!("{what}: {err}"));
                0
            })
        };
        let task_exit_code = optional(
            "exit statuses come only from traced wait4/waitid calls",
            task_exit_code_offset(btf),
        );
        let task_blocked = optional(
            "signal mask changes are not traced",
            btf.member_offset("task_struct", "blocked"),
        );
        let binprm_filename = optional(
            "the file an exec runs is not captured",
            btf.member_offset("linux_binprm", "filename"),
        );
        // The thread's TLS base: x86-64's `fsbase` (`pthread_self()`), arm64's
        // `tpidr_el0` as saved in `thread.uw.tp_value` (past glibc's `struct
        // pthread`: `PyConfig::tls_to_thread`). Missing, the sampler waits
        // for userspace to publish each thread.
        let task_fsbase = btf
            .member_path_offset("task_struct", &["thread", "fsbase"])
            .or_else(|_| btf.member_path_offset("task_struct", &["thread", "uw", "tp_value"]))
            .unwrap_or(0);
        log::debug!("a thread's TLS base at task_struct + {task_fsbase}");
        // Missing, a thread's stretch on CPU whose switch-in the tracepoint
        // did not show is not counted (rare: see sched.rs in the kernel side).
        let task_runtime = btf
            .member_offset("task_struct", "se")
            .and_then(|se| Ok(se + btf.member_offset("sched_entity", "sum_exec_runtime")?))
            .unwrap_or(0);
        // Every kernel with the tracepoints the programs read has these
        // (and 0 is a real offset for some of them): required.
        let sa = btf.member_offset("k_sigaction", "sa")?;
        let structs = tracer_common::StructOffsets {
            task_pid: btf.member_offset("task_struct", "pid")?,
            task_comm: btf.member_offset("task_struct", "comm")?,
            task_exit_code,
            task_blocked,
            task_mm,
            mm_arg_start,
            mm_arg_end,
            binprm_filename,
            siginfo_errno: btf.member_offset("kernel_siginfo", "si_errno")?,
            siginfo_code: btf.member_offset("kernel_siginfo", "si_code")?,
            ksigaction_handler: sa + btf.member_offset("sigaction", "sa_handler")?,
            ksigaction_flags: sa + btf.member_offset("sigaction", "sa_flags")?,
            task_fsbase,
            task_runtime,
            // `__state` since 5.14.
            task_state: btf
                .member_offset("task_struct", "__state")
                .or_else(|_| btf.member_offset("task_struct", "state"))?,
            task_signal: btf.member_offset("task_struct", "signal")?,
            signal_live: btf.member_offset("signal_struct", "live")?,
        };
        let pid_ns = pid_ns_offsets(btf).unwrap_or_else(|err| {
            warnings.push(format!(
                "the pid in its own namespace of a process that exits during the trace is not \
                 captured (only read from /proc while it is there): {err}"
            ));
            Default::default()
        });
        let file = file_offsets(btf).unwrap_or_else(|err| {
            warnings.push(format!(
                "pipes and sockets closed right after their first read may stay unnamed: {err}"
            ));
            Default::default()
        });
        let memory = memory_offsets(btf).unwrap_or_else(|err| {
            warnings.push(format!(
                "OOM kills are said as a SIGKILL from the kernel, without the limit and the \
                 resident memory; processes' peak and current resident memory are not \
                 known: {err}"
            ));
            Default::default()
        });
        Ok(Self {
            regs: syscall_regs(btf)?,
            structs,
            pid_ns,
            file,
            memory,
            tracepoint_args: Vec::new(),
            syscall_tracepoints_fault: false,
        })
    }
}

pub fn vmlinux() -> Result<Btf, BtfError> {
    Btf::from_file(Path::new("/sys/kernel/btf/vmlinux"))
}

/// Offset of `task_struct.exit_code`.
pub fn task_exit_code_offset(btf: &Btf) -> Result<u32, BtfError> {
    btf.member_offset("task_struct", "exit_code")
}

/// Where the OOM killer's choice, the cgroup whose limit was hit and the
/// victim's resident memory are (`oom_kill_process`'s `struct oom_control`),
/// and a process's peak resident memory (`signal_struct.maxrss`).
pub fn memory_offsets(btf: &Btf) -> Result<tracer_common::MemoryOffsets, BtfError> {
    // `struct mm_rss_stat { atomic_long_t count[4]; }` before 6.2, then
    // `struct percpu_counter rss_stat[4]`.
    let (rss_counter_size, rss_counter_value) = if btf.struct_size("mm_rss_stat").is_ok() {
        (8, 0)
    } else {
        (
            btf.struct_size("percpu_counter")?,
            btf.member_offset("percpu_counter", "count")?,
        )
    };
    let memory = btf.member_offset("mem_cgroup", "memory")?;
    let memcg_css = btf.member_offset("mem_cgroup", "css")?;
    Ok(tracer_common::MemoryOffsets {
        valid: 1,
        oc_chosen: btf.member_offset("oom_control", "chosen")?,
        oc_memcg: btf.member_offset("oom_control", "memcg")?,
        oc_totalpages: btf.member_offset("oom_control", "totalpages")?,
        oc_chosen_points: btf.member_offset("oom_control", "chosen_points")?,
        task_tgid: btf.member_offset("task_struct", "tgid")?,
        mm_rss_stat: btf.member_offset("mm_struct", "rss_stat")?,
        rss_counter_size,
        rss_counter_value,
        mm_total_vm: btf.member_offset("mm_struct", "total_vm")?,
        memcg_max: memory + btf.member_offset("page_counter", "max")?,
        memcg_usage: memory + btf.member_offset("page_counter", "usage")?,
        memcg_cgroup: memcg_css + btf.member_offset("cgroup_subsys_state", "cgroup")?,
        cgroup_kn: btf.member_offset("cgroup", "kn")?,
        kn_name: btf.member_offset("kernfs_node", "name")?,
        // `__parent` since 6.15 (read under RCU).
        kn_parent: btf
            .member_offset("kernfs_node", "__parent")
            .or_else(|_| btf.member_offset("kernfs_node", "parent"))?,
        kn_id: btf.member_offset("kernfs_node", "id")?,
        // A task's memory cgroup: `task->cgroups->subsys[memory_cgrp_id]`,
        // the `css` inside its `mem_cgroup`, and the css's parent.
        task_cgroups: btf.member_offset("task_struct", "cgroups")?,
        css_set_memory: btf.member_offset("css_set", "subsys")?
            + 8 * btf
                .enum_value("memory_cgrp_id")
                .ok_or_else(|| BtfError::NoMember {
                    structure: "cgroup_subsys_id".into(),
                    member: "memory_cgrp_id".into(),
                })?,
        memcg_css,
        css_parent: btf.member_offset("cgroup_subsys_state", "parent")?,
        // 6.8 (and backports): `mark_victim(task, uid)`; before, the pid alone.
        mark_victim_task: u32::from(btf.tracepoint_args("mark_victim") == Some(2)),
        isolate_args: btf
            .tracepoint_args("mm_collapse_huge_page_isolate")
            .filter(|n| (4..=6).contains(n))
            .unwrap_or_default(),
        scan_succeed: btf.enum_value("SCAN_SUCCEED").unwrap_or(1),
        task_signal: btf.member_offset("task_struct", "signal")?,
        signal_maxrss: btf.member_offset("signal_struct", "maxrss")?,
        // `struct task_rss_stat { int events; int count[4]; }` before 6.2
        // (`SPLIT_RSS_COUNTING`), gone with the per-CPU counters.
        task_rss_cached: btf
            .member_offset("task_struct", "rss_stat")
            .and_then(|at| Ok(at + btf.member_offset("task_rss_stat", "count")?))
            .unwrap_or(0),
    })
}

/// Where a task's pid in its own namespace is:
/// `task->group_leader->thread_pid->numbers[level].nr`.
pub fn pid_ns_offsets(btf: &Btf) -> Result<tracer_common::PidNsOffsets, BtfError> {
    Ok(tracer_common::PidNsOffsets {
        valid: 1,
        task_group_leader: btf.member_offset("task_struct", "group_leader")?,
        task_thread_pid: btf.member_offset("task_struct", "thread_pid")?,
        pid_level: btf.member_offset("pid", "level")?,
        pid_numbers: btf.member_offset("pid", "numbers")?,
        upid_size: btf.struct_size("upid")?,
        upid_nr: btf.member_offset("upid", "nr")?,
        _pad: 0,
    })
}

/// Where an open descriptor's file and inode are:
/// `task->files->fdt->fd[fd]->f_inode->{i_ino, i_blkbits, i_sb->s_magic}`.
pub fn file_offsets(btf: &Btf) -> Result<tracer_common::FileOffsets, BtfError> {
    Ok(tracer_common::FileOffsets {
        valid: 1,
        task_files: btf.member_offset("task_struct", "files")?,
        files_fdt: btf.member_offset("files_struct", "fdt")?,
        fdt_max_fds: btf.member_offset("fdtable", "max_fds")?,
        fdt_fd: btf.member_offset("fdtable", "fd")?,
        file_inode: btf.member_offset("file", "f_inode")?,
        inode_ino: btf.member_offset("inode", "i_ino")?,
        inode_blkbits: btf.member_offset("inode", "i_blkbits")?,
        inode_sb: btf.member_offset("inode", "i_sb")?,
        sb_magic: btf.member_offset("super_block", "s_magic")?,
        inode_mode: btf.member_offset("inode", "i_mode")?,
        ..socket_offsets(btf).unwrap_or_default()
    })
}

/// Where an inet socket's addresses are: `file.private_data` (its
/// `struct socket`) -> `sk` -> `__sk_common` (at the start of `struct
/// sock`) `{skc_family, skc_num, skc_dport, skc_rcv_saddr, skc_daddr,
/// skc_v6_*}`, `sock.{sk_protocol, sk_type}` (a bit field before 5.6:
/// no kernel-read names there). Only the socket fields are set.
fn socket_offsets(btf: &Btf) -> Result<tracer_common::FileOffsets, BtfError> {
    let common = |member: &str| btf.member_offset("sock_common", member);
    // Without IPv6 built in: IPv4 sockets only.
    let v6 = |member: &str| common(member).unwrap_or(u32::MAX);
    if btf.member_offset("sock", "__sk_common")? != 0 {
        return Err(BtfError::NoMember {
            structure: "sock".into(),
            member: "__sk_common at 0".into(),
        });
    }
    Ok(tracer_common::FileOffsets {
        sockets: 1,
        file_private_data: btf.member_offset("file", "private_data")?,
        socket_sk: btf.member_offset("socket", "sk")?,
        skc_family: common("skc_family")?,
        skc_num: common("skc_num")?,
        skc_dport: common("skc_dport")?,
        skc_rcv_saddr: common("skc_rcv_saddr")?,
        skc_daddr: common("skc_daddr")?,
        skc_v6_rcv_saddr: v6("skc_v6_rcv_saddr"),
        skc_v6_daddr: v6("skc_v6_daddr"),
        sk_protocol: btf.member_offset("sock", "sk_protocol")?,
        sk_type: btf.member_offset("sock", "sk_type")?,
        ..Default::default()
    })
}

/// Offsets of `task_struct.mm` and `mm_struct.arg_start` / `arg_end`: where
/// a process's argv strings are.
pub fn argv_offsets(btf: &Btf) -> Result<(u32, u32, u32), BtfError> {
    Ok((
        btf.member_offset("task_struct", "mm")?,
        btf.member_offset("mm_struct", "arg_start")?,
        btf.member_offset("mm_struct", "arg_end")?,
    ))
}

/// Where the syscall number and first four arguments are saved in
/// `struct pt_regs`.
#[cfg(target_arch = "x86_64")]
pub fn syscall_regs(btf: &Btf) -> Result<tracer_common::SyscallRegs, BtfError> {
    let reg = |name: &str| btf.member_offset("pt_regs", name);
    Ok(tracer_common::SyscallRegs {
        valid: 1,
        nr: reg("orig_ax")?,
        nr_size: 8,
        arg1: reg("di")?,
        arg2: reg("si")?,
        arg3: reg("dx")?,
        arg4: reg("r10")?,
        ip: reg("ip")?,
        sp: reg("sp")?,
        bp: reg("bp")?,
        lr: 0,
        task_stack: btf.member_offset("task_struct", "stack")?,
        // x86-64's task_pt_regs(): the registers are the last thing on the
        // task's kernel stack of THREAD_SIZE (16 KiB; 32 KiB only in KASAN
        // builds), with no padding above them. Used only where the kernel
        // has no bpf_task_pt_regs (before 5.15).
        stack_to_regs: X86_64_THREAD_SIZE - btf.struct_size("pt_regs")?,
    })
}

/// x86-64's `THREAD_SIZE` (`PAGE_SIZE << THREAD_SIZE_ORDER`, order 2).
#[cfg(target_arch = "x86_64")]
const X86_64_THREAD_SIZE: u32 = 16 * 1024;

/// arm64's: `regs[0..4]` hold the arguments, but `regs[0]` is the return
/// value by the syscall's exit, so the first is `orig_x0` (saved before
/// the entry tracepoint, kept through the exit); the number is `s32
/// syscallno`; the frame pointer and link register are `regs[29]` and
/// `regs[30]`.
#[cfg(target_arch = "aarch64")]
pub fn syscall_regs(btf: &Btf) -> Result<tracer_common::SyscallRegs, BtfError> {
    let reg = |name: &str| btf.member_offset("pt_regs", name);
    let x = |n: u32| -> Result<u32, BtfError> { Ok(reg("regs")? + 8 * n) };
    Ok(tracer_common::SyscallRegs {
        valid: 1,
        nr: reg("syscallno")?,
        nr_size: 4,
        arg1: reg("orig_x0")?,
        arg2: x(1)?,
        arg3: x(2)?,
        arg4: x(3)?,
        ip: reg("pc")?,
        sp: reg("sp")?,
        bp: x(29)?,
        lr: x(30)?,
        task_stack: btf.member_offset("task_struct", "stack")?,
        // arm64's task_pt_regs(): the same place, THREAD_SIZE 16 KiB (4 KiB
        // pages, no KASAN: Debian's kernels).
        stack_to_regs: ARM64_THREAD_SIZE - btf.struct_size("pt_regs")?,
    })
}

#[cfg(target_arch = "aarch64")]
const ARM64_THREAD_SIZE: u32 = 16 * 1024;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn syscall_regs(_btf: &Btf) -> Result<tracer_common::SyscallRegs, BtfError> {
    Err(BtfError::NoStruct(
        "pt_regs (syscall registers are mapped on x86-64 and arm64 only)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob: `struct inner { int a; }`, and
    /// `struct task { int x; long y; union { int z; }; const struct inner in; int bf:3; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0task\0x\0y\0z\0in\0a\0inner\0bf\0long\0";
        let s = |name: &str| {
            let needle = format!("\0{name}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut t = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, kind_flag: bool, size: u32, rest: &[u32]| {
            t.extend_from_slice(&name.to_le_bytes());
            let info = (kind << 24) | vlen | if kind_flag { 1 << 31 } else { 0 };
            t.extend_from_slice(&info.to_le_bytes());
            t.extend_from_slice(&size.to_le_bytes());
            for v in rest {
                t.extend_from_slice(&v.to_le_bytes());
            }
        };
        // 1: int
        ty(s("int"), 1, 0, false, 4, &[32]);
        // 2: long
        ty(s("long"), 1, 0, false, 8, &[64]);
        // 3: struct inner { int a; }
        ty(s("inner"), 4, 1, false, 4, &[s("a"), 1, 0]);
        // 4: const struct inner
        ty(0, 10, 0, false, 3, &[]);
        // 5: anonymous union { int z; }
        ty(0, 5, 1, false, 4, &[s("z"), 1, 0]);
        // 6: struct task (kind_flag: member offsets carry bitfield sizes)
        ty(
            s("task"),
            4,
            5,
            true,
            32,
            &[
                s("x"),
                1,
                0,
                s("y"),
                2,
                64,
                0,
                5,
                128,
                s("in"),
                4,
                160,
                s("bf"),
                1,
                (3 << 24) | 192,
            ],
        );
        // 7: a forward declaration of `task` (no members) must be skipped.
        ty(s("task"), 7, 0, false, 0, &[]);
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&24u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.extend_from_slice(&t);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn finds_members_of_a_synthetic_struct() {
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.member_offset("task", "x"), Ok(0));
        assert_eq!(btf.member_offset("task", "y"), Ok(8));
        // Inside an anonymous union.
        assert_eq!(btf.member_offset("task", "z"), Ok(16));
        assert_eq!(btf.member_offset("task", "in"), Ok(20));
        assert_eq!(btf.member_offset("inner", "a"), Ok(0));
        assert!(matches!(
            btf.member_offset("task", "bf"),
            Err(BtfError::Bitfield { .. })
        ));
        assert!(matches!(
            btf.member_offset("task", "nope"),
            Err(BtfError::NoMember { .. })
        ));
        assert_eq!(
            btf.member_offset("nothing", "x"),
            Err(BtfError::NoStruct("nothing".into()))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            Btf::parse(b"not btf at all, no".to_vec()).err(),
            Some(BtfError::BadHeader)
        );
        let mut truncated = blob();
        truncated.truncate(40);
        assert!(Btf::parse(truncated).is_err());
    }

    #[test]
    fn reads_the_running_kernel() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("skipped: no {}", path.display());
            return;
        }
        let btf = Btf::from_file(path).unwrap();
        let pid = btf.member_offset("task_struct", "pid").unwrap();
        let tgid = btf.member_offset("task_struct", "tgid").unwrap();
        // pid_t pid; pid_t tgid; are adjacent in every kernel since 2.6.
        assert_eq!(tgid, pid + 4);
        let exit_code = task_exit_code_offset(&btf).unwrap();
        assert!(exit_code > 0 && exit_code.is_multiple_of(4), "{exit_code}");
        let (mm, arg_start, arg_end) = argv_offsets(&btf).unwrap();
        assert!(mm > 0);
        // unsigned long arg_start, arg_end: adjacent (inside an anonymous struct).
        assert_eq!(arg_end, arg_start + 8);
        let regs = syscall_regs(&btf).unwrap();
        // The saved registers are 8 bytes apart; orig_ax follows di.
        assert_eq!(regs.valid, 1);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(regs.nr, regs.arg1 + 8);
            assert_eq!(regs.arg1, regs.arg2 + 8);
        }
        // x1, x2, x3 in a row; x29 and x30 at the end of regs[31], then
        // sp and pc; orig_x0 and syscallno after pstate.
        #[cfg(target_arch = "aarch64")]
        {
            assert_eq!((regs.arg3, regs.arg4), (regs.arg2 + 8, regs.arg2 + 16));
            assert_eq!(
                (regs.lr, regs.sp, regs.ip),
                (regs.bp + 8, regs.bp + 16, regs.bp + 24)
            );
            assert_eq!((regs.arg1, regs.nr), (regs.ip + 16, regs.ip + 24));
        }
        let mut warnings = Vec::new();
        let kernel = KernelOffsets::from_btf(&btf, &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(kernel.structs.task_pid, pid);
        // The TLS base through a member of a member (x86-64's fsbase, in
        // thread_struct, itself in task_struct).
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            kernel.structs.task_fsbase,
            btf.member_offset("task_struct", "thread").unwrap()
                + btf.member_offset("thread_struct", "fsbase").unwrap()
        );
        assert!(
            btf.member_path_offset("task_struct", &["thread", "no_such_member"])
                .is_err()
        );
        // The raw tracepoints' arguments, as the programs read them.
        assert_eq!(btf.tracepoint_args("sys_enter"), Some(2));
        assert_eq!(btf.tracepoint_args("sched_switch"), Some(4));
        assert_eq!(btf.tracepoint_args("signal_generate"), Some(5));
        assert_eq!(btf.tracepoint_args("no_such_tracepoint"), None);
        assert_eq!(btf.tracepoint_args("sched_process_free"), Some(1));
        // __state (5.14 on), signal, live: the older kernels' variants read them.
        assert!(kernel.structs.task_state > 0 && kernel.structs.signal_live > 0);
        assert_ne!(kernel.structs.task_signal, kernel.structs.task_state);
        // int si_signo; int si_errno; int si_code; (not MIPS)
        assert_eq!(
            (kernel.structs.siginfo_errno, kernel.structs.siginfo_code),
            (4, 8)
        );
        // struct sigaction { __sighandler_t sa_handler; unsigned long sa_flags; ... }
        assert_eq!(
            kernel.structs.ksigaction_flags,
            kernel.structs.ksigaction_handler + 8
        );
        // struct upid { int nr; struct pid_namespace *ns; }: 16 bytes, nr first.
        let ns = pid_ns_offsets(&btf).unwrap();
        assert_eq!((ns.upid_size, ns.upid_nr), (16, 0));
        assert!(ns.pid_numbers > ns.pid_level, "{ns:?}");
        assert_ne!(ns.task_group_leader, ns.task_thread_pid);
        // struct fdtable { unsigned int max_fds; struct file **fd; ... }
        let file = file_offsets(&btf).unwrap();
        assert_eq!((file.fdt_max_fds, file.fdt_fd), (0, 8));
        assert_eq!(file.valid, 1);
        // struct sock_common { __be32 skc_daddr, skc_rcv_saddr; unsigned
        // int skc_hash; __be16 skc_dport; __u16 skc_num; unsigned short
        // skc_family; ... } (in anonymous unions), at the start of a sock.
        assert_eq!(file.sockets, 1);
        assert_eq!(
            (
                file.skc_daddr,
                file.skc_rcv_saddr,
                file.skc_dport,
                file.skc_num
            ),
            (0, 4, 12, 14)
        );
        assert_eq!(file.skc_family, 16);
        assert!(file.skc_v6_daddr < u32::MAX && file.sk_protocol > file.skc_v6_daddr);
    }
}
