//! `cargo xtask dist`: what users install, in `target/dist/`:
//!
//! * `tracer`: the tracer linked statically (glibc with `crt-static`), the
//!   BPF object embedded as in every build; it runs on any x86_64 Linux
//!   userland;
//! * `tracer_ebpf-VERSION-py3-none-manylinux_2_17_x86_64....whl`: that
//!   binary as a wheel's script (`pip install` puts `tracer` on PATH);
//! * `tracer_VERSION_amd64.deb`: /usr/bin/tracer, the man page and the
//!   bash, zsh and fish completions where Debian keeps them (dpkg-deb);
//! * `image/`: a Containerfile `FROM scratch` with that binary alone, ready
//!   for `podman build` / `docker build`;
//! * with `--target aarch64`: the same for arm64, cross-built (Debian's
//!   gcc-aarch64-linux-gnu links it; it must say its version under qemu's
//!   user-mode emulator): `arm64/tracer`, the `manylinux_2_17_aarch64`
//!   wheel, `tracer_VERSION_arm64.deb`, `image-arm64/`; and
//!   `tracer-VERSION-image.tar`, both images under one manifest list (an
//!   OCI archive: `podman load`, or `skopeo copy` to a registry);
//! * `tracer.1` and `completions/`: the man page and completions alone,
//!   printed by the binary itself (`tracer --generate KIND`, clap_mangen and
//!   clap_complete: made from the same definition as `--help`).
//!
//! `--check` then installs each one and runs it (see `dist_check`).

