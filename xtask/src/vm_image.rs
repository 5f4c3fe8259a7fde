//! What the VMs of `cargo xtask kernels` share, whatever their
//! architecture: qemu's emulation and vCPUs, where the tracer, busybox and
//! the workloads are inside, and packing an initramfs.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};

use crate::util::{run, shell_quote};

/// Two vCPUs, so that the traced tasks, the load beside them and the
/// tracer run at once and preempt each other as on a real node; emulated
/// by one host thread (`thread=single`). Multi-threaded TCG runs a stale
/// translation of kernel text another vCPU has just patched: sid's 7.2
/// dies on the `int3` of a finished patch (`Oops: int3` at
/// `trace_syscall_enter+0xd`, the bytes there already the final `66 90`)
/// with no BPF at all, by turning the raw_syscalls trace events on and
/// off beside three processes calling `getppid` (6 runs in 6 oopsed
/// within seconds; with `thread=single`, 0 in 6: docs/development.md).
pub(crate) const TCG: &str = "tcg,thread=single";
pub(crate) const VCPUS: &str = "2";

/// Where the tracer is inside the VM.
pub(crate) const TRACER_IN_VM: &str = "/usr/local/bin/tracer";

/// Where busybox is inside the VM (the root's own tools stay as they are).
pub(crate) const BUSYBOX_IN_VM: &str = "/usr/local/bin/busybox";

/// The workloads the scenarios run (from tests/workloads), put in the VM's
/// /checks/workloads and in the trixie root's.
pub(crate) const WORKLOADS: &[&str] = &[
    "matrix_proc.py",
    "matrix_threads.py",
    "writes.py",
    "matrix_zombies.py",
    "signals_self.py",
    "killed_worker.py",
    "oom_worker.py",
    "memory_growth.py",
    "huge_page_collapse.py",
    "python_calibrated.py",
    "python_tree.py",
    "node_burn.py",
    "native/zlib_loop.py",
    "native/after_go.py",
];

/// `find | cpio -H newc | gzip -1` of `dir` into `out`, leaving out what
/// matches one of the `find -path` patterns of `skip`.
pub(crate) fn pack_cpio(dir: &Path, out: &Path, skip: &[&str]) -> Result<()> {
    pack_cpio_as(dir, ".", out, skip)
}

/// [`pack_cpio`] with every name under `prefix` in the archive: cpio reads
/// them through a symbolic link `prefix` -> `dir` in a scratch directory
/// (the link itself is not archived; the archive before this one must
/// make `prefix`'s directories).
pub(crate) fn pack_cpio_as(dir: &Path, prefix: &str, out: &Path, skip: &[&str]) -> Result<()> {
    let mut find = String::from("find . -mindepth 1");
    if !skip.is_empty() {
        let patterns: Vec<String> = skip
            .iter()
            .map(|p| format!("-path {}", shell_quote(p)))
            .collect();
        write!(find, " \\( {} \\) -prune -o", patterns.join(" -o ")).unwrap();
    }
    find.push_str(" -print0");
    let dir = fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let (from, names) = if prefix == "." {
        (dir, String::new())
    } else {
        let scratch = out.with_extension("links");
        let _ = fs::remove_dir_all(&scratch);
        let link = scratch.join(prefix);
        fs::create_dir_all(link.parent().expect("prefix has a parent"))?;
        std::os::unix::fs::symlink(&dir, &link)?;
        (scratch, format!(" | sed -z 's,^\\.,{prefix},'"))
    };
    let script = format!(
        "set -o pipefail; cd \"$1\" && (cd \"$1/{prefix}\" && {find}){names} \
         | cpio --null -o -H newc --quiet | gzip -1 > \"$2\""
    );
    run(Command::new("bash")
        .args(["-c", &script, "pack"])
        .arg(&from)
        .arg(out))
}

/// `path`, its directory made: where a file is copied to.
pub(crate) fn in_new_dir(path: PathBuf) -> Result<PathBuf> {
    fs::create_dir_all(path.parent().expect("a file in a directory"))?;
    Ok(path)
}

pub(crate) fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}
