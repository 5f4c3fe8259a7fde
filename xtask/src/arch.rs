//! The architectures the tracer is built for, and what each is called by
//! Rust, Debian, Python's wheels and container images.

use std::process::Command;

use anyhow::{Context as _, Result};

use crate::util::{output, run};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64", alias = "amd64")]
    X86_64,
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
}

impl Arch {
    /// The machine this runs on (the only one `cargo xtask` runs on).
    pub const HOST: Arch = Arch::X86_64;

    /// Rust's target: glibc, linked statically with `crt-static`.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// Debian's name (a .deb's `Architecture`), which is also the image's
    /// platform (`linux/amd64`, `linux/arm64`).
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The wheel's platform tags: manylinux2014 (glibc 2.17) is the oldest
    /// every pip since 19.3 accepts (the binary is static, so it needs no
    /// particular glibc), in both its forms as maturin writes them.
    pub fn wheel_platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "manylinux_2_17_x86_64.manylinux2014_x86_64",
            Arch::Aarch64 => "manylinux_2_17_aarch64.manylinux2014_aarch64",
        }
    }

    /// The cross linker, for a target that is not the host's (Debian's
    /// gcc-aarch64-linux-gnu, whose libc6-dev-arm64-cross has the static
    /// glibc).
    pub fn linker(self) -> Option<&'static str> {
        (self != Arch::HOST).then_some(match self {
            Arch::X86_64 => "x86_64-linux-gnu-gcc",
            Arch::Aarch64 => "aarch64-linux-gnu-gcc",
        })
    }

    /// binutils' `nm` that reads this architecture's objects.
    pub fn nm(self) -> &'static str {
        match self {
            Arch::X86_64 => "nm",
            Arch::Aarch64 => "aarch64-linux-gnu-nm",
        }
    }

    /// A command that runs a binary of this architecture here: the binary
    /// itself, or under qemu's user-mode emulator (Debian's
    /// qemu-user-static).
    pub fn command(self, binary: &std::path::Path) -> Command {
        match self {
            Arch::X86_64 => Command::new(binary),
            Arch::Aarch64 => {
                let mut cmd = Command::new("qemu-aarch64-static");
                cmd.arg(binary);
                cmd
            }
        }
    }

    /// Cargo's environment for this target's build: its linker and
    /// `crt-static` (`CARGO_TARGET_<TRIPLE>_*`, so build scripts and proc
    /// macros, built for the host, stay dynamic).
    pub fn cargo_env(self) -> Vec<(String, String)> {
        let triple = self.rust_target().to_uppercase().replace('-', "_");
        let mut env = vec![(
            format!("CARGO_TARGET_{triple}_RUSTFLAGS"),
            "-C target-feature=+crt-static".to_string(),
        )];
        if let Some(linker) = self.linker() {
            env.push((format!("CARGO_TARGET_{triple}_LINKER"), linker.to_string()));
        }
        env
    }
}

/// Rust's standard library for `arch`, added with rustup when missing.
pub fn ensure_rust_target(arch: Arch) -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("rustup not found: install it from your distribution or rustup.rs first")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == arch.rust_target())
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", arch.rust_target()]))
}

/// Registers qemu's user-mode emulator for `arch`'s programs with the
/// kernel (binfmt_misc, mounted first where nothing mounted it), so that
/// `chroot` runs them: Debian's qemu-user-static ships the registration
/// (`/usr/lib/binfmt.d/qemu-ARCH.conf`, flag F: the emulator is opened
/// now, so a root needs no copy of it).
pub fn ensure_binfmt(arch: Arch) -> Result<()> {
    let Arch::Aarch64 = arch else {
        return Ok(());
    };
    let dir = std::path::Path::new("/proc/sys/fs/binfmt_misc");
    if !dir.join("register").exists() {
        run(Command::new("mount")
            .args(["-t", "binfmt_misc", "binfmt_misc"])
            .arg(dir))?;
    }
    if dir.join("qemu-aarch64").exists() {
        return Ok(());
    }
    let conf = "/usr/lib/binfmt.d/qemu-aarch64.conf";
    let text = std::fs::read_to_string(conf)
        .with_context(|| format!("reading {conf} (Debian's qemu-user-static)"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with(':'))
        .with_context(|| format!("no registration line in {conf}"))?;
    std::fs::write(dir.join("register"), line)
        .with_context(|| format!("registering {conf} with binfmt_misc"))?;
    eprintln!("ok qemu-aarch64 registered with binfmt_misc");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_agree_per_architecture() {
        assert_eq!(Arch::Aarch64.debian(), "arm64");
        assert!(Arch::Aarch64.wheel_platform().contains("aarch64"));
        assert_eq!(Arch::HOST.linker(), None);
        assert_eq!(
            Arch::Aarch64.cargo_env(),
            vec![
                (
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS".into(),
                    "-C target-feature=+crt-static".into()
                ),
                (
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER".into(),
                    "aarch64-linux-gnu-gcc".into()
                ),
            ]
        );
    }
}
