//! Checks made before loading anything, so the user gets one clear sentence
//! instead of an errno from deep inside the loader.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "tracer must run as root: loading BPF programs needs CAP_BPF and CAP_PERFMON \
         (or CAP_SYS_ADMIN), and this process has {missing}. Run it with sudo"
    )]
    NotPrivileged { missing: String },
    #[error(
        "this kernel does not support BPF (the bpf() system call failed: {0}). \
         tracer needs a kernel built with CONFIG_BPF_SYSCALL=y"
    )]
    NoBpf(std::io::Error),
    #[error(
        "this kernel has no BTF type information ({0} is missing). \
         tracer needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf(&'static str),
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// Parses `CapEff:` from `/proc/self/status`.
pub fn effective_caps(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

/// Which of the needed capabilities `caps` lacks; empty when it is enough.
pub fn missing_caps(caps: u64) -> Vec<&'static str> {
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

pub fn check() -> Result<(), PreflightError> {
    let status = crate::host::procfs::own_status().unwrap_or_default();
    let missing = missing_caps(effective_caps(&status));
    if !missing.is_empty() {
        return Err(PreflightError::NotPrivileged {
            missing: format!("neither CAP_SYS_ADMIN nor {}", missing.join(" / ")),
        });
    }
    // BPF_PROG_LOAD with a null attr: EFAULT/EINVAL mean the syscall exists.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, 5, std::ptr::null::<u8>(), 0u32) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOSYS) {
            return Err(PreflightError::NoBpf(err));
        }
    }
    if !Path::new(BTF_PATH).exists() {
        return Err(PreflightError::NoBtf(BTF_PATH));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_everything() {
        let status = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(status), 0x1ff_ffff_ffff);
        assert!(missing_caps(effective_caps(status)).is_empty());
    }

    #[test]
    fn unprivileged_lacks_bpf_and_perfmon() {
        let status = "CapEff:\t0000000000000000\n";
        assert_eq!(
            missing_caps(effective_caps(status)),
            ["CAP_BPF", "CAP_PERFMON"]
        );
    }

    #[test]
    fn bpf_and_perfmon_suffice() {
        assert!(missing_caps((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_empty());
        assert_eq!(missing_caps(1 << CAP_BPF), ["CAP_PERFMON"]);
    }
}
