//! `cargo xtask setup`: install what a fresh Debian machine lacks to build,
//! demo, test, package and benchmark the tracer, and nothing when it is all
//! there (then it takes well under a second).
//!
//! * apt: the packages of [`crate::packages`], `--no-install-recommends`
//! * rustup: the `nightly` toolchain and its `rust-src` (the eBPF side is built
//!   with `-Z build-std=core`)
//! * cargo install: `bpf-linker` built against LLVM 22, the LLVM of rustc here

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::packages;
use crate::util::{cargo_bin_dir, is_root, output, path_with, run, tool_command};

/// The LLVM major version rustc (stable and nightly) uses here; bpf-linker must match it.
const LLVM_MAJOR: u32 = 22;

/// `cargo xtask setup`: every Debian package a command of the project
/// starts (the build's, the demo's, the tests', dist's and the
/// benchmark's), then the toolchain.
pub fn setup_all() -> Result<()> {
    ensure_apt(&packages::all())?;
    setup()
}

/// What the build needs: its Debian packages, nightly with rust-src, and
/// bpf-linker.
pub fn setup() -> Result<()> {
    ensure_apt(packages::BUILD)?;
    ensure_nightly()?;
    ensure_bpf_linker()?;
    Ok(())
}

/// Install the Debian packages among `packages` that are not installed yet
/// (`apt-get update` only when something is missing).
pub fn ensure_apt(packages: &[&str]) -> Result<()> {
    let missing = missing_apt_packages(packages)?;
    for package in packages.iter().filter(|p| !missing.contains(p)) {
        eprintln!("ok {package}");
    }
    if missing.is_empty() {
        return Ok(());
    }
    for package in &missing {
        eprintln!("installing {package}");
    }
    if !is_root() {
        bail!(
            "apt packages {} are missing and installing them needs root: run \
             `sudo -E cargo xtask setup`, or `sudo apt-get install -y {}` yourself",
            missing.join(", "),
            missing.join(" ")
        );
    }
    run(Command::new("apt-get")
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("apt-get update failed")?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| format!("installing {} with apt-get failed", missing.join(" ")))?;
    let still_missing = missing_apt_packages(&missing)?;
    if !still_missing.is_empty() {
        bail!(
            "apt-get reported success but {} still not installed",
            still_missing.join(", ")
        );
    }
    Ok(())
}

/// The packages among `packages` that dpkg does not report as installed.
fn missing_apt_packages<'a>(packages: &[&'a str]) -> Result<Vec<&'a str>> {
    // Unknown packages make dpkg-query exit 1 and print nothing for them, so
    // read its stdout whatever the exit code.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package}\t${Status}\n"])
        .args(packages)
        .output()
        .context(
            "could not run dpkg-query: `cargo xtask setup` supports Debian and Ubuntu (apt) only; \
             elsewhere install LLVM 22 dev files, zstd/zlib dev files and strace by hand",
        )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, status)| status.trim() == "install ok installed")
        // dpkg-query may print "name:arch" for multi-arch packages.
        .map(|(name, _)| name.split(':').next().unwrap_or(name))
        .collect();
    Ok(packages
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect())
}

/// The `nightly` toolchain (minimal profile) with `rust-src`.
fn ensure_nightly() -> Result<()> {
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup not found: install it from your distribution or rustup.rs first")?;
    let have_nightly = String::from_utf8_lossy(&toolchains.stdout)
        .lines()
        .any(|line| {
            line == "nightly" || line.starts_with("nightly-") || line.starts_with("nightly ")
        });
    if have_nightly {
        eprintln!("ok nightly toolchain");
    } else {
        eprintln!("installing nightly toolchain");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))
        .context("installing the nightly toolchain failed")?;
    }

    let components = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .filter(|out| out.status.success())
    .context("`rustup component list --toolchain nightly --installed` failed")?;
    let have_src = String::from_utf8_lossy(&components.stdout)
        .lines()
        .any(|line| {
            line.trim() == "rust-src"
                || line.starts_with("rust-src-")
                || line.starts_with("rust-src ")
        });
    if have_src {
        eprintln!("ok rust-src (nightly)");
    } else {
        eprintln!("installing rust-src (nightly)");
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))
        .context("adding rust-src to the nightly toolchain failed")?;
    }
    Ok(())
}

/// `bpf-linker`, built against LLVM 22 (reinstalled if it links another LLVM).
fn ensure_bpf_linker() -> Result<()> {
    let version = output(tool_command("bpf-linker").arg("--version"))
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    let reinstall = match &version {
        Some(version) => match linked_llvm_major() {
            Some(major) if major != LLVM_MAJOR => {
                eprintln!(
                    "installing bpf-linker (found {version} linked against LLVM {major}; rustc uses LLVM {LLVM_MAJOR})"
                );
                true
            }
            _ => {
                eprintln!("ok {version}");
                return Ok(());
            }
        },
        None => {
            eprintln!("installing bpf-linker (cargo install, about 2 minutes)");
            false
        }
    };

    let llvm_bin = format!("/usr/lib/llvm-{LLVM_MAJOR}/bin");
    if !Path::new(&llvm_bin).join("llvm-config").exists() {
        bail!("{llvm_bin}/llvm-config is missing: llvm-{LLVM_MAJOR}-dev should have installed it");
    }
    // llvm-config must be on PATH, or linking bpf-linker fails with "unable to find library -lLLVM".
    let mut cmd = tool_command("cargo");
    cmd.env("PATH", path_with(&[llvm_bin.into(), cargo_bin_dir()]))
        .args([
            "install",
            "bpf-linker",
            "--no-default-features",
            "--features",
        ])
        .arg(format!("llvm-{LLVM_MAJOR}"));
    if reinstall {
        cmd.arg("--force");
    }
    run(&mut cmd).context("`cargo install bpf-linker` failed")?;
    Ok(())
}

/// The major version of the libLLVM that bpf-linker is dynamically linked to,
/// if it is (a statically linked bpf-linker gives `None`).
fn linked_llvm_major() -> Option<u32> {
    let linker = cargo_bin_dir().join("bpf-linker");
    let out = output(Command::new("ldd").arg(&linker))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|word| {
            word.strip_prefix("libLLVM.so.")
                .or_else(|| word.strip_prefix("libLLVM-"))
        })
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|major| major.parse().ok())
}
