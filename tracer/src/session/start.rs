//! What a trace starts with, before the loop: every program loaded and
//! attached, the target adopted as it is now (`--pid`: its threads,
//! descendants and zombies) or launched held before `exec`, a first look
//! for its Python processes, and the target as the report's root process.

use crate::{
    analysis::{Collector, World},
    cli::Args,
    host::procfs,
    host::scope::Scope,
    kernel::probes::{ProbeError, ProbeSettings, Probes},
    native::NativeMode,
    python::{PythonTree, discovery::Discovery, interpreter},
    report::Target as ReportTarget,
    session::python_refresh,
    session::target::{Target, TargetError},
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
}

/// Reads the kernel's layout (BTF offsets), loads and
/// attaches every program. Warnings go to the collector.
pub fn load_probes(
    args: &Args,
    scope: Option<&Scope>,
    collector: &mut Collector,
) -> Result<Probes, ProbeError> {
    let mut warnings = Vec::new();
    let settings = collector.settings();
    let mut probes = Probes::load(
        &ProbeSettings {
            follow_children: !args.no_children,
            sample_rate: settings.python_rate_hz,
            fault_period: settings.fault_period,
            timeline: settings.timeline,
            one_off: !settings.continuous,
            scope: scope.map(Scope::config).unwrap_or_default(),
            loop_stall_ns: settings.loop_stall_ns,
            native_blocks: if settings.native != NativeMode::Off {
                crate::native::TABLE_BLOCKS
            } else {
                0
            },
        },
        &mut warnings,
    )?;
    if collector.settings().count_entries
        && let Err(err) = probes.load_entry_counter()
    {
        collector.set_entries_error(err.to_string());
    }
    if collector.settings().python_rate_hz.is_some()
        && let Err(err) = probes.load_signal_check()
    {
        warnings.push(format!(
            "when Python signal handlers run is not traced (the uprobe did not load: {err})"
        ));
    }
    // Asked for (by default) and sampled, but not unwound: this kernel.
    if !args.no_python && args.native != collector.settings().native {
        warnings.push(NATIVE_NEEDS_BPF_LOOP.into());
    }
    probes.warnings.append(&mut warnings);
    Ok(probes)
}

/// What a kernel without `bpf_loop` lacks of the sampler: the Python
/// frames are walked in tail-called pieces there, the native unwind not.
const NATIVE_NEEDS_BPF_LOOP: &str = "this kernel has no bpf_loop (Linux 5.17): \
     native frames (C extensions, libraries) are not unwound under the Python frames";

/// `--pid`: traces the process, its threads and (unless `--no-children`)
/// its descendants as they are now, and the zombies they already have.
/// Returns the target and its thread count besides the main thread.
pub fn adopt(
    args: &Args,
    probes: &mut Probes,
    (collector, world): (&mut Collector, &mut World),
    target: Target,
) -> Result<(Target, u32), ProbeError> {
    let mut traced = vec![target.pid];
    if !args.no_children {
        traced.extend(procfs::descendants(target.pid));
    }
    let root_threads = adopt_processes(probes, (collector, world), &traced, Some(target.pid))?;
    world.files.remember_open_fds(target.pid);
    probes.sample_existing_threads(&traced);
    Ok((target, root_threads))
}

/// A node-wide trace: every process in the scope now. Those forked while
/// this runs by a process not yet traced are found by looking again, until
/// a look finds none new (a fork by a traced process is followed by the
/// kernel). The Python sampler runs on every CPU.
pub fn adopt_scope(
    scope: &Scope,
    probes: &mut Probes,
    (collector, world): (&mut Collector, &mut World),
) -> Result<Vec<u32>, ProbeError> {
    const MAX_LOOKS: usize = 8;
    let mut traced: Vec<u32> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_LOOKS {
        let new: Vec<u32> = scope
            .processes()
            .into_iter()
            .filter(|pid| seen.insert(*pid))
            .collect();
        if new.is_empty() {
            break;
        }
        adopt_processes(probes, (collector, world), &new, None)?;
        traced.extend(new);
    }
    probes.sample_cpus();
    Ok(traced)
}

