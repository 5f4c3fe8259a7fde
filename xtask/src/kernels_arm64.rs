//! The arm64 VM of `cargo xtask kernels`: Debian 12's arm64 root (CPython
//! 3.11; made by `debootstrap --foreign` and finished under qemu's
//! user-mode emulator, `chroots`) as the initramfs, with the arm64 static
//! tracer, checks.py and its workloads, booted on qemu's `virt` machine.

use std::{fs, path::Path, path::PathBuf, process::Command};

use anyhow::{Context as _, Result};

use crate::{
    chroots, kernel_images, util,
    vm_image::{BUSYBOX_IN_VM, TRACER_IN_VM, WORKLOADS, in_new_dir, pack_cpio, write_executable},
};

/// qemu for an arm64 kernel, and the console device the kernel writes to.
pub fn qemu() -> (Command, &'static str) {
    let mut qemu = Command::new("qemu-system-aarch64");
    // A Cortex-A72: `-cpu max` has pointer authentication, whose QARMA5
    // TCG emulates slowly (a boot took 33 s against 9 s). Two vCPUs on
    // one host thread, as on x86-64 (`vm_image::TCG`).
    qemu.args([
        "-M",
        "virt",
        "-accel",
        crate::vm_image::TCG,
        "-cpu",
        "cortex-a72",
    ])
    .args(["-smp", crate::vm_image::VCPUS, "-m", "3072", "-nic", "none"]);
    (qemu, "ttyAMA0")
}

/// The arm64 initramfs: the root (cached), then the tracer, /init and the
/// checks with their workloads.
pub fn initramfs(tracer: &Path, init: &str, out_dir: &Path) -> Result<PathBuf> {
    let root = chroots::ensure_root("TRACER_ARM64_ROOT")?;
    let base = base(&root)?;
    let staging = out_dir.join("overlay-arm64");
    let _ = fs::remove_dir_all(&staging);
    fs::copy(
        tracer,
        in_new_dir(staging.join(TRACER_IN_VM.trim_start_matches('/')))?,
    )
    .with_context(|| format!("copying {}", tracer.display()))?;
    // The root's busybox-static, where /init expects one.
    fs::copy(
        root.join("bin/busybox"),
        staging.join(BUSYBOX_IN_VM.trim_start_matches('/')),
    )
    .context("copying the arm64 root's /bin/busybox")?;
    write_executable(&staging.join("init"), init)?;
    let tests = util::repo_root().join("tests");
    fs::copy(
        tests.join("kernels/checks.py"),
        in_new_dir(staging.join("checks/checks.py"))?,
    )?;
    for workload in WORKLOADS {
        let from = tests.join("workloads").join(workload);
        let name = Path::new(workload).file_name().expect("a file name");
        fs::copy(
            &from,
            in_new_dir(staging.join("checks/workloads").join(name))?,
        )
        .with_context(|| format!("copying {}", from.display()))?;
    }
    let overlay = out_dir.join("overlay-arm64.cpio.gz");
    pack_cpio(&staging, &overlay, &[])?;
    let initrd = out_dir.join("initrd-arm64.cpio.gz");
    let mut out = fs::File::create(&initrd)?;
    for part in [&base, &overlay] {
        std::io::copy(&mut fs::File::open(part)?, &mut out)
            .with_context(|| format!("appending {}", part.display()))?;
    }
    Ok(initrd)
}

/// The arm64 root as one gzip'd cpio archive, made once (delete it to make
/// it again), without what apt keeps and the documentation.
fn base(root: &Path) -> Result<PathBuf> {
    let base = kernel_images::cache_dir().join("base-arm64.cpio.gz");
    if base.is_file() {
        eprintln!("ok arm64 base initramfs {}", base.display());
        return Ok(base);
    }
    eprintln!("packing {} into {}", root.display(), base.display());
    fs::create_dir_all(kernel_images::cache_dir())?;
    let partial = base.with_extension("partial");
    pack_cpio(
        root,
        &partial,
        &[
            "./tmp/*",
            "./var/lib/apt/lists/*",
            "./var/cache/apt/*",
            "./usr/share/doc/*",
            "./usr/share/locale/*",
            "./usr/share/man/*",
        ],
    )?;
    fs::rename(&partial, &base)?;
    Ok(base)
}
