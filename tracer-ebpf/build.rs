use which::which;

/// Rebuild the eBPF object when bpf-linker changes (e.g. after `cargo xtask setup`
/// reinstalled it against another LLVM); and say which architecture's
/// `pt_regs` the programs read (`bpf_target_arch`: aya-build passes the
/// tracer's target; a plain build of this crate, `cargo clippy`, gets the
/// host's, as aya-ebpf's bindings do).
fn main() {
    if let Ok(bpf_linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", bpf_linker.display());
    }
    println!("cargo::rustc-check-cfg=cfg(bpf_target_arch, values(\"x86_64\", \"aarch64\"))");
    println!("cargo:rerun-if-env-changed=CARGO_CFG_BPF_TARGET_ARCH");
    if std::env::var_os("CARGO_CFG_BPF_TARGET_ARCH").is_none() {
        let host = std::env::var("HOST").unwrap_or_default();
        let arch = host.split('-').next().unwrap_or_default();
        println!("cargo:rustc-cfg=bpf_target_arch=\"{arch}\"");
    }
}
