//! Debian's cloud kernels for `cargo xtask kernels`, fetched once with
//! `apt-get download` (the apt of the host, or of the debootstrap root of
//! the kernel's suite) and cached as a bare `vmlinuz`: booted with qemu's
//! `-kernel`, with the whole root as the initramfs, a kernel needs no
//! module and no initramfs of its own.

use std::{
    cmp::Ordering,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{arch::Arch, chroots, util::run};

/// One kernel the tracer is checked on.
#[derive(Debug)]
pub struct Kernel {
    /// What `--kernel` takes, and the cache directory's name.
    pub name: &'static str,
    /// The Debian release whose kernel it is, as the docs name it.
    pub debian: &'static str,
    /// The Debian root whose apt fetches the package (the `CHROOTS`
    /// variable naming it), or `None` for the host's apt.
    pub apt_root: Option<&'static str>,
    /// `apt-cache search --names-only` pattern of the package holding the
    /// vmlinuz; the newest match is taken.
    pub pattern: &'static str,
    /// The machine qemu emulates, and the tracer built for it.
    pub arch: Arch,
    /// `arch` is not the apt root's own: an arm64 kernel fetched by an
    /// x86-64 root's apt, with lists of its own.
    pub foreign: bool,
    /// The scenarios run on it; `None`: every scenario of its architecture.
    pub scenarios: Option<&'static [&'static str]>,
}

/// The scenarios of the arm64 kernels beside Debian 12's, whose code
/// differs by kernel (the syscall hooks, the signal hooks and the exited
/// threads' rows, the sampler and the thread's TLS, native unwinding or
/// its absence before 5.17, the features probed): each arm64 VM is
/// emulated instruction by instruction, and every scenario on each would
/// not fit `cargo xtask test` in 45 minutes on a fresh machine.
const ARM64_PORTABILITY: &[&str] = &["reads", "signals", "hotspots-3.11", "native", "features"];

/// On 5.10, the rows of ended threads (its reads are counted per file,
/// its thread rows sent as on 6.x) and the memory scenarios too: its fault
/// samples are walked in tail-called pieces there, which arm64's JIT of
/// that time let call no function.
const ARM64_5_10: &[&str] = &[
    "reads",
    "threads",
    "signals",
    "hotspots-3.11",
    "native",
    "oom",
    "growth",
    "collapse",
    "features",
];

pub const KERNELS: &[Kernel] = &[
    // 5.10: no `prev_state` in sched_switch (5.18), no bpf_loop (5.17).
    Kernel {
        name: "bullseye",
        debian: "11",
        apt_root: Some("TRACER_PY39_ROOT"),
        pattern: "^linux-image-[0-9].*-cloud-amd64-unsigned$",
        arch: Arch::X86_64,
        foreign: false,
        scenarios: None,
    },
    // 6.1: the host's own suite.
    Kernel {
        name: "bookworm",
        debian: "12",
        apt_root: None,
        pattern: "^linux-image-6\\.1\\.0-[0-9]+-cloud-amd64-unsigned$",
        arch: Arch::X86_64,
        foreign: false,
        scenarios: None,
    },
    Kernel {
        name: "trixie",
        debian: "13",
        apt_root: Some("TRACER_PY313_ROOT"),
        pattern: "^linux-image-[0-9].*-cloud-amd64-unsigned$",
        arch: Arch::X86_64,
        foreign: false,
        scenarios: None,
    },
    // The newest: sid splits the image out of linux-image-* (a meta
    // package there) into linux-binary-*.
    Kernel {
        name: "sid",
        debian: "sid",
        apt_root: Some("TRACER_PY314_ROOT"),
        pattern: "^linux-binary-[0-9].*-cloud-amd64$",
        arch: Arch::X86_64,
        foreign: false,
        scenarios: None,
    },
    // arm64: Debian 12's cloud kernel (6.1), fetched by the arm64 root's
    // own apt (run under qemu's user-mode emulator), booted on qemu's
    // `virt` machine.
    Kernel {
        name: "arm64",
        debian: "12",
        apt_root: Some("TRACER_ARM64_ROOT"),
        pattern: "^linux-image-6\\.1\\.0-[0-9]+-cloud-arm64-unsigned$",
        arch: Arch::Aarch64,
        foreign: false,
        scenarios: None,
    },
    // Debian 11's and 13's arm64 cloud kernels (5.10, 6.12), fetched by
    // the x86-64 roots' apt as arm64 packages, booted with the same arm64
    // root as Debian 12's.
    Kernel {
        name: "bullseye-arm64",
        debian: "11",
        apt_root: Some("TRACER_PY39_ROOT"),
        pattern: "^linux-image-[0-9].*-cloud-arm64-unsigned$",
        arch: Arch::Aarch64,
        foreign: true,
        scenarios: Some(ARM64_5_10),
    },
    Kernel {
        name: "trixie-arm64",
        debian: "13",
        apt_root: Some("TRACER_PY313_ROOT"),
        pattern: "^linux-image-[0-9].*-cloud-arm64-unsigned$",
        arch: Arch::Aarch64,
        foreign: true,
        scenarios: Some(ARM64_PORTABILITY),
    },
];