use std::{
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::{
    arch::Arch,
    setup,
    util::{repo_root, run, target_dir, tool_command},
    wheel,
};

#[derive(Args)]
pub struct DistArgs {
    /// Then install and run each artifact: the binary in a Debian bullseye
    /// root and on this host, the wheel in a new venv, the .deb in a copy
    /// of the bullseye root (needs root)
    #[arg(long)]
    pub check: bool,
    /// Also build for this architecture (repeatable): aarch64 (arm64,
    /// cross-built). x86_64 is always built. With more than one, a
    /// multi-arch image archive too.
    #[arg(long = "target", value_enum, value_name = "ARCH")]
    pub targets: Vec<Arch>,
}

/// The version of every workspace crate, hence of the packages.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `dist` wrote: the host's artifacts, then the other architectures'.
pub struct Artifacts {
    pub dir: PathBuf,
    pub binary: PathBuf,
    pub wheel: PathBuf,
    pub deb: PathBuf,
    /// The image's build context: Containerfile and tracer.
    pub image: PathBuf,
    pub others: Vec<ArchArtifacts>,
    /// `tracer-VERSION-image.tar`: every architecture's image under one
    /// manifest list (an OCI archive), when there is more than one.
    pub image_archive: Option<PathBuf>,
}

/// One architecture's artifacts.
pub struct ArchArtifacts {
    pub arch: Arch,
    pub binary: PathBuf,
    pub wheel: PathBuf,
    pub deb: PathBuf,
    pub image: PathBuf,
}

/// Set-up, then the artifacts built (`--check` is run on them by the
/// caller, `dist_check`).
pub fn dist(args: &DistArgs) -> Result<Artifacts> {
    if args.check {
        crate::util::require_root("dist --check", "sudo -E cargo xtask dist --check")?;
    }
    setup::setup()?;
    setup::ensure_apt(crate::packages::DIST)?;
    let others: Vec<Arch> = args
        .targets
        .iter()
        .copied()
        .filter(|&arch| arch != Arch::HOST)
        .fold(Vec::new(), |mut all, arch| {
            if !all.contains(&arch) {
                all.push(arch);
            }
            all
        });
    if !others.is_empty() {
        setup::ensure_apt(crate::packages::CROSS)?;
    }
    build(&others)
}

/// Builds the static binaries and packs them; returns where everything
/// went.
pub fn build(others: &[Arch]) -> Result<Artifacts> {
    let dir = target_dir().join("dist");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    fs::create_dir_all(dir.join("completions"))?;
    let built = build_static(Arch::HOST)?;
    let binary = dir.join("tracer");
    fs::copy(&built, &binary).with_context(|| format!("copying {}", built.display()))?;
    ensure_static(&binary, Arch::HOST)?;

    // The man page and completions: the host's binary prints them (every
    // architecture's are the same).
    let man_page = generate(&binary, "man")?;
    write(&dir.join("tracer.1"), &man_page, 0o644)?;
    let completions = [
        ("bash", "tracer", "usr/share/bash-completion/completions"),
        ("zsh", "_tracer", "usr/share/zsh/vendor-completions"),
        ("fish", "tracer.fish", "usr/share/fish/vendor_completions.d"),
    ];
    let mut generated = Vec::new();
    for (shell, file, deb_dir) in completions {
        let script = generate(&binary, shell)?;
        write(&dir.join("completions").join(file), &script, 0o644)?;
        generated.push((Path::new(deb_dir).join(file), script));
    }
    let description = package_description()?;
    let pack = |arch: Arch, binary: &Path, image: &Path| -> Result<(PathBuf, PathBuf)> {
        let bytes = fs::read(binary)?;
        let wheel = dir.join(wheel::file_name(VERSION, arch.wheel_platform()));
        let meta = wheel::Metadata {
            version: VERSION,
            platform: arch.wheel_platform(),
            summary: &description,
            license: LICENSE,
            description: &wheel_readme(),
        };
        write(&wheel, &wheel::build(&meta, &bytes, &man_page)?, 0o644)?;
        let deb = dir.join(format!("tracer_{VERSION}_{}.deb", arch.debian()));
        build_deb(&deb, arch, &bytes, &man_page, &generated, &description)?;
        fs::create_dir_all(image)?;
        fs::hard_link(binary, image.join("tracer"))?;
        write(
            &image.join("Containerfile"),
            CONTAINERFILE.as_bytes(),
            0o644,
        )?;
        for path in [binary, &wheel, &deb] {
            let size = fs::metadata(path)?.len();
            eprintln!(
                "wrote {} ({:.1} MiB)",
                path.display(),
                size as f64 / 1048576.0
            );
        }
        Ok((wheel, deb))
    };
    let image = dir.join("image");
    let (wheel, deb) = pack(Arch::HOST, &binary, &image)?;

    let mut built_others = Vec::new();
    for &arch in others {
        let built = build_static(arch)?;
        let arch_dir = dir.join(arch.debian());
        fs::create_dir_all(&arch_dir)?;
        let binary = arch_dir.join("tracer");
        fs::copy(&built, &binary).with_context(|| format!("copying {}", built.display()))?;
        ensure_static(&binary, arch)?;
        ensure_runs(&binary, arch)?;
        let image = dir.join(format!("image-{}", arch.debian()));
        let (wheel, deb) = pack(arch, &binary, &image)?;
        built_others.push(ArchArtifacts {
            arch,
            binary,
            wheel,
            deb,
            image,
        });
    }
    let image_archive = if built_others.is_empty() {
        None
    } else {
        let mut images = vec![(Arch::HOST, image.clone())];
        images.extend(built_others.iter().map(|a| (a.arch, a.image.clone())));
        Some(crate::dist_image::multi_arch_archive(
            &dir, &images, VERSION,
        )?)
    };
    eprintln!(
        "wrote {}, {} and {}",
        dir.join("tracer.1").display(),
        dir.join("completions").display(),
        image.display()
    );
    Ok(Artifacts {
        dir,
        binary,
        wheel,
        deb,
        image,
        others: built_others,
        image_archive,
    })
}

/// The image: the static binary and nothing else (it reads the host
/// through /proc and /sys); deploy/Containerfile, the one the DaemonSet of
/// deploy/kubernetes runs.
const CONTAINERFILE: &str = include_str!("../../deploy/Containerfile");

/// `cargo build --release -p tracer --target TRIPLE` with `crt-static`
/// (and the cross linker for another architecture); the binary is
/// `target/TRIPLE/release/tracer`. `--target` keeps `crt-static` off the
/// build scripts and proc macros (which cannot be static) and the static
/// build apart from `target/release`.
pub fn build_static(arch: Arch) -> Result<PathBuf> {
    crate::arch::ensure_rust_target(arch)?;
    run(&mut static_build(arch))?;
    Ok(target_dir().join(arch.rust_target()).join("release/tracer"))
}

/// `cargo build --release -p tracer --target ARCH`, statically linked.
fn static_build(arch: Arch) -> Command {
    let mut cmd = tool_command("cargo");
    cmd.args([
        "build",
        "--release",
        "-p",
        "tracer",
        "--target",
        arch.rust_target(),
    ])
    .envs(arch.cargo_env());
    cmd
}

/// [`build_static`] beside other work, its output in
/// `target/static-ARCH.log`: says in one line how it went. A failure is
/// only said here: the caller builds again where it needs the binary, and
/// that build's error is the one that counts.
pub fn build_static_in_background(arch: Arch) {
    let log = target_dir().join(format!("static-{}.log", arch.rust_target()));
    eprintln!(
        "building the static {} tracer beside the tests (log {})",
        arch.rust_target(),
        log.display()
    );
    let started = std::time::Instant::now();
    let built = crate::arch::ensure_rust_target(arch).and_then(|()| {
        let out = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let status = static_build(arch)
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()?;
        anyhow::ensure!(status.success(), "{status}: see {}", log.display());
        Ok(())
    });
    match built {
        Ok(()) => eprintln!(
            "built the static {} tracer beside the tests in {:.0} s",
            arch.rust_target(),
            started.elapsed().as_secs_f64()
        ),
        Err(err) => eprintln!(
            "note: the static {} tracer could not be built beside the tests ({err:#}); \
             it is built again before its VMs",
            arch.rust_target()
        ),
    }
}

/// A cross-built binary starts (under qemu's user-mode emulator) and says
/// its version.
fn ensure_runs(binary: &Path, arch: Arch) -> Result<()> {
    let out = arch
        .command(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} ({arch:?})", binary.display()))?;
    let printed = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || printed != format!("tracer {VERSION}\n") {
        bail!(
            "{} --version printed {printed:?} ({}): {}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("ok {} runs: {}", binary.display(), printed.trim());
    Ok(())
}

/// Fails unless `binary` asks for no interpreter and no shared library
/// (`readelf`: no INTERP segment, no NEEDED entry; a static-pie still has a
/// dynamic section, for its own relocations).
pub fn ensure_static(binary: &Path, arch: Arch) -> Result<()> {
    let out = Command::new("readelf")
        .args(["--wide", "--program-headers", "--dynamic"])
        .arg(binary)
        .output()
        .context("running readelf (binutils)")?;
    if !out.status.success() {
        bail!(
            "readelf failed on {}: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dynamic: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("INTERP") || l.contains("(NEEDED)"))
        .collect();
    if !dynamic.is_empty() {
        bail!(
            "{} is not static:\n{}",
            binary.display(),
            dynamic.join("\n")
        );
    }
    eprintln!("ok {} is static (no INTERP, no NEEDED)", binary.display());
    ensure_no_nss(binary, arch)
}

/// glibc's name services (users, groups, hosts) load their modules with
/// dlopen, which a static binary can do only with the shared glibc of the
/// version it was built with: such a call must never be linked in. std
/// and tokio call them only to resolve names, which the tracer never does
/// (`--serve` takes a numeric address); this keeps it so.
fn ensure_no_nss(binary: &Path, arch: Arch) -> Result<()> {
    const NSS: &[&str] = &[
        "getaddrinfo",
        "gethostbyname",
        "gethostbyname_r",
        "gethostbyname2_r",
        "getpwnam",
        "getpwnam_r",
        "getpwuid",
        "getpwuid_r",
        "getgrnam_r",
        "getgrgid_r",
        "getgrouplist",
        "initgroups",
    ];
    let out = Command::new(arch.nm())
        .arg("--defined-only")
        .arg(binary)
        .output()
        .context("running nm (binutils)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.is_empty() {
        bail!(
            "nm found no symbols in {} (stripped?): cannot check it calls no name service",
            binary.display()
        );
    }
    let linked: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|name| NSS.contains(name))
        .collect();
    if !linked.is_empty() {
        bail!(
            "{} links glibc name-service calls ({}), which load modules with dlopen: \
             unsound in a static binary (see docs/install.md)",
            binary.display(),
            linked.join(", ")
        );
    }
    eprintln!("ok {} calls no glibc name service", binary.display());
    Ok(())
}

/// `tracer --generate KIND`: the man page or a completion script.
fn generate(binary: &Path, kind: &str) -> Result<Vec<u8>> {
    let out = Command::new(binary)
        .args(["--generate", kind])
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!(
            "`{} --generate {kind}` failed ({}): {}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

const LICENSE: &str = "MIT OR Apache-2.0";
const MAINTAINER: &str = "tracer developers <tracer@localhost>";

/// The tracer crate's `description`, the packages' one-line summary.
fn package_description() -> Result<String> {
    let manifest = repo_root().join("tracer/Cargo.toml");
    let text = fs::read_to_string(&manifest)?;
    text.lines()
        .find_map(|l| l.strip_prefix("description = \""))
        .and_then(|l| l.strip_suffix('"'))
        .map(str::to_owned)
        .with_context(|| format!("no description in {}", manifest.display()))
}

/// The wheel's long description (its page on a package index).
fn wheel_readme() -> String {
    "# tracer\n\n\
     An eBPF kernel tracer for Python processes: every file and socket a process \
     reads, its context switches, signals, child processes and zombies, and its \
     hot Python functions and lines by CPU sampling in the kernel (CPython 3.8 \
     and later, free-threaded builds too), in one report; flame graphs, pprof, \
     Perfetto timelines and a Prometheus endpoint.\n\n\
     This wheel carries the statically linked `tracer` binary (x86_64 Linux); \
     `pip install tracer-ebpf` puts it on PATH. It needs root (or CAP_BPF and \
     CAP_PERFMON) and a kernel with BPF and BTF.\n\n\
     ```\n\
     sudo tracer --pid 1234                # attach to a running process\n\
     sudo tracer -- python3 app.py         # launch and trace from the first instruction\n\
     tracer --generate bash > ~/.local/share/bash-completion/completions/tracer\n\
     ```\n"
        .to_owned()
}

/// Lays out the package tree and has `dpkg-deb` build it (owned by root,
/// whoever builds it).
fn build_deb(
    deb: &Path,
    arch: Arch,
    binary: &[u8],
    man_page: &[u8],
    completions: &[(PathBuf, Vec<u8>)],
    description: &str,
) -> Result<()> {
    let tree = deb.with_extension("tree");
    if tree.exists() {
        fs::remove_dir_all(&tree)?;
    }
    write(&tree.join("usr/bin/tracer"), binary, 0o755)?;
    write(
        &tree.join("usr/share/man/man1/tracer.1.gz"),
        &gzip(man_page)?,
        0o644,
    )?;
    for (path, script) in completions {
        write(&tree.join(path), script, 0o644)?;
    }
    write(
        &tree.join("usr/share/doc/tracer/copyright"),
        COPYRIGHT.as_bytes(),
        0o644,
    )?;
    let installed_kib = installed_size(&tree)?;
    let control = format!(
        "Package: tracer\n\
         Version: {VERSION}\n\
         Architecture: {}\n\
         Maintainer: {MAINTAINER}\n\
         Installed-Size: {installed_kib}\n\
         Section: utils\n\
         Priority: optional\n\
         Description: {description}\n\
         {}",
        arch.debian(),
        debian_long_description()
    );
    write(&tree.join("DEBIAN/control"), control.as_bytes(), 0o644)?;
    // write() makes directories with the umask's mode: Debian wants 0755.
    set_dir_modes(&tree)?;
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(deb))?;
    fs::remove_dir_all(&tree)?;
    Ok(())
}

/// The control file's extended description: each line indented by a space.
fn debian_long_description() -> String {
    [
        "Attaches eBPF programs to a running CPython process (or launches one)",
        "and reports what the kernel did to it and on behalf of which Python",
        "code: reads per file and socket, context switches, signals, child",
        "processes and zombies, and hot Python functions and lines from CPU",
        "sampling in the kernel. Exports flame graphs, pprof, Perfetto traces",
        "and Prometheus metrics. Statically linked; needs a kernel with BPF",
        "and BTF, and root (or CAP_BPF and CAP_PERFMON).",
    ]
    .iter()
    .map(|line| format!(" {line}\n"))
    .collect()
}

const COPYRIGHT: &str = "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tracer

Files: *
Copyright: the tracer developers
License: MIT or Apache-2.0
 Licensed under either of the MIT license or the Apache License, Version 2.0,
 at your option. On Debian systems the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
";

/// Debian's Installed-Size: the files' sizes, in KiB rounded up.
fn installed_size(tree: &Path) -> Result<u64> {
    let mut bytes = 0;
    let mut dirs = vec![tree.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                bytes += meta.len();
            }
        }
    }
    Ok(bytes.div_ceil(1024))
}

fn set_dir_modes(tree: &Path) -> Result<()> {
    fs::set_permissions(tree, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(tree)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            set_dir_modes(&entry.path())?;
        }
    }
    Ok(())
}

/// `gzip -9n`: no name, no time stamp (Debian's man pages; reproducible).
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Writes `path` (making its directories) with `mode`.
fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_crate_description() {
        let summary = package_description().unwrap();
        assert!(
            summary.starts_with("eBPF kernel tracer for Python"),
            "{summary}"
        );
    }

    #[test]
    fn control_description_lines_are_indented() {
        let text = debian_long_description();
        assert!(text.lines().all(|l| l.starts_with(' ') && l.len() <= 80));
    }
}