/// Puts `traced` (and their threads) in the kernel's traced set and the
/// report's processes, the zombies they have too. Returns the thread count
/// of `root` besides its main thread.
fn adopt_processes(
    probes: &mut Probes,
    (collector, world): (&mut Collector, &mut World),
    traced: &[u32],
    root: Option<u32>,
) -> Result<u32, ProbeError> {
    let mut root_threads = 0;
    for &pid in traced {
        probes.trace_pid(pid)?;
        let mut threads = 0;
        for tid in procfs::threads(pid) {
            if tid != pid {
                probes.trace_thread(tid, pid)?;
                threads += 1;
            }
        }
        if Some(pid) == root {
            root_threads = threads;
        } else {
            let (comm, ppid, argv) = procfs::describe(pid);
            collector.add_process(world, (pid, ppid), (&comm, &argv), threads, false);
        }
    }
    // Zombies that predate the trace: listed, and their reaping watched.
    for zombie in procfs::zombie_children(traced) {
        probes.watch_zombie(zombie.pid, collector.settings().base_ns)?;
        collector.add_zombie(&zombie);
    }
    Ok(root_threads)
}

/// Launch mode: the command is held before `exec` until it is traced.
pub fn launch(args: &Args, probes: &mut Probes) -> Result<Target, StartError> {
    let mut target = match args.live {
        true => Target::spawn_held_detached(&args.command)?,
        false => Target::spawn_held(&args.command)?,
    };
    probes.trace_pid(target.pid)?;
    // Held before exec: one inherited event covers every thread and child
    // it will have.
    probes.sample_threads(&[target.pid]);
    // And by its exec, until its interpreter is looked for (`python_tree`).
    if !args.no_python {
        target.hold_at_exec();
    }
    target.release()?;
    target.wait_for_exec_stop();
    Ok(target)
}

/// Stops of a command stepped while its loader maps libpython (the loader
/// makes a few dozen system calls before that, two stops each).
const LOADER_STOPS: u32 = 2_000;

/// Launch mode, the command stopped by its exec and its interpreter not
/// found: an executable that names a libpython has it mapped by the
/// dynamic loader after the exec, so the command is stepped a system call
/// at a time until the library's data is mapped and its interpreter is
/// known (at most [`LOADER_STOPS`] stops). The stops come before and after
/// each system call's traced run: none is timed longer.
pub fn hold_until_loaded(
    target: &mut Target,
    probes: &mut Probes,
    (collector, world): (&mut Collector, &mut World),
) -> Result<(), ProbeError> {
    let pid = target.pid;
    let searching = |world: &World| {
        world
            .python
            .as_ref()
            .and_then(|tree| tree.process(pid))
            .is_some_and(|p| matches!(p.discovery(), Discovery::Searching(_)))
    };
    if !target.stopped_at_exec()
        || !searching(world)
        || !procfs::exe(pid).is_some_and(|exe| interpreter::names_libpython(exe.as_ref()))
    {
        return Ok(());
    }
    let set_loading = |world: &mut World, loading: bool| {
        if let Some(tree) = world.python.as_mut() {
            tree.set_loading(pid, loading);
        }
    };
    set_loading(world, true);
    let mut stops = 0;
    let mut looked = Ok(());
    while stops < LOADER_STOPS && target.step_to_syscall() {
        stops += 1;
        let mapped = procfs::maps(pid).is_ok_and(|maps| {
            maps.lines()
                .any(|line| line.contains(" rw-p ") && line.contains("libpython"))
        });
        if mapped {
            looked = python_refresh::refresh(probes, collector, world);
            if looked.is_err() || !searching(world) {
                break;
            }
        }
    }
    set_loading(world, false);
    looked?;
    log::info!("pid {pid}: stepped through {stops} system call stops while its loader ran");
    Ok(())
}