/// A kernel ready to boot.
#[derive(Clone)]
pub struct Image {
    pub vmlinuz: PathBuf,
    /// The Debian package it came from.
    pub package: String,
}

/// Where kernels and the base initramfs are cached.
pub fn cache_dir() -> PathBuf {
    chroots::cache_dir().join("kernels")
}

/// The cached vmlinuz of `kernel`, downloaded and unpacked first if absent.
pub fn ensure_image(kernel: &Kernel) -> Result<Image> {
    let dir = cache_dir().join(kernel.name);
    let vmlinuz = dir.join("vmlinuz");
    let package_file = dir.join("package");
    if vmlinuz.is_file() {
        let package = fs::read_to_string(&package_file).unwrap_or_default();
        return Ok(Image {
            vmlinuz,
            package: package.trim().to_owned(),
        });
    }
    let apt = Apt::for_kernel(kernel)?;
    apt.update()?;
    let listed = apt.search(kernel.pattern)?;
    let Some(package) = newest_package(&listed) else {
        bail!(
            "no package matches {} in the apt of {} (apt-cache search found none)",
            kernel.pattern,
            apt.describe()
        );
    };
    eprintln!(
        "fetching {} kernel {package} (apt-get download in {})",
        kernel.name,
        apt.describe()
    );
    let deb = apt.download(&package)?;
    let unpacked = dir.join("unpacked");
    let _ = fs::remove_dir_all(&unpacked);
    fs::create_dir_all(&unpacked).with_context(|| format!("creating {}", unpacked.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let found = find_vmlinuz(&unpacked)?;
    // Written under another name and renamed: a vmlinuz in the cache is whole.
    let partial = dir.join("vmlinuz.partial");
    fs::copy(&found, &partial).with_context(|| format!("copying {}", found.display()))?;
    fs::write(&package_file, format!("{package}\n"))?;
    fs::rename(&partial, &vmlinuz)?;
    let _ = fs::remove_dir_all(&unpacked);
    let _ = fs::remove_file(&deb);
    eprintln!("ok {} kernel {}", kernel.name, vmlinuz.display());
    Ok(Image { vmlinuz, package })
}

/// sid's Release is past its Valid-Until (the mirror is a snapshot).
const NOT_EXPIRED: [&str; 2] = ["-o", "Acquire::Check-Valid-Until=false"];

/// Where a root's apt keeps the lists and caches of a foreign
/// architecture's packages (apart from its own, which tests may use; not
/// packed into the VMs' initramfs, as `/var/cache/apt` is left out).
const FOREIGN_APT_DIR: &str = "/var/cache/apt/foreign";

/// The apt a kernel is fetched with: the host's or a root's (chroot), for
/// its own architecture or a foreign one.
struct Apt {
    root: Option<PathBuf>,
    /// Options every apt command takes: `NOT_EXPIRED`, and a foreign
    /// architecture's with its own lists.
    options: Vec<String>,
}

impl Apt {
    fn for_kernel(kernel: &Kernel) -> Result<Apt> {
        let mut options: Vec<String> = NOT_EXPIRED.iter().map(|&o| o.to_owned()).collect();
        let root = match kernel.apt_root {
            None => None,
            Some(env) => {
                let root = chroots::ensure_root(env)?;
                // The root's apt resolves the mirror with the host's resolver.
                fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"))
                    .with_context(|| format!("copying /etc/resolv.conf into {}", root.display()))?;
                Some(root)
            }
        };
        if kernel.foreign {
            let arch = kernel.arch.debian();
            let dir = format!("{FOREIGN_APT_DIR}/{arch}");
            let on_host = match &root {
                Some(root) => root.join(dir.trim_start_matches('/')),
                None => PathBuf::from(&dir),
            };
            for sub in ["lists/partial", "archives/partial"] {
                fs::create_dir_all(on_host.join(sub))
                    .with_context(|| format!("creating {}", on_host.join(sub).display()))?;
            }
            options.extend(foreign_options(arch, &dir));
        }
        Ok(Apt { root, options })
    }

    fn describe(&self) -> String {
        match &self.root {
            None => "the host".to_owned(),
            Some(root) => root.display().to_string(),
        }
    }

    /// `words` run on the host, or inside the root (chroot).
    fn command(&self, words: &[&str]) -> Command {
        let mut cmd = match &self.root {
            None => Command::new(words[0]),
            Some(root) => {
                let mut cmd = Command::new("chroot");
                cmd.arg(root).arg(words[0]);
                cmd
            }
        };
        // stdout carries the command's report only: apt's chatter goes to stderr.
        cmd.args(&words[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::io::stderr());
        cmd
    }

    /// `apt-get`/`apt-cache` `words`, with the options.
    fn apt(&self, tool: &str, words: &[&str]) -> Command {
        let mut all: Vec<&str> = vec![tool];
        all.extend(self.options.iter().map(String::as_str));
        all.extend(words);
        self.command(&all)
    }

    fn update(&self) -> Result<()> {
        run(&mut self.apt("apt-get", &["update", "-q"]))
            .with_context(|| format!("apt-get update in {} failed", self.describe()))
    }

    fn search(&self, pattern: &str) -> Result<String> {
        let mut cmd = self.apt("apt-cache", &["search", "--names-only", pattern]);
        let out = cmd
            .stdout(std::process::Stdio::piped())
            .output()
            .with_context(|| format!("running {}", crate::util::display(&cmd)))?;
        if !out.status.success() {
            bail!(
                "`{}` failed: {}",
                crate::util::display(&cmd),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Downloads `package`'s .deb; returns its path on the host.
    fn download(&self, package: &str) -> Result<PathBuf> {
        // Into a directory of its own, so that the .deb is the only file there.
        let (inside, on_host) = match &self.root {
            None => {
                let dir = cache_dir().join("download");
                (dir.clone(), dir)
            }
            Some(root) => (
                PathBuf::from("/tmp/tracer-kernel"),
                root.join("tmp/tracer-kernel"),
            ),
        };
        let _ = fs::remove_dir_all(&on_host);
        fs::create_dir_all(&on_host)?;
        // apt-get download writes into its working directory, which chroot resets.
        let script = format!(
            // As root: the _apt user may not write into a root-owned directory.
            "cd {} && apt-get {} -o APT::Sandbox::User=root download -q {package}",
            inside.display(),
            self.options.join(" ")
        );
        run(&mut self.command(&["sh", "-c", &script]))
            .with_context(|| format!("apt-get download {package} in {} failed", self.describe()))?;
        let deb = fs::read_dir(&on_host)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .with_context(|| format!("apt-get download left no .deb in {}", on_host.display()))?;
        Ok(deb)
    }
}

/// apt's options for `arch`'s packages alone, with lists and caches in
/// `dir` (the root's own lists stay as they are).
fn foreign_options(arch: &str, dir: &str) -> Vec<String> {
    [
        format!("APT::Architecture={arch}"),
        format!("APT::Architectures::={arch}"),
        format!("Dir::State::Lists={dir}/lists"),
        format!("Dir::Cache={dir}"),
    ]
    .into_iter()
    .flat_map(|option| ["-o".to_owned(), option])
    .collect()
}

/// The vmlinuz in an unpacked kernel package: `boot/vmlinuz-*`, or
/// `usr/lib/modules/VERSION/vmlinuz` (sid's linux-binary-*).
fn find_vmlinuz(unpacked: &Path) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(boot) = fs::read_dir(unpacked.join("boot")) {
        candidates.extend(boot.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
        }));
    }
    for dir in ["usr/lib/modules", "lib/modules"] {
        if let Ok(versions) = fs::read_dir(unpacked.join(dir)) {
            candidates.extend(
                versions
                    .filter_map(|e| e.ok().map(|e| e.path().join("vmlinuz")))
                    .filter(|p| p.is_file()),
            );
        }
    }
    candidates.into_iter().next().with_context(|| {
        format!(
            "no boot/vmlinuz-* nor usr/lib/modules/*/vmlinuz in {}",
            unpacked.display()
        )
    })
}

/// The newest package in `apt-cache search` output ("NAME - description"
/// lines): names compared as versions, so that 6.1.0-56 is newer than 6.1.0-9.
pub fn newest_package(listing: &str) -> Option<String> {
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .max_by(|a, b| compare_versions(a, b))
        .map(str::to_owned)
}

/// Compares runs of digits as numbers and everything else as text.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let (a_run, a_rest) = split_run(a);
        let (b_run, b_rest) = split_run(b);
        let order = match (a_run.parse::<u64>(), b_run.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a_run.cmp(b_run),
        };
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (a_rest, b_rest);
    }
}

/// The leading run of digits, or of non-digits, of `s`, and the rest.
fn split_run(s: &str) -> (&str, &str) {
    let digits = s.starts_with(|c: char| c.is_ascii_digit());
    let end = s
        .find(|c: char| c.is_ascii_digit() != digits)
        .unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_package_compares_numbers_as_numbers() {
        let listing = "\
linux-image-6.1.0-9-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-56-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-55-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
";
        assert_eq!(
            newest_package(listing).as_deref(),
            Some("linux-image-6.1.0-56-cloud-amd64-unsigned")
        );
        let trixie = "\
linux-image-6.12.117+deb13-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
linux-image-6.12.107+deb13-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
";
        assert_eq!(
            newest_package(trixie).as_deref(),
            Some("linux-image-6.12.117+deb13-cloud-amd64-unsigned")
        );
        assert_eq!(newest_package(""), None);
    }

    #[test]
    fn versions_order_like_dpkg_on_kernel_names() {
        assert_eq!(compare_versions("5.10.0-32", "5.10.0-4"), Ordering::Greater);
        assert_eq!(compare_versions("7.2.13", "7.2.13"), Ordering::Equal);
        assert_eq!(compare_versions("6.12", "6.12.1"), Ordering::Less);
        assert_eq!(compare_versions("6.9", "6.12"), Ordering::Less);
    }

    #[test]
    fn a_foreign_architecture_has_lists_of_its_own() {
        let options = foreign_options("arm64", "/var/cache/apt/foreign/arm64");
        assert_eq!(
            options.join(" "),
            "-o APT::Architecture=arm64 -o APT::Architectures::=arm64 \
             -o Dir::State::Lists=/var/cache/apt/foreign/arm64/lists \
             -o Dir::Cache=/var/cache/apt/foreign/arm64"
        );
        // A foreign kernel is fetched by a root of the host's architecture.
        for kernel in KERNELS.iter().filter(|k| k.foreign) {
            assert_ne!(kernel.arch, Arch::HOST, "{}", kernel.name);
        }
    }

    #[test]
    fn each_kernel_has_its_own_name() {
        let mut names: Vec<&str> = KERNELS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KERNELS.len());
        for kernel in KERNELS {
            if let Some(env) = kernel.apt_root {
                assert!(chroots::CHROOTS.iter().any(|c| c.env == env), "{env}");
            }
        }
    }
}
