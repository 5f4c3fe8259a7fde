//! `--pid PID --dump`: where every Python thread of the process (and of its
//! children) is now, read from their memory, like `py-spy dump`; nothing is
//! loaded into the kernel.

use crate::{
    analysis::{Collector, Settings, World},
    cli::Args,
    host::{self, procfs},
    python::PythonTree,
    report::Report,
    session::run_error::RunError,
    session::start,
    session::target::{Target, TargetError},
};

/// `--dump`: every Python thread's stack now, read from the processes'
/// memory; nothing is loaded into the kernel.
pub fn dump(args: &Args) -> Result<Report, RunError> {
    let pid = args.pid.ok_or(TargetError::DumpWithoutPid)?;
    let target = Target::attach(pid)?;
    let settings = Settings {
        base_ns: host::clock::monotonic_ns(),
        dump: true,
        ..Settings::default()
    };
    let mut world = World::new(
        &settings,
        Box::new(crate::session::host_system::HostSystem::default()),
    );
    let mut collector = Collector::new(settings);
    let mut tree = PythonTree::new(target.pid, 0);
    if !args.no_children {
        for pid in procfs::descendants(target.pid) {
            tree.add(pid);
        }
    }
    // The look for each interpreter, then each one's thread list.
    tree.refresh();
    world.python = Some(tree);
    collector.snapshot_threads(&mut world, false);
    start::add_root(args, &target, (&mut collector, &mut world), 0);
    Ok(collector.finish_dump(&mut world))
}