/// Unless `--no-python` (or the sampler could not load): the Python
/// processes of the target (or, `in_scope`, of a node-wide trace) are
/// looked for, a first time, and every Python thread's stack when tracing
/// starts is kept.
pub fn python_tree(
    args: &Args,
    target: &Target,
    in_scope: Option<&[u32]>,
    probes: &mut Probes,
    (collector, world): (&mut Collector, &mut World),
) -> Result<(), ProbeError> {
    if args.no_python || probes.sampler_error.is_some() {
        return Ok(());
    }
    let mut tree = match in_scope {
        Some(pids) => {
            let mut tree = PythonTree::node_wide(args.read_stacks);
            pids.iter().for_each(|&pid| tree.add(pid));
            tree
        }
        None => PythonTree::new(target.pid, args.read_stacks),
    };
    // Stopped by its exec, the kernel side has dropped what it had: its new
    // program is looked at now. Else its exec's record is waited for (a look
    // before it would publish what the exec then drops).
    if target.launched && probes.sees_exec() {
        match target.stopped_at_exec() {
            true => tree.held_at_exec(target.pid),
            false => tree.await_exec(target.pid),
        }
    }
    if !target.launched && !args.no_children && in_scope.is_none() {
        for pid in procfs::descendants(target.pid) {
            tree.add(pid);
        }
    }
    world.python = Some(tree);
    python_refresh::refresh(probes, collector, world)?;
    collector.snapshot_threads(world, false);
    Ok(())
}

/// The target as the report's root process; returns its name.
pub fn add_root(
    args: &Args,
    target: &Target,
    (collector, world): (&mut Collector, &mut World),
    threads: u32,
) -> String {
    let launched_argv = || -> Vec<String> {
        args.command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    let (comm, argv) = match target.describe() {
        // A launched command that has already exited is a zombie, whose
        // cmdline reads empty: its argv is the command launched.
        Ok((comm, argv)) if argv.is_empty() && target.launched => (comm, launched_argv()),
        Ok(described) => described,
        // It may already have exited; the report still has what it did.
        Err(_) => (
            args.command
                .first()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
            launched_argv(),
        ),
    };
    let ppid = if target.launched {
        std::process::id()
    } else {
        procfs::stat(target.pid).map_or(0, |s| s.ppid)
    };
    collector.add_process(world, (target.pid, ppid), (&comm, &argv), threads, true);
    collector.set_target(ReportTarget {
        pid: target.pid,
        comm: comm.clone(),
        argv,
        ..ReportTarget::default()
    });
    comm
}

/// `--pid` or a command: the target as the report's root process, and
/// (`--pid`) the line that says tracing has begun.
pub fn start_target(
    args: &Args,
    target: &Target,
    (collector, world): (&mut Collector, &mut World),
    threads: u32,
) -> Result<(), TargetError> {
    let comm = add_root(args, target, (collector, world), threads);
    if !target.launched {
        if !target.is_alive() {
            return Err(TargetError::Gone { pid: target.pid });
        }
        // Like strace's "Process N attached": from here on nothing is missed.
        if !args.quiet {
            eprintln!(
                "tracer: tracing pid {} ({comm}); Ctrl-C to stop and print the report",
                target.pid
            );
        }
    }
    Ok(())
}

/// What `--native` asks for, where stacks are sampled: not with
/// `--no-python`, nor on a kernel without `bpf_loop` (its unwinder's
/// searches are `bpf_loop`s; a warning says so, [`NATIVE_NEEDS_BPF_LOOP`]).
pub fn native_mode(args: &Args) -> NativeMode {
    if args.no_python || !crate::kernel::probes::Features::of_this_kernel().bpf_loop {
        NativeMode::Off
    } else {
        args.native
    }
}
