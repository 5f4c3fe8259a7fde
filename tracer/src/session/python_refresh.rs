//! The loop's Python step, between `python/` (which knows nothing of the
//! kernel side) and the probes: each interpreter found is told to the
//! sampler (its offsets, its threads' state addresses, its signal handler
//! table), gets the signal-check uprobe and (`--count-entries`) the entry
//! counter, and the new stacks of the kernel-side Python maps are named
//! while their processes are alive.

use super::loop_watch::timed;
use crate::{
    analysis::{Collector, World},
    host::procfs,
    kernel::probes::{ProbeError, Probes},
    native::NativeStacks,
};

/// Looks for interpreters not found yet, re-publishes every process's
/// tid -> thread state map, and symbolizes the new stacks of the
/// kernel-side Python maps.
pub fn refresh(
    probes: &mut Probes,
    collector: &mut Collector,
    world: &mut World,
) -> Result<(), ProbeError> {
    let Some(tree) = world.python.as_mut() else {
        return Ok(());
    };
    let updates = timed("python: the processes looked at", || tree.refresh());
    let mut ready = false;
    let mut sampled = Vec::new();
    let mut configured = Vec::new();
    // Processes whose signal checks the uprobe sees, and since when.
    let mut checks_seen = Vec::new();
    for (pid, update) in updates {
        if update.config.is_some() {
            configured.push(pid);
        }
        if update.config.is_some()
            && let Some(found) = tree.process(pid).and_then(|p| p.ready())
        {
            // Its files can then be described after it exits, inside its root.
            let root = found.place.root.as_deref().unwrap_or("/");
            world.files.note_root(pid, root);
        }
        if let Some((path, offset)) = &update.eval_frame
            && collector.settings().count_entries
            && collector.entries_error().is_none()
            && let Err(err) = timed("python: the entry counter attached", || {
                probes.attach_entry_counter(path, *offset, pid)
            })
        {
            // With the cause (e.g. the process has already exited).
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            collector.set_entries_error(message);
        }
        if let Some(config) = update.config {
            probes.set_python_config(pid, config)?;
        }
        probes.update_python_threads(&update.insert, &update.remove)?;
        sampled.extend(update.insert.iter().map(|&(tid, _)| (pid, tid)));
        // After the sampler has the process; attached on a thread of its
        // own (a uprobe takes milliseconds), the loop goes on draining.
        // A process gone already (a short-lived fork) needs no probe; the
        // next process running the same file gets it.
        if let Some((path, offsets)) = &update.signal_checks {
            match timed("python: the signal checks attached", || {
                probes.attach_signal_checks(path, offsets, pid)
            }) {
                // Its configuration was published above: the program
                // sees its checks from now.
                Ok(true) => checks_seen.push((pid, crate::host::clock::monotonic_ns())),
                Ok(false) => {}
                Err(err) if procfs::exists(pid) && !procfs::is_zombie(pid) => {
                    collector.warn(format!(
                        "when Python signal handlers run is not traced: {err}"
                    ));
                }
                Err(_) => {}
            }
        }
    }
    for (pid, since_ns) in checks_seen {
        collector.on_signal_checks_seen(pid, since_ns);
    }
    for (attached, pids) in probes.signal_checks_attached() {
        for pid in pids {
            collector.on_signal_checks_seen(pid, attached.at_ns);
        }
        match attached.result {
            Ok(took) => log::info!(
                "signal checks of {} probed after {took:?}",
                attached.path.display()
            ),
            // Seen through a process gone already (a short-lived fork): the
            // next process running the file gets the probe.
            Err(err) if err.file_gone() => log::info!("{err}"),
            Err(err) => collector.warn(format!(
                "when Python signal handlers run is not traced: {err}"
            )),
        }
    }
    if let Some(native) = world.native.as_mut() {
        timed("native: published", || {
            publish_native(probes, &mut native.stacks, configured)
        })?;
        native
            .stacks
            .warnings
            .drain(..)
            .for_each(|warning| collector.warn(warning));
    }
    if let Some(tree) = &world.python {
        ready = tree.processes().any(|p| p.ready().is_some());
    }
    // (--serve keeps no stacks of kernel events.) A new stack is named as
    // its record comes: the maps are read again only when a record may
    // have been lost since (a stack never told), not every time. A full
    // table is 16,384 rows and a syscall each: a walk of a million files
    // spent a third of the tracer's time there, and fell behind.
    if ready && !collector.settings().continuous {
        let unsent = probes.drops()?[tracer_common::drops::RINGBUF as usize];
        if world.unsent_when_python_maps_read != Some(unsent) {
            let entries = if collector.settings().count_entries {
                probes.python_entries()?
            } else {
                Vec::new()
            };
            let stacks = timed("python: the stacks' maps read", || {
                probes.python_event_stacks()
            })?;
            collector.on_python_maps(world, &stacks, &entries);
            world.unsent_when_python_maps_read = Some(unsent);
        }
    }
    // After the threads are published (start-up is when a fork or a read
    // may come first): CPython's signal handler tables, which the kernel
    // side reads each delivery's handler from.
    let handlers = timed("python: the signal handlers read", || {
        collector.read_signal_handlers(world)
    });
    for (pid, config) in handlers {
        probes.set_python_config(pid, config)?;
        // Said once the kernel side has it: a handler fired from now on is
        // named from the table (the tests' handshake waits for this line).
        if config.signal_handlers != 0 {
            log::info!(
                "pid {pid}: Python signal handlers known (table at {:#x})",
                config.signal_handlers
            );
        }
    }
    for (pid, tid) in sampled {
        log::info!("pid {pid}: Python thread {tid} is sampled from now on");
    }
    world.python_dirty = false;
    Ok(())
}

/// `--native`: the mappings of each process whose interpreter was just
/// found, and again of those whose samples met code outside them (a
/// library loaded since), with the unwind tables of binaries not seen
/// before, to the kernel's unwinder. Tables first: a process's mappings
/// point into them.
fn publish_native(
    probes: &mut Probes,
    native: &mut NativeStacks,
    configured: Vec<u32>,
) -> Result<(), ProbeError> {
    // Binaries read since (on the learner's thread), and the processes
    // that waited for them.
    if native.poll() {
        log::info!(
            "native: {} binaries, {} table rows so far",
            native.counts.binaries,
            native.counts.rows
        );
    }
    for pid in configured.into_iter().chain(native.stale()) {
        let started = std::time::Instant::now();
        if native.load(pid) {
            log::info!(
                "pid {pid}: native mappings read in {:?}{}",
                started.elapsed(),
                if native.knows_mappings(pid) {
                    ""
                } else {
                    " (binaries being read)"
                }
            );
        }
    }
    let (rows, mappings) = native.take_writes();
    for (block, rows) in rows {
        probes.write_native_rows(block, &rows)?;
    }
    for (pid, mappings) in mappings {
        probes.set_native_mappings(pid, &mappings)?;
        // (The tests' handshake waits for this line.)
        log::info!(
            "pid {pid}: native mappings published ({} binaries mapped)",
            mappings.count
        );
    }
    Ok(())
}
